"""A small AMI test client on panoramisk: every event is kept, tests wait for the ones
they need by predicate (generous timeouts only to avoid hangs, never timed asserts).

It originates the way the dialer must (see dialplans/README.md): ``Async: true`` with a
``ChannelId`` we choose, never awaiting the final OriginateResponse without a bound.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from devstack.asterisk import AGENT_TALK_LOOPS_VAR, AsteriskInfo
from tests.waiting import eventually

Predicate = Callable[[Message], bool]


def new_channel_id() -> str:
    """A ChannelId (becomes the channel's Uniqueid and Linkedid): letters, digits, '-'."""
    return f"minyi-{uuid.uuid4().hex}"


class AmiClient:
    """A logged-in panoramisk Manager plus the list of events it received."""

    def __init__(self, info: AsteriskInfo, secret: str | None = None) -> None:
        self.info = info
        self.events: list[Message] = []
        self._waiters: list[tuple[Predicate, asyncio.Future[Message]]] = []
        self._logged_in = asyncio.Event()
        self.manager = Manager(
            loop=asyncio.get_running_loop(),
            host=info.host,
            port=info.ami_port,
            username=info.ami_username,
            secret=info.ami_secret if secret is None else secret,
            ping_delay=3600,  # these tests never idle long; no background pings
            on_login=lambda _m: self._logged_in.set(),
        )
        self.manager.register_event("*", self._on_event)

    def _on_event(self, _manager: Manager, event: Message) -> None:
        self.events.append(event)
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(event):
                fut.set_result(event)

    async def connect(self, limit_s: float = 15.0) -> None:
        """Connect and log in; fail loudly if the login is not accepted."""
        await asyncio.wait_for(self.manager.connect(), limit_s)
        await asyncio.wait_for(self._logged_in.wait(), limit_s)

    async def close(self) -> None:
        """Close the connection (panoramisk does not reconnect after close())."""
        self.manager.close()
        await asyncio.sleep(0)

    async def action(self, fields: Mapping[str, Any], limit_s: float = 15.0) -> Any:
        """Send an action and wait (bounded) for its response."""
        return await asyncio.wait_for(self.manager.send_action(dict(fields)), limit_s)

    async def wait_for(self, pred: Predicate, what: str, limit_s: float = 30.0) -> Message:
        """The first event (already received or still to come) matching ``pred``."""
        for event in self.events:
            if pred(event):
                return event
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, limit_s)
        except TimeoutError:
            seen = [
                (e.get("Event"), e.get("UserEvent", ""), e.get("Uniqueid", "")) for e in self.events
            ]
            raise AssertionError(
                f"no AMI event {what} within {limit_s}s; saw {seen[-30:]}"
            ) from None
        finally:
            self._waiters.remove(entry)

    def originate(
        self,
        number: str,
        context: str,
        variables: Mapping[str, str],
        channel_id: str,
        ring_timeout_ms: int = 20000,
    ) -> asyncio.Future[Any]:
        """Originate PJSIP/<number>@<trunk> into ``context``,s,1 asynchronously.

        Returns panoramisk's future, which resolves only with the final OriginateResponse
        (after answer or failure): await it with a bound, or just watch events.
        """
        future: asyncio.Future[Any] = self.manager.send_action(
            {
                "Action": "Originate",
                "Channel": f"PJSIP/{number}@{self.info.trunk}",
                "Context": context,
                "Exten": "s",
                "Priority": "1",
                "Async": "true",
                "ChannelId": channel_id,
                "Timeout": str(ring_timeout_ms),
                "CallerID": "Minyi <10086>",
                "Variable": [f"{k}={v}" for k, v in variables.items()],
            }
        )
        return future


def for_channel(channel_id: str, event: str, **fields: str) -> Predicate:
    """Match ``event`` on our call (Uniqueid or Linkedid is our ChannelId) with fields."""

    def pred(e: Message) -> bool:
        if e.get("Event") != event:
            return False
        if channel_id not in (e.get("Uniqueid"), e.get("Linkedid")):
            return False
        return all(e.get(k) == v for k, v in fields.items())

    return pred


def user_event(channel_id: str, name: str) -> Predicate:
    """Match one of the dialplan's UserEvents on our call."""
    return for_channel(channel_id, "UserEvent", UserEvent=name)


def _wav_finished(path: Path) -> bool:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() > 0 and 44 + w.getnframes() * 2 == os.path.getsize(path)
    except (OSError, EOFError, wave.Error):
        return False


async def wait_wav_closed(path: Path, limit_s: float = 20.0) -> None:
    """Wait until Asterisk has finished a WAV (its header then covers the whole file)."""
    await eventually(lambda: _wav_finished(path), f"{path.name} finished", limit_s)


async def set_agent_talk(ami: AmiClient, loops: int | None) -> None:
    """How many times the agents' phones say their line before they hang up (None: the
    harness's default). A global dialplan variable, read on every loop: it also holds
    for calls already going."""
    value = "" if loops is None else str(loops)
    response = await ami.action(
        {"Action": "Setvar", "Variable": AGENT_TALK_LOOPS_VAR, "Value": value}
    )
    assert response.success, response


async def hang_up_agent(ami: AmiClient, member: str) -> None:
    """The agent's phone hangs up, as it does when the agent is done (cause 16)."""
    phones = [
        e["Channel"]
        for e in ami.events
        if e.get("Event") == "Newchannel"
        and e.get("Exten") == member
        and str(e.get("Channel", "")).startswith("PJSIP/world-in")
    ]
    assert phones, f"{member}'s phone never rang"
    response = await ami.action({"Action": "Hangup", "Channel": phones[-1], "Cause": "16"})
    assert response.success, response


def recorded_seconds(path: Path) -> float:
    """Seconds of 8 kHz 16-bit audio a WAV that Asterisk is still writing holds so far
    (its header is only filled in when the file is closed)."""
    try:
        return max(0, path.stat().st_size - 44) / 16000
    except FileNotFoundError:
        return 0.0


class TcpProxy:
    """A loopback TCP relay to AMI that a test can cut (both sides reset) or freeze
    (bytes silently dropped both ways, sockets left open: a half-open connection)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.frozen = False
        self.accepted = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.frozen:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.append(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def cut(self) -> None:
        """Reset every relayed connection (the listener stays up for reconnects)."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        """Stop listening and reset everything."""
        if self._server is not None:
            self._server.close()
        self.cut()
        # Let every relay task finish on its own (cancelled stream handlers make
        # asyncio log errors on Python 3.11).
        pending = {t for t in self._handlers if not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=10)
        if self._server is not None:
            await self._server.wait_closed()
