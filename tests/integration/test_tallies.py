"""Per-unit, per-day counters kept by the Lua functions that move the states
(gateway/store/tallies.py), against a real redis-server: they match the events on the
feed, add up over a unit's subtree, follow a revised rating, and are on /metrics as
labelled series."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest
import redis.asyncio as aioredis

from gateway.dialer.store import CallbackStore
from gateway.metrics import Exposition
from gateway.store import keys, tallies
from gateway.store.surveys import Store
from tests.integration.api_harness import api_client

pytestmark = pytest.mark.integration

COUNTY = "330602"
STATION = "330602510000"
OTHER = "330603"


async def intake(store: Store, sid: str, unit: str, phone: str) -> None:
    r = await store.intake(
        sid, phone, {"unit_code": unit}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )
    assert r.status == "created"


def reply(rating: str, reasons: list[str] = [], text: str = "3") -> dict[str, object]:  # noqa: B006
    return {"text": text, "understanding": {"rating": rating, "reasons": reasons}}


async def feed_counts(redis: aioredis.Redis) -> dict[str, Counter[str]]:
    """unit -> Counter of event types, read from the events stream and the surveys."""
    out: dict[str, Counter[str]] = {}
    for _id, fields in await redis.xrange(keys.EVENTS):
        ev = json.loads(fields["event"])
        unit = await redis.hget(keys.SURVEY.format(survey_id=ev["survey_id"]), "unit_code")
        out.setdefault(str(unit), Counter())[ev["type"]] += 1
    return out


def today(store: Store) -> str:
    return datetime.now(store.tz).date().isoformat()


async def a_day(store: Store) -> None:
    """Four surveys in three units: satisfied, unsatisfied and called back (connected,
    disposed with a reason), opted out, and one without a reply."""
    cb = CallbackStore(store)
    await intake(store, "S1", STATION, "13800000001")
    await intake(store, "S2", STATION, "13800000002")
    await intake(store, "S3", COUNTY, "13800000003")
    await intake(store, "S4", OTHER, "13800000004")
    assert (
        await store.reply("S1", reply("satisfied", text="1"), "satisfied", False, "13800000001")
    )[0] == "closed"
    out, _ = await store.reply(
        "S2",
        reply("unsatisfied", ["slow_response", "attitude"]),
        "unsatisfied",
        False,
        "13800000002",
    )
    assert out == "callback_pending"
    assert (await store.reply("S3", reply("unknown", text="TD"), "unknown", True, "13800000003"))[
        0
    ] == "closed"
    await cb.promote((COUNTY,), "")
    (claim,) = await cb.claim("unit:" + COUNTY, ["cb-0000000000000001"], "o")
    await cb.result(claim, "called", {"outcome": "connected", "agent": "agent1"}, {})
    status, _sid, _state = await cb.disposition(
        "cb-0000000000000001", {"upheld": True, "reasons": ["slow_response"], "agent": "agent1"}
    )
    assert status == "stored"


async def test_the_counters_match_the_feed(store: Store) -> None:
    await a_day(store)
    day = today(store)
    counts = await tallies.day_counts(store.redis, [STATION, COUNTY, OTHER], day)
    feed = await feed_counts(store.redis)
    for unit in (STATION, COUNTY, OTHER):
        c, events = counts[unit], feed.get(unit, Counter())
        assert c["surveys"] == events["survey.accepted"]
        for etype, n in events.items():
            if etype.startswith("survey.") and etype != "survey.accepted":
                assert c["state:" + etype[7:]] == n, (unit, etype)
        assert c.get("optout", 0) == events["citizen.opted_out"]
        assert c.get("callback:connected", 0) == events["callback.attempt"]
    s = counts[STATION]
    assert s["rating:satisfied"] == 1 and s["rating:unsatisfied"] == 1
    assert s["reason:slow_response"] == 1 and s["reason:attitude"] == 1
    assert s["dreason:slow_response"] == 1 and s["callback:connected"] == 1
    assert s["state:closed"] == 2
    hour = datetime.now(store.tz).strftime("%H")
    assert s["hour:" + hour] == 2 and s["rhour:" + hour] == 2
    assert counts[COUNTY]["optout"] == 1


async def test_a_subtree_adds_its_units_up(store: Store) -> None:
    await a_day(store)
    every = await tallies.units(store.redis)
    assert every == sorted([STATION, COUNTY, OTHER])
    counts = await tallies.day_counts(store.redis, every, today(store))
    county = tallies.funnel(
        tallies.add(c for u, c in counts.items() if tallies.in_subtree(u, COUNTY))
    )
    assert (county.surveys, county.replied, county.closed, county.optouts) == (3, 3, 3, 1)
    assert county.callbacks_connected == 1 and county.connected_pct == 100.0
    assert county.rating_pct("satisfied") == 50.0
    assert tallies.ranked(counts[STATION]) == [("attitude", 1), ("slow_response", 1)]
    city = tallies.funnel(
        tallies.add(c for u, c in counts.items() if tallies.in_subtree(u, "3306"))
    )
    assert city.surveys == 4
    other_day = await tallies.day_counts(store.redis, every, "2001-01-01")
    assert tallies.funnel(other_day[STATION]).surveys == 0


async def test_a_revised_rating_moves_the_count_of_its_day(store: Store) -> None:
    await intake(store, "R1", STATION, "13800000009")
    await store.reply("R1", reply("satisfied", text="1"), "satisfied", False, "13800000009")
    await store.redis.zadd(keys.REPLY_DUE, {"R1": 4e9})  # the reply window is open
    out, _ = await store.reply("R1", reply("unsatisfied"), "unsatisfied", False, "13800000009")
    assert out == "revised:callback_pending"
    (c,) = (await tallies.day_counts(store.redis, [STATION], today(store))).values()
    assert c["rating:satisfied"] == 0 and c["rating:unsatisfied"] == 1
    total = (await tallies.totals(store.redis))[STATION]
    assert total["reply:satisfied"] == 1 and total["reply:unsatisfied"] == 1  # only grows


async def test_prometheus_series_have_labels_and_types(store: Store) -> None:
    await a_day(store)
    exp = Exposition()
    tallies.write_tallies(exp, await tallies.totals(store.redis))
    lines = exp.render().splitlines()
    assert "# TYPE minyi_surveys_total counter" in lines
    assert "# TYPE minyi_replies_total counter" in lines
    assert "# TYPE minyi_callbacks_total counter" in lines
    assert f'minyi_surveys_total{{unit="{STATION}",state="accepted"}} 2' in lines
    assert f'minyi_surveys_total{{unit="{STATION}",state="closed"}} 2' in lines
    assert f'minyi_replies_total{{unit="{STATION}",rating="unsatisfied"}} 1' in lines
    assert f'minyi_callbacks_total{{unit="{STATION}",outcome="connected"}} 1' in lines


async def test_metrics_serves_the_labelled_series(store: Store) -> None:
    await a_day(store)
    async with api_client(store) as client:
        text = await (await client.get("/metrics")).text()
    lines = text.splitlines()
    assert "# TYPE minyi_surveys_total counter" in lines
    assert f'minyi_callbacks_total{{unit="{STATION}",outcome="connected"}} 1' in lines
    assert f'minyi_surveys_total{{unit="{OTHER}",state="accepted"}} 1' in lines
