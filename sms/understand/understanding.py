"""What one reply says, and why it was read that way: `Understanding`, the reader's
result (made by `sms.understand.reading.understand`)."""

from __future__ import annotations

from dataclasses import dataclass

from sms.understand.rules import Confidence, Rating


@dataclass(frozen=True, slots=True)  # slots: half the cost of building one per reply
class Understanding:
    """What one reply says, and why it was read that way."""

    rating: Rating
    reasons: tuple[str, ...]  # tag ids, in taxonomy order
    praise: bool
    praise_words: tuple[str, ...]
    opt_out: bool
    explanation: tuple[str, ...]  # short rule firings, e.g. "digit 3 → unsatisfied (scheme)"
    hint: str | None  # for agents when unknown, e.g. "citizen says wrong number"
    text: str  # the original text
    confidence: Confidence = Confidence.CERTAIN
    cues: tuple[str, ...] = ()  # kinds of evidence, ids from sms.understand.cues
    correction: bool = False  # the reply corrects an earlier one: 「更正一下，给3」
    acknowledgement: bool = False  # the whole reply only acknowledges: 好的, 收到

    @property
    def clarify(self) -> bool:
        """Worth one clarifying question: the rating is unknown or unclear, and the
        citizen neither opted out nor only acknowledged the message."""
        unsure = self.rating is Rating.UNKNOWN or self.confidence is Confidence.UNCLEAR
        return unsure and not self.opt_out and not self.acknowledgement

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; key order is fixed so the serialised bytes are stable.

        The first seven keys are the original contract; later keys are only ever added.
        """
        return {
            "rating": self.rating.value,
            "reasons": list(self.reasons),
            "praise": {"flag": self.praise, "words": list(self.praise_words)},
            "opt_out": self.opt_out,
            "explanation": list(self.explanation),
            "hint": self.hint,
            "text": self.text,
            "confidence": self.confidence.value,
            "cues": list(self.cues),
            "correction": self.correction,
            "clarify": self.clarify,
        }
