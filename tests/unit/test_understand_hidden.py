"""The weigher's hidden layer (sms.understand.learned.hidden): its file, its fitting,
and how the weigher reads it beside the linear model."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from sms.understand import load_rules
from sms.understand.learned import (
    WEIGHTS_PATH,
    Model,
    Weigher,
    default_model,
    read_weights,
    write_weights,
)
from sms.understand.learned.hidden import (
    HIDDEN_PATH,
    MIN_COUNT,
    Hidden,
    default_hidden,
    fit_hidden,
)
from sms.understand.learned.labelled import TRAINING
from sms.understand.learned.train import digest
from sms.understand.rules import DEFAULT_RULES_PATH

DEFAULT_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


def _hidden() -> Hidden:
    w1 = np.array([[1.27, -0.5, 0.0], [0.3, 0.254, -1.0]])
    w2 = np.array([[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-0.5, 0.0, 2.0, 0.0]])
    b1, b2 = np.array([0.1, -0.2, 0.0]), np.array([0.0, 0.1, 0.0, -0.1])
    return Hidden({"满意": 0, "太慢": 1}, w1, b1, w2, b2, "test")


def test_a_hidden_layer_file_reads_back_as_written() -> None:
    model = _hidden()
    text = model.dumps()
    again = Hidden.loads(text)
    assert again.dumps() == text and again.index == model.index and again.data == "test"
    # the hidden weights are kept in 1/127ths of each unit's largest, the rest exactly
    assert np.array_equal(again.b1, model.b1) and np.array_equal(again.w2, model.w2)
    assert np.abs(again.w1 - model.w1).max() <= np.abs(model.w1).max(axis=0).max() / 254
    assert again.w1[0, 0] == 1.27  # the largest weight of a unit is exact
    for features in (["满意"], ["太慢", "太慢"], ["满意", "没听过"], []):
        p, q = model.probabilities(features), again.probabilities(features)
        assert abs(sum(q) - 1) < 1e-12
        assert max(abs(a - b) for a, b in zip(p, q, strict=True)) < 0.01


def test_a_repeated_feature_counts_again_and_an_unknown_one_not_at_all() -> None:
    model = _hidden()
    twice, once = model.probabilities(["太慢", "太慢"]), model.probabilities(["太慢"])
    assert twice != once
    assert model.probabilities(["太慢", "从没见过"]) == once


def _doc(**change: object) -> str:
    doc = json.loads(_hidden().dumps())
    doc.update(change)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello", "not a hidden-layer file"),
        ('{"format": "minyi reply weigher"}', "not a hidden-layer file"),
        (_doc(units=0), "'units' must be a whole number"),
        (_doc(units=True), "'units' must be a whole number"),
        (_doc(data=None), "no data hash"),
        (_doc(features=["满意", 3]), "'features' must be a list of strings"),
        (_doc(features=["满意", "满意"]), "listed twice"),
        (_doc(scale=[1, 2]), "'scale': expected 3 numbers"),
        (_doc(b1=[0, "x", 0]), "'b1': expected 3 numbers"),
        (_doc(b2=[0, 0, 0]), "'b2': expected 4 numbers"),
        (_doc(w2=[[0, 0, 0, 0]]), "'w2' must have 3 rows of 4"),
        (_doc(w2=[[0, 0, 0, 0], [0, 0, 0], [0, 0, 0, 0]]), "'w2': expected 4 numbers"),
        (_doc(w1="not base64!"), "'w1' must be base64 of 2 × 3 bytes"),
        (_doc(w1=base64.b64encode(b"12345").decode()), "'w1' must be base64 of 2 × 3 bytes"),
        (_doc(w1=None), "'w1' must be base64"),
    ],
)
def test_a_malformed_hidden_layer_file_is_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Hidden.loads(text)


def _examples() -> list[tuple[list[str], int]]:
    # each feature in at least MIN_COUNT examples, or the network does not learn it
    base = [
        (["满意", "谢谢"], 0),
        (["还行", "一般"], 1),
        (["太慢", "没人管"], 2),
        (["满意", "没人管"], 2),  # praise beside a complaint
        (["几点", "？"], 3),
    ]
    return base * 5000  # Adam takes small steps: enough batches to learn in


def test_fitting_the_hidden_layer_is_deterministic_and_learns() -> None:
    data = _examples()
    first, second = fit_hidden(data, "x"), fit_hidden(data, "x")
    assert first.dumps() == second.dumps()
    assert first.data == "x" and set(first.index) == {f for feats, _ in data for f in feats}
    for features, label in data[:5]:
        p = first.probabilities(features)
        assert max(range(4), key=p.__getitem__) == label, features


def test_a_feature_in_too_few_examples_is_not_learned() -> None:
    data = [*_examples(), *[(["罕见"], 0)] * (MIN_COUNT - 1)]
    assert "罕见" not in fit_hidden(data).index


def test_the_weigher_reads_the_mean_of_both_models() -> None:
    linear = Model((0.0, 0.0, 0.0, 0.0), {"满意": (2.0, 0.0, -1.0, 0.0)}, "test")
    hidden = _hidden()
    alone = Weigher(linear, 0.0, 0.5, 0.8, 0.5, 10.0, 0.95)
    both = Weigher(linear, 0.0, 0.5, 0.8, 0.5, 10.0, 0.95, hidden=hidden)
    features = ["满意", "太慢"]
    p, q = linear.probabilities(features), hidden.probabilities(features)
    assert alone.probabilities(features) == p
    # read from one float32 table (sms.understand.learned.joint): the mean to 1e-6
    mean = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    assert both.probabilities(features) == pytest.approx(mean, abs=1e-6)


def test_the_packaged_hidden_layer_is_trained_on_the_current_data() -> None:
    # Change a labelled set or a rule → retrain: python -m sms.understand.learned.train
    assert default_hidden().data == digest([p for p in TRAINING if p.exists()])
    assert default_hidden().data == default_model().data
    rules = load_rules()
    assert rules.weigher is not None and rules.weigher.hidden is default_hidden()


def test_retraining_gives_the_packaged_hidden_layer_byte_for_byte(
    retrained_hidden: Path,
) -> None:
    # Written by the same run of the trainer as the linear model's file (tests/conftest.py)
    assert read_weights(retrained_hidden) == read_weights(HIDDEN_PATH)


def _rules_with(where: Path, line: str) -> Path:
    path = where / "rules.toml"
    old = 'hidden = "learned/hidden.json.gz"\n'
    assert DEFAULT_TEXT.count(old) == 1
    path.write_text(DEFAULT_TEXT.replace(old, line), encoding="utf-8")
    return path


def test_the_rules_file_names_the_hidden_layer_or_leaves_it_out(tmp_path: Path) -> None:
    rules = load_rules(_rules_with(tmp_path, ""))
    assert rules.weigher is not None and rules.weigher.hidden is None
    mine = tmp_path / "mine.json.gz"
    write_weights(mine, _hidden().dumps())
    rules = load_rules(_rules_with(tmp_path, 'hidden = "mine.json.gz"\n'))
    assert rules.weigher is not None and rules.weigher.hidden is not None
    assert rules.weigher.hidden.index == {"满意": 0, "太慢": 1}
    with pytest.raises(ValueError, match=r"weigher\.hidden: .*nowhere"):
        load_rules(_rules_with(tmp_path, 'hidden = "nowhere.json.gz"\n'))
    (tmp_path / "torn.json.gz").write_bytes(mine.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"weigher\.hidden: .*torn\.json\.gz: not a hidden-layer"):
        load_rules(_rules_with(tmp_path, 'hidden = "torn.json.gz"\n'))
    write_weights(tmp_path / "linear.json.gz", read_weights(WEIGHTS_PATH))
    with pytest.raises(ValueError, match=r"weigher\.hidden: .*not a hidden-layer file"):
        load_rules(_rules_with(tmp_path, 'hidden = "linear.json.gz"\n'))
