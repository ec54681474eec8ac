"""The transcript of a callback: per-leg words, a speaker-attributed timeline, JSON form.

A callback is recorded as two legs (MixMonitor's ``r()``/``t()`` files): what the citizen
said and what the agent said. Each leg is decoded on its own, so speaker attribution is
exact rather than guessed; :func:`merge_timeline` interleaves the legs' utterances by
start time into one conversation. Times are seconds from the start of the recording
(both legs start together), rounded to milliseconds in JSON.

The JSON payload (``TranscriptResult.to_json()``) is the body of the ``transcript``
event::

    {"legs": {"citizen": {"text", "raw_text", "status", "audio_s", "source_rate",
                          "words": [{"w", "start", "end", "conf"}]},
              "agent": {...}},
     "timeline": [{"speaker", "start", "end", "text", "words": [...]}],
     "model", "language", "sample_rate", "audio_s", "processing_s"}

``text`` is normalised for the reply-understanding core (see :mod:`asr.textnorm`);
``raw_text`` is what Vosk said, kept so every reading can be explained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from asr.textnorm import normalize_utterance


class Speaker(StrEnum):
    """Who a leg recorded; the keys of ``legs`` in a transcription job."""

    CITIZEN = "citizen"
    AGENT = "agent"
    MIXED = "mixed"  # a single MixMonitor file holding both directions


class LegStatus(StrEnum):
    """Outcome of one leg that did not fail outright."""

    OK = "ok"
    SILENT = "silent"
    TOO_SHORT = "too_short"


# Within one leg, a pause this long starts a new timeline segment even if Vosk's
# endpointer kept the words in one result.
DEFAULT_MAX_GAP_S = 1.0
_SPEAKER_ORDER: dict[str, int] = {Speaker.CITIZEN: 0, Speaker.AGENT: 1, Speaker.MIXED: 2}


def _r(x: float) -> float:
    return round(x, 3)


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its time span (seconds) and Vosk's confidence (0..1)."""

    w: str
    start: float
    end: float
    conf: float

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"w", "start", "end", "conf"}``."""
        return {"w": self.w, "start": _r(self.start), "end": _r(self.end), "conf": _r(self.conf)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Word:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["w"]), float(data["start"]), float(data["end"]), float(data["conf"]))


@dataclass(frozen=True, slots=True)
class Utterance:
    """Words Vosk returned as one result (its endpointer decided where speech paused)."""

    words: tuple[Word, ...]

    @property
    def raw_text(self) -> str:
        """The words as Vosk spelled them, space-separated."""
        return " ".join(w.w for w in self.words)


@dataclass(frozen=True, slots=True)
class LegTranscript:
    """Everything recognised on one leg."""

    speaker: str
    language: str
    utterances: tuple[Utterance, ...]
    audio_s: float
    source_rate: int
    decode_rate: int
    status: LegStatus = LegStatus.OK
    note: str = ""  # why a leg is silent/too short, for the operator

    @property
    def words(self) -> list[Word]:
        """All words of the leg in time order."""
        return [w for u in self.utterances for w in u.words]

    @property
    def raw_text(self) -> str:
        """Vosk's text for the whole leg."""
        return " ".join(u.raw_text for u in self.utterances if u.words)

    @property
    def text(self) -> str:
        """Normalised text, segment by segment as in the timeline (what the reply core reads).

        Pauses separate answers: "嗯 三 ... 不 满意" reads as "嗯3 不满意", not "嗯三不满意".
        """
        return " ".join(s.text for s in leg_segments(self) if s.text)

    @property
    def resampled(self) -> bool:
        """True when the leg was converted to the model's rate before decoding."""
        return self.source_rate != self.decode_rate

    def to_json(self) -> dict[str, Any]:
        """JSON form of the leg (see the module docstring)."""
        data: dict[str, Any] = {
            "text": self.text,
            "raw_text": self.raw_text,
            "status": self.status.value,
            "audio_s": _r(self.audio_s),
            "source_rate": self.source_rate,
            "words": [w.to_json() for w in self.words],
        }
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True, slots=True)
class Segment:
    """One turn of the conversation: consecutive words of one speaker."""

    speaker: str
    words: tuple[Word, ...]
    text: str

    @property
    def start(self) -> float:
        """Start of the first word (seconds)."""
        return self.words[0].start

    @property
    def end(self) -> float:
        """End of the last word (seconds)."""
        return self.words[-1].end

    def to_json(self) -> dict[str, Any]:
        """JSON form: ``{"speaker", "start", "end", "text", "words"}``."""
        return {
            "speaker": self.speaker,
            "start": _r(self.start),
            "end": _r(self.end),
            "text": self.text,
            "words": [w.to_json() for w in self.words],
        }


