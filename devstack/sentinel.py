"""Redis with a replica and three sentinels on loopback, for the high-availability tests
and bench/ha.py: real redis-server and redis-sentinel processes (Debian's packages),
each on a free port, persistent (AOF), so that a killed master comes back from its
AOF as it would on a real host.

The sentinels watch the master as ``MASTER_NAME`` with a quorum of 2, call it down
after ``down_after_ms`` and fail over to the replica; ``url`` is the
``redis+sentinel://`` URL the gateway is given.
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from devstack.localstack import end_process, free_port, redis_command

T = TypeVar("T")

MASTER_NAME = "minyi"
QUORUM = 2


def _ask(port: int, *command: str, timeout: float = 2.0, password: str = "") -> bytes:
    """One command to a server on loopback, its raw RESP reply (inline protocol)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if password:
            s.sendall(f"AUTH {password}\r\n".encode())
            if not s.recv(64).startswith(b"+OK"):
                raise ValueError("AUTH refused")
        s.sendall((" ".join(command) + "\r\n").encode())
        data = b""
        s.settimeout(timeout)
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or _complete(data):
                return data


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds one whole RESP reply (good enough for the replies here)."""
    try:
        _, rest = _parse(data)
    except (IndexError, ValueError):
        return False
    return rest == b""


def _parse(data: bytes) -> tuple[object, bytes]:
    kind, line, rest = data[:1], *data[1:].split(b"\r\n", 1)
    if kind in (b"+", b"-", b":"):
        return line.decode(), rest
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, rest
        if len(rest) < n + 2:
            raise ValueError("short")
        return rest[:n].decode(), rest[n + 2 :]
    if kind == b"*":
        items = []
        for _ in range(max(0, int(line))):
            item, rest = _parse(rest)
            items.append(item)
        return items, rest
    raise ValueError(f"unexpected reply {data[:20]!r}")


def ask(port: int, *command: str, password: str = "") -> object:
    """One command to the server (or sentinel) on ``port``, its decoded reply."""
    return _parse(_ask(port, *command, password=password))[0]


class Node:
    """One redis-server (master or replica) of the set, persistent: ``start`` after
    ``kill`` brings it back from its own AOF, with the role its command line gives."""

    def __init__(self, workdir: Path, name: str, *extra: str, password: str = "") -> None:
        self.password = password
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [*redis_command(self.port, self.dir), *self.extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: self.ask("PING") == "PONG" or None, f"{self.name} to answer", 10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last flush."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def ask(self, *command: str) -> object:
        """One command to this node, its decoded reply."""
        return ask(self.port, *command, password=self.password)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def role(self) -> str:
        """ "master", "slave", or "" when it does not answer."""
        try:
            reply = self.ask("ROLE")
        except OSError:
            return ""
        return str(reply[0]) if isinstance(reply, list) and reply else ""


class ReplicatedRedis:
    """A master, a replica and three sentinels."""

    def __init__(
        self,
        workdir: Path,
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 6000,
        password: str = "",
    ) -> None:
        """``password``: the nodes require it (and use it to replicate); the sentinels
        are told it."""
        self.workdir = workdir
        self.password = password
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        self.a = Node(workdir, "a", *auth, password=password)
        self.b = Node(
            workdir, "b", *auth, "--replicaof", "127.0.0.1", str(self.a.port), password=password
        )
        self.nodes = (self.a, self.b)
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    @property
    def url(self) -> str:
        """The gateway's redis_url."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        auth = f":{self.password}@" if self.password else ""
        return f"redis+sentinel://{auth}{hosts}/{MASTER_NAME}/0"

    def start(self) -> None:
        """The master, the replica (in sync), then the sentinels (agreeing on both)."""
        self.a.start()
        self.b.start()
        self.wait_in_sync()
        exe = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        for i, port in enumerate(self.sentinel_ports):
            d = self.workdir / f"sentinel-{i}"
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.a.port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
                + (f"sentinel auth-pass {MASTER_NAME} {self.password}\n" if self.password else "")
            )
            log = open(d / "sentinel.log", "ab")
            self._logs.append(log)
            self.sentinels.append(
                subprocess.Popen([exe, str(conf)], stdout=log, stderr=subprocess.STDOUT)
            )
        for port in self.sentinel_ports:
            _wait(
                functools.partial(self._sees_replica, port),
                f"sentinel {port} to know the master and its replica",
                20,
            )

    def _sees_replica(self, port: int) -> bool:
        try:
            replicas = ask(port, "SENTINEL", "REPLICAS", MASTER_NAME)
            others = ask(port, "SENTINEL", "SENTINELS", MASTER_NAME)
        except (OSError, ValueError):
            return False
        return (
            isinstance(replicas, list)
            and len(replicas) >= 1
            and isinstance(others, list)
            and len(others) >= 2
        )

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.sentinels.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        for node in self.nodes:
            node.stop()

    # --- asking ------------------------------------------------------------------------

    def master_port(self) -> int | None:
        """The master's port as a majority of the sentinels name it (None: no majority)."""
        seen: dict[int, int] = {}
        for port in self.sentinel_ports:
            try:
                reply = ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            except OSError:
                continue
            if isinstance(reply, list) and len(reply) == 2:
                p = int(str(reply[1]))
                seen[p] = seen.get(p, 0) + 1
        best = max(seen.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= QUORUM else None

    def master(self) -> Node:
        """The node the sentinels name master."""
        port = self.master_port()
        return next(n for n in self.nodes if n.port == port)

    def replica(self) -> Node:
        """The other node."""
        port = self.master_port()
        return next(n for n in self.nodes if n.port != port)

    def wait_in_sync(self, within_s: float = 30.0) -> None:
        """Until the nodes' master has the other node as an online replica, caught up."""

        def synced() -> bool:
            for node in self.nodes:
                try:
                    info = str(node.ask("INFO", "replication"))
                except OSError:
                    continue
                if "role:master" in info and "state=online" in info:
                    offset = info.split("master_repl_offset:")[1].split()[0]
                    return f"offset={offset}," in info
            return False

        _wait(lambda: synced() or None, "the replica to be online and caught up", within_s)

    def failover(self) -> int:
        """SENTINEL FAILOVER (manual); returns the new master's port once a majority of
        the sentinels name it and it says it is the master."""
        old = self.master_port()
        assert ask(self.sentinel_ports[0], "SENTINEL", "FAILOVER", MASTER_NAME) == "OK"
        return self.wait_new_master(old)

    def wait_new_master(self, old: int | None, within_s: float = 60.0) -> int:
        """Until the sentinels name another master than ``old``, and it is one."""

        def moved() -> int | None:
            port = self.master_port()
            if port is None or port == old:
                return None
            node = next(n for n in self.nodes if n.port == port)
            return port if node.role() == "master" else None

        return _wait(moved, "the sentinels to name a new master", within_s)


def _wait(check: Callable[[], T | None], what: str, within_s: float) -> T:
    deadline = time.monotonic() + within_s
    while True:
        try:
            result = check()
        except (OSError, ValueError, StopIteration):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within_s:g}s")
        time.sleep(0.05)
