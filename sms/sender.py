"""The sender worker: surveys from the send queue to their bind (SMPP submit_sm or
CMPP_SUBMIT, `sms.binds`), and the answers back into the store.

Each survey goes through one bind: the first of `[[sms.routes]]` that matches its
number and unit names the candidates (else `default_binds`, else every sending bind),
and `SmsClient.choose` takes the one with the most room. The sender number is that
bind's (a CMPP bind's `src_id`, or `[sms] source_addr`) plus the extension code.

A queue entry is acknowledged only when every part of its survey has a final answer
stored (accepted with a message id, or refused for good). A crash in between leaves
the entry pending; the next start (or another process, after it has been idle long
enough) sends again the parts that have no message id yet. Only a part that had been
handed to a bind may have reached the SMS center — at most the in-flight window — and
the survey records each before it can (``p<n>:out``): sent again, such a part is
reported (`sms.resent` on the feed), the others are not.

A Redis outage is not such a crash: an answer the SMS center gave (a message id, or a
refusal for good) stays in memory, its window slot held, and is stored again with a
growing pause until Redis is back (`_until_stored`), so that nothing that has a message
id is ever sent twice because Redis restarted. While the slots are held no new part
goes out: the window is the bound on what waits in memory.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway import lifecycle, logs
from gateway.config import Settings
from gateway.privacy import mask_phone
from gateway.store import keys, library, streams
from gateway.store.surveys import SendJob, Store
from sms.binds import SmsClient, SubmitOutcome
from sms.dlr import normalise_message_id
from sms.routing import candidates
from sms.smpp.constants import REGISTERED_DELIVERY_ALWAYS, REGISTERED_DELIVERY_NONE
from sms.smpp.window import Part
from sms.templates import Template
from sms.text import segment

log = logs.logger(__name__)

# Message-id mappings outlive the longest receipt wait by a day.
MSGID_EXTRA_TTL_S = 86_400
# A send queue entry's kind for the clarifying SMS (store.lua, minyi_reply), and what
# its parts' id carries after the survey id.
CLARIFY = "clarify"
CLARIFY_SUFFIX = "#clarify"


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
        self._retake = False  # our pending entries are to be taken again
        # Before a part may reach the SMS center, the survey records it (p<n>:out): after
        # a crash only such a part, sent again, may be a duplicate (sms.resent).
        client.before_wire = self._going_out
        # One outage for every answer waiting to be stored: one log line for them all.
        self._storing = lifecycle.Outage(
            log, "sms sender: storing submit answers", backoff=lifecycle.Backoff(0.2, 5.0)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; then let the surveys in flight finish. Redis
        outages are waited out (what is in flight is re-taken from the pending list
        afterwards)."""
        self._stopping = stop
        claims = asyncio.create_task(self._claims(stop), name="sms-claims")
        try:
            await lifecycle.outlast(self._run_once, stop, what="sms sender", log=log)
            if self._inflight:
                await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        finally:
            await lifecycle.cancel_all([claims])

    async def _claims(self, stop: asyncio.Event) -> None:
        """On a timer, whatever the reader is doing: renew the entries of the surveys in
        flight here (a survey held up by a slow SMS center is not abandoned: another
        process must not send it too), and take over those another process left
        pending for ``claim_idle_s`` (it died): every one of them, page by page."""
        every = streams.claim_every_s(self.settings.claim_idle_s)
        outage = lifecycle.Outage(log, "sms sender: claims")
        while not await lifecycle.sleep_or_stop(stop, every):
            try:
                await streams.renew(
                    self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer, list(self._inflight)
                )
                await self._claim_abandoned()
            except lifecycle.OUTAGES as exc:
                await outage.wait(exc, stop)
            else:
                outage.over()

    async def _run_once(self) -> None:
        await streams.ensure_group(self.redis, keys.SMS_QUEUE, keys.SMS_GROUP)
        # Our own unacknowledged entries first (a restart after a crash).
        self._retake = True
        while not self._stopping.is_set():
            if self._retake:
                # Also after surveys whose Redis calls failed in an outage (before
                # anything was sent, or at the acknowledgement): taken again here.
                self._retake = False
                for entry_id, fields in await streams.pending(
                    self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer
                ):
                    await self._take(entry_id, fields)
            if len(self._inflight) >= self.max_inflight:
                self._room.clear()
                await self._wait_room()
                continue
            await self._read()

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
        self._spawn(entry_id, str(fields["sid"]), str(fields.get("kind", "survey")))

    async def _claim_abandoned(self) -> None:
        idle_ms = int(self.settings.claim_idle_s * 1000)
        claimed = await streams.claim_abandoned(
            self.redis, keys.SMS_QUEUE, keys.SMS_GROUP, self.consumer, idle_ms
        )
        if claimed:
            log.warning(
                "sms took over %d surveys another process left pending for %gs",
                len(claimed),
                self.settings.claim_idle_s,
            )
        for entry_id, fields in claimed:
            await self._take(entry_id, fields)

    def _spawn(self, entry_id: str, sid: str, kind: str = "survey") -> None:
        send = self._send_clarify if kind == CLARIFY else self._send_survey
        task = asyncio.create_task(send(entry_id, sid), name=entry_id)
        self._inflight[entry_id] = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task.get_name(), None)
        self._room.set()
        error = None if task.cancelled() else task.exception()
        if isinstance(error, lifecycle.OUTAGES):
            # Redis went away under it: its entry is still pending and is taken again
            # (the reader's outage says Redis is down, once, not once per survey).
            self._retake = True
            log.debug("sms send task ended in an outage: %s", lifecycle.describe(error))
        elif error is not None:
            log.error("sms send task failed: %s", lifecycle.describe(error))

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
        try:
            text = self._render(job)
        except Unrenderable as exc:
            # Never retried: the same survey renders the same way every time, and a
            # retry would only count a resend that never happened.
            log.error("sms cannot render survey=%s: %s", sid, exc.reason)
            await self.store.part_failed(sid, 1, 1, exc.reason, -1)
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
                    # an earlier life handed it to a bind and stored no answer
                    out_before=f"p{seg.index}:out" in job.fields,
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

    async def _send_clarify(self, entry_id: str, sid: str) -> None:
        """The one clarifying SMS of a survey whose reply could not be read (queued by
        the store's minyi_reply, kind "clarify"): the [surveys] clarify_template, from
        the survey's sender number and extension code so that the answer finds it. No
        receipt is asked for: the survey's own parts keep their receipts. A crash
        before its answer is stored sends it again (at most twice in all)."""
        s = self.settings
        job = await self.store.clarify_begin(sid)
        unclear_callback = "unclear" in s.surveys.callback_on
        if job is None:
            await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
            return
        try:
            text = self._render(job, s.surveys.clarify_template)
        except Unrenderable as exc:
            log.error("sms cannot render the clarifying sms survey=%s: %s", sid, exc.reason)
            await self.store.clarify_failed(sid, exc.reason, unclear_callback)
            await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)
            return
        ref16 = bool(s.sms.ref16)
        ref = zlib.crc32(f"{sid}/clarify/{job.attempt}".encode()) & (0xFFFF if ref16 else 0xFF)
        phone = job.fields["phone"]
        bind = self.client.choose(candidates(s.sms, phone, job.fields.get("unit_code", "")))
        source = s.sms.source_of(bind) + job.ext
        parts = [
            Part(
                # Its own id: the survey's parts (p<n>:out, receipts) are not touched.
                survey_id=sid + CLARIFY_SUFFIX,
                index=seg.index,
                total=seg.total,
                source=source,
                dest=phone,
                short_message=seg.short_message,
                esm_class=seg.esm_class,
                data_coding=seg.data_coding,
                text=seg.text,
                registered_delivery=REGISTERED_DELIVERY_NONE,
            )
            for seg in segment(text, ref, ref16=ref16)
        ]
        outcomes = await asyncio.gather(*(self.client.submit(p, bind) for p in parts))
        try:
            refused = [o for o in outcomes if o.status != 0]
            while True:
                try:
                    if refused:
                        log.warning(
                            "sms clarifying sms refused survey=%s status=%s",
                            sid,
                            refused[0].reason,
                        )
                        await self.store.clarify_failed(sid, refused[0].reason, unclear_callback)
                    else:
                        await self.store.clarify_sent(
                            sid, len(parts), outcomes[0].bind, [o.message_id for o in outcomes]
                        )
                except lifecycle.OUTAGES as exc:
                    await self._storing.wait(exc)
                else:
                    self._storing.over()
                    break
        finally:
            for p in parts:
                self.client.stored(p)
        log.info("sms clarifying sms survey=%s to=%s", sid, mask_phone(phone))
        await self.store.commands.execute("XACK", keys.SMS_QUEUE, keys.SMS_GROUP, entry_id)

    async def _one_part(self, part: Part, bind: str) -> None:
        outcome: SubmitOutcome = await self.client.submit(part, bind)
        try:
            await self._until_stored(part, outcome)
        finally:
            self.client.stored(part)

    async def _going_out(self, parts: Sequence[Part]) -> None:
        marked = [(p.survey_id, p.index) for p in parts if not p.survey_id.endswith(CLARIFY_SUFFIX)]
        if marked:
            await self.store.parts_going_out(marked)

    async def _until_stored(self, part: Part, outcome: SubmitOutcome) -> None:
        """Store the SMS center's answer, trying again while Redis is away: it is the
        only record of the message id (storing it twice is harmless, the functions are
        idempotent; losing it would send the part again)."""
        while True:
            try:
                await self._store_outcome(part, outcome)
            except ResponseError as exc:
                if library.script_fault(exc):
                    raise  # the store refused it: trying again would not help
                await self._storing.wait(exc)
            except lifecycle.OUTAGES as exc:
                await self._storing.wait(exc)
            else:
                self._storing.over()
                return

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
                resent=outcome.resent or part.out_before,
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

    def _render(self, job: SendJob, template_name: str | None = None) -> str:
        """The survey's SMS text (its own template, or `template_name`), or
        Unrenderable with the reason (the survey then becomes undeliverable with it)."""
        return survey_text(job.fields, self.settings, self.templates, template_name)


