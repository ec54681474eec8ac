"""The learned weigher: where the rules are unsure, weigh their evidence with the words.

The rules (`sms.understand.scan`, `decide`) are right nearly every time they are sure;
what they cannot settle they mark `unclear`. There a small model, a logistic regression
over character n-grams and the rules' own findings (`features`), trained by
`python -m sms.understand.learned.train` on the repo's labelled sets, gives each rating
a probability; a second model over the same features, with one hidden layer
(`hidden.Hidden`), gives its own, and the weigher reads their mean (since round 18).
`Model` only scores; the policy of when its answer is taken, and the asymmetric limits
on it, are `sms.understand.decide.reweigh`'s.

Deterministic, no network, and the linear model needs no numpy: its weights are a JSON
text beside this module, one feature a line, so loading it is parsed in C (a
tab-separated file parsed in Python took 0.3 s, paid by every process that reads
replies). It is kept gzipped
(`weights.json.gz`, `read_weights`/`write_weights`): round 10's 78k features took the
text to 1.99 MB, at the repository's 2 MB for a tracked file, and gzipped it is 0.7 MB,
unpacked in C in 10 ms; a plain `.json` file (an operator's own) still loads. Each
weight is written as a whole number of 1/1,000ths, the precision the trainer keeps: the
same values in two thirds of the bytes of decimals (files of 1/10,000ths, from before
round 9, still load). A feature's weights are written relative to its weight for the
last class (`unknown`), which is then 0 and not written: adding one amount to a
feature's weight for every class changes no probability, so the file holds three
numbers a feature, not four, for the same readings.
"""

from __future__ import annotations

import gc
import gzip
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import chain
from math import exp
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sms.compiled import use

use(__path__, __name__)  # before its modules: their compiled build, if current, first

from sms.understand.learned.features import ngrams  # noqa: E402
from sms.understand.rules import Confidence, Rating  # noqa: E402

if TYPE_CHECKING:  # hidden.py reads its classes and files through this module
    from sms.understand.learned.hidden import Hidden
    from sms.understand.learned.joint import Joint

CLASSES: Final = (
    Rating.SATISFIED,
    Rating.BASICALLY_SATISFIED,
    Rating.UNSATISFIED,
    Rating.UNKNOWN,
)
WEIGHTS_PATH: Final = Path(__file__).parent / "weights.json.gz"
_FORMAT: Final = "minyi reply weigher"
# Weights are stored as whole numbers of 1/SCALE: the trainer keeps three decimals.
# Round 9's data took four decimals over 2 MB; at three, 6 of the ~60,000 training
# readings changed (2 better, 3 worse) and the file is a tenth smaller. A file written
# at four decimals (scale 10,000) still loads.
SCALE: Final = 1_000
_SCALES: Final = (1_000, 10_000)


