"""The survey loop over CMPP 2.0 and 3.0, against gocmpp's server side (a peer the
project did not write): surveys end to end on the feed, status reports, long messages
reassembled by the peer, replies matched by extension code, flow control and a link
dropped mid-batch."""

from __future__ import annotations

from collections import Counter

import pytest
import redis.asyncio as aioredis

from devstack.cmpp_peer import SRC_ID
from devstack.localstack import free_port
from gateway.store import keys
from gateway.store.surveys import SendJob
from smsc.simulator import SmscSimulator
from tests.integration.cmpp_harness import cmpp_loop
from tests.integration.sms_harness import (
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    survey,
    widest_recent_date,
)
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
VERSIONS = pytest.mark.parametrize("version", [2, 3], ids=["cmpp2", "cmpp3"])
FINAL = {"survey.delivered", "survey.undeliverable"}


def batch(start: int, n: int, prefix: str = "138") -> dict[str, object]:
    return {"surveys": [survey(i, f"{prefix}{i:08d}") for i in range(start, start + n)]}


@VERSIONS
async def test_200_surveys_end_to_end(clean_redis: RedisServer, version: int) -> None:
    # the peer tests the link every half second: gocmpp drops it after 3 unanswered
    async with cmpp_loop(clean_redis.url, free_port(), version, active_test_s=0.5) as loop:
        status, body = await loop.post(batch(1000, 200))
        assert status == 200 and body["counts"] == {"created": 200}
        sids = [f"S{i}" for i in range(1000, 1200)]
        await eventually(
            lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=60
        )
        submits = await loop.peer.submits()
        assert Counter(s["dest"] for s in submits) == {f"138{i:08d}": 1 for i in range(1000, 1200)}
        first = submits[0]
        assert (
            first["src_id"] == SRC_ID and first["msg_fmt"] == 8 and first["service_id"] == "MJS0010"
        )
        assert (first["msg_src"], first["fee_type"], first["fee_code"]) == (
            "901234",
            "01",
            "000000",
        )
        assert first["text"].startswith("【平安绍兴】") and first["registered_delivery"] == 1
        # the message id the feed reports is the peer's Msg_Id, in the same spelling
        submitted = loop.event("S1000", "survey.submitted")
        peer_ids = {s["dest"]: s["msg_id"] for s in submits}
        assert peer_ids["13800001000"] in str(submitted["payload"])
        for i in range(1000, 1020):
            await loop.peer.mo(f"86138{i:08d}", SRC_ID, "1" if i % 2 else "3 态度很差")
        await eventually(
            lambda: all("survey.replied" in loop.types(f"S{i}") for i in range(1000, 1020))
        )
        assert "survey.closed" in loop.types("S1001")
        assert "survey.callback_pending" in loop.types("S1000")
        stats = await loop.peer.stats()
        assert stats["logins"] == 1 and stats["drops"] == 0 and stats["unacked"] == 0
        assert loop.receiver.out_of_order == 0 and loop.receiver.rejected == 0


@VERSIONS
async def test_receipts_delivered_undeliverable_expired(
    clean_redis: RedisServer, version: int
) -> None:
    async with cmpp_loop(clean_redis.url, free_port(), version) as loop:
        await loop.peer.behaviour(stat_by_suffix={"1": "UNDELIV", "2": "EXPIRED", "3": "MK:0005"})
        await loop.post(batch(2000, 4, "139"))
        sids = [f"S{i}" for i in range(2000, 2004)]
        await eventually(lambda: all(FINAL & set(loop.types(s)) for s in sids))
        assert "survey.delivered" in loop.types("S2000")
        for sid, state, error in (
            ("S2001", "undeliverable", "UNDELIV"),
            ("S2002", "expired", "EXPIRED"),
            ("S2003", "undeliverable", "MK:0005"),  # an ISMG error code: not delivered
        ):
            assert "survey.undeliverable" in loop.types(sid)
            failed = loop.event(sid, "sms.part_failed")["payload"]
            assert (failed["state"], failed["error"]) == (state, error)