def _split_on_gaps(words: tuple[Word, ...], max_gap_s: float) -> Iterable[tuple[Word, ...]]:
    run: list[Word] = []
    for word in words:
        if run and word.start - run[-1].end > max_gap_s:
            yield tuple(run)
            run = []
        run.append(word)
    if run:
        yield tuple(run)


def leg_segments(leg: LegTranscript, max_gap_s: float = DEFAULT_MAX_GAP_S) -> list[Segment]:
    """A leg's turns: Vosk's utterances, split further at pauses longer than ``max_gap_s``."""
    return [
        Segment(leg.speaker, run, normalize_utterance(" ".join(w.w for w in run), leg.language))
        for utterance in leg.utterances
        for run in _split_on_gaps(utterance.words, max_gap_s)
    ]


def merge_timeline(
    legs: Iterable[LegTranscript], *, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> list[Segment]:
    """Interleave the legs' segments (:func:`leg_segments`) into one speaker-attributed timeline.

    Segments are ordered by start time (ties: citizen first, then by end). Overlapping
    speech (both talking at once) yields overlapping segments, each with its own speaker.
    """
    segments = [segment for leg in legs for segment in leg_segments(leg, max_gap_s)]
    segments.sort(key=lambda s: (s.start, _SPEAKER_ORDER.get(s.speaker, 9), s.end))
    return segments


@dataclass(frozen=True)
class TranscriptResult:
    """The transcript of one recording: the payload of a ``transcript`` event."""

    legs: dict[str, LegTranscript]
    timeline: list[Segment]
    model: str
    language: str
    sample_rate: int
    audio_s: float
    processing_s: float
    # Diagnostics for logs and the benchmark; not part of the event payload.
    cpu_s: float = field(default=0.0, compare=False)
    peak_rss_mb: dict[int, float] = field(default_factory=dict, compare=False)

    @property
    def citizen_text(self) -> str:
        """What the citizen said, normalised: the input to reply understanding."""
        leg = self.legs.get(Speaker.CITIZEN) or self.legs.get(Speaker.MIXED)
        return leg.text if leg else ""

    def to_json(self) -> dict[str, Any]:
        """The event payload (see the module docstring); plain JSON types only."""
        return {
            "legs": {name: leg.to_json() for name, leg in self.legs.items()},
            "timeline": [s.to_json() for s in self.timeline],
            "model": self.model,
            "language": self.language,
            "sample_rate": self.sample_rate,
            "audio_s": _r(self.audio_s),
            "processing_s": _r(self.processing_s),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TranscriptResult:
        """Rebuild a result from :meth:`to_json` output (one utterance per timeline segment)."""
        language = str(data["language"])
        rate = int(data["sample_rate"])
        legs: dict[str, LegTranscript] = {}
        for name, leg in data["legs"].items():
            segments = [s["words"] for s in data["timeline"] if s["speaker"] == name and s["words"]]
            legs[name] = LegTranscript(
                speaker=name,
                language=language,
                utterances=tuple(Utterance(tuple(map(Word.from_json, ws))) for ws in segments),
                audio_s=float(leg["audio_s"]),
                source_rate=int(leg["source_rate"]),
                decode_rate=rate,
                status=LegStatus(leg["status"]),
                note=str(leg.get("note", "")),
            )
        return cls(
            legs=legs,
            timeline=merge_timeline(legs.values()),
            model=str(data["model"]),
            language=language,
            sample_rate=rate,
            audio_s=float(data["audio_s"]),
            processing_s=float(data["processing_s"]),
        )
