"""Both of the weigher's models read from one table (sms.understand.learned.joint): the
same probabilities as the two models read one after the other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sms.understand.decide import decide, rules_features
from sms.understand.learned import Model, Weigher
from sms.understand.learned.hidden import Hidden
from sms.understand.learned.joint import joined
from sms.understand.learned.labelled import CORPUS, read_rows
from sms.understand.rules.load import default_rules
from sms.understand.scan import scan
from sms.understand.text import normalize


def _models() -> tuple[Model, Hidden]:
    # 满意 in both models, 太慢 only in the hidden layer, 推诿 only in the linear model
    linear = Model(
        (0.5, -0.25, 0.0, 0.0),
        {"满意": (2.0, 0.5, -1.0, 0.0), "推诿": (-1.5, -0.5, 2.25, 0.0)},
        "test",
    )
    w1 = np.array([[1.27, -0.5, 0.0], [0.3, 0.254, -1.0]])
    w2 = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-0.5, 0.0, 2.0, 0.0]])
    b1, b2 = np.array([0.1, -0.2, 0.0]), np.array([0.0, 0.1, 0.0, -0.1])
    return linear, Hidden({"太慢": 0, "满意": 1}, w1, b1, w2, b2, "test")


def _mean(linear: Model, hidden: Hidden, features: list[str]) -> list[float]:
    p, q = linear.probabilities(features), hidden.probabilities(features)
    return [(a + b) / 2 for a, b in zip(p, q, strict=True)]


@pytest.mark.parametrize(
    "features",
    [
        [],
        ["满意"],
        ["太慢"],
        ["推诿"],
        ["满意", "太慢", "推诿"],
        ["太慢", "太慢", "满意", "没听过"],  # a repeated feature counts again
        ["没听过", "也没听过"],  # unknown features: the biases alone
        ["满意", "推诿"] * 400,  # more features than the shared row of ones
    ],
)
def test_the_joint_table_gives_the_mean_of_both_models(features: list[str]) -> None:
    linear, hidden = _models()
    got = joined(linear, hidden).probabilities(features)
    assert got == pytest.approx(_mean(linear, hidden, features), abs=1e-6)
    assert sum(got) == pytest.approx(1.0, abs=1e-9)


def test_the_joint_table_holds_every_feature_of_either_model_once() -> None:
    linear, hidden = _models()
    joint = joined(linear, hidden)
    assert list(joint.index) == ["太慢", "满意", "推诿"]  # the hidden layer's first
    assert joint.table.dtype == np.float32 and joint.table.shape == (3 + 2, 3 + 1 + 4 + 4)
    assert not joint.table[-1].any()  # the row of an unknown feature


def test_the_packaged_models_read_the_same_from_the_joint_table() -> None:
    rules = default_rules()
    weigher = rules.weigher
    assert weigher is not None and weigher.hidden is not None and weigher.joint is not None
    worst = 0.0
    for row in read_rows(CORPUS):
        found = scan(normalize(row.text, rules), rules)
        features = rules_features(found, decide(found))
        got = weigher.probabilities(features)
        want = _mean(weigher.model, weigher.hidden, features)
        worst = max(worst, *(abs(a - b) for a, b in zip(got, want, strict=True)))
    assert worst < 1e-5


def test_a_weigher_without_a_hidden_layer_reads_the_linear_model_alone() -> None:
    linear, _ = _models()
    weigher = Weigher(linear, 0.0, 0.5, 0.8, 0.5, 10.0, 0.95)
    assert weigher.joint is None
    assert weigher.probabilities(["满意", "推诿"]) == linear.probabilities(["满意", "推诿"])


def test_a_copy_with_other_models_reads_its_own() -> None:
    linear, hidden = _models()
    weigher = Weigher(linear, 0.0, 0.5, 0.8, 0.5, 10.0, 0.95, hidden=hidden)
    assert weigher.probabilities(["满意"]) == pytest.approx(_mean(linear, hidden, ["满意"]))
    other = Model((0.0, 0.0, 3.0, 0.0), {}, "other")
    copy = dataclasses.replace(weigher, model=other)
    assert copy.probabilities(["满意"]) == pytest.approx(_mean(other, hidden, ["满意"]))
