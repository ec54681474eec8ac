"""Reading a Redis stream through a consumer group: the pattern every worker uses.

Create the group from the start of the stream (entries added before the first start
are not skipped), re-take this consumer's own unacknowledged entries after a restart,
then read new ones; entries a dead consumer left pending are claimed after a while.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

Entry = tuple[str, dict[str, str]]


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create `group` on `stream` (and the stream) unless it exists."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def text(value: object) -> str:
    """Decode a Redis reply item (bytes or str, whatever decode_responses says)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[Entry]:
    out: list[Entry] = []
    for entry_id, fields in raw or []:
        out.append((text(entry_id), {text(k): text(v) for k, v in (fields or {}).items()}))
    return out


def reply_entries(reply: Any) -> list[Any]:
    """The entries of an XREADGROUP reply, in its RESP2 (list) or RESP3 (dict) form."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [e for streams in reply.values() for e in (streams[0] if streams else [])]
    return [e for _, entries in reply for e in entries]


async def read(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    start: str = ">",
    count: int = 100,
    block_ms: int | None = 500,
) -> list[Entry]:
    """XREADGROUP: new entries (start ">") or this consumer's pending ones after
    `start` (an id). An entry whose fields are empty was trimmed or deleted."""
    resp = cast(
        Any,
        await redis.xreadgroup(
            group, consumer, {stream: start}, count=count, block=None if start != ">" else block_ms
        ),
    )
    return _entries(reply_entries(resp))


async def pending(
    redis: aioredis.Redis, stream: str, group: str, consumer: str, *, page: int = 500
) -> list[Entry]:
    """All of this consumer's unacknowledged entries (after a restart)."""
    out: list[Entry] = []
    last = "0"
    while True:
        batch = await read(redis, stream, group, consumer, start=last, count=page)
        if not batch:
            return out
        out.extend(batch)
        last = batch[-1][0]


# A claim lands at most this long after an entry turned idle enough: the longest pause
# between two claims (and between two renewals, which must come well before an entry
# looks abandoned).
CLAIM_EVERY_MAX_S = 5.0


def claim_every_s(claim_idle_s: float) -> float:
    """How often a worker claims the entries others abandoned, and renews its own: a
    quarter of ``claim_idle_s``, at most CLAIM_EVERY_MAX_S. An entry is then taken over
    within ``claim_idle_s`` + this of its owner's death, however many there are."""
    return max(0.05, min(CLAIM_EVERY_MAX_S, claim_idle_s / 4))


async def claim_abandoned(
    redis: aioredis.Redis,
    stream: str,
    group: str,
    consumer: str,
    idle_ms: int,
    count: int = 100,
    *,
    limit: int | None = None,
) -> list[Entry]:
    """Take over every entry other consumers have left pending for `idle_ms` (XAUTOCLAIM
    page by page of `count`, until the pending list is scanned, or `limit` are taken).
    An entry deleted from the stream while pending comes back with empty fields."""
    out: list[Entry] = []
    cursor = "0-0"
    while limit is None or len(out) < limit:
        page = count if limit is None else min(count, limit - len(out))
        resp = cast(
            Any, await redis.xautoclaim(stream, group, consumer, idle_ms, cursor, count=page)
        )
        out.extend(_entries(resp[1]))
        # Redis 7 also names entries that were deleted: they are no longer pending.
        for gone in resp[2] if len(resp) > 2 else []:
            out.append((text(gone), {}))
        cursor = text(resp[0])
        if cursor == "0-0":
            break
    return out


async def renew(
    redis: aioredis.Redis, stream: str, group: str, consumer: str, entry_ids: Iterable[str]
) -> int:
    """Reset the idle time of entries this consumer is still working on (XCLAIM JUSTID,
    which leaves their delivery count alone), so that no other consumer takes them over
    as abandoned. Only entries still pending under ``consumer`` are renewed (one that
    another consumer took meanwhile stays his). Returns how many were renewed."""
    wanted = set(entry_ids)
    if not wanted:
        return 0
    rows = await redis.xpending_range(
        stream, group, min="-", max="+", count=len(wanted) + 1000, consumername=consumer
    )
    mine = [i for i in (text(r["message_id"]) for r in rows) if i in wanted]
    if not mine:
        return 0
    await redis.xclaim(stream, group, consumer, 0, list[Any](mine), justid=True)
    return len(mine)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def trim_consumed(redis: aioredis.Redis, stream: str) -> int:
    """Drop the entries every consumer group of `stream` has read and acknowledged.

    Redis 7.0's XTRIM knows nothing of groups, so the cut is the oldest entry any group
    still needs: the smallest of each group's last-delivered id (+1) and its oldest
    pending id. A stream without groups is left alone (a group created later starts
    from its beginning). Returns the number of entries removed.
    """
    try:
        groups = cast(Any, await redis.xinfo_groups(stream))
    except ResponseError:
        return 0  # no such stream yet
    if not groups:
        return 0
    cut: tuple[int, int] | None = None
    for g in groups:
        info = {text(k): v for k, v in g.items()}
        last = _id_key(text(info["last-delivered-id"]))
        need = (last[0], last[1] + 1)
        if int(info.get("pending", 0)):
            summary = cast(Any, await redis.xpending(stream, text(info["name"])))
            oldest = summary.get("min") if isinstance(summary, dict) else None
            if oldest:
                need = min(need, _id_key(text(oldest)))
        cut = need if cut is None else min(cut, need)
    if cut is None or cut == (0, 1):
        return 0
    return int(await redis.xtrim(stream, minid=f"{cut[0]}-{cut[1]}", approximate=False))
