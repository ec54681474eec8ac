"""A redis-server process for the tests, on a free loopback port (the session fixture
``redis_server`` in tests/conftest.py owns one; tests import the class from here, never
from a conftest module)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from devstack.localstack import free_port, redis_command

__all__ = ["RedisServer"]


class RedisServer:
    """A redis-server process owned by the test session (persistent, so it can be
    restarted without losing data, as a production Redis with AOF would)."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        """``extra_args``: redis-server options that override the usual ones."""
        self.workdir = workdir
        self.extra_args = extra_args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*redis_command(self.port, self.workdir), *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        """Stop and start the same server (same port, same data directory)."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last flush (``start`` brings it back)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
