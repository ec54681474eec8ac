"""Intake of the webhook feed: from the events stream into one endpoint's survey queues.

Each endpoint has its own consumer group on the stream. A batch of entries is queued
and XACKed by one function call (EndpointQueue.intake), so an entry is always either
pending in the group or queued — a crash between the two cannot lose it. After a restart a
consumer first re-reads its own pending entries (same consumer name: at once); the
entries of consumers that died for good are XAUTOCLAIMed once idle for
``claim_idle_s``. Malformed entries are dead-lettered, never dropped in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
        loop = asyncio.get_running_loop()
        pause = redis_outage(q.endpoint, "intake")
        ready = False
        next_autoclaim = 0.0
        while True:
            try:
                if not ready:
                    await q.ensure_group()
                    await self._read_own_pending()
                    ready = True
                if loop.time() >= next_autoclaim:
                    await self._autoclaim()
                    next_autoclaim = loop.time() + max(0.1, self.claim_idle_s / 2)
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
            await self.queue_entries(entries)

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
                scheduled, heads = await asyncio.shield(call)
            except asyncio.CancelledError:
                # Stopping: surveys the intake call leased to us go back to the due set, or
                # they would wait for their lease to expire.
                with contextlib.suppress(Exception):
                    _, leased = await asyncio.wait_for(call, 5.0)
                    for head in leased:
                        await q.release(head.sid, head.token)
                raise
        finally:
            self.start(slots, heads)
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
