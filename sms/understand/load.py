"""Checking and compiling the reply-understanding rules file.

`load_rules` turns ``sms/understand/understanding.toml`` (or an ops copy) into `Rules` once:
every key is checked — an unknown key is a typo, a word listed twice is ambiguous, a
regex must compile and must not match empty text — so a bad file fails at load time
with a message naming the key, never in the middle of reading a reply.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from sms.understand.match import build_matcher, trie_regex
from sms.understand.rules import DEFAULT_RULES_PATH, HAN, Entry, Kind, Mod, Rating, Rules

SUPPORTED_VERSION: Final = 1
# Particles and punctuation that may come between a word and its sarcasm or question
# ending: 「满意了吗」「满意，呵呵」.
_BETWEEN_ENDING: Final = "了的啊呀哦啦吧,.!。~ "
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
_PINYIN_KEY: Final = re.compile(r"[a-z]+(?: [a-z]+)*")


class _Table:
    """A TOML table with the path to it, so every error names the bad key."""

    def __init__(self, data: object, where: str, source: str) -> None:
        if not isinstance(data, dict):
            raise _error(source, where, "must be a table")
        self.data: dict[str, object] = data
        self.where = where
        self.source = source

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> ValueError:
        return _error(self.source, self.path(key), problem)

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def table(self, key: str) -> _Table:
        if key not in self.data:
            raise self.fail(key, "missing table")
        return _Table(self.data[key], self.path(key), self.source)

    def tables(self, key: str) -> list[_Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "must be an array of tables ([[...]])")
        return [_Table(v, f"{self.path(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, "must be a positive integer")
        return value

    def strings(self, key: str, *, required: bool = True, lower: bool = True) -> tuple[str, ...]:
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
        if key not in self.data and not required:
            return None
        value = self.data.get(key)
        if not isinstance(value, str) or value not in _KNOWN_RATINGS:
            raise self.fail(
                key, f"{value!r} is not a rating (satisfied, basically_satisfied, unsatisfied)"
            )
        return Rating(str(value))


_KNOWN_RATINGS: Final = frozenset(r.value for r in Rating if r is not Rating.UNKNOWN)


def _error(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")


class _Builder:
    """Collects words and patterns from every section, refusing a word listed twice."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.words: dict[str, Entry] = {}
        self.patterns: list[tuple[str, Entry]] = []

    def add_words(self, table: _Table, key: str, entry: Entry, *, required: bool = True) -> None:
        for word in table.strings(key, required=required):
            other = self.words.get(word)
            if other is not None:
                raise table.fail(key, f"{word!r} is also listed in {other.key}")
            self.words[word] = entry

    def add_patterns(self, table: _Table, key: str, entry: Entry) -> None:
        for i, pattern in enumerate(table.strings(key, required=False, lower=False)):
            where = f"{key}[{i}]"
            if "(?P<" in pattern:
                raise table.fail(where, "named groups are not allowed in patterns")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise table.fail(where, f"bad regex: {exc}") from None
            if compiled.fullmatch(""):
                raise table.fail(where, "pattern matches empty text")
            self.patterns.append((pattern, entry))


def _load_reasons(root: _Table, b: _Builder) -> dict[str, str]:
    reasons = root.table("reasons")
    labels: dict[str, str] = {}
    for reason_id in reasons.data:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", reason_id):
            raise reasons.fail(reason_id, "reason ids are lower-case ASCII (a-z, 0-9, _)")
        t = reasons.table(reason_id)
        t.only("label", "phrases", "patterns")
        labels[reason_id] = t.string("label")
        entry = Entry(Kind.COMPLAINT, t.where, Rating.UNSATISFIED, reason=reason_id)
        b.add_words(t, "phrases", entry, required=False)
        b.add_patterns(t, "patterns", entry)
    if not labels:
        raise root.fail("reasons", "at least one reason is needed")
    return labels


def _reason(t: _Table, key: str, labels: Mapping[str, str]) -> str | None:
    if key not in t.data:
        return None
    value = t.string(key)
    if value not in labels:
        raise t.fail(key, f"{value!r} is not a reason id from [reasons]")
    return value


