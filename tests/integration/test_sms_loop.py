"""The survey loop over SMS end to end, on real servers: POST → submit_sm → DLR →
reply → webhook feed."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devstack.localstack import free_port
from gateway.store import keys
from tests.integration.sms_harness import (
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    TOKEN,
    running_loop,
    survey,
    widest_recent_date,
)
from tests.peers.npm_smsc import NpmSmsc
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")


def sms_center(kind: str) -> Any:
    """None: the project's simulator (running_loop's default); "npm": the SMS center on
    the npm smpp package, which the project did not write."""
    return NpmSmsc({SMPP_USER: SMPP_PASSWORD}) if kind == "npm" else None


@pytest.mark.parametrize("center", ["simulator", "npm"])
async def test_happy_path_satisfied_and_unsatisfied(clean_redis: RedisServer, center: str) -> None:
    async with running_loop(clean_redis.url, free_port(), smsc=sms_center(center)) as loop:
        status, body = await loop.post(survey(1, "13800000001"))
        assert status == 201, body
        assert body["status"] == "created" and body["state"] == "queued"
        status, body = await loop.post(survey(2, "13800000002"))
        assert status == 201
        await eventually(
            lambda: (
                "survey.delivered" in loop.types("S1") and "survey.delivered" in loop.types("S2")
            )
        )
        sub = [s for s in loop.smsc.submits if s.dest == "13800000001"]
        assert len(sub) == 1 and sub[0].data_coding == 8
        assert "回复1满意，2基本满意，3不满意" in sub[0].text and sub[0].text.startswith(
            "【平安绍兴】"
        )
        loop.smsc.inject_mo("13800000001", SOURCE_ADDR, "1")
        loop.smsc.inject_mo("8613800000002", SOURCE_ADDR, "不满意，出警太慢")
        await eventually(lambda: "survey.closed" in loop.types("S1"))
        await eventually(lambda: "survey.callback_pending" in loop.types("S2"))
        assert loop.types("S1") == [
            "survey.accepted",
            "survey.queued",
            "survey.submitted",
            "survey.delivered",
            "survey.replied",
            "survey.closed",
        ]
        replied = next(e for e in loop.receiver.events["S2"] if e["type"] == "survey.replied")
        u = replied["payload"]["understanding"]
        assert u["rating"] == "unsatisfied"
        assert replied["payload"]["text"] == "不满意，出警太慢"
        assert loop.receiver.seqs("S2") == list(range(1, len(loop.receiver.seqs("S2")) + 1))
        assert loop.receiver.rejected == 0 and loop.receiver.out_of_order == 0
        status, body = await loop.get("S2")
        assert status == 200 and body["state"] == "callback_pending"
        assert [e["seq"] for e in body["events"]] == loop.receiver.seqs("S2")


async def test_long_chinese_sms_is_concatenated(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        when = widest_recent_date()
        status, _ = await loop.post(survey(3, "13900000003", template="long", occurred_at=when))
        assert status == 201
        await eventually(lambda: "survey.delivered" in loop.types("S3"))
        parts = [s for s in loop.smsc.submits if s.dest == "13900000003"]
        assert len(parts) >= 3
        assert all(p.esm_class & 0x40 and p.udh is not None for p in parts)
        assert all(len(p.short_message) <= 140 for p in parts)
        refs = {p.part[0] for p in parts if p.part}
        assert len(refs) == 1
        text = "".join(p.text for p in sorted(parts, key=lambda p: p.part[2] if p.part else 0))
        assert text.endswith("谢谢！😊")
        delivered = next(e for e in loop.receiver.events["S3"] if e["type"] == "survey.delivered")
        assert delivered["payload"]["parts"] == len(parts)


async def test_idempotent_repost_and_validation(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        assert (await loop.post(survey(4, "13700000004")))[0] == 201
        status, body = await loop.post(survey(4, "13700000004"))
        assert status == 200 and body["status"] == "existing"
        await eventually(lambda: "survey.delivered" in loop.types("S4"))
        status, body = await loop.post(survey(4, "13700000004"))
        assert status == 200 and body["status"] == "existing" and body["state"] == "delivered"
        assert len([s for s in loop.smsc.submits if s.dest == "13700000004"]) == 1
        # a batch with every kind of problem: each item answered, none dropped
        status, body = await loop.post(
            {
                "surveys": [
                    survey(5, "13700000005"),
                    survey(6, "12345"),
                    survey(7, "13700000007", template="nope"),
                    survey(8, "13700000004"),  # same number within the cap
                    {"survey_id": "S9"},
                    "not an object",
                ]
            }
        )
        assert status == 200
        by_index = {r["index"]: r for r in body["results"]}
        assert by_index[0]["status"] == "created"
        assert (by_index[1]["status"], by_index[1]["field"]) == ("invalid", "phone")
        assert (by_index[2]["status"], by_index[2]["field"]) == ("invalid", "template")
        assert (by_index[3]["status"], by_index[3]["reason"]) == ("rejected", "too_frequent")
        assert by_index[4]["status"] == "invalid" and by_index[5]["status"] == "invalid"
        # malformed requests: clear 4xx with a reason
        async with loop.http.post(
            loop.api + "/v1/surveys",
            data=b"{not json",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as r:
            assert r.status == 400 and (await r.json())["error"] == "invalid_json"
        status, body = await loop.post({"surveys": [survey(i) for i in range(1001)]})
        assert status == 413 and body["error"] == "batch_too_large"
        async with loop.http.post(loop.api + "/v1/surveys", json=survey(10)) as r:
            assert r.status == 401
        status, body = await loop.post(survey(11, unit_code="330700"), token=TOKEN + "-county")
        assert status == 403 and body["reason"] == "unit_not_allowed"


async def test_opt_out_is_honoured_for_good(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        await loop.post(survey(20, "13600000020"))
        await eventually(lambda: "survey.delivered" in loop.types("S20"))
        loop.smsc.inject_mo("13600000020", SOURCE_ADDR, "3 TD")
        await eventually(lambda: "survey.callback_pending" in loop.types("S20"))
        assert "citizen.opted_out" in loop.types("S20")
        status, body = await loop.post(survey(21, "13600000020"))
        assert status == 200 and body["status"] == "rejected" and body["reason"] == "opted_out"
        # a reply from a number with no open survey is kept and reported
        loop.smsc.inject_mo("13600000099", SOURCE_ADDR, "你是谁")
        await eventually(lambda: bool(loop.receiver.events.get("")))
        unmatched = loop.receiver.events[""][0]
        assert unmatched["type"] == "reply.unmatched" and unmatched["payload"]["text"] == "你是谁"


@pytest.mark.parametrize("center", ["simulator", "npm"])
async def test_many_replies_at_once(clean_redis: RedisServer, center: str) -> None:
    # every citizen answers at the same moment: the inbound worker handles them
    # concurrently, within a bounded Redis connection pool (this once failed with
    # MaxConnectionsError)
    async with running_loop(clean_redis.url, free_port(), smsc=sms_center(center)) as loop:
        n = 300
        body = {"surveys": [survey(i, f"135{i:08d}") for i in range(2000, 2000 + n)]}
        assert (await loop.post(body))[0] == 200
        sids = [f"S{i}" for i in range(2000, 2000 + n)]
        await eventually(lambda: all("survey.delivered" in loop.types(s) for s in sids))
        for i in range(2000, 2000 + n):
            loop.smsc.inject_mo(f"135{i:08d}", SOURCE_ADDR, "3 态度很差" if i % 2 else "1")
        await eventually(
            lambda: all("survey.replied" in loop.types(s) for s in sids), "replies", 60
        )
        # each reply's next event may reach the receiver a moment after survey.replied
        odd = [f"S{i}" for i in range(2000, 2000 + n) if i % 2]
        even = [f"S{i}" for i in range(2000, 2000 + n) if not i % 2]
        await eventually(
            lambda: (
                all("survey.callback_pending" in loop.types(s) for s in odd)
                and all("survey.closed" in loop.types(s) for s in even)
            ),
            "each reply's next state",
            30,
        )
        assert sum("survey.callback_pending" in loop.types(s) for s in sids) == n // 2
        assert not loop.receiver.events.get("")  # none unmatched


async def test_a_survey_that_cannot_be_rendered_is_undeliverable_and_never_retried(
    clean_redis: RedisServer,
) -> None:
    # Stored before the API bounded occurred_at: converting it to local time overflowed
    # on every try, the survey stayed queued, and each retry emitted a false sms.resent.
    async with running_loop(clean_redis.url, free_port()) as loop:
        store = loop.service.store
        assert store is not None
        fields = {
            "service_type": "110",
            "unit_code": "330602",
            "officer_id": "P1001",
            "occurred_at": "9999-12-31T23:59:59-12:00",
            "template": "default",
        }
        await store.intake(
            "S30", "13500000030", fields, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
        )
        await eventually(lambda: "survey.undeliverable" in loop.types("S30"), "S30 undeliverable")
        status, _ = await loop.post(survey(31, "13500000031"))  # the sender goes on
        assert status == 201
        await eventually(lambda: "survey.delivered" in loop.types("S31"), "S31 delivered")
        assert loop.types("S30") == [
            "survey.accepted",
            "survey.queued",
            "sms.part_failed",
            "survey.undeliverable",
        ]
        last = loop.receiver.events["S30"][-1]
        assert last["payload"]["reason"] == "occurred_at_unusable"
        assert not [s for s in loop.smsc.submits if s.dest == "13500000030"]
        pending = await store.redis.xpending(keys.SMS_QUEUE, keys.SMS_GROUP)
        assert pending["pending"] == 0  # acknowledged: nothing left to retry
