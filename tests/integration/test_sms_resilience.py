"""What goes wrong in real deployments, against the real servers: quiet hours,
throttling, an SMS center that drops the link mid-batch, receipts that overtake their
submit_sm_resp or rewrite the message id, long replies, a webhook receiver that is down
for a while, and the gateway killed with SIGKILL mid-batch."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis

from devstack.localstack import LocalStack, free_port
from gateway.store import keys
from gateway.store.coalesce import UnsendableCommand
from gateway.webhooks.receiver import WebhookReceiver
from smsc.simulator import SmscSimulator
from tests.integration.sms_harness import (
    SECRET,
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    running_loop,
    survey,
)
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")


def batch(start: int, n: int, prefix: str = "138") -> dict[str, object]:
    return {"surveys": [survey(i, f"{prefix}{i:08d}") for i in range(start, start + n)]}


def final_types(loop_types: list[str]) -> set[str]:
    return {"survey.delivered", "survey.undeliverable"} & set(loop_types)


async def test_quiet_hours_defer_then_spread(clean_redis: RedisServer) -> None:
    now = datetime.now(TZ)
    start = (now - timedelta(minutes=5)).strftime("%H:%M:%S")
    end_at = now + timedelta(seconds=4)
    quiet = {"start": start, "end": end_at.strftime("%H:%M:%S"), "spread_minutes": 0.05}
    async with running_loop(clean_redis.url, free_port(), surveys={"quiet_hours": quiet}) as loop:
        status, body = await loop.post(batch(100, 20))
        assert status == 200 and body["counts"] == {"created": 20}
        assert {r["state"] for r in body["results"]} == {"deferred"}
        await asyncio.sleep(1)
        assert loop.smsc.submits == []  # nothing goes out in quiet hours
        sids = [f"S{i}" for i in range(100, 120)]
        await eventually(lambda: all(final_types(loop.types(s)) for s in sids), within_s=30)
        releases = []
        for sid in sids:
            deferred = next(e for e in loop.receiver.events[sid] if e["type"] == "survey.deferred")
            releases.append(datetime.fromisoformat(deferred["payload"]["release_at"]))
        end = end_at.replace(microsecond=0)
        assert all(end <= r <= end + timedelta(seconds=3.5) for r in releases)
        assert len({r.isoformat() for r in releases}) > 10  # spread, not one burst
        first_submit = min(s.at for s in loop.smsc.submits)
        assert first_submit >= end.timestamp()


async def test_throttling_slows_down_and_loses_nothing(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port(), behaviour={"max_tps": 100.0}) as loop:
        loop.smsc.throttle_for(1.0)
        await loop.post(batch(200, 300, "139"))
        sids = [f"S{i}" for i in range(200, 500)]
        await eventually(lambda: all(final_types(loop.types(s)) for s in sids), within_s=60)
        assert loop.smsc.counters["throttled"] > 0 or loop.service.client.throttled > 0  # type: ignore[union-attr]
        assert loop.service.client.throttled > 0  # type: ignore[union-attr]
        accepted = Counter(s.dest for s in loop.smsc.submits if s.status == 0)
        assert len(accepted) == 300 and set(accepted.values()) == {1}
        assert all("survey.delivered" in loop.types(s) for s in sids)


async def test_smsc_drops_mid_batch_of_2000(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        loop.smsc.drop_connections(after=600)
        status, _ = await loop.post(batch(1000, 1000, "137"))
        assert status == 200
        await eventually(lambda: len(loop.smsc.submits) > 800, within_s=60)  # past the first drop
        loop.smsc.drop_connections(hard=True)
        status, _ = await loop.post(batch(2000, 1000, "137"))
        sids = [f"S{i}" for i in range(1000, 3000)]
        await eventually(lambda: all(final_types(loop.types(s)) for s in sids), within_s=120)
        assert loop.smsc.counters["drops"] >= 2
        accepted = Counter(s.dest for s in loop.smsc.submits if s.status == 0)
        assert len(accepted) == 2000  # every survey reached the SMS center
        duplicated = {d for d, n in accepted.items() if n > 1}
        resent = {s for s in sids if "sms.resent" in loop.types(s)}
        window = loop.service.settings.sms.binds[0].window
        # duplicates only within what was in flight at each drop, and every one reported
        assert len(duplicated) <= 2 * window
        dup_sids = {f"S{int(d[3:])}" for d in duplicated}
        assert dup_sids <= resent
        assert loop.receiver.out_of_order == 0


async def test_receipt_before_resp_and_rewritten_ids(clean_redis: RedisServer) -> None:
    # each resp comes 0.3 s after its receipt: the receipt has to wait for it, held
    behaviour = {
        "dlr_before_resp": True,
        "response_delay": 0.3,
        "id_format": "hex",
        "id_upper": True,
        "id_width": 10,
        "dlr_id_format": "dec",
    }
    async with running_loop(
        clean_redis.url,
        free_port(),
        behaviour=behaviour,
        bind={"submit_id_base": "hex", "dlr_id_base": "dec"},
    ) as loop:
        loop.smsc.next_message_number = 7_000_000  # hex and decimal forms differ
        await loop.post(batch(300, 50, "136"))
        sids = [f"S{i}" for i in range(300, 350)]
        await eventually(
            lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=30
        )
        stats = await loop.service.store.stats()  # type: ignore[union-attr]
        assert stats.get("dlr:held", 0) >= 1 and stats["dlr:held"] == stats["dlr:held_matched"]
        sub = next(s for s in loop.smsc.submits if s.dest == "13600000300")
        assert sub.message_id != sub.dlr_message_id  # hex in the resp, decimal in the receipt


async def test_lost_part_is_visible_and_long_replies_reassembled(clean_redis: RedisServer) -> None:
    behaviour = {
        "outcomes": [
            {"pattern": "0401$", "lose_parts": [2], "stat": "DELIVRD"},
            {"pattern": "0402$", "stat": "UNDELIV", "err": 5},
        ]
    }
    async with running_loop(clean_redis.url, free_port(), behaviour=behaviour) as loop:
        await loop.post(survey(401, "13500000401", template="long"))
        await loop.post(survey(402, "13500000402"))
        await loop.post(survey(403, "13500000403"))
        await eventually(lambda: "survey.undeliverable" in loop.types("S402"))
        failed = next(e for e in loop.receiver.events["S402"] if e["type"] == "sms.part_failed")
        assert failed["payload"]["state"] == "undeliverable"
        await eventually(lambda: "survey.delivered" in loop.types("S403"))

        # part 2's receipt never comes: once part 1's is stored (with the decision it
        # leads to, in one write), the survey is not "delivered" on partial evidence
        async def part_1_stored() -> dict[str, Any] | None:
            status, body = await loop.get("S401")
            assert status == 200
            return body if body["survey"]["parts"][0].get("dlr") else None

        body = await eventually(part_1_stored, "part 1's receipt stored")
        assert body["state"] not in ("delivered", "undeliverable")
        assert not final_types(loop.types("S401"))
        parts = body["survey"]["parts"]
        assert [p.get("dlr") for p in parts][:2] == ["delivered", None]
        long_reply = "3 不满意。" + "出警太慢，等了一个多小时才来人，" * 6 + "态度也很差"
        loop.smsc.inject_mo("13500000403", SOURCE_ADDR, long_reply, split="udh16", reverse=True)
        await eventually(lambda: "survey.replied" in loop.types("S403"))
        replied = next(e for e in loop.receiver.events["S403"] if e["type"] == "survey.replied")
        assert replied["payload"]["text"] == long_reply
        assert replied["payload"]["parts"] >= 2


async def test_extension_code_maps_reply_to_its_survey(clean_redis: RedisServer) -> None:
    async with running_loop(
        clean_redis.url,
        free_port(),
        surveys={"quiet_hours": {"enabled": False}, "frequency_cap_days": 0},
        sms={"extension_digits": 3},
    ) as loop:
        await loop.post(survey(501, "13400000501"))
        await eventually(lambda: "survey.delivered" in loop.types("S501"))
        await loop.post(survey(502, "13400000501"))  # same citizen, a later survey
        await eventually(lambda: "survey.delivered" in loop.types("S502"))
        first = next(s for s in loop.smsc.submits if s.dest == "13400000501")
        assert first.source.startswith(SOURCE_ADDR) and len(first.source) == len(SOURCE_ADDR) + 3
        loop.smsc.inject_mo("13400000501", first.source, "3")  # answers the FIRST survey
        await eventually(lambda: "survey.replied" in loop.types("S501"))
        replied = next(e for e in loop.receiver.events["S501"] if e["type"] == "survey.replied")
        assert replied["payload"]["matched_by"] == "extension_code"
        assert "survey.replied" not in loop.types("S502")


async def test_webhook_receiver_down_then_back(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        loop.receiver.fail(503)
        await loop.post(batch(600, 100, "133"))
        sids = [f"S{i}" for i in range(600, 700)]
        await eventually(lambda: len(loop.smsc.submits) >= 100, within_s=20)
        await eventually(lambda: loop.receiver.refused > 0, "the gateway refused")
        assert loop.receiver.received == 0
        loop.receiver.ok()
        await eventually(
            lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=60
        )
        for sid in sids:
            seqs = loop.receiver.seqs(sid)
            assert seqs == list(range(1, len(seqs) + 1)), sid
        assert loop.receiver.out_of_order == 0 and loop.receiver.rejected == 0


async def test_gateway_killed_mid_batch_then_restarted(
    clean_redis: RedisServer, tmp_path: Path
) -> None:
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    smsc.set_behaviour(max_tps=400.0)  # slow enough to be killed mid-batch
    await smsc.start()
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    # the gateway as its own process (`minyi run`), on the test's Redis and simulator
    stack = LocalStack(tmp_path)
    stack.redis_port, stack.smpp_port = clean_redis.port, smsc.port
    cfg = stack.gateway_config(receiver.url, window=50, tps=2000)
    sids = [f"S{i}" for i in range(5000, 6000)]

    def all_final() -> bool:
        return all(
            {"survey.delivered", "survey.undeliverable"}
            & {e["type"] for e in receiver.events.get(s, [])}
            for s in sids
        )

    try:
        stack.start_gateway(cfg)
        async with aiohttp.ClientSession() as http:
            status, _ = await stack.post(http, batch(5000, 1000, "132"))
            assert status == 200
        await smsc.wait_until(lambda: len(smsc.submits) >= 300, 30)
        stack.stop("gateway", signal.SIGKILL)
        killed_at = len(smsc.submits)
        stack.start_gateway(cfg)
        # The receiver's webhooks prove it, not the simulator: after the last receipt the
        # simulator has nothing more to record that would wake its wait_until().
        await eventually(all_final, "every survey final at the receiver", within_s=90)
        accepted = Counter(s.dest for s in smsc.submits if s.status == 0)
        assert len(accepted) == 1000 and killed_at < 1000  # killed mid-batch, none lost
        duplicated = {d for d, n in accepted.items() if n > 1}
        assert len(duplicated) <= 50  # at most the in-flight window
        resent = {s for s in sids if any(e["type"] == "sms.resent" for e in receiver.events[s])}
        assert {f"S{int(d[3:])}" for d in duplicated} <= resent  # every duplicate reported
        client = aioredis.Redis.from_url(clean_redis.url)
        pending = await client.xpending(keys.SMS_QUEUE, keys.SMS_GROUP)
        await client.aclose()
        assert pending["pending"] == 0
        for sid in sids:  # the feed stayed in order through the kill
            seqs = receiver.seqs(sid)
            assert seqs == list(range(1, len(seqs) + 1)), sid
    finally:
        stack.stop("gateway")
        await receiver.close()
        await smsc.stop()


async def test_transmitter_and_receiver_pair(clean_redis: RedisServer) -> None:
    # two binds of one account: submits go out on one, receipts and replies come in on
    # the other, and are matched all the same
    cfg_binds = [
        {"name": "tx", "mode": "transmitter"},
        {"name": "rx", "mode": "receiver"},
    ]
    async with running_loop(clean_redis.url, free_port(), binds=cfg_binds) as loop:
        kinds = sorted(str(b["kind"]) for b in loop.smsc.binds())
        assert kinds == ["receiver", "transmitter"]
        await loop.post(batch(700, 30, "131"))
        sids = [f"S{i}" for i in range(700, 730)]
        await eventually(lambda: all("survey.delivered" in loop.types(s) for s in sids))
        loop.smsc.inject_mo("13100000700", SOURCE_ADDR, "2")
        await eventually(lambda: "survey.closed" in loop.types("S700"))


async def test_sigterm_drains_in_flight_submits(clean_redis: RedisServer) -> None:
    async with running_loop(
        clean_redis.url, free_port(), behaviour={"response_delay": 0.2}
    ) as loop:
        for start in (800, 1800, 2800):  # more than the sender takes in flight at once
            await loop.post(batch(start, 1000, "130"))
        await eventually(lambda: len(loop.smsc.submits) >= 50)
        await loop.stop_service()  # what SIGTERM does
        client = aioredis.Redis.from_url(clean_redis.url, decode_responses=True)
        try:
            half_sent = []
            for i in range(800, 3800):
                s = await client.hgetall(keys.SURVEY.format(survey_id=f"S{i}"))
                if s["state"] == "queued" and int(s.get("submit_attempts", 0)) > 0:
                    half_sent.append(f"S{i}")
                if s["state"] == "submitted":
                    assert s["p1:mid"]
            taken = sum(1 for s in loop.smsc.submits if s.status == 0)
        finally:
            await client.aclose()
        assert half_sent == []  # every survey taken was finished before exit
        assert 50 <= taken < 3000  # and the rest was left queued for the next start


async def test_a_command_that_cannot_be_sent_fails_only_its_caller(
    clean_redis: RedisServer,
) -> None:
    # One caller keeps issuing a command with a lone surrogate, in the same ticks as the
    # sender's and the inbound worker's: only that caller fails; no receipt is kept as
    # an orphan, no reply is lost, the bind never drops.
    async with running_loop(clean_redis.url, free_port()) as loop:
        store = loop.service.store
        assert store is not None
        stop = asyncio.Event()
        refused = 0

        async def bad_caller() -> None:
            nonlocal refused
            while not stop.is_set():
                try:
                    await store.commands.execute("SET", "bad", "\ud800")
                except UnsendableCommand:
                    refused += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(bad_caller())
        try:
            await loop.post(batch(900, 200, "134"))
            sids = [f"S{i}" for i in range(900, 1100)]
            await eventually(
                lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=60
            )
            for i in range(900, 1000):
                loop.smsc.inject_mo(f"134{i:08d}", SOURCE_ADDR, "1")
            await eventually(
                lambda: all("survey.closed" in loop.types(f"S{i}") for i in range(900, 1000)),
                within_s=30,
            )
        finally:
            stop.set()
            await task
        assert refused > 50
        assert await store.redis.xlen(keys.DLR_ORPHANS) == 0
        assert loop.service.inbound is not None
        assert loop.service.inbound.counts.get("unhandled", 0) == 0
        assert loop.smsc.counters["bind_ok"] == 1 and loop.smsc.counters["drops"] == 0


# A mainland mobile number in clear, alone or after 86 (gateway.privacy's rule).
FULL_NUMBER = re.compile(r"(?<!\d)(?:86)?1\d{10}(?!\d)")
# aiosmpplib's report of a submit_sm it could not send (esme.py), whole PDU and all.
UNSENT = "SMPP message could not be sent"


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_no_full_number_in_any_log_line_when_the_link_drops_mid_batch(
    clean_redis: RedisServer, tmp_path: Path, fmt: str
) -> None:
    # `minyi run` as its own process, logging at INFO; the SMS center drops the link
    # hard with submits in flight, at least twice. aiosmpplib reports an unsent submit_sm
    # with its whole content: that too goes through the gateway's handler, masked.
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    stack = LocalStack(tmp_path, log_level="INFO")
    stack.redis_port, stack.smpp_port = clean_redis.port, smsc.port
    # aiosmpplib reports a submit it could not send. A reset link fails the write its
    # sender makes next, and aiosmpplib gives the sender 0.5 s to end: so every drop is
    # reported as long as a submit waits in its queue. The batch is paced by the TPS
    # (60 a second, well below what the gateway clears and queues even with ten busy
    # loops on two cores), never by the window (1,000 holds the whole batch). At 300 a
    # second with a window of 200, and a drop that sent FIN (a write after it
    # succeeds), seven drops once made no report.
    cfg = stack.gateway_config(receiver.url, window=1000, tps=60)
    cfg.write_text(cfg.read_text().replace('level = "INFO"', f'level = "INFO"\nformat = "{fmt}"'))
    sids = [f"S{i}" for i in range(7000, 7300)]
    try:
        stack.start_gateway(cfg)
        async with aiohttp.ClientSession() as http:
            status, _ = await stack.post(http, batch(7000, 300, "138"))
            assert status == 200
        # The link is reset twice mid-batch, each time with the sender about to write
        for at in (40, 80):
            await smsc.wait_until(lambda at=at: len(smsc.submits) >= at, 30)  # type: ignore[misc]
            smsc.drop_connections(hard=True)
        # on the receiver's events: after the last receipt the simulator records
        # nothing until the next enquire_link, 30 s on, that would wake its wait_until()
        await receiver.wait_until(
            lambda: all(
                {"survey.delivered", "survey.undeliverable"}
                & {e["type"] for e in receiver.events.get(s, [])}
                for s in sids
            ),
            90,
        )
    finally:
        stack.stop("gateway")
        await receiver.close()
        await smsc.stop()
    lines = (tmp_path / "gateway.log").read_text(encoding="utf-8").splitlines()
    assert smsc.counters["drops"] == 2
    assert sum("reconnecting" in line for line in lines) == 2  # the drops were logged
    # aiosmpplib's own report of the submit it could not send, one a drop, is there, masked
    assert sum(UNSENT in line for line in lines) == 2
    if fmt == "json":
        assert all(json.loads(line)["message"] for line in lines if line.startswith("{"))
    leaked = [line for line in lines if FULL_NUMBER.search(line)]
    assert leaked == []


async def test_a_submit_refused_with_a_throttle_status_then_accepted_is_not_a_resend(
    clean_redis: RedisServer,
) -> None:
    # The SMS center refuses every 5th submit_sm with ESME_RTHROTTLED: it did not take
    # it, so sending it again duplicates nothing and is not reported as sms.resent; and
    # the bind keeps its pace instead of halving and pausing at each refusal.
    async with running_loop(
        clean_redis.url, free_port(), behaviour={"throttle_every": 5}, bind={"tps": 200}
    ) as loop:
        await loop.post(batch(3000, 300, "133"))
        sids = [f"S{i}" for i in range(3000, 3300)]
        await eventually(lambda: all(final_types(loop.types(s)) for s in sids), within_s=60)
        assert loop.smsc.counters["throttled"] >= 60
        accepted = Counter(s.dest for s in loop.smsc.submits if s.status == 0)
        assert len(accepted) == 300 and set(accepted.values()) == {1}
        assert not [s for s in sids if "sms.resent" in loop.types(s)]
        stats = await loop.service.store.stats()  # type: ignore[union-attr]
        assert stats.get("sms:resent", 0) == 0
        assert loop.service.client.stats()["binds"]["b1"]["tps"] == 200.0  # type: ignore[union-attr]
