"""Fixtures for the tests against a real Asterisk 22 (see devstack/asterisk.py).

One Asterisk per test session, provisioned on first use (a cold machine downloads the
packages: expect a few minutes); a provisioning failure fails the tests with the
provisioner's one-line reason, it never skips them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from devstack.asterisk import (
    AsteriskHarnessError,
    AsteriskInfo,
    AsteriskProcess,
    asterisk_home,
    provision,
)

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which Asterisk the integration tests ran against (sid changes under us)."""
    for line in _versions:
        terminalreporter.write_line(f"integration tests ran against {line}")
