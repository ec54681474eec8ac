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

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
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


# Each syllable of a target word gets one code point from plane 15's private use area
# (never typed in an SMS), so a span is spelled in syllables by one str.translate and
# compared with a target's spelling. Candidate spans are found around the target's own
# characters (one regex search), so a reply without any of them costs almost nothing.
_FIRST_CODE: Final = 0xF0000
# Degree words that may stand between a negator and the word it negates (不太满意).
_DEGREE: Final = frozenset("太很大够怎么咋是那")


@dataclass(frozen=True, eq=False)
class Homophones:
    """Compiled sound-alike spans of the target words."""

    sounds: Mapping[int, str]  # str.translate table: character → its syllable's code
    spelled: Mapping[str, str]  # a target spelled in codes → the target
    # A typo keeps at least one of the target's own characters (「满衣」「馒意」「不瞒易」):
    # each such character → (target, where it stands in the target), longer targets first.
    anchors: Mapping[str, tuple[tuple[str, int], ...]]
    anchor: re.Pattern[str]  # any anchor character
    targets: frozenset[str]
    alike: Mapping[str, tuple[frozenset[str], ...]]  # per target: the characters of each sound
    ignore: re.Pattern[str] | None
    numerals: frozenset[str]
    # Targets also looked for right before a rating word the reply spells right, as the
    # negator is (「鸡本满意」「几本满意」 are 基本满意): [homophones] before_ratings.
    before_ratings: tuple[str, ...] = ()
    # Characters that sound like a one-character degree word ([homophones] degree_alike:
    # 很, 挺): 「狠满意」「停满意的」 are 很满意, 挺满意的, not a garbled negator.
    degree_alike: frozenset[str] = frozenset()

    def find(self, norm: str, core: str, known: Iterable[tuple[int, int]]) -> list[Correction]:
        """The typos in `norm`, left to right; `known` are spans of words already known."""
        found: list[Correction] = []
        blocked: bytearray | None = None
        if 1 < len(core) <= 3 and norm.strip() == core and core not in self.targets:
            target = self.spelled.get(core.translate(self.sounds))  # 「拉级」: the whole reply
            if target is not None:
                blocked = self._blocked(norm, known)
                start = norm.index(core)
                if self._typo(core, target, core, bytes(blocked[start : start + len(core)])):
                    return [Correction(start, core, target)]
        hit = self.anchor.search(norm)
        if hit is None:
            return found
        taken = bytearray(len(norm))  # found typos do not overlap
        anchors, alike = self.anchors, self.alike
        while hit is not None:
            i = hit.start()
            hit = self.anchor.search(norm, i + 1)
            for target, offset in anchors[norm[i]]:
                start = i - offset
                if start < 0:
                    continue
                typed = norm[start : start + len(target)]
                if typed == target or len(typed) < len(target) or taken[start] or taken[i]:
                    continue
                sets = alike[target]  # targets have 2 or 3 characters: no loop
                if typed[0] not in sets[0] or typed[1] not in sets[1]:
                    continue
                if len(sets) > 2 and typed[2] not in sets[2]:
                    continue
                if blocked is None:
                    blocked = self._blocked(norm, known)
                if self._typo(typed, target, core, bytes(blocked[start : start + len(target)])):
                    found.append(Correction(start, typed, target))
                    taken[start : start + len(target)] = b"\x01" * len(target)
                    break
        if len(found) > 1:
            found.sort(key=_start)
        return found

    def negator_before(self, norm: str, start: int, end: int) -> Correction | None:
        """A negator typed as a sound-alike right before a word (「步满意」「埠满意」 are
        不满意): the word itself is read, so the span-wide search above never sees it.
        Taken only when the negated word is a target too, the character is not the
        target's own, and no ignored word (全部, 部分) covers it."""
        word = norm[start:end]
        at = start - 1
        while at > 0 and norm[at] in _DEGREE:
            at -= 1  # 「布太满意」: a degree word may stand between (不太满意)
        if at < 0:
            return None
        for target in self.targets:
            if len(target) == len(word) + 1 and target.endswith(word):
                ch = norm[at]
                if ch == target[0] or ch not in self.alike[target][0]:
                    break
                if self.ignore is not None:
                    for hit in self.ignore.finditer(norm, max(0, at - 2), at + 2):
                        if hit.start() <= at < hit.end():
                            return None
                typed = norm[at:end]
                return Correction(at, typed, target[0] + typed[1:])
        return self._prefix_before(norm, start)

    def _prefix_before(self, norm: str, start: int) -> Correction | None:
        """A `before_ratings` target typed as a sound-alike right before a rating word,
        keeping one of its own characters. The ignore list does not apply here: before
        满意, 几本 is no count of books."""
        for target in self.before_ratings:
            at = start - len(target)
            if at < 0:
                continue
            typed = norm[at:start]
            if typed == target or all(a != b for a, b in zip(typed, target, strict=True)):
                continue
            if all(ch in sounds for ch, sounds in zip(typed, self.alike[target], strict=True)):
                return Correction(at, typed, target)
        return None

    def _blocked(self, norm: str, known: Iterable[tuple[int, int]]) -> bytearray:
        """Characters that belong to a known word of 2+ characters or an ignored word."""
        blocked = bytearray(len(norm))
        for start, end in known:
            if end - start > 1:
                blocked[start:end] = b"\x01" * (end - start)
        if self.ignore is not None:
            for hit in self.ignore.finditer(norm):
                blocked[hit.start() : hit.end()] = b"\x01" * (hit.end() - hit.start())
        return blocked

    def _typo(self, typed: str, target: str, core: str, blocked: bytes) -> bool:
        if any(blocked):
            return False
        whole = typed == core
        if not whole and all(a != b for a, b in zip(typed, target, strict=True)):
            return False
        return whole or not any(ch in self.numerals for ch in typed)


