"""Reply-understanding rules: the types a checked rules file is made of (here), its
loading and checking (`load`) and the tables it builds (`table`).

Everything that decides how a citizen's words are read — the reply scheme, the reason
taxonomy, rating, praise and complaint words, negation and degree words, pinyin and
traditional characters — lives in ``sms/understand/understanding.toml`` so ops can change a
word without touching code. `sms.understand.rules.load` checks and compiles that file into
the `Rules` defined here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sms.understand.homophone import Homophones
    from sms.understand.learned import Weigher
    from sms.understand.match import Matcher

# The file sits beside the package that reads it (sms/understand/understanding.toml).
DEFAULT_RULES_PATH: Final = Path(__file__).parent.parent / "understanding.toml"
# Chinese ideographs (extension A + unified); what "a Chinese character" means below.
HAN: Final = "\u3400-\u9fff"


class Rating(enum.StrEnum):
    """How satisfied the citizen says they are; UNKNOWN when the reply does not say."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"
    UNKNOWN = "unknown"


# The ratings that say how satisfied, least satisfied first (UNKNOWN says nothing).
SATISFACTION: Final = {Rating.UNSATISFIED: 0, Rating.BASICALLY_SATISFIED: 1, Rating.SATISFIED: 2}


class Confidence(enum.StrEnum):
    """How sure the reading is: `certain` when the evidence agrees and nothing had to be
    weighed; `likely` when a rule weighed it (a contrast, a negation, a typo, phrases
    only); `unclear` when caution chose (praise beside a complaint, words that disagree)
    or the reply may hold a rating that could not be read."""

    CERTAIN = "certain"
    LIKELY = "likely"
    UNCLEAR = "unclear"


class Kind(enum.StrEnum):
    """What a word in the rules file is."""

    RATING = "rating"
    OPINION = "opinion"
    EMOJI = "emoji"
    COMPLAINT = "complaint"
    PRAISE = "praise"
    POSITIVE = "positive"
    ASPECT = "aspect"
    OPT_OUT = "opt_out"
    NON_ANSWER = "non_answer"
    CONTRAST = "contrast"
    CONTRAST_START = "contrast_clause_start"
    LATER = "later"
    EARLIER = "earlier"
    CONCESSIVE = "concessive"
    SUMMARY = "summary"
    CORRECTION = "correction"
    CORRECTION_START = "correction_clause_start"
    CLEARS = "clears"
    NEUTRAL = "neutral"


class Mod(enum.StrEnum):
    """What a modifier word does to the word after it."""

    NEGATION = "negation"
    HEDGED = "hedged_negation"
    # 不太, 不够, 不怎么: "not quite", a hedged negation that only grades a plain word. It
    # cannot govern a word that carries its own negation: in 「金额不够不予立案」 不够 ends
    # one predicate (the amount is not enough) and 不予立案 starts the next.
    NOT_QUITE = "not_quite"
    BASIC = "basic"
    BASIC_ADJACENT = "basic_adjacent"
    DEGREE = "degree"
    RHETORICAL = "rhetorical"
    RHETORICAL_IF_QUESTION = "rhetorical_if_question"
    SOFTENER = "softener"  # 有点, 稍微: a complaint after it is a mild one
    EMPHATIC = "emphatic"  # 一点都, 根本: 「一点都不差」 is satisfied, not basically
    CANNOT = "cannot"  # 不能: negates a good word, leaves a complaint one (「也不能不管啊」)


@dataclass(frozen=True, slots=True)
class Entry:
    """One word or pattern of the rules file and what it means."""

    kind: Kind
    key: str  # the rules-file key it came from, for explanations and errors
    rating: Rating | None = None
    reason: str | None = None  # complaint/aspect reason, or the reason when negated
    negated: Rating | None = None  # rating when negated, if not the default flip
    praise: bool = False  # an aspect whose positive judgment is praise
    hint: str | None = None
    mild: bool = False  # a complaint a satisfied citizen may add (出警慢, 希望…): see decide
    about_police: bool = False  # a complaint about the police whoever else is named
    small: bool = False  # a wish or suggestion (希望…, 建议…): said as a small complaint
    # Praise of manners rather than of the work (热情, 辛苦了, 谢谢): it does not outweigh
    # a complaint about the work.
    courtesy: bool = False
    # An opt-out said as a request (「别发了」「不要再打扰」): a softener such as 行吗 or
    # 能不能 after or before it makes it no question about how to opt out.
    request: bool = False
    # Who a party word names: "police" (民警, 你们), "other" (对方, 邻居), "culprit" (骗子,
    # 小偷); None for a word that names no one.
    party: str | None = None


