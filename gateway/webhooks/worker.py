"""The signed webhook feed: every survey event, to every endpoint, at least once, in
order per survey, for days.

Per endpoint, a worker runs three loops (all state lives in Redis, see
gateway/webhooks/queue.py, so any number of processes may run them side by side):

- intake (gateway/webhooks/intake.py): XREADGROUP on the events stream (its own
  pending entries first after a restart; entries idle for ``claim_idle_s`` in dead
  consumers are XAUTOCLAIMed) and one script per batch that queues each event in its
  survey's wait zset, schedules the survey and XACKs. The same script leases the
  surveys it scheduled to this process, up to the free delivery slots, and their
  delivery starts at once: the fast path, one Redis round trip from stream to request;
- dispatch: leases the other due surveys (woken by intake when it scheduled more than
  it could take, and polled every ``poll_interval_s`` for retries and for surveys
  other processes gave back), at most ``concurrency`` in all, one task each;
- per survey: POST the head event (gateway/webhooks/sender.py: Standard Webhooks
  signature, optional batching), record the outcome, go on with the survey's next
  event while it has any. A failure backs the survey off exponentially; an event
  failing for ``max_age_s`` goes to the dead-letter stream and its survey is parked:
  the survey's later events wait behind it (``replay()`` / ``minyi webhooks replay``
  re-send it in front of them, so order holds across the replay). At the first
  success after failures (of
  the survey, or of this process's last request), up to ``wake_on_recovery`` surveys
  sleeping in a long backoff are made due at once: after a day's outage the backlog
  drains as fast as the receiver takes it, not as backoffs (up to 15 min) expire.

A missing predecessor (seq > delivered + 1) is waited for while any stream entry is
still pending in the group (it may be that predecessor, in another consumer's hands),
up to ``gap_timeout_s`` — by default ``claim_idle_s`` + the claim cadence + 5 s
(intake.gap_wait_s), so a dead consumer's entry is claimed before the wait ends. When
nothing is pending any more, the survey's head is read again before anything is sent:
another process may have queued the predecessor in between (its intake acknowledges
and queues in one call). Only if it is still missing is the event sent, and the gap
logged. A predecessor that comes after all is delivered late, and logged as an error
(intake.py), never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis

from gateway import lifecycle, logs
from gateway.config import WebhookEndpoint
from gateway.store.replication import Replication
from gateway.webhooks.dead import list_dead, replay
from gateway.webhooks.intake import Intake, check_gap_wait, gap_wait_s
from gateway.webhooks.queue import (
    GAUGES,
    EndpointQueue,
    Head,
    backoff_delay,
    redis_outage,
)
from gateway.webhooks.sender import Poster
from gateway.webhooks.signing import InvalidSignature, decode_secret, sign, verify

__all__ = [
    "InvalidSignature",
    "WebhookWorker",
    "list_dead",
    "replay",
    "sign",
    "verify",
]

log = logs.logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CLAIM_BATCH = 256
GAP_HOLD_S = 0.5  # hold a gapped survey in-process this long before giving the slot back
GAP_POLL_S = 0.01
GAP_RECHECK_S = 0.1  # then look again this much later
# 408 and 429 are the receiver saying "later"; other 4xx mean it refuses the request.
TRANSIENT_4XX = (408, 429)


@dataclass
class _Feed:
    """One endpoint's runtime state in this process."""

    endpoint: WebhookEndpoint
    queue: EndpointQueue
    poster: Poster
    lease_s: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # work arrived
    slot_freed: asyncio.Event = field(default_factory=asyncio.Event)
    reserved: int = 0  # slots promised to a claim or intake in flight
    failing: bool = False  # the last request this process made to the endpoint failed
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # survey id -> lease token
    gap_since: dict[str, float] = field(default_factory=dict)
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("delivered", "failed_requests", "dead_lettered", "out_of_order", "lost_leases"), 0
        )
    )
    gauges: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(GAUGES))


