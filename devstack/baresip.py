"""baresip (Debian's ``baresip-core``) as an agent's SIP phone, for the tests and the demo.

A softphone the project did not write: it registers with the gateway's Asterisk as an
agent endpoint, answers the queue's calls by itself (``answermode=auto``), dials feature
codes, and writes every SIP message it sends and receives to its log (``-s``), where a
test reads the INVITE's headers. It is driven over its ``ctrl_tcp`` module (netstring
JSON commands and events, baresip's docs/ctrl_tcp) and killed like a phone that dies:
SIGKILL, no REGISTER with expires 0, no BYE.

It listens on its own loopback address (``PHONE_IP``): PJSIP identifies the other test
endpoints by source address (the outside world's ``world-in`` matches 127.0.0.1), so
the phone must come from elsewhere to be identified by its user name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.localstack import free_port, free_sip_port

__all__ = ["PHONE_IP", "Baresip", "BaresipError", "baresip_path"]

PHONE_IP = "127.0.0.3"
MODULE_DIR = Path("/usr/lib/baresip/modules")
START_TIMEOUT_S = 15.0


class BaresipError(RuntimeError):
    """baresip is missing, did not start, or refused a command."""


def baresip_path() -> str:
    """The baresip binary (scripts/setup.sh installs Debian's baresip-core)."""
    found = shutil.which("baresip")
    if found is None:
        raise BaresipError("baresip is not installed (scripts/setup.sh installs baresip-core)")
    return found


class Baresip:
    """One baresip process registered as ``user`` at ``registrar`` (host:port)."""

    def __init__(self, workdir: Path, user: str, password: str, registrar: str) -> None:
        self.dir = workdir / f"baresip-{user}"
        self.user = user
        self.password = password
        self.registrar = registrar
        self.sip_port = free_sip_port(PHONE_IP)  # sip_listen binds it for UDP and TCP
        self.ctrl_port = free_port()
        self.log_file = self.dir / "baresip.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        modules = ("g711", "ausine", "aufile", "account", "menu", "ctrl_tcp")
        (self.dir / "config").write_text(
            "poll_method\tepoll\n"
            f"sip_listen\t{PHONE_IP}:{self.sip_port}\n"
            f"net_interface\t{PHONE_IP}\n"
            # A tone to say, nothing to play to: no sound device on a test machine.
            "audio_source\tausine,440\n"
            "ausrc_srate\t48000\n"
            "ausrc_channels\t2\n"
            f"module_path\t{MODULE_DIR}\n"
            + "".join(f"module\t{m}.so\n" for m in modules[:3])
            + "module_app\taccount.so\nmodule_app\tmenu.so\nmodule_app\tctrl_tcp.so\n"
            f"ctrl_tcp_listen\t127.0.0.1:{self.ctrl_port}\n"
            "sip_trans_def\tudp\n",
            encoding="utf-8",
        )
        (self.dir / "accounts").write_text(
            f"<sip:{self.user}@{self.registrar};transport=udp>"
            f";auth_pass={self.password};answermode=auto;regint=60;ptime=20\n",
            encoding="utf-8",
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._write_config()
        with open(self.log_file, "wb") as log:
            return subprocess.Popen(
                # -s: the SIP trace (every message, both ways) goes to the log
                [baresip_path(), "-f", str(self.dir), "-s", "-v"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self) -> None:
        """Start baresip and connect to its control port (registration: see
        :meth:`wait_event` for ``REGISTER_OK``)."""
        self.proc = self._spawn()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"baresip exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"baresip control port not open:\n{self.log()}") from None
                await asyncio.sleep(0.05)
        self._pump = asyncio.create_task(self._read_loop(), name=f"baresip-{self.user}")

    def log(self) -> str:
        """Everything baresip wrote (its SIP trace among it)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while True:
            try:
                size = int((await self._reader.readuntil(b":"))[:-1])
                body = await self._reader.readexactly(size + 1)  # the trailing ","
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            message = json.loads(body[:-1])
            if message.get("event"):
                self.events.append(message)
                self._changed.set()
            elif message.get("response"):
                await self._responses.put(message)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        """Run one baresip command (``dial``, ``hangup``, ...) and return its response."""
        if self._writer is None:
            raise BaresipError("baresip is not running")
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        response = await asyncio.wait_for(self._responses.get(), 10)
        if not response.get("ok", False):
            raise BaresipError(f"baresip {command} {params}: {response.get('data')}")
        return response

    async def wait_event(
        self,
        match: Callable[[dict[str, Any]], bool],
        what: str,
        limit_s: float = 20.0,
        *,
        since: int = 0,
    ) -> dict[str, Any]:
        """The first event from number ``since`` on that ``match`` accepts; pushed by
        baresip, not polled."""
        deadline = time.monotonic() + limit_s
        seen = since
        while True:
            for event in self.events[seen:]:
                if match(event):
                    return event
            seen = len(self.events)
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"baresip {self.user}: no {what} within {limit_s:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def dial(self, number: str) -> None:
        """Dial ``number`` (a feature code) at the registrar and wait for the call to end
        (the code's prompt played, Asterisk hung up)."""
        before = len(self.events)
        await self.command("dial", f"sip:{number}@{self.registrar}")
        await self.wait_event(
            lambda e: e.get("type") == "CALL_CLOSED",
            f"the end of the call to {number}",
            since=before,
        )

    def kill(self) -> None:
        """SIGKILL: the phone dies mid-shift, unregistered nothing, said goodbye to nobody."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    async def stop(self) -> None:
        """Close the control connection and end the process (SIGTERM, then SIGKILL)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._writer = None
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
