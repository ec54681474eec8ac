"""Faults against the real servers, each counted the same way: surveys lost, SMS the SMS
center got twice (each must be reported as sms.resent), events the feed got twice.

- Redis stopped (SIGTERM) and killed (SIGKILL) mid-run, with submits, receipts and
  replies in flight: the SMPP bind stays up, every answer the SMS center gave is kept
  in memory until Redis is back, nothing with a message id is sent again;
- the gateway killed (SIGKILL) mid-batch and restarted;
- the webhook receiver down, then back.

Each test prints one line ``FAULT {json}`` with its counts (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from devstack.localstack import LocalStack, free_port
from gateway.store import keys
from gateway.webhooks.receiver import WebhookReceiver
from smsc.rules import SubmitRecord
from smsc.simulator import SmscSimulator
from tests.integration.sms_harness import SECRET, SMPP_PASSWORD, SMPP_USER, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration

# A survey made it through when its receipt says so, or when the citizen answered (a
# reply before the receipt leaves the survey past "delivered" for good).
THROUGH = {"survey.delivered", "survey.undeliverable", "survey.replied"}
# Facts a survey has once: the same one twice on the feed is a duplicate event.
ONCE = {
    "survey.accepted",
    "survey.queued",
    "survey.submitted",
    "survey.delivered",
    "survey.undeliverable",
    "survey.replied",
    "survey.closed",
}
REPLY_SUFFIX = "7"  # citizens whose number ends so answer 「1」


def numbers(start: int, n: int, prefix: str) -> list[tuple[str, str]]:
    return [(f"F{i}", f"{prefix}{i:08d}") for i in range(start, start + n)]


def body(items: list[tuple[str, str]]) -> dict[str, Any]:
    return {"surveys": [survey(sid, phone) | {"survey_id": sid} for sid, phone in items]}


def tally(
    name: str,
    items: list[tuple[str, str]],
    submits: Iterable[SubmitRecord],
    receiver: WebhookReceiver,
    **extra: Any,
) -> dict[str, Any]:
    """The counts of one fault, printed as a FAULT line."""
    accepted = Counter(s.dest for s in submits if s.status == 0)
    sid_of = {phone: sid for sid, phone in items}
    duplicated = {sid_of[d] for d, n in accepted.items() if n > 1 and d in sid_of}
    types = {sid: [e["type"] for e in receiver.events.get(sid, [])] for sid, _ in items}
    resent = {sid for sid, t in types.items() if "sms.resent" in t}
    repliers = {sid for sid, phone in items if phone.endswith(REPLY_SUFFIX)}
    lost = sorted(
        sid
        for sid, t in types.items()
        if not THROUGH & set(t) or (sid in repliers and "survey.replied" not in t)
    )
    repeated = sum(
        n - 1 for t in types.values() for k, n in Counter(t).items() if k in ONCE and n > 1
    )
    counts = {
        "fault": name,
        "surveys": len(items),
        "lost": len(lost),
        "smsc_duplicates": sum(n - 1 for d, n in accepted.items() if n > 1),
        "unreported_duplicates": len(duplicated - resent),
        "sms_resent_events": sum(t.count("sms.resent") for t in types.values()),
        "duplicate_events": repeated,
        "redelivered_webhooks": receiver.duplicates,
        "out_of_order": receiver.out_of_order,
        **extra,
    }
    print("FAULT " + json.dumps(counts))
    assert lost == [], lost[:10]
    return counts


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A redis-server of this test alone (it is stopped and killed), AOF on."""
    server = RedisServer(tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_redis_stopped_mid_run_keeps_the_bind_and_resends_nothing(
    own_redis: RedisServer, how: str
) -> None:
    behaviour = {
        "dlr_delay": 0.2,
        "auto_reply": {"by_suffix": {REPLY_SUFFIX: "1"}, "delay": 0.3},
    }
    async with running_loop(
        own_redis.url, free_port(), behaviour=behaviour, bind={"tps": 300}
    ) as loop:
        items = numbers(100, 900, "139")
        for start in range(0, 900, 300):
            status, _ = await loop.post(body(items[start : start + 300]))
            assert status == 200
        await eventually(lambda: len(loop.smsc.submits) >= 300, within_s=30)
        if how == "sigterm":
            own_redis.stop()
        else:
            own_redis.kill()
        down_at = len(loop.smsc.submits)
        # the outage itself: Redis is away for three seconds while submit answers,
        # receipts and replies keep coming
        await asyncio.sleep(3.0)
        held = len(loop.smsc.submits) - down_at
        own_redis.start()
        sids = [sid for sid, _ in items]
        await eventually(lambda: all(THROUGH & set(loop.types(s)) for s in sids), within_s=90)
        repliers = [sid for sid, phone in items if phone.endswith(REPLY_SUFFIX)]
        await eventually(
            lambda: all("survey.replied" in loop.types(s) for s in repliers), within_s=60
        )
        counts = tally(
            f"redis_{how}",
            items,
            loop.smsc.submits,
            loop.receiver,
            binds=loop.smsc.counters["bind_ok"],
            link_drops=loop.smsc.counters["drops"],
            submits_answered_while_down=held,
        )
    assert counts["smsc_duplicates"] == 0 and counts["unreported_duplicates"] == 0
    assert counts["duplicate_events"] == 0 and counts["out_of_order"] == 0
    assert counts["binds"] == 1  # the bind was never dropped


async def test_gateway_killed_mid_batch_loses_nothing_and_reports_every_duplicate(
    clean_redis: RedisServer, tmp_path: Path
) -> None:
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    smsc.set_behaviour(max_tps=400.0, auto_reply={"by_suffix": {REPLY_SUFFIX: "1"}, "delay": 0.3})
    await smsc.start()
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    stack = LocalStack(tmp_path)
    stack.redis_port, stack.smpp_port = clean_redis.port, smsc.port
    cfg = stack.gateway_config(receiver.url, window=50, tps=2000)
    items = numbers(5000, 1000, "132")
    sids = [sid for sid, _ in items]
    repliers = [sid for sid, phone in items if phone.endswith(REPLY_SUFFIX)]

    def done() -> bool:
        ev = {s: {e["type"] for e in receiver.events.get(s, [])} for s in sids}
        return all(THROUGH & ev[s] for s in sids) and all(
            "survey.replied" in ev[s] for s in repliers
        )

    try:
        stack.start_gateway(cfg)
        async with aiohttp.ClientSession() as http:
            status, _ = await stack.post(http, body(items))
            assert status == 200
        await smsc.wait_until(lambda: len(smsc.submits) >= 300, 30)
        stack.stop("gateway", signal.SIGKILL)
        stack.start_gateway(cfg)
        await receiver.wait_until(done, 120)  # woken by the feed, not the SMS center
        client = aioredis.Redis.from_url(clean_redis.url)
        pending = await client.xpending(keys.SMS_QUEUE, keys.SMS_GROUP)
        await client.aclose()
        counts = tally("gateway_sigkill", items, smsc.submits, receiver)
    finally:
        stack.stop("gateway")
        await receiver.close()
        await smsc.stop()
    assert pending["pending"] == 0
    assert counts["unreported_duplicates"] == 0 and counts["smsc_duplicates"] <= 50
    # only parts cleared to go out may have (the window of 50 on the wire, and up to
    # one window more cleared ahead of it): those are reported, not every survey that
    # was in flight (1000 were)
    assert counts["sms_resent_events"] <= 100
    assert counts["duplicate_events"] == 0 and counts["out_of_order"] == 0


async def test_receiver_down_then_back_loses_nothing(clean_redis: RedisServer) -> None:
    behaviour = {"auto_reply": {"by_suffix": {REPLY_SUFFIX: "1"}, "delay": 0.3}}
    async with running_loop(clean_redis.url, free_port(), behaviour=behaviour) as loop:
        loop.receiver.fail(503)
        items = numbers(8000, 300, "131")
        assert (await loop.post(body(items)))[0] == 200
        await eventually(lambda: loop.receiver.refused >= 50, within_s=30)
        await eventually(lambda: len(loop.smsc.submits) >= 300, within_s=30)
        loop.receiver.ok()
        sids = [sid for sid, _ in items]
        repliers = [sid for sid, phone in items if phone.endswith(REPLY_SUFFIX)]
        await eventually(lambda: all(THROUGH & set(loop.types(s)) for s in sids), within_s=90)
        await eventually(
            lambda: all("survey.replied" in loop.types(s) for s in repliers), within_s=60
        )
        counts = tally("receiver_down", items, loop.smsc.submits, loop.receiver)
    assert counts["smsc_duplicates"] == 0 and counts["unreported_duplicates"] == 0
    assert counts["duplicate_events"] == 0 and counts["out_of_order"] == 0
