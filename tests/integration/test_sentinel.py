"""Redis Sentinel on real servers: a master, a replica and three redis-sentinel processes
on loopback (devstack/sentinel.py).

- the gateway's client follows a failover (SENTINEL FAILOVER, a SIGKILL of the master)
  without a restart, and never writes to a node that is not the master: a replica
  named by URL is refused, a pooled connection to a demoted master is not written to;
- with ``wait_replicas`` a write is answered only once the replica has it: a caller
  that answers someone now (the API) is told at once when it has not, a worker waits;
  the API answers 503 and /healthz says why;
- event ids never name two events: a failover that loses a survey's last events (the
  replica never got them) makes its seqs come again, with other ids, and a receiver
  that de-duplicates on ``id`` gets every event.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from devstack.localstack import TOKEN, free_port
from devstack.sentinel import ReplicatedRedis
from gateway.config import parse_settings
from gateway.service import Service
from gateway.store import connection, keys
from gateway.store.connection import NotMaster
from gateway.store.replication import FAIL_FAST, UNCONFIRMED_STAT, NotReplicated, Replication
from gateway.store.surveys import IntakeResult, Store
from gateway.webhooks.receiver import WebhookReceiver
from gateway.webhooks.worker import WebhookWorker
from tests.integration.sms_harness import SECRET, config, survey
from tests.waiting import eventually

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "sentinel-test-pw"


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[ReplicatedRedis]:
    """A master, its replica and three sentinels of this test alone."""
    rr = ReplicatedRedis(tmp_path / "ha", password=PASSWORD)
    rr.start()
    try:
        yield rr
    finally:
        rr.stop()


@pytest.fixture
async def client(replicated: ReplicatedRedis) -> AsyncIterator[aioredis.Redis]:
    """The gateway's client, through the sentinels."""
    redis = connection.connect(replicated.url)
    try:
        yield redis
    finally:
        await redis.aclose()


async def intake(store: Store, sid: str) -> IntakeResult:
    return await store.intake(
        sid, "13800000001", {"unit_code": "330602"}, cap_s=0, defer_at=None, ttl_s=0,
        accepted_payload={},
    )  # fmt: skip


async def intake_until_answered(store: Store, sid: str) -> IntakeResult:
    """What the core system does: post again after a 503 until it gets an answer."""
    while True:
        try:
            result: IntakeResult = await as_the_api(intake(store, sid))
            return result
        except RedisConnectionError:
            await asyncio.sleep(0.05)


async def as_the_api(call: Any) -> Any:
    """Await ``call`` in a task of its own with FAIL_FAST set, as the API's requests."""

    async def fail_fast() -> Any:
        FAIL_FAST.set(True)
        return await call

    return await asyncio.create_task(fail_fast())


async def test_the_client_follows_a_manual_failover_and_loses_nothing_answered(
    replicated: ReplicatedRedis, client: aioredis.Redis
) -> None:
    store = Store(client, TZ, replication=Replication(client, 1, 1000))
    await store.load()
    first = replicated.master_port()
    health = await connection.health(client, 1)
    assert health["ok"] and health["role"] == "master"
    assert health["address"] == f"127.0.0.1:{first}"
    assert [r["state"] for r in health["replicas"]] == ["online"]

    answered: list[str] = []

    async def post_all() -> None:
        for i in range(300):
            result = await intake_until_answered(store, f"F{i}")
            assert result.status in ("created", "existing")
            answered.append(f"F{i}")

    posting = asyncio.create_task(post_all())
    await eventually(lambda: len(answered) >= 50, "posts before the failover")
    second = await asyncio.to_thread(replicated.failover)
    await asyncio.wait_for(posting, 60)
    assert second != first
    # Every survey answered is on the new master (and on its replica once in sync).
    await asyncio.to_thread(replicated.wait_in_sync)
    master = aioredis.Redis(port=second, password=PASSWORD, decode_responses=True)
    try:
        missing = [
            sid for sid in answered if not await master.exists(keys.SURVEY.format(survey_id=sid))
        ]
        assert missing == []
    finally:
        await master.aclose()
    health = await connection.health(client, 1)
    assert health["ok"] and health["address"] == f"127.0.0.1:{second}"


