"""The attempts policy and what an attempt hands on (gateway.dialer.attempts)."""

from __future__ import annotations

import datetime
import re
import wave
from pathlib import Path

from gateway.config import AmiSettings
from gateway.config.dialer import DialerSettings
from gateway.dialer.asterisk import is_safe_rec_basename
from gateway.dialer.attempts import (
    asr_job,
    attempt_result,
    new_callback_id,
    next_step,
    rec_base,
    settled_files,
)
from gateway.dialer.calls import CallOutcome, TrackedCall
from gateway.dialer.store import Claim

SETTINGS = DialerSettings(
    ami=AmiSettings("127.0.0.1", 5038, "minyi", "x"), max_attempts=3, retry_spacing_s=(60, 600)
)
CLAIM = Claim("S1", "cb-0123456789abcdef", 1, "13800138000", "agent", "330602")


def test_next_step_policy() -> None:
    assert next_step(CallOutcome.CONNECTED, 1, SETTINGS, 0) == ("called", None)
    assert next_step(CallOutcome.IVR_RATED, 2, SETTINGS, 0) == ("closed", None)
    assert next_step(CallOutcome.INVALID_NUMBER, 1, SETTINGS, 0) == ("unreachable", None)
    assert next_step(CallOutcome.BUSY, 1, SETTINGS, 100) == ("callback_pending", 160)
    assert next_step(CallOutcome.NO_ANSWER, 2, SETTINGS, 100) == ("callback_pending", 700)
    assert next_step(CallOutcome.LOST, 3, SETTINGS, 100) == ("unreachable", None)
    assert next_step(CallOutcome.ABANDONED, 0, SETTINGS, 100) == ("callback_pending", 160)


def test_ids_and_recording_names_are_safe_everywhere() -> None:
    cid = new_callback_id()
    assert re.fullmatch(r"cb-[0-9a-f]{16}", cid)
    base = rec_base(cid, datetime.datetime(2026, 11, 29, 10, 5))
    assert base == f"20261129_{cid}" and is_safe_rec_basename(base)


def test_asr_job_takes_both_legs_or_the_ivr_reason() -> None:
    recs = {leg: {"path": f"/r/x-{leg}.wav"} for leg in ("mix", "citizen", "agent")}
    job = asr_job(CLAIM, CallOutcome.CONNECTED, recs, "t")
    assert job is not None and job["legs"] == {
        "citizen": "/r/x-citizen.wav",
        "agent": "/r/x-agent.wav",
    }
    assert job["job_id"] == job["callback_id"] == CLAIM.callback_id
    reason = asr_job(CLAIM, CallOutcome.IVR_RATED, {"reason": {"path": "/r/x-reason.wav"}}, "t")
    assert reason is not None and reason["legs"] == {"citizen": "/r/x-reason.wav"}
    assert asr_job(CLAIM, CallOutcome.ABANDONED, recs, "t") is None
    assert asr_job(CLAIM, CallOutcome.CONNECTED, {}, "t") is None


def test_settled_files_reports_durations_of_what_exists(tmp_path: Path) -> None:
    path = tmp_path / "b-citizen.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 12000)
    out = settled_files({"citizen": path, "agent": tmp_path / "missing.wav"}, 1.0)
    assert out == {"citizen": {"path": str(path), "duration_s": 1.5, "bytes": path.stat().st_size}}


def test_an_unsatisfied_automated_survey_goes_on_to_an_agent_but_a_recheck_closes() -> None:
    ivr = Claim("S1", "cb-1", 1, "13800138000", "ivr", "330602", origin="callback_pending")
    recheck = Claim("S1", "cb-1", 1, "13800138000", "ivr", "330602", origin="recheck")
    assert next_step(CallOutcome.IVR_RATED, 1, SETTINGS, 5, claim=ivr, digit="3") == (
        "callback_pending",
        5,
    )
    assert next_step(CallOutcome.IVR_RATED, 1, SETTINGS, 5, claim=ivr, digit="1") == (
        "closed",
        None,
    )
    assert next_step(CallOutcome.IVR_RATED, 1, SETTINGS, 5, claim=recheck, digit="3") == (
        "closed",
        None,
    )


def _iso(ts: float | None) -> str | None:
    return None if ts is None else f"t{ts:g}"


def test_attempt_result_of_a_connected_call() -> None:
    call = TrackedCall("cb-1", answered=True, agent="agent1", ended=True, hangup_cause="16")
    call.answered_at, call.connected_at, call.ended_at = 1.0, 8.0, 20.0
    recs = {"citizen": {"path": "/r/b-citizen.wav"}, "agent": {"path": "/r/b-agent.wav"}}
    r = attempt_result(CLAIM, call, recs, SETTINGS, 21.0, _iso)
    assert (r.outcome, r.next_state, r.retry_at, r.rating) == (
        CallOutcome.CONNECTED,
        "called",
        None,
        "",
    )
    assert r.payload["agent"] == "agent1" and r.payload["connected_at"] == "t8"
    assert r.payload["next"] == {"state": "called", "retry_at": None, "kind": "agent"}
    assert r.asr_job is not None and set(r.asr_job["legs"]) == {"citizen", "agent"}


def test_attempt_result_when_the_originate_never_went_out() -> None:
    r = attempt_result(
        CLAIM, TrackedCall("cb-1"), {}, SETTINGS, 5.0, _iso, detail="ami_unavailable"
    )
    assert r.outcome is CallOutcome.FAILED and r.payload["detail"] == "ami_unavailable"
    assert (r.next_state, r.retry_at, r.asr_job) == ("callback_pending", 65.0, None)


def test_attempt_result_of_an_ivr_3_escalates_to_an_agent() -> None:
    ivr = Claim("S1", "cb-1", 1, "13800138000", "ivr", "330602")
    call = TrackedCall("cb-1", answered=True, ended=True, ivr_result="3")
    recs = {"reason": {"path": "/r/b-reason.wav"}}
    r = attempt_result(ivr, call, recs, SETTINGS, 5.0, _iso)
    assert (r.outcome, r.next_state, r.next_kind, r.rating) == (
        CallOutcome.IVR_RATED,
        "callback_pending",
        "agent",
        "unsatisfied",
    )
    assert r.transition["reason"] == "ivr_unsatisfied"
    assert r.asr_job is not None and r.asr_job["legs"] == {"citizen": "/r/b-reason.wav"}
