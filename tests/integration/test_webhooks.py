"""The webhook feed against a real redis-server and a real receiver on loopback.

Nothing is mocked: events go into the stream in the store's shape, workers deliver
them over HTTP to gateway.webhooks.receiver, which verifies signatures and checks the
order per survey. Waits are bounded by a generous timeout; nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from devstack.localstack import free_port
from gateway.config import WebhookEndpoint
from gateway.store import keys
from gateway.store.events import Event
from gateway.webhooks.dead import count_dead
from gateway.webhooks.receiver import WebhookReceiver
from gateway.webhooks.worker import WebhookWorker, list_dead, replay, sign
from tests.waiting import ended, eventually

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"minyi-test-secret-0123456789abcd").decode()


# --- helpers -----------------------------------------------------------------------------


def event_fields(sid: str, seq: int, type_: str = "survey.accepted") -> dict[str, str]:
    """A stream entry as the store's Lua script writes it (gateway/store/keys.py EVENTS)."""
    event = Event(
        id=f"{sid}:{seq}" if sid else f"unmatched:{seq}",
        type=type_,
        survey_id=sid,
        seq=seq,
        time=datetime.now(UTC).isoformat(timespec="milliseconds"),
        payload={"n": seq, "text": "满意"},
    )
    return {"sid": sid, "seq": str(seq), "event": event.to_json()}


async def publish(redis: aioredis.Redis, items: list[tuple[str, int]]) -> None:
    """XADD events (survey id, seq) in this order; retried while Redis restarts."""
    for attempt in range(100):
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for sid, seq in items:
                    pipe.xadd(keys.EVENTS, event_fields(sid, seq))  # type: ignore[arg-type]
                await pipe.execute()
            return
        except (aioredis.ConnectionError, aioredis.TimeoutError):
            if attempt == 99:
                raise
            await asyncio.sleep(0.1)


def interleaved(surveys: int, seqs: range, prefix: str = "S") -> list[tuple[str, int]]:
    """Events of many surveys, interleaved as real traffic is: round after round."""
    return [(f"{prefix}{i}", seq) for seq in seqs for i in range(surveys)]


def complete(receiver: WebhookReceiver, surveys: int, last: int, prefix: str = "S") -> bool:
    return all(len(receiver.seqs(f"{prefix}{i}")) >= last for i in range(surveys))


def assert_in_order(receiver: WebhookReceiver, surveys: int, last: int, prefix: str = "S") -> None:
    for i in range(surveys):
        assert receiver.seqs(f"{prefix}{i}") == list(range(1, last + 1)), f"{prefix}{i}"
    assert receiver.out_of_order == 0
    assert receiver.rejected == 0


def endpoint(receiver: WebhookReceiver, **overrides: Any) -> WebhookEndpoint:
    settings: dict[str, Any] = {
        "timeout_s": 2.0,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.3,
        **overrides,
    }
    return WebhookEndpoint(name="core", url=receiver.url, secret=SECRET, **settings)


def worker(redis: aioredis.Redis, ep: WebhookEndpoint, **kw: Any) -> WebhookWorker:
    kw.setdefault("consumer", "w1")
    kw.setdefault("stats_interval_s", 0.1)
    kw.setdefault("grace_s", 2.0)
    return WebhookWorker(redis, [ep], **kw)


@contextlib.asynccontextmanager
async def running(w: WebhookWorker) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        yield task
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await ended(task, "the worker, stopped")
            await task


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET)
    await r.start()
    try:
        yield r
    finally:
        await r.close()


async def webhook_keys_left(redis: aioredis.Redis) -> list[bytes]:
    return [
        k
        async for k in redis.scan_iter(match=keys.PREFIX + "wh:core:*")
        if not k.endswith((b":delivered", b":dead"))
    ]


# --- tests -------------------------------------------------------------------------------


