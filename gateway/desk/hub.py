"""One Redis subscription per process for every open desk: the dialer's pops and call
ends (``keys.DESK_CHANNEL``, published by minyi_desk_call) handed to the desks of
their agent.

One connection however many desks are open (a subscription holds its connection);
while Redis is away the hub waits and subscribes again, and the desks that were open
re-read their call (a pop missed meanwhile is in ``keys.DESK_CALL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis

from gateway import lifecycle, logs
from gateway.store import keys

log = logs.logger(__name__)
QUEUE_MAX = 64


class Hub:
    """Fan the desk channel out to per-agent queues."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._listeners: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def listen(self, agent: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the channel's messages for ``agent`` while the context is open."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="desk-hub")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self._listeners.setdefault(agent, set()).add(queue)
        try:
            yield queue
        finally:
            self._listeners[agent].discard(queue)

    def end_streams(self) -> None:
        """Tell every open desk stream to end (the process drains)."""
        for queues in self._listeners.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait({"kind": "close"})

    async def close(self) -> None:
        """Stop listening (the drain)."""
        task, self._task = self._task, None
        if task is not None:
            await lifecycle.stop_task(task)

    def _dispatch(self, data: str | bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        for queue in list(self._listeners.get(str(message.get("agent", "")), ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck desk re-reads on reload
                queue.put_nowait(message)

    async def _run(self) -> None:
        backoff = lifecycle.Backoff(1.0)
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.DESK_CHANNEL)
                self.subscribed.set()
                backoff.reset()
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self._dispatch(msg["data"])
            except lifecycle.OUTAGES as exc:
                self.subscribed.clear()
                log.warning("desk hub: Redis unavailable (%s)", lifecycle.describe(exc))
                await asyncio.sleep(backoff.next_delay())
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
