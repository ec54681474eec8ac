"""Pipelining by event-loop tick: the commands a worker issues while the loop runs
one round of callbacks go to Redis as one pipeline.

The commands of one pipeline belong to unrelated callers (a survey's intake, another
survey's receipt, the raw deliver_sm the ESME must store before it answers), so a
command fails only its own caller:

- its arguments are encoded when it is queued, one command at a time: one that cannot
  be (a lone surrogate in a string, an unsupported type) is refused to its caller at
  once with :class:`UnsendableCommand`, and never joins the pipeline, where redis-py
  would fail the whole batch while packing it;
- each caller gets its own command's result: an error reply (a script's refusal, a
  wrong type) goes to that caller only;
- only a failed connection fails the whole batch (every caller learns it and waits
  out the outage as it would alone).

With a :class:`~gateway.store.replication.Replication` (``[redis] wait_replicas`` > 0),
a batch that holds a write ends with WAIT on the same connection, and its callers get
their results only once the writes are on enough replicas (see
gateway/store/replication.py: a caller with ``FAIL_FAST`` set is told at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import DataError, ResponseError

from gateway.store import library
from gateway.store.replication import FAIL_FAST, READS, NotReplicated, Replication

# (command name, encoded arguments, the caller's future, whether it fails fast)
_Call = tuple[str, tuple[Any, ...], "asyncio.Future[Any]", bool]


class UnsendableCommand(ValueError):
    """A command whose arguments cannot be encoded for Redis (a lone surrogate, a type
    Redis has no form for): the caller's data is wrong, Redis is not down, and a retry
    would fail the same way."""


class Coalescer:
    """Sends the commands issued during one event-loop tick as one pipeline.

    Every worker issues many small, independent commands (an FCALL per survey, part,
    receipt; an XACK per queue entry); one round trip each would make Redis the limit.
    Each command stays atomic on its own, and a pipeline keeps their order.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        max_batch: int = 512,
        *,
        replication: Replication | None = None,
    ) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.replication = replication
        self._pending: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def fcall(self, name: str, *args: Any, keys: Sequence[str] = ()) -> Any:
        """Queue one FCALL of the function library, declaring ``keys``, and wait for
        its result. If Redis does not know the function (a Redis that lost its data, or
        holds an older library), the library is loaded and the call made once more."""
        command = ("FCALL", name, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except ResponseError as exc:
            if not library.function_missing(exc):
                raise
        await library.load(self.redis)
        return await self.execute(*command)

    async def execute(self, *command: Any) -> Any:
        """Queue one command (e.g. "XACK", stream, group, id) and wait for its result.

        Raises :class:`UnsendableCommand` at once when an argument cannot be encoded;
        the other commands of the tick are not affected."""
        args = self._encoded(command)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((str(command[0]), args, fut, FAIL_FAST.get()))
        if len(self._pending) >= self.max_batch:
            self._flush_now()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_now)
        return await fut

    def _encoded(self, command: tuple[Any, ...]) -> tuple[Any, ...]:
        """The command's arguments as the bytes that go on the wire (the name stays a
        str: redis-py picks the reply's parser by it)."""
        encoder = self.redis.connection_pool.get_encoder()  # type: ignore[no-untyped-call]
        try:
            return tuple(encoder.encode(arg) for arg in command[1:])
        except (UnicodeError, DataError) as exc:
            raise UnsendableCommand(f"{command[0]}: {exc}") from None

    def _flush_now(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._execute(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[_Call]) -> None:
        try:
            results = await self._send(batch)
        except BaseException as exc:  # the connection failed: every caller learns it
            for _, _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, fut, _), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    async def _send(self, batch: list[_Call]) -> list[Any]:
        """One round trip: the batch's results (an error reply as its exception), once
        its writes are on enough replicas when that is asked for."""
        rep = self.replication
        if rep is None or all(name.upper() in READS for name, *_ in batch):
            if len(batch) == 1:
                name, args, _, _ = batch[0]
                return [await self.redis.execute_command(name, *args)]  # type: ignore[no-untyped-call]
            rep = None
        pipe = self.redis.pipeline(transaction=False)
        for name, args, _, _ in batch:
            pipe.execute_command(name, *args)
        if rep is not None:
            for command in rep.tail():
                pipe.execute_command(*command)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if rep is not None:
            era = results.pop()
            acked = results.pop()
            if isinstance(acked, Exception):
                raise acked
            if not rep.enough(acked):
                await self._confirm(rep, batch, era)
        return results

    @staticmethod
    async def _confirm(rep: Replication, batch: list[_Call], era: object) -> None:
        """The batch's writes are not on enough replicas yet: callers that fail fast
        learn it now; the others wait until they are (or the master changed)."""
        for _, _, fut, fail_fast in batch:
            if fail_fast and not fut.done():
                fut.set_exception(
                    NotReplicated(f"not on {rep.replicas} replica(s) within {rep.timeout_ms} ms")
                )
        if all(fut.done() for _, _, fut, _ in batch):
            return
        await rep.confirm(era)
