"""Shared fixtures: a real redis-server on a free loopback port, the survey store on
it, the ASR speech files and decoder pool, and the weigher retrained in the background."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from asr.pool import AsrPool
from gateway.store.surveys import Store
from tests.asr_fixtures import SpeechFiles, korean_model, make_speech_files
from tests.servers import RedisServer

REPO = Path(__file__).resolve().parent.parent
# The unit tests that retrain the reply weigher and compare its files byte for byte.
RETRAIN_TESTS = frozenset(
    (
        "test_retraining_gives_the_packaged_file_byte_for_byte",
        "test_retraining_gives_the_packaged_hidden_layer_byte_for_byte",
    )
)
# How long that test may wait for the retraining: five seeds' descents take over five
# minutes on two cores, more than pytest's default timeout when the test runs alone.
RETRAIN_LIMIT_S = 1200
_RETRAINING = pytest.StashKey[tuple[subprocess.Popen[bytes], Path]]()


def _retrain() -> tuple[subprocess.Popen[bytes], Path]:
    out = Path(tempfile.mkdtemp(prefix="minyi-retrain-")) / "weights.json.gz"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sms.understand.learned.train",
            "--out",
            str(out),
            "--hidden-out",
            str(out.parent / "hidden.json.gz"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.nice(10),  # the tests running meanwhile come first
    )
    return proc, out


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start retraining the weigher as soon as the run is known to check it: a minute of
    CPU that overlaps the integration tests' waits instead of adding to the suite's time.
    The checks themselves (`retrained` below) are in tests/unit/test_understand_learned.py
    and test_understand_hidden.py."""
    retrain_tests = [item for item in session.items if item.name in RETRAIN_TESTS]
    for item in retrain_tests:
        item.add_marker(pytest.mark.timeout(RETRAIN_LIMIT_S))
    if retrain_tests:
        session.config.stash[_RETRAINING] = _retrain()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A retraining still running when the run ends (-x, ^C) is stopped."""
    started = session.config.stash.get(_RETRAINING, None)
    if started is not None:
        proc, out = started
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(out.parent, ignore_errors=True)


@pytest.fixture
def retrained(pytestconfig: pytest.Config) -> Path:
    """The weight file `python -m sms.understand.learned.train` writes from the repo's
    data now (started at collection; started here if it was not)."""
    started = pytestconfig.stash.get(_RETRAINING, None)
    if started is None:
        started = pytestconfig.stash[_RETRAINING] = _retrain()
    proc, out = started
    output, _ = proc.communicate(timeout=RETRAIN_LIMIT_S)
    assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
    return out


@pytest.fixture
def retrained_hidden(retrained: Path) -> Path:
    """The hidden layer's file the same retraining wrote."""
    return retrained.parent / "hidden.json.gz"


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """scripts/wheelhouse.sh's wheels of this tree in dist/wheelhouse, made once for the
    tests that package the product (the image builds from there; the offline bundle is
    given it as MINYI_WHEELHOUSE)."""
    out = REPO / "dist" / "wheelhouse"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/wheelhouse.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"wheelhouse.sh exited {proc.returncode}\n{proc.stderr[-3000:]}"
    return out


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
