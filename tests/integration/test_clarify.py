"""Issue 11, item 4: a reply the reader cannot settle is resolved, not dropped — on real
servers (redis-server, the SMSC simulator over SMPP, the webhook receiver, the gateway).

One clarifying SMS from the config's template goes to the citizen, from the same sender
number; its answer is matched to the same survey; still no rating (an answer that is
not one, or none at all) sends the survey to the callback queue with reason `unclear`,
ranked below the unsatisfied. `survey.clarify_sent` and `survey.callback_pending` with
its reason are on the feed."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.localstack import free_port
from gateway.store import keys, library
from gateway.store.surveys import iso
from sms.understand import Rating, understand
from tests.integration.sms_harness import SOURCE_ADDR, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration

CLARIFY_TEXT = "抱歉没能看懂您的评价，请回复数字：1满意 2基本满意 3不满意"
# Replies the reader cannot settle, and one it can (checked first: if the reader learnt
# to read them, these tests would prove nothing and say so).
UNREADABLE = "在开会，晚点回"
STILL_UNREADABLE = "这个我得问问我爱人"


def _event(loop: Any, sid: str, etype: str) -> dict[str, Any]:
    return next(e for e in loop.receiver.events[sid] if e["type"] == etype)


def _texts_to(loop: Any, phone: str) -> list[str]:
    return [s.text for s in loop.smsc.submits if s.dest == phone]


def test_the_replies_used_here_are_ones_the_reader_asks_about() -> None:
    for text in (UNREADABLE, STILL_UNREADABLE):
        reading = understand(text)
        assert reading.rating is Rating.UNKNOWN and reading.clarify, (text, reading.explanation)
    assert not understand("好的").clarify  # an acknowledgement is not asked about


async def test_an_unreadable_reply_gets_one_clarifying_sms_and_its_answer_rates_the_survey(
    clean_redis: RedisServer,
) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        phone = "13800000041"
        assert (await loop.post(survey(41, phone)))[0] == 201
        await eventually(lambda: "survey.delivered" in loop.types("S41"))
        loop.smsc.inject_mo(phone, SOURCE_ADDR, UNREADABLE)
        await eventually(lambda: "survey.clarify_sent" in loop.types("S41"), "clarify sent")
        texts = _texts_to(loop, phone)
        assert len(texts) == 2 and texts[1] == "【平安绍兴】" + CLARIFY_TEXT
        sources = {s.source for s in loop.smsc.submits if s.dest == phone}
        assert len(sources) == 1  # the same sender number (and extension): the answer finds it
        sent = _event(loop, "S41", "survey.clarify_sent")
        assert sent["payload"]["parts"] == 1 and len(sent["payload"]["message_ids"]) == 1
        # The answer to the clarifying SMS rates the same survey.
        loop.smsc.inject_mo(phone, SOURCE_ADDR, "3")
        await eventually(lambda: "survey.callback_pending" in loop.types("S41"), "callback")
        assert loop.types("S41")[3:] == [
            "survey.delivered",
            "survey.replied",
            "survey.clarify_sent",
            "survey.replied",
            "survey.callback_pending",
        ]
        pending = _event(loop, "S41", "survey.callback_pending")
        assert pending["payload"]["reason"] == "unsatisfied_reply"
        assert len(_texts_to(loop, phone)) == 2  # asked once only
        assert not loop.receiver.events.get("")  # nothing unmatched


async def test_still_no_rating_goes_to_the_callback_queue_as_unclear_below_unsatisfied(
    clean_redis: RedisServer,
) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        store = loop.service.store
        assert store is not None
        phones = {"S42": "13800000042", "S43": "13800000043", "S44": "13800000044"}
        for sid, phone in phones.items():
            assert (await loop.post(survey(sid[1:], phone)))[0] == 201
        await eventually(lambda: all("survey.delivered" in loop.types(s) for s in phones))
        # S42 answers the clarifying SMS with no rating again; S43 never answers it;
        # S44 is plainly unsatisfied (and is never asked).
        loop.smsc.inject_mo(phones["S42"], SOURCE_ADDR, UNREADABLE)
        loop.smsc.inject_mo(phones["S43"], SOURCE_ADDR, UNREADABLE)
        await eventually(
            lambda: all("survey.clarify_sent" in loop.types(s) for s in ("S42", "S43")), "asked"
        )
        loop.smsc.inject_mo(phones["S42"], SOURCE_ADDR, STILL_UNREADABLE)
        await eventually(lambda: "survey.callback_pending" in loop.types("S42"), "S42 callback")
        assert _event(loop, "S42", "survey.callback_pending")["payload"]["reason"] == "unclear"
        # S43's window (reopened by the clarifying SMS) ends with no answer: the sweep.
        await store.redis.zadd(keys.REPLY_DUE, {"S43": 0})
        await eventually(lambda: "survey.callback_pending" in loop.types("S43"), "S43 callback")
        assert _event(loop, "S43", "survey.callback_pending")["payload"]["reason"] == "unclear"
        loop.smsc.inject_mo(phones["S44"], SOURCE_ADDR, "3")
        await eventually(lambda: "survey.callback_pending" in loop.types("S44"), "S44 callback")
        assert "survey.clarify_sent" not in loop.types("S44")
        # On one unit's agent queue the unsatisfied citizen comes first, though later.
        now = iso(await _server_time(store.redis), store.tz)
        await library.fcall(store.redis, "minyi_cb_promote", 100, now, "330602")
        ready = await store.redis.zrange(keys.CB_READY.format(queue="unit:330602"), 0, -1)
        assert ready == ["S44", "S42", "S43"]


async def test_an_acknowledgement_is_not_asked_about_and_callback_on_is_the_config(
    clean_redis: RedisServer,
) -> None:
    # callback_on without "unclear": no callback for a survey still unrated; a
    # basically satisfied citizen called back because the config asks for it.
    surveys = {"quiet_hours": {"enabled": False}, "callback_on": ["basically_satisfied"]}
    async with running_loop(clean_redis.url, free_port(), surveys=surveys) as loop:
        phones = {"S45": "13800000045", "S46": "13800000046", "S47": "13800000047"}
        for sid, phone in phones.items():
            assert (await loop.post(survey(sid[1:], phone)))[0] == 201
        await eventually(lambda: all("survey.delivered" in loop.types(s) for s in phones))
        loop.smsc.inject_mo(phones["S45"], SOURCE_ADDR, "好的")
        loop.smsc.inject_mo(phones["S46"], SOURCE_ADDR, UNREADABLE)
        loop.smsc.inject_mo(phones["S47"], SOURCE_ADDR, "2")
        await eventually(lambda: "survey.clarify_sent" in loop.types("S46"), "S46 asked")
        await eventually(lambda: "survey.callback_pending" in loop.types("S47"), "S47 callback")
        assert _event(loop, "S47", "survey.callback_pending")["payload"]["reason"] == (
            "basically_satisfied_reply"
        )
        loop.smsc.inject_mo(phones["S46"], SOURCE_ADDR, STILL_UNREADABLE)
        await eventually(lambda: loop.types("S46").count("survey.replied") == 2, "S46 answered")
        await eventually(lambda: "survey.replied" in loop.types("S45"), "S45 replied")
        assert "survey.clarify_sent" not in loop.types("S45")
        assert len(_texts_to(loop, phones["S45"])) == 1
        assert "survey.callback_pending" not in loop.types("S46")  # unclear is not listed
        status, body = await loop.get("S46")
        assert status == 200 and body["state"] == "replied"


async def _server_time(redis: Any) -> float:
    seconds, micros = await redis.time()
    return float(seconds) + micros / 1e6


async def test_a_refused_clarifying_sms_sends_the_survey_to_a_person(
    clean_redis: RedisServer,
) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        phone = "13800000048"
        assert (await loop.post(survey(48, phone)))[0] == 201
        await eventually(lambda: "survey.delivered" in loop.types("S48"))
        # The SMS center now refuses every message to this number for good.
        loop.smsc.set_behaviour(rejects=[{"pattern": f"^{phone}$"}])
        loop.smsc.inject_mo(phone, SOURCE_ADDR, UNREADABLE)
        await eventually(lambda: "survey.callback_pending" in loop.types("S48"), "callback")
        assert "sms.clarify_failed" in loop.types("S48")
        assert "survey.clarify_sent" not in loop.types("S48")
        assert _event(loop, "S48", "survey.callback_pending")["payload"]["reason"] == "unclear"
        store = loop.service.store
        assert store is not None
        record = await store.get_survey("S48")
        assert record is not None and record["clarify"] == "failed"
        assert "p1:err" not in record  # the survey's own part is untouched
