"""Call outcomes and pacing from AMI events (gateway.dialer.calls): pure, no Asterisk."""

from __future__ import annotations

import pytest

from gateway.dialer.calls import (
    CallOutcome,
    CallTracker,
    QueueBoard,
    TrackedCall,
    agent_in_call,
    capacity,
    classify,
)


def _call(**fields: object) -> TrackedCall:
    call = TrackedCall("cb-1")
    for k, v in fields.items():
        setattr(call, k, v)
    return call


@pytest.mark.parametrize(
    ("fields", "ivr", "outcome"),
    [
        ({"answered": True, "agent": "agent1"}, False, CallOutcome.CONNECTED),
        ({"answered": True, "ended_event": {"Stage": "no_agent"}}, False, CallOutcome.NO_AGENT),
        ({"answered": True, "ended_event": {"Stage": "queued"}}, False, CallOutcome.ABANDONED),
        ({"answered": True, "hangup_cause": "16"}, False, CallOutcome.ABANDONED),
        ({"answered": True}, False, CallOutcome.LOST),  # vanished: nothing more is known
        ({"hangup_cause": "17", "originate_reason": "0"}, False, CallOutcome.BUSY),
        ({"originate_reason": "5"}, False, CallOutcome.BUSY),
        ({"hangup_cause": "19"}, False, CallOutcome.NO_ANSWER),
        ({"hangup_cause": "0", "originate_reason": "3"}, False, CallOutcome.NO_ANSWER),
        ({"hangup_cause": "21"}, False, CallOutcome.REJECTED),
        ({"hangup_cause": "1"}, False, CallOutcome.INVALID_NUMBER),
        ({"hangup_cause": "38", "originate_reason": "8"}, False, CallOutcome.FAILED),
        ({}, False, CallOutcome.LOST),
        ({"answered": True, "ivr_result": "3"}, True, CallOutcome.IVR_RATED),
        ({"answered": True, "ivr_result": None}, True, CallOutcome.IVR_NO_INPUT),
    ],
)
def test_classify(fields: dict[str, object], ivr: bool, outcome: CallOutcome) -> None:
    assert classify(_call(**fields), ivr) is outcome


def test_callback_ended_event_names_the_agent_when_agentconnect_was_missed() -> None:
    t = CallTracker()
    call = t.track("cb-1")
    t.feed({"Event": "Newstate", "Uniqueid": "cb-1", "ChannelStateDesc": "Up"}, 5.0)
    t.feed(
        {
            "Event": "UserEvent",
            "UserEvent": "MinyiCallbackEnded",
            "Uniqueid": "cb-1",
            "Linkedid": "cb-1",
            "Stage": "queued",
            "Agent": "agent2",
        }
    )
    t.feed({"Event": "Hangup", "Uniqueid": "cb-1", "Cause": "16"}, 9.0)
    assert call.settled and call.agent == "agent2" and call.answered_at == 5.0
    assert classify(call, ivr=False) is CallOutcome.CONNECTED


def test_failed_originate_without_a_channel_is_not_settled_until_it_ends() -> None:
    t = CallTracker()
    call = t.track("cb-1")
    t.feed({"Event": "OriginateResponse", "Uniqueid": "cb-1", "Response": "Failure", "Reason": "0"})
    assert call.originate_failed and not call.settled
    t.feed({"Event": "Hangup", "Uniqueid": "cb-1", "Cause": "17"})
    assert call.settled and classify(call, ivr=False) is CallOutcome.BUSY


def _member(queue: str, name: str, status: str = "1", **extra: str) -> dict[str, str]:
    return {
        "Event": "QueueMember",
        "Queue": queue,
        "Name": name,
        "StateInterface": f"PJSIP/{name}",
        "Status": status,
        "Paused": "0",
        "InCall": "0",
        "LastCall": "0",
        **extra,
    }


def test_board_counts_only_free_unpaused_agents_past_wrapup() -> None:
    board = QueueBoard(wrapup_s=5)
    board.load(
        [
            _member("q1", "a1"),
            _member("q1", "a2", status="2"),  # in use
            _member("q1", "a3", Paused="1"),
            _member("q1", "a4", LastCall="98"),  # hung up 2 s ago: wrap-up
            _member("q1", "a5", status="5"),  # unavailable
            {"Event": "QueueParams", "Queue": "q1"},
        ]
    )
    assert board.free("q1", now=100.0) == {"PJSIP/a1"}
    assert board.free("q1", now=104.0) == {"PJSIP/a1", "PJSIP/a4"}
    board.feed({**_member("q1", "a2"), "Event": "QueueMemberStatus"})
    assert "PJSIP/a2" in board.free("q1", now=100.0)
    board.busy("PJSIP/a2", "cb-1")  # AgentConnect before its status change
    assert "PJSIP/a2" not in board.free("q1", now=100.0)
    board.feed({"Event": "QueueMemberRemoved", "Queue": "q1", "StateInterface": "PJSIP/a1"})
    assert "PJSIP/a1" not in board.free("q1", now=100.0)


