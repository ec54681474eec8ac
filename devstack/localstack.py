"""A complete local stack on loopback for the demo and the benchmarks: redis-server, the
project's SMS center simulator and the gateway, each a real process on a free port.

Nothing here is used in production; it exists so `make demo` and `bench/` run the
same processes an installation runs, talking the same protocols.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import aiohttp

TOKEN = "local-core-token-0123456789"
SECRET = "whsec_" + base64.b64encode(b"minyi-local-demo-secret-0001").decode()
SMPP_USER, SMPP_PASSWORD = "minyi", "secret1"
SOURCE_ADDR = "10690001"
TEMPLATE = (
    "{signature}您好，您于{date}办理的{service}业务已完成，请评价：回复1满意，2基本满意，3不满意。"
)


# The checkout this module runs from (smsc/ and devstack/ are not installed).
SOURCE_TREE = Path(__file__).resolve().parent.parent


def free_port(ip: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on ``ip`` that nobody holds right now: TCP, or UDP with ``SOCK_DGRAM``."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def free_sip_port(ip: str, tries: int = 100) -> int:
    """A port on ``ip`` free for both UDP and TCP right now.

    A SIP stack binds one port for both: Asterisk's UDP transport and the trunk's TCP
    one, baresip's ``sip_listen``. A port the kernel hands out as free for UDP may be
    held for TCP, by a listener or by the TIME_WAIT of one of the many connections a
    test run makes; Asterisk then starts without its TCP transport, logs it, and sends
    the trunk's INVITE over UDP (a CI run's failed TCP-trunk test, round 22).
    """
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((ip, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((ip, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port on {ip} free for both UDP and TCP in {tries} tries")


def end_process(proc: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """SIGTERM a helper process and reap it; SIGKILL it if it is not gone in ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def recent_service_time() -> str:
    """An ``occurred_at`` the API takes: an hour ago, in the site's time zone (the API
    refuses times more than a year old or in the future)."""
    when = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)
    return when.isoformat(timespec="seconds")


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def redis_command(port: int, workdir: Path) -> list[str]:
    """redis-server on loopback with AOF on (a restart keeps what was written), no RDB."""
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    return [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--protected-mode",
        "yes",
    ]


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM) in MiB, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def instance_of(name: str) -> str:
    """The instance (its consumer name in Redis) of the gateway process started here
    as ``name``."""
    return f"local-{name}"


