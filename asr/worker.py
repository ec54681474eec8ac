"""The ASR worker: transcription jobs from a Redis stream to events on the survey feed.

Reads :data:`asr.jobs.JOBS` through the consumer group ``asr`` (gateway/store/streams.py),
decodes each job in the process pool (:class:`asr.pool.AsrPool`), reads the citizen's
words with the reply core (``sms.understand``), and ends the job in one Redis function
call (``minyi_transcript``, idempotent on the job id) *before* acknowledging the entry:
a crash anywhere leaves the entry pending, and a job is never acknowledged unreported.

How each job ends:

- decoded: a ``transcript`` event (the survey moves ``called -> transcribed``); ack;
- a fault in the recording (silent, too short, corrupt, unsupported...): a
  ``transcript.failed`` event with the reason; ack;
- a retryable failure (worker crashed, timeout, file missing...): the entry stays
  pending and is claimed again (XAUTOCLAIM) once idle for ``claim_idle_s``; when its
  delivery count reaches ``max_tries`` it is dead-lettered: an entry on
  :data:`asr.jobs.DEAD` and a ``transcript.failed`` event with reason ``poison``;
- an entry that is not a valid job: dead-lettered with reason ``malformed``.

With ``index_recordings`` on (the gateway service turns it on), the worker also indexes
the job's recording (:func:`recordings.index.index_recording`: base name, survey,
callback, files) when it takes the job, before decoding: the dialer does not index, and
this is the one place every transcribed recording passes through with its survey id.
Indexing is idempotent, so a retried job just rewrites the entry.

While a job runs, its entry is re-claimed by this consumer every third of
``claim_idle_s`` (XCLAIM JUSTID: the idle time resets, the delivery count does not
grow), so a long recording is not taken over by another worker mid-decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from asr import jobs
from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelSpec
from asr.pool import DEFAULT_JOB_TIMEOUT_S, AsrPool, TranscriptionJob, default_pool_size
from gateway import lifecycle, logs
from gateway.privacy import mask_numbers
from gateway.store import streams
from gateway.store.streams import text
from gateway.store.surveys import iso
from recordings.index import index_recording
from recordings.naming import parse_file, recording_files
from sms.understand import understand

log = logs.logger(__name__)


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class AsrWorkerSettings:
    """How the ASR worker runs (the ``asr`` section of the gateway's config)."""

    model: ModelSpec
    pool_size: int = field(default_factory=default_pool_size)
    # Jobs in flight at once; None = pool_size (each job's legs run in parallel anyway).
    concurrency: int | None = None
    # Deliveries of one entry before it is dead-lettered as poison.
    max_tries: int = 3
    # An entry pending this long is someone else's abandoned job (or our failed one).
    claim_idle_s: float = 60.0
    # XREADGROUP BLOCK: also the longest wait before a stop request is noticed.
    block_ms: int = 1000
    job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    # On stop, running jobs get this long before they are cancelled (and left pending).
    stop_grace_s: float = 30.0
    consumer: str = field(default_factory=_default_consumer)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    # Index each job's recording for retention and the API (see the module docstring).
    index_recordings: bool = False

    @property
    def slots(self) -> int:
        """Jobs in flight at once."""
        return max(1, self.concurrency or self.pool_size)


class AsrWorker:
    """Consumes the transcription stream until told to stop; see the module docstring.

    ``pool``: an existing :class:`AsrPool` to use (and not close); by default the worker
    starts its own from the settings when :meth:`run` starts and closes it at the end.
    """

    def __init__(
        self, redis: aioredis.Redis, settings: AsrWorkerSettings, *, pool: AsrPool | None = None
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.consumer = settings.consumer
        self._pool = pool
        self._own_pool = pool is None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.processed = 0  # jobs ended (acknowledged) by this worker, for health pages

    # --- running ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Take jobs until ``stop`` is set, then let running ones finish (grace period)."""
        s = self.settings
        if self._pool is None:
            self._pool = AsrPool(s.model, workers=s.pool_size, job_timeout_s=s.job_timeout_s)
        log.info(
            "asr worker started consumer=%s model=%s pool=%d slots=%d",
            self.consumer,
            s.model.name,
            self._pool.size,
            s.slots,
        )
        try:
            await self._until_ready(stop)
            await self._loop(stop)
        finally:
            await self._drain()
            if self._own_pool and self._pool is not None:
                await self._pool.aclose()
                self._pool = None
            log.info("asr worker stopped consumer=%s processed=%d", self.consumer, self.processed)

    async def _until_ready(self, stop: asyncio.Event) -> None:
        """Create the consumer group; retake this consumer's own pending entries (a restart)."""

        async def own_pending() -> list[streams.Entry]:
            await streams.ensure_group(self.redis, jobs.JOBS, jobs.GROUP)
            return await streams.pending(self.redis, jobs.JOBS, jobs.GROUP, self.consumer)

        own = await lifecycle.outlast(own_pending, stop, what="asr worker", log=log)
        if own is None:
            return
        if own:
            log.info("asr worker retakes %d pending jobs consumer=%s", len(own), self.consumer)
            own = own[: self.settings.slots]  # the rest are claimed when idle
            await self._start(own, await self._deliveries([e for e, _ in own]))

    async def _loop(self, stop: asyncio.Event) -> None:
        s = self.settings
        reclaim_every = max(0.05, s.claim_idle_s / 2)
        next_reclaim = time.monotonic() + reclaim_every
        outage = lifecycle.Outage(log, "asr worker", backoff=lifecycle.Backoff(1.0))
        while not stop.is_set():
            free = await self._free_slots(stop)
            if free == 0:
                continue
            try:
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + reclaim_every
                    await self._reclaim(free)
                    free = s.slots - len(self._inflight)
                    if free <= 0:
                        continue
                entries = await streams.read(
                    self.redis,
                    jobs.JOBS,
                    jobs.GROUP,
                    self.consumer,
                    count=free,
                    block_ms=min(s.block_ms, max(1, int(reclaim_every * 1000))),
                )
            except lifecycle.OUTAGES as exc:
                await outage.wait(exc, stop)
                continue
            outage.over()
            # A new entry has been delivered once.
            await self._start(entries, {entry_id: 1 for entry_id, _ in entries})

    async def _free_slots(self, stop: asyncio.Event) -> int:
        """Wait (up to a short while) for a free job slot; the number free now."""
        free = self.settings.slots - len(self._inflight)
        if free > 0:
            return free
        waiter = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                [waiter, *self._inflight.values()], timeout=1.0, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()
        return max(0, self.settings.slots - len(self._inflight))

    async def _reclaim(self, count: int) -> None:
        idle_ms = int(self.settings.claim_idle_s * 1000)
        claimed = await streams.claim_abandoned(
            self.redis, jobs.JOBS, jobs.GROUP, self.consumer, idle_ms, count=count, limit=count
        )
        claimed = [(e, f) for e, f in claimed if e not in self._inflight]
        if claimed:
            log.info("asr worker claimed %d idle jobs consumer=%s", len(claimed), self.consumer)
            await self._start(claimed, await self._deliveries([e for e, _ in claimed]))

    async def _deliveries(self, entry_ids: list[str]) -> dict[str, int]:
        """How many times each pending entry has been delivered (XPENDING)."""
        counts: dict[str, int] = {}
        for entry_id in entry_ids:
            rows = await self.redis.xpending_range(
                jobs.JOBS, jobs.GROUP, min=entry_id, max=entry_id, count=1
            )
            for row in rows:
                counts[text(row["message_id"])] = int(row["times_delivered"])
        return counts

    async def _start(self, entries: list[streams.Entry], deliveries: dict[str, int]) -> None:
        for entry_id, fields in entries:
            if entry_id in self._inflight:
                continue
            task = asyncio.create_task(
                self._guarded(entry_id, fields, deliveries.get(entry_id, 1)),
                name=f"asr-job-{entry_id}",
            )
            self._inflight[entry_id] = task
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        for entry_id, running in list(self._inflight.items()):
            if running is task:
                del self._inflight[entry_id]

    async def _drain(self) -> None:
        if not self._inflight:
            return
        tasks = list(self._inflight.values())
        _, running = await asyncio.wait(tasks, timeout=self.settings.stop_grace_s)
        if running:
            await lifecycle.cancel_all(running)  # the entries stay pending: others claim them
            log.warning("asr worker stop: %d jobs left pending", len(running))

    # --- one job --------------------------------------------------------------------------
    async def _guarded(self, entry_id: str, fields: dict[str, str], attempt: int) -> None:
        """Handle one entry; nothing it does may take the worker down."""
        heartbeat = asyncio.create_task(self._heartbeat(entry_id))
        try:
            await self._handle(entry_id, fields, attempt)
        except asyncio.CancelledError:
            raise
        except RedisError as exc:
            # The outcome may not be stored: leave the entry pending, it is claimed again.
            log.warning("asr job entry=%s left pending: redis error: %s", entry_id, exc)
        except Exception:
            log.exception("asr job entry=%s left pending: unexpected error", entry_id)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, entry_id: str) -> None:
        """Keep a running job's entry from looking abandoned to other consumers."""
        every = max(0.05, self.settings.claim_idle_s / 3)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(RedisError):
                await self.redis.xclaim(
                    jobs.JOBS, jobs.GROUP, self.consumer, 0, [entry_id], justid=True
                )

    async def _handle(self, entry_id: str, fields: dict[str, str], attempt: int) -> None:
        if not fields:  # deleted or trimmed while pending: nothing left to do
            await self._ack(entry_id)
            return
        raw = fields.get("job")
        try:
            job = jobs.parse_job(raw)
        except jobs.MalformedJob as exc:
            job_id, survey_id = jobs.salvage_ids(raw)
            log.warning("asr job entry=%s malformed: %s", entry_id, mask_numbers(str(exc)))
            payload = jobs.failed_payload(
                job_id, FailureReason.MALFORMED.value, str(exc), attempt=attempt
            )
            # Keyed by the entry, not the job id it claims: a corrected job may reuse that.
            await self._dead_letter(entry_id, raw or "", survey_id, f"entry:{entry_id}", payload)
            return
        if attempt > self.settings.max_tries:
            await self._give_up(entry_id, raw or "", job, attempt)
            return
        if await self.redis.exists(jobs.DONE.format(job_id=job.job_id)):
            log.info("asr job=%s ended before; acknowledging", mask_numbers(job.job_id))
            await self._ack(entry_id)
            return
        if self.settings.index_recordings:
            await self._index(job)
        assert self._pool is not None
        try:
            result = await self._pool.transcribe(
                TranscriptionJob(job.legs, recording_id=job.job_id)
            )
        except TranscriptionFailed as exc:
            await self._failed(entry_id, raw or "", job, exc, attempt)
            return
        except ValueError as exc:  # legs the pool refuses (validated already; belt and braces)
            payload = _job_failed(job, FailureReason.MALFORMED.value, str(exc), attempt)
            await self._dead_letter(entry_id, raw or "", job.survey_id, job.job_id, payload)
            return
        reading = understand(result.citizen_text)
        payload = jobs.transcript_payload(job, result, reading, attempt=attempt)
        outcome = await jobs.record_outcome(
            self.redis, job.survey_id, self._now_iso(), jobs.TRANSCRIPT, payload, job.job_id
        )
        await self._ack(entry_id)
        log.info(
            "asr job=%s survey=%s %s audio_s=%.1f processing_s=%.1f rating=%s",
            mask_numbers(job.job_id),
            mask_numbers(job.survey_id),
            outcome,
            result.audio_s,
            result.processing_s,
            reading.rating.value,
        )

    async def _index(self, job: jobs.AsrJob) -> None:
        """Index the job's recording: every file of its base next to the citizen leg."""
        found = recording_of(job)
        if found is None:
            log.warning(
                "asr job=%s: legs are not recording files; not indexed", mask_numbers(job.job_id)
            )
            return
        base, directory = found
        files = await asyncio.to_thread(
            lambda: [n for n in recording_files(base) if (directory / n).is_file()]
        )
        created_ts = time.time()
        with contextlib.suppress(ValueError):
            created_ts = datetime.datetime.fromisoformat(job.recorded_at).timestamp()
        await index_recording(
            self.redis, base, job.survey_id, job.callback_id, files or [f"{base}.wav"], created_ts
        )

    async def _failed(
        self, entry_id: str, raw: str, job: jobs.AsrJob, exc: TranscriptionFailed, attempt: int
    ) -> None:
        if not exc.retryable:
            payload = _job_failed(job, exc.reason.value, exc.detail, attempt, leg=exc.leg)
            outcome = await jobs.record_outcome(
                self.redis,
                job.survey_id,
                self._now_iso(),
                jobs.TRANSCRIPT_FAILED,
                payload,
                job.job_id,
            )
            await self._ack(entry_id)
            log.info("asr job=%s failed %s: %s", mask_numbers(job.job_id), outcome, exc)
            return
        await self.redis.hset(
            jobs.LAST_ERROR,
            entry_id,
            jobs.dumps({"reason": exc.reason.value, "detail": exc.detail, "leg": exc.leg}),
        )
        if attempt >= self.settings.max_tries:
            await self._give_up(entry_id, raw, job, attempt)
            return
        log.warning(
            "asr job=%s attempt %d/%d failed, will retry: %s",
            mask_numbers(job.job_id),
            attempt,
            self.settings.max_tries,
            exc,
        )

    async def _give_up(self, entry_id: str, raw: str, job: jobs.AsrJob, attempt: int) -> None:
        last = await self.redis.hget(jobs.LAST_ERROR, entry_id)
        last_reason, detail = "", f"delivered {attempt} times without finishing (worker killed?)"
        if last:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                err = json.loads(last)
                last_reason = str(err["reason"])
                detail = f"{attempt} tries; last: {err['reason']}: {err.get('detail') or ''}"
        log.error("asr job=%s dead-lettered after %d tries", mask_numbers(job.job_id), attempt)
        payload = _job_failed(job, FailureReason.POISON.value, detail, attempt)
        payload["last_reason"] = last_reason
        await self._dead_letter(entry_id, raw, job.survey_id, job.job_id, payload)

    async def _dead_letter(
        self, entry_id: str, raw: str, survey_id: str, done_id: str, payload: dict[str, Any]
    ) -> None:
        """Dead-letter entry, ``transcript.failed`` event and ack: one Redis function call
        (exactly once per ``done_id``), then XACK."""
        now_iso = self._now_iso()
        dead = {
            "job": raw,
            "entry_id": entry_id,
            "reason": str(payload["reason"]),
            "detail": str(payload["detail"]),
            "attempts": str(payload["attempt"]),
            "at": now_iso,
        }
        await jobs.record_outcome(
            self.redis, survey_id, now_iso, jobs.TRANSCRIPT_FAILED, payload, done_id, dead
        )
        await self._ack(entry_id)

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(jobs.JOBS, jobs.GROUP, entry_id)
            pipe.hdel(jobs.LAST_ERROR, entry_id)
            await pipe.execute()
        self.processed += 1

    def _now_iso(self) -> str:
        return iso(time.time(), self.settings.tz)


def _job_failed(
    job: jobs.AsrJob, reason: str, detail: str, attempt: int, *, leg: str | None = None
) -> dict[str, Any]:
    return jobs.failed_payload(
        job.job_id,
        reason,
        detail,
        callback_id=job.callback_id,
        recorded_at=job.recorded_at,
        leg=leg,
        attempt=attempt,
    )


def recording_of(job: jobs.AsrJob) -> tuple[str, Path] | None:
    """``(base, directory)`` of the recording a job's legs belong to, or None when the
    legs are not files of one recording (recordings/naming.py)."""
    bases: set[tuple[str, Path]] = set()
    for leg_file in job.legs.values():
        path = Path(leg_file)
        parsed = parse_file(path.name)
        if parsed is None:
            return None
        bases.add((parsed[0], path.parent))
    return bases.pop() if len(bases) == 1 else None
