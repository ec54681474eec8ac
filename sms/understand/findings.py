"""What `sms.understand.scan` finds in a reply: signals, boundaries and side facts.

A `Signal` is one piece of evidence for a rating with its strength (tier); a
`Boundary` is a point after which a later clause weighs more (a contrast, a later time,
a summary, a self-correction); a `Scan` holds them with the reasons, praise, opt-out,
non-answers, notes and cues of one reply. `sms.understand.decide` weighs them.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from sms.understand import cues
from sms.understand.rules import Rating

# Signal strength: the scheme's digits and its own words (满意) outrank opinion words
# and emoji (好, 差, 👍), which outrank phrases (辛苦了, 踢皮球).
TIER_RATING: Final = 0
TIER_OPINION: Final = 1
TIER_PHRASE: Final = 2


class Signal(NamedTuple):
    """One piece of evidence for a rating, where it was found and how strong it is."""

    pos: int
    tier: int
    rating: Rating
    overall: bool  # about the whole service, not one aspect of it (态度, 结果)
    digit: str | None = None
    # An unsatisfied signal a satisfied citizen may still add: a small complaint
    # (「有点慢」「希望…」) or a mild kind of complaint (出警慢, 跑多次).
    mild: bool = False
    softened: bool = False  # said with 有点/稍微/了点, or a hedged negation
    courtesy: bool = False  # praise of manners (热情, 辛苦了, 谢谢), not of the work
    # What it is about: a complaint's reason, or the reason praise denies (及时 →
    # slow_response); 「真及时，小偷早跑没影了」 says both of one thing: sarcasm.
    reason: str | None = None


class Boundary(NamedTuple):
    """A point after which the later clause decides: a contrast, a later time, a
    summary (总之), or a self-correction (不对, 改成)."""

    pos: int
    later: bool  # time (之前…现在) rather than contrast (但是)
    word: str
    kind: str = cues.CONTRAST
    past: bool = False  # the clause before it was said to be the past (之前, 一开始)


class Scan:
    """Everything `scan` found in one reply."""

    # A plain slotted class rather than a dataclass with many default factories: one is
    # made per reply, and for a bare 「3」 its construction is a visible share of the time.
    __slots__ = (
        "acknowledgement",
        "asks",
        "boundaries",
        "cues",
        "digit_afterthought",
        "digit_change",
        "digit_hints",
        "digit_votes",
        "digits_taken_back",
        "doubts",
        "earlier_reply",
        "garbled",
        "non_answer_hints",
        "norm",
        "notes",
        "opt_out",
        "other_reasons",
        "praise_words",
        "questioning",
        "reasons",
        "signals",
        "undecided",
    )

    def __init__(self, norm: str) -> None:
        self.norm = norm
        self.signals: list[Signal] = []
        self.reasons: list[str] = []
        self.other_reasons: list[str] = []  # complaints about another party (对方没赔)
        self.praise_words: list[str] = []
        self.opt_out: list[str] = []
        self.non_answer_hints: list[str] = []
        self.digit_hints: list[str] = []
        self.boundaries: list[Boundary] = []
        self.acknowledgement: str | None = None  # the agent's hint for a bare 「好的」
        self.notes: list[tuple[int, str]] = []  # (position, explanation)
        self.cues: list[str] = []  # cue ids, in the order they were seen
        self.digit_votes = 0  # scheme digits among the signals
        # 「1改3」: where the last scheme digit stands and the word before it that replaces
        # an earlier, different digit
        self.digit_change: tuple[int, str] | None = None
        # 「先给个2，后来越想越气，3」: where the last scheme digit stands when words with no
        # such marker come between it and an earlier, more satisfied digit
        self.digit_afterthought: int | None = None
        # 「刚才那个3不算，1」: the positions of the scheme digits the reply disowns, and the
        # words that disowned the first of them
        self.digits_taken_back: tuple[tuple[int, ...], str] | None = None
        self.asks: str | None = None  # the hint when it asks about the case or opting out
        self.questioning = False  # it ends as a question, or says 请问
        self.undecided: str | None = None  # 「1还是2」: the choices not made
        self.earlier_reply = False  # it speaks of an earlier reply (刚才, 上条)
        # The safety net's words left unexplained: (position, word, its [caution] list).
        self.doubts: list[tuple[int, str, str]] = []
        # 「丕满意」: an unread character glued before the only, positive, rating word, as
        # likely a garbled 不 as nothing (`caution`): the weigher may not read it positive
        self.garbled = False

    def cue(self, cue: str) -> None:
        """Record that a kind of evidence was used."""
        self.cues.append(cue)