@VERSIONS
async def test_long_survey_is_reassembled_exactly_by_the_peer(
    clean_redis: RedisServer, version: int
) -> None:
    for n, ref16 in ((3000, False), (3001, True)):  # 8-bit and 16-bit UDH references
        async with cmpp_loop(clean_redis.url, free_port(), version, sms={"ref16": ref16}) as loop:
            sid = f"S{n}"
            body = survey(n, f"139{n:08d}", template="long", occurred_at=widest_recent_date())
            await loop.post(body)
            await eventually(lambda sid=sid: "survey.delivered" in loop.types(sid))
            submits = await loop.peer.submits()
            assert len(submits) >= 3 and {s["pk_total"] for s in submits} == {len(submits)}
            assert sorted(s["pk_number"] for s in submits) == list(range(1, len(submits) + 1))
            assert all(s["tp_udhi"] == 1 and len(s["content_hex"]) <= 280 for s in submits)
            udh = bytes.fromhex(submits[0]["content_hex"])[:2]
            assert udh == (bytes([6, 8]) if ref16 else bytes([5, 0]))
            [message] = await loop.peer.messages()
            sender = loop.service.sender
            assert sender is not None
            expected = sender._render(SendJob(sid, 1, "", {k: str(v) for k, v in body.items()}))
            assert message["complete"] and message["text"] == expected
            assert message["parts"] == len(submits)


@VERSIONS
async def test_replies_matched_by_extension_code_in_ucs2_and_gbk(
    clean_redis: RedisServer, version: int
) -> None:
    over = {"surveys": {"quiet_hours": {"enabled": False}, "frequency_cap_days": 0}}
    async with cmpp_loop(
        clean_redis.url, free_port(), version, sms={"extension_digits": 3}, **over
    ) as loop:
        for n in (4000, 4001):  # the same citizen, two surveys
            await loop.post(survey(n, "13400004000"))
            await eventually(lambda n=n: "survey.delivered" in loop.types(f"S{n}"))
        await loop.post(batch(4010, 3, "135"))
        await eventually(
            lambda: all("survey.delivered" in loop.types(f"S{i}") for i in range(4010, 4013))
        )
        srcs = {s["dest"]: s["src_id"] for s in await loop.peer.submits()}
        first = next(s for s in await loop.peer.submits() if s["dest"] == "13400004000")["src_id"]
        assert first.startswith(SRC_ID) and len(first) == len(SRC_ID) + 3
        await loop.peer.mo("13400004000", first, "3", encoding="gbk")  # answers the FIRST survey
        await eventually(lambda: "survey.replied" in loop.types("S4000"))
        assert loop.event("S4000", "survey.replied")["payload"]["matched_by"] == "extension_code"
        assert "survey.replied" not in loop.types("S4001")
        long_reply = "3 不满意。" + "出警太慢，等了一个多小时才来人，" * 6 + "态度也很差"
        cases = {
            "13500004010": {"encoding": "ucs2", "parts": 3},
            "13500004011": {"encoding": "gbk", "parts": 2, "udh16": True, "reverse": True},
            "13500004012": {"encoding": "gbk", "parts": 1},
        }
        for phone, how in cases.items():
            text = long_reply if how["parts"] > 1 else "不满意，态度很差"
            await loop.peer.mo(phone, srcs[phone], text, **how)
        for i, phone in zip(range(4010, 4013), cases, strict=True):
            sid = f"S{i}"
            await eventually(lambda sid=sid: "survey.replied" in loop.types(sid))
            replied = loop.event(sid, "survey.replied")["payload"]
            parts = cases[phone]["parts"]
            assert replied["text"] == (long_reply if parts > 1 else "不满意，态度很差")
            assert replied["matched_by"] == "extension_code"
            assert replied["understanding"]["rating"] == "unsatisfied"
            if parts > 1:
                assert replied["parts"] == parts


@VERSIONS
async def test_flow_control_slows_down_and_is_no_resend(
    clean_redis: RedisServer, version: int
) -> None:
    async with cmpp_loop(clean_redis.url, free_port(), version) as loop:
        await loop.peer.behaviour(result8_every=4)
        await loop.post(batch(5000, 120, "137"))
        sids = [f"S{i}" for i in range(5000, 5120)]
        await eventually(
            lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=90
        )
        submits = await loop.peer.submits()
        assert sum(1 for s in submits if s["status"] == 8) >= 120 // 4
        accepted = Counter(s["dest"] for s in submits if s["status"] == 0)
        assert len(accepted) == 120 and set(accepted.values()) == {1}
        client = loop.service.client
        assert client is not None and client.throttled >= 120 // 4 and client.resent == 0
        assert not any("sms.resent" in loop.types(s) for s in sids)  # refused: reached nobody


