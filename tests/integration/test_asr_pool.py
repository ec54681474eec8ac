"""The process pool with the real decoder: off the event loop, and recovering from crashes.

One worker (the test machine's two cores are shared), loaded once for the session; the
crash and timeout tests kill it on purpose and check the pool comes back by itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelSpec
from asr.pool import AsrPool, TranscriptionJob
from tests.asr_fixtures import SpeechFiles, has_hangul, korean_model
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_transcribes_while_the_event_loop_keeps_running(
    pool: AsrPool, speech: SpeechFiles
) -> None:
    await pool.warm_up()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        result = await pool.transcribe(
            TranscriptionJob({"citizen": speech.citizen_8k}, recording_id="rec-13812348000")
        )
    finally:
        ticking.cancel()
    leg = result.legs["citizen"]
    assert leg.words and has_hangul(leg.text) and leg.resampled
    # The decode took a good fraction of a second of CPU in another process; a loop
    # blocked by it would not have ticked at all.
    assert ticks >= 5
    assert set(result.peak_rss_mb) == set(pool.worker_pids())
    assert all(mb > 100 for mb in result.peak_rss_mb.values()), "the model is resident"


async def test_recording_faults_cross_the_process_boundary(
    pool: AsrPool, speech: SpeechFiles, tmp_path: Path
) -> None:
    with pytest.raises(TranscriptionFailed) as info:
        await pool.transcribe(TranscriptionJob({"citizen": speech.silence_8k}))
    assert info.value.reason is FailureReason.SILENT
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(TranscriptionFailed) as info:
        await pool.transcribe(TranscriptionJob({"citizen": garbage, "agent": speech.silence_8k}))
    assert (info.value.reason, info.value.leg, info.value.retryable) == (
        FailureReason.CORRUPT,
        "citizen",
        False,
    )
    with pytest.raises(ValueError):
        await pool.transcribe(TranscriptionJob({"caller": speech.citizen_8k}))


async def test_a_killed_worker_fails_the_job_retryably_and_the_pool_recovers(
    pool: AsrPool, speech: SpeechFiles
) -> None:
    restarts = pool.restarts
    pids = await pool.warm_up()
    job = asyncio.create_task(pool.transcribe(TranscriptionJob({"citizen": speech.long_8k})))
    await eventually(lambda: pool.legs_in_flight > 0, "the job is with the workers")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # what the OOM killer would do
    with pytest.raises(TranscriptionFailed) as info:
        await job
    assert info.value.reason is FailureReason.WORKER_CRASHED and info.value.retryable
    assert pool.restarts == restarts + 1
    result = await pool.transcribe(TranscriptionJob({"citizen": speech.citizen_8k}))
    assert result.legs["citizen"].words
    assert not set(pool.worker_pids()) & set(pids)


async def test_a_job_past_its_timeout_fails_retryably_and_the_pool_recovers(
    pool: AsrPool, speech: SpeechFiles
) -> None:
    await pool.warm_up()
    restarts = pool.restarts
    pool.job_timeout_s, pool.timeout_per_audio_s = 0.5, 0.0
    try:
        with pytest.raises(TranscriptionFailed) as info:
            await pool.transcribe(TranscriptionJob({"citizen": speech.long_8k}))
    finally:
        pool.job_timeout_s, pool.timeout_per_audio_s = 300, 3.0
    assert info.value.reason is FailureReason.TIMEOUT and info.value.retryable
    assert pool.restarts == restarts + 1
    result = await pool.transcribe(TranscriptionJob({"citizen": speech.citizen_8k}))
    assert result.legs["citizen"].words


async def test_a_model_that_fails_to_load_is_reported_per_job_not_a_crash_loop(
    speech: SpeechFiles, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(korean_model().path, broken, ignore=shutil.ignore_patterns("*.fst", "final.*"))
    for rel in ("am/final.mdl", "graph/HCLr.fst", "graph/Gr.fst"):
        (broken / rel).write_text("not a model")
    async with AsrPool(ModelSpec("broken", broken, "ko", 16000), workers=1) as bad_pool:
        for _ in range(2):
            with pytest.raises(TranscriptionFailed) as info:
                await bad_pool.transcribe(TranscriptionJob({"citizen": speech.citizen_8k}))
            assert info.value.reason is FailureReason.MODEL_UNAVAILABLE
            assert info.value.retryable
        assert bad_pool.restarts == 0
