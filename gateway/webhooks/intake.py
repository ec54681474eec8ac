"""Intake of the webhook feed: from the events stream into one endpoint's survey queues.

Each endpoint has its own consumer group on the stream. A batch of entries is queued
and XACKed by one function call (EndpointQueue.intake), so an entry is always either
pending in the group or queued — a crash between the two cannot lose it; and it is
queued by the call that acknowledges it, so a call made twice cannot queue it twice.
After a restart a consumer first re-reads its own pending entries (same consumer name:
at once); the entries of consumers that died for good are claimed by :meth:`Intake.claims`,
a loop of its own on a timer (streams.claim_every_s), every page of them, once idle for
``claim_idle_s``. The gap wait of the worker is tied to that cadence
(:func:`gap_wait_s`). Malformed entries are dead-lettered, and events queued after a
later event of their survey went out are delivered and logged as errors: never dropped
in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import redis.asyncio as aioredis

from gateway import lifecycle, logs
from gateway.store import streams
from gateway.store.streams import text
from gateway.webhooks.queue import (
    EndpointQueue,
    Head,
    StreamEntry,
    raw,
    redis_outage,
)

log = logs.logger(__name__)

# Beyond the latest moment a claim can land: the time a claim takes, a loop's latency.
GAP_MARGIN_S: Final = 5.0


def gap_wait_s(claim_idle_s: float) -> float:
    """How long a survey's missing event is waited for by default: the entry that holds
    it may sit with a dead consumer, and is claimed at most ``claim_idle_s`` +
    streams.claim_every_s after that consumer read it — which was before the gap was
    seen (the group hands out entries in stream order, and an event's entry comes before
    its successor's). 70 s for the default 60 s."""
    return claim_idle_s + streams.claim_every_s(claim_idle_s) + GAP_MARGIN_S


def check_gap_wait(gap_wait: float, claim_idle_s: float) -> None:
    """Refuse a gap wait that could give up before the claim of the missing entry."""
    least = claim_idle_s + streams.claim_every_s(claim_idle_s)
    if gap_wait < least:
        raise ValueError(
            f"gap_timeout_s {gap_wait:g} is shorter than claim_idle_s {claim_idle_s:g} and "
            f"the claim cadence ({least:g}s): a gap would give up before its event is claimed"
        )


class Intake:
    """One endpoint's intake loop.

    The fast path: surveys an intake batch schedules are leased to this process in the
    same call, up to ``reserve()`` of them (free delivery slots, reserved meanwhile),
    and handed to ``start(reserved, heads)``, which starts their delivery and frees the
    unused slots; if more were scheduled, ``on_scheduled`` wakes the dispatcher.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        queue: EndpointQueue,
        consumer: str,
        *,
        block_ms: int,
        read_count: int,
        claim_idle_s: float,
        lease_s: float,
        reserve: Callable[[], int],
        start: Callable[[int, list[Head]], None],
        on_scheduled: Callable[[], None],
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.consumer = consumer
        self.block_ms = block_ms
        self.read_count = read_count
        self.claim_idle_s = claim_idle_s
        self.lease_s = lease_s
        self.reserve = reserve
        self.start = start
        self.on_scheduled = on_scheduled

    async def run(self) -> None:
        """Read and queue until cancelled (a cancel at any point loses nothing)."""
        q = self.queue
        pause = redis_outage(q.endpoint, "intake")
        ready = False
        while True:
            try:
                if not ready:
                    await q.ensure_group()
                    await self._read_own_pending()
                    ready = True
                await self.queue_entries(
                    await streams.read(
                        self.redis,
                        q.stream,
                        q.group,
                        self.consumer,
                        count=self.read_count,
                        block_ms=self.block_ms,
                    )
                )
                pause.over()
            except lifecycle.OUTAGES as exc:
                # Once Redis is back: make sure the group exists (NOGROUP: Redis lost
                # its data?) and re-read our own pending entries.
                ready = False
                await pause.wait(exc)

    async def claims(self) -> None:
        """Until cancelled, every streams.claim_every_s: take over (and queue) every
        entry another consumer has left pending for ``claim_idle_s``."""
        q = self.queue
        pause = redis_outage(q.endpoint, "claims")
        every = streams.claim_every_s(self.claim_idle_s)
        while True:
            await asyncio.sleep(every)
            try:
                await self._autoclaim()
            except lifecycle.OUTAGES as exc:
                await pause.wait(exc)
            else:
                pause.over()

    async def _read_own_pending(self) -> None:
        q = self.queue
        await self.queue_entries(
            await streams.pending(
                self.redis, q.stream, q.group, self.consumer, page=self.read_count
            )
        )

    async def _autoclaim(self) -> None:
        q = self.queue
        entries = await streams.claim_abandoned(
            self.redis,
            q.stream,
            q.group,
            self.consumer,
            int(self.claim_idle_s * 1000),
            count=self.read_count,
        )
        if entries:
            log.info(
                "webhook %s: took over %d stream entries idle for more than %gs",
                q.endpoint,
                len(entries),
                self.claim_idle_s,
            )
            for start in range(0, len(entries), self.read_count):
                await self.queue_entries(entries[start : start + self.read_count])

    async def queue_entries(self, entries: Sequence[StreamEntry]) -> None:
        """Queue (and XACK) stream entries; dead-letter the malformed ones."""
        q = self.queue
        good: list[tuple[str, str, int, bytes]] = []
        for entry_id, fields in entries:
            eid = text(entry_id)
            if not fields:  # deleted from the stream while pending: nothing to send
                await self.redis.xack(q.stream, q.group, eid)
                continue
            parsed = parse_entry(fields)
            if isinstance(parsed, str):
                log.error("webhook %s: malformed stream entry %s: %s", q.endpoint, eid, parsed)
                await q.reject(eid, {text(k): raw(v) for k, v in fields.items()}, parsed)
                continue
            good.append((eid, *parsed))
        if not good:
            return
        slots = self.reserve()
        heads: list[Head] = []
        try:
            call = asyncio.ensure_future(q.intake(good, slots, self.lease_s))
            try:
                scheduled, heads, late = await asyncio.shield(call)
            except asyncio.CancelledError:
                # Stopping: surveys the intake call leased to us go back to the due set, or
                # they would wait for their lease to expire.
                with contextlib.suppress(Exception):
                    _, leased, _ = await asyncio.wait_for(call, 5.0)
                    for head in leased:
                        await q.release(head.sid, head.token)
                raise
        finally:
            self.start(slots, heads)
        for event in late:
            log.error(
                "webhook %s: survey %s seq %d reached the feed after seq %d was delivered: "
                "it is sent now, out of order (a gap wait gave up on it too early, or it "
                "was written late) — a bug, please report it",
                q.endpoint,
                event.sid,
                event.seq,
                event.delivered,
            )
        if scheduled > len(heads):
            self.on_scheduled()


def parse_entry(fields: Mapping[Any, Any]) -> tuple[str, int, bytes] | str:
    """(survey id, seq, event JSON) of a stream entry, or what is wrong with it."""
    f = {text(k): v for k, v in fields.items()}
    try:
        seq = int(text(f["seq"]))
    except (KeyError, ValueError):
        return "seq missing or not an integer"
    if "event" not in f:
        return "event missing"
    event = raw(f["event"])
    try:
        doc = json.loads(event)
    except ValueError:
        return "event is not JSON"
    if not isinstance(doc, dict) or doc.get("id") in (None, ""):
        return "event is not a JSON object with an id"
    return text(f.get("sid", "")), seq, event
