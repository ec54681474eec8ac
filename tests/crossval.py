"""Cross-validation of the learned weigher on the training sets, never a held-out one.

The weigher's settings ([weigher] in the rules file) and its models are chosen on what
this prints, before a held-out set is read (tests/data/README.md tells each round's
figures). Every learnable training reply (`sms.understand.learned.train.learnable`) is
put in one of `FOLDS` folds by a shuffle drawn from `SEED`; for each fold both models
are trained on the other folds exactly as the trainer trains the shipped ones, and
written to files as it writes them (the hidden layer's weights rounded as shipped).
Then every reply is read by the whole reader with its own fold's models in the
weigher's place: the figures are what the reader does on replies its models never saw.

    .venv/bin/python -m tests.crossval                         # the packaged settings
    .venv/bin/python -m tests.crossval --set lift=0.7 --set danger_cost=12
    .venv/bin/python -m tests.crossval --sweep lift=0.6,0.7,0.8 --sweep withhold=0.1,0.15

The fold models are kept in ``var/crossval`` (``--dir``) and trained again only when the
training files change (their hash, `train.digest`): about twenty minutes on two cores, then
about ten seconds a setting. Prints a line a setting, then one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from sms.understand import Rules
from sms.understand.learned import Model, load_model, write_weights
from sms.understand.learned.hidden import Hidden, load_hidden
from sms.understand.learned.labelled import TRAINING, Row
from sms.understand.learned.train import digest, examples_of, fit_both, learnable
from sms.understand.rules import DEFAULT_RULES_PATH
from sms.understand.rules.load import WEIGHER_SETTINGS, parse_rules
from tests.labelled_replies import Score, score

FOLDS: Final = 5
SEED: Final = 20261204  # round 18's folds
DEFAULT_DIR: Final = Path(__file__).resolve().parent.parent / "var" / "crossval"


def assign_folds(n: int, folds: int = FOLDS, seed: int = SEED) -> list[int]:
    """The fold of each of `n` replies: a shuffle drawn from `seed`, dealt round."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    fold = [0] * n
    for position, i in enumerate(order):
        fold[i] = position % folds
    return fold


def training_part(
    examples: Sequence[tuple[list[str], int]], fold: Sequence[int], k: int
) -> list[tuple[list[str], int]]:
    """The examples a fold's models learn from: every one outside fold `k`."""
    return [e for e, f in zip(examples, fold, strict=True) if f != k]


@dataclass(frozen=True)
class FoldModels:
    """Both models of each fold, trained without that fold's replies."""

    linear: tuple[Model, ...]
    hidden: tuple[Hidden, ...]


def fit_folds(
    rows: Sequence[Row], fold: Sequence[int], out: Path, data: str, jobs: int = 1
) -> FoldModels:
    """Train both models of every fold as the trainer does and write them into `out`
    (with `data` and the folds in ``folds.json``); return them as read back."""
    out.mkdir(parents=True, exist_ok=True)
    examples = examples_of(rows)
    folds = max(fold) + 1
    for k in range(folds):
        started = time.monotonic()
        part = training_part(examples, fold, k)
        model, hidden = fit_both(part, data, jobs)
        write_weights(out / f"fold{k}.weights.json.gz", model.dumps())
        write_weights(out / f"fold{k}.hidden.json.gz", hidden.dumps())
        print(f"fold {k}: {len(part)} replies, {time.monotonic() - started:.0f} s", flush=True)
    (out / "folds.json").write_text(json.dumps({"data": data, "folds": list(fold)}) + "\n")
    return read_folds(out, data, fold)


