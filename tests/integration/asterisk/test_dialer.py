"""The callback dialer end to end on real servers: the gateway service (API, SMS,
webhooks, dialer) against redis-server, the SMSC simulator, the webhook receiver and the
provisioned Asterisk 22 making real SIP calls to the test outside world."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devstack.asterisk import AsteriskInfo, wav_rms
from devstack.localstack import SOURCE_ADDR, TOKEN, free_port
from gateway.service import Service
from tests.integration.sms_harness import Loop, running_loop, start_service, survey
from tests.servers import RedisServer
from tests.waiting import eventually

from .amitools import AmiClient as Observer
from .amitools import TcpProxy, hang_up_agent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PREFIX_EVENTS = ("survey.accepted", "survey.queued", "survey.submitted")


def dialer_config(info: AsteriskInfo, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "ami": {
            "host": info.host,
            "port": info.ami_port,
            "username": info.ami_username,
            "secret": info.ami_secret,
            "ping_interval_s": 1,
            "ping_timeout_s": 2,
        },
        "trunk": info.trunk,
        "units": ["330602", "330603"],
        "recordings_dir": str(info.recordings_dir),
        "calling_hours": {"start": "00:00", "end": "23:59:59"},
        "max_attempts": 3,
        "retry_spacing_minutes": [0.005],  # 0.3 s
        # The test citizens answer within 0.3 s; only "rings forever" waits this out.
        "ring_timeout_s": 2,
        "wrapup_s": 1,
    }
    cfg.update(over)
    return cfg


def _dialled(observer: Observer, number: str) -> list[Any]:
    """The citizen's phone ringing: channels the carrier side created for the number."""
    return [
        e
        for e in observer.events
        if e.get("Event") == "Newchannel"
        and e.get("Exten") == number
        and str(e.get("Channel", "")).startswith("PJSIP/world-in")
    ]


