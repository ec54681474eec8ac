"""The shape of an event on the webhook feed.

Every survey transition is one event. Events are created atomically with the
transition by the store's Lua script (gateway/store/surveys.py), so the JSON is built
there; this module names the types and parses an event back.

Event JSON:
    {"id": "<survey_id>:<seq>@<tag>", "type": "survey.delivered", "survey_id": "...",
     "seq": 4, "time": "2026-11-23T10:00:00.123+08:00", "payload": {...}}

`id` names one event forever: the same event re-sent keeps its id, and no other event
ever gets it. `seq` increases by one per survey, so the core system can order and
de-duplicate. The tag (store/lua/store.lua's ``event_id``) is a hash of the survey
record's creation time and of the era of the Redis master it was written on
(keys.ERA): a failover that loses a survey's last events (or its record) makes the
survey's seqs come again, and they come with another tag. Events written before the
tag existed keep their ``<survey_id>:<seq>``; ``reply.unmatched`` events (no survey)
are ``unmatched:<n>@<tag>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Survey lifecycle (DESIGN.md): each name is "survey.<new state>".
SURVEY_ACCEPTED = "survey.accepted"
SURVEY_REJECTED = "survey.rejected"
SURVEY_DEFERRED = "survey.deferred"
SURVEY_QUEUED = "survey.queued"
SURVEY_SUBMITTED = "survey.submitted"
SURVEY_DELIVERED = "survey.delivered"
SURVEY_UNDELIVERABLE = "survey.undeliverable"
SURVEY_REPLIED = "survey.replied"
SURVEY_CALLBACK_PENDING = "survey.callback_pending"
SURVEY_NO_REPLY = "survey.no_reply"
SURVEY_CLOSED = "survey.closed"
# A later reply inside the reply window changed the citizen's rating (not a transition
# by itself: survey.callback_pending or survey.closed follows when the course changes).
SURVEY_REVISED = "survey.revised"
# A reply that could not be read as a rating was answered by the one clarifying SMS
# ([surveys] clarify_template); its answer comes back as a reply. sms.clarify_failed:
# the SMS center refused it (the survey is called back, reason "unclear", when
# [surveys] callback_on lists unclear).
SURVEY_CLARIFY_SENT = "survey.clarify_sent"
SMS_CLARIFY_FAILED = "sms.clarify_failed"
# A callback waiting for its first call was cancelled (the citizen revised to satisfied).
CALLBACK_CANCELLED = "callback.cancelled"
# Facts that are not transitions but belong on the feed.
SMS_PART_FAILED = "sms.part_failed"
SMS_RESENT = "sms.resent"
# A final receipt for a survey already past sending (the reply came first).
SMS_RECEIPT = "sms.receipt"
CITIZEN_OPTED_OUT = "citizen.opted_out"
REPLY_UNMATCHED = "reply.unmatched"
# The ASR worker (asr/worker.py): a call's transcript, or why there is none.
TRANSCRIPT = "transcript"
TRANSCRIPT_FAILED = "transcript.failed"
# An agent's presence changed (gateway/dialer/agents.py): belongs to no survey
# (survey_id "", id "agent:<seq>"); payload {agent, state, from, since, units, ...}.
AGENT_STATE = "agent.state"
# Recording retention (recordings/retention.py) deleted a call's recording.
RECORDING_DELETED = "recording.deleted"


@dataclass(frozen=True)
class Event:
    """One event as stored on the outbox stream and sent on the feed."""

    id: str
    type: str
    survey_id: str
    seq: int
    time: str
    payload: dict[str, Any]

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        """Parse an event JSON string (as stored in Redis)."""
        d = json.loads(raw)
        return cls(
            id=str(d["id"]),
            type=str(d["type"]),
            survey_id=str(d.get("survey_id") or ""),
            seq=int(d["seq"]),
            time=str(d["time"]),
            payload=dict(d.get("payload") or {}),
        )

    def to_json(self) -> str:
        """Serialise the event (compact, keys in a fixed order)."""
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "survey_id": self.survey_id,
                "seq": self.seq,
                "time": self.time,
                "payload": self.payload,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
