"""The store's Redis functions against a real redis-server: every transition and its
event are one atomic write, and the transition table is the one in states.py."""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.store import keys
from gateway.store.states import TRANSITIONS, State
from gateway.store.surveys import Store

pytestmark = pytest.mark.integration


async def intake(store: Store, sid: str, phone: str = "13800138000", **kw: object):
    args: dict[str, object] = {"cap_s": 7 * 86400, "defer_at": None, "ttl_s": 0}
    args.update(kw)
    return await store.intake(
        sid, phone, {"unit": "330602", "template": "default"}, accepted_payload={}, **args
    )


async def test_intake_is_idempotent_and_emits_events(store: Store) -> None:
    r1 = await intake(store, "S1")
    r2 = await intake(store, "S1")
    assert (r1.status, r1.state) == ("created", "queued")
    assert (r2.status, r2.state) == ("existing", "queued")
    events = await store.events("S1")
    assert [e.type for e in events] == ["survey.accepted", "survey.queued"]
    assert [e.seq for e in events] == [1, 2]
    assert events[1].payload["from"] == "accepted"
    assert await store.redis.xlen(keys.SMS_QUEUE) == 1
    assert await store.redis.xlen(keys.EVENTS) == 2


async def test_frequency_cap_and_opt_out_reject(store: Store) -> None:
    await intake(store, "S1")
    r = await intake(store, "S2")
    assert (r.state, r.reason) == ("rejected", "too_frequent")
    await store.redis.sadd(keys.OPTOUT, "13900139000")
    r = await intake(store, "S3", phone="13900139000")
    assert (r.state, r.reason) == ("rejected", "opted_out")
    ev = (await store.events("S2"))[-1]
    assert ev.type == "survey.rejected" and ev.payload["previous_survey_id"] == "S1"


async def test_deferred_release(store: Store) -> None:
    import time

    r = await intake(store, "S1", defer_at=time.time() + 0.2)
    assert r.state == "deferred"
    assert await store.release_due() == 0
    await asyncio.sleep(0.3)
    assert await store.release_due() == 1
    assert (await store.get_survey("S1"))["state"] == "queued"


async def test_receipt_before_submit_resp_is_held_then_applied(store: Store) -> None:
    await intake(store, "S1")
    job = await store.send_begin("S1", 0, 3600, 3600)
    assert job is not None and job.attempt == 1
    receipt = {"state": "delivered", "final": True, "error": None}
    assert await store.receipt("default", "42", receipt, 3600) == ("held", "")
    common = dict(smsc="default", bind="b1", msgid_ttl_s=3600, dlr_timeout_s=60, reply_window_s=60)
    assert (
        await store.part_submitted("S1", 1, 2, message_id_key="41", message_id="41", **common)
        == "part"
    )
    assert (
        await store.part_submitted("S1", 2, 2, message_id_key="42", message_id="42", **common)
        == "submitted"
    )
    assert await store.receipt("default", "41", receipt, 3600) == ("final", "S1")
    types = [e.type for e in await store.events("S1")]
    assert types == ["survey.accepted", "survey.queued", "survey.submitted", "survey.delivered"]
    # a duplicate receipt changes nothing
    assert await store.receipt("default", "41", receipt, 3600) == ("duplicate", "S1")


async def test_receipt_never_matched_becomes_an_orphan(store: Store) -> None:
    receipt = {"state": "delivered", "final": True}
    assert (await store.receipt("d", "nobody", receipt, 3600))[0] == "held"
    assert await store.sweep(orphan_after_s=60) == 0  # still young: may yet match
    assert await store.sweep(orphan_after_s=-1) == 1
    orphans = await store.redis.xrange(keys.DLR_ORPHANS)
    assert len(orphans) == 1 and (await store.stats())["dlr:orphaned"] == 1
    assert await store.redis.get(keys.DLR_HELD.format(smsc="d", message_id="nobody")) is None


async def test_part_lost_is_visible(store: Store) -> None:
    await intake(store, "S1")
    await store.send_begin("S1", 0, 3600, 3600)
    common = dict(smsc="d", bind="b1", msgid_ttl_s=3600, dlr_timeout_s=60, reply_window_s=60)
    for i in (1, 2):
        await store.part_submitted("S1", i, 2, message_id_key=f"m{i}", message_id=f"m{i}", **common)
    await store.receipt("d", "m1", {"state": "delivered", "final": True}, 60)
    await store.receipt("d", "m2", {"state": "undeliverable", "final": True, "error": "005"}, 60)
    evs = await store.events("S1")
    assert [e.type for e in evs][-2:] == ["sms.part_failed", "survey.undeliverable"]
    assert evs[-1].payload["failed_parts"] == [{"part": 2, "state": "undeliverable"}]


