"""The labelled reply corpus (tests/data/replies_corpus.tsv), every row asserted.

Columns: text, rating, reasons ('-' = none, empty = not checked), opt_out (empty = 0),
praise (empty = not checked), note. ``\\n`` and ``\\t`` in the text stand for a newline
and a tab.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from sms.understand import Rating, load_rules, understand

CORPUS = Path(__file__).resolve().parent.parent / "data" / "replies_corpus.tsv"
MIN_ROWS = 400
MIN_ROWS_PER_CLASS = 40
MIN_ACCURACY = 0.98


@dataclass(frozen=True)
class Row:
    line: int
    text: str
    rating: Rating
    reasons: tuple[str, ...] | None
    opt_out: bool
    praise: bool | None


def _flag(value: str, line: int) -> bool | None:
    if value not in ("", "0", "1"):
        raise ValueError(f"{CORPUS.name}:{line}: flag {value!r} is not 0, 1 or empty")
    return None if value == "" else value == "1"


def read_corpus() -> list[Row]:
    """Every labelled row, with its line number for test ids and messages."""
    rows = []
    for number, raw in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), 1):
        if raw.startswith("#"):
            continue
        fields = raw.split("\t")
        if len(fields) != 6:
            raise ValueError(f"{CORPUS.name}:{number}: expected 6 tab-separated columns")
        text, rating, reasons, opt_out, praise, _note = fields
        rows.append(
            Row(
                line=number,
                text=text.replace("\\n", "\n").replace("\\t", "\t"),
                rating=Rating(rating),
                reasons=None
                if reasons == ""
                else ()
                if reasons == "-"
                else tuple(reasons.split(",")),
                opt_out=bool(_flag(opt_out, number)),
                praise=_flag(praise, number),
            )
        )
    return rows


ROWS = read_corpus()


def test_corpus_is_big_and_covers_every_class() -> None:
    assert len(ROWS) >= MIN_ROWS
    per_class = Counter(row.rating for row in ROWS)
    for rating in Rating:
        assert per_class[rating] >= MIN_ROWS_PER_CLASS, rating
    assert len({row.text for row in ROWS}) == len(ROWS), "a reply is listed twice"


def test_corpus_labels_use_the_taxonomy() -> None:
    known = set(load_rules().reason_labels)
    for row in ROWS:
        assert set(row.reasons or ()) <= known, f"line {row.line}: {row.reasons}"
    tagged = Counter(reason for row in ROWS for reason in row.reasons or ())
    assert set(tagged) == known, f"every reason is exercised; missing {known - set(tagged)}"
    assert sum(row.opt_out for row in ROWS) >= 15
    assert sum(row.praise is True for row in ROWS) >= 40


@pytest.mark.parametrize("row", ROWS, ids=[f"line{row.line}" for row in ROWS])
def test_corpus_row(row: Row) -> None:
    reading = understand(row.text)
    why = "; ".join(reading.explanation)
    assert reading.rating is row.rating, f"{row.text!r}: {why}"
    if row.reasons is not None:
        assert reading.reasons == row.reasons, f"{row.text!r}: {why}"
    assert reading.opt_out is row.opt_out, f"{row.text!r}: {why}"
    if row.praise is not None:
        assert reading.praise is row.praise, f"{row.text!r}: {reading.praise_words}"


def test_corpus_accuracy_per_class(capsys: pytest.CaptureFixture[str]) -> None:
    total: Counter[Rating] = Counter()
    right: Counter[Rating] = Counter()
    confused: Counter[tuple[Rating, Rating]] = Counter()
    for row in ROWS:
        got = understand(row.text).rating
        total[row.rating] += 1
        right[row.rating] += got is row.rating
        if got is not row.rating:
            confused[(row.rating, got)] += 1
    lines = [f"reply corpus: {len(ROWS)} replies"]
    for rating in Rating:
        share = right[rating] / total[rating]
        lines.append(f"  {rating.value:<20} {right[rating]:>4}/{total[rating]:<4} {share:7.2%}")
    overall = sum(right.values()) / len(ROWS)
    lines.append(f"  {'all':<20} {sum(right.values()):>4}/{len(ROWS):<4} {overall:7.2%}")
    lines.extend(f"  labelled {a.value}, read {b.value}: {n}" for (a, b), n in confused.items())
    with capsys.disabled():  # shown on every run, not only when the test fails
        print("\n" + "\n".join(lines))
    assert overall >= MIN_ACCURACY, "\n".join(lines)
    for rating in Rating:
        assert right[rating] / total[rating] >= MIN_ACCURACY, "\n".join(lines)
