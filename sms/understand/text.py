"""Normalising a reply before it is read: one spelling for each word.

Citizens type the same answer many ways: full-width 「３」, traditional 「滿意」, pinyin
「bu manyi」, 「满 意」 with a stray space, 「选三」. `normalize` maps them all to one
form (half-width, lower case, simplified, characters) so the rules file lists each
word once. It is a pure function of the text and the rules: nothing here guesses.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from sms.understand.rules import HAN, Rules

# Characters that end a clause. Negation and aspects never reach across them, and
# 「就是」 counts as a contrast only right after one. Brackets count, so 「【3】」 is a
# clause of its own.
CLAUSE_BREAKS: Final = frozenset(
    " \t\r\n\u3000,.!?;:~、。…·\"'“”‘’()[]{}<>【】《》「」『』〔〕|/\\-_=+*^&@$¥￥—"
)
_CLAUSE_BREAK_RE: Final = re.compile(
    "[" + "".join(re.escape(ch) for ch in sorted(CLAUSE_BREAKS)) + "]+"
)
_SPACE_BETWEEN_HAN: Final = re.compile(f"(?<=[{HAN}])\\s+(?=[{HAN}])")
_LATIN_LETTER: Final = re.compile("[a-z]")
_WHITESPACE: Final = re.compile(r"\s")
_LATIN_RUN: Final = re.compile(r"[a-z]+(?:[\s'\-]+[a-z]+)*")
_LATIN_SEPARATOR: Final = re.compile(r"[\s'\-]+")
# A pinyin phrase spans at most this many typed words (「hen bu man yi」 is four).
_MAX_WORDS_PER_PHRASE: Final = 5


def normalize(text: str, rules: Rules) -> str:
    """The reply in the one spelling the rules are written in.

    NFKC turns full-width letters, digits and punctuation (and ①②③) into ASCII; the
    rules' fold table maps traditional characters, pinyin tone marks and invisible
    characters; pinyin words become characters; spaces between Chinese characters go
    (「满 意」 is 「满意」); a numeral that answers the scheme becomes its digit.
    """
    if text.isascii():
        s = text.lower()  # NFKC and the fold table leave ASCII as it is
    else:
        s = unicodedata.normalize("NFKC", text).lower().translate(rules.fold)
    if rules.pinyin and _LATIN_LETTER.search(s):
        s = _LATIN_RUN.sub(lambda m: _romanised(m.group(0), rules), s)
    if _WHITESPACE.search(s):
        s = _SPACE_BETWEEN_HAN.sub("", s)
    if rules.numeral_chars.search(s):
        s = _numerals_as_digits(s, rules)
    return s


def core_of(norm: str) -> str:
    """The reply without punctuation or spaces, for whole-reply checks (「T」「好的。」)."""
    return _CLAUSE_BREAK_RE.sub("", norm)


def clause_starts(norm: str) -> list[int]:
    """Start offsets of the clauses of a normalised reply, in order (always has 0)."""
    starts = [0]
    for m in _CLAUSE_BREAK_RE.finditer(norm):
        if m.end() < len(norm):
            starts.append(m.end())
    return starts


def _romanised(run: str, rules: Rules) -> str:
    """A run of Latin words with every pinyin phrase replaced by its characters.

    Words are grouped into phrases that the pinyin table spells completely (「bu」
    「manyi」, or 「man yi」 together); a word that is not pinyin (「td」, 「ok」) stays as
    typed. Among the ways to read a run, the one converting the most words wins, then
    the one with the fewest phrases, so 「man yi」 is 满意 and not 慢 + something.
    """
    words = _LATIN_SEPARATOR.split(run)
    n = len(words)
    # best[i]: (words converted, -phrases, pieces) for words[i:].
    best: list[tuple[int, int, tuple[str, ...]]] = [(0, 0, ())] * (n + 1)
    for i in range(n - 1, -1, -1):
        keep = best[i + 1]
        choice = (keep[0], keep[1], (words[i], *keep[2]))
        for j in range(i + 1, min(n, i + _MAX_WORDS_PER_PHRASE) + 1):
            han = _spell(words[i:j], rules)
            if han is None:
                continue
            rest = best[j]
            candidate = (rest[0] + (j - i), rest[1] - 1, (han, *rest[2]))
            if candidate[:2] > choice[:2]:
                choice = candidate
        best[i] = choice
    return " ".join(best[0][2])


def _spell(words: list[str], rules: Rules) -> str | None:
    """The characters for letters that split completely into pinyin table keys."""
    letters = "".join(words)
    if len(letters) > rules.pinyin_max * len(words):
        return None
    return _split_letters(letters, rules)


def _split_letters(letters: str, rules: Rules) -> str | None:
    # From the end: spelled[i] is letters[i:] in characters, or None if it cannot be
    # spelled; at each position the longest key that leaves a spellable rest wins.
    n = len(letters)
    spelled: list[str | None] = [None] * (n + 1)
    spelled[n] = ""
    for i in range(n - 1, -1, -1):
        for size in range(min(rules.pinyin_max, n - i), 0, -1):
            han = rules.pinyin.get(letters[i : i + size])
            rest = spelled[i + size]
            if han is not None and rest is not None:
                spelled[i] = han + rest
                break
    return spelled[0]


def _numerals_as_digits(s: str, rules: Rules) -> str:
    """「三」「我选二」「选三吧」 → the scheme digit; 「一般」「十分满意」 stay words."""
    core = core_of(s)
    lone = rules.numeral_lone.match(core)
    if lone:
        start, end = lone.span(1)
        return core[:start] + rules.numeral_digits[lone.group(1)] + core[end:]
    return rules.numeral_chosen.sub(lambda m: m.group(1) + rules.numeral_digits[m.group(2)], s)
