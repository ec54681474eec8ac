"""Dead letters of the webhook feed: list them, and put them back into the feed.

A dead letter is an event that failed for its endpoint's ``max_age_s``; it waits in the
endpoint's dead stream (gateway/store/keys.py WEBHOOK_DEAD) until someone replays it
(``minyi webhooks replay``, gateway/webhooks/cli.py). Its survey is parked meanwhile
(WEBHOOK_PARKED): the survey's later events wait behind it, and the replay puts it back
in front of them, so the receiver gets every survey's events in seq order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from gateway.store.streams import text
from gateway.webhooks.queue import EndpointQueue


async def replay(
    redis: aioredis.Redis, endpoint_name: str, *, since: str | None = None, limit: int | None = None
) -> int:
    """Move an endpoint's dead letters back into the feed; returns how many.

    They are re-sent in seq order per survey (the wait zset orders them), with a fresh
    retry clock. ``since`` is a dead-letter stream id (inclusive), ``limit`` caps the
    count. Safe to run while workers run, and twice at once: each dead letter is moved
    by exactly one call.
    """
    queue = EndpointQueue(redis, endpoint_name)
    total = 0
    cursor = since or "-"
    while limit is None or total < limit:
        page = 256 if limit is None else min(256, limit - total)
        entries = await redis.xrange(queue.dead, cursor, "+", count=page)
        if not entries:
            break
        total += await queue.replay_ids([text(e[0]) for e in entries])
        cursor = "(" + text(entries[-1][0])
    return total


@dataclass(frozen=True)
class DeadCounts:
    """How many dead letters an endpoint has, and how many surveys wait behind them."""

    dead_letters: int
    parked_surveys: int


async def count_dead(redis: aioredis.Redis, endpoint_name: str) -> DeadCounts:
    """The endpoint's dead letters and parked surveys, counted (not listed)."""
    queue = EndpointQueue(redis, endpoint_name)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(queue.dead)
        pipe.hlen(queue.parked)
        dead, parked = await pipe.execute()
    return DeadCounts(int(dead), int(parked))


async def list_dead(
    redis: aioredis.Redis,
    endpoint_name: str,
    *,
    since: str | None = None,
    limit: int | None = 100,
) -> list[dict[str, str]]:
    """An endpoint's dead letters, oldest first, at most ``limit`` (None: all of them),
    without payloads (they may hold citizens' data): id, survey id, seq, event id and
    type, attempts, last error, time."""
    queue = EndpointQueue(redis, endpoint_name)
    out: list[dict[str, str]] = []
    cursor = since or "-"
    while limit is None or len(out) < limit:
        page = 1000 if limit is None else min(1000, limit - len(out))
        entries = await redis.xrange(queue.dead, cursor, "+", count=page) or []
        if not entries:
            break
        out.extend(_dead_item(entry_id, fields) for entry_id, fields in entries)
        cursor = "(" + text(entries[-1][0])
    return out


def _dead_item(entry_id: object, fields: Mapping[Any, Any] | None) -> dict[str, str]:
    f = {text(k): text(v) for k, v in (fields or {}).items()}
    item = {"id": text(entry_id)}
    for name in ("sid", "seq", "attempts", "error", "time", "first_failed_at", "entry"):
        if name in f:
            item[name] = f[name]
    try:
        event = json.loads(f.get("event", ""))
        item["event_id"] = str(event.get("id", ""))
        item["type"] = str(event.get("type", ""))
    except (ValueError, AttributeError):
        pass
    return item
