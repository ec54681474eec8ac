"""The webhook feed's Redis side: per-endpoint queues, leases, retry state, dead letters.

Everything that changes more than one key is one function of the Redis function
library (gateway/store/lua/webhooks.lua, called with FCALL), so any number of webhook
processes can share one Redis and a crash (or kill -9) at any point leaves a
consistent state. Per endpoint (keys in gateway/store/keys.py):

- the consumer group ``webhook:<endpoint>`` on the events stream feeds *intake*,
  which moves each entry into the survey's wait zset (score = seq), schedules the
  survey in the due zset and XACKs — in one call, so an entry is either pending in
  the group or queued, never neither;
- the due zset (score = next attempt time) is both the schedule and the lock: a
  claim re-scores a survey to ``now + lease``, so nobody else takes it while it is
  being served, and records an owner token in the lease hash: a holder whose lease
  expired and was taken over finds another token there and stops;
- the delivered hash is the per-survey high-water mark (delivered *or*
  dead-lettered), the retry hash the failure state of the survey's head event, the
  dead stream keeps events that failed for ``max_age``, and the parked hash the surveys
  whose later events wait behind such a dead letter until it is replayed (so that a
  survey's events reach the receiver in order, replay or not);
- with batching, a batch that failed is stored (its id, body and members) and each
  member survey pinned to it: a retry of any member sends that batch again, the same
  id and bytes, and its delivery records every member still pinned to it.

All times come from Redis' TIME, so leases and backoff mean the same on every host
whatever their clocks say.

Redis: standalone and Sentinel, not Cluster (gateway/store/keys.py, docs/operations.md).
The functions declare the endpoint's keys they name, but they also touch the wait
zsets of many surveys, and the store's functions write the events stream together with
a survey's keys: only a hash tag common to the whole keyspace would put all of that in
one slot, which leaves a Cluster nothing to spread.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from gateway import lifecycle, logs
from gateway.store import keys, streams
from gateway.store.coalesce import Coalescer
from gateway.store.replication import Replication
from gateway.store.streams import text
from gateway.webhooks.sender import FreshBatch

log = logs.logger(__name__)

# What EndpointQueue.gauges() measures (None until first measured).
GAUGES = (
    "queued",
    "backlog",
    "replayed_total",
    "surveys_due",
    "stream_lag",
    "stream_pending",
    "oldest_undelivered_age_s",
)

# A stream entry as returned by redis-py: (id, {field: value}); fields are None for
# entries deleted from the stream while still pending.
StreamEntry = tuple[Any, Any]


def raw(value: object) -> bytes:
    """A Redis reply item as bytes (event JSON goes on the wire as stored)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def backoff_delay(attempt: int, initial_s: float, max_s: float, rand: float) -> float:
    """Seconds to wait after the ``attempt``-th failure (1-based) of an event.

    Exponential from ``initial_s``, capped at ``max_s``, with ±25 % jitter (``rand``
    uniform in [0, 1)) so that surveys failing together do not retry in lock-step.
    """
    base = min(max_s, initial_s * 2.0 ** min(attempt - 1, 60))
    return min(max_s, base * (0.75 + 0.5 * rand))


# --- Python side -----------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """The first queued events of a survey we hold a lease on: the head event and the
    ones that directly follow it (more than one only when batching)."""

    sid: str
    token: str  # our lease's owner token; proves we still hold the survey
    events: tuple[bytes, ...]  # event JSON exactly as stored (what goes on the wire)
    seqs: tuple[int, ...]
    delivered: int  # the survey's high-water mark before these events
    attempts: int  # failed attempts of the head event so far
    batch: str = ""  # the stored batch these events are pinned to ("" = none)

    @property
    def event(self) -> bytes:
        """The head event."""
        return self.events[0]

    @property
    def seq(self) -> int:
        """The head event's seq."""
        return self.seqs[0]

    @property
    def gap(self) -> bool:
        """A predecessor is missing (events without a survey have no order)."""
        return bool(self.sid) and self.seq > self.delivered + 1


@dataclass(frozen=True)
class Late:
    """An event queued after a later event of its survey was delivered: the gap wait
    gave up on it, or something wrote it late. It is delivered (out of order), and
    logged as the bug it is."""

    sid: str
    seq: int
    delivered: int  # the survey's delivered mark when it was queued


@dataclass(frozen=True)
class Step:
    """What the holder of a survey does next: serve ``head``, or stop."""

    head: Head | None
    lost: bool = False  # another process took the survey over (our lease expired)


@dataclass(frozen=True)
class FailResult:
    """The effect of a failed attempt."""

    attempts: int
    dead: bool  # the head event was dead-lettered (or already gone)
    step: Step  # for dead: the survey's next head; otherwise head None


