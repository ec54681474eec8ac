"""Loading the spelling tables of the rules file: one spelling for each word.

[traditional] and [variants] fold characters (滿 → 满, 冇 → 没), [pinyin] and [english]
turn Latin words into the Chinese words the rules know (「bu manyi」, 「not happy」),
[numerals] turn numerals that answer the scheme into digits (选三 → 选3), and
[homophones] names the words whose sound-alike typos are corrected (满衣 → 满意).
`sms.understand.text` and `sms.understand.homophone` apply them.
"""

from __future__ import annotations

import re
from typing import Final

from sms.understand.homophone import Homophones, build_homophones
from sms.understand.rules import HAN
from sms.understand.table import Table

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
    return romanised


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
    t.only("targets", "ignore")
    targets = t.strings("targets", required=False)
    if not targets:
        return None
    for i, word in enumerate(targets):
        if not re.fullmatch(f"[{HAN}]{{2,3}}", word):
            raise t.fail(f"targets[{i}]", f"{word!r}: a target is 2 or 3 Chinese characters")
    try:
        return build_homophones(targets, t.strings("ignore", required=False), numerals)
    except ValueError as exc:
        raise t.fail("targets", str(exc)) from None
