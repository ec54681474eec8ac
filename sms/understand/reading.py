"""One reply read through every step (`understand`): the spelling normalised, the words
scanned, the rating decided, the result bounded. Its own module so that it is compiled
with the steps (sms.compiled); `sms.understand` exports it.
"""

from __future__ import annotations

from dataclasses import fields
from operator import itemgetter
from typing import Final

from sms.understand import cues as cue_ids
from sms.understand.decide import decide
from sms.understand.findings import Scan
from sms.understand.rules import Confidence, Rating, Rules
from sms.understand.rules.load import default_rules
from sms.understand.scan import scan
from sms.understand.text import misdecoded, normalize
from sms.understand.understanding import Understanding

# The explanation stays readable (and the payload small) however long the reply.
MAX_EXPLANATION: Final = 20
MAX_CUES: Final = 20
MAX_PRAISE_WORDS: Final = 10
# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs), and these are read for every reply.
_UNSATISFIED: Final = Rating.UNSATISFIED
_UNKNOWN: Final = Rating.UNKNOWN


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
_SLOTS: Final = tuple(vars(Understanding)[f.name].__set__ for f in fields(Understanding))


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
