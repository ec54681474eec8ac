"""`minyi parse`: called as sms.understand.cli.main and as ``python -m sms.understand.cli``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sms.understand.cli import main
from sms.understand.rules import DEFAULT_RULES_PATH

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS = [
    "rating", "reasons", "praise", "opt_out", "explanation", "hint", "text",
    "confidence", "cues", "correction", "clarify",
]  # fmt: skip


def test_readable_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["3 出警太慢"]) == 0
    out = capsys.readouterr().out
    assert "rating:    unsatisfied" in out
    assert "reasons:   slow_response (出警慢)" in out
    assert "opt-out:   no" in out
    assert "  - digit 3 → unsatisfied (scheme)" in out


def test_readable_output_shows_confidence_and_cues(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["真是太满意了，人影都没见到"]) == 0
    out = capsys.readouterr().out
    assert "rating:    unsatisfied" in out
    assert "confidence: unclear" in out
    assert "cues:      rating_word, complaint, complaint_beside_praise" in out
    assert "clarify:   yes" in out
    assert main(["更正一下，给3"]) == 0
    assert "correction: yes" in capsys.readouterr().out


def test_readable_output_shows_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["打错了"]) == 0
    assert "hint:      citizen says wrong number" in capsys.readouterr().out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "态度很好，但是结果不满意 TD"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    data = json.loads(out)
    assert list(data) == KEYS
    assert data["rating"] == "unsatisfied"
    assert data["reasons"] == ["result"]
    assert data["praise"] == {"flag": True, "words": ["态度很好"]}
    assert data["opt_out"] is True
    assert "满意" in out  # UTF-8, not \\u escapes


def test_stdin_one_json_object_per_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n3 TD\r\n\n我没有报过警\n滿意"))
    assert main(["--json", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    readings = [json.loads(line) for line in lines]
    assert [r["text"] for r in readings] == ["1", "3 TD", "", "我没有报过警", "滿意"]
    assert [r["rating"] for r in readings] == [
        "satisfied",
        "unsatisfied",
        "unknown",
        "unknown",
        "satisfied",
    ]
    assert readings[1]["opt_out"] is True
    assert readings[3]["hint"] == "citizen says they never called the police"


def test_stdin_readable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n3\n"))
    assert main(["-"]) == 0
    out = capsys.readouterr().out
    assert out.count("rating:") == 2
    assert "\n\ntext:      3\n" in out


def test_rules_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    rules.write_text(
        text.replace('"3" = "unsatisfied"', '"3" = "unsatisfied"\n"4" = "unsatisfied"')
    )
    assert main(["--json", "--rules", str(rules), "4"]) == 0
    assert json.loads(capsys.readouterr().out)["rating"] == "unsatisfied"


def test_bad_rules_file_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace("version = 1", "version = 9")
    )
    assert main(["--rules", str(rules), "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"minyi parse: {rules}: version: ")
    assert main(["--rules", str(tmp_path / "missing.toml"), "3"]) == 2


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: minyi parse" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "--rules FILE" in capsys.readouterr().out
    assert main(["--", "-TD"]) == 0
    assert "opt-out:   yes" in capsys.readouterr().out


def run_module(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sms.understand.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},  # a bare server locale
        check=False,
        timeout=60,
    )


def test_module_reads_stdin_with_bad_bytes() -> None:
    done = run_module("parse", "--json", "-", stdin=b"3 TD\n" + b"\xff\xfe\n" + "滿意\n".encode())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("utf-8").splitlines()
    assert [json.loads(line)["rating"] for line in lines] == ["unsatisfied", "unknown", "satisfied"]


def test_module_parses_one_text() -> None:
    done = run_module("parse", "满意个屁")
    assert done.returncode == 0, done.stderr
    assert "rating:    unsatisfied" in done.stdout.decode("utf-8")
    assert run_module("parse", "--rules").returncode == 2
