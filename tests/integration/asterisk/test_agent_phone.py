"""An agent's real softphone: baresip (Debian's, a peer the project did not write)
registered with the gateway's Asterisk 22, against the whole gateway.

Shown here: the feature codes dialled from the phone log the agent in, pause, unpause
and log out (queue membership and pause as Asterisk reports them, each an
``agent.state`` event on the feed); the callback's INVITE reaches the phone with the
``X-Minyi-Callback-Id`` / ``X-Minyi-Survey-Id`` headers and the masked caller name; only
the agent who took the call gives its disposition; and a phone killed mid-shift
(SIGKILL: no unregister, no goodbye) turns unreachable through qualify, after which no
citizen is dialled for it. The desk's actions (gateway.dialer.agents) move the same
agent on the same Asterisk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devstack.asterisk import UNIT_A, UNIT_B, AsteriskInfo, AsteriskProcess
from devstack.baresip import Baresip
from devstack.localstack import SOURCE_ADDR, TOKEN, free_port
from gateway.dialer import agents
from tests.integration.sms_harness import Loop, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

from .amitools import AmiClient
from .conftest import PhoneAgent
from .test_dialer import dialer_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AGENT = "agent1"
PASSWORD = "pw-agent1-baresip"
QUEUE_A = "minyi-unit-" + UNIT_A


@pytest.fixture(scope="module")
def phone_agent() -> PhoneAgent:
    """Unit A has one agent, agent1, whose phone is baresip (conftest: ``pbx``,
    ``phone``). Unit B has no agent: its callbacks are never dialled (the test uses it
    to see a tick go by)."""
    return PhoneAgent(AGENT, PASSWORD, UNIT_A, UNIT_B)


def _agent_events(loop: Loop) -> list[dict[str, Any]]:
    return [e["payload"] for e in loop.receiver.events.get("", []) if e["type"] == "agent.state"]


def _mine(loop: Loop) -> list[dict[str, Any]]:
    """agent1's agent.state payloads on the feed, in order."""
    return [p for p in _agent_events(loop) if p["agent"] == AGENT]


def _states(loop: Loop) -> list[str]:
    """agent1's states on the feed, in order."""
    return [p["state"] for p in _mine(loop)]


def _now(loop: Loop) -> str | None:
    """agent1's latest state on the feed."""
    states = _states(loop)
    return states[-1] if states else None


async def _code(
    phone: Baresip, observer: AmiClient, loop: Loop, code: str, want_state: str
) -> dict[str, Any]:
    """Dial a feature code; its UserEvent, once the feed says ``want_state``."""
    seen = len(observer.events)
    await phone.dial(code)  # returns when Asterisk hung up, after the prompt
    report = await observer.wait_for(
        lambda e: (
            observer.events.index(e) >= seen
            and e.get("Event") == "UserEvent"
            and e.get("UserEvent") == "MinyiAgentCode"
        ),
        f"the {code} report",
    )
    await eventually(lambda: _now(loop) == want_state, f"agent.state {want_state} after {code}")
    return dict(report)


class _Prompts:
    """The sounds Asterisk played to the agent's phone (its log: "Playing '...'")."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.offset = log_file.stat().st_size

    def played(self) -> list[str]:
        """What was played to agent1 since the last call, without the file extension."""
        with open(self.log_file, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
            self.offset = f.tell()
        return re.findall(rf"<PJSIP/{AGENT}-[0-9a-f]+> Playing '([^']+)\.gsm'", text)


async def _members(observer: AmiClient) -> dict[str, dict[str, str]]:
    """agent1's membership per queue, as QueueStatus reports it now."""
    response = await observer.action({"Action": "QueueStatus"})
    return {
        str(e["Queue"]): {k: str(v) for k, v in e.items()}
        for e in (response if isinstance(response, list) else [response])
        if e.get("Event") == "QueueMember" and e.get("Name", e.get("MemberName")) == AGENT
    }