def test_an_agent_in_our_call_stays_busy_whatever_status_arrives_late() -> None:
    # Seen on a cold Asterisk: after AgentConnect, a "not in use" QueueMemberStatus came
    # and stayed the last word for the whole call; the agent looked free and dialable.
    board = QueueBoard()
    board.load([_member("q1", "a1"), _member("q2", "a1")])
    board.busy("PJSIP/a1", "cb-1")
    board.busy("PJSIP/a1", "cb-0")  # an older call of the agent, still finishing
    stale = {**_member("q1", "a1"), "Event": "QueueMemberStatus"}
    board.feed(stale)
    assert board.free("q1", now=100.0) == board.free("q2", now=100.0) == set()
    member = board.members[("q1", "PJSIP/a1")]
    assert board.in_call(member) and not member.in_call
    board.released("PJSIP/a1", "cb-1")
    assert board.free("q1", now=100.0) == set()  # cb-0 holds it yet
    board.released("PJSIP/a1", "cb-0")
    board.released("PJSIP/a1", "cb-0")  # twice (the Hangup, then the stored result)
    assert board.free("q1", now=100.0) == {"PJSIP/a1"} and not board.in_call(member)


def test_capacity_never_exceeds_free_agents_even_across_shared_queues() -> None:
    board = QueueBoard()
    board.load([_member("q1", "a1"), _member("q1", "a2"), _member("q2", "a2")])
    assert capacity(board, "q1", {}, 0.0) == 2
    assert capacity(board, "q1", {"q1": 1}, 0.0) == 1
    assert capacity(board, "q1", {"q1": 2}, 0.0) == 0
    # a2 is q2's only agent and one q2 call is waiting for it: only a1 is left for q1
    assert capacity(board, "q1", {"q2": 1}, 0.0) == 1
    assert capacity(board, "q2", {"q1": 2}, 0.0) == 0


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Event": None},
        {"Event": "Hangup", "Uniqueid": 5, "Linkedid": None},
        {"Event": "UserEvent", "UserEvent": 7, "Uniqueid": "cb-1"},
        {"Event": "UserEvent", "UserEvent": "MinyiCallbackEnded", "Uniqueid": "cb-1"},
        {"Event": "OriginateResponse", "Uniqueid": "cb-1"},
        {"Event": "QueueMemberStatus", "Queue": "q1"},
        {"Event": "QueueMemberStatus", "Queue": "q1", "Interface": "PJSIP/a1", "LastCall": "x"},
        {"Event": "QueueMemberRemoved"},
        {"Event": "AgentConnect", "Uniqueid": "cb-1", "MemberName": None},
    ],
)
def test_malformed_events_are_survived(event: dict[str, object]) -> None:
    t = CallTracker()
    t.track("cb-1")
    t.feed(event, 1.0)
    board = QueueBoard()
    board.load([event, _member("q1", "a2")])
    board.feed(event)
    assert "PJSIP/a2" in board.free("q1", now=1.0)
    assert capacity(board, "q1", {}, 1.0) >= 1


def test_agent_in_call_is_the_member_with_an_answered_leg_of_the_same_call() -> None:
    board = QueueBoard()
    board.load([_member("q1", "agent1"), _member("q1", "agent2")])
    channels = [
        {"Uniqueid": "cb-1", "Linkedid": "cb-1", "Channel": "PJSIP/trunk-00000001"},
        {
            "Uniqueid": "9.2",
            "Linkedid": "cb-1",
            "Channel": "PJSIP/agent2-00000002",
            "ChannelState": "6",
        },
        {
            "Uniqueid": "9.3",
            "Linkedid": "cb-9",
            "Channel": "PJSIP/agent1-00000003",
            "ChannelState": "6",
        },
    ]
    assert agent_in_call("cb-1", channels, board) == ("agent2", "PJSIP/agent2")
    assert agent_in_call("cb-9", channels[:1], board) is None
    ringing = [dict(channels[1], ChannelState="5")]
    assert agent_in_call("cb-1", ringing, board) is None


def test_a_refused_originate_ends_the_call_as_failed_keeping_asterisks_reason() -> None:
    t = CallTracker()
    t.track("cb-1")
    t.refused("cb-1", "refused")
    call = t.calls["cb-1"]
    assert call.ended and call.originate_failed and call.settled
    assert classify(call, ivr=False) is CallOutcome.FAILED
    t.track("cb-2")
    t.feed({"Event": "OriginateResponse", "Uniqueid": "cb-2", "Response": "Failure", "Reason": "5"})
    t.refused("cb-2", "refused")
    assert t.calls["cb-2"].originate_reason == "5"  # Asterisk's own reason wins
    assert classify(t.calls["cb-2"], ivr=False) is CallOutcome.BUSY


def test_an_adopted_call_is_followed_from_the_live_channels() -> None:
    t = CallTracker()
    up = t.adopt("cb-1", live=True, up=True, agent=("agent1", "PJSIP/agent1"))
    assert (up.answered, up.agent, up.agent_interface, up.ended) == (
        True,
        "agent1",
        "PJSIP/agent1",
        False,
    )
    gone = t.adopt("cb-2", live=False)
    assert gone.ended and classify(gone, ivr=False) is CallOutcome.LOST
    assert t.feed({"Event": "Hangup", "Uniqueid": "cb-1", "Cause": "16"}) is up


def test_a_call_ended_unseen_settles_as_lost_when_nothing_else_is_known() -> None:
    t = CallTracker()
    t.track("cb-1")
    t.ended_unseen("cb-1")
    assert t.calls["cb-1"].ended
    assert classify(t.calls["cb-1"], ivr=False) is CallOutcome.LOST