async def test_reply_unsatisfied_and_opt_out(store: Store) -> None:
    await intake(store, "S1")
    await store.send_begin("S1", 0, 3600, 3600)
    await store.part_submitted(
        "S1",
        1,
        1,
        smsc="d",
        message_id_key="m",
        message_id="m",
        bind="b",
        msgid_ttl_s=60,
        dlr_timeout_s=60,
        reply_window_s=60,
    )
    sid, how = await store.find_open_survey("13800138000", "", 60)
    assert (sid, how) == ("S1", "latest_open")
    out = await store.reply(
        "S1", {"text": "3 TD", "rating": "unsatisfied"}, "unsatisfied", True, "13800138000"
    )
    assert out == ("callback_pending", "submitted")
    assert await store.is_opted_out("13800138000")
    types = [e.type for e in await store.events("S1")]
    assert types[-3:] == ["survey.replied", "citizen.opted_out", "survey.callback_pending"]
    # the window stays open for a correction until its deadline
    assert (await store.find_open_survey("13800138000", "", 60))[0] == "S1"
    # ... which the sweep closes: a later reply is late, not attached
    await store.redis.zadd(keys.REPLY_DUE, {"S1": 1.0})
    await store.sweep()
    assert (await store.find_open_survey("13800138000", "", 60))[0] is None
    assert (await store.reply("S1", {}, "satisfied", False, "13800138000"))[0] == "late"


async def test_states_have_events(store: Store) -> None:
    # every target state name is a valid event suffix the webhook consumer will see
    assert all(isinstance(s, State) for s in TRANSITIONS)
    seq = await store.unmatched({"text": "hi"}, "13800138000", False)
    assert seq == 1
    entries = await store.redis.xrange(keys.EVENTS)
    assert json.loads(entries[-1][1]["event"])["type"] == "reply.unmatched"


async def test_reply_before_the_submit_resp_is_stored(store: Store) -> None:
    # a citizen answering within a second can overtake the storing of the resp
    await intake(store, "S1")
    await store.send_begin("S1", 0, 3600, 3600)
    sid, how = await store.find_open_survey("13800138000", "", 60)
    assert (sid, how) == ("S1", "latest_open")
    assert (await store.reply("S1", {}, "unsatisfied", False, "13800138000"))[0] == (
        "callback_pending"
    )
    common = dict(smsc="d", bind="b", msgid_ttl_s=60, dlr_timeout_s=60, reply_window_s=60)
    await store.part_submitted("S1", 1, 1, message_id_key="m", message_id="m", **common)
    await store.receipt("d", "m", {"state": "delivered", "final": True}, 60)
    survey = await store.get_survey("S1")
    assert survey is not None and survey["state"] == "callback_pending"
    last = (await store.events("S1"))[-1]
    assert (last.type, last.payload["state"]) == ("sms.receipt", "delivered")
    assert survey["p1:mid"] == "m" and survey["p1:dlr"] == "delivered"
    # the number's survey stays open for a correction until its window ends
    assert (await store.find_open_survey("13800138000", "", 60))[0] == "S1"


async def test_a_part_accepted_twice_is_reported_once_whoever_stores_first(store: Store) -> None:
    # Two processes sent the same part (the owner was held up past claim_idle_s while
    # another took its survey over): the SMS center accepted it twice, with two message
    # ids. Neither sender knew — the second answer stored says so, once per part.
    common = dict(smsc="default", bind="b1", msgid_ttl_s=3600, dlr_timeout_s=60, reply_window_s=60)

    def resent(events: list) -> list[dict]:
        return [e.payload for e in events if e.type == "sms.resent"]

    await intake(store, "A1", phone="13800000001")
    await store.send_begin("A1", 0, 3600, 3600)
    await store.part_submitted("A1", 1, 1, message_id_key="m1", message_id="m1", **common)
    await store.part_submitted("A1", 1, 1, message_id_key="m1", message_id="m1", **common)
    assert resent(await store.events("A1")) == []  # the same answer stored again
    await store.part_submitted("A1", 1, 1, message_id_key="m2", message_id="m2", **common)
    assert resent(await store.events("A1")) == [{"part": 1, "reason": "accepted_twice"}]
    # the one that knew it resent stores first, then the owner: still one report
    await intake(store, "A2", phone="13800000002")
    await store.send_begin("A2", 0, 3600, 3600)
    await store.part_submitted(
        "A2", 1, 1, message_id_key="n2", message_id="n2", resent=True, **common
    )
    await store.part_submitted("A2", 1, 1, message_id_key="n1", message_id="n1", **common)
    assert resent(await store.events("A2")) == [{"part": 1, "reason": "sent_before_without_answer"}]
