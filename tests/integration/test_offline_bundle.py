"""The offline bundle (scripts/bundle.sh, packaging/install.sh) on a fresh Debian 12 with
no network: a minbase bookworm root made from Debian's packages (scripts/bookworm-base.sh),
entered with chroot inside a network namespace of its own (``unshare --net``: only a
loopback, nothing reaches out). The installer runs there; then the gateway is started
from what it installed, as the ``minyi`` user, against the Redis the bundle brought
(with the persistence settings it configured), takes a survey and drains on SIGTERM.
An upgrade (a newer build of the bundle) keeps the config and the data.

Slow (a bundle, an install of 36 packages and a venv): about three minutes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.localstack import SOURCE_ADDR, TEMPLATE, TOKEN

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INSIDE = "/tmp/bundle"  # where the unpacked bundle sits in the fresh root
NET_TIMEOUT_S = 900


def _need_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the offline install needs root (chroot, unshare, apt inside the root)")
    for tool in ("unshare", "chroot", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing on this machine")
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is not installed here (scripts/setup.sh installs it with apt)")


def _run(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,  # type: ignore[call-overload]
    )
    assert proc.returncode == 0, (
        f"{cmd[:3]} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """`scripts/bundle.sh` (what `make bundle` runs), unpacked: the bundle's folder. Its
    wheels are the session's wheelhouse (the image test's too), made once."""
    _need_root_tools()
    wheels = request.getfixturevalue("wheelhouse")
    out = tmp_path_factory.mktemp("dist")
    t0 = time.monotonic()
    proc = _run(
        ["bash", str(REPO / "scripts/bundle.sh")],
        NET_TIMEOUT_S,
        env={
            **os.environ,
            "OUT": str(out),
            "MINYI_BUNDLE_BUILD": "test1",
            "MINYI_WHEELHOUSE": str(wheels),
        },
    )
    tarball = Path(proc.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"minyi-[0-9.]+-bookworm-amd64\.tar\.gz", tarball.name), tarball
    print(f"bundle built in {time.monotonic() - t0:.0f}s: {tarball.stat().st_size >> 20} MiB")
    with tarfile.open(tarball) as tar:
        tar.extractall(out / "unpacked", filter="tar")
    (folder,) = (out / "unpacked").iterdir()
    return folder


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh Debian 12 minbase root (no python3, no redis-server)."""
    _need_root_tools()
    proc = _run(["bash", str(REPO / "scripts/bookworm-base.sh")], NET_TIMEOUT_S)
    base = proc.stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("bookworm")
    _run(["tar", "-C", str(root), "-xf", base], 300)
    # As in any chroot: packages' maintainer scripts must not start services here.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    assert not (root / "usr/bin/python3").exists() and not (root / "usr/bin/redis-server").exists()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def offline(root: Path, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) as root inside ``root``, in network, mount and pid namespaces
    of its own: loopback only, and every process it started ends with it."""
    inner = (
        f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
        f"ip link set lo up && exec chroot {root} /bin/sh -c {_quote(script)}"
    )
    return subprocess.run(
        ["unshare", "--net", "--mount", "--pid", "--fork", "sh", "-c", inner],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _install(root: Path, bundle: Path) -> str:
    target = root / INSIDE.lstrip("/")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(bundle, target, symlinks=True)
    t0 = time.monotonic()
    # the proof that nothing is fetched: no route out, and curl-less apt/pip would fail
    proc = offline(root, f"ip route get 1.1.1.1 2>/dev/null && exit 99; {INSIDE}/install.sh")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"install.sh ran in {time.monotonic() - t0:.0f}s")
    return proc.stdout


CONFIG = f"""
workers = ["api"]
redis_url = "redis://127.0.0.1:6379/0"
[api]
host = "127.0.0.1"
port = 8080
[[api.tokens]]
name = "core"
units = ["*"]
[surveys.quiet_hours]
enabled = false
[sms]
source_addr = "{SOURCE_ADDR}"
[sms.templates.default]
text = "{TEMPLATE}"
max_parts = 2
[dialer]
units = ["330602"]
[dialer.ami]
secret = "bundle-ami-secret"
[dialer.asterisk]
trunk_host = "10.20.30.40"
[[dialer.asterisk.agents]]
name = "agent1"
contact = "sip:agent1@10.20.30.6"
[dialer.asterisk.units]
330602 = ["agent1"]
"""

# Run inside the installed machine: the bundle's Redis with its own redis.conf, then the
# gateway as the minyi user; a survey through the API; SIGTERM; the Asterisk files.
CHECK = r"""
set -u
install -d -o redis -g redis /run/redis
runuser -u redis -- redis-server /etc/redis/redis.conf --daemonize no --supervised no \
  --logfile "" --pidfile "" >/tmp/redis.log 2>&1 &
for i in $(seq 100); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "appendonly=$(redis-cli config get appendonly | tail -n 1)"
echo "appendfsync=$(redis-cli config get appendfsync | tail -n 1)"
echo "maxmemory_policy=$(redis-cli config get maxmemory-policy | tail -n 1)"
export MINYI_API_TOKEN_CORE=__TOKEN__
# setpriv execs the gateway itself (runuser would stand between, and answer SIGTERM)
AS_MINYI="setpriv --reuid=minyi --regid=minyi --init-groups --"
$AS_MINYI /opt/minyi/current/bin/minyi run \
  --config /etc/minyi/minyi.toml --instance bundle >/tmp/minyi.log 2>&1 &