def read_folds(out: Path, data: str, fold: Sequence[int]) -> FoldModels:
    """The fold models kept in `out`; ValueError when they were trained on other data or
    other folds (or are not all there)."""
    try:
        kept = json.loads((out / "folds.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{out}: no fold models ({exc})") from None
    if kept.get("data") != data or kept.get("folds") != list(fold):
        raise ValueError(f"{out}: fold models of other data or other folds")
    folds = max(fold) + 1
    try:
        linear = tuple(load_model(out / f"fold{k}.weights.json.gz") for k in range(folds))
        hidden = tuple(load_hidden(out / f"fold{k}.hidden.json.gz") for k in range(folds))
    except OSError as exc:
        raise ValueError(f"{out}: a fold's model is missing ({exc})") from None
    return FoldModels(linear, hidden)


def rules_with(settings: dict[str, float]) -> Rules:
    """The packaged rules with [weigher] settings changed (checked as a rules file's)."""
    data = tomllib.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    changed = copy.deepcopy(data)
    changed["weigher"].update(settings)
    return parse_rules(changed, f"{DEFAULT_RULES_PATH} with {settings}")


def cross_score(
    rows: Sequence[Row],
    fold: Sequence[int],
    models: FoldModels,
    rules: Rules,
    *,
    linear_only: bool = False,
) -> Score:
    """Every row read by `rules` with its own fold's models in the weigher's place (the
    linear model's alone if `linear_only`, as before round 18)."""
    if rules.weigher is None:
        raise ValueError("the rules have no weigher to cross-validate")
    total: Score | None = None
    for k, (linear, hidden) in enumerate(zip(models.linear, models.hidden, strict=True)):
        weigher = replace(rules.weigher, model=linear, hidden=None if linear_only else hidden)
        part = score(
            [r for r, f in zip(rows, fold, strict=True) if f == k], replace(rules, weigher=weigher)
        )
        total = part if total is None else total + part
    if total is None:
        raise ValueError("no fold to read")
    return total


def figures(s: Score) -> dict[str, int]:
    """The counts a setting is judged by."""
    return {
        "replies": sum(s.total.values()),
        "right": sum(s.right.values()),
        "dangerous": len(s.dangerous),
        "closing": s.closing,
        "unclear": s.unclear,
    }


def parse_setting(text: str) -> tuple[str, list[float]]:
    """「lift=0.6,0.7」 → ("lift", [0.6, 0.7]); ValueError saying what is wrong."""
    name, sep, values = text.partition("=")
    if not sep or name not in WEIGHER_SETTINGS:
        raise ValueError(
            f"{text!r}: expected NAME=VALUE[,VALUE...], NAME one of {WEIGHER_SETTINGS}"
        )
    try:
        return name, [float(v) for v in values.split(",")]
    except ValueError:
        raise ValueError(f"{text!r}: {values!r} is not a list of numbers") from None


def settings_grid(sets: Sequence[str], sweeps: Sequence[str]) -> list[dict[str, float]]:
    """Every combination of the --sweep values, each with the --set values."""
    fixed: dict[str, float] = {}
    for text in sets:
        name, values = parse_setting(text)
        if len(values) != 1:
            raise ValueError(f"{text!r}: --set takes one value (--sweep takes several)")
        fixed[name] = values[0]
    swept = dict(parse_setting(text) for text in sweeps)
    names = list(swept)
    return [
        {**fixed, **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(swept[n] for n in names))
    ]


def main(argv: list[str]) -> int:
    """Train the fold models if need be, then print the figures of each setting."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where fold models are kept")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the linear descents")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE, for every line")
    parser.add_argument("--sweep", action="append", default=[], help="NAME=V1,V2,...")
    parser.add_argument(
        "--linear-only", action="store_true", help="without the hidden layer (as before round 18)"
    )
    parser.add_argument("--kinds", action="store_true", help="a per-kind table for each setting")
    parser.add_argument("files", type=Path, nargs="*", default=list(TRAINING))
    args = parser.parse_args(argv)
    try:
        grid = settings_grid(args.set, args.sweep)
        variants = [(s, rules_with(s)) for s in grid]
        rows = learnable(args.files)
    except ValueError as exc:
        parser.error(str(exc))
    data, fold = digest(args.files), assign_folds(len(rows))
    try:
        models = read_folds(args.dir, data, fold)
    except ValueError as exc:
        print(f"training the fold models: {exc}", flush=True)
        models = fit_folds(rows, fold, args.dir, data, args.jobs)
    results = []
    for settings, rules in variants:
        s = cross_score(rows, fold, models, rules, linear_only=args.linear_only)
        line = {"settings": settings, **figures(s)}
        results.append(line)
        print(" ".join(f"{k}={v}" for k, v in line.items()), flush=True)
        if args.kinds:
            print(s.table(f"out of fold, {settings or 'as packaged'}"))
            dangerous = Counter(row.kind for row, _ in s.dangerous)
            print("  dangerous per kind:", dict(sorted(dangerous.items())), flush=True)
    print(
        json.dumps(
            {
                "data": data,
                "folds": FOLDS,
                "seed": SEED,
                "linear_only": args.linear_only,
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
