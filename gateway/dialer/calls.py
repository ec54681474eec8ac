"""What the AMI events say about our calls and the agents: pure, no I/O.

- :class:`CallTracker` correlates events with the calls the dialer originated, by
  ``Uniqueid``/``Linkedid`` (the dialer sets ``ChannelId``, so the citizen's channel has
  ``Uniqueid`` = ``Linkedid`` = the callback id and the agent's leg shares the Linkedid).
- :func:`classify` turns a finished call into one :class:`CallOutcome`.
- :class:`QueueBoard` keeps each unit queue's members and their device state (from
  ``QueueStatus`` after every (re)connect and ``QueueMember*`` events in between) and
  answers the pacing question: how many citizens may be dialled for this queue now.

Hangup causes are Q.850 (``Cause`` on Hangup events):
https://docs.asterisk.org/Configuration/Miscellaneous/Hangup-Cause-Mappings/
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Event = Mapping[str, Any]

# Queue member Status values (enum ast_device_state).
DEVICE_NOT_INUSE = "1"

_CAUSE_BUSY = frozenset({"17"})
_CAUSE_NO_ANSWER = frozenset({"18", "19"})
_CAUSE_REJECTED = frozenset({"21"})
_CAUSE_INVALID_NUMBER = frozenset({"1", "3", "22", "28"})
# OriginateResponse Reason (enum ast_control_frame_type): 3 ring timeout, 5 busy,
# 8 congestion. Busy calls over PJSIP report 0 with hangup cause 17, so the cause
# comes first.
_REASON_NO_ANSWER = "3"
_REASON_BUSY = "5"


class CallOutcome(enum.StrEnum):
    """How one call attempt ended."""

    CONNECTED = "connected"  # answered and talked to an agent
    NO_AGENT = "no_agent"  # answered, no agent took the call in time
    ABANDONED = "abandoned"  # answered, hung up before reaching an agent
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"  # network or trunk failure, refused Originate
    IVR_RATED = "ivr_rated"  # automated survey: the citizen pressed 1, 2 or 3
    IVR_NO_INPUT = "ivr_no_input"  # automated survey answered, no valid digit
    LOST = "lost"  # ended while the gateway was not listening: result unknown


REACHED = frozenset({CallOutcome.CONNECTED, CallOutcome.IVR_RATED})


@dataclass
class TrackedCall:
    """What the events said so far about one originated call."""

    channel_id: str
    answered: bool = False
    ended: bool = False
    hangup_cause: str | None = None
    originate_reason: str | None = None
    originate_failed: bool = False
    agent: str | None = None
    agent_interface: str | None = None
    answered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    channels: set[str] = field(default_factory=set)
    user_events: list[str] = field(default_factory=list)
    ended_event: dict[str, str] = field(default_factory=dict)
    ivr_result: str | None = None
    reason_recording: str | None = None

    @property
    def settled(self) -> bool:
        """Everything about the outcome is known: the citizen's channel is gone and
        Asterisk gave its Originate verdict (or the call was answered, which is one)."""
        return self.ended and (self.answered or self.originate_reason is not None)


class CallTracker:
    """Correlate AMI events with the calls we originated, by Uniqueid/Linkedid."""

    def __init__(self) -> None:
        self.calls: dict[str, TrackedCall] = {}

    def track(self, channel_id: str) -> TrackedCall:
        """Start following a call (before sending its Originate)."""
        return self.calls.setdefault(channel_id, TrackedCall(channel_id))

    def forget(self, channel_id: str) -> None:
        """Stop following a call whose result is stored."""
        self.calls.pop(channel_id, None)

    def adopt(
        self, channel_id: str, *, live: bool, up: bool = False, agent: tuple[str, str] | None = None
    ) -> TrackedCall:
        """Follow a call again after a restart or a takeover, from the live channels:
        ``live`` (its channel still exists), ``up`` (answered) and the agent found on
        its other leg (member name, interface). A call that is not live ended unseen."""
        call = self.track(channel_id)
        if not live:
            call.ended = True
            return call
        if up:
            call.answered = True
        if agent is not None:
            call.agent, call.agent_interface = agent
        return call

    def refused(self, channel_id: str, reason: str) -> None:
        """The Originate was refused (or could not even be built): the call is over
        before it began; ``reason`` stands for Asterisk's when it gave none."""
        call = self.track(channel_id)
        call.originate_failed = True
        call.originate_reason = call.originate_reason or reason
        call.ended = True

    def ended_unseen(self, channel_id: str) -> None:
        """The call is over although no Hangup was seen for it (settled after a grace
        period, or gone while we were not listening)."""
        self.track(channel_id).ended = True

    def feed(self, event: Event, now: float = 0.0) -> TrackedCall | None:
        """Apply one event; return the call it belongs to, or None if it is not ours."""
        uid, linked = event.get("Uniqueid"), event.get("Linkedid")
        call = self.calls.get(uid) if isinstance(uid, str) else None
        if call is None and isinstance(linked, str):
            call = self.calls.get(linked)
        if call is None:
            return None
        name = event.get("Event")
        own = uid == call.channel_id  # the citizen's channel, not the agent's leg
        if isinstance(event.get("Channel"), str):
            call.channels.add(event["Channel"])
        if name == "OriginateResponse":
            call.originate_reason = str(event.get("Reason", ""))
            if event.get("Response") == "Success":
                _answered(call, now)
            else:
                call.originate_failed = True
        elif name == "Newstate" and own and event.get("ChannelStateDesc") == "Up":
            _answered(call, now)
        elif name == "AgentConnect":
            call.agent = event.get("MemberName")
            call.agent_interface = event.get("Interface")
            call.connected_at = call.connected_at or now
        elif name == "UserEvent" and isinstance(event.get("UserEvent"), str):
            _user_event(call, event, now)
        elif name == "Hangup" and own:
            call.ended = True
            call.ended_at = now
            call.hangup_cause = event.get("Cause")
        return call

    def reconcile(self, live_channels: list[Event]) -> list[TrackedCall]:
        """After a reconnect: calls still followed that have no live channel any more.

        They ended while we were not listening (no Hangup was seen); the caller decides
        what that means for each (the dialer stores them as :attr:`CallOutcome.LOST`, never
        redials blindly). Calls with a live channel keep being followed.
        """
        live = {c.get("Uniqueid") for c in live_channels} | {
            c.get("Linkedid") for c in live_channels
        }
        gone = [c for c in self.calls.values() if not c.ended and c.channel_id not in live]
        for call in gone:
            call.ended = True
        return gone


