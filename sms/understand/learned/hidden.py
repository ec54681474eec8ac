"""The weigher's second opinion: a network with one hidden layer over the same features.

The linear model (`Model`) adds up what each feature says on its own; it cannot learn
that a pair means one thing beside a negation and another beside praise. This network
can: each feature moves `UNITS` hidden units, a unit counts only when its sum is
positive (ReLU), and the units together give each rating a score (softmax). The
weigher reads the mean of the two models' probabilities (`Weigher.probabilities`).

Round 18's 5-fold cross-validation over the 82,927 learnable training replies
(tests/data/README.md, "Round 18"): with the mean, the reader read more replies right,
fewer unsatisfied citizens as (basically) satisfied and far fewer of them closed, at
every setting compared, than with the linear model alone.

Fitted by Adam on mini-batches (`fit_hidden`), with numpy's element-wise operations and
reductions that add in one fixed order, never a BLAS product or numpy's own `exp`
(whose SIMD versions differ by CPU): the same data give the same file byte for byte on
any machine. Its file is JSON like the linear model's, gzipped: the hidden layer's
weights in whole numbers of 1/127th of each unit's largest (`w1`, base64 of signed
bytes: 43k features × 32 units in 1.4 MB; cross-validation read the same with them as
with the unrounded weights), the rest as decimals.
"""

from __future__ import annotations

import base64
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from sms.understand.learned import CLASSES, read_model_text

HIDDEN_PATH: Final = Path(__file__).parent / "hidden.json.gz"
_FORMAT: Final = "minyi reply weigher, hidden layer"
CLASS_COUNT: Final = len(CLASSES)
# Chosen by round 18's cross-validation: 32 units over the features in at least 10
# training replies (43k) read as well as 96 over those in 3 (119k) at a tenth the size;
# 3 passes over the data (8 overfitted: more right readings lost than 3 gained).
UNITS: Final = 32
MIN_COUNT: Final = 10
EPOCHS: Final = 3
SEED: Final = 20261202
BATCH: Final = 256
RATE: Final = 1e-3  # Adam's step
L2: Final = 1e-4
# Adam's decay rates, and each one's complement written out (1 - 0.9 is not 0.1 in binary)
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8
_NEW1, _NEW2 = 0.1, 0.001
_QUANT: Final = 127
ONES: Final = 512  # features enough for all but the longest replies (those get their own)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Hidden:
    """The network: `index` maps a feature to its row of `w1` (features × units);
    `b1` the units' biases, `w2` (units × classes) and `b2` the classes' scores; `data`
    names what it was trained on (a hash of the training files)."""

    index: dict[str, int]
    w1: Floats
    b1: Floats
    w2: Floats
    b2: Floats
    data: str

    # w1 with a row of zeros below, the row of every feature not in `index`; and ones to
    # add up a reply's rows with (a product: half the time of numpy's sum over them)
    _rows: Floats = field(init=False, repr=False, compare=False)
    _ones: Floats = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = np.concatenate([self.w1, np.zeros((1, self.w1.shape[1]))])
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(self, "w1", rows[:-1])  # a view: the weights are held once
        object.__setattr__(self, "_ones", np.ones(ONES))

    def probabilities(self, features: Sequence[str]) -> list[float]:
        """The probability of each class (a repeated feature counts again)."""
        rows = list(map(self.index.get, features, repeat(len(self.index))))
        n = len(rows)
        ones = self._ones[:n] if n <= ONES else np.ones(n)
        h = ones @ self._rows.take(rows, axis=0) + self.b1
        np.maximum(h, 0.0, out=h)
        z = (h @ self.w2 + self.b2).tolist()
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        return [v / total for v in e]

    def dumps(self) -> str:
        """The file's text: `w1` rounded to whole 1/127ths of each unit's largest
        weight and packed as signed bytes; the rest as JSON numbers (exact)."""
        scale = np.abs(self.w1).max(axis=0) / _QUANT
        scale[scale == 0] = 1.0
        q = np.round(self.w1 / scale).astype(np.int8)
        features = sorted(self.index, key=self.index.__getitem__)
        lines = [
            "{",
            f'"format": "{_FORMAT}",',
            '"trained_by": "python -m sms.understand.learned.train",',
            f'"data": {_json(self.data)},',
            f'"units": {self.w1.shape[1]},',
            f'"scale": {_json(scale.tolist())},',
            f'"b1": {_json(self.b1.tolist())},',
            f'"w2": {_json(self.w2.tolist())},',
            f'"b2": {_json(self.b2.tolist())},',
            f'"features": {_json(features)},',
            f'"w1": "{base64.b64encode(q.tobytes()).decode("ascii")}"',
            "}",
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str, where: str = "hidden") -> Hidden:
        """Parse a file (`dumps`); a malformed one is refused, saying what is wrong."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: not a hidden-layer file (not JSON: {exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{where}: not a hidden-layer file")
        units, data, features = doc.get("units"), doc.get("data"), doc.get("features")
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"{where}: 'units' must be a whole number of at least 1")
        if not isinstance(data, str):
            raise ValueError(f"{where}: no data hash")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError(f"{where}: 'features' must be a list of strings")
        if len(set(features)) != len(features):
            raise ValueError(f"{where}: a feature is listed twice")
        scale = _vector(doc, "scale", units, where)
        b1 = _vector(doc, "b1", units, where)
        b2 = _vector(doc, "b2", CLASS_COUNT, where)
        w2 = doc.get("w2")
        if not isinstance(w2, list) or len(w2) != units:
            raise ValueError(f"{where}: 'w2' must have {units} rows of {CLASS_COUNT}")
        w2m = np.array([_row(r, CLASS_COUNT, "w2", where) for r in w2], dtype=np.float64)
        packed = doc.get("w1")
        try:
            raw = base64.b64decode(packed, validate=True) if isinstance(packed, str) else None
        except ValueError:
            raw = None
        if raw is None or len(raw) != len(features) * units:
            raise ValueError(f"{where}: 'w1' must be base64 of {len(features)} × {units} bytes")
        q = np.frombuffer(raw, dtype=np.int8).reshape(len(features), units)
        w1 = np.multiply(q, scale)  # one float array made, not two
        index = {f: i for i, f in enumerate(features)}
        return cls(index, w1, b1, w2m.reshape(units, CLASS_COUNT), b2, data)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row(value: object, n: int, key: str, where: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
    ):
        raise ValueError(f"{where}: {key!r}: expected {n} numbers")
    return [float(v) for v in value]


def _vector(doc: dict[str, Any], key: str, n: int, where: str) -> Floats:
    return np.array(_row(doc.get(key), n, key, where), dtype=np.float64)


def load_hidden(path: Path | None = None) -> Hidden:
    """The network in `path` (None: the packaged file)."""
    path = HIDDEN_PATH if path is None else path
    return Hidden.loads(read_model_text(path, "hidden-layer file"), str(path))


@lru_cache(maxsize=1)
def default_hidden() -> Hidden:
    """The packaged network, read once."""
    return load_hidden()


def fit_hidden(examples: Sequence[tuple[list[str], int]], data: str = "") -> Hidden:
    """The network fitted to (features, class index) examples, deterministically."""
    counts: Counter[str] = Counter(f for feats, _ in examples for f in set(feats))
    features = sorted(f for f, c in counts.items() if c >= MIN_COUNT)
    index = {f: i for i, f in enumerate(features)}
    encoded = [_encode(feats, index) for feats, _ in examples]
    labels = np.array([y for _, y in examples], dtype=np.int64)
    rng = random.Random(SEED)
    n_in, h, k = len(features), UNITS, CLASS_COUNT
    w1 = _glorot(rng, n_in, h, (n_in, h))
    b1 = _glorot(rng, n_in, h, (h,))
    w2 = _glorot(rng, h, k, (h, k))
    b2 = _glorot(rng, h, k, (k,))
    params = [w1, b1, w2, b2]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    order = list(range(len(examples)))
    step = 0
    for _ in range(EPOCHS):
        rng.shuffle(order)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            grads = _gradients(params, [encoded[i] for i in batch], labels[batch])
            step += 1
            rate = RATE * math.sqrt(1 - _BETA2**step) / (1 - _BETA1**step)
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                m *= _BETA1
                m += _NEW1 * g
                v *= _BETA2
                v += _NEW2 * (g * g)
                p -= rate * m / (np.sqrt(v) + _EPS)
    # what the file keeps: w1 in 1/127ths of each unit's largest weight
    return Hidden.loads(Hidden(index, w1, b1, w2, b2, data).dumps())


Encoded = tuple[npt.NDArray[np.int64], Floats]


def _encode(features: list[str], index: dict[str, int]) -> Encoded:
    """A reply's known features as (rows, counts), in order of first appearance."""
    c = Counter(i for i in map(index.get, features) if i is not None)
    return (
        np.fromiter(c.keys(), np.int64, len(c)),
        np.fromiter(c.values(), np.float64, len(c)),
    )


