"""Deciding a rating, and how sure it is, from what `scan` found.

In order:

1. A self-correction (「2，哦不，3」「1吧……算了还是2」「更正一下，给3」) keeps only the
   answer after it. A correction with no new answer (「按错了」) leaves the rating unknown.
2. A choice not made (「1还是2呢」) or different digits (「1 3」) are unknown; a
   non-answer or a question about the case with only polite words is unknown.
3. The strongest kind of signal present decides, in the last segment that has one
   (segments are cut by contrast words 但是/可是/就是/只是/不过, summaries 总之/总的来说,
   and later times 现在/后来); signals of one kind that disagree within a segment give
   the less satisfied rating (so a human calls back).
4. A weaker signal in a later segment still counts: after a later time it decides; a
   complaint after a contrast lowers the rating (「满意，但是出警慢」 → basically).
5. The asymmetric rule: an unsatisfied citizen read as satisfied is the one error that
   closes a survey nobody calls back. So when a complaint stands beside a satisfied
   or basically satisfied reading, the reading is never satisfied:
   - the complaint was weighed before a contrast or summary (「虽然慢了点，但总体满意」):
     basically_satisfied; resolved by a later time (「之前没人管，现在解决了」): kept;
   - the complaint follows the contrast: a small one (出警慢, 跑多次, 「有点」, 「希望」)
     gives basically_satisfied, any other unsatisfied;
   - no contrast at all, praise and complaint side by side (「真是太满意了，人影都没见
     到」): that is sarcasm or a complaint, unsatisfied — unless the complaint is said
     as a small one (「满意，就是有点慢」), basically_satisfied.
   A complaint about someone else (对方, 骗子) was already set aside by `scan`.
6. Confidence: `certain` when the evidence agrees and nothing had to be weighed,
   `likely` when a rule weighed it (contrast, negation, a typo, phrases only), `unclear`
   when caution chose (mixed words, praise beside a complaint) or the reply may hold a
   rating that could not be read.
7. The safety net (`sms.understand.caution`): a positive reading beside a word the
   reader could not explain is not trusted.
8. The weigher (`sms.understand.learned`): a reading still `unclear` is weighed by a
   model of the words and of the rules' evidence, within the asymmetric limits of
   `Weigher.verdict`; its answer carries the cue `weighed` and the features that drove
   it.
"""

from __future__ import annotations

import bisect
import re
from typing import Final

from sms.understand import caution, cues, digits
from sms.understand.findings import TIER_PHRASE, TIER_RATING, Boundary, Scan, Signal
from sms.understand.learned import Weigher, features_of
from sms.understand.learned.features import findings
from sms.understand.rules import HAN, SATISFACTION, Confidence, Rating

# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs), and these are read for every reply or word.
_BASICALLY_SATISFIED: Final = Rating.BASICALLY_SATISFIED
_LIKELY: Final = Confidence.LIKELY
_SATISFIED: Final = Rating.SATISFIED
_UNCLEAR: Final = Confidence.UNCLEAR
_UNSATISFIED: Final = Rating.UNSATISFIED

# Less satisfied first: when signals of equal strength disagree, the lower one wins so
# the citizen is called back by a person rather than silently counted as satisfied.
_TIER_NAMES = {0: "digits and rating words", 1: "opinion words", 2: "phrases"}
_WEIGHING = frozenset(
    (
        cues.NEGATION,
        cues.RHETORICAL,
        cues.HOMOPHONE,
        cues.SELF_CORRECTION,
        cues.CORRECTION,
        cues.OTHER_PARTY,
        cues.SARCASM,
    )
)


_UNKNOWN = Rating.UNKNOWN
_CERTAIN = Confidence.CERTAIN