def _answered(call: TrackedCall, now: float) -> None:
    call.answered = True
    call.answered_at = call.answered_at or now


def _user_event(call: TrackedCall, event: Event, now: float) -> None:
    name = str(event["UserEvent"])
    call.user_events.append(name)
    if name in ("MinyiCallbackAnswered", "MinyiIvrAnswered"):
        _answered(call, now)
    elif name == "MinyiIvrResult":
        call.ivr_result = str(event.get("Result", "")) or None
        call.reason_recording = str(event.get("ReasonRecording", "")) or None
    elif name in ("MinyiCallbackEnded", "MinyiIvrEnded"):
        call.ended_event = {str(k): str(v) for k, v in event.items()}
        # The dialplan's own word on who talked to the citizen (MEMBERNAME): the one
        # source left for a call whose AgentConnect was missed (AMI down, restart).
        if call.agent is None and call.ended_event.get("Agent"):
            call.agent = call.ended_event["Agent"]


def classify(call: TrackedCall, ivr: bool) -> CallOutcome:
    """The outcome of a finished (or vanished) call."""
    if ivr and call.ivr_result in ("1", "2", "3"):
        return CallOutcome.IVR_RATED
    if call.agent is not None:
        return CallOutcome.CONNECTED
    if call.answered:
        if ivr:
            return CallOutcome.IVR_NO_INPUT
        if call.ended_event.get("Stage") == "no_agent":
            return CallOutcome.NO_AGENT
        if not call.ended_event and call.hangup_cause is None:
            return CallOutcome.LOST
        return CallOutcome.ABANDONED
    cause = call.hangup_cause or ""
    if cause in _CAUSE_BUSY or call.originate_reason == _REASON_BUSY:
        return CallOutcome.BUSY
    if cause in _CAUSE_REJECTED:
        return CallOutcome.REJECTED
    if cause in _CAUSE_INVALID_NUMBER:
        return CallOutcome.INVALID_NUMBER
    if cause in _CAUSE_NO_ANSWER or call.originate_reason == _REASON_NO_ANSWER:
        return CallOutcome.NO_ANSWER
    if call.originate_reason is None and call.hangup_cause is None:
        return CallOutcome.LOST
    return CallOutcome.FAILED


# --- agents -------------------------------------------------------------------------------
@dataclass
class Member:
    """One agent in one queue, as AMI last described it."""

    queue: str
    interface: str
    name: str
    status: str
    paused: bool
    in_call: bool
    last_call: float  # unix time the member's last queue call ended, 0 = never
    paused_reason: str = ""


