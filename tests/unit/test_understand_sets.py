"""Issue 11 on the three labelled sets: never an unsatisfied citizen read as satisfied.

The main corpus's own tests are in test_understand_corpus.py. Here every set is held to
the asymmetric rule (no unsatisfied reply read as satisfied or basically satisfied) and
to its accuracy floor; the held-out set (tests/data/replies_heldout.tsv, written before
the rules were changed and never tuned on) is what the reader does on new text.
"""

from __future__ import annotations

import re

import pytest

from asr.textnorm import normalize_utterance
from sms.understand import understand
from tests.labelled_replies import CORPUS, HELDOUT, TUNING, Row, read_rows, score

TUNING_ROWS = read_rows(TUNING)
HELDOUT_ROWS = read_rows(HELDOUT)
# The issue's targets, measured on replies the rules were not tuned on.
TARGET_ACCURACY = 0.95
# What the reader reaches on the held-out set now (93.3 %, 7 dangerous readings): a
# floor against regressions until the target is met.
HELDOUT_FLOOR_ACCURACY = 0.93
HELDOUT_FLOOR_DANGEROUS = 7
MIN_LABELLED = 1500  # main corpus and tuning set together
_HAN_PAIR = re.compile("([\u3400-\u9fff])(?=[\u3400-\u9fff])")


def _dangerous(rows: list[Row]) -> list[str]:
    return [f"{row.id} {row.text}: {r.rating}" for row, r in score(rows).dangerous]


def test_the_labelled_corpus_has_1500_replies_and_every_kind_is_held_out() -> None:
    assert len(read_rows(CORPUS)) + len(TUNING_ROWS) >= MIN_LABELLED
    kinds = {row.kind for row in HELDOUT_ROWS}
    assert {
        "sarcasm", "negation", "contrast", "other_party", "self_correction", "homophone",
        "dialect", "complaint", "english", "question", "long_story", "opt_out",
        "service_110", "service_traffic", "service_window", "service_fraud", "transcript",
    } <= kinds  # fmt: skip
    assert not {row.text for row in HELDOUT_ROWS} & {row.text for row in TUNING_ROWS}


def test_no_unsatisfied_reply_of_the_main_corpus_is_read_as_satisfied() -> None:
    assert _dangerous(read_rows(CORPUS)) == []


def test_no_unsatisfied_reply_of_the_tuning_set_is_read_as_satisfied() -> None:
    assert _dangerous(TUNING_ROWS) == []


def test_tuning_set_accuracy_and_opt_out() -> None:
    result = score(TUNING_ROWS)
    assert result.accuracy >= 0.98, result.table("tuning")
    assert result.opt_out_wrong == []


def test_held_out_set_stays_above_its_floor(capsys: pytest.CaptureFixture[str]) -> None:
    result = score(HELDOUT_ROWS)
    with capsys.disabled():  # shown on every run: the honest figure
        print("\n" + result.table("held-out (never tuned on)"))
    assert result.accuracy >= HELDOUT_FLOOR_ACCURACY
    assert len(result.dangerous) <= HELDOUT_FLOOR_DANGEROUS
    assert result.opt_out_wrong == []


@pytest.mark.xfail(strict=True, reason="issue 11 target not met yet: see the held-out table")
def test_held_out_set_meets_the_issue_targets() -> None:
    result = score(HELDOUT_ROWS)
    assert _dangerous(HELDOUT_ROWS) == []
    assert result.accuracy >= TARGET_ACCURACY


def test_spaces_between_chinese_characters_change_nothing() -> None:
    # Vosk writes one token per word with spaces between them (我 很 满意).
    for row in [*read_rows(CORPUS), *TUNING_ROWS, *HELDOUT_ROWS]:
        spaced = _HAN_PAIR.sub(r"\1 ", row.text)
        if spaced == row.text:
            continue
        got, want = understand(spaced).to_json(), understand(row.text).to_json()
        assert {**got, "text": ""} == {**want, "text": ""}, row.id


@pytest.mark.parametrize(
    "row",
    [row for row in TUNING_ROWS + HELDOUT_ROWS if row.kind == "transcript"],
    ids=lambda row: row.id,
)
def test_a_vosk_transcript_reads_the_same_through_the_asr_normaliser(row: Row) -> None:
    # The ASR worker reads normalize_utterance(vosk text); the labels are on the raw text.
    through_asr = understand(normalize_utterance(row.text, "zh-CN"))
    assert through_asr.rating is understand(row.text).rating, row.text
