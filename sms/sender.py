"""The sender worker: surveys from the send queue to their bind (SMPP submit_sm or
CMPP_SUBMIT, `sms.binds`), and the answers back into the store.

Each survey goes through one bind: the first of `[[sms.routes]]` that matches its
number and unit names the candidates (else `default_binds`, else every sending bind),
and `SmsClient.choose` takes the one with the most room. The sender number is that
bind's (a CMPP bind's `src_id`, or `[sms] source_addr`) plus the extension code.

A queue entry is acknowledged only when every part of its survey has a final answer
stored (accepted with a message id, or refused for good). A crash in between leaves
the entry pending; the next start (or another process, after it has been idle long
enough) sends again the parts that have no message id yet — at most the in-flight
window, and every such resend is counted (`sms.resent` on the feed).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from datetime import datetime

import redis.asyncio as aioredis

from gateway import lifecycle, logs
from gateway.config import Settings
from gateway.privacy import mask_phone
from gateway.store import keys, streams
from gateway.store.surveys import SendJob, Store
from sms.binds import SmsClient, SubmitOutcome
from sms.dlr import normalise_message_id
from sms.routing import candidates
from sms.smpp.constants import REGISTERED_DELIVERY_ALWAYS, REGISTERED_DELIVERY_NONE
from sms.smpp.window import Part
from sms.templates import Template
from sms.text import segment

log = logs.logger(__name__)

# Pending entries idle this long belong to a consumer that died; take them over.
CLAIM_IDLE_MS = 60_000
# Message-id mappings outlive the longest receipt wait by a day.
MSGID_EXTRA_TTL_S = 86_400


class Sender:
    """Reads the send queue and drives the binds' client."""

    def __init__(
        self,
        redis: aioredis.Redis,
        store: Store,
        client: SmsClient,
        settings: Settings,
        templates: Mapping[str, Template],
        *,
        consumer: str,
    ) -> None:
        self.redis = redis
        self.store = store
        self.client = client
        self.settings = settings
        self.templates = templates
        self.consumer = consumer
        self.binds = {b.name: b for b in settings.sms.binds}
        self._inflight: dict[str, asyncio.Task[None]] = {}  # by queue entry id
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        # Surveys being worked on (Redis round trips before and after their submit_sm);
        # the binds' windows, not this, bound what is outstanding at the SMS center.
        self.max_inflight = max(1000, client.capacity() * 4)
        self.sent_surveys = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; then let the surveys in flight finish. Redis
        outages are waited out (what is in flight is re-taken from the pending list
        afterwards)."""
        self._stopping = stop
        await lifecycle.outlast(self._run_once, stop, what="sms sender", log=log)
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _run_once(self) -> None:
        await streams.ensure_group(self.redis, keys.SMS_QUEUE, keys.SMS_GROUP)
        # Our own unacknowledged entries first (a restart after a crash).
        for entry_id, fields in await streams.pending(
            self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer
        ):
            await self._take(entry_id, fields)
        loops = 0
        while not self._stopping.is_set():
            if len(self._inflight) >= self.max_inflight:
                self._room.clear()
                await self._wait_room()
                continue
            await self._read()
            loops += 1
            if loops % 50 == 0:
                await self._claim_abandoned()

    async def _wait_room(self) -> None:
        stop = asyncio.create_task(self._stopping.wait())
        room = asyncio.create_task(self._room.wait())
        await asyncio.wait({stop, room}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        room.cancel()

    async def _read(self) -> None:
        count = max(1, min(500, self.max_inflight - len(self._inflight)))
        for entry_id, fields in await streams.read(
            self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer, count=count
        ):
            await self._take(entry_id, fields)

    async def _take(self, entry_id: str, fields: Mapping[str, str] | None) -> None:
        if entry_id in self._inflight:
            # XAUTOCLAIM hands back our own entries too once they have been in flight
            # longer than the idle time (long throttling): already being sent here.
            return
        if not fields:  # trimmed or deleted meanwhile
            await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
            return
        self._spawn(entry_id, str(fields["sid"]))

    async def _claim_abandoned(self) -> None:
        for entry_id, fields in await streams.claim_abandoned(
            self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer, CLAIM_IDLE_MS
        ):
            if fields:
                log.warning("sms took over abandoned survey=%s", fields["sid"])
            await self._take(entry_id, fields)

    def _spawn(self, entry_id: str, sid: str) -> None:
        task = asyncio.create_task(self._send_survey(entry_id, sid), name=entry_id)
        self._inflight[entry_id] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task.get_name(), None)
        self._room.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("sms send task failed: %r", task.exception())

    async def _send_survey(self, entry_id: str, sid: str) -> None:
        s = self.settings
        job = await self.store.send_begin(
            sid,
            s.sms.extension_digits,
            s.surveys.reply_window_s + s.surveys.dlr_timeout_s,
            s.surveys.reply_window_s,
        )
        if job is None:
            await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
            return
        text = self._render(job)
        if text is None:
            await self.store.part_failed(sid, 1, 1, "template_missing", -1)
            await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
            return
        ref16 = bool(s.sms.ref16)
        ref = zlib.crc32(f"{sid}/{job.attempt}".encode()) & (0xFFFF if ref16 else 0xFF)
        segments = segment(text, ref, ref16=ref16)
        phone = job.fields["phone"]
        bind = self.client.choose(candidates(s.sms, phone, job.fields.get("unit_code", "")))
        source = s.sms.source_of(bind) + job.ext
        parts = []
        for seg in segments:
            if f"p{seg.index}:mid" in job.fields:
                continue  # accepted before a crash: never send it twice
            parts.append(
                Part(
                    survey_id=sid,
                    index=seg.index,
                    total=seg.total,
                    source=source,
                    dest=phone,
                    short_message=seg.short_message,
                    esm_class=seg.esm_class,
                    data_coding=seg.data_coding,
                    text=seg.text,
                    registered_delivery=(
                        REGISTERED_DELIVERY_ALWAYS
                        if s.sms.registered_delivery
                        else REGISTERED_DELIVERY_NONE
                    ),
                )
            )
        if job.attempt > 1:
            log.warning(
                "sms resending survey=%s to=%s attempt=%d parts=%d",
                sid,
                mask_phone(phone),
                job.attempt,
                len(parts),
            )
        await asyncio.gather(*(self._one_part(p, bind) for p in parts))
        await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
        self.sent_surveys += 1

    async def _one_part(self, part: Part, bind: str) -> None:
        outcome: SubmitOutcome = await self.client.submit(part, bind)
        try:
            await self._store_outcome(part, outcome)
        finally:
            self.client.stored(part)

    async def _store_outcome(self, part: Part, outcome: SubmitOutcome) -> None:
        s = self.settings
        if outcome.status == 0:
            bind = self.binds[outcome.bind]
            await self.store.part_submitted(
                part.survey_id,
                part.index,
                part.total,
                smsc=outcome.smsc,
                message_id_key=normalise_message_id(outcome.message_id, bind.submit_id_base),
                message_id=outcome.message_id,
                bind=outcome.bind,
                msgid_ttl_s=s.surveys.dlr_timeout_s + MSGID_EXTRA_TTL_S,
                dlr_timeout_s=s.surveys.dlr_timeout_s,
                reply_window_s=s.surveys.reply_window_s,
                resent=outcome.resent,
            )
        else:
            reason = outcome.reason
            log.warning(
                "sms refused survey=%s part=%d/%d status=%s",
                part.survey_id,
                part.index,
                part.total,
                reason,
            )
            await self.store.part_failed(
                part.survey_id, part.index, part.total, reason, outcome.status
            )

    def _render(self, job: SendJob) -> str | None:
        f = job.fields
        template = self.templates.get(f.get("template", "default"))
        if template is None:
            return None
        s = self.settings.surveys
        occurred = f.get("occurred_at", "")
        try:
            when = datetime.fromisoformat(occurred).astimezone(s.timezone)
            date, clock = f"{when.month}月{when.day}日", f"{when.hour:02d}:{when.minute:02d}"
        except ValueError:
            date, clock = "", ""
        values = {
            "signature": self.settings.sms.signature,
            "service": s.service_names.get(f.get("service_type", ""), f.get("service_type", "")),
            "unit_name": s.unit_names.get(f.get("unit_code", ""), ""),
            "date": date,
            "time": clock,
            "officer": f.get("officer_id", ""),
        }
        return template.render(values)
