"""gateway.dialer.ami's pure parts, no Asterisk needed: the Originate headers it builds and
the call tracker's correlation by Uniqueid/Linkedid. The same module against a real
Asterisk: tests/integration/asterisk/test_asterisk_gateway_ami.py."""

from __future__ import annotations

import pytest

from gateway.dialer.ami import CallTracker, OriginateRequest


def _request(**overrides: object) -> OriginateRequest:
    fields: dict[str, object] = {
        "channel_id": "minyi-abc123",
        "number": "13800138000",
        "trunk": "minyi-trunk",
        "context": "minyi-callback",
        "variables": {"MINYI_SURVEY_ID": "s-1", "MINYI_REC_BASENAME": "rec-1"},
        "ring_timeout_s": 25,
    }
    fields.update(overrides)
    return OriginateRequest(**fields)  # type: ignore[arg-type]


def test_originate_fields_are_async_with_our_channel_id() -> None:
    f = _request().fields()
    assert f["Action"] == "Originate"
    assert f["Async"] == "true"
    assert f["ChannelId"] == "minyi-abc123"
    assert f["Channel"] == "PJSIP/13800138000@minyi-trunk"
    assert f["Timeout"] == "25000"
    assert f["Variable"] == ["MINYI_SURVEY_ID=s-1", "MINYI_REC_BASENAME=rec-1"]
    assert "CallerID" not in f


@pytest.mark.parametrize(
    "overrides",
    [
        {"number": "138001380a0"},
        {"number": "1380013800@evil"},
        {"channel_id": "has space"},
        {"channel_id": ""},
        {"variables": {"MINYI_REC_BASENAME": "a,b"}},  # Asterisk splits values on commas
        {"variables": {"MINYI_X": "line\nbreak"}},
        {"variables": {"BAD NAME": "x"}},
    ],
)
def test_unsafe_originate_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError) as raised:
        _request(**overrides).fields()
    assert "13800138000" not in str(raised.value)  # never a full number in a message


def test_tracker_follows_a_call_through_the_agent_leg() -> None:
    t = CallTracker()
    call = t.track("cid-1")
    assert t.feed({"Event": "Newchannel", "Uniqueid": "other", "Linkedid": "other"}) is None
    resp = {"Event": "OriginateResponse", "Response": "Success", "Reason": "4", "Uniqueid": "cid-1"}
    assert t.feed(resp) is call
    assert call.answered and call.originate_reason == "4"
    agent_leg = {
        "Event": "Newchannel",
        "Channel": "PJSIP/agent1-0002",
        "Uniqueid": "1795.2",
        "Linkedid": "cid-1",
    }
    assert t.feed(agent_leg) is call
    t.feed(
        {"Event": "AgentConnect", "Uniqueid": "cid-1", "Linkedid": "cid-1", "MemberName": "agent1"}
    )
    # The agent's leg hanging up is not the call ending.
    t.feed({"Event": "Hangup", "Uniqueid": "1795.2", "Linkedid": "cid-1", "Cause": "16"})
    assert not call.ended
    t.feed({"Event": "Hangup", "Uniqueid": "cid-1", "Linkedid": "cid-1", "Cause": "16"})
    assert call.ended and call.hangup_cause == "16" and call.agent == "agent1"
    assert "PJSIP/agent1-0002" in call.channels


def test_reconcile_settles_calls_that_ended_while_disconnected() -> None:
    t = CallTracker()
    alive, gone = t.track("cid-alive"), t.track("cid-gone")
    t.feed({"Event": "Hangup", "Uniqueid": "cid-done", "Cause": "16"})
    vanished = t.reconcile([{"Uniqueid": "cid-alive", "Linkedid": "cid-alive"}])
    assert vanished == [gone]
    assert gone.ended and gone.hangup_cause is None  # outcome unknown, not invented
    assert not alive.ended
    t.forget("cid-gone")
    assert "cid-gone" not in t.calls