def _load_judgments(root: _Table, b: _Builder, labels: Mapping[str, str]) -> None:
    for t in root.tables("aspects"):
        t.only("reason", "praise", "words")
        praise = t.data.get("praise", False)
        if not isinstance(praise, bool):
            raise t.fail("praise", "must be true or false")
        b.add_words(
            t,
            "words",
            Entry(Kind.ASPECT, t.where, None, _reason(t, "reason", labels), None, praise),
        )
    for t in root.tables("words"):
        t.only("level", "rating", "negated", "words", "patterns")
        level = t.string("level")
        if level not in ("rating", "opinion"):
            raise t.fail("level", "must be 'rating' or 'opinion'")
        kind = Kind.RATING if level == "rating" else Kind.OPINION
        entry = Entry(
            kind, t.where, t.rating("rating"), negated=t.rating("negated", required=False)
        )
        b.add_words(t, "words", entry, required=False)
        b.add_patterns(t, "patterns", entry)
    emoji = root.table("emoji")
    emoji.only(*(r.value for r in Rating if r is not Rating.UNKNOWN))
    for rating_key in emoji.data:
        b.add_words(
            emoji, rating_key, Entry(Kind.EMOJI, emoji.path(rating_key), Rating(rating_key))
        )
    for section, kind in (("praise", Kind.PRAISE), ("positive", Kind.POSITIVE)):
        for t in root.tables(section):
            t.only("negated_reason", "words", "patterns")
            entry = Entry(kind, t.where, Rating.SATISFIED, _reason(t, "negated_reason", labels))
            b.add_words(t, "words", entry, required=False)
            b.add_patterns(t, "patterns", entry)


def _load_answers(root: _Table, b: _Builder) -> tuple[frozenset[str], frozenset[str], str]:
    opt_out = root.table("opt_out")
    opt_out.only("words", "whole_reply")
    b.add_words(opt_out, "words", Entry(Kind.OPT_OUT, opt_out.path("words")))
    for t in root.tables("non_answers"):
        t.only("hint", "words", "patterns")
        entry = Entry(Kind.NON_ANSWER, t.where, hint=t.string("hint"))
        b.add_words(t, "words", entry, required=False)
        b.add_patterns(t, "patterns", entry)
    ack = root.table("acknowledgements")
    ack.only("hint", "whole_reply")
    markers = root.table("markers")
    kinds = {k.value: k for k in (Kind.CONTRAST, Kind.CONTRAST_START, Kind.LATER, Kind.EARLIER)}
    kinds[Kind.CONCESSIVE.value] = Kind.CONCESSIVE
    markers.only(*kinds)
    for key, kind in kinds.items():
        b.add_words(markers, key, Entry(kind, markers.path(key)), required=False)
    neutral = root.table("neutral")
    neutral.only("words")
    b.add_words(neutral, "words", Entry(Kind.NEUTRAL, neutral.path("words")))
    return (
        frozenset(opt_out.strings("whole_reply", required=False)),
        frozenset(ack.strings("whole_reply")),
        ack.string("hint"),
    )


def _load_modifiers(root: _Table) -> tuple[dict[str, Mod], tuple[str, ...], tuple[str, ...]]:
    t = root.table("modifiers")
    t.only(*(m.value for m in Mod), "question_endings", "sarcasm_endings")
    modifiers: dict[str, Mod] = {}
    for mod in Mod:
        for word in t.strings(mod.value, required=mod is not Mod.BASIC_ADJACENT):
            if word in modifiers:
                raise t.fail(mod.value, f"{word!r} is also a {modifiers[word].value} word")
            modifiers[word] = mod
    return modifiers, t.strings("question_endings"), t.strings("sarcasm_endings")


def _load_fold(root: _Table) -> dict[int, str | None]:
    t = root.table("traditional")
    t.only("pairs")
    fold: dict[int, str | None] = {ord(ch): None for ch in _INVISIBLE}
    for plain, marked in _TONE_MARKS.items():
        fold.update({ord(ch): plain for ch in marked})
    seen: dict[str, str] = {}
    for pair in t.string("pairs").split():
        if len(pair) != 2 or pair[0] == pair[1]:
            raise t.fail("pairs", f"{pair!r} is not a pair of two different characters")
        if pair[0] in seen:
            raise t.fail("pairs", f"{pair[0]!r} is listed twice")
        seen[pair[0]] = pair[1]
        fold[ord(pair[0])] = pair[1]
    return fold