class Decision:
    """The rating, how sure, and the steps that explain it."""

    # A plain slotted class: one is made per reply (see findings.Scan).
    __slots__ = ("confidence", "correction", "cues", "hint", "no_answer", "notes", "rating")

    def __init__(self, correction: bool = False) -> None:
        self.rating = _UNKNOWN
        self.confidence = _CERTAIN
        self.notes: list[str] = []
        self.cues: list[str] = []
        self.correction = correction  # the reply corrects an earlier reply
        self.hint: str | None = None  # why it is unknown, when the scan alone cannot say
        # The reply holds no answer to weigh: one taken back, a choice not made.
        self.no_answer = False

    def doubt(self, confidence: Confidence) -> None:
        """Lower the confidence to `confidence` (never raise it)."""
        if _RANK[confidence] > _RANK[self.confidence]:
            self.confidence = confidence


# A Chinese character: a reply the rules read nothing in and that has none (「LTD」, "need to
# improve a lot": every English word the rules know became Chinese in `normalize`) is not
# weighed; character n-grams of unknown English are noise, and it is asked again.
_CHINESE = re.compile(f"[{HAN}]")
_POSITIVE = frozenset((Rating.SATISFIED, Rating.BASICALLY_SATISFIED))
# Letters a reply may have and still be only an answer: 「1」「满意」「非常满意!!」.
_BARE_ANSWER = 4
# An opt-out with more characters than this says something else too (「以后别再给我发了」
# is 8): the weigher may read it.
_OPT_OUT_ALONE = 10

_RANK = {Confidence.CERTAIN: 0, Confidence.LIKELY: 1, Confidence.UNCLEAR: 2}


def decide(found: Scan, weigher: Weigher | None = None) -> Decision:
    """The rating from the scanned signals, with its confidence and explanation;
    `weigher` (step 8) weighs what the rules leave unclear."""
    d = _decide(found)
    if found.doubts:
        caution.settle(found, d)  # step 7, the safety net
    # A reply the rules know to hold no answer (an answer taken back, a choice not made)
    # is asked again rather than guessed at; a certain reading is only ever vetoed, and
    # a bare answer (「1」「满意」「很满意」) has no words a veto could rest on.
    if weigher is not None and not d.no_answer:
        if d.confidence is not _CERTAIN or (
            d.rating in _POSITIVE and _letters(found.norm) > _BARE_ANSWER
        ):
            if not (d.rating is _UNKNOWN and _said_no_answer(found)):
                # In an opt-out the rules read no verdict beside (nothing, or thanks), it
                # may find a complaint, not a reason to close the survey; nor in a rating
                # word a garbled 不 may stand before (「丕满意」).
                bare = d.rating is _UNKNOWN and not found.doubts and _opt_out_and_more(found)
                weigh_down = bare or found.garbled or _work_over_manners(found)
                only = _UNSATISFIED if weigh_down else None
                reweigh(found, d, weigher, only=only)
    return d


def _letters(norm: str) -> int:
    """Characters that say something: letters, digits, Chinese (not spaces or 「!!」)."""
    return sum(map(str.isalnum, norm))


def _said_no_answer(found: Scan) -> bool:
    """Read as giving no answer, with nothing else to weigh: for a reason the rules name
    (a wrong number, an opt-out or an acknowledgement alone, a digit outside the scheme
    or a phone number), or with no Chinese word at all (「3.5」「3:30」: numbers, not votes;
    「LTD」: English the rules do not know)."""
    if found.signals:
        return False
    if _opt_out_and_more(found):
        return False
    named = found.digit_hints or found.non_answer_hints or found.opt_out
    return bool(named or found.acknowledgement is not None) or not _CHINESE.search(found.norm)


def _opt_out_and_more(found: Scan) -> bool:
    """An opt-out in a reply that says more than an opt-out would (「案子不办短信倒是天天发，
    退订」): what else it says may be a verdict the rules did not read."""
    if not found.opt_out or found.digit_hints or found.non_answer_hints:
        return False
    return found.acknowledgement is None and _letters(found.norm) > _OPT_OUT_ALONE


