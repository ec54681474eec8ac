"""Compile the reply reader with mypyc (sms.understand.compiled says what and why).

    .venv/bin/python scripts/compile_reader.py build    # nothing to do when current
    .venv/bin/python scripts/compile_reader.py status   # compiled, stale, not built, off

The build is made in a scratch directory and then replaces the old one whole, its stamp
written last: a reader that imports meanwhile finds the old build (or none), never half
of a new one. mypyc comes with mypy (the dev dependencies) and needs gcc and Python's
headers (python3-dev), which scripts/setup.sh installs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sms.understand import compiled  # noqa: E402


def build() -> str:
    """Compile `compiled.MODULES` into `compiled.build_dir()` unless it is current."""
    state = compiled.status()
    if state in ("compiled", "off"):
        return state
    target = compiled.build_dir()
    work = Path(tempfile.mkdtemp(prefix="minyi-reader-"))
    try:
        jobs = str(os.cpu_count() or 1)
        run = [sys.executable, __file__, "_setup", str(work), jobs]
        out = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
            raise SystemExit(f"compile_reader: mypyc failed (exit {out.returncode})")
        made = work / "lib"
        stamp = json.dumps(compiled.stamp(), indent=1) + "\n"
        (made / compiled.STAMP).write_text(stamp, encoding="utf-8")
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        shutil.move(str(made), target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "compiled"


def setup(work: Path, jobs: str) -> None:
    """In a child process, from the repository's root: mypyc writes C into `work`/c and
    setuptools builds the extensions into `work`/lib."""
    from mypyc.build import mypycify
    from setuptools import setup

    paths = [str(compiled.source_of(m).relative_to(ROOT)) for m in compiled.MODULES]
    extensions = mypycify(
        paths, opt_level="3", group_name=compiled.GROUP, target_dir=str(work / "c")
    )
    args = ["build_ext", "--build-lib", str(work / "lib"), "--build-temp", str(work / "o")]
    setup(name=compiled.GROUP, ext_modules=extensions, script_args=[*args, "--parallel", jobs])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compile_reader.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="compile the reader (nothing to do when current)")
    sub.add_parser("status", help="compiled, stale, not built or off")
    child = sub.add_parser("_setup")
    child.add_argument("work", type=Path)
    child.add_argument("jobs")
    args = parser.parse_args(argv)
    if args.command == "_setup":
        setup(args.work, args.jobs)
    elif args.command == "build":
        print(f"compile_reader: {build()} ({compiled.build_dir()})")
    else:
        print(f"{compiled.status()} ({compiled.build_dir()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