def _glorot(rng: random.Random, n_in: int, n_out: int, shape: tuple[int, ...]) -> Floats:
    """Glorot-uniform starting weights, drawn from Python's generator (the same numbers
    on every platform)."""
    bound = math.sqrt(6 / (n_in + n_out))
    n = math.prod(shape)
    return np.array([rng.uniform(-bound, bound) for _ in range(n)], dtype=np.float64).reshape(shape)


def _small_product(a: Floats, w: Floats) -> Floats:
    """a @ w for a short inner dimension, as element-wise passes in one order (no BLAS,
    whose sums are ordered differently on different CPUs)."""
    out: Floats = a[:, 0:1] * w[0]
    for j in range(1, w.shape[0]):
        out = out + a[:, j : j + 1] * w[j]
    return out


def _gradients(
    params: list[Floats], batch: list[Encoded], labels: npt.NDArray[np.int64]
) -> list[Floats]:
    """The mean cross-entropy's gradient over one batch, with the L2 penalty's."""
    w1, b1, w2, b2 = params
    n = len(batch)
    rows = np.concatenate([r for r, _ in batch])
    counts = np.concatenate([c for _, c in batch])
    lens = np.array([len(r) for r, _ in batch], dtype=np.int64)
    pre = np.zeros((n, w1.shape[1]))
    filled = lens > 0
    if filled.any():
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])[filled]
        pre[filled] = np.add.reduceat(w1[rows] * counts[:, None], starts, axis=0)
    pre += b1
    act = np.maximum(pre, 0.0)
    z = _small_product(act, w2) + b2
    z -= z.max(axis=1, keepdims=True)
    e = np.array([math.exp(v) for v in z.ravel().tolist()]).reshape(z.shape)
    p = e / (e[:, 0:1] + e[:, 1:2] + e[:, 2:3] + e[:, 3:4])
    p[np.arange(n), labels] -= 1.0
    g = p / n
    gw2 = (act[:, :, None] * g[:, None, :]).sum(axis=0) + L2 * w2 / n
    gb2 = g.sum(axis=0)
    dpre = _small_product(g, w2.T) * (pre > 0)
    gw1 = np.zeros_like(w1)
    np.add.at(gw1, rows, dpre[np.repeat(np.arange(n), lens)] * counts[:, None])
    gw1 += L2 * w1 / n
    gb1 = dpre.sum(axis=0)
    return [gw1, gb1, gw2, gb2]
