"""Agents (访评员): who is logged in, free or away, and the actions that change it.

Presence comes from the real device state, never from a guess: app_queue reports each
member's device state (``QueueMemberStatus``, ``Status`` = enum ast_device_state) and
the agent phones are qualified (OPTIONS every ``agent_qualify_s``, dialplans/README.md),
so a phone that was killed or unplugged turns unavailable and is never counted free.
:func:`agent_state` reads one agent's state from the dialer's
:class:`~gateway.dialer.calls.QueueBoard`; it is ``free`` exactly when the board would
dial for that agent. Each change is stored and put on the feed as ``agent.state``
(:meth:`gateway.dialer.store.CallbackStore.agent_state`, ``minyi_agent_state``).

The actions — :func:`login`, :func:`logout`, :func:`pause`, :func:`unpause` — are the
AMI twins of the feature codes an agent dials (``*45``/``*46``/``*47``/``*48`` by default,
context ``minyi-agent-codes``): ``QueueAdd``/``QueueRemove`` on the agent's unit queues,
``QueuePause`` on all of them. Any process may call them with its own AMI connection
(:func:`agent_ami`); the dialer sees the change as events like any other.

Device states: https://docs.asterisk.org/Latest_API/API_Documentation/AMI_Events/QueueMemberStatus/
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from gateway import logs
from gateway.config import AmiSettings, AsteriskSettings
from gateway.dialer.ami import AmiClient, AmiError
from gateway.dialer.calls import DEVICE_NOT_INUSE, Member, QueueBoard

__all__ = [
    "FREE",
    "LOGGED_OUT",
    "ON_CALL",
    "PAUSED",
    "RINGING",
    "STATES",
    "UNREACHABLE",
    "WRAPUP",
    "ActionResult",
    "AgentAmi",
    "AgentDirectory",
    "AgentInfo",
    "agent_ami",
    "agent_state",
    "agent_states",
    "login",
    "logout",
    "pause",
    "unpause",
]

log = logs.logger(__name__)

FREE: Final = "free"
RINGING: Final = "ringing"
ON_CALL: Final = "on_call"
WRAPUP: Final = "wrapup"
PAUSED: Final = "paused"
UNREACHABLE: Final = "unreachable"
LOGGED_OUT: Final = "logged_out"
STATES: Final = (FREE, RINGING, ON_CALL, WRAPUP, PAUSED, UNREACHABLE, LOGGED_OUT)

# enum ast_device_state, as QueueMember/QueueMemberStatus report it in Status.
_ON_CALL_DEVICE: Final = frozenset({"2", "3", "8"})  # in use, busy, on hold
_RINGING_DEVICE: Final = frozenset({"6", "7"})  # ringing, ringing while in use
# unknown (0), invalid (4), unavailable (5): unregistered, unqualified or unreachable
_AWAY_DEVICE: Final = frozenset({"0", "4", "5"})
_QUEUE_PREFIX: Final = "minyi-unit-"


def agent_state(board: QueueBoard, members: Iterable[Member], now: float) -> str:
    """One agent's state from its queue memberships (all of one member name).

    In order: no membership -> logged_out; free exactly when the board would dial for
    it in some queue (:meth:`QueueBoard.is_free`); else a call or a ringing phone; a
    device that is not reachable; paused in every queue; resting after a call.
    """
    ms = list(members)
    if not ms:
        return LOGGED_OUT
    if any(board.is_free(m, now) for m in ms):
        return FREE
    status = {m.status for m in ms}
    if any(board.in_call(m) for m in ms) or status & _ON_CALL_DEVICE:
        return ON_CALL
    if status & _RINGING_DEVICE:
        return RINGING
    if status & _AWAY_DEVICE or DEVICE_NOT_INUSE not in status:
        return UNREACHABLE
    if all(m.paused for m in ms):
        return PAUSED
    return WRAPUP  # idle, reachable, some queue unpaused: only its rest is left


def agent_states(
    board: QueueBoard, known: Iterable[str], now: float
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every agent's (state, payload) from the board: the ``known`` agents (configured,
    or seen before: logged out when they have no membership) and every member."""
    by_name: dict[str, list[Member]] = {name: [] for name in known}
    for m in board.members.values():
        by_name.setdefault(m.name, []).append(m)
    out = {}
    for name, ms in by_name.items():
        state = agent_state(board, ms, now)
        payload: dict[str, Any] = {
            "units": sorted(m.queue.removeprefix(_QUEUE_PREFIX) for m in ms),
        }
        if ms:
            payload["interface"] = ms[0].interface
        if state == PAUSED:
            payload["reason"] = next((m.paused_reason for m in ms if m.paused_reason), "")
        out[name] = (state, payload)
    return out


# --- the actions ----------------------------------------------------------------------
class AgentAmi(Protocol):
    """What the actions need of an AMI connection (:class:`gateway.dialer.ami.AmiClient`)."""

    async def action(self, fields: Mapping[str, Any], limit_s: float | None = None) -> Any:
        """Send one action, return its response; AmiError when Asterisk refuses it."""


@dataclass(frozen=True)
class AgentInfo:
    """One configured agent: the device its queues ring and the queues it belongs to."""

    name: str
    interface: str
    queues: tuple[str, ...]


