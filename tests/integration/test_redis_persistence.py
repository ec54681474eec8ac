"""At start the gateway reads how Redis keeps its data and warns, naming the setting,
when a restart could lose it; a Redis that refuses CONFIG is said to be unchecked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from devstack.localstack import free_port
from gateway.startup import check_redis_persistence
from tests.integration.sms_harness import running_loop
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def server(tmp_path: Path, *args: str) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    s = RedisServer(workdir, *args)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def volatile(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that keeps nothing across a restart."""
    yield from server(tmp_path, "--appendonly", "no", "--save", "")


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that refuses CONFIG, as managed services do."""
    yield from server(tmp_path, "--rename-command", "CONFIG", "")


async def warnings_of(url: str) -> list[str]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await check_redis_persistence(client, logging.getLogger("test"))
    finally:
        await client.aclose()


async def test_the_tests_redis_with_aof_everysec_passes(redis_server: RedisServer) -> None:
    assert await warnings_of(redis_server.url) == []


async def test_a_redis_without_persistence_is_named(volatile: RedisServer) -> None:
    (warning,) = await warnings_of(volatile.url)
    assert "appendonly is no and save is empty" in warning


async def test_a_redis_that_refuses_config_is_said_to_be_unchecked(managed: RedisServer) -> None:
    (warning,) = await warnings_of(managed.url)
    assert warning.startswith("Redis persistence could not be checked")


async def test_the_service_warns_at_start(
    volatile: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="minyi")
    async with running_loop(volatile.url, free_port()):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "minyi"]
    assert any(line.startswith("REDIS CAN LOSE DATA: appendonly is no") for line in lines)
