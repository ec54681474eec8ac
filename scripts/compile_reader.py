"""Compile the reply reader with mypyc (sms.compiled says what and why).

    .venv/bin/python scripts/compile_reader.py build    # nothing to do when current
    .venv/bin/python scripts/compile_reader.py status   # compiled, stale, not built, off
    python scripts/compile_reader.py wheel DIR          # the build as a wheel, for DIR

The wheel (scripts/wheelhouse.sh makes it with Debian 12's python3, for the offline
bundle and the image) holds the build as data files, which pip installs under the
venv's prefix, where `sms.compiled` looks: minyi_reader-VERSION, the
product's version. Its stamp names the sources it was built from, so the reader it
holds is used only beside exactly those sources.

The build is made in a scratch directory and then replaces the old one whole, its stamp
written last: a reader that imports meanwhile finds the old build (or none), never half
of a new one. mypyc comes with mypy (the dev dependencies) and needs gcc and Python's
headers (python3-dev), which scripts/setup.sh installs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sms import compiled  # noqa: E402


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


def wheel(out: Path) -> Path:
    """The build (made first if not current) as a wheel in `out`: its files as the
    wheel's data, installed by pip under the venv's prefix (`compiled.build_dir()`)."""
    if build() != "compiled":
        raise SystemExit("compile_reader: the build is not usable here (MINYI_READER=python?)")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    python = sys.implementation.cache_tag.replace("cpython-", "cp")  # cp311
    tag = f"{python}-{python}-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"
    name = f"{compiled.GROUP}-{version}"
    where = compiled.build_dir()
    files = sorted(p for p in where.rglob("*") if p.is_file())
    meta = {
        f"{name}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: minyi-reader\nVersion: {version}\n"
            "Summary: Minyi Gateway's reply reader compiled by mypyc (sms.compiled)\n"
        ),
        f"{name}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: scripts/compile_reader.py\n"
            f"Root-Is-Purelib: false\nTag: {tag}\n"
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{tag}.whl"
    records = []
    with zipfile.ZipFile(path.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as z:
        entries = [
            (f"{name}.data/data/{where.name}/{p.relative_to(where).as_posix()}", p.read_bytes())
            for p in files
        ] + [(arc, text.encode()) for arc, text in meta.items()]
        for arc, data in entries:
            z.writestr(zipfile.ZipInfo(arc, date_time=(2026, 1, 1, 0, 0, 0)), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{arc},sha256={digest.decode()},{len(data)}")
        record = f"{name}.dist-info/RECORD"
        records.append(f"{record},,")
        z.writestr(zipfile.ZipInfo(record, date_time=(2026, 1, 1, 0, 0, 0)), "\n".join(records))
    path.with_suffix(".tmp").rename(path)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compile_reader.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="compile the reader (nothing to do when current)")
    sub.add_parser("status", help="compiled, stale, not built or off")
    made = sub.add_parser("wheel", help="the build as a wheel in DIR")
    made.add_argument("dir", type=Path)
    child = sub.add_parser("_setup")
    child.add_argument("work", type=Path)
    child.add_argument("jobs")
    args = parser.parse_args(argv)
    if args.command == "_setup":
        setup(args.work, args.jobs)
    elif args.command == "wheel":
        print(f"compile_reader: {wheel(args.dir)}")
    elif args.command == "build":
        print(f"compile_reader: {build()} ({compiled.build_dir()})")
    else:
        print(f"{compiled.status()} ({compiled.build_dir()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