def rules_features(found: Scan, d: Decision) -> list[str]:
    """The weigher's features of a reply the rules have decided (`d`)."""
    # The members themselves, not `.value` (a slow property on 3.11): a StrEnum member
    # is the string it stands for.
    evidence = findings(found, d.rating, d.confidence, tuple(found.cues + d.cues))
    return features_of(found.norm, evidence)


def reweigh(found: Scan, d: Decision, weigher: Weigher, *, only: Rating | None = None) -> None:
    """Step 8: the weigher's reading replaces the rules' within its limits
    (`Weigher.verdict`); with `only`, no other reading does."""
    # Contested: an unsatisfied reading, a complaint the rules found, or a word the
    # safety net could not explain beside the praise (it withheld a positive reading).
    complained = (
        d.rating is _UNSATISFIED
        or bool(found.doubts)
        or any(s.rating is _UNSATISFIED for s in found.signals)
    )
    verdict = weigher.verdict(rules_features(found, d), d.rating, d.confidence, complained)
    if (
        verdict.rating is not None
        and verdict.rating is not d.rating
        and only in (None, verdict.rating)
    ):
        # agreeing changes nothing, not even how sure: the rules' doubt stands
        d.cues.append(cues.WEIGHED)
        drivers = ", ".join(repr(f) for f in verdict.drivers) or "the reply as a whole"
        d.notes.append(f"weigher: {verdict.rating} ({verdict.probability:.2f}) from {drivers}")
        d.rating = verdict.rating
        d.hint = None
        d.confidence = _LIKELY if verdict.sure else _UNCLEAR
        if d.confidence is _LIKELY and d.rating in _POSITIVE and not _praised(found):
            # a positive reading resting on no positive word the rules read: the citizen is
            # asked again rather than the survey closed on the model's word alone
            d.notes.append("no positive word read: ask again")
            d.confidence = _UNCLEAR
    if verdict.ask and d.rating in _POSITIVE and d.confidence is not _UNCLEAR:
        # closing the survey could be the worst error: ask the citizen again
        d.cues.append(cues.WEIGHED)
        if verdict.unsat < weigher.withhold:
            d.notes.append(f"weigher: unsatisfied ({verdict.unsat:.2f}) not ruled out → ask again")
        else:
            # Likely enough that even a positive reading is not claimed: no rating.
            d.notes.append(
                f"weigher: unsatisfied ({verdict.unsat:.2f}) too likely → {d.rating} withheld"
            )
            d.hint = f"reads as {d.rating}, but may be unsatisfied: ask again"
            d.rating = _UNKNOWN
        d.confidence = _UNCLEAR


# Reasons (stable taxonomy ids) that say the work itself was not done: the case, the
# action, the follow-up. Manners (attitude) and the small ones (mild) are not among them.
_THE_WORK: Final = frozenset(("result", "no_action", "no_feedback", "shirking"))


def _work_over_manners(found: Scan) -> bool:
    """「结果不满意，但态度还可以」: a rating word of dissatisfaction with the work, and
    beside it only praise of manners. Manners never outweigh the work (the asymmetric
    rule), so the weigher may read it as unsatisfied or leave it, never lift it."""
    if _THE_WORK.isdisjoint(found.reasons):
        return False
    positive = [s for s in found.signals if s.rating is not _UNSATISFIED]
    return (
        bool(positive)
        and all(s.courtesy and s.tier != TIER_RATING for s in positive)
        and any(s.rating is _UNSATISFIED and s.tier == TIER_RATING for s in found.signals)
    )


def _praised(found: Scan) -> bool:
    """The rules read a positive word, digit or emoji somewhere in the reply."""
    return any(s.rating in _POSITIVE for s in found.signals)