@dataclass(frozen=True)
class AgentDirectory:
    """The configured agents (``[dialer.asterisk]`` agents and units), by name."""

    agents: Mapping[str, AgentInfo]
    log_in: bool = True  # agents are dynamic members (AsteriskSettings.agents_log_in)

    @classmethod
    def from_settings(cls, settings: AsteriskSettings | None) -> AgentDirectory:
        """The directory of a ``[dialer.asterisk]`` table (empty when there is none)."""
        if settings is None:
            return cls({}, log_in=False)
        agents = {}
        for a in settings.agents:
            interface = a.interface or f"PJSIP/{a.name}"
            queues = tuple(_QUEUE_PREFIX + u.unit for u in settings.units if a.name in u.agents)
            agents[a.name] = AgentInfo(a.name, interface, queues)
        return cls(agents, log_in=settings.agents_log_in)

    def get(self, agent: str) -> AgentInfo:
        """The agent's entry; KeyError for a name that is not configured."""
        return self.agents[agent]


@dataclass(frozen=True)
class ActionResult:
    """What one action did: ``ok`` (the agent is now in the state asked for) and why not."""

    agent: str
    action: str
    ok: bool
    detail: str = ""


async def login(ami: AgentAmi, directory: AgentDirectory, agent: str) -> ActionResult:
    """Log ``agent`` in: a member of each of its unit queues (``QueueAdd``), like the
    login feature code. Already a member counts as done. Refused (ok False) when the
    agent is unknown or agents are static members (``agents_log_in = false``)."""
    info, refused = _find(directory, agent, "login", membership=True)
    if info is None:
        return refused
    done: list[str] = []
    for queue in info.queues:
        fields = {
            "Action": "QueueAdd",
            "Queue": queue,
            "Interface": info.interface,
            "MemberName": info.name,
            "StateInterface": info.interface,
        }
        if await _act(ami, fields, ok_if="already there"):
            done.append(queue)
    return _result(agent, "login", done, info.queues)


async def logout(ami: AgentAmi, directory: AgentDirectory, agent: str) -> ActionResult:
    """Log ``agent`` out of each of its unit queues (``QueueRemove``), like the logout
    feature code; not a member counts as done. Refused like :func:`login`."""
    info, refused = _find(directory, agent, "logout", membership=True)
    if info is None:
        return refused
    done = [
        queue
        for queue in info.queues
        if await _act(
            ami,
            {"Action": "QueueRemove", "Queue": queue, "Interface": info.interface},
            ok_if="not there",
        )
    ]
    return _result(agent, "logout", done, info.queues)


async def pause(
    ami: AgentAmi, directory: AgentDirectory, agent: str, reason: str = "desk"
) -> ActionResult:
    """Pause ``agent`` in all its queues (``QueuePause``): no citizen is dialled for it
    until :func:`unpause`. ``reason`` shows on the ``agent.state`` event (the feature
    code says ``phone``). Not ok when the agent is not logged in."""
    return await _pause(ami, directory, agent, True, reason)


async def unpause(
    ami: AgentAmi, directory: AgentDirectory, agent: str, reason: str = "desk"
) -> ActionResult:
    """Take ``agent``'s pause back in all its queues (``QueuePause`` Paused false)."""
    return await _pause(ami, directory, agent, False, reason)


@contextlib.asynccontextmanager
async def agent_ami(settings: AmiSettings, limit_s: float = 10.0) -> AsyncIterator[AgentAmi]:
    """An AMI connection for the actions, in a process that has none (the desk): logged
    in within ``limit_s`` (TimeoutError otherwise), closed on exit."""
    client = AmiClient(settings, lambda _event: None)
    await client.start()
    try:
        await client.wait_connected(limit_s)
        yield client
    finally:
        await client.stop()


async def _pause(
    ami: AgentAmi, directory: AgentDirectory, agent: str, paused: bool, reason: str
) -> ActionResult:
    action = "pause" if paused else "unpause"
    info, refused = _find(directory, agent, action, membership=False)
    if info is None:
        return refused
    fields = {
        "Action": "QueuePause",
        "Interface": info.interface,
        "Paused": "true" if paused else "false",
        "Reason": "".join(c for c in reason if c.isalnum() or c in "-_.")[:32],
    }
    ok = await _act(ami, fields, ok_if="")
    log.info("agent %s %s ok=%s", agent, action, ok)
    return ActionResult(agent, action, ok, "" if ok else "not logged in")


def _find(
    directory: AgentDirectory, agent: str, action: str, *, membership: bool
) -> tuple[AgentInfo | None, ActionResult]:
    try:
        info = directory.get(agent)
    except KeyError:
        return None, ActionResult(agent, action, False, "no such agent")
    if membership and not directory.log_in:
        return None, ActionResult(agent, action, False, "agents are static queue members")
    return info, ActionResult(agent, action, True)


async def _act(ami: AgentAmi, fields: Mapping[str, Any], ok_if: str) -> bool:
    """Send one action: True when Asterisk did it, or refused it because it was already
    so (its message contains ``ok_if``)."""
    try:
        await ami.action(fields)
    except AmiError as exc:
        if ok_if and ok_if in str(exc).lower():
            return True
        log.warning("agent action %s refused: %s", fields.get("Action"), exc)
        return False
    return True


def _result(agent: str, action: str, done: list[str], queues: tuple[str, ...]) -> ActionResult:
    ok = bool(done)
    log.info("agent %s %s queues=%s ok=%s", agent, action, ",".join(done), ok)
    return ActionResult(agent, action, ok, "" if ok else f"no queue took it ({len(queues)})")
