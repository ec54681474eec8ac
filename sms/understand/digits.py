"""Scheme digits in a reply: 「3」「回复1」「【3】」「我选2」, and the digits that are not votes.

A digit is a vote only when it stands alone: not a quantity (3次, 2个小时), not part of
a bigger number (3.5, 110, a phone number), not inside a word (3q, 100分) and not
buried among letters or other digits (「asd3kdj」「8394720156」). When a reply gives
several, or disowns one, `without_conflicting` and `without_disowned` say which digit
answers, for `sms.understand.decide`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from sms.understand import cues
from sms.understand.findings import TIER_RATING, Boundary, Scan, Signal
from sms.understand.rules import HAN, SATISFACTION, Confidence, Entry, Kind, Rules

if TYPE_CHECKING:  # decide imports this module
    from sms.understand.decide import Decision

_LIKELY: Final = Confidence.LIKELY
_UNCLEAR: Final = Confidence.UNCLEAR

_DIGIT_RUN: Final = re.compile(r"[0-9]+")
# Separators that make a digit part of a bigger number: 3.5, 3:30, 2-3, 1/2.
_NUMBER_JOINERS: Final = frozenset(".:-/~")
# 「3333」「111111」: one digit said again and again, not a number.
_EMPHATIC_MAX: Final = 6
# 「满分是100我给-1」: a digit after a minus is a negative number (after a digit: 2-3).
_MINUS: Final = frozenset("-负")
# How far before a digit the words that disown it are looked for (「上一条回复的“3”」).
_TAKEN_BACK_REACH: Final = 12
# 「1还是2还是3 不知道」: a third choice named, not one made.
_ANOTHER_CHOICE: Final = ("还是", "或", " 还是", " 或")
# A letter or a Chinese character: something said between two digits.
_WORD: Final = re.compile(f"[a-z{HAN}]")


def read_digits(
    out: Scan,
    rules: Rules,
    core: str,
    covered: list[tuple[int, int, Entry]],
    explained: list[tuple[int, int]],
) -> None:
    """Add a signal for every scheme digit of `out.norm`, and hints for the others; the
    words that disown a digit go to `explained` (for the safety net)."""
    norm = out.norm
    for m in _DIGIT_RUN.finditer(norm):
        start, end = m.span()
        run = m.group()
        if any(s <= start < e for s, e, _ in covered):
            continue  # part of a word such as 100分 or 12345
        if len(run) >= rules.phone_min_length:
            out.digit_hints.append("looks like a phone number, not a rating")
            out.notes.append((start, f"{run[:3]}… looks like a phone number"))
            out.cue(cues.NOT_A_RATING)
            continue
        # 「333」 is an emphatic 3 (「11 手抖」 a doubled 1); any other multi-digit number
        # is a quantity.
        emphatic = len(run) <= _EMPHATIC_MAX and run == run[0] * len(run)
        if (len(run) > 1 and not emphatic) or _is_quantity(norm, start, end, rules):
            continue
        if start and norm[start - 1] in _MINUS:
            out.notes.append((start, f"-{run}: a negative number, not a rating"))
            out.cue(cues.NOT_A_RATING)
            continue
        if _among_letters(norm, start, end, covered):
            out.notes.append((start, f"digit {run[0]} inside letters: not a rating"))
            out.cue(cues.NOT_A_RATING)
            continue
        digit = run[0]
        rating = rules.scheme.get(digit)
        if rating is None:
            scheme = ", ".join(f"{d}={r}" for d, r in rules.scheme.items())
            out.digit_hints.append(f"digit {digit} is not in the reply scheme ({scheme})")
            out.notes.append((start, f"digit {digit} is outside the reply scheme"))
            continue
        out.notes.append((start, f"digit {digit} → {rating} (scheme)"))
        out.signals.append(Signal(start, TIER_RATING, rating, True, digit))
        out.cue(cues.DIGIT)
        out.digit_votes += 1
    out.signals.sort(key=_position)
    if out.digit_votes > 1:
        out.digit_change = _changed(out, rules)
        if out.digit_change is None:
            out.digit_afterthought = _afterthought(out, rules)
    if out.digit_votes:
        out.digits_taken_back = _taken_back(out, rules, explained)


def _changed(out: Scan, rules: Rules) -> tuple[int, str] | None:
    """The last scheme digit's position and the word before it that replaces an earlier,
    different digit (「1改3」「2→1」「1吧 算了2」), or None."""
    votes = [s for s in out.signals if s.digit is not None]
    last = votes[-1]
    before = next((s for s in reversed(votes) if s.digit != last.digit), None)
    if before is None:
        return None
    m = rules.digit_change.search(out.norm, before.pos + 1, last.pos)
    return None if m is None else (last.pos, m.group())


def _afterthought(out: Scan, rules: Rules) -> int | None:
    """The last scheme digit's position when it is the least satisfied one given and
    words come between it and the earlier, different digit (「先给个2，后来越想越气，3」
    「1，毕竟我也不敢选3」「oops 1 I mean 3」), or None: 「1 3」 and 「1和2之间」 name two
    choices. Only a less satisfied digit is taken this way; a more satisfied one needs
    words that change the answer (`_changed`), as unsure is never read as satisfied."""
    votes = [s for s in out.signals if s.digit is not None]
    last = votes[-1]
    if any(SATISFACTION[s.rating] < SATISFACTION[last.rating] for s in votes):
        return None
    before = next((s for s in reversed(votes) if s.digit != last.digit), None)
    if before is None:
        return None  # one digit said again (「3 3」)
    if not _WORD.search(out.norm, before.pos + 1, last.pos):
        return None
    if rules.digit_alternatives.search(out.norm, before.pos + 1, last.pos):
        return None
    return last.pos


def _taken_back(
    out: Scan, rules: Rules, explained: list[tuple[int, int]]
) -> tuple[tuple[int, ...], str] | None:
    """The scheme digits the reply disowns (「刚才那个3不算」「上条回的3是给保险公司的」
    「本来想给3」) and the words that disowned the first, or None; those words were read."""
    norm = out.norm
    gone: list[int] = []
    word = ""
    alone = out.digit_votes == 1  # 「刚才回的是2」 says what it was: only 「3别算」 disowns it
    for s in out.signals:
        if s.digit is None:
            continue
        after = rules.taken_back_after.match(norm, s.pos + 1)
        before = None if alone else _taken_back_before(norm, rules, s.pos)
        m = after if before is None else before  # as `taken_back` reads them
        if m is not None:
            gone.append(s.pos)
            word = word or m.group()
            end = s.pos + 1 if after is None else after.end()  # 「刚才那个3别算」: both
            explained.append((min(m.start(), s.pos), max(m.end(), end)))
    return (tuple(gone), word) if gone else None


def taken_back(norm: str, rules: Rules, start: int, end: int) -> re.Match[str] | None:
    """The words that disown the answer at norm[start:end] — a digit or an opt-out word
    (「刚才那个3」「3不算」「上条回的TD是手滑」) — right before or right after it, or None."""
    m = _taken_back_before(norm, rules, start)
    return m if m is not None else rules.taken_back_after.match(norm, end)


def _taken_back_before(norm: str, rules: Rules, start: int) -> re.Match[str] | None:
    """The words right before norm[start] that disown what stands there (「刚才那个」)."""
    return rules.taken_back_before.search(norm, max(0, start - _TAKEN_BACK_REACH), start)


# A rating word is taken back only when named as an answer given: 「刚才回的满意」 but
# not 「之前满意，现在…」, 「本来想打满意的」 (the answer meant) or 「挡在我前面 满意」.
_KIND_RATING: Final = Kind.RATING
_NAMED_ANSWER: Final = re.compile("那个|那条|回的|回复|发的|说的|打的|按的|点的|选的|给的|成|是")


def word_taken_back(
    norm: str, rules: Rules, start: int, word: int, end: int, entry: Entry
) -> tuple[int, int] | None:
    """The span of a rating word (its modifiers from `start`, the word from `word`) and of
    the words that disown it as an answer given (「刚才那个不满意是我发错了」), or None."""
    if entry.kind is not _KIND_RATING:
        return None
    m = taken_back(norm, rules, start, end)
    if m is None or not _NAMED_ANSWER.search(norm, m.start(), max(word, m.end())):
        return None
    return min(m.start(), start), max(m.end(), end)


def _position(signal: Signal) -> int:
    return signal.pos


def _is_quantity(norm: str, start: int, end: int, rules: Rules) -> bool:
    if norm.startswith(rules.units_after, end):
        return True
    if norm.endswith(rules.units_before, 0, start):
        return True
    joined_after = end + 1 < len(norm) and norm[end] in _NUMBER_JOINERS
    if joined_after and norm[end + 1].isdigit():
        return True
    return start >= 2 and norm[start - 1] in _NUMBER_JOINERS and norm[start - 2].isdigit()


def _among_letters(norm: str, start: int, end: int, covered: list[tuple[int, int, Entry]]) -> bool:
    """「x2y」「asd3」: a digit touching a Latin letter is part of a code, not a vote;
    a known word next to it (「3TD」) is not such a letter."""
    for pos in (start - 1, end):
        if 0 <= pos < len(norm) and "a" <= norm[pos] <= "z":
            if not any(s <= pos < e for s, e, _ in covered):
                return True
    return False


# A digit, then one disowned right after it (「是3不是2」「系1唔系3」「3！！不是2」), not a
# 不是 that is a cry of "no" (「3 啊不是 2」).
_IS_NOT: Final = re.compile(r"[0-9][\s，,!.~]*(?:不是|唔系|并非|而非)\s?[0-9]")


def without_disowned(found: Scan, signals: list[Signal], d: Decision) -> list[Signal]:
    """The reply's one digit disowned (「满意满意，刚才那个3别算」「1作废」): it is no answer, and
    the words are, if there are any. (Of several, one left: `without_conflicting`.)"""
    assert found.digits_taken_back is not None
    gone, word = found.digits_taken_back
    if found.questioning or any(s.pos not in gone for s in signals if s.digit is not None):
        return signals
    words = [s for s in signals if s.digit is None]
    d.notes.append(f"{word!r} disowns the digit" + (": the words are the answer" if words else ""))
    d.cues.append(cues.SELF_CORRECTION)
    d.doubt(_LIKELY)
    d.no_answer = not words  # 「3作废」 gives none: asked again, not guessed at
    return words


def without_conflicting(found: Scan, signals: list[Signal], d: Decision) -> list[Signal]:
    """Drop scheme digits when a reply gives two different ones (「1 3」): no one knows,
    unless words disown, change or come after them (for `sms.understand.decide`)."""
    digits = sorted({s.digit for s in signals if s.digit is not None})
    if len(digits) < 2:
        return signals
    # 「1，刚才那个3不算」「本来想给3，算了，2」: the digits the reply disowns are not
    # answers; what is left decides if it is one digit
    if found.digits_taken_back is not None and not found.questioning:
        gone, word = found.digits_taken_back
        kept = [s for s in signals if s.pos not in gone]
        left = {s.digit for s in kept if s.digit is not None}
        if not left:  # 「不给1，也不给2」: none of them is the answer
            d.notes.append(f"{word!r} disowns every digit: none is the answer")
            d.cues.append(cues.SELF_CORRECTION)
            d.doubt(_UNCLEAR)
            d.no_answer = not kept
            return kept
        if len(left) == 1:
            d.notes.append(f"{word!r} disowns a digit: the other digit is the answer")
            d.cues.append(cues.SELF_CORRECTION)
            if not _IS_NOT.search(found.norm):  # 「是3不是2」 says which, plainly
                d.doubt(_LIKELY)
            return kept
    # 「1改3」「2→1」: a change of mind, unless the reply still asks (「1还是2呢？」)
    if found.digit_change is not None and not found.questioning:
        last, word = found.digit_change
        d.notes.append(f"{word!r} between digits: the last digit is the answer")
        d.cues.append(cues.SELF_CORRECTION)
        d.doubt(_LIKELY)
        return [s for s in signals if s.digit is None or s.pos >= last]
    # 「先给个2，后来越想越气，3」: words after a digit, then a less satisfied one. The
    # later digit is read, unsure: an unsatisfied reading is called back anyway.
    if found.digit_afterthought is not None and not found.questioning and not found.undecided:
        last = found.digit_afterthought
        d.notes.append("a less satisfied digit after more words: the last digit, unsure")
        d.cues.append(cues.SELF_CORRECTION)
        d.doubt(_UNCLEAR)
        return [s for s in signals if s.digit is None or s.pos >= last]
    d.notes.append(f"different digits {', '.join(digits)} → digits ignored")
    d.cues.append(cues.SEVERAL_DIGITS)
    d.doubt(_UNCLEAR)
    words = [s for s in signals if s.digit is None]
    d.no_answer = not words  # 「1 3」: which one is for the citizen to say, not a guess
    return words


def undecided(out: Scan, norm: str, m: re.Match[str]) -> None:
    """「1还是2呢」 (`m`, the rules' `undecided`) asks which; a digit or rating word after
    it makes the choice (「1还是2好纠结 就1吧」「2还是3呢。。。3吧」): from there on, it decides."""
    end = m.end()
    chosen = any(s.pos >= end and s.tier == TIER_RATING for s in out.signals)
    if not chosen or norm.startswith(_ANOTHER_CHOICE, end):  # 「1还是2还是3」
        out.undecided = f"{m.group(1)} and {m.group(2)}"
        out.notes.append((m.start(), f"{m.group()!r} asks which: no choice made"))
        out.cues.append(cues.UNDECIDED)
        return
    out.boundaries.append(Boundary(end, True, m.group(), cues.SELF_CORRECTION))
    out.boundaries.sort()