def _decide(found: Scan) -> Decision:
    d = Decision(correction=found.earlier_reply)
    signals = found.signals
    if len(signals) < 2 and not (
        found.boundaries or found.undecided or found.earlier_reply or found.digits_taken_back
    ):
        if signals:
            return _one(found, signals[0], d)  # the common case: 「3」「满意」「太慢了」
        if not found.notes:
            d.notes.append("no rating word, digit or known phrase")
        return _unknown(d, _unknown_confidence(found, d))
    if found.earlier_reply:
        d.cues.append(cues.CORRECTION)
    if not _WEIGHING.isdisjoint(found.cues):
        d.doubt(_LIKELY)
    signals, boundaries = _after_corrections(found, d)
    if d.hint is not None:
        return _unknown(d, _UNCLEAR)
    if found.digits_taken_back is not None and found.digit_votes == 1:
        signals = digits.without_disowned(found, signals, d)
    if found.digit_votes > 1:
        signals = digits.without_conflicting(found, signals, d)
    if not signals:
        if not found.notes:
            d.notes.append("no rating word, digit or known phrase")
        return _unknown(d, _unknown_confidence(found, d))
    asking = found.asks is not None or found.questioning
    if _no_verdict_beside_opt_out(found, asking, signals):
        d.notes.append("non-answer, question or opt-out with only polite words → unknown")
        return _unknown(d, _unknown_confidence(found, d))
    if min(s.tier for s in signals) == TIER_PHRASE:
        d.doubt(_LIKELY)  # phrases alone: no digit, rating or opinion word
    if boundaries:
        boundaries = _later_times(signals, boundaries)
    d.rating = _weigh(signals, boundaries, d)
    return d


def _later_times(signals: list[Signal], boundaries: list[Boundary]) -> list[Boundary]:
    """A later time (后来, 最后, 现在) decides only when the clause before it was said to
    be the past (之前, 一开始) or what follows settles the matter: a rating (满意, a
    digit) or a good outcome of the work (解决了, 找到了, 很及时) — not kind words alone.
    Otherwise it weighs no more than a contrast: in 「等了两个小时才来，后来态度挺好」 the
    wait is not made past by the manners."""
    out = []
    for b in boundaries:
        if b.later and not b.past and b.kind == cues.LATER:
            settled = any(
                s.pos > b.pos
                and s.rating is not _UNSATISFIED
                and (s.tier == TIER_RATING or (s.tier == TIER_PHRASE and not s.courtesy))
                for s in signals
            )
            if not settled:
                b = b._replace(later=False)
        out.append(b)
    return out


def _one(found: Scan, signal: Signal, d: Decision) -> Decision:
    """A reply with one signal and nothing to weigh: what `decide` would give, fast."""
    asking = found.asks is not None or found.questioning
    if _no_verdict_beside_opt_out(found, asking, [signal]):
        d.notes.append("non-answer, question or opt-out with only polite words → unknown")
        return _unknown(d, _unknown_confidence(found, d))
    if signal.tier == TIER_PHRASE or not _WEIGHING.isdisjoint(found.cues):
        d.confidence = _LIKELY
    d.rating = signal.rating
    return d


def _unknown(d: Decision, confidence: Confidence) -> Decision:
    d.rating = _UNKNOWN
    d.confidence = confidence
    return d


def _unknown_confidence(found: Scan, d: Decision) -> Confidence:
    """Certain when the reply plainly gives no rating (TD, 好的, 打错了, nothing);
    unclear when it may hold one that could not be read."""
    if d.correction or found.asks is not None or found.digit_hints or found.undecided:
        return _UNCLEAR
    plain = found.opt_out or found.acknowledgement or found.non_answer_hints
    if _opt_out_and_more(found):
        return _UNCLEAR
    if plain or not found.norm.strip():
        return _CERTAIN
    return _UNCLEAR