def survey_text(
    f: Mapping[str, str],
    settings: Settings,
    templates: Mapping[str, Template],
    template_name: str | None = None,
) -> str:
    """The SMS text of a survey (its record's fields) with its own template or
    ``template_name``, or Unrenderable with the reason; also what the agent's desk
    shows as the SMS that was sent."""
    template = templates.get(template_name or f.get("template", "default"))
    if template is None:
        raise Unrenderable("template_missing")
    s = settings.surveys
    try:
        # Converting to local time overflows for a date at the end of the calendar
        # ("9999-12-31T23:59:59-12:00"); the API refuses such dates since, but a
        # survey stored before must not be retried forever.
        when = datetime.fromisoformat(f.get("occurred_at", "")).astimezone(s.timezone)
    except (ValueError, OverflowError):
        raise Unrenderable("occurred_at_unusable") from None
    values = {
        "signature": settings.sms.signature,
        "service": s.service_names.get(f.get("service_type", ""), f.get("service_type", "")),
        "unit_name": s.unit_names.get(f.get("unit_code", ""), ""),
        "date": f"{when.month}月{when.day}日",
        "time": f"{when.hour:02d}:{when.minute:02d}",
        "officer": f.get("officer_id", ""),
    }
    return template.render(values)


class Unrenderable(Exception):
    """A survey whose SMS text cannot be made; ``reason`` is its undeliverable reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
