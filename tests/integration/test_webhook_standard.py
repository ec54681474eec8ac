"""The feed as the core system reads it: every request the gateway delivers is verified
with the official Standard Webhooks library (``standardwebhooks`` from PyPI), not with
the project's own code, by a receiver written here the way the core system's would be.

Real servers throughout: redis-server, the SMSC simulator, the gateway services (one
with the API and the SMS side, and for the batches a second one that only delivers the
feed: two processes' worth of workers sharing Redis), and this receiver on loopback.

What is held:

* every request verifies (signature, timestamp, headers);
* a ``webhook-id`` carries no full stop, although the core system's survey ids may
  (the signed content is ``id.timestamp.body``: the spec advises against one);
* a ``webhook-id`` always goes with the same body: a retried request, a batched one
  included, keeps its identity and its contents until it is delivered, whichever
  process sends it again;
* the failed-requests counter on /metrics counts requests, not the surveys in them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devstack.localstack import SECRET, SMPP_PASSWORD, SMPP_USER, TOKEN, free_port
from gateway.config import WebhookEndpoint, parse_settings
from gateway.service import Service
from gateway.store import keys
from gateway.webhooks.worker import WebhookWorker
from smsc.simulator import SmscSimulator
from tests.integration.sms_harness import config, survey
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class StandardReceiver:
    """The core system's side: verify with the official library, drop duplicates by
    ``webhook-id``, keep each survey's events. ``fail_next`` requests are answered 503
    after they verified (the receiver is down for a while)."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.fail_next = 0
        # every request: (webhook-id, SHA-256 of the body, the status answered)
        self.requests: list[tuple[str, str, int]] = []
        self.unverified: list[str] = []
        self.seen_ids: set[str] = set()
        self.events: dict[str, list[int]] = {}  # survey id -> seqs, in arrival order
        self.types: dict[str, list[str]] = {}
        self.batch_sizes: list[int] = []  # surveys per accepted batch
        self._event_ids: set[str] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/feed", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/feed"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            doc = self.webhook.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            self.unverified.append(str(exc))
            return web.Response(status=401)
        msg_id = request.headers["webhook-id"]
        digest = hashlib.sha256(body).hexdigest()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.requests.append((msg_id, digest, 503))
            return web.Response(status=503)
        self.requests.append((msg_id, digest, 200))
        if msg_id in self.seen_ids:  # a retry of what we have: its id says so
            return web.Response(status=200)
        self.seen_ids.add(msg_id)
        events = doc["events"] if doc.get("type") == "batch" else [doc]
        if doc.get("type") == "batch":
            self.batch_sizes.append(len({e["survey_id"] for e in events}))
        for event in events:
            if event["id"] in self._event_ids:
                continue
            self._event_ids.add(event["id"])
            self.events.setdefault(event["survey_id"], []).append(int(event["seq"]))
            self.types.setdefault(event["survey_id"], []).append(event["type"])
        return web.Response(status=200)

    def ids_and_bodies(self) -> dict[str, set[str]]:
        """Each webhook-id and the bodies sent under it."""
        out: dict[str, set[str]] = {}
        for msg_id, digest, _ in self.requests:
            out.setdefault(msg_id, set()).add(digest)
        return out


@asynccontextmanager
async def gateway(
    redis_url: str, receiver: StandardReceiver, *, batch_max: int, feeders: int
) -> AsyncIterator[tuple[str, list[Service]]]:
    """The SMSC simulator and ``feeders`` gateway services: the first runs the API, the
    SMS side and the feed, the others the feed only. Yields the API's URL."""
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    endpoint: dict[str, Any] = {
        "name": "core",
        "url": receiver.url,
        "secret": SECRET,
        "max_age_hours": 1,
        "allow_short_max_age": True,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 1,
        "timeout_s": 2,
        "batch_max": batch_max,
    }
    cfg = config(redis_url, smsc.port, receiver.url, free_port())
    cfg["webhooks"] = {"endpoints": [endpoint]}
    settings = parse_settings(cfg)
    services = [Service(settings, ("api", "sms", "webhooks"), instance="gw-1")]
    services += [
        Service(settings, ("webhooks",), instance=f"gw-{n}") for n in range(2, feeders + 1)
    ]
    tasks = [asyncio.create_task(s.run()) for s in services]
    try:
        await eventually(lambda: all(s.ready.is_set() for s in services), "the gateways started")
        client = services[0].client
        assert client is not None
        await client.wait_bound(10)
        yield f"http://127.0.0.1:{services[0].api_port}", services
    finally:
        for s in services:
            s.request_stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await smsc.stop()


async def post_all(http: aiohttp.ClientSession, api: str, ids: list[str]) -> None:
    async def post(n: int, sid: str) -> None:
        body = survey(n, phone=f"1381300{n:04d}", survey_id=sid)
        async with http.post(api + "/v1/surveys", json=body, headers=AUTH) as r:
            assert r.status == 201, await r.text()

    await asyncio.gather(*(post(n, sid) for n, sid in enumerate(ids)))


def all_delivered(receiver: StandardReceiver, ids: list[str]) -> bool:
    return all("survey.delivered" in receiver.types.get(sid, []) for sid in ids)


def assert_each_survey_in_order(receiver: StandardReceiver, ids: list[str]) -> None:
    for sid in ids:
        seqs = receiver.events[sid]
        assert seqs == list(range(1, len(seqs) + 1)), (sid, seqs)


