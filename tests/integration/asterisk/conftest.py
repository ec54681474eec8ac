"""Fixtures for the tests against a real Asterisk 22 (see devstack/asterisk.py).

One Asterisk per test session, provisioned on first use (a cold machine downloads the
packages: expect a few minutes); a provisioning failure fails the tests with the
provisioner's one-line reason, it never skips them.

A module whose agent has a real softphone (baresip) gets an Asterisk of its own
(``pbx``), where that one agent registers and logs in, and the phone itself
(``phone``); the module says which agent with a ``phone_agent`` fixture of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.asterisk import (
    GATEWAY_IP,
    AsteriskHarnessError,
    AsteriskInfo,
    AsteriskProcess,
    asterisk_home,
    provision,
)
from devstack.baresip import Baresip
from gateway.config import AgentPhone, UnitQueue

from .amitools import AmiClient, set_agent_talk

_versions: list[str] = []
# Enough for any test that ends its calls itself: about a minute of the agent's line.
TALKATIVE_LOOPS = 30


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskInfo]:
    """A running Asterisk: AMI and the gateway's SIP transport on 127.0.0.1, the test
    outside world on 127.0.0.2, free ports, a fresh recordings directory."""
    problem = None
    try:
        version = provision()
        proc = AsteriskProcess(asterisk_home() / "root", version["asterisk"])
        info = proc.start()
    except AsteriskHarnessError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback
    _versions.append(
        f"asterisk {version['asterisk']} (Debian {version.get('suite', '?')}, "
        f"downloaded {version.get('downloaded', '?')})"
    )
    try:
        yield info
    finally:
        proc.stop()


@pytest.fixture
async def ami(asterisk: AsteriskInfo) -> AsyncIterator[AmiClient]:
    """A logged-in AMI connection recording every event it receives."""
    client = AmiClient(asterisk)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def talkative_agents(ami: AmiClient) -> AsyncIterator[None]:
    """Agents' phones that keep talking until the test hangs up (about a minute), for
    tests that do something while a call is up. The default comes back afterwards,
    which also ends a call a failed test left behind."""
    await set_agent_talk(ami, TALKATIVE_LOOPS)
    try:
        yield
    finally:
        await set_agent_talk(ami, None)


@dataclass(frozen=True)
class PhoneAgent:
    """The one agent of a module's ``pbx`` whose phone is baresip."""

    name: str
    password: str
    unit: str  # the unit whose queue the agent answers
    idle_unit: str  # a unit with no agent: its callbacks are never dialled


@pytest.fixture(scope="module")
def pbx(phone_agent: PhoneAgent) -> Iterator[tuple[AsteriskProcess, AsteriskInfo]]:
    """An Asterisk whose only agent is ``phone_agent``: an endpoint that registers with
    its password (no fixed contact), a dynamic member that logs in (feature code or
    desk), qualified every second so a dead phone turns unreachable quickly."""
    problem = None
    try:
        version = provision()
        proc = AsteriskProcess(
            asterisk_home() / "root",
            version["asterisk"],
            tune={
                "agents": (AgentPhone(phone_agent.name, password=phone_agent.password),),
                "units": (
                    UnitQueue(phone_agent.unit, (phone_agent.name,)),
                    UnitQueue(phone_agent.idle_unit, ()),
                ),
                "agents_log_in": True,
                "agent_qualify_s": 1,
            },
        )
        info = proc.start()
    except AsteriskHarnessError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        yield proc, info
    finally:
        proc.stop()


@pytest.fixture
async def observer(pbx: tuple[AsteriskProcess, AsteriskInfo]) -> AsyncIterator[AmiClient]:
    """A logged-in AMI connection to ``pbx``, recording every event it receives."""
    client = AmiClient(pbx[1])
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def phone(
    pbx: tuple[AsteriskProcess, AsteriskInfo],
    observer: AmiClient,
    phone_agent: PhoneAgent,
    tmp_path: Path,
) -> AsyncIterator[Baresip]:
    """baresip registered as ``phone_agent``, answering by itself (Asterisk has
    qualified it: Reachable); not logged in to its queue yet."""
    softphone = Baresip(
        tmp_path, phone_agent.name, phone_agent.password, f"{GATEWAY_IP}:{pbx[1].sip_port}"
    )
    await softphone.start()
    try:
        await observer.wait_for(
            lambda e: (
                e.get("Event") == "ContactStatus"
                and e.get("AOR") == phone_agent.name
                and e.get("ContactStatus") == "Reachable"
            ),
            "the phone registered and answering OPTIONS",
        )
        yield softphone
    finally:
        await softphone.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which Asterisk the integration tests ran against (sid changes under us)."""
    for line in _versions:
        terminalreporter.write_line(f"integration tests ran against {line}")
