"""One table of the rules file, checked: every error names the file and the bad key.

`load_rules` and its helpers read the rules file through `Table`, so a typo in a key, a
list of the wrong type or a word listed twice fails at load time with
``rules.toml: reasons.fees.patterns[0]: bad regex: …`` — never in the middle of reading
a reply.

The spelling tables of the rules file are loaded here too, one spelling for each word.

[traditional] and [variants] fold characters (滿 → 满, 冇 → 没), [pinyin] and [english]
turn Latin words into the Chinese words the rules know (「bu manyi」, 「not happy」),
[numerals] turn numerals that answer the scheme into digits (选三 → 选3), and
[homophones] names the words whose sound-alike typos are corrected (满衣 → 满意).
`sms.understand.text` and `sms.understand.homophone` apply them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from sms.understand.homophone import Homophones, build_homophones
from sms.understand.rules import HAN, Rating

_KNOWN_RATINGS: Final = frozenset(r.value for r in Rating if r is not Rating.UNKNOWN)


def rules_error(source: str, key: str, problem: str) -> ValueError:
    """The error for a bad key of a rules file."""
    return ValueError(f"{source}: {key}: {problem}")


class Table:
    """A TOML table with the path to it, so every error names the bad key."""

    def __init__(self, data: object, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise rules_error(source, where, "must be a table")
        self.data: dict[str, object] = data
        self.where = where
        self.source = source

    def path(self, key: str) -> str:
        """The dotted path of `key` in this table, for error messages."""
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ValueError:
        """The error for a bad `key` of this table."""
        return rules_error(self.source, self.path(key), problem)

    def only(self, *allowed: str) -> None:
        """Refuse any key not in `allowed` (a typo)."""
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def table(self, key: str) -> Table:
        """A sub-table that must be there."""
        if key not in self.data:
            raise self.fail(key, "missing table")
        return Table(self.data[key], self.path(key), self.source)

    def optional_table(self, key: str) -> Table:
        """A sub-table that may be missing (then empty)."""
        return Table(self.data.get(key, {}), self.path(key), self.source)

    def tables(self, key: str) -> list[Table]:
        """An array of tables ([[key]]), possibly empty."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "must be an array of tables ([[...]])")
        return [Table(v, f"{self.path(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, key: str, default: str | None = None) -> str:
        """A non-empty string."""
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def integer(self, key: str) -> int:
        """A positive integer."""
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, "must be a positive integer")
        return value

    def share(self, key: str) -> float:
        """A number from 0 to 1 (a probability)."""
        value = self.data.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            raise self.fail(key, "must be a number from 0 to 1")
        return float(value)

    def flag(self, key: str) -> bool:
        """true or false; missing is false."""
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def strings(self, key: str, *, required: bool = True, lower: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings, none listed twice; lower-cased unless told."""
        if key not in self.data and not required:
            return ()
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        # Replies are lower-cased before matching, so words are too (「TD」 → 「td」).
        lowered = tuple(v.lower() if lower else v for v in value)
        for i, v in enumerate(lowered):
            if v in lowered[:i]:
                raise self.fail(key, f"{v!r} is listed twice")
        return lowered

    def rating(self, key: str, *, required: bool = True) -> Rating | None:
        """A rating other than unknown."""
        if key not in self.data and not required:
            return None
        value = self.data.get(key)
        if not isinstance(value, str) or value not in _KNOWN_RATINGS:
            raise self.fail(
                key, f"{value!r} is not a rating (satisfied, basically_satisfied, unsatisfied)"
            )
        return Rating(str(value))


# Pinyin with tone marks folds to plain letters, so 「mǎn yì」 reads as 「man yi」.
_TONE_MARKS: Final = {
    "a": "āáǎà",
    "e": "ēéěè",
    "i": "īíǐì",
    "o": "ōóǒò",
    "u": "ūúǔùǖǘǚǜü",
}
# Invisible characters that input methods and carriers slip into texts; dropping them
# keeps 「满\u200b意」 one word. U+FE0F is the emoji presentation selector (❤️ → ❤).
_INVISIBLE: Final = "\u200b\u200c\u200d\u2060\ufeff\ufe0e\ufe0f"
_LATIN_KEY: Final = re.compile(r"[a-z]+(?: [a-z]+)*")


def load_fold(root: Table) -> dict[int, str | None]:
    """The str.translate table: invisibles dropped, tone marks off, traditional and
    variant characters to the simplified ones the rules are written in."""
    fold: dict[int, str | None] = {ord(ch): None for ch in _INVISIBLE}
    for plain, marked in _TONE_MARKS.items():
        fold.update({ord(ch): plain for ch in marked})
    seen: dict[str, str] = {}
    for section, required in (("traditional", True), ("variants", False)):
        t = root.table(section) if required else root.optional_table(section)
        t.only("pairs")
        if not required and "pairs" not in t.data:
            continue
        for pair in t.string("pairs").split():
            if len(pair) != 2 or pair[0] == pair[1]:
                raise t.fail("pairs", f"{pair!r} is not a pair of two different characters")
            if pair[0] in seen:
                raise t.fail("pairs", f"{pair[0]!r} is listed twice")
            seen[pair[0]] = pair[1]
            fold[ord(pair[0])] = pair[1]
    return fold


def load_romanised(root: Table) -> dict[str, str]:
    """[pinyin] and [english]: Latin words (spaces removed) → the characters they mean."""
    romanised: dict[str, str] = {}
    for section, required in (("pinyin", True), ("english", False)):
        t = root.table(section) if required else root.optional_table(section)
        for key in t.data:
            if not _LATIN_KEY.fullmatch(key):
                raise t.fail(key, "keys are lower-case letters, words split by one space")
            joined = key.replace(" ", "")
            if joined in romanised:
                raise t.fail(key, "listed twice (spaces do not count)")
            romanised[joined] = t.string(key)
    return romanised | english_typos(root, romanised)


# An English word this long is recognised with one letter wrong, missing, extra or two
# swapped (「satisified」「sastisfied」「basicly」 are satisfied, basically); a shorter
# one is too often another word (fine/fire, good/food).
_TYPO_MIN: Final = 7
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"


def english_typos(root: Table, romanised: Mapping[str, str]) -> dict[str, str]:
    """[english] words of `_TYPO_MIN` letters or more, misspelt by one edit → what the
    word means. A misspelling that two words share, or that is a key itself, is left out."""
    t = root.optional_table("english")
    found: dict[str, str | None] = {}
    for key in t.data:
        if " " in key or len(key) < _TYPO_MIN:
            continue
        meaning = romanised[key]
        for typo in _one_edit(key):
            if typo in romanised:
                continue
            known = found.setdefault(typo, meaning)
            if known != meaning:
                found[typo] = None  # two words are one edit from it: neither is meant
    return {typo: meaning for typo, meaning in found.items() if meaning is not None}


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, swap of neighbours, replacement or insertion away."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


def load_numerals(
    root: Table,
) -> tuple[dict[str, str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """Numerals → digits, and the regexes for where a numeral answers the scheme: alone
    (「三」「嗯三吧」), after a choosing word (「选三」), or in a choice (「一还是二」)."""
    t = root.table("numerals")
    t.only("digits", "after", "between")
    digits_table = t.table("digits")
    digits: dict[str, str] = {}
    for numeral in digits_table.data:
        digit = digits_table.string(numeral)
        if len(numeral) != 1 or not re.fullmatch("[0-9]", digit):
            raise digits_table.fail(numeral, "a numeral is one character mapped to one digit")
        digits[numeral] = digit
    numeral = "[" + "".join(re.escape(n) for n in digits) + "]"
    verbs = "|".join(re.escape(v) for v in sorted(t.strings("after"), key=len, reverse=True))
    filler = "(?:嗯|呃|额|啊|哦|噢|那个)*"
    particle = "[吧啊呀了嘛呢哦啦的]"
    lone = re.compile(f"^{filler}(?:我?(?:{verbs}))?第?({numeral})[个号项]?{particle}*$")
    # Inside a sentence the numeral must end the clause, so 按一下 / 选一个 stay words.
    chosen = re.compile(f"({verbs})第?({numeral})[个号项]?(?=$|{particle}|[^{HAN}])")
    between = t.strings("between", required=False) or ("还是",)
    joins = "|".join(re.escape(w) for w in sorted(between, key=len, reverse=True))
    # 「一还是二呢」「二或三」, not 「三还是四个人」: a choice between two scheme answers.
    choice = re.compile(f"({numeral})((?:{joins})选?)({numeral})(?![个次天人号项位])")
    return digits, lone, chosen, choice


def load_homophones(root: Table, numerals: tuple[str, ...]) -> Homophones | None:
    """[homophones]: the target words and the real words never taken for their typos."""
    t = root.optional_table("homophones")
    t.only("targets", "ignore", "before_ratings", "degree_alike")
    targets = t.strings("targets", required=False)
    if not targets:
        return None
    for i, word in enumerate(targets):
        if not re.fullmatch(f"[{HAN}]{{2,3}}", word):
            raise t.fail(f"targets[{i}]", f"{word!r}: a target is 2 or 3 Chinese characters")
    before = t.strings("before_ratings", required=False)
    for i, word in enumerate(before):
        if word not in targets:
            raise t.fail(f"before_ratings[{i}]", f"{word!r} is not one of the targets")
    try:
        ignore = t.strings("ignore", required=False)
        degree = t.strings("degree_alike", required=False)
        return build_homophones(targets, ignore, numerals, before, degree)
    except ValueError as exc:
        raise t.fail("targets", str(exc)) from None