async def _post(loop: Loop, path: str, body: Any) -> tuple[int, Any]:
    async with loop.http.post(
        loop.api + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as r:
        return r.status, await r.json()


def _loop(redis: RedisServer, info: AsteriskInfo, **dialer: Any) -> Any:
    return running_loop(
        redis.url,
        free_port(),
        workers=["api", "sms", "webhooks", "dialer"],
        dialer=dialer_config(info, **dialer),
    )


async def _unsatisfied(loop: Loop, sid: str, phone: str, unit: str = "330602") -> None:
    status, body = await loop.post(survey(sid.lstrip("S"), phone, unit_code=unit))
    assert status == 201, body
    await eventually(lambda: "survey.submitted" in loop.types(sid))
    loop.smsc.inject_mo(phone, SOURCE_ADDR, "3 出警太慢，态度也不好")


def _attempts(loop: Loop, sid: str) -> list[dict[str, Any]]:
    return [
        e["payload"] for e in loop.receiver.events.get(sid, []) if e["type"] == "callback.attempt"
    ]


async def _survey(loop: Loop, sid: str) -> dict[str, str]:
    """The survey as stored in Redis (its state, and the queue its callback is on)."""
    assert loop.service.store is not None
    survey = await loop.service.store.get_survey(sid)
    assert survey is not None, sid
    return survey


async def _on_unit_queue(loop: Loop, sid: str) -> bool:
    return bool((await _survey(loop, sid)).get("cb_queue"))


async def _dialer_on_ami(loop: Loop) -> None:
    """Wait until the dialer is logged in to AMI and has read the queues."""
    dialer = loop.service.dialer
    assert dialer is not None
    await eventually(lambda: dialer.ami.connected, "the dialer on AMI")


async def _dialer_passed_over(loop: Loop, sid: str) -> None:
    """Wait until the dialer has decided about ``sid`` (posted once the dialer was on
    AMI): a tick put its callback on the unit's queue, and its pacing and dialling come
    next in that same tick. A second callback, posted only now, is put on its queue by
    a later tick, so once it is there the first tick is over. Ticks run one after the
    other: this is proof, not a guess at a duration."""
    await eventually(lambda: _on_unit_queue(loop, sid), f"{sid} on its unit's queue")
    # Another unit, and a number that does not exist: one short call, never retried.
    await _unsatisfied(loop, "S1", "13800000005", unit="330602")
    await eventually(lambda: _on_unit_queue(loop, "S1"), "a later callback on its queue")


async def test_unsatisfied_reply_is_called_back_to_a_free_agent_and_recorded(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    async with _loop(clean_redis, asterisk) as loop:
        await _unsatisfied(loop, "S101", "13800008101")
        await eventually(lambda: "survey.called" in loop.types("S101"), within_s=90)
        types = [t for t in loop.types("S101") if t not in ("survey.delivered", "sms.receipt")]
        assert types[-5:] == [
            "survey.replied",
            "survey.callback_pending",
            "survey.calling",
            "callback.attempt",
            "survey.called",
        ]
        (attempt,) = _attempts(loop, "S101")
        assert attempt["outcome"] == "connected"
        assert attempt["agent"] in ("agent1", "agent2")  # unit 330602's agents
        assert attempt["attempt"] == 1 and attempt["next"]["state"] == "called"
        recs = attempt["recordings"]
        for leg in ("mix", "citizen", "agent"):
            path = Path(recs[leg]["path"])
            assert path.parent == asterisk.recordings_dir
            assert path.name.endswith(".wav") and attempt["callback_id"] in path.name
            assert recs[leg]["duration_s"] > 2.0, recs[leg]
            assert wav_rms(path) > 0.01, f"{leg} leg is silent"
        assert loop.receiver.seqs("S101") == list(range(1, len(loop.receiver.seqs("S101")) + 1))
        async with loop.http.get(loop.api + "/healthz") as r:
            health = (await r.json())["dialer"]
        assert health["leading"] and health["ami_connected"] and health["originated"] == 1
        assert set(health["free_agents"]) == {"minyi-unit-330602", "minyi-unit-330603"}


async def test_busy_and_no_answer_are_retried_then_unreachable(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    async with _loop(clean_redis, asterisk, max_attempts=2) as loop:
        await _unsatisfied(loop, "S201", "13800000001")  # busy
        await _unsatisfied(loop, "S202", "13800000002")  # rings, never answered
        for sid in ("S201", "S202"):
            await eventually(lambda s=sid: "survey.unreachable" in loop.types(s), within_s=90)
        for sid, outcome in (("S201", "busy"), ("S202", "no_answer")):
            attempts = _attempts(loop, sid)
            assert [a["outcome"] for a in attempts] == [outcome, outcome], attempts
            assert [a["attempt"] for a in attempts] == [1, 2]
            assert [a["next"]["state"] for a in attempts] == ["callback_pending", "unreachable"]
            assert attempts[0]["next"]["retry_at"] is not None
            assert all(a["recordings"] == {} for a in attempts)
            tail = loop.types(sid)[-7:]
            assert tail == [
                "survey.callback_pending",
                "survey.calling",
                "callback.attempt",
                "survey.callback_pending",
                "survey.calling",
                "callback.attempt",
                "survey.unreachable",
            ], tail
        assert len(_dialled(ami, "13800000001")) == 2
        assert len(_dialled(ami, "13800000002")) == 2


async def test_no_free_agent_means_nobody_is_dialled(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    # Unit 330603 has one agent, agent3; paused, it is not free.
    queue, number = "minyi-unit-330603", "13800008301"
    await ami.action(
        {
            "Action": "QueuePause",
            "Queue": queue,
            "Interface": "PJSIP/agent3",
            "Paused": "true",
            "Reason": "test",
        }
    )
    try:
        async with _loop(clean_redis, asterisk) as loop:
            await _dialer_on_ami(loop)
            await _unsatisfied(loop, "S301", number, unit="330603")
            await eventually(lambda: "survey.callback_pending" in loop.types("S301"))
            await _dialer_passed_over(loop, "S301")
            assert (await _survey(loop, "S301"))["state"] == "callback_pending"  # not claimed
            assert "survey.calling" not in loop.types("S301")
            assert _dialled(ami, number) == []
            await ami.action(
                {
                    "Action": "QueuePause",
                    "Queue": queue,
                    "Interface": "PJSIP/agent3",
                    "Paused": "false",
                }
            )
            await eventually(lambda: "survey.calling" in loop.types("S301"))
            await eventually(lambda: "survey.called" in loop.types("S301"), within_s=90)
            assert _attempts(loop, "S301")[0]["agent"] == "agent3"
    finally:
        await ami.action(
            {"Action": "QueuePause", "Queue": queue, "Interface": "PJSIP/agent3", "Paused": "false"}
        )


@pytest.mark.usefixtures("talkative_agents")
async def test_ami_connection_cut_mid_call_is_recovered_and_nothing_dialled_twice(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    proxy = TcpProxy(asterisk.host, asterisk.ami_port)
    await proxy.start()
    number = "13800008401"
    try:
        cfg = dialer_config(asterisk)
        async with _loop(clean_redis, asterisk, ami={**cfg["ami"], "port": proxy.port}) as loop:
            await _unsatisfied(loop, "S401", number)
            connect = await ami.wait_for(
                lambda e: e.get("Event") == "AgentConnect" and e.get("ConnectedLineNum") != "",
                "agent connected",
                limit_s=60,
            )
            dialer = loop.service.dialer
            assert dialer is not None
            proxy.cut()  # the dialer's AMI connection dies while the citizen talks
            await eventually(lambda: dialer.ami.connects >= 2 and dialer.ami.connected, "AMI back")
            await hang_up_agent(ami, connect["MemberName"])  # the call ends after that
            await eventually(lambda: "survey.called" in loop.types("S401"), within_s=90)
            (attempt,) = _attempts(loop, "S401")
            assert attempt["outcome"] == "connected" and attempt["agent"] in ("agent1", "agent2")
            # Called: nothing can claim the callback any more; the one Originate it had
            # was not sent again on the reconnect.
            assert (await _survey(loop, "S401"))["state"] == "called"
            assert dialer.stats.originated == 1
            assert len(_dialled(ami, number)) == 1
            assert loop.types("S401").count("survey.calling") == 1
    finally:
        await proxy.close()


@pytest.mark.usefixtures("talkative_agents")
async def test_dialer_restarted_mid_call_adopts_the_live_call(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    number = "13800008501"
    async with _loop(clean_redis, asterisk) as loop:
        await _unsatisfied(loop, "S501", number)
        connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect", "agent", 60)
        settings = loop.service.settings
        await loop.stop_service()  # the gateway goes away mid-call; the call goes on
        assert "callback.attempt" not in loop.types("S501")
        service, task = await start_service(settings)
        loop.service, loop.task = service, task
        try:
            dialer = service.dialer
            assert dialer is not None
            await eventually(lambda: dialer.stats.recovered == 1, "the call adopted")
            await hang_up_agent(ami, connect["MemberName"])  # the call ends after that
            await eventually(lambda: "survey.called" in loop.types("S501"), within_s=90)
            (attempt,) = _attempts(loop, "S501")
            assert attempt["outcome"] == "connected" and attempt["agent"] in ("agent1", "agent2")
            assert service.dialer is not None and service.dialer.stats.recovered == 1
            assert len(_dialled(ami, number)) == 1
        finally:
            await loop.stop_service()  # running_loop only stops the service it started


async def test_disposition_closes_and_ivr_recheck_records_the_reason(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    number = "13800010003"  # answers; in the IVR presses 3 and speaks its reason
    async with _loop(clean_redis, asterisk) as loop:
        await _unsatisfied(loop, "S601", number)
        await eventually(lambda: "survey.called" in loop.types("S601"), within_s=90)
        cid = _attempts(loop, "S601")[0]["callback_id"]

        status, body = await _post(loop, "/v1/surveys/S601/recheck", {})
        assert status == 409, body  # not closed yet
        status, body = await _post(loop, f"/v1/callbacks/{cid}/disposition", {"upheld": "yes"})
        assert status == 422 and body["field"] == "upheld"
        status, body = await _post(
            loop, f"/v1/callbacks/{cid}/disposition", {"upheld": True, "reasons": ["nonsense"]}
        )
        assert status == 422 and body["field"] == "reasons"
        status, body = await _post(
            loop, "/v1/callbacks/cb-0000000000000000/disposition", {"upheld": True}
        )
        assert status == 404
        verdict = {"upheld": True, "reasons": ["slow_response"], "note": "出警慢属实"}
        status, body = await _post(loop, f"/v1/callbacks/{cid}/disposition", verdict)
        assert status == 200 and body["state"] == "closed", body
        status, body = await _post(loop, f"/v1/callbacks/{cid}/disposition", verdict)
        assert status == 200 and body["status"] == "exists"
        await eventually(lambda: "survey.closed" in loop.types("S601"))
        disp = next(e for e in loop.receiver.events["S601"] if e["type"] == "callback.disposition")
        assert disp["payload"]["reasons"] == ["slow_response"] and disp["payload"]["upheld"]

        status, body = await _post(
            loop, "/v1/surveys/S601/recheck", {"kind": "ivr", "work_order": "GD-2026-001"}
        )
        assert status == 202, body
        await eventually(lambda: loop.types("S601").count("survey.closed") == 2, within_s=90)
        last = _attempts(loop, "S601")[-1]
        assert last["kind"] == "ivr" and last["outcome"] == "ivr_rated"
        assert last["ivr"] == {"digit": "3", "rating": "unsatisfied"}
        reason = Path(last["recordings"]["reason"]["path"])
        assert wav_rms(reason) > 0.01  # present and not silent
        tail = loop.types("S601")[-5:]
        assert tail == [
            "survey.recheck",
            "survey.calling",
            "callback.attempt",
            "survey.called",
            "survey.closed",
        ], tail


async def test_rejected_early_hangup_and_unknown_number_outcomes(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    async with _loop(clean_redis, asterisk, max_attempts=2) as loop:
        await _unsatisfied(loop, "S701", "13800000003")  # rejects the call (403)
        await _unsatisfied(loop, "S702", "13800000004")  # answers, hangs up after 1 s
        await _unsatisfied(loop, "S703", "13800000005")  # no such number (404)
        for sid in ("S701", "S702", "S703"):
            await eventually(lambda s=sid: "survey.unreachable" in loop.types(s), within_s=90)
        assert [a["outcome"] for a in _attempts(loop, "S701")] == ["rejected", "rejected"]
        early = _attempts(loop, "S702")
        assert [a["outcome"] for a in early] == ["abandoned", "abandoned"]
        assert early[0]["answered_at"] is not None and early[0]["agent"] is None
        # A number that does not exist is not tried again.
        (invalid,) = _attempts(loop, "S703")
        assert invalid["outcome"] == "invalid_number" and invalid["hangup_cause"] == "1"


async def test_outside_calling_hours_nobody_is_dialled(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    now = datetime.datetime.now(ZoneInfo("Asia/Shanghai"))
    start, end = now + datetime.timedelta(hours=2), now + datetime.timedelta(hours=3)
    hours = {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    number = "13800008801"
    async with _loop(clean_redis, asterisk, calling_hours=hours) as loop:
        await _dialer_on_ami(loop)
        await _unsatisfied(loop, "S801", number)
        await eventually(lambda: "survey.callback_pending" in loop.types("S801"))
        await _dialer_passed_over(loop, "S801")
        assert "survey.calling" not in loop.types("S801")
        assert _dialled(ami, number) == []
        status, body = await loop.get("S801")
        assert status == 200 and body["state"] == "callback_pending"


async def test_no_reply_gets_the_ivr_survey_and_a_3_goes_on_to_an_agent(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    async with running_loop(
        clean_redis.url,
        free_port(),
        workers=["api", "sms", "webhooks", "dialer"],
        dialer=dialer_config(asterisk, no_reply_ivr=True),
        surveys={"reply_window_hours": 0.0003, "quiet_hours": {"enabled": False}},  # 1.08 s
    ) as loop:
        for sid, number in (("S901", "13800010001"), ("S903", "13800010003")):
            status, body = await loop.post(survey(sid.lstrip("S"), number))
            assert status == 201, body
        # 1 pressed: rated satisfied, closed.
        await eventually(lambda: "survey.closed" in loop.types("S901"), within_s=90)
        (rated,) = _attempts(loop, "S901")
        assert rated["kind"] == "ivr" and rated["ivr"] == {"digit": "1", "rating": "satisfied"}
        # 3 pressed: the reason is recorded, then an agent calls back.
        await eventually(lambda: "survey.called" in loop.types("S903"), within_s=120)
        ivr, agent = _attempts(loop, "S903")
        assert ivr["kind"] == "ivr" and ivr["ivr"]["digit"] == "3"
        assert ivr["next"] == {
            "state": "callback_pending",
            "retry_at": ivr["next"]["retry_at"],
            "kind": "agent",
        }
        assert wav_rms(Path(ivr["recordings"]["reason"]["path"])) > 0.01
        assert agent["kind"] == "agent" and agent["attempt"] == 1
        assert agent["outcome"] == "connected"
        types = loop.types("S903")
        assert types.index("survey.no_reply") < types.index("survey.callback_pending")
        assert types.count("survey.calling") == 2


@pytest.mark.usefixtures("talkative_agents")
async def test_one_dialer_dials_and_a_standby_takes_over_the_live_call(
    clean_redis: RedisServer, asterisk: AsteriskInfo, ami: Observer
) -> None:
    number = "13800009101"
    async with _loop(clean_redis, asterisk) as loop:
        standby = Service(loop.service.settings, ("dialer",), instance="standby")
        task = asyncio.create_task(standby.run())
        try:
            await _unsatisfied(loop, "S1001", number)
            connect = await ami.wait_for(lambda e: e.get("Event") == "AgentConnect", "agent", 60)
            assert loop.service.dialer is not None and loop.service.dialer.leading
            assert standby.dialer is not None and not standby.dialer.leading
            await loop.stop_service()  # the dialer that placed the call goes away
            taken_over = standby.dialer
            await eventually(lambda: taken_over.stats.recovered == 1, "the call adopted")
            await hang_up_agent(ami, connect["MemberName"])  # the call ends after that
            store = standby.store
            assert store is not None

            async def attempts() -> list[Any]:
                return [
                    e.payload for e in await store.events("S1001") if e.type == "callback.attempt"
                ]

            (attempt,) = await eventually(attempts, "the attempt stored", within_s=90)
            assert attempt["outcome"] == "connected" and attempt["agent"] in ("agent1", "agent2")
            assert standby.dialer.leading and standby.dialer.stats.recovered == 1
            assert len(_dialled(ami, number)) == 1
        finally:
            standby.request_stop()
            await asyncio.wait_for(task, 30)


async def test_healthz_and_metrics_report_the_dialers_ami_up_then_down(
    clean_redis: RedisServer, asterisk: AsteriskInfo, tmp_path: Path
) -> None:
    # Issue 13, item 8: /healthz reports AMI, /metrics has minyi_dialer_ami_up, and the
    # page stays promtool-clean with AMI up and down.
    from tests.integration.test_health_metrics import health, promtool, scrape

    proxy = TcpProxy(asterisk.host, asterisk.ami_port)
    await proxy.start()
    closed = False
    try:
        cfg = dialer_config(asterisk)
        async with _loop(clean_redis, asterisk, ami={**cfg["ami"], "port": proxy.port}) as loop:

            async def ami_is(up: bool) -> dict[str, Any] | None:
                _, body = await health(loop.http, loop.api)
                fit = body["dialer"]["ami_connected"] is up and [
                    (d["instance"], d["ami_connected"]) for d in body["dialers"]
                ] == [("test", up)]
                return body if fit else None

            body = await eventually(lambda: ami_is(True), "AMI up on /healthz")
            assert body is not None and body["dialer"]["leading"] is True
            _, _, page = await scrape(loop.http, loop.api)
            assert 'minyi_dialer_ami_up{instance="test"} 1' in page.splitlines()
            assert 'minyi_dialer_leading{instance="test"} 1' in page.splitlines()
            checked = promtool(page, tmp_path)
            assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + page

            await proxy.close()  # Asterisk's AMI is gone: the connection drops, reconnects fail
            closed = True
            await eventually(lambda: ami_is(False), "AMI down on /healthz")
            _, _, page = await scrape(loop.http, loop.api)
            assert 'minyi_dialer_ami_up{instance="test"} 0' in page.splitlines()
            checked = promtool(page, tmp_path)
            assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + page
    finally:
        if not closed:
            await proxy.close()
