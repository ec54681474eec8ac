"""The SMS loop against an SMS center the project did not write: one on the npm `smpp`
package (tests/peers/smpp_smsc). Receipts of every stat, with err:000 and with error
codes; throttling every 5th submit; the link dropped mid-batch; long replies in parts
with 8-bit and 16-bit concatenation UDH; a long survey SMS in parts."""

from __future__ import annotations

from collections import Counter

import pytest

from devstack.localstack import free_port
from gateway.store import keys
from tests.integration.sms_harness import (
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    running_loop,
    survey,
    widest_recent_date,
)
from tests.peers.npm_smsc import NpmSmsc
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
FINAL = {"survey.delivered", "survey.undeliverable"}


def peer() -> NpmSmsc:
    return NpmSmsc({SMPP_USER: SMPP_PASSWORD})


# (stat, err, the survey's state after the receipt)
RECEIPTS = [
    ("DELIVRD", 0, "delivered"),
    ("UNDELIV", 0, "undeliverable"),
    ("EXPIRED", 0, "undeliverable"),
    ("DELETED", 0, "undeliverable"),
    ("REJECTD", 0, "undeliverable"),
    ("ACCEPTD", 0, "undeliverable"),  # final, and not "delivered" (sms/dlr.py)
    ("UNKNOWN", 0, "submitted"),  # not final: the receipt timeout settles it
    ("ENROUTE", 0, "submitted"),
    ("UNDELIV", 5, "undeliverable"),
    ("EXPIRED", 27, "undeliverable"),
    ("REJECTD", 88, "undeliverable"),
    ("DELIVRD", 1, "delivered"),  # an error code on a delivered message: still delivered
]


async def test_receipts_of_every_stat_with_and_without_an_error_code(
    clean_redis: RedisServer,
) -> None:
    outcomes = [
        {"pattern": f"{i:02d}$", "stat": stat, "err": err}
        for i, (stat, err, _) in enumerate(RECEIPTS)
    ]
    async with running_loop(
        clean_redis.url, free_port(), smsc=peer(), behaviour={"outcomes": outcomes}
    ) as loop:
        sids = [f"S{100 + i}" for i in range(len(RECEIPTS))]
        body = {"surveys": [survey(100 + i, f"1380000{i:04d}") for i in range(len(RECEIPTS))]}
        status, _ = await loop.post(body)
        assert status == 200
        await eventually(lambda: loop.smsc.counters["deliver_acked"] == len(RECEIPTS), within_s=30)
        finals = [
            s for s, (_, _, state) in zip(sids, RECEIPTS, strict=True) if state != "submitted"
        ]
        await eventually(lambda: all(FINAL & set(loop.types(s)) for s in finals), within_s=30)
        store = loop.service.store
        assert store is not None
        for sid, (stat, err, state) in zip(sids, RECEIPTS, strict=True):
            record = await store.get_survey(sid)
            assert record is not None and record["state"] == state, (sid, stat, err, record)
            if state == "undeliverable":
                failed = next(
                    e for e in loop.receiver.events[sid] if e["type"] == "sms.part_failed"
                )
                assert failed["payload"]["error"] == ("" if err == 0 else f"{err:03d}"), stat
                undeliverable = loop.receiver.events[sid][-1]
                assert undeliverable["type"] == "survey.undeliverable"
                assert undeliverable["payload"]["failed_parts"][0]["part"] == 1
            if state == "submitted":
                assert record["p1:interim"] == stat.lower()
        assert await store.redis.xlen(keys.DLR_ORPHANS) == 0
        assert loop.service.inbound is not None
        assert loop.service.inbound.counts.get("unhandled", 0) == 0


async def test_throttling_every_fifth_submit_is_not_a_resend(clean_redis: RedisServer) -> None:
    async with running_loop(
        clean_redis.url,
        free_port(),
        smsc=peer(),
        behaviour={"throttle_every": 5},
        bind={"tps": 200},
    ) as loop:
        await loop.post({"surveys": [survey(i, f"139{i:08d}") for i in range(200, 400)]})
        sids = [f"S{i}" for i in range(200, 400)]
        await eventually(lambda: all(FINAL & set(loop.types(s)) for s in sids), within_s=60)
        counters = loop.smsc.counters
        assert counters["throttled"] >= 40 and counters["duplicates"] == 0
        accepted = Counter(s.dest for s in loop.smsc.submits if s.status == 0)
        assert len(accepted) == 200 and set(accepted.values()) == {1}
        assert not [s for s in sids if "sms.resent" in loop.types(s)]
        assert all("survey.delivered" in loop.types(s) for s in sids)


async def test_a_link_dropped_mid_batch_loses_nothing_and_reports_every_duplicate(
    clean_redis: RedisServer,
) -> None:
    async with running_loop(clean_redis.url, free_port(), smsc=peer()) as loop:
        loop.smsc.drop_connections(after=150)
        await loop.post({"surveys": [survey(i, f"137{i:08d}") for i in range(1000, 1500)]})
        sids = [f"S{i}" for i in range(1000, 1500)]
        await eventually(lambda: all(FINAL & set(loop.types(s)) for s in sids), within_s=90)
        counters = loop.smsc.counters
        assert counters["drops"] >= 1 and counters["lost_in_drop"] == 1
        assert counters["binds"] >= 2  # the gateway bound again
        accepted = Counter(s.dest for s in loop.smsc.submits if s.status == 0)
        assert len(accepted) == 500
        duplicated = {f"S{int(d[3:])}" for d, n in accepted.items() if n > 1}
        resent = {s for s in sids if "sms.resent" in loop.types(s)}
        assert duplicated <= resent  # every duplicate reported
        window = loop.service.settings.sms.binds[0].window
        assert len(duplicated) <= window
        assert loop.receiver.out_of_order == 0


@pytest.mark.parametrize(("split", "reverse"), [("udh8", False), ("udh16", True)])
async def test_long_replies_in_parts_are_put_together(
    clean_redis: RedisServer, split: str, reverse: bool
) -> None:
    async with running_loop(clean_redis.url, free_port(), smsc=peer()) as loop:
        await loop.post(survey(300, "13500000300"))
        await eventually(lambda: "survey.delivered" in loop.types("S300"))
        text = "3 不满意。" + "出警太慢，等了一个多小时才来人，" * 6 + "态度也很差😠"
        ids = loop.smsc.inject_mo("13500000300", SOURCE_ADDR, text, split=split, reverse=reverse)
        assert len(ids) >= 2
        await eventually(lambda: "survey.callback_pending" in loop.types("S300"))
        replied = next(e for e in loop.receiver.events["S300"] if e["type"] == "survey.replied")
        assert replied["payload"]["text"] == text
        assert replied["payload"]["parts"] == len(ids)
        assert replied["payload"]["understanding"]["rating"] == "unsatisfied"


async def test_a_long_survey_sms_reaches_it_in_parts(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port(), smsc=peer()) as loop:
        await loop.post(survey(3, "13900000003", template="long", occurred_at=widest_recent_date()))
        await eventually(lambda: "survey.delivered" in loop.types("S3"))
        parts = [s for s in loop.smsc.submits if s.dest == "13900000003"]
        assert len(parts) >= 3 and all(p.data_coding == 8 for p in parts)
        assert all(p.esm_class & 0x40 and p.part is not None for p in parts)
        assert len({p.part[0] for p in parts if p.part}) == 1  # one reference
        ordered = sorted(parts, key=lambda p: p.part[2] if p.part else 0)
        assert [p.part[2] for p in ordered if p.part] == list(range(1, len(parts) + 1))
        assert "".join(p.text for p in ordered).endswith("谢谢！😊")
