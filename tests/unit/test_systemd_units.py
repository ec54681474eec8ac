"""The systemd units of packaging/systemd/: checked by systemd's own ``systemd-analyze
verify`` (in a scratch root holding the units, the system's own units and a stand-in
for the installed ``minyi``), and held to what the gateway does: a stop that outlasts
the drain, a restart on a dead worker (exit 70), none on a wrong config (exit 2)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.config.cli import EXIT_CONFIG_ERROR
from gateway.service import EXIT_WORKER_FAILED, drain_bound_s

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "packaging" / "systemd"
GATEWAY_UNITS = ("minyi.service", "minyi@.service")
INSTALLED_MINYI = "opt/minyi/current/bin/minyi"


def _settings(unit: str) -> dict[str, list[str]]:
    """key -> values of a unit file (every section; a key may repeat)."""
    out: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, f"write TimeoutStopSec as seconds or minutes, got {value!r}"
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root for ``systemd-analyze verify --root``: the system's units (targets the
    ours are ordered after), ours in /etc/systemd/system, and an executable where the
    installer puts ``minyi`` (verify checks that ExecStart= can be run)."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/setup.sh installs systemd")
    root = tmp_path_factory.mktemp("systemd-root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS.glob("*.service"):
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    for exe in (INSTALLED_MINYI, "usr/sbin/asterisk"):  # verify ignores RootDirectory=
        path = root / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def _verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_unit_passes_systemd_analyze_verify(scratch_root: Path) -> None:
    units = sorted(
        u.name.replace("@.", "@check.") for u in UNITS.glob("*.service")
    )  # a template is verified through one instance of it
    assert set(GATEWAY_UNITS) <= {u.name for u in UNITS.glob("*.service")}
    result = _verify(scratch_root, *units)
    # verify exits 0 on keys it ignores ("Unknown key ..., ignoring"): any word is a finding
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        result.stderr + result.stdout
    )


def test_verify_sees_a_mistake(scratch_root: Path, tmp_path: Path) -> None:
    """The check above cannot pass by not looking: a wrong value and a misplaced key
    are reported (and verify still exits 0)."""
    root = tmp_path / "root"
    shutil.copytree(scratch_root, root, symlinks=True)
    unit = root / "etc/systemd/system/minyi.service"
    text = unit.read_text().replace("Restart=on-failure", "Restart=sometimes")
    unit.write_text(text.replace("[Service]\n", "[Service]\nStartLimitIntervalSec=60\n"))
    result = _verify(root, "minyi.service")
    assert "Failed to parse service restart specifier" in result.stderr
    assert "Unknown key 'StartLimitIntervalSec' in section [Service]" in result.stderr


@pytest.mark.parametrize("unit", GATEWAY_UNITS)
def test_systemd_waits_longer_than_the_drain(unit: str) -> None:
    (timeout,) = _settings(unit)["TimeoutStopSec"]
    assert _seconds(timeout) > drain_bound_s(Settings.shutdown_grace_s)
    assert _settings(unit)["KillSignal"] == ["SIGTERM"]  # what begins the drain


@pytest.mark.parametrize("unit", GATEWAY_UNITS)
def test_a_dead_worker_restarts_and_a_wrong_config_does_not(unit: str) -> None:
    s = _settings(unit)
    assert s["Restart"] == ["on-failure"]  # any non-zero exit, EXIT_WORKER_FAILED among them
    assert EXIT_WORKER_FAILED != 0
    assert s["RestartPreventExitStatus"] == [str(EXIT_CONFIG_ERROR)]


@pytest.mark.parametrize("unit", GATEWAY_UNITS)
def test_the_gateway_runs_hardened_as_its_own_user(unit: str) -> None:
    s = _settings(unit)
    assert s["User"] == ["minyi"]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    (paths,) = s["ReadWritePaths"]
    assert "/var/lib/minyi" in paths.split()  # data and ASR models
    assert any(p.lstrip("-").startswith("/var/spool/asterisk/monitor") for p in paths.split())
    assert INSTALLED_MINYI in s["ExecStart"][0]
