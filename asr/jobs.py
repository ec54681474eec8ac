"""Transcription jobs on the Redis stream: their wire form, and the events they end in.

The dialer adds one entry per finished callback recording to :data:`JOBS` (field
``job``, a JSON object)::

    {"job_id": "cb-42:1", "survey_id": "S1", "callback_id": "cb-42",
     "legs": {"citizen": "/var/lib/minyi/recordings/x-citizen.wav",
              "agent": "/var/lib/minyi/recordings/x-agent.wav"},
     "recorded_at": "2026-11-23T10:00:00.000+08:00"}

``agent`` is optional (``mixed`` may replace both legs); ``callback_id`` and
``recorded_at`` may be empty. The ASR worker (:mod:`asr.worker`) turns each job into
exactly one event on the survey's feed, through the ``minyi_transcript`` Redis function
(gateway/store/lua/transcripts.lua), idempotent on ``job_id``:

- ``transcript``: :meth:`asr.transcript.TranscriptResult.to_json` (legs, timeline,
  model, language, sample_rate, audio_s, processing_s) plus ``job_id``,
  ``callback_id``, ``recorded_at``, ``attempt`` and ``understanding`` (the reply core
  applied to the citizen's words: rating, reasons, praise, opt_out, explanation, hint,
  text);
- ``transcript.failed``: ``job_id``, ``callback_id``, ``recorded_at``, ``reason`` (an
  :class:`asr.errors.FailureReason` value), ``detail``, ``leg``, ``attempt``, and for a
  dead letter ``last_reason``.

Everything here is pure except :func:`enqueue_job`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import redis.asyncio as aioredis

from asr.transcript import Speaker, TranscriptResult
from gateway.privacy import mask_numbers
from gateway.store import keys, library
from gateway.store.events import TRANSCRIPT, TRANSCRIPT_FAILED
from sms.understand import Understanding

# --- Redis keys (defined with the rest of the keyspace in gateway/store/keys.py) -----------------
JOBS = keys.ASR_JOBS  # stream of jobs, field "job"; consumer group GROUP
GROUP = keys.ASR_GROUP
DEAD = keys.ASR_DEAD  # dead letters, replayable
DONE = keys.ASR_DONE  # the job has ended in its event (idempotency, set by Lua)
LAST_ERROR = keys.ASR_LAST_ERROR  # entry id -> its last retryable failure

# A job id or survey id goes into Redis key names and log lines: keep it printable and short.
_MAX_ID = 200


__all__ = [
    "DEAD",
    "DONE",
    "GROUP",
    "JOBS",
    "LAST_ERROR",
    "TRANSCRIPT",
    "TRANSCRIPT_FAILED",
    "AsrJob",
    "MalformedJob",
    "enqueue_job",
    "failed_payload",
    "parse_job",
    "record_outcome",
    "salvage_ids",
    "transcript_payload",
]


class MalformedJob(ValueError):
    """A stream entry that is not a valid job; it is dead-lettered, never retried."""


@dataclass(frozen=True)
class AsrJob:
    """One recording to transcribe, as the dialer enqueued it."""

    job_id: str
    survey_id: str
    legs: dict[str, str]
    callback_id: str = ""
    recorded_at: str = ""

    def to_json(self) -> dict[str, Any]:
        """The wire form (see the module docstring)."""
        return {
            "job_id": self.job_id,
            "survey_id": self.survey_id,
            "callback_id": self.callback_id,
            "legs": dict(self.legs),
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AsrJob:
        """Validate a decoded job; raise :class:`MalformedJob` naming the first fault."""
        job_id = _ident(data, "job_id")
        survey_id = _ident(data, "survey_id")
        callback_id = _text(data, "callback_id")
        recorded_at = _text(data, "recorded_at")
        legs = data.get("legs")
        if not isinstance(legs, Mapping) or not legs:
            raise MalformedJob("legs: expected an object of leg name -> file path")
        known = {s.value for s in Speaker}
        out: dict[str, str] = {}
        for name, path in legs.items():
            if name not in known:
                raise MalformedJob(f"legs: unknown leg {name!r}; use {sorted(known)}")
            if not isinstance(path, str) or not PurePosixPath(path).is_absolute():
                raise MalformedJob(f"legs.{name}: expected an absolute file path")
            if "\x00" in path:
                raise MalformedJob(f"legs.{name}: NUL in path")
            out[str(name)] = path
        if Speaker.CITIZEN not in out and Speaker.MIXED not in out:
            raise MalformedJob("legs: a job needs a 'citizen' (or 'mixed') leg")
        return cls(job_id, survey_id, out, callback_id, recorded_at)


def _ident(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedJob(f"{name}: expected a non-empty string")
    if len(value) > _MAX_ID or not value.isprintable():
        raise MalformedJob(f"{name}: longer than {_MAX_ID} characters or not printable")
    return value


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedJob(f"{name}: expected a string")
    return value


def parse_job(raw: str | bytes | None) -> AsrJob:
    """A job from a stream entry's ``job`` field; :class:`MalformedJob` if it is not one."""
    if raw is None:
        raise MalformedJob("entry has no 'job' field")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJob(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedJob("expected a JSON object")
    return AsrJob.from_mapping(data)


def salvage_ids(raw: str | bytes | None) -> tuple[str, str]:
    """``(job_id, survey_id)`` from a malformed entry when they can still be read, else ""."""
    try:
        data = json.loads(raw or "")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    found: list[str] = []
    for name in ("job_id", "survey_id"):
        try:
            found.append(_ident(data, name))
        except MalformedJob:
            found.append("")
    return found[0], found[1]


async def enqueue_job(redis: aioredis.Redis, job: AsrJob | Mapping[str, Any]) -> str:
    """Add a transcription job to the stream (validated first); returns the entry id.

    Raises :class:`MalformedJob` for a job the worker would refuse, so the caller learns
    of its own bug at once instead of from a dead letter.
    """
    valid = job if isinstance(job, AsrJob) else AsrJob.from_mapping(job)
    entry_id = await redis.xadd(JOBS, {"job": dumps(valid.to_json())})
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def record_outcome(
    redis: aioredis.Redis,
    survey_id: str,
    now_iso: str,
    event_type: str,
    payload: dict[str, Any],
    job_id: str,
    dead_letter: dict[str, str] | None = None,
) -> str:
    """End a job: FCALL ``minyi_transcript`` (see gateway/store/lua/transcripts.lua).

    Returns ``transcribed``, ``recorded``, ``no_survey`` or ``duplicate``.
    """
    flat = [x for kv in (dead_letter or {}).items() for x in kv]
    result = await library.fcall(
        redis, "minyi_transcript", survey_id, now_iso, event_type, dumps(payload), job_id, *flat
    )
    return result.decode() if isinstance(result, bytes) else str(result)


def transcript_payload(
    job: AsrJob, result: TranscriptResult, reading: Understanding, *, attempt: int
) -> dict[str, Any]:
    """The body of a ``transcript`` event."""
    payload: dict[str, Any] = {
        "job_id": job.job_id,
        "callback_id": job.callback_id,
        "recorded_at": job.recorded_at,
        "attempt": attempt,
    }
    payload.update(result.to_json())
    payload["understanding"] = reading.to_json()
    return payload


def failed_payload(
    job_id: str,
    reason: str,
    detail: str,
    *,
    callback_id: str = "",
    recorded_at: str = "",
    leg: str | None = None,
    attempt: int = 1,
    last_reason: str | None = None,
) -> dict[str, Any]:
    """The body of a ``transcript.failed`` event (``detail`` has phone numbers masked)."""
    payload: dict[str, Any] = {
        "job_id": job_id,
        "callback_id": callback_id,
        "recorded_at": recorded_at,
        "reason": reason,
        "detail": mask_numbers(detail),
        "leg": leg,
        "attempt": attempt,
    }
    if last_reason is not None:
        payload["last_reason"] = last_reason
    return payload


def dumps(obj: Any) -> str:
    """Compact JSON, UTF-8 text kept as is (the store's convention)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
