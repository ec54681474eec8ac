"""Calling an unsatisfied citizen back through a real Asterisk, real SIP over loopback.

The gateway side originates PJSIP/<number>@<trunk> into minyi-callback; the outside
world (dialplans/test/) answers as the citizen and as the agents' phones.
"""

from __future__ import annotations

import asyncio

import pytest

from devstack.asterisk import UNIT_A, UNIT_B, AsteriskInfo, voice_seconds, wav_rms, wav_seconds
from gateway.dialer.asterisk import CALLBACK_CONTEXT
from tests.waiting import eventually

from .amitools import (
    AmiClient,
    for_channel,
    new_channel_id,
    recorded_seconds,
    user_event,
    wait_wav_closed,
)

# The tests hang up themselves: the agents talk until they do.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.usefixtures("talkative_agents"),
]

# Voices are normalised to -3 dBFS (RMS about 0.06); a leg that carried speech is far
# above this, digital silence is 0.
SPEECH_RMS = 0.01


def _vars(channel_id: str, unit: str = UNIT_A, basename: str | None = None) -> dict[str, str]:
    return {
        "MINYI_SURVEY_ID": "survey-1",
        "MINYI_ATTEMPT_ID": "attempt-1",
        "MINYI_REC_BASENAME": basename if basename is not None else f"rec-{channel_id[-12:]}",
        "MINYI_UNIT": unit,
    }


async def test_answered_citizen_is_connected_to_a_free_agent_and_both_legs_recorded(
    ami: AmiClient, asterisk: AsteriskInfo
) -> None:
    cid = new_channel_id()
    basename = f"rec-{cid[-12:]}"
    ami.originate("13800008000", CALLBACK_CONTEXT, _vars(cid, basename=basename), cid)

    answered = await ami.wait_for(user_event(cid, "MinyiCallbackAnswered"), "answered")
    assert answered["RecBasename"] == basename
    assert answered["AttemptId"] == "attempt-1"
    queued = await ami.wait_for(user_event(cid, "MinyiCallbackQueued"), "queued")
    assert queued["Queue"] == f"minyi-unit-{UNIT_A}"
    connect = await ami.wait_for(for_channel(cid, "AgentConnect"), "AgentConnect")
    assert connect["MemberName"] in ("agent1", "agent2")  # unit A's agents, not agent3
    # The agent's channel belongs to our call: same Linkedid as the citizen's.
    assert connect["DestLinkedid"] == cid

    # Let them talk: the agent leg (sent to the citizen) grows past the greeting.
    talked_s = voice_seconds("greeting") + 1.0
    agent_leg = asterisk.recordings_dir / f"{basename}-agent.wav"
    await eventually(lambda: recorded_seconds(agent_leg) > talked_s, "a second of talk")
    hangup = await ami.action({"Action": "Hangup", "Channel": answered["Channel"]})
    assert hangup.success
    ended = await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
    assert ended["Stage"] == "queued"
    assert ended["Agent"] == connect["MemberName"]

    rec = asterisk.recordings_dir
    files = {leg: rec / f"{basename}{leg}.wav" for leg in ("", "-citizen", "-agent")}
    for path in files.values():
        await wait_wav_closed(path)
    for path in files.values():
        assert wav_rms(path) > SPEECH_RMS, f"{path.name} is silent"
    # The legs are separate: the citizen leg holds the citizen only, so it is not the
    # same audio as the agent leg.
    assert files["-citizen"].read_bytes() != files["-agent"].read_bytes()
    # The whole call was recorded: the greeting, then the agent's talk.
    assert wav_seconds(files["-agent"]) > talked_s
    assert sorted(p.name for p in rec.iterdir() if p.name.startswith(basename)) == sorted(
        p.name for p in files.values()
    )


async def test_unknown_unit_goes_to_the_default_queue(ami: AmiClient) -> None:
    cid = new_channel_id()
    ami.originate("13800008001", CALLBACK_CONTEXT, _vars(cid, unit="999999"), cid)
    queued = await ami.wait_for(user_event(cid, "MinyiCallbackQueued"), "queued")
    assert queued["Queue"] == f"minyi-unit-{UNIT_A}"
    await ami.wait_for(for_channel(cid, "AgentConnect"), "AgentConnect")
    await ami.action({"Action": "Hangup", "Channel": queued["Channel"]})
    await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")


