"""Reply-understanding rules: the types a checked rules file is made of.

Everything that decides how a citizen's words are read — the reply scheme, the reason
taxonomy, rating, praise and complaint words, negation and degree words, pinyin and
traditional characters — lives in ``sms/understand/understanding.toml`` so ops can change a
word without touching code. `sms.understand.load` checks and compiles that file into
the `Rules` defined here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sms.understand.match import Matcher

DEFAULT_RULES_PATH: Final = Path(__file__).parent / "understanding.toml"
# Chinese ideographs (extension A + unified); what "a Chinese character" means below.
HAN: Final = "\u3400-\u9fff"


class Rating(enum.StrEnum):
    """How satisfied the citizen says they are; UNKNOWN when the reply does not say."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"
    UNKNOWN = "unknown"


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
    NEUTRAL = "neutral"


class Mod(enum.StrEnum):
    """What a modifier word does to the word after it."""

    NEGATION = "negation"
    HEDGED = "hedged_negation"
    BASIC = "basic"
    BASIC_ADJACENT = "basic_adjacent"
    DEGREE = "degree"
    RHETORICAL = "rhetorical"
    RHETORICAL_IF_QUESTION = "rhetorical_if_question"


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
    # Right after a word: group "sarcasm" (满意个屁) or group "question" (满意吗).
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
    opt_out_whole: frozenset[str]
    ack_whole: frozenset[str]
    ack_hint: str
