"""The coalescer on a real Redis: the commands of one tick share a pipeline, and a bad
one fails only its own caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway.store.coalesce import Coalescer, UnsendableCommand
from gateway.store.surveys import Store
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


class Recording(Coalescer):
    """A coalescer that remembers the size of every batch it sent."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.batches: list[int] = []

    async def _execute(self, batch: list[Any]) -> None:
        self.batches.append(len(batch))
        await super()._execute(batch)


async def test_one_bad_command_fails_only_its_caller(store: Store) -> None:
    commands = Recording(store.redis)
    await commands.execute("SET", "a-string", "x")
    good = [commands.execute("SET", f"k{i}", f"v{i}") for i in range(200)]
    bad = [
        commands.execute("SET", "surrogate", "\ud800"),  # cannot be encoded
        commands.execute("INCR", "a-string"),  # an error reply
        commands.fcall("minyi_receipt", "k1", "k2", "not json", "t", "1", "60"),  # a refusal
        commands.execute("SET", "flag", True),  # a type Redis has no form for
    ]
    more = [commands.fcall("minyi_note_event", "", "t", "x", "{}") for _ in range(50)]
    results = await asyncio.gather(*good, *bad, *more, return_exceptions=True)
    assert results[:200] == [True] * 200
    surrogate, wrongtype, refused, flag = results[200:204]
    assert isinstance(surrogate, UnsendableCommand) and "surrogates" in str(surrogate)
    assert isinstance(wrongtype, ResponseError) and "not an integer" in str(wrongtype)
    assert isinstance(refused, ResponseError) and "minyi_receipt" in str(refused)
    assert isinstance(flag, UnsendableCommand)
    assert results[204:] == [0] * 50
    assert max(commands.batches) >= 250  # one pipeline for the good and the bad
    assert await store.redis.get("k199") == "v199"
    assert await store.redis.exists("surrogate") == 0


async def test_a_lost_connection_fails_the_batch_and_the_next_one_works(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    killer = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        commands = Coalescer(client)
        await client.mset({f"lost:k{i}": f"v{i}" for i in range(10)})
        await commands.execute("PING")
        await killer.client_kill_filter(_type="normal", skipme=True)
        results = await asyncio.gather(
            *(commands.execute("GET", f"lost:k{i}") for i in range(10)), return_exceptions=True
        )
        # the connection was closed under the batch: each caller learns it, or gets its
        # own command's true answer (redis-py may reconnect at once and answer: 8.2.0's
        # pipelines do), never another's nor a lost one
        assert all(
            isinstance(r, RedisConnectionError) or r == f"v{i}" for i, r in enumerate(results)
        ), results
        assert await commands.execute("SET", "after", "1") is True
        assert await client.get("after") == "1"
    finally:
        await client.aclose()
        await killer.aclose()
