"""tests.crossval: folds, fold models that never saw their fold, every reply read with
its own fold's models, the kept models reused, and settings checked as a rules file's."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sms.understand import Confidence, Rating, understand
from sms.understand.learned.labelled import Row, read_rows
from sms.understand.learned.train import digest
from sms.understand.rules.load import default_rules
from tests import crossval
from tests.labelled_replies import score

MARK = "鑫鑫鑫"  # in every reply of fold 0, and in no other
N = 60


def write_set(path: Path) -> Path:
    """60 labelled replies; those of fold 0 carry `MARK`."""
    fold = crossval.assign_folds(N)
    texts = [
        ("满意，来得很快", "satisfied"),
        ("不满意 来了看一眼就走了", "unsatisfied"),
        ("还行吧", "basically_satisfied"),
        ("人找到了没有", "unknown"),
        ("挺好的，谢谢民警", "satisfied"),
        ("说好回电话的，一直没回", "unsatisfied"),
    ]
    lines = ["# a small set for tests.crossval's tests"]
    for i in range(N):
        text, rating = texts[i % len(texts)]
        if fold[i] == 0:
            text = f"{MARK}{text}"
        lines.append(f"{text}{i}\t{rating}\t\t\t\ttest\t")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_folds_are_a_fixed_shuffle_dealt_evenly() -> None:
    fold = crossval.assign_folds(83)
    assert fold == crossval.assign_folds(83)
    assert fold != crossval.assign_folds(83, seed=1)
    sizes = [fold.count(k) for k in range(crossval.FOLDS)]
    assert sorted(sizes) == [16, 16, 17, 17, 17]
    assert fold[:10] != sorted(fold[:10])  # shuffled, not dealt in order


def test_a_folds_training_part_is_everything_outside_it() -> None:
    examples = [([f"f{i}"], i % 4) for i in range(10)]
    fold = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    part = crossval.training_part(examples, fold, 0)
    assert [e[0][0] for e in part] == ["f1", "f2", "f4", "f5", "f7", "f8"]


@dataclass(frozen=True)
class Fitted:
    path: Path
    rows: list[Row]
    fold: list[int]
    models: crossval.FoldModels


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    """The small set's fold models, trained once for the tests that read them."""
    tmp = tmp_path_factory.mktemp("crossval")
    path = write_set(tmp / "set.tsv")
    rows = read_rows(path)
    fold = crossval.assign_folds(len(rows))
    return Fitted(path, rows, fold, crossval.fit_folds(rows, fold, tmp / "cv", digest([path])))


def test_fold_models_never_saw_their_fold(fitted: Fitted) -> None:
    path, fold, models = fitted.path, fitted.fold, fitted.models
    assert len(models.linear) == len(models.hidden) == crossval.FOLDS
    assert MARK not in models.linear[0].weights and MARK not in models.hidden[0].index
    for k in range(1, crossval.FOLDS):  # the others learned the mark from fold 0
        assert MARK in models.linear[k].weights and MARK in models.hidden[k].index
    kept = json.loads((path.parent / "cv" / "folds.json").read_text())
    assert kept == {"data": digest([path]), "folds": fold}
    again = crossval.read_folds(path.parent / "cv", digest([path]), fold)
    assert [m.dumps() for m in again.linear] == [m.dumps() for m in models.linear]
    assert [h.dumps() for h in again.hidden] == [h.dumps() for h in models.hidden]
    with pytest.raises(ValueError, match="other data or other folds"):
        crossval.read_folds(path.parent / "cv", "another", fold)
    with pytest.raises(ValueError, match="other data or other folds"):
        crossval.read_folds(path.parent / "cv", digest([path]), fold[::-1])


def test_every_reply_is_read_with_its_own_folds_models(fitted: Fitted) -> None:
    rows, fold, models = fitted.rows, fitted.fold, fitted.models
    rules = default_rules()
    s = crossval.cross_score(rows, fold, models, rules)
    assert rules.weigher is not None
    right = unclear = 0
    for row, k in zip(rows, fold, strict=True):
        w = replace(rules.weigher, model=models.linear[k], hidden=models.hidden[k])
        reading = understand(row.text, replace(rules, weigher=w))
        right += reading.rating is row.rating
        unclear += reading.confidence is Confidence.UNCLEAR
    assert crossval.figures(s) == {
        "replies": N,
        "right": right,
        "dangerous": 0,
        "closing": 0,
        "unclear": unclear,
    }
    alone = crossval.cross_score(rows, fold, models, rules, linear_only=True)
    right_alone = 0
    for row, k in zip(rows, fold, strict=True):
        w = replace(rules.weigher, model=models.linear[k], hidden=None)
        right_alone += understand(row.text, replace(rules, weigher=w)).rating is row.rating
    assert sum(alone.right.values()) == right_alone
    # not the packaged models' reading: those learned from far more
    assert s.right != score(rows).right or s.unclear != score(rows).unclear


