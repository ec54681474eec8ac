"""One callback attempt's names and consequences: pure, apart from reading the files.

- :func:`new_callback_id` / :func:`rec_base`: the ids and recording names the dialer
  gives a call (documented in dialplans/README.md, "Recording files");
- :func:`next_step`: the attempts policy (what the survey becomes after an outcome);
- :func:`attempt_result`: everything stored for one attempt (its event, the survey's
  transition, the ASR job);
- :func:`asr_job`: what goes to the ASR worker for an answered call;
- :func:`settled_files`: the recordings' paths and durations once Asterisk closed them.
"""

from __future__ import annotations

import datetime
import secrets
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.dialer import DialerSettings
from gateway.dialer.calls import REACHED, CallOutcome, TrackedCall, classify
from gateway.dialer.store import Claim

IVR_RATINGS = {"1": "satisfied", "2": "basically_satisfied", "3": "unsatisfied"}


def new_callback_id() -> str:
    """A callback id: also the citizen channel's ChannelId/Uniqueid, safe everywhere."""
    return f"cb-{secrets.token_hex(8)}"


def rec_base(callback_id: str, when: datetime.datetime) -> str:
    """The recording base name of a callback: ``<YYYYMMDD>_<callback id>``."""
    return f"{when:%Y%m%d}_{callback_id}"


def next_step(
    outcome: CallOutcome,
    attempt: int,
    settings: DialerSettings,
    now: float,
    *,
    claim: Claim | None = None,
    digit: str | None = None,
) -> tuple[str, float | None]:
    """(next survey state, retry time or None) after attempt number ``attempt``.

    Connected: ``called`` (the agent's disposition closes it); an IVR rating closes it,
    except a 3 (unsatisfied) in the automated survey of a citizen who never replied:
    that citizen is called back by an agent like any unsatisfied one (see
    :func:`escalates`); a number that does not exist is not tried again; otherwise
    another attempt after the configured spacing until ``max_attempts``, then
    ``unreachable``.
    """
    if outcome is CallOutcome.CONNECTED:
        return "called", None
    if outcome is CallOutcome.IVR_RATED:
        if claim is not None and escalates(claim, digit):
            return "callback_pending", now
        return "closed", None
    if outcome is CallOutcome.INVALID_NUMBER or attempt >= settings.max_attempts:
        return "unreachable", None
    return "callback_pending", now + settings.spacing(max(attempt, 1))


def escalates(claim: Claim, digit: str | None) -> bool:
    """An automated survey (not a second callback) answered 3: an agent calls back."""
    return claim.kind == "ivr" and claim.origin != "recheck" and digit == "3"


def asr_job(
    claim: Claim, outcome: CallOutcome, recordings: Mapping[str, Any], recorded_at: str
) -> dict[str, Any] | None:
    """The ASR job for a reached citizen: the citizen's and the agent's legs, or the
    IVR reason alone; None when there is nothing of the citizen to transcribe."""
    if outcome not in REACHED:
        return None
    if "reason" in recordings:
        legs = {"citizen": recordings["reason"]["path"]}
    else:
        legs = {leg: recordings[leg]["path"] for leg in ("citizen", "agent") if leg in recordings}
    if "citizen" not in legs:
        return None
    return {
        "job_id": claim.callback_id,
        "survey_id": claim.survey_id,
        "callback_id": claim.callback_id,
        "legs": legs,
        "recorded_at": recorded_at,
    }


def recording_files(directory: str, base: str, *, reason: bool) -> dict[str, Path]:
    """The files a callback's recording is made of, by leg."""
    stem = Path(directory) / base
    files = {
        "mix": Path(f"{stem}.wav"),
        "citizen": Path(f"{stem}-citizen.wav"),
        "agent": Path(f"{stem}-agent.wav"),
    }
    if reason:
        files["reason"] = Path(f"{stem}-reason.wav")
    return files


