"""Understanding what a citizen says: a rating, how sure, reasons, praise and opt-out.

An officer's record depends on how a reply is read, so this is deterministic and
explainable: no model, no network, one rules file (`sms/understand/understanding.toml`)
that ops can edit, and every `Understanding` lists the rule firings that decided it and
the kinds of evidence (`cues`) it rests on. The same `understand()` reads SMS replies
and a citizen's side of a call transcript (Vosk's spaces between words change nothing).

The one error that matters most is an unsatisfied citizen read as satisfied: the
survey closes and nobody calls back. So the reader is asymmetric (a complaint beside
praise is never read as satisfied, see `sms.understand.decide`) and says how sure it is
(`confidence`); a reply it cannot settle is `clarify`: worth one more question.

The steps: `sms.understand.text` normalises the spelling (full-width, traditional,
pinyin and English words, 选三 → 3); `sms.understand.scan` corrects sound-alike typos
(满衣 → 满意) and finds the words, digits, negations, contrasts and corrections;
`sms.understand.decide` weighs them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Final

from sms.understand import cues as cue_ids
from sms.understand.decide import decide
from sms.understand.findings import Scan
from sms.understand.load import default_rules, load_rules
from sms.understand.rules import Confidence, Rating, Rules
from sms.understand.scan import scan
from sms.understand.text import misdecoded, normalize

__all__ = ["Confidence", "Rating", "Rules", "Understanding", "load_rules", "understand"]

# The explanation stays readable (and the payload small) however long the reply.
MAX_EXPLANATION: Final = 20
MAX_CUES: Final = 20
MAX_PRAISE_WORDS: Final = 10
# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs), and these are read for every reply.
_UNSATISFIED: Final = Rating.UNSATISFIED
_UNKNOWN: Final = Rating.UNKNOWN


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


def understand(text: str, rules: Rules | None = None) -> Understanding:
    """Read one reply (or a citizen's transcript text); rules None → the packaged rules."""
    rules = default_rules() if rules is None else rules
    trouble = misdecoded(text)
    if trouble is not None:
        return Understanding(
            rating=Rating.UNKNOWN,
            reasons=(),
            praise=False,
            praise_words=(),
            opt_out=False,
            explanation=(f"mis-decoded text: {trouble}",),
            hint=f"encoding: {trouble}",
            text=text,
            confidence=Confidence.UNCLEAR,
            cues=(cue_ids.ENCODING,),
        )
    found = scan(normalize(text, rules), rules)
    decision = decide(found, rules.weigher)
    rating = decision.rating
    tags = found.reasons
    if rating is _UNSATISFIED and found.other_reasons:
        tags = tags + found.other_reasons  # 「对方还没赔钱，你们也不催」: result, no_action
    reasons: tuple[str, ...] = ()
    if tags:
        reasons = tuple(sorted(set(tags), key=rules.reason_order.__getitem__))
    praise_words: tuple[str, ...] = ()
    if found.praise_words:
        praise_words = tuple(dict.fromkeys(found.praise_words))[:MAX_PRAISE_WORDS]
    hint = None
    if rating is _UNKNOWN:
        hint = decision.hint or _hint(found)
    cues = found.cues + decision.cues if decision.cues else found.cues
    return _made(
        rating,
        reasons,
        bool(praise_words),
        praise_words,
        bool(found.opt_out),
        _bounded(found.notes, decision.notes),
        hint,
        text,
        decision.confidence,
        tuple(dict.fromkeys(cues))[:MAX_CUES] if len(cues) > 1 else tuple(cues),
        decision.correction,
        found.acknowledgement is not None,
    )


# One Understanding per reply, made without the frozen dataclass's __init__: that sets
# each of the twelve fields through object.__setattr__, a tenth of reading 「满意」. Each
# slot is set through its own descriptor, in field order: the same object.
_SLOTS: Final = tuple(Understanding.__dict__[f.name].__set__ for f in fields(Understanding))


def _made(*values: object) -> Understanding:
    made = object.__new__(Understanding)
    for set_slot, value in zip(_SLOTS, values, strict=True):
        set_slot(made, value)
    return made


def _bounded(found: list[tuple[int, str]], decision: list[str]) -> tuple[str, ...]:
    """At most MAX_EXPLANATION steps: the decision's steps are kept, the findings are
    cut with a last line that says how many were left out."""
    if len(found) + len(decision) <= MAX_EXPLANATION:
        return (*map(_note, found), *decision)
    room = max(0, MAX_EXPLANATION - len(decision[: MAX_EXPLANATION - 1]) - 1)
    left = len(found) - room
    kept = [note for _, note in found[:room]]
    return tuple([*kept, f"… {left} more findings", *decision][:MAX_EXPLANATION])


_note: Final = itemgetter(1)  # the text of a (position, text) finding


def _hint(found: Scan) -> str:
    """What an agent should know about a reply that gives no rating."""
    digits = sorted({s.digit for s in found.signals if s.digit is not None})
    if found.non_answer_hints:
        return found.non_answer_hints[0]
    if len(digits) > 1:
        return f"several different digits ({', '.join(digits)}): ask which one"
    if found.digit_hints:
        return found.digit_hints[0]
    if found.opt_out:
        return "opt-out only: no rating given"
    if found.acknowledgement is not None:
        return found.acknowledgement
    if found.asks is not None:
        return found.asks
    if not found.norm.strip():
        return "empty reply"
    return "no rating words found: read the text"
