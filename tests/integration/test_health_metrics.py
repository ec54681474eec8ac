"""What the gateway says about itself, checked against real servers and the official
tools: /healthz with the SMS center dead (each bind, since when, why; 503), across
processes (an API process shows the binds of an sms-only process), and /metrics read
by Prometheus' own ``promtool check metrics`` on real scrapes, with Redis up and down.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.localstack import SMPP_PASSWORD, SMPP_USER, free_port
from gateway.config import parse_settings
from gateway.service import Service
from smsc.simulator import SmscSimulator
from tests.integration.sms_harness import config, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool")


async def health(http: aiohttp.ClientSession, api: str) -> tuple[int, dict[str, Any]]:
    async with http.get(api + "/healthz") as r:
        return r.status, await r.json()


async def scrape(http: aiohttp.ClientSession, api: str) -> tuple[int, str, str]:
    async with http.get(api + "/metrics") as r:
        return r.status, r.headers["Content-Type"], await r.text()


def promtool(page: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on a page (it reads the page on stdin)."""
    assert PROMTOOL, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    (tmp_path / "scrape.txt").write_text(page)
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True, timeout=30
    )


async def test_healthz_says_503_with_each_bind_down_while_the_sms_center_is_dead(
    clean_redis: RedisServer,
) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        status, body = await health(loop.http, loop.api)
        assert status == 200, body
        assert body["status"] == "ok" and body["problems"] == []
        (b1,) = body["binds"]
        assert (b1["name"], b1["protocol"], b1["instance"], b1["bound"]) == (
            "b1",
            "smpp",
            "test",
            True,
        )
        bound_since = b1["since"]
        assert body["webhooks"]["core"]["backlog"] == 0

        port = loop.smsc.port
        await loop.smsc.stop()  # the SMS center is dead: connection refused from now on

        async def down() -> dict[str, Any] | None:
            status, body = await health(loop.http, loop.api)
            return body if status == 503 else None

        body = await eventually(down, "503 from /healthz")
        assert body is not None
        assert body["status"] == "degraded" and body["redis"]["ok"] is True
        (problem,) = body["problems"]
        assert problem.startswith("sms: no smpp bind is bound (b1: ")
        (b1,) = body["binds"]
        assert b1["bound"] is False and b1["since"] > bound_since
        assert b1["last_error"] and b1["last_error_at"] >= b1["since"]

        async def refused() -> bool:
            _, body = await health(loop.http, loop.api)
            return "refused" in body["binds"][0]["last_error"].lower()

        await eventually(refused, "the reconnect's error")  # then reconnects fail

        # the SMS center comes back on the same port: bound again, 200 again
        smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
        await smsc.start(port=port)
        try:

            async def up() -> bool:
                return (await health(loop.http, loop.api))[0] == 200

            await eventually(up, "200 again")
            _, body = await health(loop.http, loop.api)
            assert body["binds"][0]["bound"] is True and body["binds"][0]["last_error"]
        finally:
            await loop.stop_service()
            await smsc.stop()


async def test_an_api_process_reports_the_binds_of_an_sms_process(clean_redis: RedisServer) -> None:
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    cfg = config(clean_redis.url, smsc.port, "http://127.0.0.1:9/", free_port())
    settings = parse_settings(cfg)
    api = Service(settings, ("api",), instance="api-1")
    sms = Service(settings, ("sms",), instance="sms-1")
    tasks = [asyncio.create_task(api.run()), asyncio.create_task(sms.run())]
    try:
        await eventually(lambda: api.ready.is_set() and sms.ready.is_set(), "both started")
        url = f"http://127.0.0.1:{api.api_port}"
        async with aiohttp.ClientSession() as http:

            async def bound_elsewhere() -> dict[str, Any] | None:
                status, body = await health(http, url)
                return body if status == 200 else None

            body = await eventually(bound_elsewhere, "the sms process's bind, up")
            assert body is not None
            (b1,) = body["binds"]
            assert b1["instance"] == "sms-1" and b1["bound"] is True
            assert b1["report_age_s"] < 10 and b1["stale"] is False

            sms.request_stop()  # a clean stop withdraws its report: no process runs b1
            await asyncio.wait_for(tasks[1], 30)
            status, body = await health(http, url)
            assert status == 503
            assert body["binds"][0]["instance"] is None
            assert body["problems"] == ["sms: no smpp bind is bound (b1: no process runs it)"]
    finally:
        api.request_stop()
        sms.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await smsc.stop()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian's prometheus) not installed")