def _load_pinyin(root: _Table) -> dict[str, str]:
    t = root.table("pinyin")
    pinyin: dict[str, str] = {}
    for key in t.data:
        if not _PINYIN_KEY.fullmatch(key):
            raise t.fail(key, "pinyin keys are lower-case letters, syllables split by one space")
        joined = key.replace(" ", "")
        if joined in pinyin:
            raise t.fail(key, "listed twice (spaces do not count)")
        pinyin[joined] = t.string(key)
    return pinyin


def _load_numerals(root: _Table) -> tuple[dict[str, str], re.Pattern[str], re.Pattern[str]]:
    t = root.table("numerals")
    t.only("digits", "after")
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
    return digits, lone, chosen


def _ending_regex(sarcasm: tuple[str, ...], question: tuple[str, ...]) -> re.Pattern[str]:
    between = "[" + re.escape(_BETWEEN_ENDING) + "]*"
    return re.compile(
        f"{between}(?:(?P<sarcasm>{trie_regex(sarcasm)})|(?P<question>{trie_regex(question)}))"
    )


def parse_rules(data: Mapping[str, object], source: str) -> Rules:
    """Check and compile rules already read from TOML; `source` names them in errors."""
    root = _Table(dict(data), "", source)
    root.only(
        "version", "scheme", "numerals", "digits", "reasons", "aspects", "words", "emoji",
        "praise", "positive", "opt_out", "non_answers", "acknowledgements", "markers",
        "neutral", "modifiers", "pinyin", "traditional",
    )  # fmt: skip
    if root.data.get("version") != SUPPORTED_VERSION:
        raise root.fail("version", f"must be {SUPPORTED_VERSION}")
    scheme_table = root.table("scheme")
    scheme: dict[str, Rating] = {}
    for digit in scheme_table.data:
        if not re.fullmatch("[0-9]", digit):
            raise scheme_table.fail(digit, "scheme keys are single digits")
        rating = scheme_table.rating(digit)
        assert rating is not None
        scheme[digit] = rating
    if not scheme:
        raise root.fail("scheme", "at least one digit is needed")
    digit_rules = root.table("digits")
    digit_rules.only("units_after", "units_before", "phone_min_length")
    b = _Builder(source)
    labels = _load_reasons(root, b)
    _load_judgments(root, b, labels)
    opt_out_whole, ack_whole, ack_hint = _load_answers(root, b)
    modifiers, question_endings, sarcasm_endings = _load_modifiers(root)
    pinyin = _load_pinyin(root)
    numeral_digits, numeral_lone, numeral_chosen = _load_numerals(root)
    return Rules(
        source=source,
        scheme=scheme,
        reason_labels=labels,
        reason_order={reason: i for i, reason in enumerate(labels)},
        matcher=build_matcher(b.words, b.patterns),
        modifiers=modifiers,
        modifiers_reversed=re.compile(trie_regex(word[::-1] for word in modifiers)),
        modifier_last_chars=frozenset(word[-1] for word in modifiers),
        ending=_ending_regex(sarcasm_endings, question_endings),
        ending_first_chars=frozenset(_BETWEEN_ENDING).union(
            w[0] for w in sarcasm_endings + question_endings
        ),
        units_after=digit_rules.strings("units_after"),
        units_before=digit_rules.strings("units_before"),
        phone_min_length=digit_rules.integer("phone_min_length"),
        fold=_load_fold(root),
        pinyin=pinyin,
        pinyin_max=max(map(len, pinyin), default=0),
        numeral_digits=numeral_digits,
        numeral_chars=re.compile("[" + "".join(map(re.escape, numeral_digits)) + "]"),
        numeral_lone=numeral_lone,
        numeral_chosen=numeral_chosen,
        opt_out_whole=opt_out_whole,
        ack_whole=ack_whole,
        ack_hint=ack_hint,
    )


def load_rules(path: str | Path | None = None) -> Rules:
    """Read and check a rules file; None means the one shipped in the package.

    Raises ValueError naming the bad key when the file is malformed, OSError when it
    cannot be read.
    """
    file = DEFAULT_RULES_PATH if path is None else Path(path)
    raw = file.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{file}: not valid UTF-8 TOML: {exc}") from None
    return parse_rules(data, str(file))


@functools.cache
def default_rules() -> Rules:
    """The packaged rules, loaded once per process."""
    return load_rules(None)
