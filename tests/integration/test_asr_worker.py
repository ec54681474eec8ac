"""The ASR stream worker against a real redis-server and the real decoder (Vosk, Korean model).

Jobs go in through the stream as the dialer adds them; what comes out is read where the
core system reads it: the survey's event list. One pool worker process, shared by the
session (the test machine's two cores are shared).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from asr import jobs
from asr.pool import AsrPool
from asr.worker import AsrWorker, AsrWorkerSettings
from gateway.store import keys
from gateway.store.events import Event
from gateway.store.surveys import Store
from tests.asr_fixtures import SpeechFiles, has_hangul, korean_model
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[2]


def settings(**kw: Any) -> AsrWorkerSettings:
    base = AsrWorkerSettings(
        model=korean_model(), pool_size=1, claim_idle_s=1.0, block_ms=200, consumer="test-1", tz=TZ
    )
    return replace(base, **kw)


@asynccontextmanager
async def running(
    redis_text: aioredis.Redis, pool: AsrPool | None, s: AsrWorkerSettings
) -> AsyncIterator[AsrWorker]:
    worker = AsrWorker(redis_text, s, pool=pool)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)


async def called_survey(store: Store, sid: str, phone: str = "13800138000") -> None:
    """A survey whose callback has been made: the state a recording is transcribed in."""
    await store.intake(
        sid, phone, {"unit": "330602"}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )
    await store.redis.hset(keys.SURVEY.format(survey_id=sid), "state", "called")


def job(sid: str, legs: dict[str, Path | str], job_id: str | None = None) -> dict[str, Any]:
    return {
        "job_id": job_id or f"{sid}:cb1:1",
        "survey_id": sid,
        "callback_id": f"{sid}:cb1",
        "legs": {name: str(path) for name, path in legs.items()},
        "recorded_at": "2026-11-23T10:00:00.000+08:00",
    }


async def events(store: Store, sid: str, etype: str | None = None) -> list[Event]:
    return [e for e in await store.events(sid) if etype is None or e.type == etype]


async def wait_events(store: Store, sid: str, etype: str, n: int = 1) -> list[Event]:
    async def enough() -> bool:
        return len(await events(store, sid, etype)) >= n

    await eventually(enough, f"{n} {etype} event(s) of {sid}", within_s=120)
    return await events(store, sid, etype)


async def pending_count(redis_text: aioredis.Redis) -> int:
    try:
        summary = await redis_text.xpending(jobs.JOBS, jobs.GROUP)
    except ResponseError:  # NOGROUP: no worker has started yet
        return 0
    return int(summary["pending"])


async def test_a_recording_becomes_one_transcript_event_and_the_loop_stays_free(
    store: Store, redis_text: aioredis.Redis, pool: AsrPool, speech: SpeechFiles
) -> None:
    await called_survey(store, "S1")
    the_job = job("S1", {"citizen": speech.citizen_late_8k, "agent": speech.agent_8k})
    lag = 0.0

    async def ticker() -> None:
        nonlocal lag
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.02)
            lag = max(lag, time.monotonic() - t0 - 0.02)

    async with running(redis_text, pool, settings()):
        ticking = asyncio.create_task(ticker())
        try:
            await jobs.enqueue_job(redis_text, the_job)
            [event] = await wait_events(store, "S1", jobs.TRANSCRIPT)
        finally:
            ticking.cancel()
        # The same job enqueued again (a retried dialer step) ends in no second event.
        await jobs.enqueue_job(redis_text, the_job)
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
        await eventually(lambda: _stream_read_all(redis_text), "the stream read", within_s=120)

    # Decoding ran in the pool's process; a loop it blocked would lag by seconds.
    assert lag < 1.0
    assert len(await events(store, "S1", jobs.TRANSCRIPT)) == 1
    p = event.payload
    assert (p["job_id"], p["callback_id"], p["attempt"]) == ("S1:cb1:1", "S1:cb1", 1)
    assert p["recorded_at"] == the_job["recorded_at"]
    assert set(p["legs"]) == {"citizen", "agent"}
    assert has_hangul(p["legs"]["citizen"]["text"]) and has_hangul(p["legs"]["agent"]["text"])
    timeline = p["timeline"]
    assert {s["speaker"] for s in timeline} == {"citizen", "agent"}
    assert [s["start"] for s in timeline] == sorted(s["start"] for s in timeline)
    assert timeline[0]["speaker"] == "agent"  # the citizen answers after the agent
    for seg in timeline:
        assert 0 <= seg["start"] <= seg["end"] and seg["words"]
        assert all(0.0 <= w["conf"] <= 1.0 and w["start"] <= w["end"] for w in seg["words"])
    assert p["understanding"]["rating"] in {
        "satisfied",
        "basically_satisfied",
        "unsatisfied",
        "unknown",
    }
    assert isinstance(p["understanding"]["reasons"], list)
    assert p["understanding"]["opt_out"] is False
    assert p["understanding"]["text"] == p["legs"]["citizen"]["text"]
    assert (p["model"], p["language"]) == ("ko-test", "ko")
    assert p["processing_s"] > 0 and p["audio_s"] > 1
    survey = await store.get_survey("S1")
    assert survey is not None and survey["state"] == "transcribed"
    [moved] = await events(store, "S1", "survey.transcribed")
    assert moved.payload == {"from": "called", "job_id": "S1:cb1:1", "callback_id": "S1:cb1"}
    kept = await redis_text.hget(keys.SURVEY_TRANSCRIPTS.format(survey_id="S1"), "S1:cb1")
    assert kept is not None and json.loads(kept) == p
    assert await redis_text.ttl(jobs.DONE.format(job_id="S1:cb1:1")) > 29 * 86400


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def _stream_read_all(redis_text: aioredis.Redis) -> bool:
    groups = await redis_text.xinfo_groups(jobs.JOBS)
    info = groups[0]
    return int(info["pending"]) == 0 and int(info.get("lag") or 0) == 0


async def test_faults_in_the_recording_end_in_transcript_failed(
    store: Store, redis_text: aioredis.Redis, pool: AsrPool, speech: SpeechFiles, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt-citizen.wav"
    corrupt.write_bytes(b"RIFF" + bytes(100))
    cases = {"S-silent": speech.silence_8k, "S-corrupt": corrupt, "S-short": speech.short_8k}
    for sid in cases:
        await called_survey(store, sid)
    async with running(redis_text, pool, settings()):
        for sid, path in cases.items():
            await jobs.enqueue_job(redis_text, job(sid, {"citizen": path}))
        failed = {sid: (await wait_events(store, sid, jobs.TRANSCRIPT_FAILED))[0] for sid in cases}
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
    reasons = {sid: e.payload["reason"] for sid, e in failed.items()}
    assert reasons == {"S-silent": "silent", "S-corrupt": "corrupt", "S-short": "too_short"}
    assert failed["S-corrupt"].payload["leg"] == "citizen"
    assert all(e.payload["detail"] and e.payload["attempt"] == 1 for e in failed.values())
    for sid in cases:
        assert not await events(store, sid, jobs.TRANSCRIPT)
        survey = await store.get_survey(sid)
        assert survey is not None and survey["state"] == "called"
    assert await redis_text.xlen(jobs.DEAD) == 0  # a decided failure is not a dead letter


async def test_a_killed_decoder_process_is_retried_and_the_job_ends_once(
    store: Store, redis_text: aioredis.Redis, pool: AsrPool, speech: SpeechFiles
) -> None:
    await called_survey(store, "S-kill")
    await pool.warm_up()
    async with running(redis_text, pool, settings(claim_idle_s=0.6)):
        await jobs.enqueue_job(redis_text, job("S-kill", {"citizen": speech.long_8k}))

        # Killed once its legs are with the workers, not before: killed idle, the pool
        # would be replaced before the job and decode it at the first attempt.
        await eventually(lambda: pool.legs_in_flight > 0, "the job is with the workers", 120)
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGKILL)
        [event] = await wait_events(store, "S-kill", jobs.TRANSCRIPT)
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
    assert event.payload["attempt"] == 2
    assert len(await events(store, "S-kill", jobs.TRANSCRIPT)) == 1
    assert not await events(store, "S-kill", jobs.TRANSCRIPT_FAILED)
    assert not await redis_text.hgetall(jobs.LAST_ERROR)


async def test_a_job_failing_retryably_every_time_is_dead_lettered_after_max_tries(
    store: Store, redis_text: aioredis.Redis, pool: AsrPool, tmp_path: Path
) -> None:
    await called_survey(store, "S-poison")
    missing = tmp_path / "never-written-citizen.wav"  # "missing" is retryable
    async with running(redis_text, pool, settings(claim_idle_s=0.3, max_tries=3)):
        await jobs.enqueue_job(redis_text, job("S-poison", {"citizen": missing}))
        [event] = await wait_events(store, "S-poison", jobs.TRANSCRIPT_FAILED)
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
    p = event.payload
    assert (p["reason"], p["last_reason"], p["attempt"]) == ("poison", "missing", 3)
    [(_, dead)] = await redis_text.xrange(jobs.DEAD)
    fields = dict(dead)
    assert fields["reason"] == "poison" and fields["attempts"] == "3"
    assert json.loads(fields["job"])["legs"]["citizen"] == str(missing)
    assert not await redis_text.hgetall(jobs.LAST_ERROR)


async def test_an_entry_that_keeps_killing_its_worker_is_dead_lettered_undecoded(
    store: Store, redis_text: aioredis.Redis, speech: SpeechFiles
) -> None:
    await called_survey(store, "S-crashloop")
    await redis_text.xgroup_create(jobs.JOBS, jobs.GROUP, id="0", mkstream=True)
    entry = await jobs.enqueue_job(redis_text, job("S-crashloop", {"citizen": speech.citizen_8k}))
    # Three workers took it and died before finishing (no error was ever recorded).
    await redis_text.xreadgroup(jobs.GROUP, "dead-1", {jobs.JOBS: ">"})
    for consumer in ("dead-2", "dead-3"):
        await redis_text.xclaim(jobs.JOBS, jobs.GROUP, consumer, 0, [entry])
    await asyncio.sleep(0.3)
    async with running(redis_text, None, settings(claim_idle_s=0.2, max_tries=3)):
        [event] = await wait_events(store, "S-crashloop", jobs.TRANSCRIPT_FAILED)
    assert (event.payload["reason"], event.payload["last_reason"]) == ("poison", "")
    assert event.payload["attempt"] == 4
    assert "worker killed" in event.payload["detail"]
    assert await pending_count(redis_text) == 0 and await redis_text.xlen(jobs.DEAD) == 1


async def test_malformed_entries_are_dead_lettered_and_the_worker_goes_on(
    store: Store,
    redis_text: aioredis.Redis,
    pool: AsrPool,
    speech: SpeechFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await called_survey(store, "S-bad")
    await called_survey(store, "S-good", phone="13900139000")
    bad: list[dict[str, str]] = [
        {"job": "{not json"},
        {"job": json.dumps(["a", "list"])},
        {"other": "no job field"},
        {"job": json.dumps({"job_id": "j1", "survey_id": "S-bad", "legs": {"citizen": "rel.wav"}})},
        {"job": json.dumps({"job_id": "j2", "survey_id": "S-bad", "legs": {"caller": "/x.wav"}})},
        {"job": json.dumps({"survey_id": "13812348000", "legs": {}})},
        {"job": json.dumps({"job_id": "", "survey_id": 5})},
    ]
    for fields in bad:
        await redis_text.xadd(jobs.JOBS, fields)  # type: ignore[arg-type]
    async with running(redis_text, pool, settings()):
        await jobs.enqueue_job(redis_text, job("S-good", {"citizen": speech.citizen_8k}))
        await wait_events(store, "S-good", jobs.TRANSCRIPT)
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
    assert await redis_text.xlen(jobs.DEAD) == len(bad)
    dead = [fields for _, fields in await redis_text.xrange(jobs.DEAD)]
    assert {d["reason"] for d in dead} == {"malformed"}
    assert {d["attempts"] for d in dead} == {"1"}
    # The survey named by a readable entry hears of it; the others name none.
    failed = await events(store, "S-bad", jobs.TRANSCRIPT_FAILED)
    assert sorted(e.payload["job_id"] for e in failed) == ["j1", "j2"]
    assert all(e.payload["reason"] == "malformed" for e in failed)
    assert "13812348000" not in caplog.text  # never a citizen's number in the logs
    stats = await store.stats()
    assert stats["asr:dead"] == len(bad)


_WORKER_PROCESS = """
import asyncio, sys
from pathlib import Path
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from asr.models import bundled_test_model
from asr.worker import AsrWorker, AsrWorkerSettings

