"""Homophones and typos of the words that matter: 满衣, 馒意, 不瞒易 are 满意, 不满意.

Citizens type on pinyin keyboards: they spell ``manyi`` and pick the wrong character
of the same sound. Listing every such typo would never end, so the rules file names a
few target words ([homophones] targets) and pypinyin says which characters sound like
each of their syllables (tones ignored: the keyboard ignores them too). pypinyin ships
its dictionaries inside the wheel; nothing is fetched. It is consulted once, when the
rules are loaded; reading a reply is one compiled regex search.

A sound-alike is a typo only when it is not something else. A candidate span is taken
when all of these hold:

- it is not the target itself, and no character of it belongs to a word of two or more
  characters that the rules already know (「太慢一点」 keeps its 太慢);
- at least one character is the target's own (「满衣」「馒意」「不瞒易」), unless the span
  is the whole reply (「拉级」): two typos in a longer text are more often a real word;
- no numeral in it (「满一年」 is a full year), unless the span is the whole reply (「满一」);
- no word of the [homophones] ignore list overlaps it (「蛮意外」 is 蛮 + 意外).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# Tone marks off, and ü read as u, as keyboards type it (v or u).
_TONELESS: Final = str.maketrans(
    {ch: plain for plain, marked in {
        "a": "āáǎà", "e": "ēéěèê", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔùüǖǘǚǜ", "m": "ḿ", "n": "ńňǹ",
    }.items() for ch in marked}
)  # fmt: skip


@dataclass(frozen=True)
class Correction:
    """One typo found: where, what was typed, and the word it stands for."""

    start: int
    typed: str
    target: str


@dataclass(frozen=True, eq=False)
class Homophones:
    """Compiled sound-alike spans of the target words."""

    targets: tuple[str, ...]  # group i of `candidates` is targets[i]
    candidates: re.Pattern[str]
    ignore: re.Pattern[str] | None
    numerals: frozenset[str]

    def find(self, norm: str, core: str, known: Iterable[tuple[int, int]]) -> list[Correction]:
        """The typos in `norm`, left to right; `known` are spans of words already known."""
        found: list[Correction] = []
        search = self.candidates.search
        m = search(norm)
        if m is None:
            return found
        blocked = bytearray(len(norm))
        for start, end in known:
            if end - start > 1:
                blocked[start:end] = b"\x01" * (end - start)
        if self.ignore is not None:
            for hit in self.ignore.finditer(norm):
                blocked[hit.start() : hit.end()] = b"\x01" * (hit.end() - hit.start())
        while m is not None:
            start, end = m.span()
            target = self.targets[int((m.lastgroup or "t0")[1:])]
            if self._typo(norm[start:end], target, core, bytes(blocked[start:end])):
                found.append(Correction(start, norm[start:end], target))
                m = search(norm, end)
            else:
                m = search(norm, start + 1)
        return found

    def _typo(self, typed: str, target: str, core: str, blocked: bytes) -> bool:
        if any(blocked):
            return False
        whole = typed == core
        if not whole and all(a != b for a, b in zip(typed, target, strict=True)):
            return False
        return whole or not any(ch in self.numerals for ch in typed)


def build_homophones(
    targets: tuple[str, ...], ignore: tuple[str, ...], numerals: Iterable[str]
) -> Homophones:
    """Compile the targets with pypinyin's readings of every character it knows.

    Raises ValueError naming a target that pypinyin cannot read.
    """
    import pypinyin  # loaded only when a rules file asks for homophones
    from pypinyin.constants import PINYIN_DICT

    readings_of = []
    for target in targets:
        syllables = pypinyin.lazy_pinyin(target, style=pypinyin.Style.NORMAL, errors="ignore")
        if len(syllables) != len(target):
            raise ValueError(f"{target!r} has a character without a pinyin reading")
        readings_of.append([_toneless(s) for s in syllables])
    wanted = {s for syllables in readings_of for s in syllables}
    by_syllable: dict[str, set[str]] = {s: set() for s in wanted}
    for code, readings in PINYIN_DICT.items():
        for reading in readings.translate(_TONELESS).split(","):
            if reading in wanted:
                by_syllable[reading].add(chr(code))
    branches = []
    for i, (target, syllables) in enumerate(zip(targets, readings_of, strict=True)):
        classes = []
        for ch, syllable in zip(target, syllables, strict=True):
            sounds = by_syllable[syllable] | {ch}
            classes.append("[" + "".join(re.escape(c) for c in sorted(sounds)) + "]")
        branches.append(f"(?P<t{i}>(?!{re.escape(target)}){''.join(classes)})")
    # Longer targets first, so 「不瞒易」 is 不满意 rather than 不 + 满意.
    order = sorted(range(len(targets)), key=lambda i: -len(targets[i]))
    return Homophones(
        targets=targets,
        candidates=re.compile("|".join(branches[i] for i in order)),
        ignore=re.compile("|".join(map(re.escape, ignore))) if ignore else None,
        numerals=frozenset(numerals),
    )


def _toneless(reading: str) -> str:
    # pypinyin writes ü as v in its plain style (率 → lv): the same syllable as lǜ → lu.
    return reading.translate(_TONELESS).replace("v", "u")
