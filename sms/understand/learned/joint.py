"""Both of the weigher's models in one table, read in one pass: what runs per reply.

The linear model (`Model`) keeps a dict of weight tuples and the hidden layer (`Hidden`)
its own index and rows, so weighing a reply looked every feature up twice, in two
tables of 105k and 43k features scattered over 40 MB. Between two replies the rules'
own work pushes both out of the processor's caches, and the lookups, not the
arithmetic, were most of the weigher's time: 12 and 16 µs a weighed reply in the
bench's mix, against 6.5 and 9.3 µs read alone.

`Joint` puts each feature's hidden-layer row and its four linear weights side by side
in one row of one float32 table, with one index: one lookup a feature, and one product
sums both models' parts. A row of biases (the hidden units', a constant unit carrying
the output layer's biases, and the linear model's) is added to every reply, so one more
product gives both models' four scores. float32 halves the table (17 MB, 105k rows of
41): over the 92,666 labelled replies every reading is the same as with the two float64
models, every field of it (round 20; the probabilities agree to 1e-6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from sms.understand.learned.hidden import ONES, Hidden

if TYPE_CHECKING:
    from sms.understand.learned import Model

Table = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class Joint:
    """`index` maps a feature to its row of `table`: the hidden units' weights, a
    constant unit (0; 1 in the bias row), then the linear model's four weights and the
    same negated. The row after the features' holds the biases, the one after it zeros
    (an unknown feature). The summed row is ReLU'd whole (the linear scores come out as
    their positive and negative parts, max(x, 0) and max(-x, 0)), and `out` takes it to
    the hidden layer's four scores and then the linear model's: two numpy calls fewer
    than slicing the units out."""

    index: dict[str, int]
    table: Table
    out: Table
    units: int

    def probabilities(self, features: Sequence[str]) -> list[float]:
        """Each class's probability: the mean of the two models' (a repeated feature
        counts again, an unknown one not at all)."""
        biases = len(self.index)
        rows = list(map(self.index.get, features, repeat(biases + 1)))
        rows.append(biases)
        n = len(rows)
        ones = _ones[n] if n <= ONES else np.ones(n, dtype=np.float32)
        summed = ones @ self.table.take(rows, axis=0)
        np.maximum(summed, 0.0, out=summed)
        z0, z1, z2, z3, y0, y1, y2, y3 = (summed @ self.out).tolist()
        top = max(z0, z1, z2, z3)
        e0, e1, e2, e3 = exp(z0 - top), exp(z1 - top), exp(z2 - top), exp(z3 - top)
        hidden = e0 + e1 + e2 + e3
        top = max(y0, y1, y2, y3)
        f0, f1, f2, f3 = exp(y0 - top), exp(y1 - top), exp(y2 - top), exp(y3 - top)
        linear = f0 + f1 + f2 + f3
        return [
            (f0 / linear + e0 / hidden) / 2,
            (f1 / linear + e1 / hidden) / 2,
            (f2 / linear + e2 / hidden) / 2,
            (f3 / linear + e3 / hidden) / 2,
        ]


def joined(model: Model, hidden: Hidden) -> Joint:
    """The two models in one table: the hidden layer's features first, in its order,
    then the linear model's others. The hidden layer knows only features of at least
    MIN_COUNT training replies, the ones replies have: so the rows, keys and row numbers
    a reply looks up lie together in memory, on fewer cache lines and pages (+2 % in the
    bench, round 20)."""
    names = list(hidden.index)
    names += [f for f in model.weights if f not in hidden.index]
    index = {f: i for i, f in enumerate(names)}
    units = hidden.w1.shape[1]
    classes = hidden.w2.shape[1]
    linear = slice(units + 1, units + 1 + classes)
    negated = slice(units + 1 + classes, units + 1 + 2 * classes)
    table = np.zeros((len(names) + 2, units + 1 + 2 * classes), dtype=np.float32)
    if model.weights:
        rows = np.fromiter((index[f] for f in model.weights), np.int64, len(model.weights))
        table[rows, linear] = np.array(list(model.weights.values()))
    table[: len(hidden.index), :units] = hidden.w1[
        np.fromiter(hidden.index.values(), np.int64, len(hidden.index))
    ]
    biases = len(names)
    table[biases, :units] = hidden.b1
    table[biases, units] = 1.0
    table[biases, linear] = model.bias
    table[:, negated] = -table[:, linear]
    out = np.zeros((units + 1 + 2 * classes, 2 * classes), dtype=np.float32)
    out[:units, :classes] = hidden.w2
    out[units, :classes] = hidden.b2
    out[linear, classes:] = np.eye(classes)
    out[negated, classes:] = -np.eye(classes)
    return Joint(index, table, out, units)


exp: Final = math.exp
# A row of n ones for each n up to ONES, made once: an index, not a numpy slice a reply
_ones: Final = tuple(np.ones(n, dtype=np.float32) for n in range(ONES + 1))
