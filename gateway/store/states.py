"""The survey state machine: every allowed transition, in one table (h11 style).

Everything that affects a survey's state lives in this file. The store's Lua
functions enforce the same table atomically (the allowed "from" states are passed
to them from here), so a late or duplicate message can never move a survey back.
"""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """Where a survey is in its life (DESIGN.md, "Survey lifecycle")."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    REPLIED = "replied"
    NO_REPLY = "no_reply"
    CALLBACK_PENDING = "callback_pending"
    CALLING = "calling"
    CALLED = "called"
    TRANSCRIBED = "transcribed"
    UNREACHABLE = "unreachable"
    RECHECK = "recheck"
    CLOSED = "closed"


S = State

# {from: {to, ...}}. A reply may overtake its delivery receipt — even the storing of
# its submit_sm_resp, when a citizen answers within a second — and a receipt may lie
# ("undeliverable" yet the citizen answers), so replies are accepted from every state
# from the moment the SMS is being sent.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.ACCEPTED: frozenset({S.REJECTED, S.DEFERRED, S.QUEUED}),
    S.DEFERRED: frozenset({S.QUEUED, S.REJECTED}),
    S.QUEUED: frozenset({S.SUBMITTED, S.UNDELIVERABLE, S.REJECTED, S.REPLIED}),
    S.SUBMITTED: frozenset({S.DELIVERED, S.UNDELIVERABLE, S.REPLIED, S.NO_REPLY}),
    S.DELIVERED: frozenset({S.REPLIED, S.NO_REPLY}),
    S.UNDELIVERABLE: frozenset({S.REPLIED, S.CLOSED}),
    S.REPLIED: frozenset({S.REPLIED, S.CALLBACK_PENDING, S.CLOSED}),
    S.NO_REPLY: frozenset({S.CALLBACK_PENDING, S.CLOSED}),
    S.CALLBACK_PENDING: frozenset({S.CALLING, S.CLOSED}),
    S.CALLING: frozenset({S.CALLED, S.CALLBACK_PENDING, S.UNREACHABLE}),
    S.CALLED: frozenset({S.TRANSCRIBED, S.CLOSED}),
    S.TRANSCRIBED: frozenset({S.CLOSED}),
    S.UNREACHABLE: frozenset({S.CLOSED, S.RECHECK}),
    # A correction inside the reply window (「1」, then 「说错了，是3，不满意」): a survey the
    # citizen's rating closed goes to the callback queue (store.lua, revise).
    S.CLOSED: frozenset({S.RECHECK, S.CALLBACK_PENDING}),
    S.RECHECK: frozenset({S.CALLBACK_PENDING, S.CALLING, S.CLOSED}),
    S.REJECTED: frozenset(),
}


def sources(target: State) -> frozenset[State]:
    """Every state from which `target` may be entered."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can(current: State, target: State) -> bool:
    """Whether the table allows `current` -> `target`."""
    return target in TRANSITIONS[current]


def event_type(target: State) -> str:
    """The feed event type for entering `target`."""
    return f"survey.{target.value}"