def _after_corrections(found: Scan, d: Decision) -> tuple[list[Signal], list[Boundary]]:
    """The signals and boundaries after the last self-correction that is followed by an
    answer; sets `d.hint` when the reply takes an answer back and gives none."""
    signals, boundaries = found.signals, found.boundaries
    corrections = [b for b in boundaries if b.kind == cues.SELF_CORRECTION] if boundaries else []
    if not corrections:
        if found.undecided is not None:
            d.hint = f"undecided between {found.undecided}: ask which one"
            d.no_answer = True
        return signals, boundaries
    answered = [b for b in corrections if any(s.pos > b.pos for s in signals)]
    complaints = [s for s in signals if s.rating is _UNSATISFIED and s.digit is None]
    if not answered and complaints and any(s.rating is not _UNSATISFIED for s in signals):
        # 「你们说会跟进，结果再也没消息，之前的满意收回」: the praise is taken back, the
        # complaint given with it stands
        d.correction = True
        d.cues.append(cues.CORRECTION)
        d.notes.append(f"{corrections[-1].word!r} takes the praise back; the complaint stands")
        d.doubt(_LIKELY)
        return complaints, []
    if not answered:
        d.correction = True
        d.cues.append(cues.CORRECTION)
        d.notes.append(f"{corrections[-1].word!r} takes an answer back and gives no new one")
        d.hint = "citizen says an answer was a mistake and gives no new one: ask again"
        d.no_answer = True
        return signals, boundaries
    last = answered[-1]
    before = [s for s in signals if s.pos < last.pos]
    if before:
        d.cues.append(cues.SELF_CORRECTION)
        d.notes.append(f"{last.word!r}: the answer after it replaces the one before")
    else:
        d.correction = True
        d.cues.append(cues.CORRECTION)
        d.notes.append(f"{last.word!r}: corrects an earlier reply")
    d.doubt(_LIKELY)
    signals = [s for s in signals if s.pos > last.pos]
    boundaries = [b for b in boundaries if b.pos > last.pos and b.kind != cues.SELF_CORRECTION]
    return signals, boundaries


def _weigh(signals: list[Signal], boundaries: list[Boundary], d: Decision) -> Rating:
    """Steps 3 to 5 of the module docstring."""
    notes = d.notes
    first = signals[0].rating
    if all(s.rating is first for s in signals):
        return first  # nothing to weigh: every rule below needs a disagreement
    d.doubt(_LIKELY)
    cuts = [b.pos for b in boundaries]
    placed = [(s, bisect.bisect_right(cuts, s.pos)) for s in signals]
    tier = min(s.tier for s in signals)
    top = max(seg for s, seg in placed if s.tier == tier)
    deciding = [s for s, seg in placed if s.tier == tier and seg == top]
    rating = _combine(deciding, d)
    if rating is _UNSATISFIED and any(s.rating is not rating for s in deciding):
        rating = _beside(deciding, d)
    if any(s.rating is not rating and seg < top for s, seg in placed):
        boundary = boundaries[top - 1]
        notes.append(f"{boundary.word!r}: the later clause decides")
        d.cues.append(boundary.kind)
        if rating is _UNSATISFIED and not boundary.later:
            rating = _after_praise(deciding, placed, boundaries, top, d)
    if any(s.tier > tier and s.rating is not rating and seg == top for s, seg in placed):
        notes.append(f"{_TIER_NAMES[tier]} outrank weaker words")
    if rating is _SATISFIED and not all(s.overall for s in deciding):
        rating = _after_complaint(placed, boundaries, top, notes)
    after = [(s, seg) for s, seg in placed if seg > top]
    if after:
        last = max(seg for _, seg in after)
        tail = [s for s, seg in after if seg == last]
        tail_tier = min(s.tier for s in tail)
        tail_signals = [s for s in tail if s.tier == tail_tier]
        tail_rating = _combine(tail_signals, d)
        later = any(b.later for b in boundaries[top:last])
        complaints = [s for s in tail_signals if s.rating is _UNSATISFIED]
        small = _small(complaints, [s for s, seg in placed if seg == top])
        rating = _before_tail(rating, tail_rating, later=later, small=small, notes=notes)
        if later or rating is _UNSATISFIED:
            return rating
    return _asymmetric(rating, placed, boundaries, top, d)


