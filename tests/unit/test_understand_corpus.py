"""The labelled reply corpus (tests/data/replies_corpus.tsv), every row asserted.

Columns: text, rating, reasons ('-' = none, empty = not checked), opt_out (empty = 0),
praise (empty = not checked), note. ``\\n`` and ``\\t`` in the text stand for a newline
and a tab.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sms.understand import Rating, load_rules, understand
from sms.understand.learned.labelled import CORPUS, Row, read_rows

MIN_ROWS = 400
MIN_ROWS_PER_CLASS = 40
MIN_ACCURACY = 0.98


ROWS = read_rows(CORPUS)
# Rows the learned weigher doubts since a retraining: read as no rating and asked again
# (a clarifying SMS), never closed on a wrong rating. Round 12's weigher gave
# 「出警一点都不慢」 an 18 % chance of unsatisfied (出警 and 都不 lean that way in the data),
# over the 15 % at which a positive reading is withheld; round 13's, the mean of three
# seeds' (learned/train.py), gives it 10 % and 「人民的好警察」 16 %; round 14's (two more
# training batches, one of them of negations) 19 %, 「不失望」 16 % and 「人民的好警察」 6 %;
# round 16's, five seeds' mean, 「出警一点都不慢」 12 % (read right, asked again) and
# 「不失望」 19 %. Round 19's `withhold` of 0.1 (was 0.15, chosen by cross-validation with
# the hidden layer) withholds 「出警一点都不慢」 (12 %) and 「人民的好警察」 (11 %) again.
ASKED_AGAIN = {"不失望", "出警一点都不慢", "人民的好警察"}


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
    if row.text in ASKED_AGAIN and reading.rating is not row.rating:
        assert reading.rating is Rating.UNKNOWN and reading.clarify, f"{row.text!r}: {why}"
        return
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
