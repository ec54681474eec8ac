"""gateway.dialer.ami against the real Asterisk: login, reconnect with backoff, a half-open
connection caught by the ping watchdog, an Originate never sent twice, and calls
followed across a dropped AMI connection (through a TCP relay the test can cut)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.asterisk import AsteriskInfo
from gateway.config import AmiSettings
from gateway.dialer.ami import (
    AmiClient,
    CallTracker,
    OriginateOutcomeUnknown,
    OriginateRequest,
)
from gateway.dialer.asterisk import CALLBACK_CONTEXT
from tests.waiting import eventually

from .amitools import AmiClient as Observer
from .amitools import TcpProxy, new_channel_id, user_event

# The tests hang up themselves: the agents talk until they do.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(900),
    pytest.mark.usefixtures("talkative_agents"),
]


@dataclass
class Dialer:
    """What a dialer would hold: the client, its tracker, what it saw and recovered."""

    client: AmiClient
    proxy: TcpProxy
    tracker: CallTracker = field(default_factory=CallTracker)
    events: list[Any] = field(default_factory=list)
    snapshots: list[tuple[list[Any], list[Any]]] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)


def _settings(info: AsteriskInfo, port: int, secret: str | None = None) -> AmiSettings:
    return AmiSettings(
        host="127.0.0.1",
        port=port,
        username=info.ami_username,
        secret=info.ami_secret if secret is None else secret,
        connect_timeout_s=5,
        action_timeout_s=10,
        ping_interval_s=0.5,
        ping_timeout_s=1.5,
        reconnect_initial_s=0.1,
        reconnect_max_s=1.0,
    )


@pytest.fixture
async def dialer(asterisk: AsteriskInfo) -> AsyncIterator[Dialer]:
    proxy = TcpProxy(asterisk.host, asterisk.ami_port)
    await proxy.start()
    holder: list[Dialer] = []

    def on_event(event: Any) -> None:
        holder[0].events.append(event)
        holder[0].tracker.feed(event)

    async def on_connected() -> None:
        # Recovery after every (re)connect: re-read live channels and queue members,
        # settle calls that ended while we were away.
        d = holder[0]
        channels, queues = await d.client.snapshot()
        d.snapshots.append((channels, queues))
        d.vanished += [c.channel_id for c in d.tracker.reconcile(channels)]

    client = AmiClient(_settings(asterisk, proxy.port), on_event, on_connected)
    holder.append(Dialer(client, proxy))
    await client.start()
    await client.wait_connected(30)
    try:
        yield holder[0]
    finally:
        await client.stop()
        await proxy.close()


def _request(info: AsteriskInfo, cid: str, number: str) -> OriginateRequest:
    return OriginateRequest(
        channel_id=cid,
        number=number,
        trunk=info.trunk,
        context=CALLBACK_CONTEXT,
        variables={
            "MINYI_SURVEY_ID": "s-9",
            "MINYI_ATTEMPT_ID": "a-9",
            "MINYI_REC_BASENAME": f"gw-{cid[-12:]}",
            "MINYI_UNIT": "330602",
        },
        ring_timeout_s=10,
        caller_id="Minyi <10086>",
    )


async def test_login_and_recovery_snapshot_reads_queue_members(dialer: Dialer) -> None:
    assert dialer.client.connected
    await eventually(lambda: len(dialer.snapshots) == 1, "first snapshot")
    _channels, queues = dialer.snapshots[0]
    members = {(q.get("Queue"), q.get("Name")) for q in queues if q.get("Event") == "QueueMember"}
    assert ("minyi-unit-330602", "agent1") in members
    assert ("minyi-unit-330603", "agent3") in members


async def test_wrong_secret_is_retried_with_backoff_never_connected(
    asterisk: AsteriskInfo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="minyi.dialer")
    client = AmiClient(_settings(asterisk, asterisk.ami_port, secret="wrong"), lambda e: None)
    await client.start()
    try:
        await eventually(
            lambda: sum("ami connect failed" in r.getMessage() for r in caplog.records) >= 3,
            "three failed logins",
        )
        assert not client.connected and client.connects == 0
        assert all("wrong" not in r.getMessage() for r in caplog.records)  # no secret in logs
    finally:
        await client.stop()


async def test_originate_is_followed_to_the_agent_and_the_end(
    dialer: Dialer, asterisk: AsteriskInfo
) -> None:
    cid = new_channel_id()
    call = dialer.tracker.track(cid)
    await dialer.client.originate(_request(asterisk, cid, "13800008100"))
    await eventually(lambda: call.agent is not None, "agent connected")
    assert call.answered and call.originate_reason == "4"  # final OriginateResponse reached us
    await dialer.client.action({"Action": "Hangup", "Channel": f"/^{next(iter(call.channels))}$/"})
    await eventually(lambda: call.ended, "hangup")
    assert "MinyiCallbackEnded" in call.user_events or call.hangup_cause is not None


async def test_busy_outcome_arrives_as_events(dialer: Dialer, asterisk: AsteriskInfo) -> None:
    cid = new_channel_id()
    call = dialer.tracker.track(cid)
    await dialer.client.originate(_request(asterisk, cid, "13800000001"))
    await eventually(lambda: call.ended and call.originate_reason is not None, "busy outcome")
    assert call.hangup_cause == "17"
    assert not call.answered


async def test_call_survives_a_cut_ami_connection_and_is_not_dialled_twice(
    dialer: Dialer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    number = "13800008200"
    cid = new_channel_id()
    call = dialer.tracker.track(cid)
    await dialer.client.originate(_request(asterisk, cid, number))
    await eventually(lambda: call.agent is not None, "agent connected")

    dialer.proxy.cut()  # the AMI TCP connection dies mid-call
    await eventually(lambda: dialer.client.connects == 2, "reconnected")
    await eventually(lambda: len(dialer.snapshots) == 2, "recovery snapshot")
    live = {c.get("Uniqueid") for c in dialer.snapshots[1][0]}
    assert cid in live  # the call is still up and found again
    assert cid not in dialer.vanished

    # Events after the reconnect still reach the call: hang it up and see it end.
    channel = next(c for c in dialer.snapshots[1][0] if c.get("Uniqueid") == cid)["Channel"]
    await dialer.client.action({"Action": "Hangup", "Channel": channel})
    await eventually(lambda: call.ended, "hangup seen after reconnect")
    ended = await ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
    assert ended["Agent"] in ("agent1", "agent2")
    dialled = [
        e
        for e in ami.events
        if e.get("Event") == "Newchannel"
        and e.get("Exten") == number
        and str(e.get("Channel", "")).startswith("PJSIP/world-in")
    ]
    assert len(dialled) == 1  # the citizen's phone rang once


async def test_half_open_connection_is_dropped_and_an_unanswered_originate_not_resent(
    dialer: Dialer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    lost_number, barrier_number = "13800008300", "13800008301"
    dialer.proxy.frozen = True  # peer silent, sockets open: only the watchdog can tell
    lost = new_channel_id()
    with pytest.raises(OriginateOutcomeUnknown) as raised:
        await dialer.client.originate(_request(asterisk, lost, lost_number))
    assert raised.value.channel_id == lost
    dialer.proxy.frozen = False
    await eventually(lambda: dialer.client.connects == 2, "reconnected after the watchdog")

    # A later call that is answered: had the lost Originate been re-sent on reconnect
    # it would have been dialled before this one.
    barrier = new_channel_id()
    call = dialer.tracker.track(barrier)
    await dialer.client.originate(_request(asterisk, barrier, barrier_number))
    await eventually(lambda: call.answered, "barrier call answered")
    await ami.wait_for(user_event(barrier, "MinyiCallbackAnswered"), "barrier answered")
    assert not [e for e in ami.events if e.get("Exten") == lost_number]
    assert not [e for e in ami.events if lost in (e.get("Uniqueid"), e.get("Linkedid"))]
    channel = next(iter(c for c in call.channels if "minyi-trunk" in c))
    await dialer.client.action({"Action": "Hangup", "Channel": channel})
    await eventually(lambda: call.ended, "barrier hangup")