async def test_happy_path_all_events_once_in_order(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # Some events exist before the first start (group at id 0 must see them).
    await publish(redis, interleaved(40, range(1, 3)))
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await publish(redis, interleaved(40, range(3, 7)))
        await publish(redis, [("", 1), ("", 2)])  # events belonging to no survey
        await eventually(lambda: complete(receiver, 40, 6), "all events")
        await eventually(lambda: len(receiver.seqs("")) == 2, "survey-less events")
        # backlog = queued + stream lag: a refresh before the first read shows queued 0
        await eventually(lambda: w.stats()["core"]["backlog"] == 0, "gauges")  # type: ignore[index]
    assert_in_order(receiver, 40, 6)
    assert receiver.duplicates == 0
    stats: dict[str, Any] = w.stats()["core"]  # type: ignore[assignment]
    assert stats["delivered"] == 40 * 6 + 2
    assert stats["failed_requests"] == 0
    assert stats["backlog"] == 0
    assert int(await redis.hget(keys.STATS, "webhook:core:delivered") or 0) == 40 * 6 + 2
    assert await webhook_keys_left(redis) == []  # wait sets, due set and retry state gone
    assert await redis.hget(keys.WEBHOOK_DELIVERED.format(endpoint="core"), "S7") == b"6"


async def test_a_wait_on_the_receiver_ends_with_the_event_that_ends_it(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # The tests wait for the feed with receiver.wait_until(): woken by each event, not
    # by a poll nor by something else happening to record (the SMS center's next
    # enquire_link, 30 s after the last receipt, was what woke such waits before).
    with pytest.raises(TimeoutError):
        await receiver.wait_until(lambda: complete(receiver, 3, 1), 0.2)
    waiting = asyncio.create_task(receiver.wait_until(lambda: complete(receiver, 3, 2), 30))
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await publish(redis, interleaved(3, range(1, 2)))
        await eventually(lambda: complete(receiver, 3, 1), "the first events")
        assert not waiting.done()  # not yet: its condition needs the second ones
        await publish(redis, interleaved(3, range(2, 3)))
        await ended(waiting, "the wait, once the second events arrived", within_s=10)
        await waiting  # ended by the condition, not by its limit
    assert complete(receiver, 3, 2)


@pytest.mark.parametrize("status", [503, 410, 400])
async def test_receiver_down_then_back_loses_nothing(
    redis: aioredis.Redis, receiver: WebhookReceiver, status: int
) -> None:
    # 410 Gone and 400 too: a misconfigured receiver must not make us drop events.
    receiver.fail(status)
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await publish(redis, interleaved(20, range(1, 4)))
        await eventually(lambda: receiver.refused >= 60, "retries against a dead receiver")
        await publish(redis, interleaved(20, range(4, 6)))
        await eventually(lambda: w.stats()["core"]["backlog"] == 100, "gauges")  # type: ignore[index]
        gauges: dict[str, Any] = w.stats()["core"]  # type: ignore[assignment]
        assert gauges["oldest_undelivered_age_s"] > 0 and gauges["surveys_due"] == 20
        receiver.ok()
        await eventually(lambda: complete(receiver, 20, 5), "all events after recovery")
    assert_in_order(receiver, 20, 5)
    assert w.stats()["core"]["failed_requests"] >= 60  # type: ignore[index]
    assert await redis.xlen(keys.WEBHOOK_DEAD.format(endpoint="core")) == 0


async def test_hanging_receiver_times_out_and_is_retried(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    receiver.hang(1.0)
    w = worker(redis, endpoint(receiver, timeout_s=0.3))
    async with running(w):
        await publish(redis, interleaved(5, range(1, 4)))
        await eventually(lambda: complete(receiver, 5, 3), "all events after the hang")
    assert_in_order(receiver, 5, 3)
    assert w.stats()["core"]["failed_requests"] >= 5  # type: ignore[index]


async def test_dead_letter_after_max_age_then_replay_in_order(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # each survey's head event dead-letters; the events behind it wait (parked) for
    # the replay instead of overtaking it
    dead_key = keys.WEBHOOK_DEAD.format(endpoint="core")
    parked_key = keys.WEBHOOK_PARKED.format(endpoint="core")
    receiver.fail(500)
    w = worker(redis, endpoint(receiver, max_age_s=0.3))
    async with running(w):
        await publish(redis, interleaved(3, range(1, 4)))
        await eventually(lambda: w.stats()["core"]["dead_lettered"] == 3, "dead letters")  # type: ignore[index]
        assert receiver.received == 0
        dead = await list_dead(redis, "core")
        assert sorted((d["sid"], int(d["seq"])) for d in dead) == [(f"S{i}", 1) for i in range(3)]
        assert all(d["error"] == "HTTP 500" and int(d["attempts"]) >= 1 for d in dead)
        assert "payload" not in dead[0] and dead[0]["type"] == "survey.accepted"
        assert await redis.hlen(parked_key) == 3

        receiver.ok()
        await asyncio.sleep(0.5)  # the receiver is back: parked events still wait
        assert receiver.received == 0 and w.stats()["core"]["dead_lettered"] == 3  # type: ignore[index]
        assert await replay(redis, "core", limit=2) == 2
        assert await replay(redis, "core") == 1
        assert await replay(redis, "core") == 0
        await eventually(lambda: complete(receiver, 3, 3), "replayed events")
    assert_in_order(receiver, 3, 3)
    assert await redis.xlen(dead_key) == 0 and await redis.hlen(parked_key) == 0
    assert int(await redis.hget(keys.STATS, "webhook:core:replayed") or 0) == 3


async def test_replay_keeps_the_order_of_each_survey(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # 30 surveys: events 1 and 2 fail for the max age while the receiver is down; it
    # comes back, events 3 and 4 follow; after the replay every survey arrived 1, 2,
    # 3, 4 (once the later events overtook the dead letters: 3, 4, 1, 2)
    receiver.fail(503)
    w = worker(redis, endpoint(receiver, max_age_s=0.3))
    async with running(w):
        await publish(redis, interleaved(30, range(1, 3)))
        await eventually(lambda: w.stats()["core"]["dead_lettered"] == 30, "dead letters")  # type: ignore[index]
        receiver.ok()
        await publish(redis, interleaved(30, range(3, 5)))
        await publish(redis, [("", 1)])  # an event of no survey still flows at once
        await eventually(lambda: len(receiver.events.get("", [])) == 1, "the unmatched event")
        assert receiver.received == 1
        assert await replay(redis, "core") == 30
        await eventually(lambda: complete(receiver, 30, 4), "every survey's four events")
    assert_in_order(receiver, 30, 4)


async def test_two_workers_keep_order_and_lose_nothing(
    redis_server: Any, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    other = aioredis.Redis.from_url(redis_server.url)
    ep = endpoint(receiver, concurrency=8)
    a, b = worker(redis, ep, consumer="a", read_count=16), worker(other, ep, consumer="b")
    try:
        async with running(a), running(b):
            for seqs in (range(1, 3), range(3, 5), range(5, 7)):
                await publish(redis, interleaved(60, seqs))
                await asyncio.sleep(0.05)
            await eventually(lambda: complete(receiver, 60, 6), "all events")
        assert_in_order(receiver, 60, 6)
        both = [w.stats()["core"]["delivered"] for w in (a, b)]  # type: ignore[index]
        assert sum(both) >= 360  # type: ignore[arg-type]
    finally:
        await other.aclose()


async def test_abrupt_stop_with_requests_in_flight_loses_nothing(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    ep = endpoint(receiver, timeout_s=1.0)
    receiver.delay_s = 0.2  # requests are in flight when the worker dies
    first = worker(redis, ep, consumer="dies", lease_s=1.0)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await publish(redis, interleaved(30, range(1, 5)))
    await eventually(lambda: receiver.requests >= 10, "requests in flight")
    task.cancel()  # no stop event: like kill -9, leases and pending entries stay behind
    with contextlib.suppress(asyncio.CancelledError):
        await ended(task, "the worker, cancelled")
        await task
    receiver.ok()
    second = worker(redis, ep, consumer="lives", lease_s=1.0, claim_idle_s=0.5)
    async with running(second):
        await publish(redis, interleaved(30, range(5, 7)))
        await eventually(lambda: complete(receiver, 30, 6), "all events after the crash")
    assert_in_order(receiver, 30, 6)  # duplicates are allowed, and dropped by the receiver


async def test_entries_read_by_a_dead_consumer_are_claimed(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    group = keys.WEBHOOK_GROUP.format(endpoint="core")
    await redis.xgroup_create(keys.EVENTS, group, id="0", mkstream=True)
    await publish(redis, interleaved(4, range(1, 4)))
    # A consumer read them and died before queueing them: they stay pending for it.
    await redis.xreadgroup(group, "ghost", {keys.EVENTS: ">"}, count=100)
    w = worker(redis, endpoint(receiver), consumer="heir", claim_idle_s=0.3)
    async with running(w):
        await eventually(lambda: complete(receiver, 4, 3), "claimed events")
    assert_in_order(receiver, 4, 3)
    assert (await redis.xpending(keys.EVENTS, group))["pending"] == 0


async def test_restart_resumes_own_pending_entries_at_once(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    group = keys.WEBHOOK_GROUP.format(endpoint="core")
    await redis.xgroup_create(keys.EVENTS, group, id="0", mkstream=True)
    await publish(redis, interleaved(4, range(1, 3)))
    await redis.xreadgroup(group, "w1", {keys.EVENTS: ">"}, count=100)
    # Same consumer name, claim idle of an hour: only the own-pending pass can find them.
    w = worker(redis, endpoint(receiver), consumer="w1", claim_idle_s=3600)
    async with running(w):
        await eventually(lambda: complete(receiver, 4, 2), "own pending events")
    assert_in_order(receiver, 4, 2)


async def test_redis_restart_mid_stream(
    redis_server: Any, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await publish(redis, interleaved(30, range(1, 3)))
        await eventually(lambda: complete(receiver, 30, 2), "events before the restart")
        # Added right before the restart: still in the stream or half-way through intake.
        # SIGTERM makes Redis flush its AOF, so what was acknowledged to us survives.
        await publish(redis, interleaved(30, range(3, 5)))
        await asyncio.to_thread(redis_server.restart)
        await publish(redis, interleaved(30, range(5, 7)))
        await eventually(lambda: complete(receiver, 30, 6), "events after the restart")
    assert_in_order(receiver, 30, 6)


async def test_stop_gives_surveys_back_at_once(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    ep = endpoint(receiver)
    receiver.delay_s = 0.3
    first = worker(redis, ep, consumer="first", lease_s=600, grace_s=5)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await publish(redis, [("S0", s) for s in range(1, 6)])
    await eventually(lambda: receiver.requests >= 1, "a request in flight")
    stop.set()
    await task
    # The request in flight was allowed to finish, and the survey is due again now
    # (a 600 s lease would otherwise keep it from the next worker for ten minutes).
    assert receiver.seqs("S0") == [1]
    score = await redis.zscore(keys.WEBHOOK_DUE.format(endpoint="core"), "S0")
    assert score is not None and score <= (await redis.time())[0] + 1
    receiver.ok()
    async with running(worker(redis, ep, consumer="second", lease_s=600)):
        await eventually(lambda: len(receiver.seqs("S0")) == 5, "the rest of the survey")
    assert receiver.seqs("S0") == [1, 2, 3, 4, 5]


async def test_malformed_entries_are_dead_lettered_and_the_rest_flows(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    await redis.xadd(keys.EVENTS, {"sid": "S0", "event": "{}"})  # no seq
    await redis.xadd(keys.EVENTS, {"sid": "S0", "seq": "1", "event": "not json"})
    await publish(redis, [("S1", 1), ("S1", 2)])
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await eventually(lambda: receiver.seqs("S1") == [1, 2], "good events")
    dead = await list_dead(redis, "core")
    assert sorted(d["error"] for d in dead) == [
        "event is not JSON",
        "seq missing or not an integer",
    ]
    assert await replay(redis, "core") == 0  # nothing replayable in them


async def test_missing_predecessor_is_not_waited_for_forever(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # seq 3 never reaches the stream (e.g. trimmed): no entry is in flight, so seq 4
    # goes out at once instead of after the gap timeout.
    await publish(redis, [("S0", 1), ("S0", 2), ("S0", 4)])
    w = worker(redis, endpoint(receiver), gap_timeout_s=3600)
    async with running(w):
        await eventually(lambda: receiver.seqs("S0") == [1, 2, 4], "events around the gap")
    assert w.stats()["core"]["out_of_order"] == 1  # type: ignore[index]


async def test_batches_carry_several_surveys_in_order(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    w = worker(redis, endpoint(receiver, batch_max=10, concurrency=16))
    async with running(w):
        await publish(redis, interleaved(30, range(1, 5)))
        await eventually(lambda: complete(receiver, 30, 4), "batched events")
        receiver.fail(503)
        await publish(redis, interleaved(30, range(5, 9)))
        await eventually(lambda: receiver.refused >= 10, "failed batches")
        receiver.ok()
        await eventually(lambda: complete(receiver, 30, 8), "batched events after recovery")
    assert_in_order(receiver, 30, 8)
    assert receiver.requests - receiver.refused < 30 * 8 / 2  # they really were batched
    assert w.stats()["core"]["delivered"] == 30 * 8  # type: ignore[index]


def test_cli_lists_and_replays_dead_letters(
    redis_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis as sync_redis

    from gateway.webhooks.cli import main

    client = sync_redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
        dead = keys.WEBHOOK_DEAD.format(endpoint="core")
        for seq in (1, 2):
            fields = event_fields("S1", seq)
            client.xadd(dead, {**fields, "error": "HTTP 503", "attempts": "300", "time": "1.0"})
        names = ["core", "audit"]
        client.hset(keys.WEBHOOK_PARKED.format(endpoint="core"), "S1", 1)
        assert main(["dead", "--endpoint", "core"], names, redis_server.url) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 3 and "survey=S1 seq=1 type=survey.accepted" in out[0]
        assert out[2] == (
            "core: 2 dead letter(s), 2 shown; 1 survey(s) wait behind theirs until replayed"
        )
        assert "满意" not in "".join(out)  # no payloads
        assert main(["dead", "--json"], names, redis_server.url) == 0
        captured = capsys.readouterr()
        assert [json.loads(line)["seq"] for line in captured.out.splitlines()] == ["1", "2"]
        assert "core: 2 dead letter(s)" in captured.err  # the count, off the JSON lines
        assert main(["replay", "--endpoint", "nope"], names, redis_server.url) == 2
        assert main(["replay"], names, redis_server.url) == 0
        assert "core: replayed 2" in capsys.readouterr().out
        assert client.xlen(dead) == 0
        wait = keys.WEBHOOK_WAIT.format(endpoint="core", survey_id="S1")
        assert client.zrange(wait, 0, -1, withscores=True)[0][1] == 1.0
        assert client.zscore(keys.WEBHOOK_DUE.format(endpoint="core"), "S1") is not None
        assert main(["replay"], None, None) == 2  # no --config
        assert client.hlen(keys.WEBHOOK_PARKED.format(endpoint="core")) == 0
    finally:
        client.close()


def test_cli_says_how_many_dead_letters_there_are(
    redis_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis as sync_redis

    from gateway.webhooks.cli import main

    client = sync_redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
        dead = keys.WEBHOOK_DEAD.format(endpoint="core")
        for i in range(181):
            fields = event_fields(f"S{i}", 1)
            client.xadd(dead, {**fields, "error": "HTTP 503", "attempts": "9", "time": "1.0"})
        assert main(["dead"], ["core"], redis_server.url) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 101 and "survey=S99 " in out[99]
        assert out[100].startswith(
            "core: 181 dead letter(s), 100 shown (the oldest; 81 more: --limit N or --all)"
        )
        assert main(["dead", "--all"], ["core"], redis_server.url) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 182 and out[-1].startswith("core: 181 dead letter(s), 181 shown;")
        assert main(["dead", "--all", "--limit", "5"], ["core"], redis_server.url) == 2
    finally:
        client.close()


async def test_concurrency_per_endpoint_is_bounded(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    receiver.delay_s = 0.05
    w = worker(redis, endpoint(receiver, concurrency=4))
    async with running(w):
        await publish(redis, interleaved(40, range(1, 3)))
        await eventually(lambda: complete(receiver, 40, 2), "all events")
    assert_in_order(receiver, 40, 2)
    assert receiver.max_in_flight == 4


async def test_receiver_checks_signatures_and_obeys_control(receiver: WebhookReceiver) -> None:
    body = event_fields("S1", 1)["event"].encode()
    ts = int(time.time())
    good = {
        "webhook-id": "S1:1",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(SECRET, "S1:1", ts, body),
        "content-type": "application/json",
    }
    base = receiver.url.removesuffix("/webhooks")
    async with aiohttp.ClientSession() as http:
        bad = {**good, "webhook-signature": sign(SECRET, "S1:1", ts, body + b" ")}
        async with http.post(receiver.url, data=body, headers=bad) as r:
            assert r.status == 401
        async with http.post(f"{base}/_control", json={"action": "fail", "status": 500}) as r:
            assert r.status == 200
        async with http.post(receiver.url, data=body, headers=good) as r:
            assert r.status == 500
        async with http.post(f"{base}/_control", json={"action": "ok"}) as r:
            assert r.status == 200
        for _ in range(2):
            async with http.post(receiver.url, data=body, headers=good) as r:
                assert r.status == 200
        async with http.get(f"{base}/_events") as r:
            got = await r.json()
    assert (got["rejected"], got["refused"], got["received"], got["duplicates"]) == (1, 1, 1, 1)
    assert [e["seq"] for e in got["events"]["S1"]] == [1]


async def test_receiver_runs_as_a_program() -> None:
    import sys

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.webhooks.receiver",
        "--port",
        str(port),
        "--secret",
        SECRET,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def listening() -> bool:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    try:
        await eventually(listening, "the receiver listening", within_s=20)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/_events?events=0") as r,
        ):
            assert json.loads(await r.read())["received"] == 0
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_delivered_marks_of_expired_surveys_are_forgotten(redis: aioredis.Redis) -> None:
    from gateway.webhooks.queue import EndpointQueue

    q = EndpointQueue(redis, "core")
    await redis.hset(q.delivered, mapping={f"gone{i}": 3 for i in range(50)})
    await redis.hset(q.delivered, mapping={"live": 2, "queued": 4, "due": 1, "failing": 7})
    await redis.hset(keys.SURVEY.format(survey_id="live"), "state", "closed")
    await redis.zadd(q.wait_key("queued"), {b"{}": 5})
    await redis.zadd(q.due, {"due": 1.0})
    await redis.hset(q.retry, "failing", "{}")
    cursor, pruned = await q.prune("0", count=10)
    while cursor != "0":
        cursor, more = await q.prune(cursor, count=10)
        pruned += more
    assert pruned == 50
    assert sorted(await redis.hkeys(q.delivered)) == [b"due", b"failing", b"live", b"queued"]


async def test_backlog_in_long_backoff_drains_as_soon_as_the_receiver_is_back(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # Backoffs of 75 s and more: only the wake-up at the first success can deliver
    # these within the test's wait.
    receiver.fail(503)
    w = worker(redis, endpoint(receiver, backoff_initial_s=100.0, backoff_max_s=900.0))
    async with running(w):
        await publish(redis, interleaved(10, range(1, 3)))
        await eventually(lambda: receiver.refused >= 10, "a failure for each survey")
        receiver.ok()
        await publish(redis, [("N0", 1)])  # a new survey: tried at once, succeeds
        await eventually(lambda: complete(receiver, 10, 2), "the whole backlog")
    assert_in_order(receiver, 10, 2)
    assert receiver.seqs("N0") == [1]


REPO = str(Path(__file__).resolve().parents[2])
KILLABLE_WORKER = """
import asyncio, sys
import redis.asyncio as aioredis
from gateway.config import WebhookEndpoint
from gateway.webhooks.worker import WebhookWorker

async def main() -> None:
    client = aioredis.Redis.from_url(sys.argv[1])
    ep = WebhookEndpoint(name="core", url=sys.argv[2], secret=sys.argv[3], timeout_s=1.0)
    await WebhookWorker(client, [ep], consumer="doomed", lease_s=1.0).run(asyncio.Event())

asyncio.run(main())
"""


async def test_kill_9_of_a_worker_process_loses_nothing(
    redis_server: Any, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    import signal
    import sys

    receiver.delay_s = 0.1  # requests are in flight when the process dies
    await publish(redis, interleaved(30, range(1, 5)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLABLE_WORKER,
        redis_server.url,
        receiver.url,
        SECRET,
        cwd=REPO,
    )
    try:
        await eventually(lambda: receiver.requests >= 10, "the doomed worker's requests")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    receiver.ok()
    heir = worker(redis, endpoint(receiver, timeout_s=1.0), consumer="heir", claim_idle_s=0.5)
    async with running(heir):
        await publish(redis, interleaved(30, range(5, 7)))
        await eventually(lambda: complete(receiver, 30, 6), "all events after kill -9")
    assert_in_order(receiver, 30, 6)


async def test_a_restart_under_the_same_name_takes_its_leases_back_at_once(
    redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # Ten-minute leases: only giving back the dead life's leases finishes in time.
    ep = endpoint(receiver)
    receiver.delay_s = 0.2
    first = worker(redis, ep, consumer="w1", lease_s=600)
    task = asyncio.create_task(first.run(asyncio.Event()))
    await publish(redis, interleaved(20, range(1, 4)))
    await eventually(lambda: receiver.requests >= 5, "requests in flight")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    receiver.ok()
    async with running(worker(redis, ep, consumer="w1", lease_s=600)):
        await eventually(lambda: complete(receiver, 20, 3), "all events after the restart")
    assert_in_order(receiver, 20, 3)


async def test_works_with_a_decoding_client_as_the_service_uses(
    redis_server: Any, redis: aioredis.Redis, receiver: WebhookReceiver
) -> None:
    # gateway/service.py connects with decode_responses=True: event JSON comes back as
    # str and must go out byte for byte as stored (signature and Chinese text intact).
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        w = worker(client, endpoint(receiver, max_age_s=0.3))
        async with running(w):
            await publish(client, interleaved(5, range(1, 3)))
            await eventually(lambda: complete(receiver, 5, 2), "events")
            receiver.fail(503)
            await publish(client, [("S0", 3)])
            await eventually(lambda: w.stats()["core"]["dead_lettered"] == 1, "a dead letter")  # type: ignore[index]
            receiver.ok()
            assert await replay(client, "core") == 1
            await eventually(lambda: receiver.seqs("S0") == [1, 2, 3], "the replayed event")
            await eventually(lambda: w.stats()["core"]["backlog"] == 0, "gauges")  # type: ignore[index]
        assert [receiver.seqs(f"S{i}") for i in range(5)] == [[1, 2, 3]] + [[1, 2]] * 4
        assert receiver.out_of_order == 0 and receiver.rejected == 0
        assert receiver.events["S0"][0]["payload"]["text"] == "满意"
    finally:
        await client.aclose()


async def test_an_event_whose_id_cannot_be_a_header_is_dead_lettered_at_once(
    redis: aioredis.Redis, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    # A survey id ending in "\n" was once accepted at intake; its events' ids cannot
    # be a webhook-id header, aiohttp refused the request, and since that was not
    # counted as an attempt the survey was retried forever and never dead-lettered.
    # The API refuses such ids now, so the events are written to the stream directly.
    for seq in (1, 2):
        await redis.xadd(keys.EVENTS, event_fields("S9\n", seq))  # type: ignore[arg-type]
    await publish(redis, [("S1", 1), ("S1", 2)])
    w = worker(redis, endpoint(receiver))
    async with running(w):
        await eventually(lambda: receiver.seqs("S1") == [1, 2], "the other survey's events")
        await eventually(lambda: w.stats()["core"]["dead_lettered"] == 1, "the dead letter")  # type: ignore[index]
        # its survey is parked: seq 2 waits behind seq 1 until a replay (order kept)

        async def parked() -> bool:
            return (await count_dead(redis, "core")).parked_surveys == 1

        await eventually(parked, "the survey parked")
    stats: dict[str, Any] = w.stats()["core"]  # type: ignore[assignment]
    assert stats["failed_requests"] == 1  # one attempt, counted
    (dead,) = await list_dead(redis, "core")
    assert dead["sid"] == "S9\n" and int(dead["seq"]) == 1 and int(dead["attempts"]) == 1
    assert "cannot be a header" in dead["error"] and "\\n" in dead["error"]
    assert (await count_dead(redis, "core")).parked_surveys == 1
    assert int(await redis.hget(keys.STATS, "webhook:core:failed") or 0) == 1
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]
    assert receiver.rejected == 0 and "S9\n" not in receiver.events
