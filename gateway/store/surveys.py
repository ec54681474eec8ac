"""The survey store: Redis, through the function library (lua/store.lua).

Every write that changes a survey goes through one Redis function, which checks the
transition table (generated from gateway/store/states.py, see library.py), changes the
state and appends the event to the survey's history and to the outbox stream —
atomically. Reads are plain Redis commands.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from gateway.store import keys, library
from gateway.store.coalesce import Coalescer
from gateway.store.events import Event
from gateway.store.replication import Replication


def iso(ts: float, tz: ZoneInfo) -> str:
    """An event time: ISO 8601 with milliseconds and the site's UTC offset."""
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class IntakeResult:
    """What intake did with one survey."""

    status: str  # "created" | "existing"
    state: str
    reason: str


@dataclass(frozen=True)
class ReplyCourse:
    """How `Store.reply` moves a survey on (sms/inbound.py decides it from the reading
    and [surveys] callback_on / clarify_template)."""

    course: str  # "rated": the rating decides; "unclear": worth one clarifying SMS; "none"
    callback: bool  # a rated reply goes to the callback queue (else the survey closes)
    clarify_window_s: float  # how long the answer to a clarifying SMS is awaited; 0: none
    unclear_callback: bool  # still no rating after the clarifying SMS: called back


@dataclass(frozen=True)
class SendJob:
    """A survey the sender may send now."""

    survey_id: str
    attempt: int
    ext: str
    fields: dict[str, str]


