"""The callback functions of the Redis library (gateway/store/lua/callbacks.lua) against a real
redis-server: routing to unit queues, priority then age, one result per attempt,
dispositions and second callbacks, each with its events."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

import pytest

from gateway.dialer.store import CallbackStore
from gateway.store import keys
from gateway.store.events import Event
from gateway.store.surveys import Store

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def cb(store: Store) -> CallbackStore:
    return CallbackStore(store)


async def unsatisfied(cb: CallbackStore, sid: str, unit: str = "330602510000") -> None:
    phone = f"1380000{abs(hash(sid)) % 10000:04d}"
    await cb.store.intake(
        sid, phone, {"unit_code": unit}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )
    outcome, _ = await cb.store.reply(sid, {"text": "3"}, "unsatisfied", False, phone)
    assert outcome == "callback_pending"


async def types(cb: CallbackStore, sid: str) -> list[str]:
    return [e.type for e in await cb.store.events(sid)]


async def test_routing_by_longest_unit_prefix_and_unroutable_reported_once(
    cb: CallbackStore,
) -> None:
    await unsatisfied(cb, "S1", unit="330602510000")  # a 所队 of county 330602
    await unsatisfied(cb, "S2", unit="440100")  # no queue for it
    assert await cb.promote(("3306", "330602"), "") == 1
    assert await cb.redis.zrange(keys.CB_READY.format(queue="unit:330602"), 0, -1) == ["S1"]
    assert "callback.unroutable" in await types(cb, "S2")
    assert await cb.redis.zscore(keys.CB_WAIT, "S2") is not None  # parked, not dropped
    await cb.redis.zadd(keys.CB_WAIT, {"S2": 0})
    await cb.promote(("330602",), "")
    assert (await types(cb, "S2")).count("callback.unroutable") == 1
    await cb.redis.zadd(keys.CB_WAIT, {"S2": 0})
    assert await cb.promote(("330602", "9"), "9") == 1  # the default unit takes it
    assert await cb.redis.zrange(keys.CB_READY.format(queue="unit:9"), 0, -1) == ["S2"]


async def test_claims_take_priority_first_then_the_oldest(cb: CallbackStore) -> None:
    for sid in ("A", "B", "C"):
        await unsatisfied(cb, sid)
        await asyncio.sleep(0.01)
    await cb.redis.hset(keys.SURVEY.format(survey_id="C"), "cb_priority", 8)
    await cb.promote(("330602",), "")
    claims = await cb.claim("unit:330602", ["cb-1", "cb-2"], "owner-1")
    assert [(c.survey_id, c.callback_id, c.attempt) for c in claims] == [
        ("C", "cb-1", 1),
        ("A", "cb-2", 1),
    ]
    assert (await types(cb, "A"))[-1] == "survey.calling"
    assert set(await cb.active()) == {"cb-1", "cb-2"}
    (last,) = await cb.claim("unit:330602", ["cb-3", "cb-4"], "owner-1")
    assert last.survey_id == "B" and last.callback_id == "cb-3"  # one left: one id used


async def test_one_result_per_attempt_then_retry_and_unreachable(cb: CallbackStore) -> None:
    await unsatisfied(cb, "S1")
    await cb.promote(("330602",), "")
    (claim,) = await cb.claim("unit:330602", ["cb-1"], "o")
    payload = {"callback_id": "cb-1", "outcome": "busy"}
    status = await cb.result(claim, "callback_pending", payload, {}, retry_at=0.0)
    assert status == "stored"
    assert await cb.result(claim, "callback_pending", payload, {}, retry_at=0.0) == "duplicate"
    assert (await types(cb, "S1"))[-3:] == [
        "survey.calling",
        "callback.attempt",
        "survey.callback_pending",
    ]
    await cb.promote(("330602",), "")
    (again,) = await cb.claim("unit:330602", ["cb-2"], "o")
    assert again.attempt == 2
    await cb.result(again, "unreachable", {"outcome": "no_answer"}, {"attempts": 2})
    assert (await types(cb, "S1"))[-1] == "survey.unreachable"
    assert await cb.active() == {}


async def test_an_attempt_never_placed_does_not_count(cb: CallbackStore) -> None:
    await unsatisfied(cb, "S1")
    await cb.promote(("330602",), "")
    (claim,) = await cb.claim("unit:330602", ["cb-1"], "o")
    await cb.result(claim, "callback_pending", {"outcome": "failed"}, {}, retry_at=0, uncount=True)
    await cb.promote(("330602",), "")
    (again,) = await cb.claim("unit:330602", ["cb-2"], "o")
    assert again.attempt == 1


async def test_disposition_and_recheck(cb: CallbackStore) -> None:
    await unsatisfied(cb, "S1")
    await cb.promote(("330602",), "")
    (claim,) = await cb.claim("unit:330602", ["cb-1"], "o")
    assert (await cb.disposition("cb-1", {"upheld": True}))[0] == "state"  # still calling
    assert (await cb.recheck("S1", {}, "agent", 7)) == ("state", "calling")
    await cb.result(claim, "called", {"outcome": "connected"}, {})
    assert await cb.disposition("cb-9", {"upheld": True}) == ("unknown", "", "")
    assert await cb.disposition("cb-1", {"upheld": True}) == ("stored", "S1", "closed")
    assert (await cb.disposition("cb-1", {"upheld": False}))[0] == "exists"
    assert (await types(cb, "S1"))[-2:] == ["callback.disposition", "survey.closed"]

    assert await cb.recheck("S1", {"kind": "ivr"}, "ivr", 7) == ("stored", "recheck")
    await cb.promote(("330602",), "")
    (ivr,) = await cb.claim("ivr", ["cb-2"], "o")
    assert ivr.kind == "ivr" and ivr.attempt == 1
    assert (await cb.disposition("cb-1", {"upheld": True}))[0] == "exists"  # idempotent
    await cb.result(
        ivr, "closed", {"outcome": "ivr_rated"}, {"reason": "ivr_rating"}, rating="satisfied"
    )
    assert (await types(cb, "S1"))[-5:] == [
        "survey.recheck",
        "survey.calling",
        "callback.attempt",
        "survey.called",
        "survey.closed",
    ]
    assert await cb.recheck("nope", {}, "agent", 7) == ("unknown", "")


async def test_one_dialer_holds_the_lease_of_an_asterisk(cb: CallbackStore) -> None:
    assert await cb.lease("pbx:5038", "a", 15)
    assert not await cb.lease("pbx:5038", "b", 15)
    assert await cb.lease("pbx:5038", "a", 15)  # kept by refreshing
    assert await cb.lease("other:5038", "b", 15)  # per Asterisk
    await cb.release_lease("pbx:5038", "b")  # not b's to give back
    assert not await cb.lease("pbx:5038", "b", 15)
    await cb.release_lease("pbx:5038", "a")
    assert await cb.lease("pbx:5038", "b", 15)


async def test_only_the_agent_who_took_the_call_gives_its_disposition(cb: CallbackStore) -> None:
    await unsatisfied(cb, "S1")
    await cb.promote(("330602",), "")
    (claim,) = await cb.claim("unit:330602", ["cb-1"], "o")
    attempt = {"callback_id": "cb-1", "outcome": "connected", "agent": "agent1"}
    await cb.result(claim, "called", attempt, {})
    assert await cb.disposition("cb-1", {"upheld": True, "agent": "agent2"}) == (
        "agent",
        "S1",
        "agent1",
    )
    assert (await types(cb, "S1"))[-1] == "survey.called"  # nothing stored
    assert await cb.disposition("cb-1", {"upheld": True, "agent": "agent1"}) == (
        "stored",
        "S1",
        "closed",
    )


async def test_agent_states_are_stored_once_per_change_and_go_on_the_feed(
    cb: CallbackStore,
) -> None:
    assert await cb.agent_state("agent1", "free", {"units": ["330602"]}) == 1
    assert await cb.agent_state("agent1", "free", {"units": ["330602"]}) == 0  # no change
    assert await cb.agent_state("agent2", "logged_out", {}) == 2
    assert await cb.agent_state("agent1", "paused", {"units": ["330602"], "reason": "desk"}) == 3
    states = await cb.agent_states()
    assert states["agent1"]["state"] == "paused" and states["agent1"]["from"] == "free"
    assert states["agent1"]["reason"] == "desk" and states["agent2"]["from"] is None
    entries = await cb.redis.xrange(keys.EVENTS)
    events = [Event.from_json(fields["event"]) for _id, fields in entries]
    assert [(e.id, e.type, e.survey_id, e.seq) for e in events] == [
        ("agent:1", "agent.state", "", 1),
        ("agent:2", "agent.state", "", 2),
        ("agent:3", "agent.state", "", 3),
    ]
    assert events[2].payload == {
        "agent": "agent1",
        "state": "paused",
        "from": "free",
        "since": events[2].time,
        "units": ["330602"],
        "reason": "desk",
    }
    assert all(fields["sid"] == "" for _id, fields in entries)
    # on a call, then on the call of one of our callbacks: a change; the same again: none
    assert await cb.agent_state("agent1", "on_call", {}) == 4
    call = {"callback_id": "cb-1", "survey_id": "S1"}
    assert await cb.agent_state("agent1", "on_call", call) == 5
    assert await cb.agent_state("agent1", "on_call", call) == 0
    assert (await cb.agent_states())["agent1"]["from"] == "on_call"