def build_homophones(
    targets: tuple[str, ...],
    ignore: tuple[str, ...],
    numerals: Iterable[str],
    before_ratings: tuple[str, ...] = (),
    degree_alike: tuple[str, ...] = (),
) -> Homophones:
    """Compile the targets with pypinyin's readings of every character it knows.

    A target character is read with its first (most common) reading. Raises ValueError
    naming a target that pypinyin cannot read.
    """
    readings = pinyin_readings()
    readings_of = [_syllables(target, readings) for target in targets]
    codes: dict[str, str] = {}
    for syllables in readings_of:
        for syllable in syllables:
            codes.setdefault(syllable, chr(_FIRST_CODE + len(codes)))
    sounds: dict[int, str] = {}
    table = sorted(readings.items())
    # Every character's readings made toneless in one C call over the whole table (one
    # call per character, 41k of them, was a fifth of loading the rules).
    toneless = _toneless("\n".join(known for _, known in table)).split("\n")
    for (code, _), known in zip(table, toneless, strict=True):
        for reading in known.split(","):
            if reading in codes:
                sounds.setdefault(code, codes[reading])  # a heteronym: its first target sound
    degree_sounds = {_syllables(word, readings)[0] for word in degree_alike}
    like_degree = frozenset(
        chr(code)
        for (code, _), known in zip(table, toneless, strict=True)
        if not degree_sounds.isdisjoint(known.split(","))
    )
    spelled: dict[str, str] = {}
    anchors: dict[str, list[tuple[str, int]]] = {}
    by_code: dict[str, set[str]] = {}
    for code, sound in sounds.items():
        by_code.setdefault(sound, set()).add(chr(code))
    # Longer targets first, so 「不瞒易」 is 不满意 rather than 不 + 满意.
    for target, syllables in sorted(
        zip(targets, readings_of, strict=True), key=lambda t: -len(t[0])
    ):
        for ch, syllable in zip(target, syllables, strict=True):
            sounds[ord(ch)] = codes[syllable]  # the target's own characters, whatever else
        spelled.setdefault("".join(codes[s] for s in syllables), target)
        for k, ch in enumerate(target):
            anchors.setdefault(ch, []).append((target, k))
    return Homophones(
        sounds=sounds,
        spelled=spelled,
        anchors={ch: tuple(hits) for ch, hits in anchors.items()},
        anchor=re.compile("[" + "".join(re.escape(ch) for ch in sorted(anchors)) + "]"),
        targets=frozenset(targets),
        alike={
            target: tuple(
                frozenset(by_code[codes[s]] | {ch}) for ch, s in zip(target, syllables, strict=True)
            )
            for target, syllables in zip(targets, readings_of, strict=True)
        },
        ignore=re.compile("|".join(map(re.escape, ignore))) if ignore else None,
        numerals=frozenset(numerals),
        before_ratings=before_ratings,
        degree_alike=like_degree,
    )


def _start(correction: Correction) -> int:
    return correction.start


def _syllables(target: str, readings: Mapping[int, str]) -> list[str]:
    """A target's syllables, each character with its first (most common) reading."""
    syllables = []
    for ch in target:
        known = readings.get(ord(ch))
        if known is None:
            raise ValueError(f"{target!r}: {ch!r} has no pinyin reading")
        syllables.append(_toneless(known.split(",")[0]))
    return syllables


def pinyin_readings() -> Mapping[int, str]:
    """pypinyin's table of character readings (code point → "mǎn,mèn"): the data file of
    its module `pypinyin.pinyin_dict` (else that module) loaded on its own: importing the
    whole package would also load its phrase dictionary, ~50 MB of lists that every
    garbage collection of the gateway process would then walk. The table ships in the
    wheel; nothing is fetched."""
    spec = importlib.util.find_spec("pypinyin")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("pypinyin is not installed: it reads homophones (pip install pypinyin)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = folder / "pinyin_dict.json"
    if data.is_file():
        # The data file that module reads, read here in C: the module turns its 41k keys
        # into numbers one by one in Python, a third of loading the table.
        raw = json.loads(data.read_text(encoding="utf-8"))
        return dict(zip(map(int, raw), raw.values(), strict=True))
    path = folder / "pinyin_dict.py"
    module_spec = importlib.util.spec_from_file_location("_minyi_pinyin_dict", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"pypinyin has no readings table at {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    table: Mapping[int, str] = module.pinyin_dict
    return table


def _toneless(reading: str) -> str:
    # pypinyin writes ü as v in its plain style (率 → lv): the same syllable as lǜ → lu.
    return reading.translate(_TONELESS).replace("v", "u")