GW=$!
python3 - <<'PY'
import json, time, urllib.request
base = "http://127.0.0.1:8080"
deadline = time.monotonic() + 60
while True:
    try:
        health = json.load(urllib.request.urlopen(base + "/healthz", timeout=2))
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
print("health=" + json.dumps(health))
survey = {"survey_id": "BUNDLE-1", "phone": "13800138000", "service_type": "110",
          "unit_code": "330602", "officer_id": "P1", "occurred_at": "2026-11-23T10:05:00+08:00"}
req = urllib.request.Request(base + "/v1/surveys", data=json.dumps(survey).encode(),
    headers={"Authorization": "Bearer __TOKEN__", "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as resp:
    print(f"post={resp.status}")
PY
kill -TERM $GW
wait $GW
echo "gateway_exit=$?"
grep -o 'reader=[a-z ]*' /tmp/minyi.log | head -n 1
echo "survey_state=$(redis-cli hget minyi:survey:BUNDLE-1 state)"
$AS_MINYI /opt/minyi/current/bin/minyi asterisk render --config /etc/minyi/minyi.toml \
  --out /tmp/asterisk-conf >/dev/null && echo "rendered=$(ls /tmp/asterisk-conf | tr '\n' ' ')"
redis-cli shutdown >/dev/null 2>&1
"""


def _values(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def test_install_offline_then_run_then_upgrade(machine: Path, bundle: Path) -> None:
    root = machine
    out = _install(root, bundle)
    assert "installing 36 packages" in out or "installing" in out
    # the user, the release, the config, the data, the units, Redis settings
    assert re.search(r"^minyi:x:\d+:\d+:Minyi Gateway:/var/lib/minyi:/usr/sbin/nologin$",
                     (root / "etc/passwd").read_text(), re.M)  # fmt: skip
    current = root / "opt/minyi/current"
    assert os.readlink(current) == "releases/0.1.0-test1"
    assert (current / "bin/minyi").exists() and (current / "bin/python3").exists()
    config = root / "etc/minyi/minyi.toml"
    assert config.read_text() == (REPO / "minyi.example.toml").read_text()
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    data = root / "var/lib/minyi"
    assert (data.stat().st_uid, data.stat().st_mode & 0o777) == (_uid(root, "minyi"), 0o750)
    for unit in ("minyi.service", "minyi@.service"):
        assert (root / "etc/systemd/system" / unit).read_text() == (
            REPO / "packaging/systemd" / unit
        ).read_text()
    assert "include /etc/redis/minyi.conf" in (root / "etc/redis/redis.conf").read_text()
    # the product only: no test tool, no test-only template
    site = next((current / "lib").glob("python3.11/site-packages"))
    assert not (site / "smsc").exists() and not (site / "devstack").exists()
    assert (site / "dialplans/extensions.conf.tmpl").exists()
    assert not (site / "dialplans/test").exists()

    # the operator edits the config; the gateway runs from the installed release
    config.write_text(CONFIG)
    result = offline(root, CHECK.replace("__TOKEN__", TOKEN), timeout=180)
    got = _values(result.stdout)
    logs = result.stdout + result.stderr + _read(root, "tmp/minyi.log")
    assert got.get("appendonly") == "yes", logs
    assert got.get("appendfsync") == "everysec"
    assert got.get("maxmemory_policy") == "noeviction"
    assert json.loads(got["health"])["redis"]["ok"] is True, logs
    assert got.get("post") == "201", logs
    assert got.get("gateway_exit") == "0", logs  # SIGTERM drains and ends cleanly
    # the reply reader compiled for Debian's python3 (minyi-reader, from wheelhouse.sh)
    assert got.get("reader") == "compiled", logs
    assert got.get("survey_state") in ("queued", "accepted"), logs
    assert set(got.get("rendered", "").split()) == {
        "pjsip.conf",
        "queues.conf",
        "extensions.conf",
        "manager.conf",
    }, logs

    # upgrade: a newer build; config and data stay, the old release stays for rollback
    (data / "keep-me").write_text("data")
    newer = bundle.parent / "newer"
    shutil.copytree(bundle, newer, symlinks=True)
    info = newer / "BUNDLE"
    info.write_text(info.read_text().replace("build=test1", "build=test2"))
    _rehash(newer)
    out = _install(root, newer)
    assert os.readlink(current) == "releases/0.1.0-test2"
    assert os.readlink(root / "opt/minyi/previous") == "releases/0.1.0-test1"
    assert config.read_text() == CONFIG  # never overwritten
    assert (data / "keep-me").read_text() == "data"
    assert "installing" not in out  # the packages were there already
    again = offline(
        root, "/opt/minyi/current/bin/minyi config check --config /etc/minyi/minyi.toml"
    )
    assert again.returncode == 2 and "MINYI_API_TOKEN_CORE" in again.stderr  # the secret is env's


def _uid(root: Path, user: str) -> int:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2])
    raise AssertionError(f"no user {user}")


def _read(root: Path, rel: str) -> str:
    path = root / rel
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _rehash(folder: Path) -> None:
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(folder)}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
