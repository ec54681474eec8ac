"""Decoding off the event loop: a process pool whose workers each hold the model once.

Vosk decoding is CPU-bound native code; in the event loop's process it would stall the
API, the SMS sender and the dialer for the length of every call. :class:`AsrPool` runs
it in a ``ProcessPoolExecutor`` (``spawn`` start method: forking a process that runs an
event loop, threads and sockets copies all of them into the child), sized cores - 1 by
default so one core stays with the event loop. Each worker loads the model in its
initializer; every leg of a job is one task with one recogniser, and the legs of one
recording run in parallel.

Failure handling, so a job always ends and the pool always recovers:

- the recording's own faults come back as :class:`~asr.errors.TranscriptionFailed`
  from the worker (not retryable: dead-letter them);
- a worker process that dies (OOM killer, a native crash) breaks the executor: the pool
  replaces it and the job fails ``worker_crashed`` (retryable; the stream worker's
  delivery count dead-letters a recording that keeps killing workers);
- a job running past its timeout (``job_timeout_s`` plus ``timeout_per_audio_s`` per
  second of audio) fails ``timeout`` (retryable) and the pool's processes are killed and
  replaced, since a running task cannot be cancelled; jobs sharing those processes fail
  ``worker_crashed`` and are retried;
- a bug fails the job ``internal_error`` with the traceback logged, never the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from asr import worker_core
from asr.audio import DEFAULT_LIMITS, AudioLimits, probe
from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelSpec, check_model_files
from asr.transcript import TranscriptResult
from gateway import logs
from gateway.privacy import mask_numbers

log = logs.logger(__name__)

# A job may run for DEFAULT_JOB_TIMEOUT_S plus TIMEOUT_PER_AUDIO_S per second of its
# longest leg: decoding runs well under real time (target RTF 0.2), so a job still going
# at three times real time is stuck, not slow.
DEFAULT_JOB_TIMEOUT_S = 120.0
TIMEOUT_PER_AUDIO_S = 3.0
# How often a running job checks that its executor is not broken with its legs lost
# (await_legs).
LOST_TASK_CHECK_S = 1.0


def default_pool_size() -> int:
    """Cores available to this process minus one for the event loop, at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@dataclass(frozen=True)
class TranscriptionJob:
    """One finished recording to transcribe: its legs' files, and an id for the logs."""

    legs: Mapping[str, Path | str]
    recording_id: str = ""
    limits: AudioLimits = field(default=DEFAULT_LIMITS)


