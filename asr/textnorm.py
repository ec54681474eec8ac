"""Turning Vosk's Chinese output into text the reply-understanding core can read.

Vosk's Chinese models emit one token per lexicon word with spaces between them
(``我 很 满意``), and spell numbers in characters (``三``). The reply core was written for
SMS, where citizens type ``我很满意`` and ``3``. Two deterministic steps close the gap:

1. :func:`join_cjk`: drop the whitespace between two CJK characters (ideographs, kana,
   CJK punctuation, full-width forms), keep a single space anywhere else, so Latin words
   (``ok``, ``110 报警``) stay apart and Hangul, which is written with spaces, is untouched.
2. :func:`digits_for_reply`: write a numeral as a digit only where it answers the reply
   scheme (「回复1满意，2基本满意，3不满意」): a lone numeral (``三``, ``嗯三吧``) or one right
   after a choosing verb (``选三``, ``我选择二``, ``按一``, ``选第三个``). Everywhere else the
   characters stay: ``十分满意`` (very satisfied), ``一般`` (so-so), ``按一下`` (press it),
   ``一个警察`` are words, not answers.

Both are pure functions of the text, so a supervisor can always see why a call was read
as a given rating: the transcript keeps Vosk's raw text next to the normalised one.
"""

from __future__ import annotations

import re

# CJK radicals .. Yi, CJK symbols and punctuation, kana, bopomofo, ideographs (BMP and
# supplementary planes), compatibility ideographs, full-width forms. Hangul is excluded.
_CJK = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003134f"
)
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_WHITESPACE = re.compile(r"\s+")

# Numerals a citizen may say for an option. 幺 is how 1 is read out on the phone; 两 is
# the spoken 2. Only single options: the reply scheme has no answer above 9.
NUMERAL_DIGITS = {
    "零": "0",
    "〇": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_NUMERAL = "[" + "".join(NUMERAL_DIGITS) + "]"
# Fillers and sentence-final particles that may surround an answer without changing it.
_FILLER = "(?:嗯|呃|额|啊|哦|噢|唔|那个|就是)"
_PARTICLE = "[吧啊呀了嘛呢哦啦吗的]"
_CHOOSE = "(?:选择|选|按键?|回复|输入|答)"
_COUNTER = "[号个项]"
_LONE_ANSWER = re.compile(
    f"^{_FILLER}*(?:我?{_CHOOSE})?(第?)({_NUMERAL})({_COUNTER}?){_PARTICLE}*$"
)
# After a choosing verb inside a longer sentence: the numeral must end the clause (end of
# text, a non-CJK character, or a particle) so 按一下 / 选一个好的 stay words.
_CHOSEN = re.compile(f"({_CHOOSE})(第?)({_NUMERAL})(?={_COUNTER}?(?:$|{_PARTICLE}|[^{_CJK}]))")


def join_cjk(text: str) -> str:
    """Collapse whitespace, then remove the spaces between CJK characters."""
    text = _WHITESPACE.sub(" ", text).strip()
    return _SPACE_BETWEEN_CJK.sub("", text)


def digits_for_reply(text: str) -> str:
    """Write numerals that answer the reply scheme as digits (see the module docstring)."""
    lone = _LONE_ANSWER.match(text)
    if lone:
        start, end = lone.span(2)
        return text[:start] + NUMERAL_DIGITS[lone.group(2)] + text[end:]
    return _CHOSEN.sub(lambda m: m.group(1) + m.group(2) + NUMERAL_DIGITS[m.group(3)], text)


def normalize_utterance(raw: str, language: str) -> str:
    """Normalise one recognised utterance for ``language`` (a BCP 47 tag such as zh-CN).

    Unknown-word markers (``[unk]``) are dropped for every language; CJK spacing and
    reply digits apply to Chinese only.
    """
    words = [w for w in raw.split() if w != "[unk]"]
    text = " ".join(words)
    if language.lower().split("-")[0] in ("zh", "cmn", "yue"):
        text = digits_for_reply(join_cjk(text))
    return text