async def main() -> None:
    client = aioredis.Redis.from_url(sys.argv[1], decode_responses=True)
    s = AsrWorkerSettings(model=bundled_test_model(), pool_size=1, consumer=sys.argv[2])
    await AsrWorker(client, s).run(asyncio.Event())

asyncio.run(main())
"""


async def test_a_worker_killed_mid_job_leaves_it_pending_and_its_restart_finishes_it(
    store: Store,
    redis_text: aioredis.Redis,
    redis_server: RedisServer,
    pool: AsrPool,
    speech: SpeechFiles,
    tmp_path: Path,
) -> None:
    await called_survey(store, "S-kill9")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER_PROCESS,
            redis_server.url,
            "host-a",
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await jobs.enqueue_job(redis_text, job("S-kill9", {"citizen": speech.long_8k}))

        async def taken() -> bool:
            assert proc.returncode is None, log_path.read_text()
            return await pending_count(redis_text) == 1

        await eventually(taken, "the job taken", within_s=120)
        await asyncio.sleep(1.0)  # loading the model or decoding: mid-job either way
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the worker and its pool
        await proc.wait()
    assert not await events(store, "S-kill9", jobs.TRANSCRIPT)
    # The same host comes back: it retakes its own pending entry at once.
    async with running(redis_text, pool, settings(consumer="host-a", claim_idle_s=600)):
        [event] = await wait_events(store, "S-kill9", jobs.TRANSCRIPT)
        await eventually(lambda: _zero(pending_count(redis_text)), "no pending job", within_s=120)
    assert event.payload["attempt"] == 2
    assert len(await events(store, "S-kill9", jobs.TRANSCRIPT)) == 1
