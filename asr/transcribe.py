"""Decoding one leg of a recording with Vosk.

One ``KaldiRecognizer`` per leg (recognizers carry per-stream state and are cheap next to
the model, which is shared), word timestamps on (``SetWords(True)``), audio fed in
half-second chunks straight from the file through the resampler, so memory stays flat
however long the call. Every result Vosk's endpointer emits becomes one
:class:`~asr.transcript.Utterance`; word times are seconds from the start of the leg.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asr.audio import (
    DEFAULT_LIMITS,
    AudioLimits,
    check_duration,
    check_levels,
    iter_samples,
    measure_levels,
    probe,
)
from asr.errors import AudioRejected, FailureReason, TranscriptionFailed
from asr.resample import Resampler
from asr.transcript import LegStatus, LegTranscript, Utterance, Word

CHUNK_S = 0.5  # per AcceptWaveform call; Vosk's own examples use 0.125-0.5 s


def parse_result(payload: str) -> Utterance:
    """Turn one Vosk ``Result()``/``FinalResult()`` JSON string into an utterance."""
    data = json.loads(payload)
    words = tuple(
        Word(str(r["word"]), float(r["start"]), float(r["end"]), float(r.get("conf", 1.0)))
        for r in data.get("result", ())
    )
    return Utterance(words)


def decode_leg(
    model: Any,
    path: Path,
    *,
    speaker: str,
    language: str,
    decode_rate: int,
    limits: AudioLimits = DEFAULT_LIMITS,
) -> LegTranscript:
    """Transcribe one leg with a loaded ``vosk.Model``.

    A silent or too-short leg is not an error here: it comes back with that status and
    no words, because a call where one side said nothing is still a call. Corrupt,
    unsupported, missing and too-long files raise :class:`~asr.errors.TranscriptionFailed`
    with the leg named; so does a decoder error.
    """
    import vosk  # deferred: the pool's parent process never needs the native library

    try:
        info = probe(path)
    except AudioRejected as rejected:
        raise type(rejected)(rejected.reason, rejected.detail, speaker) from None
    try:
        check_duration(info, limits)
        check_levels(info, measure_levels(info, limits), limits)
    except AudioRejected as rejected:
        if rejected.reason not in (FailureReason.SILENT, FailureReason.TOO_SHORT):
            raise type(rejected)(rejected.reason, rejected.detail, speaker) from None
        return LegTranscript(
            speaker=speaker,
            language=language,
            utterances=(),
            audio_s=info.duration_s,
            source_rate=info.sample_rate,
            decode_rate=decode_rate,
            status=LegStatus(rejected.reason.value),
            note=rejected.detail,
        )

    recognizer = vosk.KaldiRecognizer(model, decode_rate)
    recognizer.SetWords(True)
    resampler = (
        Resampler(info.sample_rate, decode_rate) if info.sample_rate != decode_rate else None
    )
    utterances: list[Utterance] = []

    def feed(samples: Any) -> None:
        if not samples:
            return
        try:
            finished = recognizer.AcceptWaveform(samples.tobytes())
        except Exception as exc:  # vosk raises a bare Exception("Failed to process waveform")
            raise TranscriptionFailed(FailureReason.DECODER_ERROR, str(exc), speaker) from exc
        if finished:
            utterances.append(parse_result(recognizer.Result()))

    block_frames = max(1, round(CHUNK_S * info.sample_rate))
    for block in iter_samples(info, block_frames=block_frames):
        feed(resampler.process(block) if resampler else block)
    if resampler:
        feed(resampler.flush())
    utterances.append(parse_result(recognizer.FinalResult()))
    return LegTranscript(
        speaker=speaker,
        language=language,
        utterances=tuple(u for u in utterances if u.words),
        audio_s=info.duration_s,
        source_rate=info.sample_rate,
        decode_rate=decode_rate,
    )
