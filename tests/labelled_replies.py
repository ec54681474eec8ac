"""The labelled reply sets of sms.understand and the figures kept on them (the sets and
their format are sms.understand.learned.labelled's; tests/data/README.md tells their
story):

- ``tests/data/replies_corpus.tsv``: the main corpus; the rules were written against it.
- ``tests/data/replies_tuning.tsv``: more replies of the hard kinds of issue 11; the rules
  may be tuned on these too.
- ``tests/data/replies_heldout.tsv``: held-out v1, burned after its first measurement
  (round 1 of issue 11 read its misses): tuning data now.
- ``tests/data/replies_heldout_v2.tsv``: held-out v2, written before round 2 changed any
  rule and never tuned on; what the reader scores here is what it does on new text.
- ``tests/data/replies_heldout_v3.tsv``: held-out v3, written late in round 2, measured once
  (75.1 %, 2 dangerous), then its misses were read: tuning data since.
- ``tests/data/replies_heldout_v4.tsv``: held-out v4, written before v3's misses were read
  and rules changed for them; never tuned on.
- ``tests/data/replies_tuning_r3.tsv``: round 3's tuning set (14,230 replies by twenty-one writers),
  what the learned weigher is trained on with the four sets above.
- ``tests/data/replies_heldout_v5.tsv``, ``_v6.tsv``: held-out v5 and v6, written for round 3
  before any of its changes by writers who read neither the rules nor another set; never
  tuned or trained on.
- ``tests/data/replies_tuning_r4.tsv``: round 4's tuning set (9,317 replies by fourteen writers),
  trained on with the sets above.
- ``tests/data/replies_tuning_r5.tsv``: round 5's tuning set (8,079 replies by fifteen writers),
  trained on with the sets above.
- ``tests/data/replies_heldout_v7.tsv``, ``_v8.tsv``: held-out v7 and v8, written for round 4
  the same way, before any of its changes; never tuned or trained on.
- ``tests/data/replies_heldout_v9.tsv``, ``_v10.tsv``: held-out v9 and v10, written after round
  4's first changes and before its later ones; never tuned or trained on.
- ``tests/data/replies_heldout_v11.tsv``, ``_v12.tsv``: held-out v11 and v12, written for round 5
  before any of its changes; never tuned or trained on.
- ``tests/data/replies_tuning_r6.tsv``: round 6's tuning set, trained on with the sets above.
- ``tests/data/replies_heldout_v13.tsv``, ``_v14.tsv``: held-out v13 and v14, written for round 6
  before any of its changes; never tuned or trained on.
- ``tests/data/replies_tuning_r7.tsv``: round 7's tuning set, trained on with the sets above.
- ``tests/data/replies_heldout_v15.tsv``, ``_v16.tsv``: held-out v15 and v16, written for round 7
  before any of its changes; never tuned or trained on.
- ``tests/data/replies_heldout_v17.tsv``, ``_v18.tsv``: held-out v17 and v18, written for round 8
  before any of its changes; never tuned or trained on.
- ``tests/data/replies_tuning_r8.tsv``, ``_r9.tsv``: round 8's tuning sets (the second written
  after its first rules), trained on with the sets above.
- ``tests/data/replies_heldout_v19.tsv``, ``_v20.tsv``: held-out v19 and v20, written for round 9
  before any of its changes; never tuned or trained on.
- ``tests/data/replies_tuning_r10.tsv``, ``_r11.tsv``: round 9's tuning sets, trained on with the
  sets above.
- ``tests/data/replies_heldout_v21.tsv``, ``_v22.tsv``: held-out v21 and v22, written for round 10
  after its first rules (tuned on training sets only); never tuned or trained on.
- ``tests/data/replies_tuning_r12.tsv``, ``_r13.tsv``, ``_r14.tsv``: round 10's tuning sets,
  trained on with the sets above.
- ``tests/data/replies_tuning_r15.tsv``, ``_r16.tsv``, ``_r17.tsv``, ``_r18.tsv``: rounds 11,
  12 (two batches) and 14's tuning sets, trained on with the sets above.

    .venv/bin/python -m tests.labelled_replies [FILE ...]   # per-kind table of each set
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sms.understand import Confidence, Rating, Rules, Understanding, understand
from sms.understand.learned.labelled import (
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
    read_rows,
)

__all__ = [
    "CORPUS", "DANGEROUS", "HELDOUT", "HELDOUT_V2", "HELDOUT_V3", "HELDOUT_V4", "HELDOUT_V5",
    "HELDOUT_V6", "HELDOUT_V7", "HELDOUT_V8", "HELDOUT_V9",
    "HELDOUT_V10", "HELDOUT_V11", "HELDOUT_V12", "HELDOUT_V13", "HELDOUT_V14", "HELDOUT_V15",
    "HELDOUT_V16", "HELDOUT_V17", "HELDOUT_V18", "HELDOUT_V19", "HELDOUT_V20", "HELDOUT_V21",
    "HELDOUT_V22", "SETS",
    "TUNING", "TUNING_R3", "TUNING_R4", "TUNING_R5", "TUNING_R6", "TUNING_R7", "TUNING_R8",
    "TUNING_R9", "TUNING_R10", "TUNING_R11", "TUNING_R12", "TUNING_R13",
    "TUNING_R14", "TUNING_R15", "TUNING_R16", "TUNING_R17", "TUNING_R18", "Row",
    "Score", "read_rows", "score",
]  # fmt: skip

SETS = (
    CORPUS,
    TUNING,
    HELDOUT,
    HELDOUT_V3,
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
    HELDOUT_V2,
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
)
# The error that closes a survey nobody calls back: an unsatisfied citizen read as
# satisfied or basically satisfied.
DANGEROUS = frozenset({Rating.SATISFIED, Rating.BASICALLY_SATISFIED})


@dataclass
class Score:
    """How the reader did on one set of rows."""

    total: Counter[str]
    right: Counter[str]
    dangerous: list[tuple[Row, Understanding]]  # unsatisfied read as (basically) satisfied
    wrong: list[tuple[Row, Understanding]]
    opt_out_wrong: list[tuple[Row, Understanding]]
    unclear: int = 0  # readings asked again (a clarifying SMS)

    def __add__(self, other: Score) -> Score:
        """Two sets' scores as one."""
        return Score(
            self.total + other.total,
            self.right + other.right,
            self.dangerous + other.dangerous,
            self.wrong + other.wrong,
            self.opt_out_wrong + other.opt_out_wrong,
            self.unclear + other.unclear,
        )

    @property
    def closing(self) -> int:
        """Dangerous readings not asked again: the survey closes on them."""
        return sum(r.confidence is not Confidence.UNCLEAR for _, r in self.dangerous)

    @property
    def accuracy(self) -> float:
        """Share of rows whose rating was read right."""
        return sum(self.right.values()) / max(1, sum(self.total.values()))

    def table(self, title: str) -> str:
        """Per-kind accuracy, the dangerous count and the opt-out misses, as text."""
        lines = [f"{title}: {sum(self.total.values())} replies"]
        for kind in sorted(self.total, key=lambda k: (-self.total[k], k)):
            share = self.right[kind] / self.total[kind]
            lines.append(f"  {kind:<28} {self.right[kind]:>4}/{self.total[kind]:<4} {share:7.1%}")
        all_right, all_total = sum(self.right.values()), sum(self.total.values())
        lines.append(f"  {'all':<28} {all_right:>4}/{all_total:<4} {self.accuracy:7.1%}")
        lines.append(f"  unsatisfied read as (basically) satisfied: {len(self.dangerous)}")
        lines.append(f"  opt-out read wrong: {len(self.opt_out_wrong)}")
        return "\n".join(lines)


def score(rows: Sequence[Row], rules: Rules | None = None) -> Score:
    """Read every row (by `rules`, None: the packaged ones) and count, per kind, the
    ratings read right."""
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    dangerous, wrong, opt_out_wrong = [], [], []
    unclear = 0
    for row in rows:
        reading = understand(row.text, rules)
        unclear += reading.confidence is Confidence.UNCLEAR
        total[row.kind] += 1
        if reading.rating is row.rating:
            right[row.kind] += 1
        else:
            wrong.append((row, reading))
            if row.rating is Rating.UNSATISFIED and reading.rating in DANGEROUS:
                dangerous.append((row, reading))
        if reading.opt_out is not row.opt_out:
            opt_out_wrong.append((row, reading))
    return Score(total, right, dangerous, wrong, opt_out_wrong, unclear)


def main(argv: list[str]) -> int:
    """Print the per-kind table of each file named (default: every set)."""
    paths = [Path(a) for a in argv] or [p for p in SETS if p.exists()]
    for path in paths:
        print(score(read_rows(path)).table(path.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
