"""The reader compiled by mypyc (sms.compiled): used only when built from the
sources as they are, and reading every reply exactly as the Python reader does."""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sms.understand
from sms import compiled
from sms.understand import understand
from sms.understand.learned.labelled import DATA, read_rows

ROOT = Path(__file__).resolve().parents[2]
# Beside every labelled reply: the shapes the labelled sets have few of.
EDGES = [
    "",
    " ",
    "8394720156",
    "ÂúÒâ",  # GBK bytes read as Latin-1
    "싺틢",  # read as UTF-16
    "\ud800满意",
    "满意" * 400,
    "不满意，出警太慢。" * 60,
    "1吧……算了还是2",
    "喂 你好 我 是 之前 报警 的 那个 民警 来得 挺快 的 就是 事情 到现在 还 没 处理 完",
    "ＴＤ",
    "🙂👍",
]


@pytest.fixture
def built_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The build directory and the modules' sources moved to a scratch directory: the
    build's place (not made yet) and the sources' folder."""
    where, sources = tmp_path / "build", tmp_path / "src"
    monkeypatch.setattr(compiled, "build_dir", lambda: where)
    monkeypatch.setattr(compiled, "source_of", lambda m: sources / f"{m}.py")
    monkeypatch.setattr(compiled, "_active", None)
    monkeypatch.delenv(compiled.ENV, raising=False)
    sources.mkdir()
    for module in compiled.MODULES:
        (sources / f"{module}.py").write_text(f"# {module}\n", encoding="utf-8")
    return where, sources


def test_a_build_is_used_only_with_the_stamp_of_the_sources_as_they_are(
    built_here: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, sources = built_here
    assert compiled.status() == "not built"
    where.mkdir()
    (where / compiled.STAMP).write_text(json.dumps(compiled.stamp()), encoding="utf-8")
    assert compiled.status() == "compiled"
    # a module edited after the build: its old build must not shadow it
    (sources / f"{compiled.MODULES[0]}.py").write_text("# edited\n", encoding="utf-8")
    assert compiled.status() == "stale"
    (where / compiled.STAMP).write_text(json.dumps(compiled.stamp()), encoding="utf-8")
    assert compiled.status() == "compiled"
    monkeypatch.setenv(compiled.ENV, "python")
    assert compiled.status() == "off"


def test_a_stamp_of_another_interpreter_or_a_torn_one_is_not_used(
    built_here: tuple[Path, Path],
) -> None:
    where, _ = built_here
    where.mkdir()
    other = {**compiled.stamp(), "python": "cpython-312"}
    (where / compiled.STAMP).write_text(json.dumps(other), encoding="utf-8")
    assert compiled.status() == "stale"
    (where / compiled.STAMP).write_text('{"sources": ', encoding="utf-8")
    assert compiled.status() == "not built"


def test_a_current_build_whose_library_will_not_load_is_reported_so(
    built_here: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    where, _ = built_here
    where.mkdir()
    (where / compiled.STAMP).write_text(json.dumps(compiled.stamp()), encoding="utf-8")
    monkeypatch.setattr(compiled, "_loads", lambda: False)
    assert compiled.status() == "compiled"  # the build matches the sources...
    assert compiled.reader() == "unloadable"  # ...but Python reads the replies
    path = ["/src/sms/understand"]
    assert compiled.use(path, "sms.understand") is False and path == ["/src/sms/understand"]


def test_a_build_not_current_leaves_the_package_path_alone(
    built_here: tuple[Path, Path],
) -> None:
    path = ["/src/sms/understand"]
    assert compiled.use(path, "sms.understand") is False
    assert path == ["/src/sms/understand"]


def test_the_reader_under_test_is_the_compiled_one() -> None:
    # `make test` compiles it first (scripts/compile_reader.py build); a suite run on an
    # interpreted reader would not test what ships.
    state = compiled.status()
    assert state == "compiled", (
        f"the compiled reader is {state}: run `make reader` (or unset {compiled.ENV})"
    )
    assert sms.understand.COMPILED
    for module in compiled.MODULES:
        file = importlib.import_module(module).__file__
        assert file is not None and file.startswith(str(compiled.build_dir())), module


def test_the_compiled_reader_reads_every_reply_as_the_python_reader_does() -> None:
    assert compiled.status() == "compiled", "run `make reader` first"
    texts = [row.text for path in sorted(DATA.glob("replies_*.tsv")) for row in read_rows(path)]
    texts += EDGES
    interpreted = subprocess.run(
        [sys.executable, "-c", _DUMP],
        input=json.dumps(texts),
        env={**os.environ, compiled.ENV: "python"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    python_readings = interpreted.stdout.splitlines()
    assert python_readings[0] == "interpreted"
    assert len(python_readings) == len(texts) + 1
    differ = 0
    first = None
    for text, theirs in zip(texts, python_readings[1:], strict=True):
        ours = json.dumps(understand(text).to_json())
        if ours != theirs:
            differ += 1
            first = first or (ours, theirs)
    assert differ == 0, f"{differ} of {len(texts)} readings differ, e.g. {first}"
    assert len(texts) > 90_000


# The Python reader, in a child process: one JSON reading a line.
_DUMP = """
import json, sys
import sms.understand as u
print("compiled" if u.COMPILED else "interpreted")
for text in json.load(sys.stdin):
    print(json.dumps(u.understand(text).to_json()))
"""


def test_the_build_as_a_wheel_installs_under_the_venv_prefix(tmp_path: Path) -> None:
    # scripts/wheelhouse.sh ships it so (minyi_reader) to the offline bundle and the image
    assert compiled.status() == "compiled", "run `make reader` first"
    spec = importlib.util.spec_from_file_location(
        "compile_reader", ROOT / "scripts/compile_reader.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = script.wheel(tmp_path)
    assert path.name.startswith("minyi_reader-") and path.name.endswith("-linux_x86_64.whl")
    data = f"{path.name.split('-')[0]}-{path.name.split('-')[1]}.data/data/minyi-reader/"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        record = z.read(next(n for n in names if n.endswith(".dist-info/RECORD"))).decode()
        built = {
            p.relative_to(compiled.build_dir()).as_posix()
            for p in compiled.build_dir().rglob("*")
            if p.is_file()
        }
        assert {n[len(data) :] for n in names if n.startswith(data)} == built
        assert compiled.STAMP in built
        for line in record.splitlines():
            name, digest, size = line.rsplit(",", 2)
            if not digest:
                continue
            raw = z.read(name)
            want = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(raw), name
        assert (
            "Root-Is-Purelib: false"
            in z.read(next(n for n in names if n.endswith("WHEEL"))).decode()
        )