async def _unsatisfied(loop: Loop, sid: str, phone: str, unit: str) -> None:
    status, body = await loop.post(survey(sid.lstrip("S"), phone, unit_code=unit))
    assert status == 201, body
    await eventually(lambda: "survey.submitted" in loop.types(sid))
    loop.smsc.inject_mo(phone, SOURCE_ADDR, "3 出警太慢，态度也不好")


async def _on_queue(loop: Loop, sid: str) -> bool:
    assert loop.service.store is not None
    record = await loop.service.store.get_survey(sid)
    return bool(record and record.get("cb_queue"))


def _invite_to_phone(log: str) -> str:
    """The first INVITE baresip received (its SIP trace), headers only."""
    for block in log.split("\x1b[36;1m#"):
        lines = block.strip().splitlines()
        if len(lines) > 1 and "-> " + "127.0.0.3" in lines[0] and lines[1].startswith("INVITE"):
            return "\n".join(lines[1:]).split("\n\n", 1)[0]
    raise AssertionError("no INVITE reached the phone:\n" + log[-3000:])


async def _disposition(loop: Loop, cid: str, agent: str) -> tuple[int, Any]:
    body = {"upheld": True, "reasons": ["slow_response"], "agent": agent}
    async with loop.http.post(
        loop.api + f"/v1/callbacks/{cid}/disposition",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as r:
        return r.status, await r.json()


async def test_agent_phone_codes_callback_headers_and_sigkill(
    clean_redis: RedisServer,
    pbx: tuple[AsteriskProcess, AsteriskInfo],
    observer: AmiClient,
    phone: Baresip,
) -> None:
    _, info = pbx
    async with running_loop(
        clean_redis.url,
        free_port(),
        workers=["api", "sms", "webhooks", "dialer"],
        dialer=dialer_config(info, units=[UNIT_A, UNIT_B], ring_timeout_s=10, wrapup_s=0),
    ) as loop:
        dialer = loop.service.dialer
        assert dialer is not None
        await eventually(lambda: dialer.ami.connected, "the dialer on AMI")
        assert await _members(observer) == {}  # registered, not logged in

        # --- the feature codes, from the phone ---------------------------------------
        prompts = _Prompts(info.log_file)
        login = await _code(phone, observer, loop, "*45", "free")
        assert prompts.played() == ["agent-loginok"]
        assert (login["Agent"], login["Action"], login["Ok"]) == (AGENT, "login", "1")
        member = (await _members(observer))[QUEUE_A]
        assert member["Membership"] == "dynamic" and member["Paused"] == "0"
        pause = await _code(phone, observer, loop, "*47", "paused")
        assert pause["Ok"] == "1" and prompts.played() == ["dictate/paused"]
        assert (await _members(observer))[QUEUE_A]["Paused"] == "1"
        await _code(phone, observer, loop, "*48", "free")
        assert prompts.played() == ["activated"]
        assert (await _members(observer))[QUEUE_A]["Paused"] == "0"
        # The phone is in a call while it dials a code: on_call comes and goes around
        # each code, the rest is what the codes did.
        states = [s for s in _states(loop) if s != "on_call"]
        assert [s for i, s in enumerate(states) if states[i - 1 : i] != [s]] == [
            "free",
            "paused",
            "free",
        ], _states(loop)
        paused = next(p for p in _mine(loop) if p["state"] == "paused")
        assert paused["reason"] == "phone" and paused["units"] == [UNIT_A]
        # from the call to *47, or free: the pause is made before the code's call is
        # answered, and the phone's in-use state may be reported after it
        assert paused["from"] in ("on_call", "free"), paused

        # --- a callback rings the phone: who is calling, and the ids for CTI -------------
        number = "13800008601"
        seen, calls = len(phone.events), len(_states(loop))
        await _unsatisfied(loop, "S8601", number, UNIT_A)
        await phone.wait_event(
            lambda e: e.get("type") == "CALL_ESTABLISHED", "the callback answered", 60, since=seen
        )
        invite = _invite_to_phone(phone.log())
        attempts_cid = re.search(r"^X-Minyi-Callback-Id: (cb-[0-9a-f]{16})$", invite, re.M)
        assert attempts_cid is not None, invite
        assert re.search(r"^X-Minyi-Survey-Id: S8601$", invite, re.M), invite
        from_line = next(line for line in invite.splitlines() if line.startswith("From:"))
        assert '"回访 138****8601"' in from_line, from_line
        assert number not in invite  # the agent's phone never sees the full number
        # on_call may come from the phone's device state before AgentConnect names the
        # call: an agent talks for longer than the moment between the two
        await eventually(
            lambda: any(p.get("callback_id") for p in _mine(loop)[calls:]),
            "agent.state on_call naming the callback",
        )
        await phone.command("hangup")
        await eventually(lambda: "survey.called" in loop.types("S8601"), within_s=60)
        (attempt,) = [
            e["payload"] for e in loop.receiver.events["S8601"] if e["type"] == "callback.attempt"
        ]
        cid = attempt["callback_id"]
        assert attempt["agent"] == AGENT and cid == attempts_cid.group(1)
        # the desk learnt whose call it was as the agent answered: on_call, named
        took = [p for p in _mine(loop)[calls:] if p.get("callback_id")]
        assert took and took[0]["state"] == "on_call", _mine(loop)[calls:]
        assert (took[0]["callback_id"], took[0]["survey_id"]) == (cid, "S8601")

        # --- only the agent who took the call gives its disposition ---------------------
        status, body = await _disposition(loop, cid, "agent2")
        assert status == 409 and body["error"] == "agent", body
        assert (await loop.get("S8601"))[1]["state"] == "called"
        status, body = await _disposition(loop, cid, AGENT)
        assert status == 200 and body["state"] == "closed", body

        # --- the phone dies mid-shift: unreachable, and nobody is dialled for it --------
        await eventually(lambda: _now(loop) == "free", "agent1 free again")
        phone.kill()
        await eventually(lambda: _now(loop) == "unreachable", "agent.state unreachable", 30)
        assert dialer.health()["free_agents"] == {QUEUE_A: 0}
        late = "13800008602"
        await _unsatisfied(loop, "S8602", late, UNIT_A)
        await eventually(lambda: _on_queue(loop, "S8602"), "S8602 on unit A's queue")
        # A callback of unit B (no agents) posted now reaches its queue in a later tick:
        # the tick that queued S8602 (and decided not to dial it) is over by then.
        await _unsatisfied(loop, "S8603", "13800008603", UNIT_B)
        await eventually(lambda: _on_queue(loop, "S8603"), "a later tick")
        assert (await loop.get("S8602"))[1]["state"] == "callback_pending"
        assert "survey.calling" not in loop.types("S8602")
        assert not [
            e for e in observer.events if e.get("Event") == "Newchannel" and e.get("Exten") == late
        ]

        # --- the desk's actions on the same agent, over its own AMI connection ---------
        directory = agents.AgentDirectory.from_settings(pbx[0].settings())
        async with agents.agent_ami(loop.service.settings.dialer.ami) as desk:
            out = await agents.logout(desk, directory, AGENT)
            assert out.ok, out
            await eventually(lambda: _now(loop) == "logged_out", "logged out by the desk")
            assert await _members(observer) == {}
            back = await agents.login(desk, directory, AGENT)
            assert back.ok, back
            # logged in, but the phone is still dead: unreachable, never free
            await eventually(lambda: _now(loop) == "unreachable", "back, unreachable")
            assert (await _members(observer))[QUEUE_A]["Status"] == "5"  # AST_DEVICE_UNAVAILABLE
            refused = await agents.pause(desk, directory, "nobody")
            assert not refused.ok and refused.detail == "no such agent"
            assert (await agents.logout(desk, directory, AGENT)).ok