async def test_unit_queue_rings_only_that_units_agents(ami: AmiClient) -> None:
    cid = new_channel_id()
    ami.originate("13800008002", CALLBACK_CONTEXT, _vars(cid, unit=UNIT_B), cid)
    connect = await ami.wait_for(for_channel(cid, "AgentConnect"), "AgentConnect")
    assert connect["Queue"] == f"minyi-unit-{UNIT_B}"
    assert connect["MemberName"] == "agent3"
    await ami.action({"Action": "Hangup", "Channel": connect["Channel"]})
    await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")


@pytest.mark.parametrize(
    ("number", "cause", "reason"),
    [
        # Hangup causes are Q.850 (Asterisk's causes.h); OriginateResponse Reason is the
        # last control frame seen (AST_CONTROL_*: 0 none/failed, 3 ringing = no answer).
        pytest.param("13800000001", "17", "0", id="busy"),
        pytest.param("13800000002", "19", "3", id="no-answer"),
        pytest.param("13800000003", "21", "0", id="rejected"),
        pytest.param("13800000005", "1", "0", id="unallocated"),
    ],
)
async def test_unanswered_calls_report_their_hangup_cause(
    ami: AmiClient, number: str, cause: str, reason: str
) -> None:
    cid = new_channel_id()
    response = ami.originate(number, CALLBACK_CONTEXT, _vars(cid), cid, ring_timeout_ms=2000)
    hangup = await ami.wait_for(for_channel(cid, "Hangup"), "Hangup")
    assert hangup["Cause"] == cause
    # The final OriginateResponse goes to the pending action, not to event handlers.
    messages = await asyncio.wait_for(response, timeout=30)
    final = messages[-1]
    assert final["Event"] == "OriginateResponse"
    assert final["Response"] == "Failure"
    assert final["Reason"] == reason
    assert final["Uniqueid"] == cid
    # The dialplan never ran: no UserEvent for a call nobody answered.
    assert not [e for e in ami.events if user_event(cid, "MinyiCallbackAnswered")(e)]


async def test_citizen_hanging_up_during_the_greeting(ami: AmiClient) -> None:
    cid = new_channel_id()
    ami.originate("13800000004", CALLBACK_CONTEXT, _vars(cid), cid)
    ended = await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
    assert ended["Stage"] == "answered"
    assert ended["HangupCause"] == "16"
    assert ended["Agent"] == ""
    assert not [e for e in ami.events if for_channel(cid, "AgentCalled")(e)]


@pytest.mark.parametrize(
    "basename",
    ["../../../etc/evil", "x)t(/tmp/evil", "a" * 101, "", "名字", "a b"],
    ids=["traversal", "option-injection", "too-long", "empty", "non-ascii", "space"],
)
async def test_unsafe_recording_name_is_replaced_by_a_safe_one(
    ami: AmiClient, asterisk: AsteriskInfo, basename: str
) -> None:
    cid = new_channel_id()
    ami.originate("13800000004", CALLBACK_CONTEXT, _vars(cid, basename=basename), cid)
    answered = await ami.wait_for(user_event(cid, "MinyiCallbackAnswered"), "answered")
    safe = "minyi-" + cid.replace("-", "")
    assert answered["RecBasename"] == safe
    await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
    await wait_wav_closed(asterisk.recordings_dir / f"{safe}.wav")


async def test_originate_splits_variable_values_on_commas(ami: AmiClient) -> None:
    # AMI Originate reads "Variable: a=1,b=2" as two variables, so a value with a comma
    # is cut short: the dialer must never pass one (dialplans/README.md).
    cid = new_channel_id()
    ami.originate("13800000004", CALLBACK_CONTEXT, _vars(cid, basename="x,b)t(/tmp/evil"), cid)
    answered = await ami.wait_for(user_event(cid, "MinyiCallbackAnswered"), "answered")
    assert answered["RecBasename"] == "x"
    await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