def _head(sid: object, row: Sequence[object]) -> Head:
    """Parse {token, delivered, retry state, batch pin, event1, seq1, event2, ...}."""
    token, delivered, retry_state, pin = row[0], row[1], row[2], text(row[3])
    events = [raw(e) for e in row[4::2]]
    seqs = [int(float(text(s))) for s in row[5::2]]
    survey = text(sid)
    run = 1
    # only a consecutive run goes out together; events without a survey have no order
    while run < len(seqs) and (not survey or seqs[run] == seqs[0] + run):
        run += 1
    attempts = 0
    if retry_state:
        state = json.loads(text(retry_state))
        if int(state.get("seq", -1)) == seqs[0]:
            attempts = int(state.get("attempts", 0))
    batch, _, last = pin.partition(" ")
    if batch:
        # the run as it went out in its batch (later events wait for the next request)
        run = next((i + 1 for i, s in enumerate(seqs[:run]) if s == int(last)), run)
    return Head(
        sid=survey,
        token=text(token),
        events=tuple(events[:run]),
        seqs=tuple(seqs[:run]),
        delivered=int(float(text(delivered))),
        attempts=attempts,
        batch=batch,
    )


def _step(sid: str, reply: Sequence[object]) -> Step:
    kind = text(reply[0])
    if kind == "next":
        return Step(_head(sid, reply[1:]))
    return Step(None, lost=kind == "lost")