async def test_metrics_pass_promtool_on_real_scrapes_with_redis_up_and_down(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        async with running_loop(server.url, free_port()) as loop:
            for n in range(3):
                assert (await loop.post(survey(n)))[0] == 201
            await eventually(
                lambda: all("survey.delivered" in loop.types(f"S{n}") for n in range(3)),
                "the surveys delivered and on the feed",
            )
            status, content_type, page = await scrape(loop.http, loop.api)
            assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
            checked = promtool(page, tmp_path)
            assert checked.returncode == 0 and not checked.stdout.strip(), (
                checked.stdout + checked.stderr + page
            )
            lines = page.splitlines()
            for line in (
                "# TYPE minyi_events_total counter",
                'minyi_events_total{type="survey.accepted"} 3',
                'minyi_webhook_delivered_total{endpoint="core"} ',
                "# TYPE minyi_webhook_queued_events gauge",
                'minyi_sms_bind_up{bind="b1",protocol="smpp",instance="test"} 1',
                'minyi_webhook_backlog_events{endpoint="core"} ',
                "minyi_redis_up 1",
                # the per-unit counters the Lua keeps with the states (tallies.py)
                "# TYPE minyi_surveys_total counter",
                'minyi_surveys_total{unit="330602",state="accepted"} 3',
                'minyi_surveys_total{unit="330602",state="delivered"} 3',
                "# TYPE minyi_replies_total counter",
                "# TYPE minyi_callbacks_total counter",
            ):
                assert any(seen.startswith(line) for seen in lines), line
            assert not [seen for seen in lines if "_queued_total" in seen]

            server.stop()  # Redis is down: answer what can be read, never a 500
            status, _, page = await scrape(loop.http, loop.api)
            assert status == 200
            assert "minyi_redis_up 0" in page.splitlines()
            assert 'minyi_sms_bind_up{bind="b1",protocol="smpp",instance="test"} 1' in page
            checked = promtool(page, tmp_path)
            assert checked.returncode == 0 and not checked.stdout.strip(), (
                checked.stdout + checked.stderr + page
            )
            status, body = await health(loop.http, loop.api)
            assert status == 503 and body["redis"]["ok"] is False
            assert body["binds"][0]["bound"] is True  # this process's own, without Redis
            server.start()
    finally:
        server.stop()


async def test_healthz_and_metrics_show_the_webhook_backlog_and_its_oldest_age(
    clean_redis: RedisServer, tmp_path: Path
) -> None:
    async with running_loop(clean_redis.url, free_port()) as loop:
        loop.receiver.fail(503)  # the core system is down: the feed waits
        assert (await loop.post(survey(1)))[0] == 201

        async def waiting() -> dict[str, Any] | None:
            status, body = await health(loop.http, loop.api)
            core = body["webhooks"]["core"]
            return core if status == 200 and core["backlog"] and core["queued"] else None

        core = await eventually(waiting, "events waiting on /healthz")
        assert core is not None and core["surveys_due"] >= 1
        await eventually(
            lambda: loop.receiver.refused >= 2, "two failed requests: a retry has been made"
        )

        async def aged() -> dict[str, Any] | None:
            _, body = await health(loop.http, loop.api)
            core = body["webhooks"]["core"]
            return core if core["oldest_undelivered_age_s"] > 0 else None

        await eventually(aged, "the oldest undelivered event's age")
        _, _, page = await scrape(loop.http, loop.api)
        lines = page.splitlines()
        age = next(x for x in lines if x.startswith("minyi_webhook_oldest_undelivered_age_seconds"))
        assert age.startswith('minyi_webhook_oldest_undelivered_age_seconds{endpoint="core"} ')
        assert float(age.rsplit(" ", 1)[1]) > 0
        failed = next(x for x in lines if x.startswith("minyi_webhook_failed_requests_total"))
        assert float(failed.rsplit(" ", 1)[1]) >= 2
        # the webhook worker's own gauges, per process
        assert 'minyi_webhook_in_flight_surveys{endpoint="core",instance="test"} ' in page
        assert "# TYPE minyi_webhook_lost_leases_total counter" in lines
        checked = promtool(page, tmp_path)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + page

        loop.receiver.ok()  # back: the backlog drains, the age is 0 again

        async def drained() -> bool:
            _, body = await health(loop.http, loop.api)
            core = body["webhooks"]["core"]
            return core["backlog"] == 0 and core["oldest_undelivered_age_s"] == 0

        await eventually(drained, "the backlog drained")


@pytest.mark.parametrize("version", [2, 3], ids=["cmpp2", "cmpp3"])
async def test_healthz_reports_a_cmpp_bind_and_says_503_when_its_sms_center_is_gone(
    clean_redis: RedisServer, tmp_path: Path, version: int
) -> None:
    # the SMS center here is gocmpp, a peer the project did not write
    from tests.integration.cmpp_harness import cmpp_loop

    protocol = f"cmpp{version}"
    async with cmpp_loop(clean_redis.url, free_port(), version) as loop:
        status, body = await health(loop.http, loop.api)
        assert status == 200, body
        (bind,) = body["binds"]
        assert (bind["name"], bind["protocol"], bind["bound"]) == ("cmcc", protocol, True)
        up = f'minyi_sms_bind_up{{bind="cmcc",protocol="{protocol}",instance="test"}}'
        _, _, page = await scrape(loop.http, loop.api)
        assert up + " 1" in page.splitlines()

        loop.peer.stop()  # the SMS center's process is gone: the link drops, logins fail

        async def down() -> dict[str, Any] | None:
            status, body = await health(loop.http, loop.api)
            return body if status == 503 else None

        body = await eventually(down, "503 from /healthz")
        assert body is not None
        (problem,) = body["problems"]
        assert problem.startswith(f"sms: no {protocol} bind is bound (cmcc: ")
        (bind,) = body["binds"]
        assert bind["bound"] is False and bind["last_error"] and bind["since"] > 0
        _, _, page = await scrape(loop.http, loop.api)
        assert up + " 0" in page.splitlines()
        checked = promtool(page, tmp_path)
        assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + page
