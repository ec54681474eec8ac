"""What runs inside an ASR worker process: the model cache and the per-leg job.

Loading a Vosk model costs seconds and hundreds of megabytes, so a process loads each
model once (:func:`load_model`, called by the pool's initializer) and keeps it for its
lifetime; each leg then gets its own recogniser. :func:`transcribe_recording` is the
synchronous whole-recording entry point (one process, legs in turn);
:class:`asr.pool.AsrPool` runs :func:`transcribe_leg_job` for the legs in parallel and
combines them with the same :func:`assemble`, so both paths give the same transcript.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.audio import DEFAULT_LIMITS, AudioLimits, probe
from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelSpec, check_model_files
from asr.transcribe import decode_leg
from asr.transcript import LegStatus, LegTranscript, Speaker, TranscriptResult, merge_timeline
from gateway import logs

log = logs.logger(__name__)

_MODELS: dict[str, Any] = {}  # model path -> vosk.Model, for this process's lifetime


def load_model(spec: ModelSpec) -> Any:
    """The loaded ``vosk.Model`` for ``spec``, loading it on first use in this process."""
    key = str(spec.path)
    if key in _MODELS:
        return _MODELS[key]
    files = check_model_files(spec.path)
    if not files.present:
        raise TranscriptionFailed(
            FailureReason.MODEL_UNAVAILABLE,
            f"model {spec.name} at {spec.path}: missing {', '.join(files.missing)}",
        )
    import vosk

    started = time.monotonic()
    try:
        model = vosk.Model(str(spec.path))
    except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
        raise TranscriptionFailed(
            FailureReason.MODEL_UNAVAILABLE, f"model {spec.name}: {exc}"
        ) from exc
    log.info(
        "model loaded name=%s seconds=%.1f pid=%d",
        spec.name,
        time.monotonic() - started,
        os.getpid(),
    )
    _MODELS[key] = model
    return model


def init_worker(spec: ModelSpec, vosk_log_level: int = -1) -> None:
    """Pool initializer: quiet Kaldi, ignore Ctrl-C (the parent stops us), load the model.

    A model that fails to load must not kill the process: an initializer exception would
    break the whole pool over and over. The error is reported by each job instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import vosk

    vosk.SetLogLevel(vosk_log_level)
    try:
        load_model(spec)
    except TranscriptionFailed as exc:
        log.error("model unavailable in worker pid=%d: %s", os.getpid(), exc)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (VmHWM; ru_maxrss as a fallback)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True, slots=True)
class LegOutcome:
    """A decoded leg plus where and how long it ran (for processing time and the bench)."""

    leg: LegTranscript
    started: float  # time.time() at start, comparable across processes
    finished: float
    cpu_s: float
    pid: int
    peak_rss_mb: float


def transcribe_leg_job(
    spec: ModelSpec, speaker: str, path: str, limits: AudioLimits = DEFAULT_LIMITS
) -> LegOutcome:
    """Decode one leg with this process's copy of the model (a pool task)."""
    started, cpu = time.time(), time.process_time()
    leg = decode_leg(
        load_model(spec),
        Path(path),
        speaker=speaker,
        language=spec.language,
        decode_rate=spec.decode_rate(),
        limits=limits,
    )
    return LegOutcome(
        leg, started, time.time(), time.process_time() - cpu, os.getpid(), peak_rss_mb()
    )


def validate_legs(legs: Mapping[str, Path | str]) -> dict[str, Path]:
    """Check leg names (citizen, agent, mixed) and return them with paths as Path."""
    if not legs:
        raise ValueError("a recording needs at least one leg")
    known = {s.value for s in Speaker}
    unknown = set(legs) - known
    if unknown:
        raise ValueError(f"unknown leg names {sorted(unknown)}; use {sorted(known)}")
    return {str(name): Path(path) for name, path in legs.items()}


def _pick_failure(failures: Mapping[str, TranscriptionFailed]) -> TranscriptionFailed:
    # A fault in the recording settles the job for good; prefer it over a retryable one
    # so a corrupt leg is dead-lettered now instead of after N pointless retries.
    order = {s.value: i for i, s in enumerate(Speaker)}
    return min(failures.items(), key=lambda item: (item[1].retryable, order.get(item[0], 9)))[1]


def assemble(
    spec: ModelSpec,
    outcomes: Mapping[str, LegOutcome | TranscriptionFailed],
) -> TranscriptResult:
    """Combine per-leg outcomes into the transcript, or raise the failure that decides it.

    Any leg that failed outright fails the recording. Legs that are silent or too short
    are kept with their status, as long as at least one leg holds speech; when none does,
    the recording fails as ``silent`` (or ``too_short`` when every leg was too short).
    """
    failures = {k: v for k, v in outcomes.items() if isinstance(v, TranscriptionFailed)}
    if failures:
        raise _pick_failure(failures)
    done = {k: v for k, v in outcomes.items() if isinstance(v, LegOutcome)}
    legs = {name: outcome.leg for name, outcome in done.items()}
    if not any(leg.status is LegStatus.OK for leg in legs.values()):
        statuses = {leg.status for leg in legs.values()}
        reason = (
            FailureReason.TOO_SHORT if statuses == {LegStatus.TOO_SHORT} else FailureReason.SILENT
        )
        detail = "; ".join(f"{name}: {leg.note}" for name, leg in legs.items())
        raise TranscriptionFailed(reason, f"no speech on any leg ({detail})")
    peaks: dict[int, float] = {}
    for outcome in done.values():
        peaks[outcome.pid] = max(peaks.get(outcome.pid, 0.0), outcome.peak_rss_mb)
    return TranscriptResult(
        legs=legs,
        timeline=merge_timeline(legs.values()),
        model=spec.name,
        language=spec.language,
        sample_rate=spec.decode_rate(),
        audio_s=max(leg.audio_s for leg in legs.values()),
        processing_s=max(o.finished for o in done.values()) - min(o.started for o in done.values()),
        cpu_s=sum(o.cpu_s for o in done.values()),
        peak_rss_mb=peaks,
    )


def transcribe_recording(
    legs: Mapping[str, Path | str], model: ModelSpec, *, limits: AudioLimits = DEFAULT_LIMITS
) -> TranscriptResult:
    """Transcribe a recording's legs in this process, one after the other (synchronous).

    ``legs`` maps ``citizen``/``agent`` (or ``mixed``) to the leg's file. Raises
    :class:`~asr.errors.TranscriptionFailed` when the recording cannot be transcribed.
    """
    outcomes: dict[str, LegOutcome | TranscriptionFailed] = {}
    failed = False
    for name, path in validate_legs(legs).items():
        try:
            if failed:
                # The recording has failed already: decoding more legs is wasted work, but
                # a cheap header check can still find a fault that settles the job for good.
                probe(path)
                continue
            outcomes[name] = transcribe_leg_job(model, name, str(path), limits)
        except TranscriptionFailed as exc:
            outcomes[name] = exc if exc.leg else type(exc)(exc.reason, exc.detail, name)
            failed = True
    return assemble(model, outcomes)
