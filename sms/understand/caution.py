"""The safety net: what a positive reading leaves unexplained, and what that does to it.

The rules cannot know every way a citizen complains, and an unsatisfied citizen read as
satisfied is the one error that closes a survey nobody calls back. So a satisfied or
basically satisfied reading is trusted only when the reader explained the reply around
it. After the words are read, `find` looks at what was NOT explained — outside every
word, modifier and ending the reader understood, outside the clauses it read as a
complaint, as about another party, as the past or as conceded — for:

- a `complaint` or `sneer` word of the rules' [caution] section (到现在, 自己, 呵呵,
  说了算): something went wrong, or the praise is a sneer;
- a `doubt` word or pattern: a negator, a question, a condition (不, 没, 吗, 如果), or a
  length of time the reader did not read as fast or slow (「二十分钟的路开了两个小时」,
  「两个小时就到了」): praise and a sneer differ only in what it says.

A story's opening, before the police come into it (报警, 110, 民警 — not 窗口: in a story
of a window service the story is the service), tells what happened to the citizen:
doubts and unread clauses there are not held against the reading; complaint words are.
A reply read as nothing at all that holds a complaint word (「认定书还没出来」) is found
too. `settle` then makes the decision: a complaint or sneer makes the reading
unsatisfied; a doubt makes it unknown, so the citizen is asked again (the clarifying
SMS). Both are `unclear`, with the cue `unexplained` and the word in the explanation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from sms.understand import cues
from sms.understand.findings import TIER_RATING, Scan
from sms.understand.rules import HAN, Caution, Confidence, Entry, Kind, Rating, Rules

# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs), and these are read for every reply or word.
_UNCLEAR: Final = Confidence.UNCLEAR
_UNKNOWN: Final = Rating.UNKNOWN

if TYPE_CHECKING:
    from sms.understand.decide import Decision

COMPLAINT: Final = "complaint"
SNEER: Final = "sneer"
DOUBT: Final = "doubt"
UNREAD: Final = "unread"
NARRATION: Final = "narration"
# The [caution] regex's group for the words that bring the police into a story.
_POLICE: Final = "police"
_INNOCENT: Final = "innocent"
# What the unread check counts as read besides the explained spans.
_READ: Final = frozenset((_INNOCENT, NARRATION, _POLICE))
# An unread clause is quoted in the explanation by up to this many of its characters.
_QUOTE: Final = 16
# 「小偷都替我谢谢你们」: "even" (都, 也, 替) a few characters after the culprit word.
_EVEN: Final = frozenset("都也替")
_EVEN_GAP: Final = 4
_UNSATISFIED: Final = Rating.UNSATISFIED
_NEUTRAL: Final = Kind.NEUTRAL
# Characters in no [caution] list and never a letter: spaces and the punctuation
# `text.normalize` leaves (not "?": a question is a doubt).
_SILENT: Final = frozenset(" \t\n,.!;:~-…、\"'()[]")
# A Chinese character or a digit: what may be a garbled 不 glued to a rating word.
_GARBLE: Final = re.compile(f"[{HAN}0-9]")


def find(
    out: Scan,
    rules: Rules,
    covered: Sequence[tuple[int, int, Entry]],
    explained: list[tuple[int, int]],
    parties: Sequence[tuple[int, int, str]],
    starts: Sequence[int],
) -> None:
    """Record in `out.doubts` what the reading leaves unexplained (module docstring).

    `covered`: the words found; `explained`: the other spans the reader read;
    `parties`: (position, clause, party) of the party words; `starts`: clause starts.
    """
    caution = rules.caution
    if caution is None:
        return
    if out.signals:
        for s in out.signals:  # a loop, not all(…): no generator made per reply
            if s.rating is not _UNSATISFIED:
                break
        else:
            return
        wanted: tuple[str, ...] = (COMPLAINT, SNEER, DOUBT)
    elif out.opt_out or out.non_answer_hints or out.undecided:
        return
    else:
        wanted = (COMPLAINT,)
    norm = out.norm
    if out.signals and parties:
        _culprit_voiced(out, covered, parties, starts)
    read = _explained(norm, covered, explained, parties, starts)
    if _all_read(norm, read, out):
        return  # nothing left to doubt: no hit can be unexplained, no clause unread
    hits = [(m.start(), m.end(), m.group(), str(m.lastgroup)) for m in caution.finditer(norm)]
    came_in = [_clause_of(start, starts) for start, _, _, kind in hits if kind == _POLICE]
    story = starts[min(came_in)] if came_in else 0
    for start, end, word, kind in hits:
        if kind not in wanted or (kind == DOUBT and start < story):
            continue
        if not all(read[start:end]):  # 「比你们」 is not explained by 你们 alone
            out.doubts.append((start, word, kind))
    _glued(out, read, rules)
    if out.signals and caution.unread_chars and not out.doubts:
        for start, end, _, kind in hits:
            if kind in _READ:
                read[start:end] = b"\x01" * (end - start)
        _unread(out, caution, read, starts, story)


def _culprit_voiced(
    out: Scan,
    covered: Sequence[tuple[int, int, Entry]],
    parties: Sequence[tuple[int, int, str]],
    starts: Sequence[int],
) -> None:
    """Thanks voiced by the culprit is a sneer: 「小偷都替我谢谢你们」「骗子也得感谢你们」 —
    "even the thief thanks you". A clause that opens with a culprit word (骗子, 小偷)
    followed within a few characters by 都/也/替 and then thanks or praise; not 「小偷抓住了，
    谢谢」 nor 「谢谢你们抓到骗子」."""
    norm = out.norm
    for start, clause, party in parties:
        if party != "culprit" or start != starts[clause]:
            continue
        end = next(b for a, b, _ in covered if a == start)
        for s in out.signals:
            gap = norm[end : s.pos]
            if s.courtesy and 0 < len(gap) <= _EVEN_GAP and not _EVEN.isdisjoint(gap):
                out.doubts.append((start, norm[start:end], SNEER))
                return


def _explained(
    norm: str,
    covered: Sequence[tuple[int, int, Entry]],
    explained: list[tuple[int, int]],
    parties: Sequence[tuple[int, int, str]],
    starts: Sequence[int],
) -> bytearray:
    """One byte per character of `norm`: 1 where the reader explained it."""
    read = bytearray(len(norm))
    for start, end, entry in covered:
        if entry.kind is not _NEUTRAL:
            read[start:end] = b"\x01" * (end - start)
    for start, end in explained:
        read[start:end] = b"\x01" * (end - start)
    police = {c for _, c, party in parties if party == "police"} if parties else set()
    for _, clause, party in parties:
        # A clause about another party (「吵架的那家人很烦」), not the police, is read. Not
        # one about a culprit: that one is still at large is the police's business.
        if party == "other" and clause not in police:
            start, end = _clause_span(clause, starts, len(norm))
            read[start:end] = b"\x01" * (end - start)
    return read


def _all_read(norm: str, read: bytearray, out: Scan) -> bool:
    """Whether every character is explained, a scheme digit read as a vote, or
    punctuation that is in no [caution] list: then the net has nothing to find (a hit
    needs an unexplained character, an unread clause a letter) and its regex is skipped
    — the common short reply (「1」「很满意，民警态度很好」) costs nothing more."""
    at = read.find(0)
    if at < 0:
        return True
    votes = {s.pos for s in out.signals if s.digit is not None}
    while at >= 0:
        if norm[at] not in _SILENT and at not in votes:
            return False
        at = read.find(0, at + 1)
    return True


def settle(found: Scan, d: Decision) -> None:
    """Make the decision what the safety net says (module docstring)."""
    if d.rating is _UNSATISFIED:
        return
    if d.rating is _UNKNOWN and (d.correction or d.hint is not None):
        return  # a correction with no answer, a choice not made: asked again anyway
    complaints = [hit for hit in found.doubts if hit[2] in (COMPLAINT, SNEER)]
    if d.rating is _UNKNOWN and not complaints:
        return
    _, word, kind = (complaints or found.doubts)[0]
    was = d.rating
    d.cues.append(cues.UNEXPLAINED)
    d.confidence = _UNCLEAR
    what = f"unread {word!r}" if kind == UNREAD else repr(word)
    if complaints:
        d.rating = _UNSATISFIED
        d.hint = None
        if was is _UNKNOWN:
            d.notes.append(f"{what} says something went wrong → unsatisfied (safety net)")
        else:
            d.notes.append(f"{what} is not explained beside {was} → unsatisfied (safety net)")
        return
    d.rating = _UNKNOWN
    d.hint = f"unclear: {what} beside {was} was not understood: ask for 1, 2 or 3"
    d.notes.append(f"{what} is not explained beside {was} → unknown (safety net)")


def _unread(
    out: Scan, caution: Caution, read: bytearray, starts: Sequence[int], story: int
) -> None:
    """A reservation the reader could not read (a contrast after praise, 「…，就是流程太X
    了」, followed by no signal but by a character it did not read), else the first clause
    after the story's opening holding `caution.unread_chars` or more characters that are
    neither read (`read`: explained, innocent or narration), nor fillers."""
    norm = out.norm
    fillers = caution.fillers

    def left(lo: int, hi: int) -> str:
        return "".join(
            ch for at, ch in enumerate(norm[lo:hi], lo) if not read[at] and ch.isalpha()
            and ch not in fillers
        )  # fmt: skip

    praised = min((s.pos for s in out.signals if s.rating is not _UNSATISFIED), default=-1)
    cuts = [b.pos for b in out.boundaries] + [len(norm)]
    for i, b in enumerate(out.boundaries):
        if b.kind != cues.CONTRAST or b.pos < praised or praised < 0:
            continue
        if any(b.pos <= s.pos < cuts[i + 1] for s in out.signals):
            continue
        unread = left(b.pos, cuts[i + 1])
        if unread:
            out.doubts.append((b.pos, f"{b.word}…{unread}"[:_QUOTE], UNREAD))
            return
    for clause, lo in enumerate(starts):
        if lo < story:
            continue
        hi = starts[clause + 1] if clause + 1 < len(starts) else len(norm)
        unread = left(lo, hi)
        if len(unread) >= caution.unread_chars:
            out.doubts.append((lo, unread[:_QUOTE], UNREAD))
            return


def _glued(out: Scan, read: bytearray, rules: Rules) -> None:
    """A reply of one character the reader did not read and a positive rating word
    (「丕满意」「北满意」「扑满意」): a garbled 不 as likely as a garbled nothing, so a
    doubt, and the citizen is asked again — unless it sounds like a degree word (「狠满意」
    「停满意的」 are 很满意, 挺满意的: [homophones] degree_alike)."""
    if len(out.signals) != 1 or out.doubts:
        return
    s = out.signals[0]
    if s.pos != 1 or s.tier != TIER_RATING or s.digit is not None or s.rating is _UNSATISFIED:
        return
    first = out.norm[0]
    if rules.homophones is not None and first in rules.homophones.degree_alike:
        return
    # 「一 满意」 in a transcript: a numeral of the scheme before the word is a vote
    if read[0] or rules.numeral_digits.get(first) in rules.scheme:
        return
    if _GARBLE.match(first):
        out.doubts.append((0, first, UNREAD))
        out.garbled = True


def _clause_of(pos: int, starts: Sequence[int]) -> int:
    return max(i for i, s in enumerate(starts) if s <= pos)


def _clause_span(clause: int, starts: Sequence[int], end: int) -> tuple[int, int]:
    return starts[clause], starts[clause + 1] if clause + 1 < len(starts) else end
