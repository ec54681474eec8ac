"""Shared fixtures: a real redis-server on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from asr.pool import AsrPool
from devstack.localstack import free_port, redis_command
from gateway.store.surveys import Store
from tests.asr_fixtures import SpeechFiles, korean_model, make_speech_files

__all__ = ["RedisServer", "free_port"]


class RedisServer:
    """A redis-server process owned by the test session (persistent, so it can be
    restarted without losing data, as a production Redis with AOF would)."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        """``extra_args``: redis-server options that override the usual ones."""
        self.workdir = workdir
        self.extra_args = extra_args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*redis_command(self.port, self.workdir), *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        """Stop and start the same server (same port, same data directory)."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no final AOF rewrite); start() brings it back
        on the same port and data directory."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


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
@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechFiles:
    """espeak-ng speech, silence and broken files at 8 kHz, made once per module."""
    return make_speech_files(tmp_path_factory.mktemp("asr-speech"))


@pytest.fixture(scope="module")
def pool() -> Iterator[AsrPool]:
    """One decoder process with the Korean test model; not tied to an event loop, so
    each test's loop can use it."""
    asr_pool = AsrPool(korean_model(), workers=1, job_timeout_s=300)
    try:
        yield asr_pool
    finally:
        asr_pool.close()
