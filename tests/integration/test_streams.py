"""Stream trimming against a real redis-server: nothing a consumer group still needs
is ever removed."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from gateway.store import streams

pytestmark = pytest.mark.integration


async def test_trim_keeps_what_any_group_still_needs(redis: aioredis.Redis) -> None:
    ids = [await redis.xadd("s", {"n": str(i)}) for i in range(10)]
    assert await streams.trim_consumed(redis, "s") == 0  # no group: left alone
    await streams.ensure_group(redis, "s", "fast")
    await streams.ensure_group(redis, "s", "slow")
    fast = await streams.read(redis, "s", "fast", "c1", count=10, block_ms=None)
    await redis.xack("s", "fast", *(eid for eid, _ in fast))
    slow = await streams.read(redis, "s", "slow", "c2", count=6, block_ms=None)
    await redis.xack("s", "slow", *(eid for eid, _ in slow[:2]))  # 2 done, 4 pending
    removed = await streams.trim_consumed(redis, "s")
    assert removed == 2
    left = [e[0] for e in await redis.xrange("s")]
    assert [x.decode() for x in left] == [i.decode() for i in ids[2:]]
    # the pending ones are still there to be re-read after a crash
    own = await streams.pending(redis, "s", "slow", "c2")
    assert [eid for eid, _ in own] == [i.decode() for i in ids[2:6]]
    await redis.xack("s", "slow", *(eid for eid, _ in own))
    assert await streams.trim_consumed(redis, "s") == 4
    rest = await streams.read(redis, "s", "slow", "c2", count=10, block_ms=None)
    assert len(rest) == 4  # unread by the slow group: kept