class Store:
    """Typed access to the Redis function library and the survey records."""

    def __init__(
        self, redis: aioredis.Redis, tz: ZoneInfo, *, replication: Replication | None = None
    ) -> None:
        """``replication``: every write waits for replicas before its caller goes on
        (gateway/store/replication.py); None: it does not."""
        self.redis = redis
        self.tz = tz
        self.commands = Coalescer(redis, replication=replication)

    async def load(self) -> None:
        """Load (or replace) the function library; call once at start."""
        await library.load(self.redis)

    def _now(self) -> tuple[float, str]:
        ts = time.time()
        return ts, iso(ts, self.tz)

    async def _fcall(self, name: str, *args: str | int | float) -> Any:
        return await self.commands.fcall(name, *args)

    # --- intake -----------------------------------------------------------------------
    async def intake(
        self,
        survey_id: str,
        phone: str,
        fields: dict[str, str],
        *,
        cap_s: float,
        defer_at: float | None,
        ttl_s: float,
        accepted_payload: dict[str, Any],
    ) -> IntakeResult:
        """Create the survey unless it exists; reject, defer or queue it."""
        _, now_iso = self._now()
        release_iso = iso(defer_at, self.tz) if defer_at is not None else ""
        r = await self._fcall(
            "minyi_intake",
            survey_id,
            phone,
            json.dumps(fields, ensure_ascii=False),
            now_iso,
            cap_s,
            "" if defer_at is None else f"{defer_at:.3f}",
            int(ttl_s),
            json_text(accepted_payload),
            release_iso,
        )
        return IntakeResult(status=r[0], state=r[1], reason=r[2] if len(r) > 2 else "")

    async def release_due(self, limit: int = 500) -> int:
        """Move deferred surveys whose release time has passed to the send queue."""
        now_ts, now_iso = self._now()
        return int(await self._fcall("minyi_release", f"{now_ts:.3f}", now_iso, limit))

    # --- sending ------------------------------------------------------------------------
    async def send_begin(
        self, survey_id: str, ext_digits: int, ext_ttl_s: float, reply_window_s: float
    ) -> SendJob | None:
        """Take a queued survey for sending (from now on replies from the number match
        it); None when it is not (or no longer) sendable."""
        now_ts, now_iso = self._now()
        r = await self._fcall(
            "minyi_send_begin",
            survey_id,
            now_iso,
            ext_digits,
            int(ext_ttl_s),
            f"{now_ts:.3f}",
            reply_window_s,
        )
        if r[0] != "send":
            return None
        flat = r[3:]
        fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        return SendJob(survey_id=survey_id, attempt=int(r[1]), ext=r[2], fields=fields)

    async def parts_going_out(self, parts: Sequence[tuple[str, int]]) -> None:
        """Record that these parts (survey id, part number) may now reach the SMS
        center: after a crash, sending one of them again may duplicate it (``p<n>:out``
        in the survey record, read by the next send_begin)."""
        await asyncio.gather(
            *(
                self.commands.execute("HSET", keys.SURVEY.format(survey_id=sid), f"p{n}:out", 1)
                for sid, n in parts
            )
        )

    async def part_submitted(
        self,
        survey_id: str,
        index: int,
        total: int,
        *,
        smsc: str,
        message_id_key: str,
        message_id: str,
        bind: str,
        msgid_ttl_s: float,
        dlr_timeout_s: float,
        reply_window_s: float,
        resent: bool = False,
    ) -> str:
        """Store a submit_sm_resp; applies a receipt that was held waiting for it.
        `resent`: the part went out more than once (a dropped link): reported."""
        now_ts, now_iso = self._now()
        return str(
            await self._fcall(
                "minyi_part_submitted",
                survey_id,
                index,
                total,
                keys.MSGID.format(smsc=smsc, message_id=message_id_key),
                message_id,
                bind,
                now_iso,
                f"{now_ts:.3f}",
                int(msgid_ttl_s),
                keys.DLR_HELD.format(smsc=smsc, message_id=message_id_key),
                f"{now_ts + dlr_timeout_s:.3f}",
                f"{now_ts + reply_window_s:.3f}",
                "1" if resent else "0",
            )
        )

    async def part_failed(
        self, survey_id: str, index: int, total: int, reason: str, status: int
    ) -> str:
        """Record a part the SMS center refused for good; the survey is undeliverable."""
        _, now_iso = self._now()
        return str(
            await self._fcall(
                "minyi_part_failed", survey_id, index, total, reason, str(status), now_iso
            )
        )

    # --- receiving ----------------------------------------------------------------------
    async def receipt(
        self, smsc: str, message_id_key: str, receipt: dict[str, Any], held_ttl_s: float
    ) -> tuple[str, str]:
        """Apply a delivery receipt, or hold it until its submit_sm_resp is stored."""
        now_ts, now_iso = self._now()
        r = await self._fcall(
            "minyi_receipt",
            keys.MSGID.format(smsc=smsc, message_id=message_id_key),
            keys.DLR_HELD.format(smsc=smsc, message_id=message_id_key),
            json_text(receipt),
            now_iso,
            f"{now_ts:.3f}",
            int(held_ttl_s),
        )
        return str(r[0]), str(r[1])

    async def mo_part(
        self, key: str, part: int, text: str, total: int, ttl_s: float
    ) -> dict[int, str] | None:
        """Store one part of a long MO message; all parts once the last one arrived."""
        now_ts, _ = self._now()
        r = await self._fcall("minyi_mo_part", key, part, text, total, int(ttl_s), f"{now_ts:.3f}")
        if r[0] != "complete":
            return None
        flat = r[1:]
        return {int(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}

    async def mo_flush(
        self, older_than_s: float, limit: int = 100
    ) -> list[tuple[str, dict[int, str]]]:
        """Take incomplete MO part sets whose missing parts are overdue."""
        now_ts, _ = self._now()
        r = await self._fcall("minyi_mo_flush", f"{now_ts - older_than_s:.3f}", limit)
        out: list[tuple[str, dict[int, str]]] = []
        i = 0
        while i < len(r):
            key, n = r[i], int(r[i + 1])
            flat = r[i + 2 : i + 2 + n]
            out.append((key, {int(flat[j]): flat[j + 1] for j in range(0, n, 2)}))
            i += 2 + n
        return out

    async def find_open_survey(
        self, phone: str, ext: str, reply_window_s: float
    ) -> tuple[str | None, str]:
        """The survey a reply from `phone` to extension `ext` belongs to, and how it was
        matched: by extension code first (exact), else the number's most recent survey
        still open within the reply window."""
        if ext:
            sid = await self.commands.execute("GET", keys.EXTCODE.format(code=ext, phone=phone))
            if sid:
                return str(sid), "extension_code"
        now_ts, _ = self._now()
        found = await self.commands.execute(
            "ZREVRANGEBYSCORE",
            keys.PHONE_OPEN.format(phone=phone),
            "+inf",
            f"{now_ts - reply_window_s:.3f}",
            "LIMIT",
            0,
            1,
        )
        if found:
            return str(found[0]), "latest_open"
        return None, ""

    async def reply(
        self,
        survey_id: str,
        payload: dict[str, Any],
        rating: str,
        opt_out: bool,
        phone: str,
        course: ReplyCourse | None = None,
    ) -> tuple[str, str]:
        """Attach an understood reply; moves the survey on by its rating. Returns the
        outcome and the state before: "replied", "callback_pending", "closed",
        "clarify" (a clarifying SMS was queued), "late" (the survey takes no reply now:
        the caller keeps it as unmatched) or, for a correction inside the reply window,
        "revised:<state now>". Without `course` a rating decides and only unsatisfied
        calls back."""
        _, now_iso = self._now()
        extra: tuple[str, ...] = ()
        if course is not None:
            extra = (
                course.course,
                "1" if course.callback else "0",
                f"{course.clarify_window_s:.0f}",
                "1" if course.unclear_callback else "0",
            )
        r = await self._fcall(
            "minyi_reply",
            survey_id,
            now_iso,
            json_text(payload),
            rating,
            "1" if opt_out else "0",
            phone,
            *extra,
        )
        return str(r[0]), str(r[1])

    async def clarify_begin(self, survey_id: str) -> SendJob | None:
        """Take a queued clarifying SMS for sending; None when the survey moved on (a
        rating came meanwhile) or it went already."""
        _, now_iso = self._now()
        r = await self._fcall("minyi_clarify_begin", survey_id, now_iso)
        if r[0] != "send":
            return None
        flat = r[3:]
        fields = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        return SendJob(survey_id=survey_id, attempt=int(r[1]), ext=r[2], fields=fields)

    async def clarify_sent(
        self, survey_id: str, parts: int, bind: str, message_ids: Sequence[str]
    ) -> str:
        """The SMS center took every part of the clarifying SMS: survey.clarify_sent."""
        _, now_iso = self._now()
        return str(
            await self._fcall(
                "minyi_clarify_sent", survey_id, now_iso, parts, bind, json_text(list(message_ids))
            )
        )

    async def clarify_failed(self, survey_id: str, reason: str, unclear_callback: bool) -> str:
        """The clarifying SMS cannot go out; with `unclear_callback` the survey is called
        back, reason "unclear"."""
        _, now_iso = self._now()
        return str(
            await self._fcall(
                "minyi_clarify_failed", survey_id, now_iso, reason, "1" if unclear_callback else "0"
            )
        )

    async def unmatched(self, payload: dict[str, Any], phone: str, opt_out: bool) -> int:
        """Keep and report a reply that matched no survey."""
        _, now_iso = self._now()
        return int(
            await self._fcall(
                "minyi_unmatched", now_iso, json_text(payload), phone, "1" if opt_out else "0"
            )
        )

    async def sweep(
        self,
        limit: int = 500,
        orphan_after_s: float = 1800.0,
        *,
        no_reply_ivr: bool = False,
        unclear_callback: bool = False,
    ) -> int:
        """Close reply windows and receipt deadlines that have passed; move receipts
        held longer than `orphan_after_s` (their submit_sm_resp never came) to the
        orphan stream. With `no_reply_ivr`, a survey left without a reply is queued for
        the automated IVR survey call; with `unclear_callback`, one asked again by a
        clarifying SMS and still without a rating is called back (reason "unclear")."""
        now_ts, now_iso = self._now()
        return int(
            await self._fcall(
                "minyi_sweep",
                f"{now_ts:.3f}",
                now_iso,
                limit,
                f"{now_ts - orphan_after_s:.3f}",
                "1" if no_reply_ivr else "0",
                "1" if unclear_callback else "0",
            )
        )

    # --- reads --------------------------------------------------------------------------
    async def get_survey(self, survey_id: str) -> dict[str, str] | None:
        """The survey record, or None."""
        fields = await self.redis.hgetall(keys.SURVEY.format(survey_id=survey_id))
        return {str(k): str(v) for k, v in fields.items()} if fields else None

    async def events(self, survey_id: str) -> list[Event]:
        """The survey's event history, oldest first."""
        raw = await self.redis.lrange(keys.SURVEY_EVENTS.format(survey_id=survey_id), 0, -1)
        return [Event.from_json(r) for r in raw]

    async def is_opted_out(self, phone: str) -> bool:
        """Whether the number has opted out (TD/退订)."""
        return bool(await self.redis.sismember(keys.OPTOUT, phone))

    async def stats(self) -> dict[str, int]:
        """The counters kept in Redis (events by type, resends, held receipts...)."""
        raw = await self.redis.hgetall(keys.STATS)
        return {str(k): int(v) for k, v in raw.items()}


def json_text(obj: Any) -> str:
    """Compact JSON as the function library stores it (UTF-8 text, no spaces)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
