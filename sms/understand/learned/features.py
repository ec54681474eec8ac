"""What the learned weigher sees of a reply: its characters and what the rules found.

Two kinds of feature, both plain strings so a weight file can name them:

- character 2- and 3-grams of the normalised, typo-corrected text, with clause breaks
  folded to one mark and long digit runs to one (a phone number is not a rating), and
  the text's start and end marked (「^满意」 and 「满意$」 differ from a 满意 mid-story);
- the rules' findings: the rating and confidence `decide` reached, every cue, each
  signal's strength and rating (and whether it was the last one, small, of manners),
  boundaries, doubts of the safety net, questions, opt-outs and non-answers.

So the weigher learns how much the rules' evidence is worth beside words the rules do
not list, and the rules stay the readable part: it never sees anything they cannot.
"""

from __future__ import annotations

import re
from operator import add
from typing import Final

from sms.understand.findings import TIER_OPINION, TIER_PHRASE, TIER_RATING, Scan
from sms.understand.rules import Confidence, Rating
from sms.understand.text import CLAUSE_BREAKS

_BREAK: Final = "|"
# Every clause break becomes one mark and a question mark 「？」 (a question changes what
# the words around it mean); runs of marks become one, by a regex with no callback.
_BREAKS: Final = re.compile(
    "[" + "".join(re.escape(ch) for ch in sorted(CLAUSE_BREAKS - {"?"})) + "]"
)
_RUNS: Final = re.compile(r"\|*？[|？]*|\|{2,}")
_DIGIT_RUN: Final = re.compile("[0-9]{3,}")
# A long story's n-grams beyond this many characters add little and cost time.
MAX_CHARS: Final = 240


def text_of(norm: str) -> str:
    """The text the n-grams are taken from: breaks folded, a question mark kept apart,
    a long number one mark (a phone number is not a rating), the ends marked."""
    # A regex and a replace, not str.translate: translate looks every character up in
    # its table, and a Chinese one is missing from it (a KeyError raised and cleared per
    # character). The same text: every break but "?" → "|", then "?" → "？".
    s = _BREAKS.sub(_BREAK, norm[:MAX_CHARS]).replace("?", "？")
    if _BREAK in s or "？" in s:
        s = _RUNS.sub(_run, s)
    return "^" + _DIGIT_RUN.sub("#", s).strip(_BREAK) + "$"


def _run(m: re.Match[str]) -> str:
    return "？" if "？" in m.group() else _BREAK


def ngrams(norm: str) -> list[str]:
    """Character 2- and 3-grams of the folded text (a repeated one counts again).
    Single characters are left out: on the tuning sets they added nothing the pairs
    did not say (5-fold CV, 91.3 % with them, 91.6 % without) and cost a third of the
    lookups."""
    s = text_of(norm)
    pairs = list(map(add, s, s[1:]))  # map over the characters: the loop runs in C
    return [*pairs, *map(add, pairs, s[2:])]


# The findings' feature names, made once (building them per reply was half its cost).
_TIERS: Final = (TIER_RATING, TIER_OPINION, TIER_PHRASE)
_SIGNAL: Final = {(t, r): f"s={t}/{r.value}" for t in _TIERS for r in Rating}
_LAST: Final = {(t, r): f"sl={t}/{r.value}" for t in _TIERS for r in Rating}
_FIRST: Final = {(t, r): f"sf={t}/{r.value}" for t in _TIERS for r in Rating}
_SMALL: Final = {r: f"sm={r.value}" for r in Rating}
_CUE: Final = "q="
_COUNT: Final = tuple(f"sn={n}" for n in range(5))
_HEAD: Final = {
    (r.value, c.value): (f"r={r.value}", f"c={c.value}", f"rc={r.value}/{c.value}")
    for r in Rating
    for c in Confidence
}


def findings(found: Scan, rating: str, confidence: str, cues: tuple[str, ...]) -> list[str]:
    """The rules' evidence as feature names (prefixed so no n-gram collides: they
    start with an ASCII letter and ``=``, a clause break in the folded text)."""
    # map() and guarded comprehensions: on Python 3.11 a comprehension is a function
    # made and called each time, even over an empty list.
    out = [*_HEAD[rating, confidence], *map(_CUE.__add__, cues)]
    signals = found.signals
    for s in signals:
        out.append(_SIGNAL[s.tier, s.rating])
        if s.mild or s.softened:
            out.append(_SMALL[s.rating])
        if s.courtesy:
            out.append("sc=courtesy")
    if signals:
        out.append(_LAST[signals[-1].tier, signals[-1].rating])
        out.append(_FIRST[signals[0].tier, signals[0].rating])
    out.append(_COUNT[min(len(signals), 4)])
    if found.boundaries:
        out += ["b=" + b.kind for b in found.boundaries]
    if found.doubts:
        out += ["d=" + kind for _, _, kind in found.doubts]
    if found.asks is not None or found.questioning:
        out.append("x=asks")
    if found.opt_out:
        out.append("x=opt_out")
    if found.non_answer_hints:
        out.append("x=non_answer")
    if found.acknowledgement is not None:
        out.append("x=ack")
    if found.undecided is not None:
        out.append("x=undecided")
    if found.digits_taken_back is not None:
        out.append("x=taken_back")
    if found.other_reasons:
        out.append("x=other_party")
    return list(dict.fromkeys(out))
