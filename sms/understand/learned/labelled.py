"""The labelled reply sets: their one file format, and which may be learned from.

Tab-separated, ``#`` starts a comment, ``## `` names a section. Columns: text, rating,
reasons, opt_out, praise, then (tuning and held-out sets) kind and note; the main corpus
has a note only, its kind is the section the row sits in. tests/data/README.md tells
each set's story. The held-out sets are never trained or tuned on: `HELD_OUT` names
them so the trainer can refuse them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sms.understand.rules import Rating

# The sets live with the tests of a checkout (an installed package has none).
DATA: Final = Path(__file__).resolve().parents[3] / "tests" / "data"
CORPUS: Final = DATA / "replies_corpus.tsv"
TUNING: Final = DATA / "replies_tuning.tsv"
TUNING_R3: Final = DATA / "replies_tuning_r3.tsv"
TUNING_R4: Final = DATA / "replies_tuning_r4.tsv"
TUNING_R5: Final = DATA / "replies_tuning_r5.tsv"
TUNING_R6: Final = DATA / "replies_tuning_r6.tsv"
TUNING_R7: Final = DATA / "replies_tuning_r7.tsv"
TUNING_R8: Final = DATA / "replies_tuning_r8.tsv"
TUNING_R9: Final = DATA / "replies_tuning_r9.tsv"  # round 8, second part
TUNING_R10: Final = DATA / "replies_tuning_r10.tsv"  # round 9
TUNING_R11: Final = DATA / "replies_tuning_r11.tsv"  # round 9, second part
TUNING_R12: Final = DATA / "replies_tuning_r12.tsv"  # round 10
TUNING_R13: Final = DATA / "replies_tuning_r13.tsv"  # round 10, second part
TUNING_R14: Final = DATA / "replies_tuning_r14.tsv"  # round 10, third part
TUNING_R15: Final = DATA / "replies_tuning_r15.tsv"  # round 11
TUNING_R16: Final = DATA / "replies_tuning_r16.tsv"  # round 12
TUNING_R17: Final = DATA / "replies_tuning_r17.tsv"  # round 12, second part
TUNING_R18: Final = DATA / "replies_tuning_r18.tsv"  # round 14
HELDOUT: Final = DATA / "replies_heldout.tsv"  # v1: tuning data since round 2
HELDOUT_V2: Final = DATA / "replies_heldout_v2.tsv"
HELDOUT_V3: Final = DATA / "replies_heldout_v3.tsv"  # measured once, then tuning data
HELDOUT_V4: Final = DATA / "replies_heldout_v4.tsv"
HELDOUT_V5: Final = DATA / "replies_heldout_v5.tsv"
HELDOUT_V6: Final = DATA / "replies_heldout_v6.tsv"
HELDOUT_V7: Final = DATA / "replies_heldout_v7.tsv"
HELDOUT_V8: Final = DATA / "replies_heldout_v8.tsv"
HELDOUT_V9: Final = DATA / "replies_heldout_v9.tsv"
HELDOUT_V10: Final = DATA / "replies_heldout_v10.tsv"
HELDOUT_V11: Final = DATA / "replies_heldout_v11.tsv"
HELDOUT_V12: Final = DATA / "replies_heldout_v12.tsv"
HELDOUT_V13: Final = DATA / "replies_heldout_v13.tsv"
HELDOUT_V14: Final = DATA / "replies_heldout_v14.tsv"
HELDOUT_V15: Final = DATA / "replies_heldout_v15.tsv"
HELDOUT_V16: Final = DATA / "replies_heldout_v16.tsv"
HELDOUT_V17: Final = DATA / "replies_heldout_v17.tsv"
HELDOUT_V18: Final = DATA / "replies_heldout_v18.tsv"
HELDOUT_V19: Final = DATA / "replies_heldout_v19.tsv"
HELDOUT_V20: Final = DATA / "replies_heldout_v20.tsv"
HELDOUT_V21: Final = DATA / "replies_heldout_v21.tsv"
HELDOUT_V22: Final = DATA / "replies_heldout_v22.tsv"
# What the rules were written and tuned on, and the weigher is trained on.
TRAINING: Final = (
    CORPUS, TUNING, HELDOUT, HELDOUT_V3, TUNING_R3, TUNING_R4, TUNING_R5, TUNING_R6, TUNING_R7,
    TUNING_R8, TUNING_R9, TUNING_R10, TUNING_R11, TUNING_R12, TUNING_R13, TUNING_R14,
    TUNING_R15, TUNING_R16, TUNING_R17, TUNING_R18,
)  # fmt: skip
# Never tuned on, never trained on: what the reader is measured on.
HELD_OUT: Final = frozenset(
    p.name
    for p in (
        HELDOUT_V2, HELDOUT_V4, HELDOUT_V5, HELDOUT_V6, HELDOUT_V7, HELDOUT_V8, HELDOUT_V9,
        HELDOUT_V10, HELDOUT_V11, HELDOUT_V12, HELDOUT_V13, HELDOUT_V14, HELDOUT_V15,
        HELDOUT_V16, HELDOUT_V17, HELDOUT_V18, HELDOUT_V19, HELDOUT_V20, HELDOUT_V21,
        HELDOUT_V22,
    )
)  # fmt: skip


_NOT_TEXT: Final = re.compile(r"[\s,.!?;:~\-，。！？；：、…～·]+")


def bare(text: str) -> str:
    """A reply without spaces, punctuation and case: two replies that differ only in
    those are the same reply (for keeping held-out text out of what is learned from)."""
    return _NOT_TEXT.sub("", text).lower()


def held_out_texts() -> frozenset[str]:
    """The bare text of every reply of every held-out set present."""
    paths = (DATA / name for name in sorted(HELD_OUT))
    return frozenset(bare(row.text) for path in paths if path.exists() for row in read_rows(path))


@dataclass(frozen=True)
class Row:
    """One labelled reply."""

    path: Path
    line: int
    text: str
    rating: Rating
    reasons: tuple[str, ...] | None  # None: not checked
    opt_out: bool
    praise: bool | None  # None: not checked
    kind: str

    @property
    def id(self) -> str:
        """A short test id: the file's stem and the line."""
        return f"{self.path.stem.removeprefix('replies_')}:{self.line}"


def _flag(value: str, where: str) -> bool | None:
    if value not in ("", "0", "1"):
        raise ValueError(f"{where}: flag {value!r} is not 0, 1 or empty")
    return None if value == "" else value == "1"


def read_rows(path: Path) -> list[Row]:
    """Every labelled row of one file, with its line number for test ids and messages."""
    rows = []
    section = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("## "):
            section = raw[3:].strip()
        if raw.startswith("#") or not raw:
            continue
        fields = raw.split("\t")
        where = f"{path.name}:{number}"
        if len(fields) == 6:
            text, rating, reasons, opt_out, praise, _note = fields
            kind = section
        elif len(fields) == 7:
            text, rating, reasons, opt_out, praise, kind, _note = fields
        else:
            raise ValueError(f"{where}: expected 6 or 7 tab-separated columns")
        rows.append(
            Row(
                path=path,
                line=number,
                text=text.replace("\\n", "\n").replace("\\t", "\t"),
                rating=Rating(rating),
                reasons=None
                if reasons == ""
                else ()
                if reasons == "-"
                else tuple(reasons.split(",")),
                opt_out=bool(_flag(opt_out, where)),
                praise=_flag(praise, where),
                kind=kind,
            )
        )
    return rows