class EndpointQueue:
    """One endpoint's queues in Redis; every method is one round trip."""

    def __init__(
        self,
        redis: aioredis.Redis,
        endpoint: str,
        *,
        run: int = 1,
        owner: str = "",
        replication: Replication | None = None,
    ) -> None:
        """``run``: how many consecutive events of a survey a head may carry (batching);
        ``owner``: the consumer name, the prefix of this process's lease tokens;
        ``replication``: no head is handed out (so no event POSTed) before the writes
        behind it are on the replicas (gateway/store/replication.py)."""
        self.redis = redis
        self.endpoint = endpoint
        self.run = run
        self.owner = owner
        self.stream = keys.EVENTS
        self.group = keys.WEBHOOK_GROUP.format(endpoint=endpoint)
        self.due = keys.WEBHOOK_DUE.format(endpoint=endpoint)
        self.delivered = keys.WEBHOOK_DELIVERED.format(endpoint=endpoint)
        self.retry = keys.WEBHOOK_RETRY.format(endpoint=endpoint)
        self.dead = keys.WEBHOOK_DEAD.format(endpoint=endpoint)
        self.leases = keys.WEBHOOK_LEASE.format(endpoint=endpoint)
        self.parked = keys.WEBHOOK_PARKED.format(endpoint=endpoint)
        self.batch_of = keys.WEBHOOK_BATCH_OF.format(endpoint=endpoint)
        self.batches = keys.WEBHOOK_BATCHES.format(endpoint=endpoint)
        self.stats_prefix = f"webhook:{endpoint}:"
        # Function calls of concurrent deliveries share pipelines (one round trip a tick).
        self.commands = Coalescer(redis, replication=replication)

    def _token(self) -> str:
        # A new token per claim: another claim of the same survey never reuses it.
        return f"{self.owner}:{secrets.token_hex(8)}"

    async def orphans(self) -> list[tuple[str, str]]:
        """(survey id, token) of the leases held under this owner's name: the caller
        compares them with what it really serves (a lost reply, or an earlier life of
        a process with the same consumer name, leaves leases nobody serves)."""
        leases = await self.redis.hgetall(self.leases)
        return [
            (text(k), text(v))
            for k, v in leases.items()
            if text(v).rpartition(":")[0] == self.owner  # not a name that merely starts so
        ]

    def wait_key(self, sid: str) -> str:
        """The wait zset of one survey."""
        return keys.WEBHOOK_WAIT.format(endpoint=self.endpoint, survey_id=sid)

    async def ensure_group(self) -> None:
        """Create the endpoint's consumer group at the stream's start (idempotent).

        Id 0, not "$": events added before the first start must be delivered too.
        """
        await streams.ensure_group(self.redis, self.stream, self.group)

    async def intake(
        self, entries: Sequence[tuple[str, str, int, bytes]], take: int, lease_s: float
    ) -> tuple[int, list[Head], list[Late]]:
        """Queue well-formed entries (id, survey id, seq, event) and XACK them; an entry
        is queued by the call that acknowledges it, and only by that one.

        Returns how many surveys this call scheduled (they were not due yet), the heads
        of up to ``take`` of them, leased to the caller (the fast path, which saves a
        claim round trip between an event's arrival and its request), and the events
        queued although a later one of their survey was delivered already (:class:`Late`).
        """
        if not entries:
            return 0, [], []
        args: list[str | int | float | bytes] = [self.endpoint, self.stats_prefix]
        args += [take, lease_s, self._token(), self.run]
        for entry_id, sid, seq, event in entries:
            args += [entry_id, sid, seq, event]
        keys_ = [
            self.stream,
            self.due,
            self.delivered,
            keys.STATS,
            self.retry,
            self.leases,
            self.parked,
        ]
        reply = await self.commands.fcall("minyi_wh_intake", *args, keys=keys_)
        flat = reply[1]
        late = [
            Late(text(flat[i]), int(flat[i + 1]), int(flat[i + 2])) for i in range(0, len(flat), 3)
        ]
        return int(reply[0]), [_head(row[0], row[1:]) for row in reply[2:]], late

    async def reject(self, entry_id: str, fields: dict[str, bytes], error: str) -> None:
        """Dead-letter a malformed stream entry (kept for humans, not replayable) and XACK it."""
        kept: dict[FieldT, EncodableT] = {f"entry_{k}": v for k, v in fields.items()}
        kept.update({"error": error, "entry": entry_id})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead, kept)
            pipe.hincrby(keys.STATS, self.stats_prefix + "dead", 1)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()

    async def claim(self, limit: int, lease_s: float) -> list[Head]:
        """Lease up to ``limit`` surveys that are due; returns their head events."""
        reply = await self.commands.fcall(
            "minyi_wh_claim",
            self.endpoint,
            limit,
            lease_s,
            self._token(),
            self.run,
            keys=[self.due, self.delivered, self.retry, self.leases],
        )
        return [_head(row[0], row[1:]) for row in reply]

    async def reread(self, head: Head, lease_s: float) -> Step:
        """Read a held survey's head again (renewing the lease)."""
        reply = await self.commands.fcall(
            "minyi_wh_reread",
            self.endpoint,
            head.sid,
            head.token,
            lease_s,
            self.run,
            keys=[self.due, self.delivered, self.retry, self.leases],
        )
        return _step(head.sid, reply)

    async def done(self, head: Head, lease_s: float, wake: int) -> Step:
        """Record the delivery of ``head.events``; returns the survey's next head while
        we hold it."""
        reply = await self.commands.fcall(
            "minyi_wh_done",
            self.endpoint,
            self.stats_prefix,
            head.sid,
            head.token,
            head.seq,
            head.seqs[-1],
            lease_s,
            wake,
            self.run,
            *head.events,
            keys=[self.due, self.delivered, self.retry, keys.STATS, self.leases],
        )
        return _step(head.sid, reply)

    async def fail(
        self,
        head: Head,
        error: str,
        delay_s: float,
        max_age_s: float,
        lease_s: float,
        *,
        count: bool = True,
        pin: FreshBatch | None = None,
    ) -> FailResult:
        """Record a failed attempt of the head event: back off, or dead-letter it after
        ``max_age_s`` and park the survey (the events behind it have not failed: they
        wait for the replay, so that the survey's events arrive in order). ``count``:
        this call counts the failed request (once per request, whatever it carried);
        ``pin``: a batch that failed at its first sending, stored and its members
        pinned to it, so that every retry sends it again as it was."""
        batch: list[str | bytes] = ["", "", ""]
        if pin is not None:
            members = [[sid, first, last] for sid, first, last in pin.members]
            batch = [pin.id, pin.body, json.dumps(members, separators=(",", ":"))]
        reply = await self.commands.fcall(
            "minyi_wh_fail",
            self.endpoint,
            self.stats_prefix,
            head.sid,
            head.token,
            head.event,
            head.seq,
            error,
            delay_s,
            max_age_s,
            lease_s,
            self.run,
            1 if count else 0,
            *batch,
            keys=[
                self.due,
                self.delivered,
                self.retry,
                keys.STATS,
                self.dead,
                self.leases,
                self.parked,
                self.batch_of,
                self.batches,
            ],
        )
        kind, attempts = text(reply[0]), int(reply[1])
        if kind == "dead":
            return FailResult(attempts, True, _step(head.sid, reply[2]))
        return FailResult(attempts, False, Step(None, lost=kind == "lost"))

    async def batch_body(self, batch_id: str) -> bytes | None:
        """The body a stored batch first went out with (None: it is gone, delivered or
        given up by all its members)."""
        body = await self.redis.hget(self.batches, batch_id + ":body")
        return None if body is None else raw(body)

    async def batch_done(self, head: Head, lease_s: float, wake: int) -> tuple[int, Step]:
        """Record the delivery of ``head``'s stored batch: every member still pinned to
        it is delivered up to its run's end. Returns how many queued events that
        recorded (0 when another process recorded the batch first) and the next step
        for ``head``'s survey."""
        reply = await self.commands.fcall(
            "minyi_wh_batch_done",
            self.endpoint,
            self.stats_prefix,
            head.sid,
            head.token,
            head.batch,
            lease_s,
            wake,
            self.run,
            keys=[
                self.due,
                self.delivered,
                self.retry,
                keys.STATS,
                self.leases,
                self.batch_of,
                self.batches,
            ],
        )
        return int(reply[0]), _step(head.sid, reply[1])

    async def release(self, sid: str, token: str, delay_s: float = 0.0) -> bool:
        """Give a held survey back, due in ``delay_s``; False if no longer ours."""
        return bool(
            await self.commands.fcall(
                "minyi_wh_release", sid, token, delay_s, keys=[self.due, self.leases]
            )
        )

    async def pending_count(self) -> int:
        """Entries read from the stream by any consumer of the group but not yet queued."""
        info = await self.redis.xpending(self.stream, self.group)
        return int(info["pending"])

    async def replay_ids(self, ids: Sequence[str]) -> int:
        """Move the given dead letters back into their surveys' queues."""
        if not ids:
            return 0
        reply = await self.commands.fcall(
            "minyi_wh_replay",
            self.endpoint,
            self.stats_prefix,
            *ids,
            keys=[self.dead, self.due, keys.STATS, self.parked],
        )
        return int(reply)

    async def prune(self, cursor: str, count: int = 1000) -> tuple[str, int]:
        """One step of the sweep of the delivered hash (HSCAN ``cursor``, "0" to start):
        drops surveys whose record expired and that have nothing queued. Returns the
        next cursor ("0": a full pass is done) and how many were dropped."""
        reply = await self.commands.fcall(
            "minyi_wh_prune",
            self.endpoint,
            cursor,
            count,
            keys=[self.delivered, self.due, self.retry, self.parked],
        )
        return text(reply[0]), int(reply[1])

    async def gauges(self) -> dict[str, float | int | None]:
        """Backlog gauges for stats(): queued events, surveys due, stream lag, oldest age.

        The oldest age is sampled (both ends of the due set and the stream's oldest
        unqueued entry), so it is cheap with a million queued events and close enough
        for an alarm.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.STATS, [self.stats_prefix + "queued", self.stats_prefix + "replayed"])
            pipe.zcard(self.due)
            pipe.xinfo_groups(self.stream)
            pipe.xpending(self.stream, self.group)
            pipe.zrange(self.due, 0, 9)
            pipe.zrange(self.due, -10, -1)
            (queued, replayed), due, groups, pending, first, last = await pipe.execute()
        group = next((g for g in groups if text(g["name"]) == self.group), None)
        lag = group.get("lag") if group else None
        oldest_ms: list[float] = []
        if pending["pending"]:
            oldest_ms.append(float(text(pending["min"]).split("-")[0]))
        if group and lag:
            after = "(" + text(group["last-delivered-id"])
            nxt = await self.redis.xrange(self.stream, after, count=1)
            if nxt:
                oldest_ms.append(float(text(nxt[0][0]).split("-")[0]))
        for sid in {text(s) for s in [*first, *last]}:
            head = await self.redis.zrange(self.wait_key(sid), 0, 0)
            if head:
                oldest_ms.append(_event_time_ms(head[0]))
        now_ms = time.time() * 1000.0
        return {
            "queued": int(queued or 0),
            "backlog": int(queued or 0) + int(lag or 0),
            "replayed_total": int(replayed or 0),
            "surveys_due": int(due),
            "stream_lag": None if lag is None else int(lag),
            "stream_pending": int(pending["pending"]),
            "oldest_undelivered_age_s": (
                round(max(0.0, now_ms - min(oldest_ms)) / 1000.0, 3) if oldest_ms else 0.0
            ),
        }


def _event_time_ms(event: object) -> float:
    try:
        when = datetime.fromisoformat(json.loads(raw(event))["time"])
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp() * 1000.0
    except (ValueError, KeyError, TypeError):
        return time.time() * 1000.0


def redis_outage(endpoint: str, what: str) -> lifecycle.Outage:
    """Waiting out Redis for one loop of one endpoint: short sleeps (50 ms up to 2 s),
    the feed is latency-sensitive."""
    return lifecycle.Outage(
        log, f"webhook {endpoint}: {what}", backoff=lifecycle.Backoff(0.05, 2.0)
    )
