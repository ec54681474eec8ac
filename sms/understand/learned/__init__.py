"""The learned weigher: where the rules are unsure, weigh their evidence with the words.

The rules (`sms.understand.scan`, `decide`) are right nearly every time they are sure;
what they cannot settle they mark `unclear`. There a small model, a logistic regression
over character n-grams and the rules' own findings (`features`), trained by
`python -m sms.understand.learned.train` on the repo's labelled sets, gives each rating
a probability. `Model` only scores; the policy of when its answer is taken, and the
asymmetric limits on it, are `sms.understand.decide.reweigh`'s.

Deterministic, no network, no numpy: the weights are a tab-separated file beside this
module (`weights.tsv`), one feature a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from sms.understand.learned.features import ngrams
from sms.understand.rules import Confidence, Rating

CLASSES: Final = (
    Rating.SATISFIED,
    Rating.BASICALLY_SATISFIED,
    Rating.UNSATISFIED,
    Rating.UNKNOWN,
)
WEIGHTS_PATH: Final = Path(__file__).parent / "weights.tsv"
_HEADER: Final = "# minyi reply weigher"


@dataclass(frozen=True)
class Model:
    """Per-class bias and per-feature weights (in `CLASSES` order); `data` names what
    it was trained on (a hash of the training files)."""

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
        z = self.scores(features)
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = sum(e)
        return [v / total for v in e]

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
        """The weight file's text."""
        lines = [
            f"{_HEADER}; trained by python -m sms.understand.learned.train; data {self.data}",
            "# feature\t" + "\t".join(c.value for c in CLASSES),
            "\t".join(["@bias", *(_number(v) for v in self.bias)]),
        ]
        for f in sorted(self.weights):
            lines.append("\t".join([_escape(f), *(_number(v) for v in self.weights[f])]))
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str, where: str = "weights") -> Model:
        """Parse a weight file; a malformed one is refused with its line."""
        lines = text.splitlines()
        if not lines or not lines[0].startswith(_HEADER):
            raise ValueError(f"{where}: not a reply weigher file")
        data = lines[0].rpartition(" data ")[2]
        bias: tuple[float, ...] = ()
        weights: dict[str, tuple[float, ...]] = {}
        for number, line in enumerate(lines[1:], 2):
            if line.startswith("# ") or not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(CLASSES) + 1:
                raise ValueError(f"{where}:{number}: expected {len(CLASSES) + 1} columns")
            try:
                values = tuple(float(v) for v in fields[1:])
            except ValueError:
                raise ValueError(f"{where}:{number}: a weight is not a number") from None
            if fields[0] == "@bias":
                bias = values
            else:
                weights[_unescape(fields[0])] = values
        if not bias:
            raise ValueError(f"{where}: no @bias line")
        return cls(bias, weights, data)


def _readable(feature: str) -> bool:
    """A feature worth naming to a person: the rules' findings, and words of two or
    three characters (a single character or a clause edge explains nothing)."""
    return "=" in feature or (len(feature) > 1 and not any(ch in feature for ch in "^$|"))


def _number(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if v else "0"


def _escape(f: str) -> str:
    return f.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _unescape(f: str) -> str:
    out, i = [], 0
    while i < len(f):
        if f[i] == "\\" and i + 1 < len(f):
            out.append({"t": "\t", "n": "\n"}.get(f[i + 1], f[i + 1]))
            i += 2
        else:
            out.append(f[i])
            i += 1
    return "".join(out)


def load_model(path: Path | None = None) -> Model:
    """The weights in `path` (None: the packaged file)."""
    path = WEIGHTS_PATH if path is None else path
    return Model.loads(path.read_text(encoding="utf-8"), str(path))


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


@dataclass(frozen=True)
class Weigher:
    """The model and when its answer is taken ([weigher] in the rules file).

    Its reading is the rating of least expected cost, where reading an unsatisfied
    citizen as (basically) satisfied costs `danger_cost` times any other error — the
    asymmetric rule, in the model's terms. It replaces an `unclear` reading of the
    rules when at least `take` sure, a `likely` one when at least `override` sure, a
    `certain` one never — but a `certain` (basically) satisfied reading is made
    unsatisfied (and `unclear`) when the model gives unsatisfied at least `veto`. A
    reading it lifts to (basically) satisfied over a complaint the rules found needs
    `lift`, and stays `unclear` (the citizen is asked again); any other needs no
    clarifying SMS when at least `sure`.
    """

    model: Model
    take: float
    override: float
    lift: float
    veto: float
    danger_cost: float
    sure: float

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
        p = self.model.probabilities(features)
        if rules_confidence is Confidence.CERTAIN:
            if rules_rating in _POSITIVE and p[_UNSATISFIED] >= self.veto:
                drivers = tuple(self.model.strongest(features, Rating.UNSATISFIED))
                return Verdict(Rating.UNSATISFIED, p[_UNSATISFIED], False, drivers)
            return _LEFT
        extra = (self.danger_cost - 1) * p[_UNSATISFIED]
        best = min(range(len(CLASSES)), key=lambda c: 1 - p[c] + extra * (CLASSES[c] in _POSITIVE))
        rating, prob = CLASSES[best], p[best]
        lifted = rating in _POSITIVE and complained
        need = self.override if rules_confidence is Confidence.LIKELY else self.take
        if lifted:
            need = max(need, self.lift)
        if prob < need:
            return _LEFT
        sure = prob >= self.sure and not lifted
        drivers = ()
        if rating is not rules_rating:
            drivers = tuple(self.model.strongest(features, rating))
        return Verdict(rating, prob, sure, drivers)


_UNSATISFIED: Final = CLASSES.index(Rating.UNSATISFIED)
_LEFT: Final = Verdict(None, 0.0, False, ())