@dataclass(frozen=True)
class Model:
    """Per-class bias and per-feature weights (in `CLASSES` order); `data` names what
    it was trained on (a hash of the training files). A loaded model's feature weights
    for the last class are 0 (`relative`)."""

    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    data: str

    def scores(self, features: Sequence[str]) -> list[float]:
        """The raw score of each class."""
        z0, z1, z2, z3 = self.bias
        for w in map(self.weights.get, features):  # one C-level lookup per feature
            if w is not None:
                z0 += w[0]
                z1 += w[1]
                z2 += w[2]
                z3 += w[3]
        return [z0, z1, z2, z3]

    def probabilities(self, features: Sequence[str]) -> list[float]:
        """The probability of each class (softmax of the scores)."""
        z0, z1, z2, z3 = z = self.scores(features)
        top = max(z)
        # Written out for the four classes (no comprehension made per call), the same
        # operations in the same order as sum() and a loop over them.
        e0, e1, e2, e3 = exp(z0 - top), exp(z1 - top), exp(z2 - top), exp(z3 - top)
        total = e0 + e1 + e2 + e3
        return [e0 / total, e1 / total, e2 / total, e3 / total]

    def strongest(self, features: Sequence[str], rating: Rating, n: int = 3) -> list[str]:
        """The features that pushed hardest toward `rating` (for the explanation)."""
        c = CLASSES.index(rating)
        pushes = []
        for f in dict.fromkeys(features):
            if not _readable(f):
                continue
            w = self.weights.get(f)
            if w is not None:
                push = w[c] - max(w[o] for o in range(len(CLASSES)) if o != c)
                if push > 0:
                    pushes.append((push, f))
        pushes.sort(key=lambda p: (-p[0], p[1]))
        return [f for _, f in pushes[:n]]

    def dumps(self) -> str:
        """The weight file's text: JSON, one feature a line (so a retrained file diffs
        readably), parsed in C when loaded (`loads`)."""
        head = {
            "format": _FORMAT,
            "trained_by": "python -m sms.understand.learned.train",
            "data": self.data,
            "classes": [c.value for c in CLASSES],
            "scale": SCALE,
            "relative_to": CLASSES[-1].value,
        }
        lines = [json.dumps(head, ensure_ascii=False)[:-1] + ","]
        lines.append(f'"bias": [{", ".join(_number(v) for v in self.bias)}],')
        lines.append('"weights": {')
        rows = [
            f"{json.dumps(f, ensure_ascii=False)}:[{','.join(map(_number, relative(w)[:-1]))}]"
            for f, w in sorted(self.weights.items())
        ]
        lines.append(",\n".join(rows))
        lines.append("}}")
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str, where: str = "weights") -> Model:
        """Parse a weight file (`dumps`); a malformed one is refused, saying what is
        wrong. The checks run over whole columns in C: the file is 60k features."""
        # The collector would sweep everything allocated so far many times over while
        # 60k lists and tuples are made (half the load time); none of them is cyclic.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return cls._parse(text, where)
        finally:
            if collecting:
                gc.enable()

    @classmethod
    def _parse(cls, text: str, where: str) -> Model:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: not a reply weigher file (not JSON: {exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{where}: not a reply weigher file")
        if doc.get("classes") != [c.value for c in CLASSES]:
            raise ValueError(f"{where}: classes must be {[c.value for c in CLASSES]}")
        scale = doc.get("scale")
        if scale not in _SCALES or not isinstance(scale, int):
            raise ValueError(f"{where}: scale must be one of {_SCALES} (weights in 1/scale)")
        if doc.get("relative_to") != CLASSES[-1].value:
            raise ValueError(f"{where}: weights must be relative to {CLASSES[-1].value!r}")
        data, bias, weights = doc.get("data"), doc.get("bias"), doc.get("weights")
        if not isinstance(data, str):
            raise ValueError(f"{where}: no data hash")
        if not isinstance(bias, list):
            raise ValueError(f"{where}: no bias")
        if not isinstance(weights, dict):
            raise ValueError(f"{where}: no weights")
        if len(bias) != len(CLASSES):
            raise ValueError(f"{where}: 'bias': expected {len(CLASSES)} weights")
        rows = list(weights.values())
        n = len(CLASSES) - 1  # the last class's is 0
        if rows and (set(map(type, rows)) != {list} or set(map(len, rows)) != {n}):
            bad = next(f for f, v in weights.items() if not isinstance(v, list) or len(v) != n)
            raise ValueError(f"{where}: {bad!r}: expected {n} weights")
        if not set(map(type, chain(bias, chain.from_iterable(rows)))) <= {int}:
            raise ValueError(f"{where}: a weight is not a number of 1/{scale}ths")
        # n / scale is the double nearest n/1,000, as parsing the decimal would give
        values = [(a / scale, b / scale, c / scale, 0.0) for a, b, c in rows]
        return cls(tuple(v / scale for v in bias), dict(zip(weights, values, strict=True)), data)


def relative(weights: Sequence[float]) -> tuple[float, ...]:
    """A feature's weights less its weight for the last class: the same probabilities
    (softmax is unchanged when every class's score moves by one amount), the last 0."""
    last = weights[-1]
    return tuple(w - last for w in weights)


def _readable(feature: str) -> bool:
    """A feature worth naming to a person: the rules' findings, and words of two or
    three characters (a single character or a clause edge explains nothing)."""
    return "=" in feature or (len(feature) > 1 and not any(ch in feature for ch in "^$|"))


def _number(v: float) -> str:
    # The three decimals kept, as a whole number of 1/SCALE (「-0.254」 → 「-254」):
    # taken from the decimal text, so a value is never rounded twice.
    return str(int(f"{v:.3f}".replace(".", "")))


def read_weights(path: Path) -> str:
    """A weight file's text (`Model.dumps`), gunzipped if its name ends in ``.gz``."""
    raw = path.read_bytes()
    return (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")


def write_weights(path: Path, text: str) -> None:
    """Write a weight file's text, gzipped if the name ends in ``.gz``: with no time or
    name in the gzip header, so the same text gives the same bytes."""
    raw = text.encode("utf-8")
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0) if path.suffix == ".gz" else raw)


def read_model_text(path: Path, what: str) -> str:
    """A model file's text (`read_weights`); one that cannot be unpacked or decoded is
    a ValueError saying it is not `what` (OSError, a missing file, passes through)."""
    try:
        return read_weights(path)
    except (gzip.BadGzipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a {what} ({exc})") from None


def load_model(path: Path | None = None) -> Model:
    """The weights in `path` (None: the packaged file)."""
    path = WEIGHTS_PATH if path is None else path
    return Model.loads(read_model_text(path, "weight file"), str(path))


@lru_cache(maxsize=1)
def default_model() -> Model:
    """The packaged weights, read once."""
    return load_model()


def features_of(norm: str, found_features: list[str]) -> list[str]:
    """Every feature of a reply: its n-grams and the rules' findings."""
    return ngrams(norm) + found_features


_POSITIVE: Final = frozenset((Rating.SATISFIED, Rating.BASICALLY_SATISFIED))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the weigher says of one unsure reading: the rating it takes (None: it
    leaves the rules' reading), how sure, and the features that drove it."""

    rating: Rating | None
    probability: float
    sure: bool
    drivers: tuple[str, ...]
    # The model gives unsatisfied at least `doubt`: a (basically) satisfied reading,
    # the rules' or its own, is asked again rather than closed.
    unsat: float = 0.0
    ask: bool = False


@dataclass(frozen=True)
class Weigher:
    """The model (with its second opinion, `hidden`) and when its answer is taken
    ([weigher] in the rules file).

    Its reading is the rating of least expected cost, where reading an unsatisfied
    citizen as (basically) satisfied costs `danger_cost` times any other error — the
    asymmetric rule, in the model's terms. It replaces an `unclear` reading of the
    rules when at least `take` sure, a `likely` one when at least `override` sure, a
    `certain` one never — but a `certain` (basically) satisfied reading is made
    unsatisfied (and `unclear`) when the model gives unsatisfied at least `veto`. A
    reading it lifts to (basically) satisfied over a complaint the rules found needs
    `lift`, and stays `unclear` (the citizen is asked again); any other needs no
    clarifying SMS when at least `sure`. A (basically) satisfied reading it leaves or
    takes is `unclear` too when it gives unsatisfied at least `doubt`: a cheap question
    where closing the survey could be the worst error; at least `withhold`, it is not
    claimed at all (unknown, asked again).
    """

    model: Model
    take: float
    override: float
    lift: float
    veto: float
    danger_cost: float
    sure: float
    doubt: float = 1.0
    withhold: float = 1.0
    # The second opinion (`hidden`); None: the linear model's alone.
    hidden: Hidden | None = None

    def probabilities(self, features: list[str]) -> list[float]:
        """Each class's probability: the mean of the linear model's and the hidden
        layer's, read from both at once (`joint`); one model's where there is no hidden
        layer."""
        joint = self.joint
        if joint is None:
            return self.model.probabilities(features)
        return joint.probabilities(features)

    @cached_property
    def joint(self) -> Joint | None:
        """Both models in one table (`joint.Joint`), made when the first reply is
        weighed (a weigher copied with other settings makes its own)."""
        if self.hidden is None:
            return None
        from sms.understand.learned.joint import joined  # it reads this module's Model

        return joined(self.model, self.hidden)

    def verdict(
        self,
        features: list[str],
        rules_rating: Rating,
        rules_confidence: Confidence,
        complained: bool,
    ) -> Verdict:
        """The weigher's verdict on a reply the rules read as `rules_rating`.

        `complained`: the rules read it as unsatisfied, or found a complaint about the
        police in it, or the safety net a word it could not explain beside the praise.
        """
        p = self.probabilities(features)
        unsat = p[_UNSATISFIED]
        ask = unsat >= self.doubt
        if rules_confidence is _CERTAIN:
            if rules_rating in _POSITIVE and unsat >= self.veto:
                drivers = tuple(self.model.strongest(features, _UNSATISFIED_RATING))
                return Verdict(_UNSATISFIED_RATING, unsat, False, drivers)
            return _left(unsat, ask)
        extra = (self.danger_cost - 1) * p[_UNSATISFIED]
        # The expected cost of each reading (a positive one also risks the danger); the
        # first of the cheapest, as min() over the classes in order gives it.
        p0, p1, p2, p3 = p
        a0, a1, a2, a3 = _IS_POSITIVE
        costs = [1 - p0 + extra * a0, 1 - p1 + extra * a1, 1 - p2 + extra * a2, 1 - p3 + extra * a3]
        best = costs.index(min(costs))
        rating, prob = CLASSES[best], p[best]
        lifted = rating in _POSITIVE and complained
        need = self.override if rules_confidence is _LIKELY else self.take
        if lifted:
            need = max(need, self.lift)
        if prob < need:
            return _left(unsat, ask)
        sure = prob >= self.sure and not lifted
        drivers = ()
        if rating is not rules_rating:
            drivers = tuple(self.model.strongest(features, rating))
        return Verdict(rating, prob, sure, drivers, unsat, ask)


def _left(unsat: float, ask: bool) -> Verdict:
    """No reading of its own: the rules' stands, asked again if `ask`."""
    return Verdict(None, 0.0, False, (), unsat, ask) if ask else _LEFT


_UNSATISFIED: Final = CLASSES.index(Rating.UNSATISFIED)
_IS_POSITIVE: Final = tuple(c in _POSITIVE for c in CLASSES)
# Enum members read once: on Python 3.11 `Rating.X` goes through EnumType.__getattr__'s
# slow path (~0.2 µs).
_UNSATISFIED_RATING: Final = Rating.UNSATISFIED
_CERTAIN: Final = Confidence.CERTAIN
_LIKELY: Final = Confidence.LIKELY
_LEFT: Final = Verdict(None, 0.0, False, ())