@dataclass(frozen=True, eq=False)
class Rules:
    """A checked, compiled rules file. Build it with `load_rules`."""

    source: str
    scheme: Mapping[str, Rating]
    reason_labels: Mapping[str, str]  # id → Chinese label, in taxonomy order
    reason_order: Mapping[str, int]  # id → position in the taxonomy
    matcher: Matcher  # finds the words and patterns below in a reply
    modifiers: Mapping[str, Mod]
    # Modifiers reversed, as one longest-first regex: matched on the reversed text, it
    # reads the words before a rating word backwards in one C call per word.
    modifiers_reversed: re.Pattern[str]
    modifier_last_chars: frozenset[str]  # a modifier can only end with one of these
    # A softener inside a complaint (「时间有点长」), but not emphasis (「一点没办」).
    softened_inside: re.Pattern[str]
    police_words: tuple[str, ...]  # party = "police" words: 「比你们来得还勤」 names 你们
    # Right after a word: group "sarcasm" (满意个屁), group "negated" (满意是不可能的,
    # 满意不起来), group "hedged" (不满意谈不上) or group "question" (满意吗, 找到了没有).
    ending: re.Pattern[str]
    ending_first_chars: frozenset[str]  # a character that can start such an ending
    units_after: tuple[str, ...]
    units_before: tuple[str, ...]
    phone_min_length: int
    fold: Mapping[int, str | None]  # str.translate table: traditional, tone marks, invisibles
    pinyin: Mapping[str, str]  # letters without spaces → characters
    pinyin_max: int
    numeral_digits: Mapping[str, str]
    numeral_chars: re.Pattern[str]  # any numeral, to skip the numeral regexes quickly
    numeral_lone: re.Pattern[str]
    numeral_chosen: re.Pattern[str]
    numeral_choice: re.Pattern[str]  # 「一还是二」: two numerals offered as a choice
    opt_out_whole: frozenset[str]
    # Before an opt-out word in its clause (「不要退订」), or anywhere in that clause
    # (「退订怎么弄」): the citizen is not opting out.
    opt_out_negated: re.Pattern[str]
    opt_out_question: re.Pattern[str]
    ack_whole: frozenset[str]
    ack_hint: str
    # 「1还是2呢」「一或者二」「满意还是不满意」: a choice not made (groups 1 and 2).
    undecided: re.Pattern[str]
    undecided_words: re.Pattern[str]
    # Words that point at an earlier reply (刚才按错了, 上条, 更正).
    earlier_reply: re.Pattern[str]
    # Between two different scheme digits: the later one is the answer (「1改3」「2→1」).
    digit_change: re.Pattern[str]
    # Between two different scheme digits: they are alternatives (「1和2之间」「1 or 2」),
    # so no later one is the answer by being later (`sms.understand.digits`).
    digit_alternatives: re.Pattern[str]
    # Right before / right after a scheme digit or an opt-out word: words that disown it
    # (「刚才那个3」「3不算」「刚才那个TD是手滑」).
    taken_back_before: re.Pattern[str]
    taken_back_after: re.Pattern[str]
    homophones: Homophones | None  # None: the rules file lists no homophone targets
    caution: Caution | None = None  # the safety net; None: the file has no [caution]
    weigher: Weigher | None = None  # where the rules are unsure; None: no [weigher]
    # Any character `fold` maps: most replies have none, and str.translate looks up every
    # character (a KeyError raised and cleared for each Chinese one). None: always fold.
    fold_chars: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class Caution:
    """The safety net's rules ([caution]; how they are used: `sms.understand.caution`)."""

    # One regex, tried left to right: group "innocent" (没想到, 刚才: nothing wrong),
    # "complaint" (到现在, 还没, 自己), "sneer" (呵呵, 说了算), "doubt" (不, 没, ?, 如果),
    # "narration" (赶到, 调了监控: the service told, neither praise nor complaint), "police"
    # (报警, 110: where the police come into a story).
    pattern: re.Pattern[str]
    fillers: frozenset[str]  # characters that say nothing on their own (的, 了, 我)
    unread_chars: int  # a clause with this many unexplained characters is unread; 0: off
    # A character some match of `pattern` starts with (None: unknown). The regex engine
    # cannot skip ahead by itself (its branches start with groups), so the net looks
    # for `pattern` only where one of these stands: the same matches, a third less time.
    trigger: re.Pattern[str] | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """`pattern.finditer(text)`: the same matches, found faster with `trigger`."""
        if self.trigger is None:
            yield from self.pattern.finditer(text)
            return
        search, match = self.trigger.search, self.pattern.match
        hit = search(text)
        while hit is not None:
            at = hit.start()
            m = match(text, at)
            if m is not None and m.end() > at:
                yield m
                hit = search(text, m.end())
            else:
                hit = search(text, at + 1)
