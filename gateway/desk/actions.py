"""What the desk asks of Asterisk: an agent's log in, log out, pause and unpause, through
the dialer's agent actions (gateway/dialer/agents.py: the AMI twins of the feature
codes *45-*48) on an AMI session of the desk's own, opened on the first click.

:class:`AgentActions` is the seam the desk calls (a test or another PBX may stand in).
The agents' states the desk and the board show are not asked of Asterisk here: the
dialer stores each change (``agent.state``, ``keys.AGENTS``) from the same queue
board its pacing uses, and the pages read that.
"""

from __future__ import annotations

from typing import Final, Protocol

from gateway import logs
from gateway.config import Settings
from gateway.config.ami import AmiSettings
from gateway.config.api import DeskUser
from gateway.dialer import agents
from gateway.dialer.agents import ActionResult, AgentDirectory, AgentInfo
from gateway.dialer.ami import AmiClient, AmiError

log = logs.logger(__name__)

# How long a click waits for AMI before it says the PBX is not there.
CONNECT_WAIT_S: Final = 3.0
ACTIONS: Final = ("login", "logout", "pause", "unpause")
QUEUE_PREFIX: Final = "minyi-unit-"

# The dialer's agent states (gateway/dialer/agents.py STATES) as the pages name them.
STATE_NAMES: Final = {
    agents.FREE: "空闲",
    agents.RINGING: "振铃",
    agents.ON_CALL: "通话中",
    agents.WRAPUP: "话后整理",
    agents.PAUSED: "暂停",
    agents.UNREACHABLE: "不可达",
    agents.LOGGED_OUT: "未签入",
}


class AgentActions(Protocol):
    """Agent actions the desk needs from the PBX."""

    async def act(self, agent: DeskUser, action: str) -> ActionResult:
        """Do ``action`` (one of ACTIONS) for the agent; AmiError when the PBX is away."""

    async def close(self) -> None:
        """Let go of the connection."""


def desk_directory(settings: Settings) -> AgentDirectory:
    """The agents the desk may act for: those of ``[dialer.asterisk]``, and the desk's
    agents it does not render (a site's PBX, the tests' own Asterisk), each with its
    ``interface`` (default ``PJSIP/<id>``) and its units' queues."""
    d = settings.dialer
    base = AgentDirectory.from_settings(d.asterisk if d is not None else None)
    found = dict(base.agents)
    for user in settings.api.desk.users:
        if user.role == "agent" and user.id not in found:
            found[user.id] = AgentInfo(
                user.id,
                user.interface or f"PJSIP/{user.id}",
                tuple(QUEUE_PREFIX + u for u in user.units),
            )
    log_in = d.asterisk.agents_log_in if d is not None and d.asterisk is not None else True
    return AgentDirectory(found, log_in=log_in)


class AmiActions:
    """AgentActions through gateway/dialer/agents.py on an AMI session of its own."""

    def __init__(self, settings: AmiSettings, directory: AgentDirectory) -> None:
        self.directory = directory
        self.ami = AmiClient(settings, lambda _event: None)

    async def act(self, agent: DeskUser, action: str) -> ActionResult:
        await self.ami.start()
        try:
            await self.ami.wait_connected(CONNECT_WAIT_S)
        except TimeoutError:
            raise AmiError("not connected to Asterisk") from None
        if action == "login":
            return await agents.login(self.ami, self.directory, agent.id)
        if action == "logout":
            return await agents.logout(self.ami, self.directory, agent.id)
        if action == "pause":
            return await agents.pause(self.ami, self.directory, agent.id, "desk")
        if action == "unpause":
            return await agents.unpause(self.ami, self.directory, agent.id, "desk")
        raise ValueError(f"unknown agent action {action!r}")

    async def close(self) -> None:
        await self.ami.stop()