async def test_a_replica_is_never_written_to(replicated: ReplicatedRedis) -> None:
    replica = replicated.replica()
    # named directly: refused when the connection opens
    direct = connection.connect(f"redis://:{PASSWORD}@127.0.0.1:{replica.port}/0")
    try:
        with pytest.raises(NotMaster, match="is a slave, not the master"):
            await direct.set("x", "1")
    finally:
        await direct.aclose()
    # a pooled connection to a master that is demoted under it: READONLY closes it, and
    # the command is not written anywhere but to a master
    master = replicated.master()
    pinned = connection.connect(f"redis://:{PASSWORD}@127.0.0.1:{master.port}/0")
    try:
        await pinned.set("before", "1")
        assert master.ask("REPLICAOF", "127.0.0.1", str(replica.port)) == "OK"
        assert replica.ask("REPLICAOF", "NO", "ONE") == "OK"
        with pytest.raises(NotMaster):
            await pinned.set("after", "1")
        assert replica.ask("EXISTS", "after") == "0"
    finally:
        await pinned.aclose()


async def test_writes_wait_for_the_replica_and_the_api_answers_503_without_it(
    replicated: ReplicatedRedis, client: aioredis.Redis, tmp_path: Path
) -> None:
    replication = Replication(client, 1, 300)
    store = Store(client, TZ, replication=replication)
    await store.load()
    replica = replicated.replica()
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)  # hung: connected, acknowledging nothing
    try:
        with pytest.raises(NotReplicated):
            await as_the_api(intake(store, "W1"))  # the API's caller: told at once
        worker_call = asyncio.create_task(intake(store, "W2"))  # a worker: waits

        async def rounds() -> int:
            return int(await client.hget(keys.STATS, UNCONFIRMED_STAT) or 0)

        # confirmation rounds come back short, one after the other: the call waits
        await eventually(lambda: replication.short_waits >= 1, "the worker's write waiting")
        first = await rounds()

        async def two_more() -> bool:
            return await rounds() >= first + 2

        await eventually(two_more, "two more confirmation rounds")
        assert not worker_call.done()
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert (await asyncio.wait_for(worker_call, 30)).status == "created"
    # posted again, the survey the API could not confirm is confirmed now
    assert (await as_the_api(intake(store, "W1"))).status == "existing"

    # The whole API: the replica down is a 503 with the reason on /healthz, then 201.
    api_port = free_port()
    cfg = config(replicated.url, free_port(), "http://127.0.0.1:9/", api_port)
    # the API alone with no SMS side configured: binds no process runs are a 503 of their
    # own (tests/integration/test_health_metrics.py), not what this test is about
    cfg["workers"] = ["api"]
    cfg["sms"]["binds"] = []
    cfg["redis"] = {"wait_timeout_ms": 300}
    service = Service(parse_settings(cfg, {}), ("api",), instance="sentinel-api")
    assert service.settings.redis.replicas == 1  # the default under Sentinel
    task = asyncio.create_task(service.run())
    api = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        async with aiohttp.ClientSession() as http:
            replica.kill()
            async with http.get(api + "/healthz") as r:
                health = await r.json()
                assert r.status == 503, health
                assert "writes wait for 1" in health["redis"]["error"]
                assert health["redis"]["role"] == "master"
            async with http.post(api + "/v1/surveys", json=survey(1), headers=headers) as r:
                assert r.status == 503 and r.headers["Retry-After"] == "5"
            await asyncio.to_thread(replica.start)
            await asyncio.to_thread(replicated.wait_in_sync)
            async with http.get(api + "/healthz") as r:
                assert r.status == 200, (await r.json())["problems"]

            async def posted() -> bool:
                # the first post is on the master (not confirmed then): confirmed now. A
                # replica just back in sync may still miss one 300 ms WAIT on a loaded
                # machine (seen with two busy loops on two cores): that is a 503 with
                # Retry-After, and the caller posts again, as the core system does.
                async with http.post(api + "/v1/surveys", json=survey(1), headers=headers) as r:
                    assert r.status in (200, 201, 503), await r.text()
                    return r.status != 503

            await eventually(posted, "the survey confirmed once the replica is back")
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 60)


