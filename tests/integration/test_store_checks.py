"""Every function of the Lua library checks before its first write (Redis does not roll
back a function that fails half-way), and what carriers really send is stored: failed
receipts without an error code, lists that are empty."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.store import keys
from gateway.store.library import library_source
from gateway.store.surveys import Store
from sms.dlr import parse_receipt, stored_form
from tests.servers import RedisServer

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
PHONE = "13800138000"
COMMON = dict(smsc="d", bind="b1", msgid_ttl_s=3600, dlr_timeout_s=60, reply_window_s=60)


async def submitted(store: Store, sid: str, parts: int = 1, *, dlr_timeout_s: float = 60) -> None:
    """A survey taken and accepted by the SMS center, message ids "<sid>-<part>"."""
    r = await store.intake(
        sid, PHONE, {"template": "default"}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )
    assert r.state == "queued"
    assert await store.send_begin(sid, 0, 3600, 3600) is not None
    common = {**COMMON, "dlr_timeout_s": dlr_timeout_s}
    for i in range(1, parts + 1):
        mid = f"{sid}-{i}"
        await store.part_submitted(sid, i, parts, message_id_key=mid, message_id=mid, **common)


def carrier_receipt(mid: str, stat: str, err: str = "000") -> dict[str, object]:
    """A receipt as a carrier writes it (SMPP 3.4 Appendix B), as the inbound worker
    hands it to the store."""
    text = (
        f"id:{mid} sub:001 dlvrd:000 submit date:2611231005 done date:2611231006 "
        f"stat:{stat} err:{err} text:"
    )
    receipt = parse_receipt(text, {})
    assert receipt is not None
    return stored_form(receipt)


@pytest.mark.parametrize("stat", ["UNDELIV", "EXPIRED", "DELETED", "REJECTD"])
async def test_a_failed_receipt_without_an_error_code_makes_the_survey_undeliverable(
    store: Store, stat: str
) -> None:
    await submitted(store, "S1")
    receipt = carrier_receipt("S1-1", stat)
    assert receipt["error"] is None  # err:000 means "no error code" to the parser
    assert await store.receipt("d", "S1-1", receipt, 3600) == ("final", "S1")
    survey = await store.get_survey("S1")
    assert survey is not None and survey["state"] == "undeliverable"
    assert survey["p1:err"] == ""
    events = await store.events("S1")
    assert [e.type for e in events][-2:] == ["sms.part_failed", "survey.undeliverable"]
    assert events[-2].payload["error"] == ""
    assert events[-1].payload["failed_parts"] == [{"part": 1, "state": receipt["state"]}]
    # the same receipt again (an SMSC redelivers it): a duplicate, nothing written
    assert await store.receipt("d", "S1-1", receipt, 3600) == ("duplicate", "S1")
    assert len(await store.events("S1")) == len(events)


async def test_a_failed_receipt_with_an_error_code_keeps_it(store: Store) -> None:
    await submitted(store, "S1")
    assert (await store.receipt("d", "S1-1", carrier_receipt("S1-1", "UNDELIV", "005"), 60))[0] == (
        "final"
    )
    events = await store.events("S1")
    assert events[-2].payload["error"] == "005"


async def test_a_receipt_held_for_its_resp_with_a_null_error_is_applied(store: Store) -> None:
    r = await store.intake(
        "S1", PHONE, {"template": "default"}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )
    assert r.state == "queued"
    await store.send_begin("S1", 0, 3600, 3600)
    assert await store.receipt("d", "m1", carrier_receipt("m1", "EXPIRED"), 3600) == ("held", "")
    assert (
        await store.part_submitted("S1", 1, 1, message_id_key="m1", message_id="m1", **COMMON)
        == "submitted"
    )
    survey = await store.get_survey("S1")
    assert survey is not None and survey["state"] == "undeliverable"


async def test_lists_in_events_are_json_arrays_even_when_empty(store: Store) -> None:
    # missing_parts of a survey whose receipts all came, yet that is still "submitted"
    # (a receipt that came before a failure was fixed): [] and not {}
    await submitted(store, "S1", dlr_timeout_s=-1)
    await store.redis.hset(keys.SURVEY.format(survey_id="S1"), "p1:dlr", "delivered")
    await submitted(store, "S2", parts=2, dlr_timeout_s=-1)
    assert await store.sweep() == 2
    by_sid = {sid: (await store.events(sid))[-1] for sid in ("S1", "S2")}
    assert by_sid["S1"].payload["missing_parts"] == []
    assert by_sid["S2"].payload["missing_parts"] == [1, 2]
    raw = await store.redis.lrange(keys.SURVEY_EVENTS.format(survey_id="S1"), -1, -1)
    assert '"missing_parts":[]' in raw[0]


def registered_functions() -> list[str]:
    return re.findall(r"redis\.register_function\('(\w+)'", library_source())


async def snapshot(redis: aioredis.Redis) -> dict[bytes, bytes | None]:
    return {k: await redis.dump(k) for k in sorted(await redis.keys("*"))}


async def seeded(store: Store, raw: aioredis.Redis) -> dict[bytes, bytes | None]:
    await submitted(store, "S1")
    await submitted(store, "S2", parts=2)
    await store.receipt("d", "S2-1", carrier_receipt("S2-1", "DELIVRD"), 60)
    return await snapshot(raw)


async def test_every_function_refuses_missing_arguments_before_writing(
    store: Store, raw: aioredis.Redis
) -> None:
    before = await seeded(store, raw)
    names = registered_functions()
    assert len(names) >= 25
    for name in names:
        with pytest.raises(ResponseError) as refused:
            await raw.fcall(name, 0)
        assert name in str(refused.value), (name, str(refused.value))
        assert await snapshot(raw) == before, f"{name} wrote before refusing"


BAD_CALLS: list[tuple[str, tuple[str, ...], str]] = [
    # (function, ARGV, what the refusal names)
    ("minyi_receipt", ("k1", "k2", "not json", "t", "1", "60"), "not a JSON object"),
    ("minyi_receipt", ("k1", "k2", '{"state":null,"final":true}', "t", "1", "60"), "state"),
    ("minyi_receipt", ("k1", "k2", '{"state":"delivered","final":true}', "t", "x", "60"), "now_ts"),
    (
        "minyi_intake",
        ("S9", PHONE, '{"officer_id":null}', "t", "0", "", "0", "{}", ""),
        "officer_id",
    ),
    ("minyi_intake", ("S9", PHONE, "{}", "t", "0", "", "0", "[]", ""), "payload"),
    ("minyi_intake", ("S9", PHONE, "{}", "t", "0", "soon", "0", "{}", ""), "defer_at"),
    ("minyi_send_begin", ("S1", "t", "x", "60", "1", "60"), "ext_digits"),
    (
        "minyi_part_submitted",
        ("S1", "1", "1", "k", "m", "b", "t", "1", "60", "h", "1", "nope", "0"),
        "reply_due_ts",
    ),
    (
        "minyi_part_submitted",
        ("S1", "1|2", "1", "k", "m", "b", "t", "1", "60", "h", "1", "2", "0"),
        "part",
    ),
    ("minyi_part_failed", ("S1", "0", "1", "reason", "8", "t"), "part"),
    ("minyi_reply", ("S1", "t", "{broken", "satisfied", "0", PHONE), "payload"),
    ("minyi_reply", ("S1", "t", "{}", "unknown", "0", PHONE, "maybe", "0", "60", "1"), "course"),
    (
        "minyi_reply",
        ("S1", "t", "{}", "unknown", "0", PHONE, "unclear", "0", "a day", "1"),
        "clarify_window_s",
    ),
    ("minyi_clarify_sent", ("S1", "t", "one", "b", "[]"), "parts"),
    ("minyi_clarify_sent", ("S1", "t", "1", "b", "m1"), "message ids"),
    ("minyi_unmatched", ("t", "null", PHONE, "0"), "payload"),
    ("minyi_mo_part", ("k", "1", "text", "two", "60", "1"), "total"),
    ("minyi_sweep", ("1", "t", "10", "later", "0"), "orphan_cutoff_ts"),
    (
        "minyi_cb_result",
        ("S1", "cb1", "t", "callback_pending", "{}", "{}", "soon", "", "", "0"),
        "retry_at_s",
    ),
    ("minyi_cb_result", ("S1", "cb1", "t", "nowhere", "{}", "{}", "", "", "", "0"), "state"),
    ("minyi_cb_disposition", ("cb1", "t", "[1]"), "payload"),
    ("minyi_cb_recheck", ("S1", "t", "{}", "agent", "high"), "priority"),
    ("minyi_transcript", ("S1", "t", "transcript", "{}", "j1", "reason"), "pairs"),
    ("minyi_note_event", ("S1", "t", "x.y", "nope"), "payload"),
]


@pytest.mark.parametrize(("name", "argv", "named"), BAD_CALLS, ids=lambda v: str(v)[:20])
async def test_a_bad_argument_is_refused_with_its_reason_and_nothing_written(
    store: Store, raw: aioredis.Redis, name: str, argv: tuple[str, ...], named: str
) -> None:
    before = await seeded(store, raw)
    with pytest.raises(ResponseError) as refused:
        await raw.fcall(name, 0, *argv)
    assert name in str(refused.value) and named in str(refused.value), str(refused.value)
    assert await snapshot(raw) == before


async def test_a_webhook_intake_with_one_bad_entry_writes_none_of_them(
    store: Store, raw: aioredis.Redis
) -> None:
    ep = "core"
    k = [
        keys.EVENTS,
        keys.WEBHOOK_DUE.format(endpoint=ep),
        keys.WEBHOOK_DELIVERED.format(endpoint=ep),
        keys.STATS,
        keys.WEBHOOK_RETRY.format(endpoint=ep),
        keys.WEBHOOK_LEASE.format(endpoint=ep),
    ]
    before = await seeded(store, raw)
    entries = ["1-0", "S1", "1", "{}", "1-1", "S1", "two", "{}"]
    with pytest.raises(ResponseError, match="seq"):
        await raw.fcall("minyi_wh_intake", len(k), *k, ep, "p:", "1", "30", "tok", "1", *entries)
    assert await snapshot(raw) == before


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A bytes client on the store's database (DUMP needs bytes); the store's fixture
    empties it."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()