async def metric(http: aiohttp.ClientSession, api: str, series: str) -> float:
    async with http.get(api + "/metrics") as r:
        page = await r.text()
    for line in page.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not on /metrics:\n{page}")


@pytest.fixture
async def receiver() -> AsyncIterator[StandardReceiver]:
    r = StandardReceiver(SECRET)
    await r.start()
    try:
        yield r
    finally:
        await r.close()


async def test_every_request_verifies_with_the_official_library_and_no_id_has_a_full_stop(
    clean_redis: RedisServer, receiver: StandardReceiver
) -> None:
    ids = [f"S.13.{n}" for n in range(6)]  # the core system's ids may hold full stops
    receiver.fail_next = 3  # a few retries: each keeps its id and body
    async with gateway(clean_redis.url, receiver, batch_max=1, feeders=1) as (api, _):
        async with aiohttp.ClientSession() as http:
            await post_all(http, api, ids)
            await eventually(lambda: all_delivered(receiver, ids), "every survey delivered")
            failed = await metric(http, api, 'minyi_webhook_failed_requests_total{endpoint="core"}')
    assert receiver.unverified == []
    assert receiver.requests and all(s in (200, 503) for _, _, s in receiver.requests)
    assert not [i for i, _, _ in receiver.requests if "." in i]
    # the id names its event: S.13.0's first event (seq 1, id "S.13.0:1@<tag of its life
    # and the master's era>", gateway/store/events.py) goes as S%2E13%2E0:1@<tag>
    assert [i for i in receiver.ids_and_bodies() if i.startswith("S%2E13%2E0:1@")]
    assert all(len(bodies) == 1 for bodies in receiver.ids_and_bodies().values())
    refused = [i for i, _, s in receiver.requests if s == 503]
    assert len(refused) == 3 and set(refused) <= receiver.seen_ids
    assert failed == 3
    assert_each_survey_in_order(receiver, ids)


async def test_a_failed_batch_goes_again_with_its_id_and_bytes_from_any_process(
    clean_redis: RedisServer, receiver: StandardReceiver
) -> None:
    ids = [f"B.{n}" for n in range(16)]
    receiver.fail_next = 4
    async with gateway(clean_redis.url, receiver, batch_max=5, feeders=2) as (api, _):
        async with aiohttp.ClientSession() as http:
            await post_all(http, api, ids)
            await eventually(lambda: all_delivered(receiver, ids), "every survey delivered")
            failed = await metric(http, api, 'minyi_webhook_failed_requests_total{endpoint="core"}')
    assert receiver.unverified == []
    by_id = receiver.ids_and_bodies()
    # one identity, one content: a retried batch is the same request again
    assert all(len(bodies) == 1 for bodies in by_id.values()), by_id
    refused = [i for i, _, s in receiver.requests if s == 503]
    assert len(refused) == 4
    assert any(i.startswith("batch_") for i in refused)
    assert set(refused) <= receiver.seen_ids  # each one delivered in the end, same id
    assert max(receiver.batch_sizes) > 1  # batches really carried several surveys
    # counted once per request, not per survey or event in it
    assert failed == 4
    assert_each_survey_in_order(receiver, ids)


async def test_a_batch_refused_in_one_process_is_delivered_by_another_as_it_was(
    redis: aioredis.Redis, receiver: StandardReceiver
) -> None:
    # w1 sends while the receiver refuses everything, then stops; w2, a process that never
    # saw those batches, delivers them: each under the id and with the bytes w1 used.
    from tests.integration.test_webhooks import interleaved, publish

    ep = WebhookEndpoint(
        name="core",
        url=receiver.url,
        secret=SECRET,
        timeout_s=2.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        batch_max=4,
        concurrency=16,
    )
    receiver.fail_next = 10**6
    stop1 = asyncio.Event()
    w1 = WebhookWorker(redis, [ep], consumer="w1", stats_interval_s=0.1, grace_s=2.0)
    run1 = asyncio.create_task(w1.run(stop1))
    await publish(redis, interleaved(12, range(1, 4), prefix="X."))
    await eventually(lambda: len(receiver.requests) >= 8, "w1's batches refused")
    stop1.set()
    await run1
    refused = {i for i, _, _ in receiver.requests}
    assert refused and all(i.startswith("batch_") for i in refused)
    receiver.fail_next = 0
    stop2 = asyncio.Event()
    w2 = WebhookWorker(redis, [ep], consumer="w2", stats_interval_s=0.1, grace_s=2.0)
    run2 = asyncio.create_task(w2.run(stop2))
    try:
        await eventually(
            lambda: all(len(receiver.events.get(f"X.{i}", [])) == 3 for i in range(12)),
            "w2 delivered everything",
        )
    finally:
        stop2.set()
        await run2
    assert receiver.unverified == []
    assert refused <= receiver.seen_ids  # every batch w1 made, delivered under its id
    assert all(len(bodies) == 1 for bodies in receiver.ids_and_bodies().values())
    assert_each_survey_in_order(receiver, [f"X.{i}" for i in range(12)])
    # nothing left behind: no pin, no stored batch
    assert not await redis.exists(keys.WEBHOOK_BATCHES.format(endpoint="core"))
    assert not await redis.exists(keys.WEBHOOK_BATCH_OF.format(endpoint="core"))