async def test_event_ids_never_name_two_events_across_a_failover_that_lost_events(
    replicated: ReplicatedRedis, client: aioredis.Redis
) -> None:
    # No WAIT here (wait_replicas = 0): events reach the feed before the replica has them,
    # and the failover loses them — what the event ids must survive.
    store = Store(client, TZ)
    await store.load()
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    endpoint = parse_settings(config("redis://127.0.0.1/0", 1, receiver.url, 1), {}).webhooks[0]
    worker = WebhookWorker(client, [endpoint], consumer="ids", claim_idle_s=2.0)
    stop = asyncio.Event()
    feed = asyncio.create_task(worker.run(stop))
    sids = [f"E{i}" for i in range(20)]
    try:
        for sid in sids:
            await intake(store, sid)
        await eventually(lambda: all(len(receiver.seqs(s)) == 2 for s in sids), "seq 1, 2")
        await asyncio.to_thread(replicated.wait_in_sync)
        # Cut the replica off (it cannot authenticate to its master any more), then
        # write and deliver more events: only the master has them.
        old, replica = replicated.master(), replicated.replica()
        assert replica.ask("CONFIG", "SET", "masterauth", "wrong") == "OK"
        assert old.ask("CLIENT", "KILL", "TYPE", "replica") in ("1", 1)
        for sid in sids:
            await store.part_failed(sid, 1, 1, "lost-with-the-master", 8)  # seq 3, 4
        await eventually(lambda: all(len(receiver.seqs(s)) == 4 for s in sids), "seq 3, 4")
        lost_ids = {e["id"] for s in sids for e in receiver.events[s][2:]}
        old.kill()
        assert replica.ask("CONFIG", "SET", "masterauth", PASSWORD) == "OK"
        await asyncio.to_thread(replicated.wait_new_master, old.port)
        # The new master never had seq 3 and 4: the surveys go on from seq 2.
        for sid in sids:
            while True:
                try:
                    await store.part_failed(sid, 1, 1, "after-the-failover", 8)
                    break
                except RedisConnectionError:
                    await asyncio.sleep(0.1)
        histories = {sid: await store.events(sid) for sid in sids}
        assert {len(h) for h in histories.values()} == {4}

        def all_received() -> bool:
            return all(
                {e.id for e in histories[s]} <= {x["id"] for x in receiver.events[s]} for s in sids
            )

        await eventually(all_received, "every event of the new master, by id")
        # The old master back from its AOF: a master by its own account until Sentinel
        # makes it a replica of the new one; the gateway goes on with the new one.
        await asyncio.to_thread(old.start)
        await asyncio.to_thread(replicated.wait_in_sync)
        assert (await store.events(sids[0])) == histories[sids[0]]
    finally:
        stop.set()
        await asyncio.wait_for(feed, 30)
        await receiver.close()
    new_ids = {e.id for h in histories.values() for e in h[2:]}
    assert lost_ids.isdisjoint(new_ids)  # same seqs, other ids
    assert receiver.conflicts == 0  # no id ever came with another content
    assert receiver.duplicates == 0
    # every event the receiver kept is there once: seq 3 and 4 twice, each with its id
    assert all(receiver.seqs(s) == [1, 2, 3, 4, 3, 4] for s in sids)
    print("IDS " + json.dumps({"surveys": len(sids), "lost_then_reused_seqs": len(lost_ids)}))


async def test_an_api_pointed_at_a_master_that_is_demoted_answers_503_with_its_role(
    replicated: ReplicatedRedis,
) -> None:
    # The case: redis_url names the master's address, not the sentinels; after a
    # failover that address is a read-only replica. /healthz must say so (503) and a
    # POST must get a JSON 503, not a plain-text 500 (ReadOnlyError).
    old = replicated.master()
    api_port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{old.port}/0"
    cfg = config(url, free_port(), "http://127.0.0.1:9/", api_port)
    cfg["workers"] = ["api"]
    cfg["sms"]["binds"] = []  # no SMS side: /healthz is about Redis alone here
    service = Service(parse_settings(cfg, {}), ("api",), instance="pinned-api")
    task = asyncio.create_task(service.run())
    api = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        async with aiohttp.ClientSession() as http:
            async with http.get(api + "/healthz") as r:
                health = await r.json()
                assert r.status == 200, health["problems"]
                assert health["redis"]["role"] == "master"
            await asyncio.to_thread(replicated.failover)
            await eventually(lambda: old.role() == "slave", "the old master demoted", 60)
            async with http.get(api + "/healthz") as r:
                health = await r.json()
                assert r.status == 503, health
                assert "is a slave, not the master" in health["redis"]["error"]
            async with http.post(api + "/v1/surveys", json=survey(1), headers=headers) as r:
                assert r.status == 503 and r.headers["Retry-After"] == "5"
                assert r.content_type == "application/json", await r.text()
        assert old.ask("EXISTS", keys.SURVEY.format(survey_id="S1")) == "0"
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 60)
