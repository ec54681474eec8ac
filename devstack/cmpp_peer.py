"""The CMPP SMS center the project did not write: gocmpp's server side (Go), with the
project's small program on top (tests/peers/cmpp_smsc/main.go), for the CMPP tests
and the CMPP bench.

`build()` copies gocmpp (``../shared/peers/gocmpp`` beside the repository or beside
the one it was cloned from, or ``$MINYI_GOCMPP``) and the program into ``var/``, and
builds it offline with Debian's ``golang-go`` (``GOFLAGS=-mod=vendor GOPROXY=off``:
every dependency is vendored in gocmpp). A second call reuses the binary while the
program is unchanged. `CmppPeer` runs it and speaks its HTTP control API.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from devstack.localstack import end_process

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "peers" / "cmpp_smsc" / "main.go"
VAR = ROOT / "var" / "cmpp-peer"
SP_ID, SECRET = "901234", "s3cret-cmpp"
#: The 106 number the CMPP binds of the tests and the bench send from.
SRC_ID = "1065730001"


def gocmpp_source() -> Path:
    """Where the gocmpp copy is (ORIGIN.md there says what it is): ``$MINYI_GOCMPP``,
    else ``../shared/peers/gocmpp`` beside this checkout, else beside the checkout this
    one was cloned from (a clean clone made elsewhere, as CI and release checks do)."""
    if "MINYI_GOCMPP" in os.environ:
        return Path(os.environ["MINYI_GOCMPP"])
    candidates = [ROOT.parent / "shared" / "peers" / "gocmpp"]
    origin = _local_origin()
    if origin is not None:
        candidates.append(origin.parent / "shared" / "peers" / "gocmpp")
    for candidate in candidates:
        if (candidate / "go.mod").is_file():
            return candidate
    return candidates[0]


def _local_origin() -> Path | None:
    """The folder this checkout was cloned from, when that is a local path."""
    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if path.is_absolute() and path.is_dir() else None


def build() -> Path:
    """The peer's binary, built if the program changed since the last build."""
    source = gocmpp_source()
    if not (source / "go.mod").is_file():
        raise RuntimeError(f"gocmpp not found at {source} (set MINYI_GOCMPP)")
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found: scripts/setup.sh installs golang-go")
    digest = hashlib.sha256(PROGRAM.read_bytes() + str(source).encode()).hexdigest()[:16]
    binary = VAR / f"cmpp-smsc-{digest}"
    if binary.is_file():
        return binary
    tree = VAR / "gocmpp"
    shutil.rmtree(tree, ignore_errors=True)
    VAR.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, tree)
    for path in tree.rglob("*"):  # the shared copy is read-only
        path.chmod(path.stat().st_mode | 0o200)
    (tree / "examples" / "minyi-smsc").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROGRAM, tree / "examples" / "minyi-smsc" / "main.go")
    env = {
        **os.environ,
        "GOFLAGS": "-mod=vendor",
        "GOPROXY": "off",
        "GOCACHE": str(VAR / "go-cache"),
        "GOPATH": str(VAR / "go-path"),
    }
    done = subprocess.run(
        [go, "build", "-o", str(binary), "./examples/minyi-smsc"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the CMPP peer failed:\n{done.stderr[-3000:]}")
    return binary


class CmppPeer:
    """One running peer (CMPP 2.0 or 3.0) and its control API."""

    def __init__(self, version: int, *, active_test_s: float = 5.0) -> None:
        self.version = version
        self.active_test_s = active_test_s
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.control_port = 0
        self._http: aiohttp.ClientSession | None = None

    @property
    def protocol(self) -> str:
        """The gateway's name for this peer's version."""
        return f"cmpp{self.version}"

    def start(self) -> None:
        """Build if needed, start, and read the ports it listens on."""
        binary = build()
        self.proc = subprocess.Popen(
            [
                str(binary),
                f"-version={self.version}",
                f"-sp-id={SP_ID}",
                f"-secret={SECRET}",
                f"-active-test={self.active_test_s}s",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the CMPP peer exited at start (code {self.proc.wait(5)})")
        ports = json.loads(line)
        self.port, self.control_port = int(ports["cmpp_port"]), int(ports["control_port"])

    def stop(self) -> None:
        """Stop the process."""
        if self.proc is not None:
            end_process(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    async def close(self) -> None:
        """Close the control client (the process is stopped by stop())."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One control request; its JSON answer."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        url = f"http://127.0.0.1:{self.control_port}{path}"
        async with self._http.request(method, url, json=body) as r:
            r.raise_for_status()
            return await r.json()

    async def all(self, what: str) -> list[dict[str, Any]]:
        """Every record of /submits or /deliveries, page by page."""
        out: list[dict[str, Any]] = []
        while True:
            page = await self.call("GET", f"/{what}?since={len(out)}")
            if not page[what]:
                return out
            out.extend(page[what])

    async def submits(self) -> list[dict[str, Any]]:
        """Every CMPP_SUBMIT the peer answered (or dropped), in order."""
        return await self.all("submits")

    async def deliveries(self) -> list[dict[str, Any]]:
        """Every status report and MO message it sent, with attempts and acks."""
        return await self.all("deliveries")

    async def messages(self) -> list[dict[str, Any]]:
        """The texts as handsets would show them (long ones reassembled)."""
        return list((await self.call("GET", "/messages"))["messages"])

    async def stats(self) -> dict[str, Any]:
        """Counters."""
        return dict(await self.call("GET", "/stats"))

    async def behaviour(self, **changes: Any) -> dict[str, Any]:
        """Change the knobs (stat, stat_by_suffix, result8_every, report_delay_ms...)."""
        return dict(await self.call("POST", "/behaviour", changes))

    async def mo(self, source: str, dest: str, text: str, **how: Any) -> list[int]:
        """Send a citizen's message (encoding "ucs2"/"gbk", parts, udh16, reverse)."""
        body = {"source": source, "dest": dest, "text": text, **how}
        return list((await self.call("POST", "/mo", body))["deliveries"])

    async def drop(self, after: int = 0) -> dict[str, Any]:
        """Close every connection now, or after the `after`-th next submit."""
        return dict(await self.call("POST", "/drop", {"after": after}))
