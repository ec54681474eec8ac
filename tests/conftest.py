"""Shared fixtures: a real redis-server on a free loopback port, the survey store on
it, and the ASR speech files and decoder pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from asr.pool import AsrPool
from gateway.store.surveys import Store
from tests.asr_fixtures import SpeechFiles, korean_model, make_speech_files
from tests.servers import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on a freshly emptied database."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_text(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on a freshly emptied database, decoding replies to str as the service's
    own client does."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def store(redis_text: aioredis.Redis) -> Store:
    """The survey store on ``redis_text``, its function library loaded."""
    s = Store(redis_text, ZoneInfo("Asia/Shanghai"))
    await s.load()
    return s


@pytest.fixture
async def clean_redis(redis_server: RedisServer) -> RedisServer:
    """The session's redis-server, emptied (for tests that start their own clients)."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    return redis_server


# --- ASR: speech files and a decoder pool (integration tests of asr/) ----------------
@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechFiles:
    """espeak-ng speech, silence and broken files at 8 kHz, made once per session."""
    return make_speech_files(tmp_path_factory.mktemp("asr-speech"))


@pytest.fixture(scope="session")
def pool() -> Iterator[AsrPool]:
    """One decoder process with the Korean test model, loaded once for the session (the
    tests that kill it check that it comes back); not tied to an event loop, so each
    test's loop can use it."""
    asr_pool = AsrPool(korean_model(), workers=1, job_timeout_s=300)
    try:
        yield asr_pool
    finally:
        asr_pool.close()
