"""Writes that a failover cannot take back: Redis WAIT before anything is acknowledged.

Redis replicates asynchronously. A write the master took and had not yet passed on is
gone when a replica is promoted (Sentinel's failover, or the old master back from its
AOF and made a replica of the new one). The gateway acknowledges things to the outside
on the strength of its writes — ``201`` to the core system, ``deliver_sm_resp`` to the
SMS center, a part put on the wire, an event POSTed on the feed — so with
``[redis] wait_replicas`` > 0 none of those happens before the write is on that many
replicas:

- every pipeline the store sends (gateway/store/coalesce.py) that holds a write ends
  with ``WAIT <replicas> <timeout_ms>`` and ``GET minyi:era``, on the same connection:
  WAIT covers every write that connection made, and the era says on which master;
- when WAIT answers fewer replicas, a caller that answers someone now (the API: it
  runs with :data:`FAIL_FAST` set) gets :class:`NotReplicated` at once and answers
  ``503`` — the core system posts again, which is idempotent; a worker's call waits
  instead: :class:`Replication` runs confirmation rounds (a small write, then WAIT, on
  any connection — replication is one ordered stream, so WAIT after a later write
  covers the earlier one) until a replica has it, with one log line per minute;
- a round that comes back short asks the sentinels for the master again (the one the
  writes went to may have been demoted: see connection.rediscover);
- a round that finds another master than the one the writes went to (the era
  changed) cannot confirm them: the callers get :class:`NotReplicated` and redo their
  step from what the new master holds.

Writes themselves are never sent twice because of WAIT: a short WAIT is waited out,
not retried, so a non-idempotent write (a stored deliver_sm) is not duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway import lifecycle, logs
from gateway.store import connection, keys
from gateway.store.streams import text

log = logs.logger(__name__)

# Set in a task that answers someone now (the API's request handlers): a write that is
# not on enough replicas within the WAIT fails at once (503), instead of waiting.
FAIL_FAST: Final[contextvars.ContextVar[bool]] = contextvars.ContextVar(
    "replication_fail_fast", default=False
)
# The counter of confirmation rounds, in the stats hash (/metrics:
# minyi_redis_unconfirmed_total): how often writes had to wait for a replica.
UNCONFIRMED_STAT: Final = "redis:unconfirmed"
# Commands the store sends that write nothing: a pipeline of only these needs no WAIT.
READS: Final = frozenset(
    {"GET", "HGET", "HMGET", "HGETALL", "EXISTS", "SISMEMBER", "ZSCORE", "ZRANGE",
     "ZREVRANGEBYSCORE", "ZRANGEBYSCORE", "LRANGE", "XRANGE", "XPENDING", "PING"}
)  # fmt: skip


class NotReplicated(RedisConnectionError):
    """Writes the gateway made are not on enough replicas (yet), or the master they went
    to is no longer the master: an outage to wait out (the API answers 503)."""


class Replication:
    """How many replicas every acknowledged write waits for, and the shared rounds that
    confirm writes whose WAIT came back short."""

    def __init__(self, redis: aioredis.Redis, replicas: int, timeout_ms: int) -> None:
        if replicas < 1:
            raise ValueError("Replication needs at least one replica to wait for")
        self.redis = redis
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        # (era the writes went to, future) of callers waiting for the next round
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self._rounds: asyncio.Task[None] | None = None
        self._outage = lifecycle.Outage(
            log,
            f"redis: writes not yet on {replicas} replica(s)",
            backoff=lifecycle.Backoff(0.05, 2.0),
        )
        self.short_waits = 0  # WAITs that answered fewer replicas (for tests, metrics)

    def tail(self) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The two commands that end a pipeline of writes: WAIT, and the era."""
        return ("WAIT", self.replicas, self.timeout_ms), ("GET", keys.ERA)

    def enough(self, acked: object) -> bool:
        """Whether a WAIT reply counts enough replicas."""
        return int(text(acked)) >= self.replicas

    async def confirm(self, era: object) -> None:
        """Return once the writes made on the master of ``era`` before this call are on
        enough replicas; NotReplicated when that master is no longer the master."""
        self.short_waits += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((text(era) if era is not None else "", future))
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.create_task(self._run_rounds(), name="redis-confirm")
        await future

    async def _run_rounds(self) -> None:
        while self._waiting:
            # The callers registered before this round started: its write comes after
            # theirs on the master, so its WAIT covers them.
            waiting, self._waiting = self._waiting, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(keys.ERA)
                    pipe.hincrby(keys.STATS, UNCONFIRMED_STAT, 1)
                    pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
                    era, _, acked = await pipe.execute()
            except lifecycle.OUTAGES as exc:
                # The master went away: whether the writes reached a replica first is
                # unknown; the callers redo their step from what Redis holds now.
                self._fail(waiting, f"the master is unreachable ({lifecycle.describe(exc)})")
                continue
            era = text(era) if era is not None else ""
            moved = [(e, f) for e, f in waiting if e != era]
            self._fail(moved, "the master changed before they reached a replica")
            left = [(e, f) for e, f in waiting if e == era]
            if self.enough(acked):
                self._outage.over()
                for _, f in left:
                    if not f.done():
                        f.set_result(None)
                continue
            self._waiting = left + self._waiting
            # No replica takes this master's writes: it may have been demoted (a
            # manual failover leaves it a master for a few seconds). Asking the
            # sentinels again moves the next round, and the next writes, to the new one.
            with contextlib.suppress(*lifecycle.OUTAGES):
                await connection.rediscover(self.redis)
            await self._outage.wait(
                NotReplicated(f"WAIT {self.replicas} {self.timeout_ms}: {text(acked)} replica(s)")
            )

    @staticmethod
    def _fail(waiting: list[tuple[str, asyncio.Future[None]]], why: str) -> None:
        for _, f in waiting:
            if not f.done():
                f.set_exception(NotReplicated(f"writes not confirmed: {why}"))