class LocalStack:
    """Start and stop the processes; `gateway_config()` writes the gateway's TOML."""

    def __init__(self, workdir: Path | None = None, *, log_level: str = "WARNING") -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="minyi-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_level = log_level
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        self.redis_port = free_port()
        self.smpp_port = free_port()
        self.smsc_control_port = free_port()
        self.api_port = free_port()

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def smsc_control(self) -> str:
        return f"http://127.0.0.1:{self.smsc_control_port}"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        self.logs[name] = log
        # The tools (smsc, devstack) run from the source tree, not installed: the
        # processes start in the work directory, so the tree goes on their path.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SOURCE_TREE), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env
        )
        self.procs[name] = proc
        return proc

    def start_redis(self) -> None:
        """redis-server with AOF on, in the work directory."""
        proc = self._spawn("redis", redis_command(self.redis_port, self.workdir))
        _wait_port(self.redis_port, proc, "redis-server", 10)

    def start_smsc(self, *extra: str) -> None:
        """The SMS center simulator (SMPP and its HTTP control API)."""
        proc = self._spawn(
            "smsc",
            [
                sys.executable,
                "-m",
                "smsc",
                "--port",
                str(self.smpp_port),
                "--control-port",
                str(self.smsc_control_port),
                "--account",
                f"{SMPP_USER}:{SMPP_PASSWORD}",
                "--log-level",
                self.log_level,
                *extra,
            ],
        )
        _wait_port(self.smsc_control_port, proc, "smsc", 20)

    def gateway_config(
        self,
        webhook_url: str,
        *,
        window: int = 64,
        tps: float = 2000.0,
        webhook_concurrency: int = 32,
        webhook_batch_max: int = 1,
        workers: tuple[str, ...] = ("api", "sms", "webhooks"),
        extra: str = "",
        bind: str | None = None,
        root: str = "",
    ) -> Path:
        """Write the gateway's config file (quiet hours off: a demo runs at any hour);
        ``extra`` is appended (more sections, e.g. ``[dialer]``), ``root`` added to the
        root table (e.g. ``claim_idle_s = 5``). ``bind`` replaces the SMPP bind to the
        simulator (a ``[[sms.binds]]`` table, e.g. a CMPP one)."""
        listed = ", ".join(f'"{w}"' for w in workers)
        text = (
            f"""\
redis_url = "{self.redis_url}"
workers = [{listed}]
shutdown_grace_s = 10
{root}
[log]
level = "{self.log_level}"

[api]
host = "127.0.0.1"
port = {self.api_port}

[[api.tokens]]
name = "core"
token = "{TOKEN}"
units = ["*"]

[surveys]
frequency_cap_days = 7
quiet_hours = {{ enabled = false }}

[sms]
source_addr = "{SOURCE_ADDR}"
signature = "【平安绍兴】"

[sms.templates.default]
text = "{TEMPLATE}"
max_parts = 1

{bind or self.smpp_bind(window, tps)}

[[webhooks.endpoints]]
name = "core"
url = "{webhook_url}"
secret = "{SECRET}"
concurrency = {webhook_concurrency}
batch_max = {webhook_batch_max}
backoff_initial_s = 0.5
"""
            + extra
        )
        path = self.workdir / "minyi.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def smpp_bind(self, window: int, tps: float) -> str:
        """The [[sms.binds]] table of the SMPP bind to the simulator."""
        return f"""\
[[sms.binds]]
name = "smsc-1"
host = "127.0.0.1"
port = {self.smpp_port}
system_id = "{SMPP_USER}"
password = "{SMPP_PASSWORD}"
window = {window}
tps = {tps}
reconnect_initial_s = 0.5
reconnect_max_s = 5
"""

    def start_gateway(
        self, config: Path, workers: str | None = None, *, name: str | None = None
    ) -> None:
        """`minyi run` as its own process (all workers, or `workers`, e.g. "sms");
        returns once it runs (the API answers, or it is still up after a second).
        ``name`` (default from the workers) names the process here and, prefixed with
        ``local-``, its instance (its consumer name in Redis)."""
        if name is None:
            name = "gateway" if workers is None else f"gateway-{workers.replace(',', '-')}"
        argv = [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)]
        argv += ["--instance", instance_of(name)]
        if workers is not None:
            argv += ["--workers", workers]
        proc = self._spawn(name, argv)
        if workers is None or "api" in workers.split(","):
            _wait_port(self.api_port, proc, name, 30)
        else:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode} during start")

    def gateway_pids(self) -> dict[str, int]:
        """The gateway processes running now."""
        return {n: p.pid for n, p in self.procs.items() if n.startswith("gateway")}

    async def post(self, http: aiohttp.ClientSession, body: Any) -> tuple[int, Any]:
        """POST /v1/surveys."""
        async with http.post(
            self.api + "/v1/surveys", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r:
            return r.status, await r.json()

    async def smsc(
        self, http: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> Any:
        """Call the simulator's control API."""
        async with http.request(method, self.smsc_control + path, json=body) as r:
            r.raise_for_status()
            return await r.json()

    async def smsc_all(self, http: aiohttp.ClientSession, what: str) -> list[dict[str, Any]]:
        """Every record of GET /submits or /deliveries, page by page."""
        out: list[dict[str, Any]] = []
        while True:
            page = await self.smsc(http, "GET", f"/{what}?since={len(out)}")
            items = page.get(what, page) if isinstance(page, dict) else page
            if not items:
                return out
            out.extend(items)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop one process (SIGTERM, then SIGKILL after `timeout`)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log = self.logs.pop(name, None)
        if log is not None:
            log.close()
        return proc.returncode

    def stop_all(self) -> None:
        """Gateway first (it drains), then the simulator, then Redis."""
        for name in [n for n in self.procs if n.startswith("gateway")] + ["smsc", "redis"]:
            self.stop(name)

    def tail(self, name: str, lines: int = 20) -> str:
        """The end of a process's log (for error messages)."""
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def dump(obj: Any) -> str:
    """Compact JSON for the final line of a benchmark."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


os.environ.setdefault("PYTHONUNBUFFERED", "1")
