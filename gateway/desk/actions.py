"""What the desk asks of Asterisk: pause and unpause an agent, and the queue members'
state for the board.

:class:`AgentActions` is the seam: the desk calls only it. :class:`AmiActions` is
the one here, on its own AMI session (``QueuePause`` with no ``Queue`` pauses the
member in every queue: the Asterisk manager action reference, "QueuePause"). The
agent-actions API of the dialer (log in, log out, pause, unpause, each an
``agent.state`` event) replaces it when it lands; its signature is this one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from gateway import logs
from gateway.config.ami import AmiSettings
from gateway.config.api import DeskUser
from gateway.config.dialer import DialerSettings
from gateway.dialer.ami import AmiClient, AmiError

log = logs.logger(__name__)

# How long the board waits for AMI before it shows the live panel as unavailable.
CONNECT_WAIT_S = 1.0
# Queue members read this recently are shown again rather than asked for.
MEMBERS_FRESH_S = 1.0

# Queue member Status (enum ast_device_state, Asterisk's devicestate.h) as the board
# names it; paused and wrap-up are decided before this.
DEVICE_STATES = {
    "0": "未知",
    "1": "空闲",
    "2": "通话中",
    "3": "通话中",
    "4": "不可达",
    "5": "不可达",
    "6": "振铃",
    "7": "通话中",
    "8": "保持",
}


class AgentActions(Protocol):
    """Agent actions the desk needs from the PBX."""

    async def pause(self, agent: DeskUser, paused: bool, reason: str = "") -> None:
        """Pause (``paused``) or unpause the agent in all their queues."""

    async def members(self) -> list[Mapping[str, Any]] | None:
        """The QueueMember entries of QueueStatus; None when the PBX cannot be asked."""

    async def close(self) -> None:
        """Let go of the connection."""


def agent_interfaces(dialer: DialerSettings | None) -> dict[str, str]:
    """Each agent phone's queue member interface, as ``[dialer.asterisk]`` renders it."""
    if dialer is None or dialer.asterisk is None:
        return {}
    return {a.name: a.interface or f"PJSIP/{a.name}" for a in dialer.asterisk.agents}


def interface_of(agent: DeskUser, configured: Mapping[str, str]) -> str:
    """The agent's queue member interface: the desk entry's own, the one of
    ``[dialer.asterisk.agents]``, else ``PJSIP/<id>`` (how the queues are rendered)."""
    return agent.interface or configured.get(agent.id) or f"PJSIP/{agent.id}"


class AmiActions:
    """AgentActions on an AMI session of its own, opened on first use."""

    def __init__(self, settings: AmiSettings, interfaces: Mapping[str, str]) -> None:
        self.interfaces = dict(interfaces)
        self.ami = AmiClient(settings, lambda _event: None)
        self._members: list[Mapping[str, Any]] | None = None
        self._members_at = 0.0

    async def _ready(self) -> bool:
        await self.ami.start()
        try:
            await self.ami.wait_connected(CONNECT_WAIT_S)
        except TimeoutError:
            return False
        return True

    async def pause(self, agent: DeskUser, paused: bool, reason: str = "") -> None:
        if not await self._ready():
            raise AmiError("not connected to Asterisk")
        fields = {
            "Action": "QueuePause",
            "Interface": interface_of(agent, self.interfaces),
            "Paused": "true" if paused else "false",
        }
        if reason:
            fields["Reason"] = reason
        await self.ami.action(fields)

    async def members(self) -> list[Mapping[str, Any]] | None:
        # Every open board asks every few seconds: one QueueStatus a second serves all.
        now = time.monotonic()
        if self._members is not None and now - self._members_at < MEMBERS_FRESH_S:
            return self._members
        if not await self._ready():
            return None
        try:
            queues = await self.ami.action({"Action": "QueueStatus"})
        except (TimeoutError, AmiError) as exc:
            log.warning("board: queue status unavailable (%s)", exc)
            return None
        found = queues if isinstance(queues, list) else [queues]
        self._members = [q for q in found if q.get("Event") == "QueueMember"]
        self._members_at = now
        return self._members

    async def close(self) -> None:
        await self.ami.stop()


def member_state(member: Mapping[str, Any], now: float, wrapup_s: float) -> str:
    """The board's word for one queue member: 暂停, 话后整理, or its device state."""
    if str(member.get("Paused", "0")) == "1":
        return "暂停"
    status = str(member.get("Status", "0"))
    if str(member.get("InCall", "0")) == "1" and status not in ("4", "5"):
        return "通话中"
    try:
        last = float(member.get("LastCall") or 0)
    except ValueError:
        last = 0.0
    if status == "1" and last > 0 and now - last < wrapup_s:
        return "话后整理"
    return DEVICE_STATES.get(status, "未知")
