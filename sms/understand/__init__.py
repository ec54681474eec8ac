"""Understanding what a citizen says: a rating, reasons, praise and opt-out.

An officer's record depends on how a reply is read, so this is deterministic and
explainable: no model, no network, one rules file (`sms/understand/understanding.toml`) that
ops can edit, and every `Understanding` lists the rule firings that decided it. The
same `understand()` reads SMS replies and, later, a citizen's side of a call transcript
(the caller joins the ASR words; numerals answering the scheme become digits either
way).

How the rating is decided, in order:

1. The reply is normalised (`sms.understand.text`) and scanned (`sms.understand.scan`)
   into signals, each with a strength: scheme digits and rating words (满意, 不满意,
   满意个屁) > opinion words and emoji (好, 不错, 差, 👍) > phrases (辛苦了, 踢皮球).
2. Contrast words (但是, 不过) and later times (现在, 后来) cut the reply into segments.
3. The strongest kind of signal present decides, in the last segment that has one;
   signals of one kind that disagree within a segment give the less satisfied rating
   (so a human calls back).
4. A weaker signal in a later segment still counts: after a later time it decides
   (「之前很满意，后来没人管了」); after a contrast a complaint turns an overall
   「满意」 into basically_satisfied (「满意，但是出警慢」) and wins over praise of one
   aspect (「态度很好，但是出警太慢」); a kind word after a complaint changes nothing.
5. A non-answer (「打错了」「我没报过警」) with only polite words, an opt-out alone, an
   acknowledgement, or nothing recognisable is unknown, with a hint for the agent.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sms.understand.load import default_rules, load_rules
from sms.understand.rules import Rating, Rules
from sms.understand.scan import TIER_RATING, Scan, Signal, scan
from sms.understand.text import normalize

__all__ = ["Rating", "Rules", "Understanding", "load_rules", "understand"]

# Less satisfied first: when signals of equal strength disagree, the lower one wins so
# the citizen is called back by a person rather than silently counted as satisfied.
_ORDER = {Rating.UNSATISFIED: 0, Rating.BASICALLY_SATISFIED: 1, Rating.SATISFIED: 2}
_TIER_NAMES = {0: "digits and rating words", 1: "opinion words", 2: "phrases"}


@dataclass(frozen=True)
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

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; key order is fixed so the serialised bytes are stable."""
        return {
            "rating": self.rating.value,
            "reasons": list(self.reasons),
            "praise": {"flag": self.praise, "words": list(self.praise_words)},
            "opt_out": self.opt_out,
            "explanation": list(self.explanation),
            "hint": self.hint,
            "text": self.text,
        }


def understand(text: str, rules: Rules | None = None) -> Understanding:
    """Read one reply (or a citizen's transcript text); rules None → the packaged rules."""
    rules = default_rules() if rules is None else rules
    found = scan(normalize(text, rules), rules)
    rating, decision = _decide(found)
    reasons: tuple[str, ...] = ()
    if found.reasons:
        reasons = tuple(sorted(set(found.reasons), key=rules.reason_order.__getitem__))
    praise_words = tuple(dict.fromkeys(found.praise_words)) if found.praise_words else ()
    hint = _hint(found) if rating is Rating.UNKNOWN else None
    explanation = tuple([note for _, note in found.notes] + decision)
    return Understanding(
        rating=rating,
        reasons=reasons,
        praise=bool(praise_words),
        praise_words=praise_words,
        opt_out=bool(found.opt_out),
        explanation=explanation,
        hint=hint,
        text=text,
    )