def test_scores_add_up_and_count_closing_and_unclear(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(
        "满意\tunsatisfied\t\t\t\ta\t\n满意，就是没人来\tunsatisfied\t\t\t\tb\t\n"
        "不满意\tunsatisfied\t\t\t\ta\t\n",
        encoding="utf-8",
    )
    rows = read_rows(path)
    one, two = score(rows[:1]), score(rows[1:])
    both = one + two
    assert both.total == score(rows).total and len(both.dangerous) == len(score(rows).dangerous)
    assert both.unclear == one.unclear + two.unclear == score(rows).unclear
    assert one.closing == 1  # 「满意」 read as satisfied for sure: the survey would close
    assert [r.rating for _, r in both.dangerous][:1] == [Rating.SATISFIED]


def test_main_trains_once_then_reuses_the_kept_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_set(tmp_path / "set.tsv")
    out = tmp_path / "cv"
    args = ["--dir", str(out), "--jobs", "1", "--sweep", "lift=0.7,0.9", str(path)]
    assert crossval.main(args) == 0
    first = capsys.readouterr().out
    assert "fold 4: 48 replies" in first
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert crossval.main(args) == 0
    second = capsys.readouterr().out
    assert "training" not in second
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    result = json.loads(second.strip().splitlines()[-1])
    assert [r["settings"] for r in result["results"]] == [{"lift": 0.7}, {"lift": 0.9}]
    assert all(r["replies"] == N for r in result["results"])
    assert result["results"] == json.loads(first.strip().splitlines()[-1])["results"]
    assert crossval.main([*args, "--linear-only", "--kinds"]) == 0
    alone = capsys.readouterr().out
    assert "training" not in alone and "out of fold, {'lift': 0.7}: 60 replies" in alone
    assert "  test " in alone and "dangerous per kind:" in alone
    assert json.loads(alone.strip().splitlines()[-1])["linear_only"] is True
    # other data: trained again
    path.write_text(path.read_text(encoding="utf-8") + "很满意\tsatisfied\t\t\t\ttest\t\n")
    assert crossval.main(args) == 0
    assert "training the fold models" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--set", "lift"], "expected NAME=VALUE"),
        (["--set", "weights=x"], "expected NAME=VALUE"),
        (["--sweep", "lift=0.7,high"], "is not a list of numbers"),
        (["--set", "lift=0.7,0.8"], "--set takes one value"),
        (["--set", "lift=1.5"], "lift"),  # refused as the rules file would refuse it
        (["--set", "danger_cost=0.5"], "danger_cost"),
    ],
)
def test_a_bad_setting_is_refused_saying_why(
    args: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        crossval.main(args)
    assert exit_.value.code == 2
    assert reason in capsys.readouterr().err


def test_a_held_out_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from sms.understand.learned.labelled import HELDOUT_V2

    with pytest.raises(SystemExit):
        crossval.main([str(HELDOUT_V2)])
    assert "held-out set" in capsys.readouterr().err


def test_settings_grid_is_every_combination_with_the_fixed_ones() -> None:
    grid = crossval.settings_grid(["veto=0.3"], ["lift=0.6,0.7", "withhold=0.1,0.2"])
    assert grid == [
        {"veto": 0.3, "lift": 0.6, "withhold": 0.1},
        {"veto": 0.3, "lift": 0.6, "withhold": 0.2},
        {"veto": 0.3, "lift": 0.7, "withhold": 0.1},
        {"veto": 0.3, "lift": 0.7, "withhold": 0.2},
    ]
    assert crossval.settings_grid([], []) == [{}]  # the packaged settings
    rules = crossval.rules_with({"lift": 0.6})
    assert rules.weigher is not None and rules.weigher.lift == 0.6
    assert rules.weigher.hidden is default_rules().weigher.hidden  # type: ignore[union-attr]
