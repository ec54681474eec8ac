"""``minyi asr``: list the configured speech models and install one.

``minyi asr models [--config FILE] [--models-dir DIR] [--load] [--json]``
    Every configured model with its language, sample rate, path and whether its files
    are present; ``--load`` also loads each present model in a child process and decodes
    a second of silence (slow for the big model). Exit status 0 when the worker's model
    (the default) is usable, 1 when it is not, 2 for a usage or config error.

``minyi asr fetch SOURCE [--name NAME] [--dest DIR] [--sha256 HEX] [--replace]``
    Install a model from a local .zip/.tar.gz archive, an http(s) URL, or a known
    model's name (``small-cn``, ``vosk-model-cn-0.22``...), into ``--dest`` (default: the
    models directory). Exit status 0 on success, 1 when nothing was installed.

``main`` takes the words after ``asr`` and, optionally, the gateway's ``asr`` settings as
a plain mapping: it reads the ``[asr]`` table without the rest of the gateway's config
(only the defaults come from gateway/config/asr.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asr.archive import ArchiveError
from asr.models import (
    KNOWN_MODELS,
    ModelRegistry,
    ModelStatus,
    detect_sample_rate,
    fetch_model,
    list_models,
)
from gateway.config.asr import DEFAULT_MODELS_DIR


def load_settings(path: Path) -> dict[str, Any]:
    """Read ASR settings from a .toml or .json file (its ``[asr]`` table if it has one)."""
    raw = path.read_bytes()
    data: Any = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings")
    section = data.get("asr", data)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: [asr] is not a table")
    return section


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minyi asr", description="Speech model management.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="settings file (.toml or .json)")
    common.add_argument(
        "--models-dir", type=Path, help=f"where models live (default {DEFAULT_MODELS_DIR})"
    )
    models = sub.add_parser("models", parents=[common], help="list configured models")
    models.add_argument("--load", action="store_true", help="also load each present model")
    models.add_argument("--json", action="store_true", help="one JSON object per model")
    fetch = sub.add_parser("fetch", parents=[common], help="install a model archive")
    fetch.add_argument("source", help="archive path, http(s) URL, or known model name")
    fetch.add_argument("--name", help="directory name to install as (default: from archive)")
    fetch.add_argument("--dest", type=Path, help="install directory (default: models dir)")
    fetch.add_argument("--sha256", help="expected SHA-256 of the archive")
    fetch.add_argument("--replace", action="store_true", help="replace an installed model")
    return parser


def _print_status(status: ModelStatus, out: Any) -> None:
    spec = status.spec
    mark = "*" if status.is_default else " "
    state = "present" if status.files.present else "missing"
    if status.load is not None:
        state = "loadable" if status.load.ok else "load FAILED"
    rate = spec.sample_rate or detect_sample_rate(spec.path)
    print(
        f"{mark} {spec.name:<10} {spec.language:<6} {rate:>5} Hz  {state:<11} {spec.path}",
        file=out,
    )
    if status.files.missing and status.files.missing != ("(directory)",):
        print(f"      missing: {', '.join(status.files.missing)}", file=out)
    if status.load is not None:
        if status.load.ok:
            print(
                f"      loaded in {status.load.load_s:.1f} s, "
                f"peak {status.load.peak_rss_mb:.0f} MB",
                file=out,
            )
        else:
            print(f"      error: {status.load.error}", file=out)
    if status.known is not None:
        k = status.known
        print(f"      {k.name}, {k.size}; error rate {k.error_rates}; {k.memory}", file=out)
    if spec.notes:
        print(f"      {spec.notes}", file=out)


def _cmd_models(registry: ModelRegistry, args: argparse.Namespace) -> int:
    statuses = list_models(registry, load=args.load)
    if args.json:
        for status in statuses:
            print(json.dumps(status.to_json(), ensure_ascii=False))
    else:
        print(f"models in {registry.models_dir} (* = used by the ASR worker)")
        for status in statuses:
            _print_status(status, sys.stdout)
        print("fetch a known model: minyi asr fetch " + " | ".join(KNOWN_MODELS))
    default = next(s for s in statuses if s.is_default)
    return 0 if default.usable else 1


def _cmd_fetch(registry: ModelRegistry, args: argparse.Namespace) -> int:
    dest = args.dest or registry.models_dir
    try:
        path = fetch_model(
            args.source, dest, name=args.name, sha256=args.sha256, replace=args.replace
        )
    except (ArchiveError, OSError) as exc:
        print(f"minyi asr fetch: nothing installed: {exc}", file=sys.stderr)
        return 1
    print(f"installed {path}")
    return 0


def main(argv: list[str], settings: Mapping[str, Any] | None = None) -> int:
    """Run ``minyi asr`` with ``argv`` (the words after ``asr``); returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.config is not None:
            settings = load_settings(args.config)
        registry = ModelRegistry.from_settings(settings, models_dir=args.models_dir)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"minyi asr: bad settings: {exc}", file=sys.stderr)
        return 2
    if args.command == "models":
        return _cmd_models(registry, args)
    return _cmd_fetch(registry, args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