def _decide(found: Scan) -> tuple[Rating, list[str]]:
    """The rating from the scanned signals, with the decision steps that explain it."""
    notes: list[str] = []
    signals = _without_conflicting_digits(found, notes)
    if not signals:
        if not found.notes:
            notes.append("no rating word, digit or known phrase")
        return Rating.UNKNOWN, notes
    if found.non_answer_hints and _only_politeness(signals):
        notes.append("non-answer with only polite words → unknown")
        return Rating.UNKNOWN, notes
    first = signals[0].rating
    if all(s.rating is first for s in signals):
        return first, notes  # nothing to weigh: every rule below needs a disagreement
    cuts = [b.pos for b in found.boundaries]
    placed = [(s, bisect.bisect_right(cuts, s.pos)) for s in signals]
    tier = min(s.tier for s in signals)
    top = max(seg for s, seg in placed if s.tier == tier)
    deciding = [s for s, seg in placed if s.tier == tier and seg == top]
    rating = _combine(deciding, notes)
    if any(s.rating is not rating and seg < top for s, seg in placed):
        notes.append(f"{found.boundaries[top - 1].word!r}: the later clause decides")
    if any(s.tier > tier and s.rating is not rating and seg == top for s, seg in placed):
        notes.append(f"{_TIER_NAMES[tier]} outrank weaker words")
    if rating is Rating.SATISFIED and not all(s.overall for s in deciding):
        rating = _after_complaint(found, placed, top, notes)
    after = [(s, seg) for s, seg in placed if seg > top]
    if not after:
        return rating, notes
    last = max(seg for _, seg in after)
    tail = [s for s, seg in after if seg == last]
    tail_tier = min(s.tier for s in tail)
    tail_rating = _combine([s for s in tail if s.tier == tail_tier], notes)
    later = any(b.later for b in found.boundaries[top:last])
    overall = all(s.overall for s in deciding)
    return _before_tail(rating, tail_rating, later=later, overall=overall, notes=notes), notes


def _after_complaint(
    found: Scan, placed: list[tuple[Signal, int]], top: int, notes: list[str]
) -> Rating:
    """Praise of one aspect after a contrasted complaint: 「出警有点慢，但是态度很好」 is
    basically_satisfied; after a later time (「上次没人管，这次很及时」) it stays satisfied."""
    complained = [seg for s, seg in placed if seg < top and s.rating is Rating.UNSATISFIED]
    if not complained or any(b.later for b in found.boundaries[max(complained) : top]):
        return Rating.SATISFIED
    notes.append("praise after a contrasted complaint → basically_satisfied")
    return Rating.BASICALLY_SATISFIED


def _before_tail(
    rating: Rating, tail: Rating, *, later: bool, overall: bool, notes: list[str]
) -> Rating:
    """The deciding segment's rating, given a weaker signal in a segment after it."""
    if later:
        if tail is not rating:
            notes.append(f"later in time: {tail} overrules {rating}")
        return tail
    # A contrast never lifts a rating: kind words after a complaint do not undo it. A
    # complaint after it outweighs a judgment of one aspect (「态度很好，但是出警太慢」)
    # and lowers an overall satisfied one step (「满意，但是出警慢」).
    if tail is not Rating.UNSATISFIED or rating is Rating.UNSATISFIED:
        return rating
    if not overall:
        notes.append("a complaint after the contrast outweighs a judgment of one aspect")
        return Rating.UNSATISFIED
    if rating is Rating.SATISFIED:
        notes.append("satisfied, but a complaint follows the contrast → basically_satisfied")
        return Rating.BASICALLY_SATISFIED
    return rating


def _combine(signals: list[Signal], notes: list[str]) -> Rating:
    """One rating for signals of equal strength: the less satisfied when they disagree."""
    ratings = sorted({s.rating for s in signals}, key=_ORDER.__getitem__)
    if len(ratings) > 1:
        mixed = " and ".join(r.value for r in reversed(ratings))
        notes.append(f"mixed {mixed} → the less satisfied, {ratings[0]}")
    return ratings[0]


def _without_conflicting_digits(found: Scan, notes: list[str]) -> list[Signal]:
    """Drop scheme digits when a reply gives two different ones (「1 3」): no one knows."""
    if found.digit_votes < 2:
        return found.signals
    digits = sorted({s.digit for s in found.signals if s.digit is not None})
    if len(digits) < 2:
        return found.signals
    notes.append(f"different digits {', '.join(digits)} → digits ignored")
    return [s for s in found.signals if s.digit is None]


def _only_politeness(signals: list[Signal]) -> bool:
    """Only kind words (谢谢, 好): no scheme digit or rating word, nothing negative."""
    return all(s.tier != TIER_RATING and s.rating is not Rating.UNSATISFIED for s in signals)


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
    if not found.norm.strip():
        return "empty reply"
    return "no rating words found: read the text"