class AsrPool:
    """Process pool for transcription jobs; see the module docstring.

    Use as ``async with AsrPool(spec) as pool: result = await pool.transcribe(job)``, or
    call :meth:`close`/:meth:`aclose` yourself. The executor is not tied to an event loop.
    """

    def __init__(
        self,
        model: ModelSpec,
        *,
        workers: int | None = None,
        job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
        timeout_per_audio_s: float = TIMEOUT_PER_AUDIO_S,
        start_method: str = "spawn",
        vosk_log_level: int = -1,
    ) -> None:
        files = check_model_files(model.path)
        if not files.present:
            # Fail at start-up, where ops look, rather than on every job.
            raise TranscriptionFailed(
                FailureReason.MODEL_UNAVAILABLE,
                f"model {model.name} at {model.path}: missing {', '.join(files.missing)}",
            )
        # Resolve the sample rate once here rather than reading conf/mfcc.conf per job.
        self.model = replace(model, sample_rate=model.decode_rate())
        self.size = workers if workers and workers > 0 else default_pool_size()
        self.job_timeout_s = job_timeout_s
        self.timeout_per_audio_s = timeout_per_audio_s
        self._context = multiprocessing.get_context(start_method)
        self._log_level = vosk_log_level
        self._executor = self._new_executor()
        self._closed = False
        self._legs_in_flight = 0
        self.restarts = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=self._context,
            initializer=worker_core.init_worker,
            initargs=(self.model, self._log_level),
        )

    async def __aenter__(self) -> AsrPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Stop the workers, waiting for running jobs to finish."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for health pages and tests)."""
        # ProcessPoolExecutor has no public accessor before Python 3.14.
        processes: Mapping[int, Any] = getattr(self._executor, "_processes", None) or {}
        return [pid for pid, proc in processes.items() if proc.is_alive()]

    async def warm_up(self) -> list[int]:
        """Start every worker and wait until each has loaded the model; returns their pids."""
        loop = asyncio.get_running_loop()
        # Tasks that stay busy for a moment, so each lands on a different new process.
        pids = await asyncio.gather(
            *(loop.run_in_executor(self._executor, _busy_pid, 0.2) for _ in range(self.size))
        )
        return sorted(set(pids))

    async def transcribe(self, job: TranscriptionJob) -> TranscriptResult:
        """Transcribe a recording off the event loop; raise TranscriptionFailed if it can't be."""
        if self._closed:
            raise RuntimeError("AsrPool is closed")
        legs = worker_core.validate_legs(job.legs)
        started = time.monotonic()
        timeout = self.job_timeout_s + self.timeout_per_audio_s * await _longest_leg_s(legs)
        executor = self._executor
        try:
            futures = self._submit(executor, legs, job.limits)
        except BrokenProcessPool:
            # Broken before this job ran (a worker died while idle): not the job's fault.
            executor = self._replace(executor, "broken before submit")
            futures = self._submit(executor, legs, job.limits)
        self._legs_in_flight += len(futures)
        try:
            results = await await_legs(executor, futures, timeout)
        except TimeoutError:
            self._replace(executor, "job timeout", kill=True)
            raise TranscriptionFailed(
                FailureReason.TIMEOUT, f"not done after {timeout:.0f} s"
            ) from None
        finally:
            self._legs_in_flight -= len(futures)
        outcomes: dict[str, worker_core.LegOutcome | TranscriptionFailed] = {}
        for name, result in zip(futures, results, strict=True):
            outcomes[name] = self._outcome(executor, job, name, result)
        transcript = worker_core.assemble(self.model, outcomes)
        log.info(
            "transcribed recording=%s audio_s=%.1f processing_s=%.1f wall_s=%.1f",
            mask_numbers(job.recording_id),
            transcript.audio_s,
            transcript.processing_s,
            time.monotonic() - started,
        )
        return transcript

    @property
    def legs_in_flight(self) -> int:
        """Legs submitted to the workers and not yet ended (for health pages and tests)."""
        return self._legs_in_flight

    def _submit(
        self, executor: ProcessPoolExecutor, legs: Mapping[str, Path], limits: AudioLimits
    ) -> dict[str, asyncio.Future[worker_core.LegOutcome]]:
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[worker_core.LegOutcome]] = {}
        try:
            for name, path in legs.items():
                futures[name] = loop.run_in_executor(
                    executor, worker_core.transcribe_leg_job, self.model, name, str(path), limits
                )
        except BrokenProcessPool:
            for future in futures.values():  # legs already submitted to the broken pool
                future.cancel()
            raise
        return futures

    def _outcome(
        self, executor: ProcessPoolExecutor, job: TranscriptionJob, leg: str, result: object
    ) -> worker_core.LegOutcome | TranscriptionFailed:
        if isinstance(result, worker_core.LegOutcome | TranscriptionFailed):
            return result
        if isinstance(result, BrokenProcessPool):
            self._replace(executor, "worker died")
            return TranscriptionFailed(
                FailureReason.WORKER_CRASHED, "worker process died during the job", leg
            )
        if isinstance(result, asyncio.CancelledError):
            raise result
        assert isinstance(result, BaseException)
        log.error(
            "transcription bug recording=%s leg=%s",
            mask_numbers(job.recording_id),
            leg,
            exc_info=result,
        )
        return TranscriptionFailed(FailureReason.INTERNAL_ERROR, repr(result), leg)

    def _replace(
        self, broken: ProcessPoolExecutor, why: str, *, kill: bool = False
    ) -> ProcessPoolExecutor:
        """Swap in a fresh executor unless a concurrent job already did."""
        if broken is self._executor and not self._closed:
            self._executor = self._new_executor()
            self.restarts += 1
            log.warning("asr pool restarted reason=%r restarts=%d", why, self.restarts)
        if kill:
            processes: Mapping[int, Any] = getattr(broken, "_processes", None) or {}
            for proc in list(processes.values()):
                proc.kill()
        # Not waiting: the old workers are dead or dying, and their futures already failed.
        broken.shutdown(wait=False, cancel_futures=True)
        return self._executor


async def await_legs(
    executor: Executor,
    futures: Mapping[str, asyncio.Future[worker_core.LegOutcome]],
    within_s: float,
) -> list[object]:
    """Each leg's result or exception, in order; TimeoutError after ``within_s``.

    A leg submitted in the instant a worker died can be lost: CPython 3.11's executor
    marks itself broken and fails the tasks it knows of without the lock ``submit``
    holds, so a task added meanwhile is never run nor failed. Once the executor has
    been broken for a whole check period, a leg still waiting is such a task and ends
    as if its worker had died, rather than at the job timeout.
    """
    loop = asyncio.get_running_loop()
    gathered = asyncio.gather(*futures.values(), return_exceptions=True)
    deadline = loop.time() + within_s
    lost: set[str] = set()
    broken_since_check = False
    try:
        while not gathered.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            await asyncio.wait({gathered}, timeout=min(LOST_TASK_CHECK_S, remaining))
            if gathered.done() or not getattr(executor, "_broken", None):
                continue
            if broken_since_check:
                for name, future in futures.items():
                    if not future.done():
                        lost.add(name)
                        future.cancel()
            broken_since_check = True
    finally:
        if not gathered.done():
            gathered.cancel()  # timed out or cancelled: the legs' futures go too
    results: list[object] = list(gathered.result())
    return [
        BrokenProcessPool("the task was lost when its pool broke") if name in lost else result
        for name, result in zip(futures, results, strict=True)
    ]


async def _longest_leg_s(legs: Mapping[str, Path]) -> float:
    """Duration of the longest leg from the headers (0 for a leg the worker will reject)."""

    def longest() -> float:
        durations = [0.0]
        for path in legs.values():
            try:
                durations.append(probe(path).duration_s)
            except TranscriptionFailed:
                pass
        return max(durations)

    return await asyncio.to_thread(longest)  # file I/O, possibly on a network share


def _busy_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
