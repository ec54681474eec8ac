"""Issue 11 on the labelled sets: never an unsatisfied citizen read as satisfied.

The main corpus's own tests are in test_understand_corpus.py. Here every set is held to
the asymmetric rule and to an accuracy floor. The sets the rules were tuned on and the
weigher is trained on (corpus, tuning, v1, v3, round 3's tuning set) read no unsatisfied
reply as satisfied or basically satisfied, but one of round 3's 14,230, named below. The
held-out sets (v2, v4, v5, v6: written before the changes they measure, never tuned or
trained on) are what the reader does on new text: issue 11 asks 0 there too, and the
reader does not reach it — their counts are asserted not to grow (tests/data/README.md
has the figures and the story of each set).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from asr.textnorm import normalize_utterance
from sms.understand import default_rules, understand
from sms.understand.learned.labelled import bare
from sms.understand.text import misdecoded, normalize
from tests.labelled_replies import (
    CORPUS,
    HELDOUT,
    HELDOUT_V2,
    HELDOUT_V3,
    HELDOUT_V4,
    HELDOUT_V5,
    HELDOUT_V6,
    HELDOUT_V7,
    HELDOUT_V8,
    HELDOUT_V9,
    HELDOUT_V10,
    HELDOUT_V11,
    HELDOUT_V12,
    HELDOUT_V13,
    HELDOUT_V14,
    HELDOUT_V15,
    HELDOUT_V16,
    HELDOUT_V17,
    HELDOUT_V18,
    HELDOUT_V19,
    HELDOUT_V20,
    HELDOUT_V21,
    HELDOUT_V22,
    SETS,
    TUNING,
    TUNING_R3,
    TUNING_R4,
    TUNING_R5,
    TUNING_R6,
    TUNING_R7,
    TUNING_R8,
    TUNING_R9,
    TUNING_R10,
    TUNING_R11,
    TUNING_R12,
    TUNING_R13,
    TUNING_R14,
    TUNING_R15,
    TUNING_R16,
    TUNING_R17,
    TUNING_R18,
    Row,
    Score,
    read_rows,
    score,
)

TUNING_ROWS = read_rows(TUNING)
R3_ROWS = read_rows(TUNING_R3)
R4_ROWS = read_rows(TUNING_R4)
R5_ROWS = read_rows(TUNING_R5)
R6_ROWS = read_rows(TUNING_R6)
R7_ROWS = read_rows(TUNING_R7)
R8_ROWS = read_rows(TUNING_R8)
R9_ROWS = read_rows(TUNING_R9)
R10_ROWS = read_rows(TUNING_R10)
R11_ROWS = read_rows(TUNING_R11)
R12_ROWS = read_rows(TUNING_R12)
R13_ROWS = read_rows(TUNING_R13)
R14_ROWS = read_rows(TUNING_R14)
R15_ROWS = read_rows(TUNING_R15)
R16_ROWS = read_rows(TUNING_R16)
R17_ROWS = read_rows(TUNING_R17)
R18_ROWS = read_rows(TUNING_R18)
V1_ROWS = read_rows(HELDOUT)
V2_ROWS = read_rows(HELDOUT_V2)
V3_ROWS = read_rows(HELDOUT_V3)  # measured once (75.1 %, 2 dangerous), tuning data since
V4_ROWS = read_rows(HELDOUT_V4)
V5_ROWS = read_rows(HELDOUT_V5)
V6_ROWS = read_rows(HELDOUT_V6)
V7_ROWS = read_rows(HELDOUT_V7)
V8_ROWS = read_rows(HELDOUT_V8)
V9_ROWS = read_rows(HELDOUT_V9)
V10_ROWS = read_rows(HELDOUT_V10)
V11_ROWS = read_rows(HELDOUT_V11)
V12_ROWS = read_rows(HELDOUT_V12)
V13_ROWS = read_rows(HELDOUT_V13)
V14_ROWS = read_rows(HELDOUT_V14)
V15_ROWS = read_rows(HELDOUT_V15)
V16_ROWS = read_rows(HELDOUT_V16)
V17_ROWS = read_rows(HELDOUT_V17)
V18_ROWS = read_rows(HELDOUT_V18)
V19_ROWS = read_rows(HELDOUT_V19)
V20_ROWS = read_rows(HELDOUT_V20)
V21_ROWS = read_rows(HELDOUT_V21)
V22_ROWS = read_rows(HELDOUT_V22)
# Never tuned on: a failure names how many, never which (reading a held-out set's misses
# burns it; tests/data/README.md).
HELD_OUT = (
    HELDOUT_V2, HELDOUT_V4, HELDOUT_V5, HELDOUT_V6, HELDOUT_V7, HELDOUT_V8, HELDOUT_V9, HELDOUT_V10,
    HELDOUT_V11, HELDOUT_V12, HELDOUT_V13, HELDOUT_V14, HELDOUT_V15, HELDOUT_V16,
    HELDOUT_V17, HELDOUT_V18, HELDOUT_V19, HELDOUT_V20, HELDOUT_V21, HELDOUT_V22,
)  # fmt: skip
TUNED_ON = (
    CORPUS, TUNING, HELDOUT, HELDOUT_V3, TUNING_R3, TUNING_R4, TUNING_R5, TUNING_R6, TUNING_R7,
    TUNING_R8, TUNING_R9, TUNING_R10, TUNING_R11, TUNING_R12, TUNING_R13,
    TUNING_R14,
    TUNING_R15,
    TUNING_R16,
    TUNING_R17,
    TUNING_R18,
)  # fmt: skip
# The accuracy target, measured on replies the reader was not tuned on.
TARGET_ACCURACY = 0.95
# Floors against regressions: a little under what the reader reaches now.
FLOORS = {
    # Round 12's retraining: one reply of the corpus, of v1 and of v3 each is now asked
    # again (unclear, never closing) where it was read right: the weigher's doubt moved.
    # Round 14's: a second reply of the corpus, 「出警一点都不慢」, likewise (and 「不失望」
    # since round 12); both are asked again, withheld as `unknown`. Round 16's five seeds
    # read 「出警一点都不慢」 right again (asked again). Round 19's `withhold` of 0.1 withholds
    # it and 「人民的好警察」 (asked again, as `unknown`): 640 of 643.
    CORPUS: 0.995,
    TUNING: 0.99,
    HELDOUT: 0.997,
    HELDOUT_V3: 0.994,
    TUNING_R3: 0.96,
    TUNING_R4: 0.95,
    TUNING_R5: 0.95,
    TUNING_R6: 0.93,
    TUNING_R7: 0.95,
    TUNING_R8: 0.96,
    TUNING_R9: 0.93,
    TUNING_R10: 0.94,
    TUNING_R11: 0.93,
    TUNING_R12: 0.94,
    TUNING_R13: 0.93,
    TUNING_R14: 0.93,
    TUNING_R15: 0.94,
    TUNING_R16: 0.94,
    TUNING_R17: 0.93,
    TUNING_R18: 0.95,
    HELDOUT_V2: 0.96,
    HELDOUT_V4: 0.96,
    HELDOUT_V5: 0.94,
    HELDOUT_V6: 0.95,
    HELDOUT_V7: 0.96,
    HELDOUT_V8: 0.95,
    HELDOUT_V9: 0.95,
    HELDOUT_V10: 0.94,
    HELDOUT_V11: 0.90,
    HELDOUT_V12: 0.90,
    HELDOUT_V13: 0.93,
    HELDOUT_V14: 0.92,
    HELDOUT_V15: 0.93,
    HELDOUT_V16: 0.94,
    HELDOUT_V17: 0.96,
    HELDOUT_V18: 0.93,
    HELDOUT_V19: 0.90,
    HELDOUT_V20: 0.91,
    HELDOUT_V21: 0.90,
    HELDOUT_V22: 0.91,
}
# Unsatisfied replies read as (basically) satisfied on held-out text, as measured at the
# end of round 19: the 0 is NOT met there, and these must not grow. Each retraining
# of the weigher moves a few of them either way (tests/data/README.md): nothing was tuned
# for them. Round 16's five seeds (chosen by cross-validation before this was read) added
# one each to v6 and v22. Round 18's hidden layer (likewise chosen) took the total from 27
# to 25 (closing the survey: 5 to 2), with two more in v2 and v13, one more in v4 and v16.
# Round 19's review of the weigher's settings (likewise chosen) kept 25 and 2: one fewer
# in v6, one more in v9.
DANGEROUS_HELD_OUT = {
    HELDOUT_V2: 3, HELDOUT_V4: 1, HELDOUT_V5: 0, HELDOUT_V6: 2, HELDOUT_V7: 0,
    HELDOUT_V8: 1, HELDOUT_V9: 1, HELDOUT_V10: 2, HELDOUT_V11: 3, HELDOUT_V12: 0,
    HELDOUT_V13: 2, HELDOUT_V14: 1, HELDOUT_V15: 1, HELDOUT_V16: 2, HELDOUT_V17: 0,
    HELDOUT_V18: 3, HELDOUT_V19: 1, HELDOUT_V20: 1, HELDOUT_V21: 0, HELDOUT_V22: 1,
}  # fmt: skip
# Round 3's tuning set keeps two: 「3。更正前条1」 (更正 read as correcting to the 1 after
# it) and, since round 12's retraining, 「基本满意 不不不 不满意」 (the weigher lifts it to
# basically satisfied). Round 4's (9,317 replies) keeps two: 「满分💯 满分是100我给-1」 (the
# minus read, the sneer not) and applause alone (「👏👏👏精彩」, a label that is arguable).
# Round 5's keeps one: 「不满意，not 1」 (a lone 不 before a digit corrects to it: 「3 不 1」).
# Round 6's keeps 「no 满意」 (an English no before a Chinese word: no as 不 lost opt-outs).
# Round 10's first set keeps 「一般般，不咋中」 (Henan's 不中, not good: the weigher keeps
# the 一般般); its third 「一般，不对，比一般差点」 (a comparison the rules do not read). Round
# 11's keeps 「一般，甚至有点差」 (甚至 is no contrast to the rules). Round 12's second batch
# keeps 「没啥说的了」 (resigned, its writer says; 没啥说的 is praise to the rules and to
# most writers). Round 14's retraining added six, all `unclear` (asked again, never
# closing): 「认定结果就那样，对方关系硬」 (r6), 「民警态度好，就是案子没进展」 (r7: the weigher
# lifts it to basically satisfied, as in round 12), 「灭有处理好」 and 「挺好的，挺好的，只要不是我
# 的事你们都处理得挺好的」 (r8), "not that good tbh" (r10's second set) and 「不好意思说满意」
# (r18's own); 「给跪了，效率感人🙏」 (r10's first set) is read right again. Round 16's
# five seeds read both of r8's right, and 「没啥说的了」 is `unclear` now. All but
# 「3。更正前条1」, 「不满意，not 1」, 「👏👏👏精彩」, 「no 满意」 and the comparison are
# `unclear`. Round 18's weigher (a hidden layer beside the linear model, `lift` 0.8:
# fewer such readings out of fold, tests/data/README.md) lifts eight more, all `unclear`
# (asked again), and reads r8's two so again: 「非常满意，已经准备搬家了」 and 「冇乜满意」
# (r4), 「2，给你们留点面子」 (r5), 「满是意见」 and "Officer was nice but nothing was done"
# (r6), 「嘿嘿，挺好的，就是调解书上的字比事情办得认真」 (r18); 「3。更正前条1」 is `unclear`
# now. Four close the survey (five before): 「👏👏👏精彩」, 「no 满意」, 「不满意，not 1」 and the
# comparison. Round 19's settings (`lift` 0.65, `withhold` 0.1, `veto` 0.3) read
# 「灭有处理好」 (r8) right again: 21, the same four closing. The test names them all.
KNOWN_DANGEROUS = {
    TUNING_R3: 2, TUNING_R4: 4, TUNING_R5: 2, TUNING_R6: 4, TUNING_R7: 1, TUNING_R8: 1,
    TUNING_R12: 1, TUNING_R13: 1, TUNING_R14: 1, TUNING_R15: 1, TUNING_R17: 1, TUNING_R18: 2,
}  # fmt: skip
# Opt-outs read wrong where the rules were not written for them (as measured; not to grow).
OPT_OUT_WRONG = {
    TUNING_R3: 9,
    TUNING_R4: 17,
    TUNING_R5: 36,
    TUNING_R6: 30,
    TUNING_R7: 12,
    TUNING_R8: 7,
    TUNING_R9: 13,
    TUNING_R10: 14,
    TUNING_R11: 13,
    TUNING_R12: 8,
    TUNING_R13: 6,
    TUNING_R14: 9,
    TUNING_R15: 8,
    TUNING_R16: 11,
    TUNING_R17: 11,
    TUNING_R18: 3,
    HELDOUT_V2: 0,
    HELDOUT_V4: 0,
    HELDOUT_V5: 0,
    HELDOUT_V6: 0,
    HELDOUT_V7: 2,
    HELDOUT_V8: 0,
    HELDOUT_V9: 0,
    HELDOUT_V10: 3,
    HELDOUT_V11: 3,
    HELDOUT_V12: 1,
    HELDOUT_V13: 1,
    HELDOUT_V14: 0,
    HELDOUT_V15: 1,
    HELDOUT_V16: 1,
    HELDOUT_V17: 2,
    HELDOUT_V18: 3,
    HELDOUT_V19: 3,
    HELDOUT_V20: 4,
    HELDOUT_V21: 2,
    HELDOUT_V22: 4,
}
MIN_LABELLED = 1500  # the sets tuned on together
KINDS = {
    "sarcasm", "negation", "contrast", "other_party", "self_correction", "homophone",
    "dialect", "complaint", "english", "question", "long_story", "opt_out",
    "service_110", "service_traffic", "service_window", "service_fraud", "transcript",
}  # fmt: skip
_HAN_PAIR = re.compile("([\u3400-\u9fff])(?=[\u3400-\u9fff])")


@functools.cache
def _score(path: Path) -> Score:
    """Each set read once per run: two tests ask about every set (14,230 rows in r3)."""
    return score(read_rows(path))


def test_the_labelled_corpus_has_1500_replies_and_every_kind_is_held_out() -> None:
    assert sum(len(read_rows(path)) for path in TUNED_ON) >= MIN_LABELLED
    for rows in (V2_ROWS, V4_ROWS, V5_ROWS, V6_ROWS, R3_ROWS, R4_ROWS):
        assert KINDS <= {row.kind for row in rows}
    assert len(V2_ROWS) >= 400 and len(V4_ROWS) >= 170
    assert len(V5_ROWS) == len(V6_ROWS) == len(V7_ROWS) == len(V8_ROWS) == 476
    assert len(V9_ROWS) == len(V10_ROWS) == len(V11_ROWS) == len(V12_ROWS) == 476
    assert len(V13_ROWS) == len(V14_ROWS) == len(V15_ROWS) == len(V16_ROWS) == 476
    for rows in (V7_ROWS, V8_ROWS, V9_ROWS, V10_ROWS, V11_ROWS, V12_ROWS, V13_ROWS, V14_ROWS):
        assert KINDS <= {row.kind for row in rows}
    for rows in (V15_ROWS, V16_ROWS, R7_ROWS, V17_ROWS, V18_ROWS, R8_ROWS, R9_ROWS):
        assert KINDS <= {row.kind for row in rows}
    # v18's writers left three opt-outs short once the replies already in other sets went
    assert len(V17_ROWS) == 476 and len(V18_ROWS) == 473
    assert len(V19_ROWS) == len(V20_ROWS) == 476
    for rows in (V19_ROWS, V20_ROWS, R10_ROWS, R11_ROWS):
        assert KINDS <= {row.kind for row in rows}
    # v21 and v22 lost a few replies that round 10's second tuning set also held (and
    # had been read there): up to 28 of each kind
    assert len(V21_ROWS) == 472 and len(V22_ROWS) == 471
    newer = (R12_ROWS, R13_ROWS, R14_ROWS, R15_ROWS, R16_ROWS, R17_ROWS, R18_ROWS)
    for rows in (V21_ROWS, V22_ROWS, *newer):
        assert KINDS <= {row.kind for row in rows}


def test_no_held_out_text_is_in_the_data_tuned_on_since_it_was_written() -> None:
    # v2 and v4 share no text with any set tuned on; round 3's tuning set shares none
    # with any held-out set. v5 and v6 were written blind to the older sets and share
    # some short replies with them (「蛮意」「一般般啦」: 59 and 58, README): the weigher
    # never learns from those (test_understand_learned.py).
    tuned = {bare(row.text) for path in TUNED_ON for row in read_rows(path)}
    held = [{bare(row.text) for row in rows} for rows in (V2_ROWS, V4_ROWS, V5_ROWS, V6_ROWS)]
    assert not held[0] & tuned and not held[1] & tuned and not held[0] & held[1]
    r3 = {bare(row.text) for row in R3_ROWS + R4_ROWS + R5_ROWS + R6_ROWS}
    assert not r3 & set().union(*held)
    # Round 6's tuning set shares no text with any held-out set, v13 and v14 included.
    later = {bare(row.text) for rows in (V7_ROWS, V8_ROWS, V9_ROWS, V10_ROWS, V11_ROWS,
                                         V12_ROWS, V13_ROWS, V14_ROWS) for row in rows}  # fmt: skip
    assert not {bare(row.text) for row in R6_ROWS} & later
    # Round 7's shares none with any held-out set, v15 and v16 included, nor do v15 and v16
    # with any set tuned on.
    newest = {bare(row.text) for row in V15_ROWS + V16_ROWS}
    assert not {bare(row.text) for row in R7_ROWS} & (later | newest)
    assert not newest & tuned and not newest & later
    # v17 and v18 share none with any older set, held out or tuned on, nor with each other.
    v17, v18 = ({bare(row.text) for row in rows} for rows in (V17_ROWS, V18_ROWS))
    assert not (v17 | v18) & (tuned | later | newest) and not v17 & v18
    # Round 8's tuning sets share none with any held-out set.
    assert not {bare(row.text) for row in R8_ROWS + R9_ROWS} & (later | newest | v17 | v18)
    # v19 and v20 share none with any older set, held out or tuned on, nor with each other.
    v19, v20 = ({bare(row.text) for row in rows} for rows in (V19_ROWS, V20_ROWS))
    older = tuned | later | newest | v17 | v18
    assert not (v19 | v20) & older and not v19 & v20
    # Round 9's tuning sets share none with any held-out set.
    round9 = {bare(row.text) for row in R10_ROWS + R11_ROWS}
    assert not round9 & (later | newest | v17 | v18 | v19 | v20)
    # v21 and v22 share none with any older set, held out or tuned on (round 9's and 10's
    # tuning sets included), nor with each other.
    v21, v22 = ({bare(row.text) for row in rows} for rows in (V21_ROWS, V22_ROWS))
    round10 = {bare(row.text) for row in R12_ROWS + R13_ROWS + R14_ROWS}
    everything = older | v19 | v20 | round9 | round10
    assert not (v21 | v22) & everything and not v21 & v22
    # Round 11's and round 12's tuning sets share none with any held-out set.
    held_out = set().union(*held) | later | newest | v17 | v18 | v19 | v20 | v21 | v22
    assert not {bare(row.text) for row in R15_ROWS + R16_ROWS + R17_ROWS + R18_ROWS} & held_out


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.stem)
def test_no_unsatisfied_reply_is_read_as_satisfied(path: object) -> None:
    found = _score(path).dangerous  # type: ignore[arg-type]
    if path in HELD_OUT:
        # how many, never which: naming them would burn the set (a plain int is compared,
        # so a failure's report holds no reply either)
        count = len(found)
        del found
        assert count <= DANGEROUS_HELD_OUT[path], f"{count} held-out replies"  # type: ignore[index]
    else:
        named = [f"{row.id} {row.text}: {r.rating} {r.explanation}" for row, r in found]
        assert len(named) <= KNOWN_DANGEROUS.get(path, 0), named  # type: ignore[call-overload]


@pytest.mark.parametrize("path", list(FLOORS), ids=lambda p: p.stem)
def test_each_set_stays_above_its_floor(path: object, capsys: pytest.CaptureFixture[str]) -> None:
    result = _score(path)  # type: ignore[arg-type]
    if path in HELD_OUT:
        with capsys.disabled():  # shown on every run: the honest figure
            met = "met" if result.accuracy >= TARGET_ACCURACY else "NOT met"
            print("\n" + result.table(f"{path.name} (held out, never tuned on)"))  # type: ignore[attr-defined]
            print(f"  issue 11 target {TARGET_ACCURACY:.0%}: {met} (the floor below is asserted)")
    # Plain numbers and the per-kind table only: pytest's report of a failed assert shows
    # the values in it, and the Score holds the replies read wrong.
    table, accuracy = result.table(str(path)), result.accuracy
    opt_out_wrong = len(result.opt_out_wrong)
    del result
    assert accuracy >= FLOORS[path], table  # type: ignore[index]
    assert opt_out_wrong <= OPT_OUT_WRONG.get(path, 0), table  # type: ignore[arg-type]


def test_spaces_between_chinese_characters_change_nothing() -> None:
    # Vosk writes one token per word with spaces between them (我 很 满意). A reading is
    # made from the normalised text alone (after the encoding check, which ASCII spaces
    # cannot change), so the same normalised text is the same reading: checked on every
    # row of every set; whole readings are compared on a spread sample of them.
    rules = default_rules()
    for path in SETS:
        for i, row in enumerate(read_rows(path)):
            spaced = _HAN_PAIR.sub(r"\1 ", row.text)
            if spaced == row.text:
                continue
            assert normalize(spaced, rules) == normalize(row.text, rules), row.id
            assert misdecoded(spaced) == misdecoded(row.text), row.id
            if i % 17 == 0:
                got, want = understand(spaced).to_json(), understand(row.text).to_json()
                assert {**got, "text": ""} == {**want, "text": ""}, row.id


@pytest.mark.parametrize(
    "row",
    [
        row
        for row in TUNING_ROWS
        + V1_ROWS
        + V3_ROWS
        + R3_ROWS
        + R4_ROWS
        + R5_ROWS
        + R6_ROWS
        + V2_ROWS
        + V4_ROWS
        + V5_ROWS
        + V6_ROWS
        + V7_ROWS
        + V8_ROWS
        + V9_ROWS
        + V10_ROWS
        + V11_ROWS
        + V12_ROWS
        + V13_ROWS
        + V14_ROWS
        if row.kind == "transcript"
    ],
    ids=lambda row: row.id,
)
def test_a_vosk_transcript_reads_the_same_through_the_asr_normaliser(row: Row) -> None:
    # The ASR worker reads normalize_utterance(vosk text); the labels are on the raw text.
    through_asr = understand(normalize_utterance(row.text, "zh-CN"))
    assert through_asr.rating is understand(row.text).rating, row.text
