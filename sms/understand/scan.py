"""Finding what a normalised reply says, word by word, before any decision is made.

`scan` walks the rules' words left to right (longest first) and the digits of the
reply, and records each finding as a `Signal` (a rating with its strength) or as a
side fact (a reason tag, praise, opt-out, a non-answer, a clause boundary). Each
finding carries one explanation line. Deciding the overall rating from the signals is
`sms.understand`'s job.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Final, NamedTuple

from sms.understand.rules import Entry, Kind, Mod, Rating, Rules
from sms.understand.text import clause_starts, core_of

# Signal strength: the scheme's digits and its own words (满意) outrank opinion words
# and emoji (好, 差, 👍), which outrank phrases (辛苦了, 踢皮球).
TIER_RATING: Final = 0
TIER_OPINION: Final = 1
TIER_PHRASE: Final = 2
_TIERS: Final = {Kind.RATING: TIER_RATING, Kind.OPINION: TIER_OPINION, Kind.EMOJI: TIER_OPINION}

_DIGIT_RUN: Final = re.compile(r"[0-9]+")
# Separators that make a digit part of a bigger number: 3.5, 3:30, 2-3, 1/2.
_NUMBER_JOINERS: Final = frozenset(".:-/~")
_NEGATING: Final = frozenset((Mod.NEGATION, Mod.HEDGED, Mod.RHETORICAL))
# A negation, degree or filler chain longer than this is not one phrase any more.
_MAX_MODIFIERS: Final = 8
# An aspect noun governs a judgment at most this many characters after it (「处理得也」),
# so in an unpunctuated transcript 「态度也挺好就是…我不太满意」 the 不满意 is not about 态度.
_ASPECT_REACH: Final = 6


class Signal(NamedTuple):
    """One piece of evidence for a rating, where it was found and how strong it is."""

    pos: int
    tier: int
    rating: Rating
    overall: bool  # about the whole service, not one aspect of it (态度, 结果)
    digit: str | None = None


class Boundary(NamedTuple):
    """A point after which the later clause decides: a contrast or a later time."""

    pos: int
    later: bool  # time (之前…现在) rather than contrast (但是)
    word: str


class Scan:
    """Everything `scan` found in one reply."""

    # A plain slotted class rather than a dataclass with nine default factories: one is
    # made per reply, and for a bare 「3」 its construction is a visible share of the time.
    __slots__ = (
        "acknowledgement",
        "boundaries",
        "digit_hints",
        "digit_votes",
        "non_answer_hints",
        "norm",
        "notes",
        "opt_out",
        "praise_words",
        "reasons",
        "signals",
    )

    def __init__(self, norm: str) -> None:
        self.norm = norm
        self.signals: list[Signal] = []
        self.reasons: list[str] = []
        self.praise_words: list[str] = []
        self.opt_out: list[str] = []
        self.non_answer_hints: list[str] = []
        self.digit_hints: list[str] = []
        self.boundaries: list[Boundary] = []
        self.acknowledgement: str | None = None  # the agent's hint for a bare 「好的」
        self.notes: list[tuple[int, str]] = []  # (position, explanation)
        self.digit_votes = 0  # scheme digits among the signals


class _Mods(NamedTuple):
    start: int  # where the modifiers before the word begin
    kinds: tuple[Mod, ...]  # nearest to the word first

    @property
    def negations(self) -> int:
        return sum(k in _NEGATING for k in self.kinds) if self.kinds else 0

    @property
    def hedged(self) -> bool:
        return Mod.HEDGED in self.kinds

    @property
    def basic(self) -> bool:
        adjacent = bool(self.kinds) and self.kinds[0] is Mod.BASIC_ADJACENT
        return adjacent or Mod.BASIC in self.kinds


class _Aspect(NamedTuple):
    start: int
    end: int
    clause: int
    entry: Entry


def scan(norm: str, rules: Rules) -> Scan:
    """Find every signal and side fact in a normalised reply."""
    out = Scan(norm)
    core = core_of(norm)
    if core in rules.opt_out_whole:
        out.opt_out.append(core)
        out.notes.append((0, f"whole reply {core!r} → opt-out"))
        return out
    if core in rules.ack_whole:
        out.acknowledgement = rules.ack_hint
        out.notes.append((0, f"whole reply {core!r} is an acknowledgement"))
        return out
    _Reader(out, rules, core).read()
    return out


class _Reader:
    """One pass over one reply; keeps the clause layout and the aspects seen so far."""

    __slots__ = ("aspects", "core", "covered", "last_signal_end", "norm", "out", "rules", "starts")

    def __init__(self, out: Scan, rules: Rules, core: str) -> None:
        self.out = out
        self.rules = rules
        self.norm = out.norm
        self.core = core
        self.starts = clause_starts(self.norm)
        self.aspects: list[_Aspect] = []
        self.covered: list[tuple[int, int, Entry]] = []
        self.last_signal_end = 0

    def read(self) -> None:
        self.covered = self.rules.matcher.find(self.norm)
        for start, end, entry in self.covered:
            _HANDLERS[entry.kind](self, entry, start, end)
        if _DIGIT_RUN.search(self.norm):
            self.digits()
            # Digit notes came last; put every note back in text order (stable).
            self.out.notes.sort(key=_position)

    # -- helpers -----------------------------------------------------------------------

    def clause(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def note(self, pos: int, text: str) -> None:
        self.out.notes.append((pos, text))

    def signal(self, pos: int, end: int, tier: int, rating: Rating, overall: bool) -> None:
        self.out.signals.append(Signal(pos, tier, rating, overall))
        self.last_signal_end = end

    def modifiers(self, pos: int) -> _Mods:
        """The negation, degree and filler words right before `pos`, read backwards,
        longest first, within the clause."""
        if pos == 0 or self.norm[pos - 1] not in self.rules.modifier_last_chars:
            return _Mods(pos, ())  # the common case, decided without a regex
        n = len(self.norm)
        lo = self.starts[self.clause(pos)]
        at, stop = n - pos, n - lo  # the same span in the reversed text
        match = self.rules.modifiers_reversed.match
        backwards = self.norm[::-1]
        table, kinds = self.rules.modifiers, list[Mod]()
        while at < stop and len(kinds) < _MAX_MODIFIERS:
            m = match(backwards, at, stop)
            if m is None:
                break
            kinds.append(table[m.group()[::-1]])
            at = m.end()
        return _Mods(n - at, tuple(kinds))

    def ending(self, end: int) -> tuple[str | None, bool]:
        """The sarcasm word right after a word (满意个屁), and whether a question follows."""
        norm = self.norm
        if end >= len(norm) or norm[end] not in self.rules.ending_first_chars:
            return None, False  # the common case, decided without a regex
        m = self.rules.ending.match(norm, end)
        if m is None:
            return None, False
        return m.group("sarcasm"), m.group("question") is not None

    def aspects_before(self, before: int) -> list[_Aspect]:
        """The aspects that govern a judgment starting at `before`, nearest first: in the
        same clause, close by, with no other judgment in between."""
        if not self.aspects:
            return []
        clause = self.clause(before)
        return [
            a
            for a in reversed(self.aspects)
            if a.clause == clause
            and self.last_signal_end <= a.end <= before
            and before - a.end <= _ASPECT_REACH
        ]

    # -- handlers, one per kind of word --------------------------------------------------

    def judgment(self, entry: Entry, start: int, end: int) -> None:
        assert entry.rating is not None
        mods = self.modifiers(start)
        sarcasm, question = self.ending(end)
        span = self.norm[mods.start : end]
        if question and sarcasm is None and Mod.RHETORICAL_IF_QUESTION not in mods.kinds:
            # 「满意？开什么玩笑」「满意吗？不满意！」: the survey's question echoed back.
            if not mods.negations:
                self.note(start, f"{span!r} echoes the question: ignored")
                return
        rating, how = _judge(entry, mods, sarcasm, question)
        self.note(start, f"{span!r} → {rating} ({entry.kind} word{how})")
        aspects = self.aspects_before(mods.start)
        self.signal(start, end, _TIERS[entry.kind], rating, not aspects)
        if rating is Rating.UNSATISFIED:
            self.aspect_reason(aspects, start, end)
        elif rating is Rating.SATISFIED and entry.kind is Kind.OPINION:
            praised = next((a for a in aspects if a.entry.praise), None)
            if praised is not None:
                about = self.norm[praised.start : end]
                self.out.praise_words.append(about)
                self.note(start, f"{about!r} → praise")

    def aspect_reason(self, aspects: list[_Aspect], start: int, end: int) -> None:
        """「结果不满意」「态度很差」: the nearest aspect with a reason gives the reason."""
        aspect = next((a for a in aspects if a.entry.reason), None)
        if aspect is not None and aspect.entry.reason is not None:
            self.out.reasons.append(aspect.entry.reason)
            about = self.norm[aspect.start : end]
            self.note(start, f"{about!r} → reason {aspect.entry.reason}")

    def emoji(self, entry: Entry, start: int, end: int) -> None:
        assert entry.rating is not None
        self.note(start, f"{self.norm[start:end]!r} → {entry.rating} (emoji)")
        self.signal(start, end, TIER_OPINION, entry.rating, True)

    def complaint(self, entry: Entry, start: int, end: int) -> None:
        mods = self.modifiers(start)
        span = self.norm[mods.start : end]
        # 「这不是推诿吗」 asks a question that affirms the complaint.
        if mods.negations % 2 and not self.ending(end)[1]:
            self.note(start, f"{span!r} → satisfied (negated complaint)")
            self.signal(start, end, TIER_PHRASE, Rating.SATISFIED, False)
            return
        assert entry.reason is not None
        self.out.reasons.append(entry.reason)
        self.note(start, f"{span!r} → unsatisfied (complaint: {entry.reason})")
        self.signal(start, end, TIER_PHRASE, Rating.UNSATISFIED, False)

    def praise(self, entry: Entry, start: int, end: int) -> None:
        mods = self.modifiers(start)
        word = self.norm[start:end]
        what = str(entry.kind)
        if mods.negations % 2:
            span = self.norm[mods.start : end]
            reason = f": {entry.reason}" if entry.reason else ""
            self.note(start, f"{span!r} → unsatisfied (negated {what}{reason})")
            if entry.reason:
                self.out.reasons.append(entry.reason)
            self.signal(start, end, TIER_PHRASE, Rating.UNSATISFIED, False)
            return
        if entry.kind is Kind.PRAISE:
            self.out.praise_words.append(word)
        self.note(start, f"{word!r} → satisfied ({what})")
        self.signal(start, end, TIER_PHRASE, Rating.SATISFIED, False)

    def aspect(self, entry: Entry, start: int, end: int) -> None:
        self.aspects.append(_Aspect(start, end, self.clause(start), entry))

    def opt_out(self, entry: Entry, start: int, end: int) -> None:
        word = self.norm[start:end]
        self.out.opt_out.append(word)
        self.note(start, f"{word!r} → opt-out")

    def non_answer(self, entry: Entry, start: int, end: int) -> None:
        assert entry.hint is not None
        self.out.non_answer_hints.append(entry.hint)
        self.note(start, f"{self.norm[start:end]!r} → non-answer ({entry.hint})")

    def marker(self, entry: Entry, start: int, end: int) -> None:
        word = self.norm[start:end]
        if entry.kind is Kind.CONTRAST_START and start != self.starts[self.clause(start)]:
            return  # 「就是不满意」: emphasis, not 「…，就是慢了点」
        if entry.kind in (Kind.EARLIER, Kind.CONCESSIVE):
            # 「之前不满意，…」: what follows this clause overrules it.
            clause = self.clause(start)
            if clause + 1 >= len(self.starts):
                return
            start = self.starts[clause + 1]
        later = entry.kind in (Kind.LATER, Kind.EARLIER)
        self.out.boundaries.append(Boundary(start, later, word))

    # -- digits ------------------------------------------------------------------------

    def digits(self) -> None:
        """Scheme digits: 「3」「回复1」「【3】」「我选2」, not 3次, 2个小时, 110 or a phone."""
        rules = self.rules
        for m in _DIGIT_RUN.finditer(self.norm):
            start, end = m.span()
            run = m.group()
            if any(s <= start < e for s, e, _ in self.covered):
                continue  # part of a word such as 100分 or 12345
            if len(run) >= rules.phone_min_length:
                self.out.digit_hints.append("looks like a phone number, not a rating")
                self.note(start, f"{run[:3]}… looks like a phone number")
                continue
            # 「333」 alone is an emphatic 3; any other multi-digit number is a quantity.
            emphatic = len(run) <= 3 and run == run[0] * len(run) and self.core == run
            if (len(run) > 1 and not emphatic) or self.is_quantity(start, end):
                continue
            digit = run[0]
            rating = rules.scheme.get(digit)
            if rating is None:
                scheme = ", ".join(f"{d}={r}" for d, r in rules.scheme.items())
                self.out.digit_hints.append(f"digit {digit} is not in the reply scheme ({scheme})")
                self.note(start, f"digit {digit} is outside the reply scheme")
                continue
            self.note(start, f"digit {digit} → {rating} (scheme)")
            self.out.signals.append(Signal(start, TIER_RATING, rating, True, digit))
            self.out.digit_votes += 1

    def is_quantity(self, start: int, end: int) -> bool:
        norm = self.norm
        if norm.startswith(self.rules.units_after, end):
            return True
        if norm.endswith(self.rules.units_before, 0, start):
            return True
        joined_after = end + 1 < len(norm) and norm[end] in _NUMBER_JOINERS
        if joined_after and norm[end + 1].isdigit():
            return True
        return start >= 2 and norm[start - 1] in _NUMBER_JOINERS and norm[start - 2].isdigit()


def _position(note: tuple[int, str]) -> int:
    return note[0]


def _judge(entry: Entry, mods: _Mods, sarcasm: str | None, question: bool) -> tuple[Rating, str]:
    """A rating or opinion word's rating after its modifiers, and how that came about."""
    assert entry.rating is not None
    if not mods.kinds and sarcasm is None and not question:
        return entry.rating, ""
    if sarcasm is not None:
        return Rating.UNSATISFIED, f", sarcasm {sarcasm!r}"
    negations = mods.negations
    if question and Mod.RHETORICAL_IF_QUESTION in mods.kinds:
        negations += 1  # 「能满意吗」 means it cannot
    rating, how = entry.rating, ""
    if negations % 2:
        how = ", negated"
        if entry.rating is not Rating.UNSATISFIED:
            rating = Rating.UNSATISFIED
        elif entry.negated is not None:
            rating = entry.negated
        else:
            rating = Rating.BASICALLY_SATISFIED if mods.hedged else Rating.SATISFIED
    elif negations:
        how = ", double negation"
        if mods.hedged and entry.rating is not Rating.UNSATISFIED:
            rating = Rating.BASICALLY_SATISFIED  # 「不是不好」 is a hedge
    if rating is Rating.SATISFIED and mods.basic:
        rating, how = Rating.BASICALLY_SATISFIED, how + ", degree"
    return rating, how


def _neutral(reader: _Reader, entry: Entry, start: int, end: int) -> None:
    """Neutral words (满意度, 你好) only hide what they contain."""


# One handler per kind of word; a table rather than a chain of ifs keeps `read` flat.
_HANDLERS: Final[dict[Kind, Callable[[_Reader, Entry, int, int], None]]] = {
    Kind.RATING: _Reader.judgment,
    Kind.OPINION: _Reader.judgment,
    Kind.EMOJI: _Reader.emoji,
    Kind.COMPLAINT: _Reader.complaint,
    Kind.PRAISE: _Reader.praise,
    Kind.POSITIVE: _Reader.praise,
    Kind.ASPECT: _Reader.aspect,
    Kind.OPT_OUT: _Reader.opt_out,
    Kind.NON_ANSWER: _Reader.non_answer,
    Kind.CONTRAST: _Reader.marker,
    Kind.CONTRAST_START: _Reader.marker,
    Kind.LATER: _Reader.marker,
    Kind.EARLIER: _Reader.marker,
    Kind.CONCESSIVE: _Reader.marker,
    Kind.NEUTRAL: _neutral,
}