def settled_files(files: Mapping[str, Path], limit_s: float) -> dict[str, Any]:
    """Path and duration of each recording that exists, once its size stops changing
    (MixMonitor closes the files just after the hangup; Record at its end)."""
    deadline = time.monotonic() + limit_s
    sizes: dict[str, int] = {}
    while True:
        now_sizes = {k: p.stat().st_size for k, p in files.items() if p.exists()}
        if (now_sizes and now_sizes == sizes) or time.monotonic() >= deadline:
            break
        sizes = now_sizes
        time.sleep(0.2)
    out: dict[str, Any] = {}
    for leg, path in files.items():
        if path.exists():
            out[leg] = {
                "path": str(path),
                "duration_s": wav_duration(path),
                "bytes": sizes.get(leg),
            }
    return out


def wav_duration(path: Path) -> float | None:
    """Seconds of audio in a WAV file, None if it is not one (yet)."""
    try:
        with wave.open(str(path), "rb") as w:
            frames, rate = w.getnframes(), w.getframerate()
    except (OSError, EOFError, wave.Error):
        return None
    return round(frames / float(rate), 2) if rate else None


@dataclass(frozen=True)
class AttemptResult:
    """What is stored for one finished attempt, in one Redis call."""

    outcome: CallOutcome
    next_state: str
    retry_at: float | None
    payload: dict[str, Any]  # the callback.attempt event
    transition: dict[str, Any]  # the survey transition's payload
    rating: str  # an IVR rating, or ""
    next_kind: str  # "agent" when an automated survey escalates, else ""
    asr_job: dict[str, Any] | None


def attempt_result(
    claim: Claim,
    call: TrackedCall,
    recordings: dict[str, Any],
    settings: DialerSettings,
    now: float,
    iso: Callable[[float | None], str | None],
    *,
    detail: str = "",
    uncount: bool = False,
) -> AttemptResult:
    """The outcome of a finished call and all that follows from it.

    ``detail`` says why the dialer ended it itself (``ami_unavailable``: the Originate
    was never sent, ``uncount``: the attempt does not count).
    """
    outcome = (
        CallOutcome.FAILED if detail == "ami_unavailable" else classify(call, claim.kind == "ivr")
    )
    attempt = claim.attempt - (1 if uncount else 0)
    payload: dict[str, Any] = {
        "callback_id": claim.callback_id,
        "attempt": claim.attempt,
        "max_attempts": settings.max_attempts,
        "kind": claim.kind,
        "outcome": outcome.value,
        "hangup_cause": call.hangup_cause,
        "originate_reason": call.originate_reason,
        "agent": call.agent,
        "answered_at": iso(call.answered_at),
        "connected_at": iso(call.connected_at),
        "ended_at": iso(call.ended_at or now),
        "recordings": recordings,
    }
    if detail:
        payload["detail"] = detail
    rating = ""
    if outcome is CallOutcome.IVR_RATED and call.ivr_result is not None:
        rating = IVR_RATINGS[call.ivr_result]
        payload["ivr"] = {"digit": call.ivr_result, "rating": rating}
    next_state, retry_at = next_step(
        outcome, attempt, settings, now, claim=claim, digit=call.ivr_result
    )
    next_kind = (
        "agent" if outcome is CallOutcome.IVR_RATED and escalates(claim, call.ivr_result) else ""
    )
    payload["next"] = {
        "state": next_state,
        "retry_at": iso(retry_at),
        "kind": next_kind or claim.kind,
    }
    transition: dict[str, Any] = {"callback_id": claim.callback_id, "outcome": outcome.value}
    if outcome is CallOutcome.IVR_RATED:
        transition["reason"] = "ivr_unsatisfied" if next_kind else "ivr_rating"
        transition["rating"] = rating
    elif next_state == "unreachable":
        transition["attempts"] = attempt
    job = asr_job(claim, outcome, recordings, iso(now) or "") if settings.transcribe else None
    return AttemptResult(outcome, next_state, retry_at, payload, transition, rating, next_kind, job)
