"""Transcript structures: merging legs into a timeline, the JSON payload, failure policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.errors import AudioRejected, FailureReason, TranscriptionFailed
from asr.models import ModelSpec
from asr.transcribe import parse_result
from asr.transcript import (
    LegStatus,
    LegTranscript,
    TranscriptResult,
    Utterance,
    Word,
    merge_timeline,
)
from asr.worker_core import LegOutcome, assemble, validate_legs

SPEC = ModelSpec("small-cn", Path("/nonexistent/vosk-model-small-cn-0.22"), "zh-CN", 16000)


def _u(*words: tuple[str, float, float]) -> Utterance:
    return Utterance(tuple(Word(w, s, e, 0.9) for w, s, e in words))


def _leg(speaker: str, *utterances: Utterance, status: LegStatus = LegStatus.OK) -> LegTranscript:
    return LegTranscript(speaker, "zh-CN", utterances, 20.0, 8000, 16000, status)


AGENT = _leg(
    "agent",
    _u(("您好", 0.5, 0.9), ("这里", 0.9, 1.1), ("是", 1.1, 1.2), ("派出所", 1.2, 1.8)),
    _u(("请问", 6.0, 6.4), ("满意", 6.4, 6.9), ("吗", 6.9, 7.0)),
)
CITIZEN = _leg(
    "citizen",
    _u(("喂", 2.0, 2.3)),
    _u(("嗯", 7.5, 7.7), ("三", 7.8, 8.0), ("不", 11.0, 11.2), ("满意", 11.2, 11.8)),
)


def test_timeline_interleaves_legs_by_start_time() -> None:
    timeline = merge_timeline([AGENT, CITIZEN])
    assert [(s.speaker, s.text) for s in timeline] == [
        ("agent", "您好这里是派出所"),
        ("citizen", "喂"),
        ("agent", "请问满意吗"),
        ("citizen", "嗯3"),  # a long pause inside one Vosk result starts a new segment
        ("citizen", "不满意"),
    ]
    assert [s.start for s in timeline] == sorted(s.start for s in timeline)
    assert (timeline[0].start, timeline[0].end) == (0.5, 1.8)


def test_overlapping_speech_keeps_both_speakers_citizen_first_on_ties() -> None:
    a = _leg("agent", _u(("好", 1.0, 2.0)))
    c = _leg("citizen", _u(("对", 1.0, 1.5)), _u(("嗯", 1.2, 1.4)))
    assert [(s.speaker, s.start) for s in merge_timeline([a, c])] == [
        ("citizen", 1.0),
        ("agent", 1.0),
        ("citizen", 1.2),
    ]


def test_gap_threshold_is_a_parameter() -> None:
    assert len(merge_timeline([CITIZEN], max_gap_s=5.0)) == 2
    assert len(merge_timeline([CITIZEN], max_gap_s=0.05)) == 4


def test_leg_text_is_normalised_raw_text_is_vosks() -> None:
    assert CITIZEN.text == "喂 嗯3 不满意"
    assert CITIZEN.raw_text == "喂 嗯 三 不 满意"
    assert CITIZEN.resampled


def _outcome(leg: LegTranscript, start: float, end: float, pid: int = 1) -> LegOutcome:
    return LegOutcome(leg, start, end, end - start, pid, 250.0 + pid)


def test_payload_shape_and_round_trip() -> None:
    result = assemble(
        SPEC,
        {"citizen": _outcome(CITIZEN, 100.0, 103.0), "agent": _outcome(AGENT, 100.5, 102.0, 2)},
    )
    payload = result.to_json()
    text = json.dumps(payload, ensure_ascii=False)  # plain JSON types only
    assert set(payload) == {
        "legs",
        "timeline",
        "model",
        "language",
        "sample_rate",
        "audio_s",
        "processing_s",
    }
    assert (payload["model"], payload["language"], payload["sample_rate"]) == (
        "small-cn",
        "zh-CN",
        16000,
    )
    assert payload["processing_s"] == 3.0 and payload["audio_s"] == 20.0
    citizen = payload["legs"]["citizen"]
    assert citizen["text"] == "喂 嗯3 不满意" and citizen["status"] == "ok"
    assert citizen["words"][0] == {"w": "喂", "start": 2.0, "end": 2.3, "conf": 0.9}
    assert {s["speaker"] for s in payload["timeline"]} == {"citizen", "agent"}
    assert set(payload["timeline"][0]) == {"speaker", "start", "end", "text", "words"}
    assert result.citizen_text == "喂 嗯3 不满意"
    assert result.peak_rss_mb == {1: 251.0, 2: 252.0}
    again = TranscriptResult.from_json(json.loads(text))
    assert again.to_json() == payload


def test_one_silent_leg_is_kept_with_its_status() -> None:
    silent = LegTranscript("citizen", "zh-CN", (), 20.0, 8000, 16000, LegStatus.SILENT, "quiet")
    result = assemble(SPEC, {"citizen": _outcome(silent, 0, 1), "agent": _outcome(AGENT, 0, 2)})
    assert result.legs["citizen"].to_json()["status"] == "silent"
    assert result.citizen_text == ""
    assert {s.speaker for s in result.timeline} == {"agent"}


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        ((LegStatus.SILENT, LegStatus.SILENT), FailureReason.SILENT),
        ((LegStatus.SILENT, LegStatus.TOO_SHORT), FailureReason.SILENT),
        ((LegStatus.TOO_SHORT, LegStatus.TOO_SHORT), FailureReason.TOO_SHORT),
    ],
)
def test_no_speech_on_any_leg_fails(statuses: tuple[LegStatus, LegStatus], reason: str) -> None:
    legs = {
        name: _outcome(LegTranscript(name, "zh-CN", (), 1.0, 8000, 16000, st, f"{name} note"), 0, 1)
        for name, st in zip(("citizen", "agent"), statuses, strict=True)
    }
    with pytest.raises(TranscriptionFailed) as info:
        assemble(SPEC, legs)
    assert info.value.reason == reason
    assert not info.value.retryable
    assert "citizen note" in info.value.detail and "agent note" in info.value.detail


def test_a_recording_fault_wins_over_a_retryable_failure() -> None:
    outcomes: dict[str, LegOutcome | TranscriptionFailed] = {
        "citizen": TranscriptionFailed(FailureReason.WORKER_CRASHED, "died", "citizen"),
        "agent": AudioRejected(FailureReason.CORRUPT, "truncated", "agent"),
    }
    with pytest.raises(AudioRejected) as info:
        assemble(SPEC, outcomes)
    assert (info.value.reason, info.value.leg) == (FailureReason.CORRUPT, "agent")
    both_bad = {
        "agent": AudioRejected(FailureReason.CORRUPT, "x", "agent"),
        "citizen": AudioRejected(FailureReason.UNSUPPORTED_FORMAT, "y", "citizen"),
    }
    with pytest.raises(AudioRejected) as info:
        assemble(SPEC, both_bad)
    assert info.value.leg == "citizen"


def test_leg_names_are_checked() -> None:
    assert validate_legs({"citizen": "a.wav"}) == {"citizen": Path("a.wav")}
    with pytest.raises(ValueError):
        validate_legs({})
    with pytest.raises(ValueError):
        validate_legs({"caller": "a.wav"})


def test_parse_vosk_result() -> None:
    payload = (
        '{"result": [{"conf": 0.5, "end": 1.2, "start": 0.9, "word": "满意"}], "text": "满意"}'
    )
    assert parse_result(payload) == Utterance((Word("满意", 0.9, 1.2, 0.5),))
    assert parse_result('{"text": ""}') == Utterance(())
