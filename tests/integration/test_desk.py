"""The desk and the board over HTTP against a real redis-server: logins on the feed,
sessions bound to their login, CSRF, the pop over SSE with the full number for the
agent of the call only, the disposition as the logged-in agent (409 for another), and
the board's figures and CSV from the per-unit counters, with masked numbers only."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import aiohttp
import pytest

from devstack.localstack import free_port
from gateway.config import parse_settings
from gateway.desk.auth import LOGIN_FAILS_MAX, SESSION_COOKIE, Sessions
from gateway.dialer.store import CallbackStore
from gateway.service import Service
from gateway.store import keys
from gateway.store.surveys import Store
from tests.integration.desk_harness import (
    PINS,
    Client,
    desk_client,
    desk_settings,
    desk_table,
    hidden,
    login,
)
from tests.integration.sms_harness import config
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PHONE = "13800138000"
CID = "cb-00000000000000a1"


async def feed(store: Store) -> list[dict[str, Any]]:
    return [json.loads(f["event"]) for _id, f in await store.redis.xrange(keys.EVENTS)]


async def a_call(store: Store, sid: str = "S1", unit: str = "330602", cid: str = CID) -> None:
    """An unsatisfied citizen, claimed and dialled (state calling)."""
    await store.intake(
        sid,
        PHONE,
        {
            "unit_code": unit,
            "service_type": "110",
            "officer_id": "PC0421",
            "occurred_at": "2026-12-01T09:30:00+08:00",
            "template": "default",
        },
        cap_s=0,
        defer_at=None,
        ttl_s=0,
        accepted_payload={},
    )
    reply = {
        "text": "3 出警太慢",
        "understanding": {
            "rating": "unsatisfied",
            "reasons": ["slow_response"],
            "explanation": ["digit 3 → unsatisfied (scheme)"],
            "cues": ["digit", "complaint"],
        },
    }
    await store.reply(sid, reply, "unsatisfied", False, PHONE)
    cb = CallbackStore(store)
    await cb.promote((unit,), "")
    (claim,) = await cb.claim("unit:" + unit, [cid], "o")
    assert claim.callback_id == cid


async def next_card(stream: Any) -> str:
    """The next ``card`` event of an SSE response: its data lines joined."""
    event, data = "", []
    while True:
        line = (await stream.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and event == "card":
            return "\n".join(data)
        elif line == "":
            event, data = "", []


async def test_logins_are_on_the_feed_and_the_pin_nowhere(store: Store) -> None:
    async with desk_client(store) as client:
        r = await login(client, "agent1", "0000")
        assert r.status == 401 and "工号或密码错误" in await r.text()
        r = await login(client, "agent1")
        assert r.status == 303 and r.headers["Location"] == "/desk/"
        cookie = r.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        r = await login(client, "sup1")
        assert r.headers["Location"] == "/board/"
        r = await login(client, "x:y\n13800138000", "pin")  # no id looks like this
        assert r.status == 401
    events = await feed(store)
    assert [(e["type"], e["payload"]["user"]) for e in events] == [
        ("desk.login_refused", "agent1"),
        ("desk.login", "agent1"),
        ("desk.login", "sup1"),
        ("desk.login_refused", ""),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4] and {e["survey_id"] for e in events} == {""}
    assert "13800138000" not in json.dumps(events)
    raw = json.dumps(events) + str(await store.redis.keys("*"))
    assert all(pin not in raw for pin in PINS.values())


async def test_a_session_ends_with_its_pin_its_maximum_age_and_the_logout(store: Store) -> None:
    async with desk_client(store) as client:
        assert (await login(client, "agent1")).status == 303
        page = await client.get("/desk/", allow_redirects=False)
        assert page.status == 200
        csrf = hidden(await page.text(), "csrf")
        # a supervisor's page is not an agent's
        r = await client.get("/board/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/desk/"
        r = await client.post("/desk/logout", data={"csrf": csrf}, allow_redirects=False)
        assert r.status == 303
        r = await client.get("/desk/", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/desk/login"
        assert (await feed(store))[-1]["type"] == "desk.logout"

    settings = desk_settings()
    sessions = Sessions(store.redis, settings.api.desk)
    user = settings.api.desk.user("agent2")
    assert user is not None
    s = await sessions.open(user)
    assert await sessions.get(s.cookie) is not None
    # the same user with another PIN: the session opened with the old one ends
    other = desk_settings(
        agents=[{"id": "agent2", "pin_hash": settings.api.desk.users[0].pin_hash}]
    )
    assert await Sessions(store.redis, other.api.desk).get(s.cookie) is None
    s = await sessions.open(user)
    key = (await store.redis.keys(keys.DESK_SESSION.format(digest="*")))[0]
    await store.redis.hset(key, "login_at", "1000")  # logged in long ago
    assert await sessions.get(s.cookie) is None
    assert await store.redis.ttl(key) == -2  # and gone


async def test_form_posts_need_the_sessions_csrf_token_and_our_origin(store: Store) -> None:
    async with desk_client(store) as client:
        await login(client, "agent1")
        csrf = hidden(await (await client.get("/desk/")).text(), "csrf")
        r = await client.post("/desk/agent/pause", data={})
        assert r.status == 403
        r = await client.post("/desk/agent/pause", data={"csrf": "x" + csrf})
        assert r.status == 403
        r = await client.post(
            "/desk/agent/pause", data={"csrf": csrf}, headers={"Origin": "http://evil.example"}
        )
        assert r.status == 403
        r = await client.post("/desk/agent/pause", data={"csrf": csrf})
        assert r.status == 503  # through the form, but no PBX is configured here
        # the login form's own token (double submit)
        r = await client.post(
            "/desk/login", data={"user": "agent1", "pin": PINS["agent1"], "csrf": "x"}
        )
        assert r.status == 403


async def test_the_pop_shows_the_full_number_to_its_agent_only(store: Store) -> None:
    await a_call(store)
    async with desk_client(store) as one, desk_client(store) as two:
        await login(one, "agent1")
        await login(two, "agent2")
        stream = await one.get("/desk/events")
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        await stream.content.readline()  # the stream is open: the hub listens
        cb = CallbackStore(store)
        assert await cb.desk_call("pop", CID, "agent1") == "S1"
        html = await asyncio.wait_for(next_card(stream), 5)
        assert PHONE in html and 'data-callback="' + CID in html
        for shown in ("110接处警", "PC0421", "12月1日 09:30", "出警太慢", "出警慢", "不满意"):
            assert shown in html, shown
        assert "digit 3 → unsatisfied (scheme)" in html  # what drove the rating
        assert 'id="submit-disposition" disabled' in html  # the call is not over
        # agent2 has no call on the desk; and no page shows the number in full to them
        assert PHONE not in await (await two.get("/desk/")).text()
        # the call ends: the card again, its form open, the wrap-up counting down
        (claim,) = [c for c in [await _claim_of(store, "S1")]]
        await cb.result(claim, "called", {"callback_id": CID, "outcome": "connected"}, {})
        await cb.desk_call("ended", CID, "agent1")
        html = await asyncio.wait_for(next_card(stream), 5)
        assert 'id="wrapup"' in html and 'id="submit-disposition">' in html
        stream.close()


async def _claim_of(store: Store, sid: str) -> Any:
    from gateway.dialer.store import claim_from_active

    ((cid, record),) = (await CallbackStore(store).active()).items()
    assert record["sid"] == sid
    return claim_from_active(cid, record)


async def _dispose(client: Client, **form: Any) -> Any:
    csrf = hidden(await (await client.get("/desk/")).text(), "csrf")
    data = [("csrf", csrf), ("callback_id", CID), *form.items()]
    return await client.post("/desk/disposition", data=data, allow_redirects=False)


async def test_the_disposition_is_the_logged_in_agents_and_only_theirs(store: Store) -> None:
    await a_call(store)
    cb = CallbackStore(store)
    await cb.desk_call("pop", CID, "agent1")
    attempt = {"outcome": "connected", "agent": "agent1"}  # as the dialer stores it
    await cb.result(await _claim_of(store, "S1"), "called", attempt, {})
    async with desk_client(store) as one, desk_client(store) as two:
        await login(one, "agent1")
        await login(two, "agent2")
        r = await _dispose(two, upheld="1", reasons="slow_response")
        assert r.status == 409 and "不是您接听的" in await r.text()
        r = await _dispose(one, upheld="1", reasons="no_such_reason")
        assert r.status == 422
        r = await _dispose(one, upheld="1", reasons="slow_response", note="已核实，出警延误")
        assert r.status == 303 and r.headers["Location"] == "/desk/?m=done"
        page = await (await one.get("/desk/")).text()
        assert "处理结果已提交" in page
    types = [e["type"] for e in await feed(store) if e["survey_id"] == "S1"]
    assert types[-2:] == ["callback.disposition", "survey.closed"]
    (disposition,) = [e for e in await feed(store) if e["type"] == "callback.disposition"]
    assert disposition["payload"]["agent"] == "agent1"
    assert disposition["payload"]["reasons"] == ["slow_response"]
    assert disposition["payload"]["upheld"] is True


async def test_the_board_shows_the_counters_of_its_supervisors_units(store: Store) -> None:
    await a_call(store, "S1", "330602", CID)
    await a_call(store, "S2", "330603", "cb-00000000000000b2")
    await a_call(store, "S3", "330602510000", "cb-00000000000000c3")  # a station of 330602
    async with desk_client(store) as city, desk_client(store) as county:
        await login(city, "sup1")
        await login(county, "sup2")
        page = await (await city.get("/board/")).text()
        # the city, the county with a station below it; the other county has none
        assert "3306 合计" in page and "330602 合计" in page and "330603 合计" not in page
        table = page[page.index('id="funnel"') :]
        assert table.index("3306 合计") < table.index("330602 合计") < table.index("330602510000")
        assert '<b data-reason="slow_response">3</b>' in page
        assert '<ol class="reasons" id="verified"><li class="muted">无</li>' in page
        assert PHONE not in page and "138****8000" in page  # calls in progress, masked
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart funnel"' in page
        assert 'data-stage="调查短信" data-n="3"' in page
        mine = await (await county.get("/board/")).text()
        assert "330602" not in mine and "330603 合计" in mine
        r = await city.get("/board/export.csv")
        assert r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        total = next(r for r in rows if r["单位代码"] == "3306")
        assert total["调查数"] == "3" and total["回复数"] == "3" and total["不满意"] == "3"
        assert total["主要原因"] == "出警慢:3"
        county_total = next(r for r in rows if r["单位代码"] == "330602" and r["范围"] == "合计")
        assert county_total["调查数"] == "2"
        assert (await city.get("/board/?day=nonsense")).status == 400
        old = await (await city.get("/board/?day=2001-01-01")).text()
        assert 'data-stage="调查短信" data-n="0"' in old


async def test_too_many_wrong_pins_lock_the_id_for_a_while(store: Store) -> None:
    async with desk_client(store) as client:
        for _ in range(LOGIN_FAILS_MAX):
            assert (await login(client, "agent2", "wrong")).status == 401
        r = await login(client, "agent2")  # the right PIN, too late
        assert r.status == 401 and "错误次数过多" in await r.text()
        assert (await login(client, "agent1")).status == 303  # another id is not locked
        await store.redis.delete(keys.DESK_LOGIN_FAILS.format(user="agent2"))  # window over
        assert (await login(client, "agent2")).status == 303
    refused = [e["payload"] for e in await feed(store) if e["type"] == "desk.login_refused"]
    assert [p["reason"] for p in refused] == ["wrong_credentials"] * LOGIN_FAILS_MAX + ["locked"]


async def test_an_open_desk_stream_does_not_hold_the_drain(clean_redis: Any) -> None:
    """The service ends the desks' event streams when it drains: an agent's open page
    would otherwise hold the API's close for its whole shutdown timeout (60 s)."""
    cfg = config(clean_redis.url, free_port(), "http://127.0.0.1:9/", free_port())
    cfg["webhooks"] = {}
    cfg["api"]["desk"] = desk_table()
    service = Service(parse_settings(cfg), ("api",), instance="desk-drain")
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.ready.wait(), 20)
    base = f"http://127.0.0.1:{service.api_port}"
    # unsafe: the cookie jar keeps cookies of an IP address (the loopback) too
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get(base + "/desk/login")).text()
        form = {"user": "agent1", "pin": PINS["agent1"], "csrf": hidden(page, "csrf")}
        await http.post(base + "/desk/login", data=form)
        stream = await http.get(base + "/desk/events")
        assert stream.headers["Content-Type"] == "text/event-stream"
        await stream.content.readline()
        assert service.desk is not None
        desk = service.desk
        await eventually(lambda: desk.hub.subscribed.is_set(), "the desk hub subscribed")
        service.request_stop()
        # the stream ends (not cut by the 60 s shutdown timeout) and the process with it
        assert await asyncio.wait_for(task, 20) == 0
        assert await stream.content.read() is not None


async def test_agents_states_are_the_dialers_on_the_desk_and_the_board(store: Store) -> None:
    cb = CallbackStore(store)
    await cb.agent_state("agent3", "paused", {"units": ["330603"], "reason": "desk"})
    await cb.agent_state("agent1", "on_call", {"units": ["330602"]})
    await cb.agent_state("agent2", "logged_out", {"units": []})  # counts under its login's
    async with desk_client(store) as desk, desk_client(store) as board:
        await login(desk, "agent3")
        assert '<b id="agent-state">暂停</b>' in await (await desk.get("/desk/")).text()
        await login(board, "sup1")
        live = await (await board.get("/board/live")).text()
        assert '<td>agent3</td><td class="st">暂停</td>' in live
        assert '<td>agent1</td><td class="st">通话中</td>' in live
        assert '<td>agent2</td><td class="st">未签入</td>' in live
        await board.post(
            "/desk/logout", data={"csrf": hidden(await (await board.get("/board/")).text(), "csrf")}
        )
        await login(board, "sup2")  # the county 330603 only
        live = await (await board.get("/board/live")).text()
        assert "agent3" in live and "agent1" not in live and "agent2" not in live