@VERSIONS
async def test_link_drop_mid_batch_loses_nothing_and_reports_duplicates(
    clean_redis: RedisServer, version: int
) -> None:
    # 300 submits at 500 a second: the second drop lands while the batch is still going
    async with cmpp_loop(clean_redis.url, free_port(), version, bind={"tps": 500}) as loop:
        await loop.peer.drop(after=60)
        await loop.post(batch(6000, 300, "136"))

        async def logins_and_accepted(logins: int, accepted: int) -> bool:
            stats = await loop.peer.stats()
            return int(stats["logins"]) >= logins and int(stats["accepted"]) >= accepted

        # Back on a second link and sending on it. A survey's receipt would not say so:
        # a batch's surveys are taken in no fixed order, and S6150's may come on the
        # first link, leaving the second drop with no link to drop.
        await eventually(
            lambda: logins_and_accepted(2, 120), "the second link carrying submits", within_s=60
        )
        assert (await loop.peer.drop())["dropped"] == 1  # and once more, now, mid-batch
        sids = [f"S{i}" for i in range(6000, 6300)]
        await eventually(lambda: logins_and_accepted(3, 0), "the login after the second drop")
        await eventually(
            lambda: all("survey.delivered" in loop.types(s) for s in sids), within_s=120
        )
        stats = await loop.peer.stats()
        assert stats["drops"] >= 2 and stats["logins"] >= 3
        submits = await loop.peer.submits()
        accepted = Counter(s["dest"] for s in submits if s["status"] == 0)
        assert len(accepted) == 300  # every survey reached the SMS center: 0 lost
        duplicated = {d for d, n in accepted.items() if n > 1}
        assert duplicated  # the dropped submit was accepted and never answered
        resent = {s for s in sids if "sms.resent" in loop.types(s)}
        assert {f"S{int(d[3:])}" for d in duplicated} <= resent  # every duplicate reported
        assert len(duplicated) <= 2 * 16  # at most a window per drop
        assert loop.receiver.out_of_order == 0


async def test_mixed_protocols_routed_by_prefix_and_old_entries_still_read(
    clean_redis: RedisServer,
) -> None:
    # an SMPP bind to an aggregator (the default) and a CMPP bind to China Mobile for
    # its prefixes: each survey through its bind, receipts and replies of both on one
    # feed; the inbound entries of SMPP keep their old format (no protocol field)
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    agg = {
        "name": "agg",
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": SMPP_USER,
        "password": SMPP_PASSWORD,
        "reconnect_initial_s": 0.2,
        "reconnect_max_s": 1,
    }
    routes = [{"binds": ["cmcc"], "prefixes": ["139"]}]
    try:
        async with cmpp_loop(
            clean_redis.url,
            free_port(),
            3,
            extra_binds=[agg],
            sms={"routes": routes, "default_binds": ["agg"]},
        ) as loop:
            await loop.post(batch(7000, 10, "139"))
            await loop.post(batch(7100, 10, "138"))
            sids = [f"S{i}" for i in (*range(7000, 7010), *range(7100, 7110))]
            await eventually(lambda: all("survey.delivered" in loop.types(s) for s in sids))
            assert {s["dest"][:3] for s in await loop.peer.submits()} == {"139"}
            assert {s.dest[:3] for s in smsc.submits} == {"138"}
            assert {s.source for s in smsc.submits} == {SOURCE_ADDR}  # [sms] source_addr
            await loop.peer.mo("13900007000", SRC_ID, "1")
            smsc.inject_mo("13800007100", SOURCE_ADDR, "1")
            await eventually(lambda: "survey.closed" in loop.types("S7000"))
            await eventually(lambda: "survey.closed" in loop.types("S7100"))
            redis = aioredis.Redis.from_url(clean_redis.url, decode_responses=True)
            try:
                entries = await redis.xrange(keys.INBOUND)
            finally:
                await redis.aclose()
            by_bind = {(f["bind"], f.get("proto")) for _, f in entries}
            assert by_bind == {("agg", None), ("cmcc", "cmpp3")}
            assert all(set(f) <= {"bind", "smsc", "pdu", "at", "proto"} for _, f in entries)
    finally:
        await smsc.stop()


async def test_a_wrong_secret_is_refused_and_never_bound(clean_redis: RedisServer) -> None:
    async with cmpp_loop(clean_redis.url, free_port(), 3, bind={"secret": "wrong"}) as loop:
        client = loop.service.client
        assert client is not None and not await client.wait_bound(1.0)
        stats = await loop.peer.stats()
        assert stats["refused_logins"] >= 1 and stats["logins"] == 0