def _asymmetric(
    rating: Rating,
    placed: list[tuple[Signal, int]],
    boundaries: list[Boundary],
    top: int,
    d: Decision,
) -> Rating:
    """Step 5: a complaint beside a (basically) satisfied reading never leaves it
    satisfied, and turns it unsatisfied unless it was weighed or said as a small one."""
    if rating is _UNSATISFIED or rating is _UNKNOWN:
        return rating
    beside, weighed, conceded = [], [], []
    for s, seg in placed:
        if s.rating is not _UNSATISFIED or seg > top:
            continue  # complaints after the deciding clause were weighed as its tail
        if seg == top:
            beside.append(s)
        elif boundaries[seg].kind == cues.CONCESSION:
            conceded.append(s)  # 「虽然等了挺久，但是最后处理得很好」: conceded, it stands
        elif not any(b.later for b in boundaries[seg:top]):
            weighed.append(s)
    praise = [s for s, seg in placed if seg == top and s.rating is not _UNSATISFIED]
    sarcastic = any(s.overall and not s.courtesy for s in praise)
    if not praise:
        beside = []  # the deciding clause only complains: weighed by _after_praise
    conduct = [s for s in weighed if s.reason != "result"]
    if conduct and praise and all(s.courtesy for s in praise) and not _small(conduct, praise):
        # 「到现在没人管，不过民警态度很好」: manners do not outweigh how the work was done,
        # before the contrast or after it. An outcome the police may not command is
        # another matter: 「钱没追回来，不过民警态度很好」 is basically satisfied.
        d.notes.append("only praise of manners after a complaint about the work → unsatisfied")
        d.cues.append(cues.COMPLAINT_BESIDE_PRAISE)
        return _UNSATISFIED
    if beside and not all(s.softened for s in beside) and (sarcastic or not _small(beside, praise)):
        d.notes.append("praise beside a complaint it cannot mean → unsatisfied")
        d.cues.append(cues.COMPLAINT_BESIDE_PRAISE)
        d.doubt(_UNCLEAR)
        return _UNSATISFIED
    weighed += conceded
    if (beside or weighed) and rating is _SATISFIED:
        how = "a small complaint beside it" if beside else "a complaint weighed before it"
        d.notes.append(f"satisfied with {how} → basically_satisfied")
        d.cues.append(cues.COMPLAINT_BESIDE_PRAISE)
        return _BASICALLY_SATISFIED
    return rating


def _beside(deciding: list[Signal], d: Decision) -> Rating:
    """Praise and complaint of one strength in one clause: unsatisfied (sarcasm, or a
    complaint that praise of manners cannot outweigh) unless every complaint is a small
    one (「民警尽力了，虽然钱没追回」「结果还行，过程太折腾」)."""
    complaints = [s for s in deciding if s.rating is _UNSATISFIED]
    praise = [s for s in deciding if s.rating is not _UNSATISFIED]
    softened = all(s.softened for s in complaints)
    sarcastic = any(s.overall and not s.courtesy for s in praise)
    small = not sarcastic and _small(complaints, praise)
    if small or (softened and not _denied(complaints, praise)):
        d.notes.append("only small complaints beside the praise → basically_satisfied")
        d.cues.append(cues.COMPLAINT_BESIDE_PRAISE)
        return _BASICALLY_SATISFIED
    return _UNSATISFIED


def _denied(complaints: list[Signal], praise: list[Signal]) -> bool:
    """A complaint about the very thing praised (及时 and 第二天才到)."""
    denied = {p.reason for p in praise if p.reason is not None and p.rating is not _UNSATISFIED}
    return any(c.reason in denied for c in complaints)


def _small(complaints: list[Signal], praise: list[Signal]) -> bool:
    """Complaints a satisfied citizen may add beside this praise: each said as a small
    one (有点, 了点), or of a small kind (出警慢, 跑多次) beside praise of the work or of
    the whole — not beside praise of manners only (「态度很好，但是出警太慢」)."""
    if _denied(complaints, praise):
        return False  # 「真及时，小偷早跑没影了」: praise and complaint of one thing
    of_the_work = any(not p.courtesy for p in praise if p.rating is not _UNSATISFIED)
    return all(c.softened or (c.mild and of_the_work) for c in complaints)