class WebhookWorker:
    """Delivers the events stream to the configured endpoints until its stop event."""

    def __init__(
        self,
        redis: aioredis.Redis,
        endpoints: Sequence[WebhookEndpoint],
        *,
        consumer: str,
        lease_s: float = 30.0,
        poll_interval_s: float = 0.2,
        block_ms: int = 1000,
        read_count: int = 256,
        claim_idle_s: float = 60.0,
        gap_timeout_s: float | None = None,
        stats_interval_s: float = 5.0,
        wake_on_recovery: int = 1000,
        prune_interval_s: float = 3600.0,
        grace_s: float = 10.0,
        replication: Replication | None = None,
    ) -> None:
        """``consumer`` names this process in the consumer groups: keep it stable across
        restarts (e.g. host name + worker index) so a restart resumes its own pending
        entries at once instead of after ``claim_idle_s``. The lease is stretched to
        outlast one request (1.5 × timeout + 1 s) if needed. ``gap_timeout_s`` defaults
        to ``claim_idle_s`` + the claim cadence + 5 s (intake.gap_wait_s; 70 s): long
        enough for a dead consumer's entries to be claimed, so a crash elsewhere does
        not reorder a survey's events (a shorter one is refused). Every
        ``stats_interval_s`` (and at start) leases in this consumer's name that no task
        serves are given back. Every
        ``prune_interval_s`` the delivered marks of surveys whose record has expired
        are forgotten (1000 per ``stats_interval_s``). On stop, requests in flight get
        ``grace_s`` to finish.
        """
        if len({e.name for e in endpoints}) != len(endpoints):
            raise ValueError("webhook endpoint names must be unique")
        self._redis = redis
        self._consumer = consumer
        self._poll_interval_s = poll_interval_s
        self._block_ms = block_ms
        self._read_count = read_count
        self._claim_idle_s = claim_idle_s
        self._gap_timeout_s = gap_wait_s(claim_idle_s) if gap_timeout_s is None else gap_timeout_s
        check_gap_wait(self._gap_timeout_s, claim_idle_s)
        self._stats_interval_s = stats_interval_s
        self._wake_on_recovery = wake_on_recovery
        self._prune_interval_s = prune_interval_s
        self._feeds = [
            _Feed(
                endpoint=e,
                queue=EndpointQueue(
                    redis, e.name, run=e.batch_max, owner=consumer, replication=replication
                ),
                poster=Poster(
                    e.url,
                    decode_secret(e.secret),
                    timeout_s=e.timeout_s,
                    concurrency=e.concurrency,
                    batch_max=e.batch_max,
                ),
                lease_s=max(lease_s, e.timeout_s * 1.5 + 1.0),
            )
            for e in endpoints
        ]
        self._stopping = False
        self._started = False
        self._grace_s = grace_s

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then stop taking work, let requests in flight
        finish (up to ``grace_s``) and give the surveys this process holds back to the
        due set, so others continue at once. Cancelling this task instead is an abrupt
        stop (like kill -9): nothing is lost, other processes take over after the
        leases expire."""
        if self._started:
            raise RuntimeError("WebhookWorker.run() can only be called once")
        self._started = True
        loops: list[asyncio.Task[None]] = []
        try:
            for feed in self._feeds:
                await feed.poster.open()
                intake = Intake(
                    self._redis,
                    feed.queue,
                    self._consumer,
                    block_ms=self._block_ms,
                    read_count=self._read_count,
                    claim_idle_s=self._claim_idle_s,
                    lease_s=feed.lease_s,
                    reserve=functools.partial(self._reserve, feed),
                    start=functools.partial(self._start, feed),
                    on_scheduled=feed.wake.set,
                )
                name = feed.endpoint.name
                loops += [
                    self._supervised(f"intake:{name}", intake.run),
                    self._supervised(f"claims:{name}", intake.claims),
                    self._supervised(f"send:{name}", functools.partial(self._dispatch_loop, feed)),
                    self._supervised(f"stats:{name}", functools.partial(self._gauge_loop, feed)),
                ]
            log.info(
                "webhook worker %s started: endpoints %s",
                self._consumer,
                ", ".join(f.endpoint.name for f in self._feeds),
            )
            await stop.wait()
            await self._shutdown(loops)
        finally:
            self._stopping = True
            await lifecycle.cancel_all(loops + [t for f in self._feeds for t in f.tasks])
            for feed in self._feeds:
                await feed.poster.close()

    def _supervised(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run a loop as a task that a bug cannot kill for good: a dead loop would stop
        the feed while the process looks healthy."""

        async def guard() -> None:
            while not self._stopping:
                try:
                    await loop()
                    return
                except Exception:
                    log.exception("webhook %s crashed; restarting it in 1s", name)
                    await asyncio.sleep(1.0)

        return asyncio.create_task(guard(), name=f"webhook-{name}")

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        await lifecycle.cancel_all(loops)  # intake and dispatch hold no work: nothing lost
        serving = [t for f in self._feeds for t in f.tasks]
        if serving:
            _, late = await asyncio.wait(serving, timeout=self._grace_s)
            await lifecycle.cancel_all(late)
        for feed in self._feeds:
            for sid, token in list(feed.held.items()):
                with contextlib.suppress(*lifecycle.OUTAGES):
                    await feed.queue.release(sid, token)
            feed.held.clear()
        log.info("webhook worker %s stopped", self._consumer)

    def stats(self) -> dict[str, object]:
        """Per endpoint: this process's counters (delivered, failed_requests,
        dead_lettered, out_of_order, lost_leases, in_flight) and shared gauges from
        Redis, refreshed every ``stats_interval_s`` (queued events, surveys_due,
        stream_lag, stream_pending, backlog = queued + lag, oldest_undelivered_age_s,
        replayed_total)."""
        out: dict[str, object] = {}
        for feed in self._feeds:
            item: dict[str, object] = {**feed.counters, "in_flight": len(feed.tasks)}
            item.update(feed.gauges)
            out[feed.endpoint.name] = item
        return out

    # --- dispatch ----------------------------------------------------------------------

    async def _dispatch_loop(self, feed: _Feed) -> None:
        pause = redis_outage(feed.endpoint.name, "dispatch")
        while not self._stopping:
            free = self._reserve(feed)
            if free <= 0:
                feed.slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.slot_freed.wait(), self._poll_interval_s)
                continue
            feed.wake.clear()
            heads: list[Head] = []
            try:
                heads = await feed.queue.claim(free, feed.lease_s)
            except lifecycle.OUTAGES as exc:
                await pause.wait(exc)
                continue
            finally:
                self._start(feed, free, heads)
            pause.over()
            if len(heads) < free:
                # Nothing else is due: sleep until intake has new surveys (the fast
                # path) or the poll interval (retries, surveys others gave back).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.wake.wait(), self._poll_interval_s)

    def _reserve(self, feed: _Feed) -> int:
        """Reserve the free delivery slots (for a claim or an intake in flight), so
        that the two together never lease more surveys than ``concurrency``."""
        if self._stopping:
            return 0
        free = feed.endpoint.concurrency - len(feed.tasks) - feed.reserved
        free = max(0, min(CLAIM_BATCH, free))
        feed.reserved += free
        return free

    def _start(self, feed: _Feed, reserved: int, heads: list[Head]) -> None:
        """Serve leased surveys, one task each, in slots reserved before."""
        feed.reserved -= reserved
        if reserved > len(heads):
            feed.slot_freed.set()
        for head in heads:
            feed.held[head.sid] = head.token
            task = asyncio.create_task(self._serve(feed, head))
            feed.tasks.add(task)
            task.add_done_callback(functools.partial(self._served, feed))

    def _served(self, feed: _Feed, task: asyncio.Task[None]) -> None:
        feed.tasks.discard(task)
        feed.slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "webhook %s: survey task crashed",
                feed.endpoint.name,
                exc_info=task.exception(),
            )

    async def _serve(self, feed: _Feed, head: Head) -> None:
        """Deliver one leased survey's events in order while it has any."""
        current: Head | None = head
        token = head.token
        try:
            while current is not None:
                token = feed.held[current.sid] = current.token
                if self._stopping:  # let another process go on at once
                    with contextlib.suppress(*lifecycle.OUTAGES):
                        await feed.queue.release(current.sid, current.token)
                    return
                if current.gap:
                    current = await self._close_gap(feed, current)
                    if current is None:
                        return
                    token = feed.held[current.sid] = current.token
                current = await self._attempt(feed, current)
        finally:
            if feed.held.get(head.sid) == token:
                del feed.held[head.sid]

    async def _close_gap(self, feed: _Feed, head: Head) -> Head | None:
        """Wait for a missing predecessor; the head to deliver now, or None if given back."""
        loop = asyncio.get_running_loop()
        first = feed.gap_since.setdefault(head.sid, loop.time())
        hold_until = loop.time() + GAP_HOLD_S
        current: Head | None = head
        why = ""
        while current is not None and current.gap:
            if await self._persist(feed, feed.queue.pending_count) == 0:
                # Nothing in flight now, but the head was read before this check: the
                # predecessor may have been queued in between. Read it again.
                current = await self._reread(feed, current)
                if current is not None and current.gap:
                    why = "no stream entry is in flight (trimmed or never written)"
                break
            if loop.time() - first >= self._gap_timeout_s:
                why = f"waited {self._gap_timeout_s:g}s"
                break
            if self._stopping or loop.time() >= hold_until:
                await self._persist(
                    feed, feed.queue.release, current.sid, current.token, GAP_RECHECK_S
                )
                return None
            await asyncio.sleep(GAP_POLL_S)
            current = await self._reread(feed, current)
        feed.gap_since.pop(head.sid, None)
        if current is None or not why:
            return current
        feed.counters["out_of_order"] += 1
        log.warning(
            "webhook %s: survey %s seq %d sent before seq %d: %s",
            feed.endpoint.name,
            current.sid,
            current.seq,
            current.delivered + 1,
            why,
        )
        return current

    async def _reread(self, feed: _Feed, head: Head) -> Head | None:
        """A held survey's head read again (None: it is no longer ours, or empty)."""
        step = await self._persist(feed, feed.queue.reread, head, feed.lease_s)
        return step.head

    async def _attempt(self, feed: _Feed, head: Head) -> Head | None:
        """POST the head (with the events following it, when batching; its stored batch
        again, when it is pinned to one), record the outcome; the survey's next head to
        deliver, or None."""
        ep, q = feed.endpoint, feed.queue
        body = await self._persist(feed, q.batch_body, head.batch) if head.batch else None
        if head.batch and body is None:
            # The batch is gone: delivered by another member's retry since our claim
            # (read the survey again: its events are recorded), or a pin left behind.
            step = await self._persist(feed, q.reread, head, feed.lease_s)
            if step.head is None:
                feed.counters["lost_leases"] += step.lost
                return None
            head = step.head
            body = await self._persist(feed, q.batch_body, head.batch) if head.batch else None
            if body is None:
                head = dataclasses.replace(head, batch="")
        if body is not None:
            outcome = await feed.poster.resend(head.batch, body)
        else:
            outcome = await feed.poster.send(head.events, head.sid, head.seqs)
        attempt = head.attempts + 1
        if outcome.ok:
            for seq in head.seqs:
                log.debug(
                    "webhook %s: delivered survey %s seq %d (HTTP %s, attempt %d)",
                    ep.name,
                    head.sid,
                    seq,
                    outcome.status,
                    attempt,
                )
            # The first success after failures: the receiver is back.
            wake = self._wake_on_recovery if head.attempts or feed.failing else 0
            feed.failing = False
            if head.batch:
                recorded, step = await self._persist(feed, q.batch_done, head, feed.lease_s, wake)
                feed.counters["delivered"] += recorded
            else:
                step = await self._persist(feed, q.done, head, feed.lease_s, wake)
                feed.counters["delivered"] += len(head.events)
            feed.counters["lost_leases"] += step.lost
            return step.head
        if outcome.lead:
            feed.counters["failed_requests"] += 1
        feed.failing = True
        jitter = random.random() if outcome.jitter is None else outcome.jitter
        delay = backoff_delay(attempt, ep.backoff_initial_s, ep.backoff_max_s, jitter)
        if outcome.retry_after_s is not None:
            delay = max(delay, min(outcome.retry_after_s, ep.backoff_max_s))
        # A request that can never be built is dead-lettered at its first attempt (a
        # max age of 0): retrying it for days would hold the survey's later events.
        max_age_s = 0.0 if outcome.permanent else ep.max_age_s
        result = await self._persist(
            feed,
            q.fail,
            head,
            outcome.error,
            delay,
            max_age_s,
            feed.lease_s,
            count=outcome.lead,
            pin=outcome.batch if outcome.lead else None,
        )
        if result.dead:
            feed.counters["dead_lettered"] += 1
            log.error(
                "webhook %s: dead-lettered survey %s seq %d after %d attempts: %s",
                ep.name,
                head.sid,
                head.seq,
                result.attempts,
                outcome.error,
            )
            return result.step.head
        refused = outcome.status is not None and 400 <= outcome.status < 500
        if refused and outcome.status not in TRANSIENT_4XX:
            log.error(
                "webhook %s: receiver refused survey %s seq %d: %s (attempt %d) — check the "
                "endpoint's URL and secret; retrying in %.1fs",
                ep.name,
                head.sid,
                head.seq,
                outcome.error,
                result.attempts,
                delay,
            )
        else:
            log.warning(
                "webhook %s: delivery failed survey %s seq %d: %s (attempt %d), retry in %.1fs",
                ep.name,
                head.sid,
                head.seq,
                outcome.error,
                result.attempts,
                delay,
            )
        feed.counters["lost_leases"] += result.step.lost
        return None

    async def _persist(
        self, feed: _Feed, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a Redis step until it succeeds: a delivery already made must be recorded
        (or its survey given back) once Redis is reachable again."""
        pause = redis_outage(feed.endpoint.name, "recording an outcome")
        while True:
            try:
                return await fn(*args, **kwargs)
            except lifecycle.OUTAGES as exc:
                await pause.wait(exc)

    async def _release_orphans(self, feed: _Feed) -> None:
        """Give back leases in our name that no task of ours serves: taken by a script
        whose reply was lost (Redis restarted under it), or by an earlier life of this
        consumer (kill -9). Otherwise those surveys would wait for the lease to expire."""
        if feed.reserved:
            return
        orphans = await feed.queue.orphans()
        if feed.reserved:  # a claim started meanwhile: its leases may be in the list
            return
        for sid, token in orphans:
            if feed.held.get(sid) != token and await feed.queue.release(sid, token):
                log.info(
                    "webhook %s: gave back survey %s (lease without a task)",
                    feed.endpoint.name,
                    sid,
                )

    async def _gauge_loop(self, feed: _Feed) -> None:
        loop = asyncio.get_running_loop()
        cursor, next_prune = "0", loop.time() + self._prune_interval_s
        while not self._stopping:
            if loop.time() >= next_prune:  # one HSCAN step per tick, a pass per interval
                with contextlib.suppress(*lifecycle.OUTAGES):
                    cursor, pruned = await feed.queue.prune(cursor)
                    if pruned:
                        log.info(
                            "webhook %s: forgot %d expired surveys", feed.endpoint.name, pruned
                        )
                    if cursor == "0":
                        next_prune = loop.time() + self._prune_interval_s
            try:
                await self._release_orphans(feed)
                feed.gauges = await feed.queue.gauges()
            except lifecycle.OUTAGES as exc:  # e.g. no group yet: try later
                log.debug("webhook %s: gauges unavailable: %s", feed.endpoint.name, exc)
                lifecycle.still_wanted()
            # forget gaps of surveys another process took over
            stale = loop.time() - 2 * self._gap_timeout_s
            for sid in [s for s, t in feed.gap_since.items() if t < stale]:
                del feed.gap_since[sid]
            if self._stopping:  # stopped during the Redis calls above: no last sleep
                return
            await asyncio.sleep(self._stats_interval_s)
