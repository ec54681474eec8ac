"""A citizen corrects a rating: 「1」, a minute later 「说错了，是3，不满意」. Inside the
reply window, before any callback was dialled, the later reply revises the rating
(survey.revised): now unsatisfied, the survey goes to the callback queue; now
satisfied, the callback waiting for its first call is cancelled (callback.cancelled)."""

from __future__ import annotations

import pytest

from devstack.localstack import free_port
from gateway.dialer.store import CallbackStore
from gateway.store import keys
from gateway.store.surveys import Store
from tests.integration.sms_harness import SOURCE_ADDR, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
PHONE = "13800138000"


async def submitted(store: Store, sid: str, phone: str = PHONE, window_s: float = 3600) -> None:
    await store.intake(
        sid, phone, {"template": "default", "unit_code": "330602"}, cap_s=0, defer_at=None,
        ttl_s=0, accepted_payload={},
    )  # fmt: skip
    await store.send_begin(sid, 0, window_s, window_s)
    await store.part_submitted(
        sid, 1, 1, smsc="d", message_id_key=sid, message_id=sid, bind="b",
        msgid_ttl_s=60, dlr_timeout_s=60, reply_window_s=window_s,
    )  # fmt: skip


async def reply(store: Store, text: str, rating: str, phone: str = PHONE) -> tuple[str, str]:
    sid, _ = await store.find_open_survey(phone, "", 3600)
    assert sid is not None
    return await store.reply(sid, {"text": text}, rating, False, phone)


async def types(store: Store, sid: str) -> list[str]:
    return [e.type for e in await store.events(sid)]


async def test_satisfied_then_unsatisfied_goes_to_the_callback_queue(store: Store) -> None:
    await submitted(store, "S1")
    assert await reply(store, "1", "satisfied") == ("closed", "submitted")
    assert await reply(store, "说错了，是3，不满意", "unsatisfied") == (
        "revised:callback_pending",
        "closed",
    )
    events = await store.events("S1")
    assert [e.type for e in events][-3:] == [
        "survey.closed",
        "survey.revised",
        "survey.callback_pending",
    ]
    revised = events[-2].payload
    assert (revised["previous_rating"], revised["rating"]) == ("satisfied", "unsatisfied")
    assert revised["reply"]["text"] == "说错了，是3，不满意"
    assert events[-1].payload == {"from": "closed", "reason": "revised_unsatisfied"}
    survey = await store.get_survey("S1")
    assert survey is not None and survey["rating"] == "unsatisfied" and survey["revisions"] == "1"
    assert await store.redis.zscore(keys.CB_WAIT, "S1") is not None  # queued for a call


async def test_unsatisfied_then_satisfied_before_the_call_cancels_it(store: Store) -> None:
    await submitted(store, "S1")
    assert (await reply(store, "3 太慢", "unsatisfied"))[0] == "callback_pending"
    # promoted to its unit's queue, not yet dialled
    callbacks = CallbackStore(store)
    assert await callbacks.promote(("330602",), "") == 1
    assert await store.redis.zcard(keys.CB_READY.format(queue="unit:330602")) == 1
    assert await reply(store, "刚才按错了，其实挺满意的", "satisfied") == (
        "revised:closed",
        "callback_pending",
    )
    assert (await types(store, "S1"))[-3:] == [
        "survey.revised",
        "callback.cancelled",
        "survey.closed",
    ]
    closed = (await store.events("S1"))[-1].payload
    assert closed == {"from": "callback_pending", "reason": "satisfied", "revised": True}
    assert await store.redis.zcard(keys.CB_READY.format(queue="unit:330602")) == 0
    assert await store.redis.zscore(keys.CB_WAIT, "S1") is None


async def test_a_callback_already_dialled_is_not_cancelled_by_a_text(store: Store) -> None:
    await submitted(store, "S1")
    await reply(store, "3", "unsatisfied")
    await store.redis.hset(keys.SURVEY.format(survey_id="S1"), "cb_attempts", 1)
    assert (await reply(store, "1", "satisfied"))[0] == "late"
    assert "survey.revised" not in await types(store, "S1")


async def test_between_satisfied_and_basically_satisfied_only_the_rating_changes(
    store: Store,
) -> None:
    await submitted(store, "S1")
    await reply(store, "1", "satisfied")
    assert await reply(store, "2", "basically_satisfied") == ("revised:closed", "closed")
    assert (await types(store, "S1"))[-2:] == ["survey.closed", "survey.revised"]
    assert (await store.get_survey("S1") or {})["state"] == "closed"


async def test_no_revision_for_the_same_rating_an_unknown_one_or_after_the_window(
    store: Store,
) -> None:
    await submitted(store, "S1")
    await reply(store, "1", "satisfied")
    assert (await reply(store, "1", "satisfied"))[0] == "late"  # the same again
    assert (await reply(store, "？", "unknown"))[0] == "late"
    await store.redis.zadd(keys.REPLY_DUE, {"S1": 1.0})  # the deadline has passed
    sid = "S1"
    assert (await store.reply(sid, {"text": "3"}, "unsatisfied", False, PHONE))[0] == "late"
    assert "survey.revised" not in await types(store, "S1")


async def test_a_correction_over_sms_end_to_end(clean_redis: RedisServer) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        await loop.post(survey(1, "13800000001"))
        await eventually(lambda: "survey.delivered" in loop.types("S1"))
        loop.smsc.inject_mo("13800000001", SOURCE_ADDR, "1")
        await eventually(lambda: "survey.closed" in loop.types("S1"))
        loop.smsc.inject_mo("13800000001", SOURCE_ADDR, "说错了，是3，不满意")
        await eventually(lambda: "survey.callback_pending" in loop.types("S1"))
        assert loop.types("S1")[-3:] == [
            "survey.closed",
            "survey.revised",
            "survey.callback_pending",
        ]
        assert not loop.receiver.events.get("")  # nothing unmatched
        # and back again before the call: the callback is cancelled
        loop.smsc.inject_mo("13800000001", SOURCE_ADDR, "刚才按错了，其实挺满意的")
        # one script emits both, but the feed may deliver them in two posts: wait for both
        await eventually(lambda: "survey.closed" in loop.types("S1")[-1:])
        assert loop.types("S1")[-2:] == ["callback.cancelled", "survey.closed"]
        status, body = await loop.get("S1")
        assert status == 200 and body["state"] == "closed"
        assert body["survey"]["rating"] == "satisfied"
