"""The API while Redis is away, on real servers: a redis-server of the test's own that
is stopped (SIGTERM or SIGKILL) and started again mid-run, the gateway service itself,
the SMS center simulator and the webhook receiver.

While Redis is away every POST gets a JSON 503 with Retry-After (never a plain-text
500), /healthz says so, and the API listens from the start; once Redis is back the
first POST succeeds (no stale pooled connection fails it); nothing answered 201 is
lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.localstack import free_port
from gateway.config import parse_settings
from gateway.service import Service
from tests.integration.sms_harness import TOKEN, config, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(http: aiohttp.ClientSession, api: str, body: Any) -> tuple[int, Any, str | None]:
    """(status, JSON answer, Retry-After); the answer must be JSON whatever the status."""
    async with http.post(api + "/v1/surveys", json=body, headers=AUTH) as r:
        assert r.content_type == "application/json", (r.status, await r.text())
        return r.status, await r.json(), r.headers.get("Retry-After")


def api_only(redis_url: str) -> Service:
    cfg: dict[str, Any] = config(redis_url, free_port(), "http://127.0.0.1:9/", free_port())
    cfg["webhooks"] = {}
    return Service(parse_settings(cfg), ("api",), instance="outage-test")


async def test_the_api_listens_before_redis_and_answers_503_until_it_is_there(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path)  # not started yet
    service = api_only(server.url)
    task = asyncio.create_task(service.run())
    try:
        await eventually(lambda: service.api_port is not None, "the API to listen")
        api = f"http://127.0.0.1:{service.api_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(api + "/healthz") as r:
                health = await r.json()
                assert r.status == 503 and r.headers["Retry-After"] == "5"
                assert health["redis"]["ok"] is False
            status, answer, retry_after = await post(http, api, survey(1))
            assert (status, answer["error"], retry_after) == (503, "unavailable", "5")
            # more requests than the pool has connections: each is answered, none hangs
            answers = await asyncio.wait_for(
                asyncio.gather(*(post(http, api, survey(i)) for i in range(100, 200))), 30
            )
            assert {a[0] for a in answers} == {503}
            assert not service.ready.is_set()

            await asyncio.to_thread(server.start)
            await asyncio.wait_for(service.ready.wait(), 20)
            status, answer, _ = await post(http, api, survey(1))
            assert status == 201 and answer["state"] == "queued"
            answers = await asyncio.wait_for(
                asyncio.gather(*(post(http, api, survey(i)) for i in range(100, 200))), 30
            )
            assert {a[0] for a in answers} == {201}
        service.request_stop()
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        service.request_stop()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


async def test_the_first_post_after_a_redis_restart_succeeds(tmp_path: Path) -> None:
    # Once failed with 500 "Connection closed by server" 5 s after Redis was back: the
    # pooled connections were dead. Now a dead connection is reconnected and the
    # command sent again.
    server = RedisServer(tmp_path)
    server.start()
    service = api_only(server.url)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.ready.wait(), 20)
        api = f"http://127.0.0.1:{service.api_port}"
        async with aiohttp.ClientSession() as http:
            # several connections in the pool, all idle when Redis goes
            first = await asyncio.gather(*(post(http, api, survey(i)) for i in range(20)))
            assert {a[0] for a in first} == {201}
            await asyncio.to_thread(server.restart)
            after = await asyncio.gather(*(post(http, api, survey(i)) for i in range(20, 40)))
            assert [a[0] for a in after] == [201] * 20
        service.request_stop()
        assert await asyncio.wait_for(task, 30) == 0
    finally:
        service.request_stop()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_redis_stopped_and_started_mid_run_loses_no_survey(tmp_path: Path, how: str) -> None:
    server = RedisServer(tmp_path)
    server.start()
    answers: list[tuple[str, int, Any, str | None]] = []
    phase = {"name": "before"}
    by_phase: dict[str, list[int]] = {"before": [], "away": [], "back": []}
    stop_posting = asyncio.Event()
    try:
        async with running_loop(server.url, free_port()) as loop:

            async def poster() -> None:
                n = 0
                while not stop_posting.is_set():
                    sid, sent_in = f"SR{n}", phase["name"]  # the phase when it was sent
                    status, answer, retry_after = await post(
                        loop.http, loop.api, survey(f"R{n}", f"137{n:08d}")
                    )
                    answers.append((sid, status, answer, retry_after))
                    by_phase[sent_in].append(status)
                    n += 1
                    await asyncio.sleep(0.01)

            posting = asyncio.create_task(poster())
            await eventually(lambda: by_phase["before"].count(201) >= 30, "posts before the outage")
            phase["name"] = "away"
            await asyncio.to_thread(server.stop if how == "SIGTERM" else server.kill)
            await eventually(lambda: by_phase["away"].count(503) >= 5, "503 answers while away")
            await asyncio.to_thread(server.start)
            phase["name"] = "back"
            await eventually(lambda: by_phase["back"].count(201) >= 30, "posts after the restart")
            stop_posting.set()
            await posting

            created = [sid for sid, status, _, _ in answers if status == 201]
            await eventually(
                lambda: all("survey.delivered" in loop.types(s) for s in created),
                "every created survey delivered",
                60,
            )
            server_errors = [a for a in answers if a[1] >= 500 and a[1] != 503]
            lost = [s for s in created if await loop.service.store.get_survey(s) is None]
            statuses = {status for _, status, _, _ in answers}
            print(
                f"redis {how}: posts={len(answers)} created={len(created)} "
                f"503={sum(1 for a in answers if a[1] == 503)} other_5xx={len(server_errors)} "
                f"lost={len(lost)}"
            )
    finally:
        server.stop()
    assert statuses <= {201, 503}, statuses
    assert server_errors == [] and lost == []
    assert all(a[3] == "5" and a[2]["error"] == "unavailable" for a in answers if a[1] == 503)
    # Back means back: the first post after the restart, and every one after it, stored.
    assert by_phase["back"] and set(by_phase["back"]) == {201}
