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
# What GBK bytes look like when read with the wrong codec: Latin-1 letters and signs
# (「ÂúÒâ」), U+FFFD where UTF-8 gave up (「����」), or, read as UTF-16, Hangul
# syllables, private-use characters and lone surrogates (「싺틢」).
_LATIN1_HIGH: Final = re.compile("[\u00a1-\u00ff]")
# (The escapes are the regex's, in a raw string: a lone surrogate in a string literal
# cannot be compiled by mypyc, sms.compiled.)
_UTF16_GARBAGE: Final = re.compile(r"[\uac00-\ud7a3\ud800-\udfff\ue000-\uf8ff]")
_REPLACEMENT: Final = "\ufffd"
# Characters whose NFKC form is ASCII (full-width 「，！３」, ①, 「…」, the ideographic
# space), from the blocks replies take them from. Replacing one by its NFKC form leaves
# the NFKC form of the whole text as it was (its compatibility decomposition is that
# ASCII, which neither reorders nor composes), so `normalize` can map them first and
# then skip NFKC for a text the quick check finds normal.
_TO_ASCII: Final = {
    code: nfkc
    for first, last in ((0x80, 0xFF), (0x2000, 0x24FF), (0x3000, 0x303F), (0xFF00, 0xFFEF))
    for code in range(first, last + 1)
    if (nfkc := unicodedata.normalize("NFKC", chr(code))) != chr(code) and nfkc.isascii()
}
_SUSPECT: Final = re.compile(r"[\ufffd\u00a1-\u00ff\uac00-\ud7a3\ud800-\udfff\ue000-\uf8ff]")


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
        # Most replies are NFKC, or are once their full-width punctuation is ASCII: the
        # quick check costs a twentieth of building the normal form again.
        s = text
        if not unicodedata.is_normalized("NFKC", s):
            s = s.translate(_TO_ASCII)  # 「，」→「,」: NFKC would give the same
            if not unicodedata.is_normalized("NFKC", s):
                s = unicodedata.normalize("NFKC", s)
        s = s.lower()
        if rules.fold_chars is None or rules.fold_chars.search(s):
            s = s.translate(rules.fold)
    if rules.pinyin and _LATIN_LETTER.search(s):
        s = _LATIN_RUN.sub(lambda m: _romanised(m.group(0), rules), s)
    if _WHITESPACE.search(s):
        s = _SPACE_BETWEEN_HAN.sub("", s)
    if rules.numeral_chars.search(s):
        s = _numerals_as_digits(s, rules)
    return s


def misdecoded(text: str) -> str | None:
    """Why `text` looks like GBK bytes decoded with the wrong codec, or None.

    The answer names the codec it was read with and, when the bytes can be put back,
    what they say, so an agent can read it; the reply itself is not read for a rating.
    """
    if text.isascii() or not _SUSPECT.search(text):
        return None  # the common case, decided in one C call
    if text.count(_REPLACEMENT) >= 2:
        return "the text has undecodable bytes (U+FFFD): GBK read as UTF-8?"
    if len(_LATIN1_HIGH.findall(text)) >= 2:
        for codec in ("latin-1", "cp1252"):
            repaired = _repaired(text, codec)
            if repaired is not None:
                return f"GBK read as Latin-1; the bytes say 「{repaired}」"
    if _UTF16_GARBAGE.search(text):
        repaired = _repaired(text, "utf-16-be", "surrogatepass")
        if repaired is not None:
            return f"GBK read as UTF-16; the bytes say 「{repaired}」"
    return None


def _repaired(text: str, codec: str, errors: str = "strict") -> str | None:
    """`text` encoded back with `codec` and read as GBK, when that gives Chinese."""
    try:
        repaired = text.encode(codec, errors).decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    han = sum(1 for ch in repaired if "\u4e00" <= ch <= "\u9fff")
    return repaired if han and han * 2 >= len(repaired.strip()) - han else None


def core_of(norm: str) -> str:
    """The reply without punctuation or spaces, for whole-reply checks (「T」「好的。」)."""
    return _CLAUSE_BREAK_RE.sub("", norm)


def clause_starts(norm: str) -> list[int]:
    """Start offsets of the clauses of a normalised reply, in order (always has 0)."""
    if not _CLAUSE_BREAK_RE.search(norm):
        return [0]  # one clause: most short replies
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
    """「三」「我选二」「选三吧」「二，不，一」「一还是二」 → scheme digits; 「一般」「十分满意」
    stay words."""
    core = core_of(s)
    digits = rules.numeral_digits
    lone = rules.numeral_lone.match(core)
    if lone:
        start, end = lone.span(1)
        return core[:start] + digits[lone.group(1)] + core[end:]
    s = rules.numeral_chosen.sub(lambda m: m.group(1) + digits[m.group(2)], s)
    s = rules.numeral_choice.sub(lambda m: digits[m.group(1)] + m.group(2) + digits[m.group(3)], s)
    if _CLAUSE_BREAK_RE.search(s):
        # A clause that is only a numeral answers on its own: 「二，不，一」.
        parts = re.split(f"({_CLAUSE_BREAK_RE.pattern})", s)
        for i in range(0, len(parts), 2):
            lone = rules.numeral_lone.match(parts[i])
            if lone:
                start, end = lone.span(1)
                parts[i] = parts[i][:start] + digits[lone.group(1)] + parts[i][end:]
        s = "".join(parts)
    return s