class QueueBoard:
    """Queue members and their state; the dialer's pacing (progressive: one citizen
    per free agent, never more calls than free agents)."""

    def __init__(self, wrapup_s: float = 0.0) -> None:
        self.wrapup_s = wrapup_s
        self.members: dict[tuple[str, str], Member] = {}
        # Agents in our calls (interface -> the calls' ids), from AgentConnect to the
        # call's end: in a call whatever a member status event says (those arrive late).
        self.held: dict[str, set[str]] = {}

    def load(self, queue_events: Iterable[Event]) -> None:
        """Replace everything with a QueueStatus answer (after every (re)connect)."""
        self.members.clear()
        for event in queue_events:
            if event.get("Event") == "QueueMember":
                self._put(event, interface_key="StateInterface")

    def feed(self, event: Event) -> None:
        """Apply a QueueMemberStatus/Added/Removed/Pause event."""
        name = event.get("Event")
        if name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"):
            self._put(event, interface_key="StateInterface")
        elif name == "QueueMemberRemoved":
            key = (str(event.get("Queue", "")), _interface(event, "StateInterface"))
            self.members.pop(key, None)

    def busy(self, interface: str, call_id: str) -> None:
        """An agent took one of our calls: in a call in every queue until
        :meth:`released`, whatever the order of the events. AgentConnect may arrive
        before the member's status change, and on a cold Asterisk a "not in use" status
        has been seen to arrive after it and stay the last word for the whole call."""
        self.held.setdefault(interface, set()).add(call_id)

    def released(self, interface: str, call_id: str) -> None:
        """The call ``call_id`` the agent took has ended: with no other call of ours,
        the agent's state is again what AMI says."""
        calls = self.held.get(interface)
        if calls is not None:
            calls.discard(call_id)
            if not calls:
                del self.held[interface]

    def is_free(self, member: Member, now: float) -> bool:
        """The member could take a call right now: its device is reachable and idle
        ("Not in use": an unregistered or unqualified phone is unavailable), not
        paused, not in a call, and its wrap-up time is over."""
        return (
            member.status == DEVICE_NOT_INUSE
            and not member.paused
            and not member.in_call
            and member.interface not in self.held
            and now - member.last_call >= self.wrapup_s
        )

    def in_call(self, member: Member) -> bool:
        """In a call: as Asterisk last said, or in one of ours that has not ended."""
        return member.in_call or member.interface in self.held

    def free(self, queue: str, now: float) -> set[str]:
        """Interfaces of the queue's members that could take a call right now."""
        return {
            m.interface for m in self.members.values() if m.queue == queue and self.is_free(m, now)
        }

    def queues(self) -> set[str]:
        return {m.queue for m in self.members.values()}

    def _put(self, event: Event, interface_key: str) -> None:
        queue = str(event.get("Queue", ""))
        interface = _interface(event, interface_key)
        if not queue or not interface:
            return
        try:
            last_call = float(event.get("LastCall") or 0)
        except ValueError:
            last_call = 0.0
        self.members[(queue, interface)] = Member(
            queue=queue,
            interface=interface,
            name=str(event.get("MemberName") or event.get("Name") or interface),
            status=str(event.get("Status", "")),
            paused=str(event.get("Paused", "0")) == "1",
            in_call=str(event.get("InCall", "0")) == "1",
            last_call=last_call,
            paused_reason=str(event.get("PausedReason") or ""),
        )


def _interface(event: Event, key: str) -> str:
    value = event.get(key) or event.get("Interface") or event.get("Location") or ""
    return str(value)


def capacity(board: QueueBoard, queue: str, pending: Mapping[str, int], now: float) -> int:
    """How many more citizens to dial for ``queue``: its free agents minus the calls
    already dialled for it and not yet with an agent; and, across queues sharing agents,
    never more waiting calls than free agents overall."""
    free = board.free(queue, now)
    own = len(free) - pending.get(queue, 0)
    every_free: set[str] = set()
    for q in board.queues():
        every_free |= board.free(q, now)
    overall = len(every_free) - sum(pending.values())
    return max(0, min(own, overall))


def agent_in_call(
    callback_id: str, channels: Iterable[Event], board: QueueBoard
) -> tuple[str, str] | None:
    """(agent name, interface) of a live call found after a reconnect or a restart: the
    queue member whose phone has an answered channel in the same call (same Linkedid)."""
    members = {m.interface: m.name for m in board.members.values()}
    for c in channels:
        if c.get("Linkedid") != callback_id or c.get("Uniqueid") == callback_id:
            continue
        interface = str(c.get("Channel", "")).rsplit("-", 1)[0]
        if interface in members and c.get("ChannelState") == "6":  # Up
            return members[interface], interface
    return None
