"""Pipelining by event-loop tick: the commands a worker issues while the loop runs
one round of callbacks go to Redis as one pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.store import library

_Call = tuple[str, tuple[Any, ...], "asyncio.Future[Any]"]


class Coalescer:
    """Sends the commands issued during one event-loop tick as one pipeline.

    Every worker issues many small, independent commands (an FCALL per survey, part,
    receipt; an XACK per queue entry); one round trip each would make Redis the limit.
    Each command stays atomic on its own, and a pipeline keeps their order.
    """

    def __init__(self, redis: aioredis.Redis, max_batch: int = 512) -> None:
        self.redis = redis
        self.max_batch = max_batch
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
        """Queue one command (e.g. "XACK", stream, group, id) and wait for its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((str(command[0]), tuple(command[1:]), fut))
        if len(self._pending) >= self.max_batch:
            self._flush_now()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_now)
        return await fut

    def _flush_now(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._execute(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[_Call]) -> None:
        try:
            if len(batch) == 1:
                name, args, fut = batch[0]
                results: list[Any] = [await self.redis.execute_command(name, *args)]  # type: ignore[no-untyped-call]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for name, args, _ in batch:
                    pipe.execute_command(name, *args)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every caller learns it
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
