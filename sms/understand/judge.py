"""What the words around a rating word do to it: negation, hedges, degree, rhetoric.

A rating or opinion word (满意, 好, 差) is read with the modifiers right before it
(`Mods`: 不, 不是, 基本, 哪有, 不能) and what follows it (`Ending`: 个屁, 是不可能的,
谈不上, 吗). `judge` turns the word and both into a rating and says how, in words an
explanation can show. Pure functions; `sms.understand.scan` finds the pieces.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sms.understand import cues
from sms.understand.rules import Entry, Mod, Rating

# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs), and these are read for every reply or word.
_BASICALLY_SATISFIED: Final = Rating.BASICALLY_SATISFIED
_MOD_BASIC: Final = Mod.BASIC
_MOD_BASIC_ADJACENT: Final = Mod.BASIC_ADJACENT
_MOD_CANNOT: Final = Mod.CANNOT
_MOD_EMPHATIC: Final = Mod.EMPHATIC
_MOD_NEGATION: Final = Mod.NEGATION
_MOD_RHETORICAL: Final = Mod.RHETORICAL
_MOD_RHETORICAL_IF_QUESTION: Final = Mod.RHETORICAL_IF_QUESTION
_SATISFIED: Final = Rating.SATISFIED
_UNSATISFIED: Final = Rating.UNSATISFIED

NEGATING: Final = frozenset((Mod.NEGATION, Mod.HEDGED, Mod.NOT_QUITE, Mod.RHETORICAL))
HEDGING: Final = frozenset((Mod.HEDGED, Mod.NOT_QUITE))


class Mods(NamedTuple):
    """The modifiers before a word."""

    start: int  # where the modifiers before the word begin
    kinds: tuple[Mod, ...]  # nearest to the word first

    @property
    def negations(self) -> int:
        """How many of them negate. A rhetorical word inside a negation is indefinite:
        「没觉得哪里好」 is 「not good anywhere」, not a question."""
        kinds = self.kinds
        if not kinds:
            return 0
        count = sum(k in NEGATING for k in kinds)
        if _MOD_RHETORICAL in kinds:
            farther = kinds[kinds.index(_MOD_RHETORICAL) + 1 :]
            if _MOD_NEGATION in farther or not HEDGING.isdisjoint(farther):
                count -= 1
        return count

    @property
    def hedged(self) -> bool:
        """A softening negation among them (不是, 谈不上, 不太)."""
        return not HEDGING.isdisjoint(self.kinds)

    @property
    def basic(self) -> bool:
        """A degree word that makes satisfied basically satisfied (基本, 还算, 还…)."""
        adjacent = bool(self.kinds) and self.kinds[0] is _MOD_BASIC_ADJACENT
        return adjacent or _MOD_BASIC in self.kinds


# Quotation marks around a good word say the opposite (「服务真是“周到”」「真是太“满意”了」),
# unless the word is quoted as an answer given or meant (「刚回的“满意”」「本来想打“满意”」).
_OPEN_QUOTES: Final = frozenset("“\"「『‘'")
_CLOSE_QUOTES: Final = frozenset("”\"」』’'")
_ANSWERED: Final = frozenset("回选打发评按点个成复入择")  # 回复, 输入, 选择 too
# 「刚回的“满意”」 quotes an answer; 「你们的“高效”」 does not.
_ANSWERED_BY: Final = frozenset("回选打发评按点说给写")


def scare_quoted(norm: str, start: int, end: int, outer: int | None = None) -> bool:
    """The word at norm[start:end] stands alone in quotation marks, not as an answer; or
    with its modifiers from `outer` (「处理得“很公正”」)."""
    if outer is not None and outer < start and scare_quoted(norm, outer, end):
        return True
    if start < 1 or end >= len(norm) or norm[start - 1] not in _OPEN_QUOTES:
        return False
    if norm[end] not in _CLOSE_QUOTES or norm.startswith("不是", end + 1):
        return False  # 「是“满意”不是“瞒意”」 corrects a typo
    if start < 2:
        return True
    before = norm[start - 2]
    if before == "的":
        return start < 3 or norm[start - 3] not in _ANSWERED_BY
    return before not in _ANSWERED


class Ending(NamedTuple):
    """What follows a word."""

    sarcasm: str | None = None  # 「满意个屁」
    question: bool = False  # 「满意吗」「找到了没有」
    negated: str | None = None  # 「满意是不可能的」「满意不起来」
    hedged: str | None = None  # 「不满意谈不上」
    end: int = 0  # where it ends in the reply (0: nothing follows)


NO_ENDING: Final = Ending()


def judge(entry: Entry, mods: Mods, after: Ending) -> tuple[Rating, tuple[str, ...]]:
    """A rating or opinion word's rating after its modifiers and what follows it; with
    the cue that changed it (first) and how, for the explanation (empty: unchanged)."""
    assert entry.rating is not None
    if not mods.kinds and after is NO_ENDING:
        return entry.rating, ()
    if after.sarcasm is not None:
        return _UNSATISFIED, (cues.SARCASM, f"sarcasm {after.sarcasm!r}")
    negations, hedged, how = _negations(mods, after)
    rating = entry.rating
    if negations % 2:
        how.insert(0, "negated")
        rating = _negated(entry, mods, hedged)
    elif negations:
        how.insert(0, "double negation")
        if hedged and entry.rating is not _UNSATISFIED:
            rating = _BASICALLY_SATISFIED  # 「不是不好」 is a hedge
    if rating is _SATISFIED and mods.basic:
        rating = _BASICALLY_SATISFIED
        how.append("degree")
    if not how:
        return rating, ()
    cue = cues.RHETORICAL if any(h.startswith("rhetorical") for h in how) else cues.NEGATION
    if how == ["degree"]:
        cue = cues.DEGREE
    return rating, (cue, *how)


def _negations(mods: Mods, after: Ending) -> tuple[int, bool, list[str]]:
    """How many times the word is negated, whether softly, and how (for the explanation)."""
    negations = mods.negations
    how: list[str] = []
    if (
        after.question
        and _MOD_RHETORICAL_IF_QUESTION in mods.kinds
        and _MOD_RHETORICAL not in mods.kinds
    ):
        # 「能满意吗」 means it cannot; in 「我哪里会满意？」 the 哪里 says so already
        negations += 1
        how.append("rhetorical question")
    if _MOD_RHETORICAL in mods.kinds:
        how.append("rhetorical")
    if _MOD_CANNOT in mods.kinds:
        negations += 1
    hedged = mods.hedged
    if after.negated is not None:
        negations += 1
        how.append(f"negated by {after.negated!r} after it")
    elif after.hedged is not None:
        negations += 1
        hedged = True
        how.append(f"hedged by {after.hedged!r} after it")
    return negations, hedged, how


def _negated(entry: Entry, mods: Mods, hedged: bool) -> Rating:
    if entry.rating is not _UNSATISFIED:
        # 「哪有什么不满意」: a word that is a negation already says the same negated
        return _UNSATISFIED if entry.negated is None else entry.negated
    if entry.negated is not None:
        # 「不差」 is basically satisfied, 「一点都不差」 more than that.
        return _SATISFIED if _MOD_EMPHATIC in mods.kinds else entry.negated
    return _BASICALLY_SATISFIED if hedged else _SATISFIED