def _after_praise(
    deciding: list[Signal],
    placed: list[tuple[Signal, int]],
    boundaries: list[Boundary],
    top: int,
    d: Decision,
) -> Rating:
    """A contrast whose later clause only complains, after praise of the same strength:
    「办好了，就是跑了两趟」 is basically satisfied when the complaints are small ones."""
    complaints = [s for s in deciding if s.rating is _UNSATISFIED]
    praise = [
        s
        for s, seg in placed
        if seg < top
        and s.rating is not _UNSATISFIED
        and s.tier == deciding[0].tier
        and not any(b.later for b in boundaries[seg:top])
    ]
    if not praise or not _small(complaints, praise):
        return _UNSATISFIED
    d.notes.append("only a small complaint after the praise → basically_satisfied")
    d.cues.append(cues.COMPLAINT_BESIDE_PRAISE)
    return _BASICALLY_SATISFIED


def _after_complaint(
    placed: list[tuple[Signal, int]], boundaries: list[Boundary], top: int, notes: list[str]
) -> Rating:
    """Praise of one aspect after a contrasted complaint: 「出警有点慢，但是态度很好」 is
    basically_satisfied; after a later time (「上次没人管，这次很及时」) it stays satisfied."""
    complained = [seg for s, seg in placed if seg < top and s.rating is _UNSATISFIED]
    if not complained or any(b.later for b in boundaries[max(complained) : top]):
        return _SATISFIED
    notes.append("praise after a contrasted complaint → basically_satisfied")
    return _BASICALLY_SATISFIED


def _before_tail(
    rating: Rating, tail: Rating, *, later: bool, small: bool, notes: list[str]
) -> Rating:
    """The deciding segment's rating, given a weaker signal in a segment after it."""
    if later:
        if tail is not rating:
            notes.append(f"later in time: {tail} overrules {rating}")
        return tail
    # A contrast never lifts a rating: kind words after a complaint do not undo it. A
    # small complaint after it lowers satisfied one step (「满意，但是出警慢」); any other
    # outweighs the praise (「态度很好，但是出警太慢」「满意，但是到现在没人管」).
    if tail is not _UNSATISFIED or rating is _UNSATISFIED:
        return rating
    if not small:
        notes.append("a complaint after the contrast that is not a small one → unsatisfied")
        return _UNSATISFIED
    if rating is _SATISFIED:
        notes.append("satisfied, but a small complaint follows the contrast → basically")
        return _BASICALLY_SATISFIED
    return rating


def _combine(signals: list[Signal], d: Decision) -> Rating:
    """One rating for signals of equal strength: the less satisfied when they disagree."""
    ratings = sorted({s.rating for s in signals}, key=SATISFACTION.__getitem__)
    if len(ratings) > 1:
        mixed = " and ".join(r.value for r in reversed(ratings))
        d.notes.append(f"mixed {mixed} → the less satisfied, {ratings[0]}")
        d.cues.append(cues.MIXED)
        d.doubt(_UNCLEAR)
    return ratings[0]


def _only_politeness(signals: list[Signal]) -> bool:
    """Only kind words (谢谢, 好): no scheme digit or rating word, nothing negative."""
    return all(s.tier != TIER_RATING and s.rating is not _UNSATISFIED for s in signals)


def _no_verdict_beside_opt_out(found: Scan, asking: bool, signals: list[Signal]) -> bool:
    """Nothing but kind words beside a non-answer, a question or an opt-out. Beside an
    opt-out alone a middling word is a verdict too (「还行，退订谢谢」 rates and opts out),
    and so is an opinion word (「民警很好，短信就别发了」); thanks and news of the case
    (「身份证已经拿到了，不用再发了」) are not."""
    if found.non_answer_hints or asking:
        return _only_politeness(signals)
    return bool(found.opt_out) and all(
        s.rating is _SATISFIED and s.tier == TIER_PHRASE for s in signals
    )
