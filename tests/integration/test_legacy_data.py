"""Data stored by the old version is read, and moved on, by the new one.

tests/data/legacy/dump.rdb was written by the gateway at commit ec562f9 (the layout
before the packages) and manifest.json says what it holds; make_dump.py beside them
tells how they were made. Each test starts a redis-server on a copy of the dump, loads
the new function library over the old one (FUNCTION LOAD REPLACE of the same library
name, as a new gateway does at start) and checks that every survey reads back as the
old code wrote it, that surveys go on through the new code, and that the webhook feed
resumes where the old workers left it.

Deadlines and TTLs in the dump were stretched to ten years when it was made (the
manifest's ``ttl_stretched``), so nothing in it expires or falls due by the calendar;
the dialer-B heartbeat and Asterisk lease never expire for the same reason, and are
deleted here before a new dialer takes the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from asr import jobs
from gateway.dialer.store import CallbackStore, claim_from_active
from gateway.store import keys, streams
from gateway.store.surveys import Store
from gateway.webhooks.receiver import WebhookReceiver
from gateway.webhooks.worker import WebhookEndpoint, WebhookWorker, list_dead
from tests.keyspace import family
from tests.servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy"
MANIFEST: dict[str, Any] = json.loads((LEGACY / "manifest.json").read_text(encoding="utf-8"))
TZ = ZoneInfo(MANIFEST["timezone"])
SURVEYS: dict[str, dict[str, Any]] = MANIFEST["surveys"]
SMSC = "default"
UNIT = "330602"
PBX = "127.0.0.1:5038"
# make_dump.py's webhook secret (any valid one would do: worker and receiver share it)
SECRET = "whsec_bWlueWktbGVnYWN5LWR1bXAtc2VjcmV0LTAxMjM0NTY3"
# The dump's reply windows are ten years long: a window as long finds its open surveys.
WINDOW_S = float(MANIFEST["fixture_ttl_s"])
WAIT_S = 30.0


@pytest.fixture
def legacy_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a copy of the dump. AOF off: with it on, a fresh server would
    start from an empty AOF and ignore the RDB."""
    shutil.copy(LEGACY / "dump.rdb", tmp_path / "dump.rdb")
    server = RedisServer(tmp_path, "--dbfilename", "dump.rdb", "--appendonly", "no")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def old_redis(legacy_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client (replies as str, as the service's) on the dump as the old code left it."""
    client = aioredis.Redis.from_url(legacy_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def store(old_redis: aioredis.Redis) -> Store:
    """The new survey store on the dump, the new library loaded over the old one."""
    s = Store(old_redis, TZ)
    await s.load()
    return s


async def function_names(redis: aioredis.Redis) -> dict[str, set[str]]:
    """Library name -> its function names (FUNCTION LIST, RESP2 flat pairs)."""
    out = {}
    for lib in await redis.function_list():
        info = dict(zip(lib[::2], lib[1::2], strict=True))
        names = {dict(zip(f[::2], f[1::2], strict=True))["name"] for f in info["functions"]}
        out[info["library_name"]] = names
    return out


async def state(store: Store, sid: str) -> str:
    return (await store.get_survey(sid) or {}).get("state", "")


async def types(store: Store, sid: str) -> list[str]:
    return [e.type for e in await store.events(sid)]


# --- what the old code wrote ------------------------------------------------------------


async def test_the_dump_is_the_one_the_manifest_describes(old_redis: aioredis.Redis) -> None:
    found = {k: await old_redis.type(k) for k in await old_redis.keys("*")}
    assert found == MANIFEST["keys"]
    assert sorted(await function_names(old_redis)) == MANIFEST["function_libraries"]


async def test_the_new_library_replaces_the_old_one_of_the_same_name(
    old_redis: aioredis.Redis,
) -> None:
    old = (await function_names(old_redis))["minyi"]
    assert "minyi_intake" in old and "minyi_wh_intake" not in old
    await Store(old_redis, TZ).load()
    new = await function_names(old_redis)
    assert list(new) == ["minyi"]
    assert old <= new["minyi"] and "minyi_wh_intake" in new["minyi"]


async def test_every_old_key_has_a_name_in_keys_py(old_redis: aioredis.Redis) -> None:
    # The manifest lists keys the old keys.py did not name (transcripts, the unmatched
    # reply counter): they have a name now, and every key exactly one.
    assert MANIFEST["keys_outside_keys_py"]
    for key in MANIFEST["keys"]:
        assert len(family(key)) == 1, key


async def test_every_survey_reads_back_as_the_old_code_wrote_it(store: Store) -> None:
    for sid, expected in SURVEYS.items():
        assert await store.get_survey(sid) == expected["fields"], sid
        events = await store.events(sid)
        assert [e.type for e in events] == expected["event_types"], sid
        assert [e.seq for e in events] == list(range(1, expected["events"] + 1)), sid
        assert {e.survey_id for e in events} == {sid}
        assert [e.id for e in events] == [f"{sid}:{e.seq}" for e in events]
        transcripts = await store.redis.hkeys(keys.SURVEY_TRANSCRIPTS.format(survey_id=sid))
        assert sorted(transcripts) == expected["transcripts"], sid
    for phone in MANIFEST["optout"]:
        assert await store.is_opted_out(phone)
    assert await store.stats() == MANIFEST["stats"]


# --- surveys move on --------------------------------------------------------------------


async def test_a_receipt_delivers_a_survey_the_old_code_submitted(store: Store) -> None:
    sid = "L-SUBMITTED-1"
    fields = SURVEYS[sid]["fields"]
    receipt = {"message_id": "", "state": "delivered", "final": True, "error": None}
    outcomes = []
    for part in (1, 2):
        mid = fields[f"p{part}:mid"]
        outcomes.append(await store.receipt(SMSC, mid, {**receipt, "message_id": mid}, 3600))
    assert outcomes == [("part", sid), ("final", sid)]
    assert await state(store, sid) == "delivered"
    assert (await store.events(sid))[-1].seq == SURVEYS[sid]["events"] + 1


async def test_replies_find_the_open_surveys_of_the_old_code(store: Store) -> None:
    # by extension code (扩展码), then by the number's latest open survey
    ext = SURVEYS["L-EXT-2"]["fields"]
    assert await store.find_open_survey(ext["phone"], ext["ext"], WINDOW_S) == (
        "L-EXT-2",
        "extension_code",
    )
    assert await store.reply("L-EXT-2", {"text": "1"}, "satisfied", False, ext["phone"]) == (
        "closed",
        "delivered",
    )
    phone = SURVEYS["L-DELIVERED-1"]["phone"]
    sid, how = await store.find_open_survey(phone, "", WINDOW_S)
    assert (sid, how) == ("L-DELIVERED-1", "latest_open")
    assert (await store.reply(sid, {"text": "3"}, "unsatisfied", False, phone))[0] == (
        "callback_pending"
    )
    # a long reply whose second part never came is flushed as it is
    [(mo_key, parts)] = await store.mo_flush(older_than_s=0.0)
    assert mo_key.startswith(keys.PREFIX + "mo:") and list(parts) == [1]


async def test_the_new_sender_takes_the_old_send_queue(store: Store) -> None:
    stream, group = keys.SMS_QUEUE, keys.SMS_GROUP
    assert MANIFEST["sms_queue"] == {"pending_in_group": ["L-QUEUED-1"], "unread": ["L-QUEUED-2"]}
    # what a restarted sender under the old consumer name reads first: its own pending
    pending = await streams.pending(store.redis, stream, group, "gw-1")
    assert [f["sid"] for _, f in pending] == ["L-QUEUED-1"]
    unread = await streams.read(store.redis, stream, group, "gw-1", block_ms=None)
    assert [f["sid"] for _, f in unread] == ["L-QUEUED-2"]
    again = await store.send_begin("L-QUEUED-1", 4, 3600, WINDOW_S)
    first = await store.send_begin("L-QUEUED-2", 4, 3600, WINDOW_S)
    assert again is not None and again.attempt == 2  # it may have gone out once: resent
    assert first is not None and first.attempt == 1
    assert (await types(store, "L-QUEUED-1"))[-1] == "sms.resent"
    # the extension codes go on from the old counter
    assert (again.ext, first.ext) == ("0003", "0004")
    for sid in ("L-QUEUED-1", "L-QUEUED-2"):
        result = await store.part_submitted(
            sid,
            1,
            1,
            smsc=SMSC,
            message_id_key=f"new-{sid}",
            message_id=f"new-{sid}",
            bind="cmcc-1",
            msgid_ttl_s=3600,
            dlr_timeout_s=3600,
            reply_window_s=3600,
        )
        assert result == "submitted" and await state(store, sid) == "submitted"


async def test_callbacks_go_on_from_the_old_queues(store: Store) -> None:
    cb = CallbackStore(store)
    # What waits in cb:wait and is due (the retry is due 30 min after the dump was made):
    # the unsatisfied reply not yet promoted, the retry, the second callback; the one of
    # an unknown unit is parked again.
    wait: dict[str, float] = MANIFEST["callbacks"]["wait"]
    due = {sid for sid, at in wait.items() if at <= time.time()}
    assert {"L-CBPENDING-1", "L-RECHECK-1", "L-UNROUTABLE-1"} <= due
    assert await cb.promote((UNIT,), "") == len(due) - 1
    ready = await store.redis.zrange(keys.CB_READY.format(queue=f"unit:{UNIT}"), 0, -1)
    assert ready[0] == "L-RECHECK-1"  # priority first: the second callback's 7
    normal = {*due, "L-CBREADY-1"} - {"L-RECHECK-1", "L-UNROUTABLE-1"}  # then the oldest
    assert ready[1:] == sorted(normal, key=lambda sid: float(SURVEYS[sid]["fields"]["cb_created"]))
    assert await store.redis.zscore(keys.CB_WAIT, "L-UNROUTABLE-1")
    claims = await cb.claim(f"unit:{UNIT}", ["cb-new-1", "cb-new-2"], "dialer-C")
    assert [(c.survey_id, c.origin) for c in claims] == [
        ("L-RECHECK-1", "recheck"),
        (ready[1], "callback_pending"),
    ]
    assert [await state(store, c.survey_id) for c in claims] == ["calling", "calling"]
    [ivr] = await cb.claim("ivr", ["cb-new-3"], "dialer-C")
    assert (ivr.survey_id, ivr.kind) == ("L-NOREPLY-IVR-1", "ivr")

    # The call dialer-A placed before it died is still active; its result is stored.
    active = await cb.active()
    [(cid, record)] = [(k, v) for k, v in active.items() if v["sid"] == "L-CALLING-1"]
    assert record == MANIFEST["callbacks"]["active"][cid]
    adopted = claim_from_active(cid, record)
    outcome = {"callback_id": cid, "outcome": "no_answer"}
    assert await cb.result(adopted, "callback_pending", outcome, {}, retry_at=0.0) == "stored"
    assert await state(store, "L-CALLING-1") == "callback_pending"

    # An agent's verdict on the transcribed call; a second callback of a closed survey.
    last = SURVEYS["L-TRANSCRIBED-1"]["fields"]["cb_last"]
    assert await cb.disposition(last, {"upheld": True}) == ("stored", "L-TRANSCRIBED-1", "closed")
    assert await cb.recheck("L-CLOSED-1", {"note": "二次回访"}, "agent", 7) == (
        "stored",
        "recheck",
    )

    # dialer-B's heartbeat and lease never expire in the fixture: it must be told gone
    assert not await cb.lease(PBX, "dialer-C", 15)
    await store.redis.delete(
        keys.DIALER_OWNER.format(owner="dialer-B"), keys.DIALER_LEASE.format(pbx=PBX)
    )
    assert await cb.lease(PBX, "dialer-C", 15)


async def test_the_old_pending_transcription_job_ends_in_its_event(store: Store) -> None:
    [entry] = MANIFEST["streams"][keys.ASR_JOBS]["groups"][keys.ASR_GROUP]["pending_entries"]
    [(_, fields)] = await store.redis.xrange(keys.ASR_JOBS, entry, entry)
    job = jobs.parse_job(fields["job"])
    assert job.survey_id == "L-CALLED-1"
    assert await store.redis.hget(keys.ASR_LAST_ERROR, entry)  # its retryable failure
    payload = {"job_id": job.job_id, "callback_id": job.callback_id, "legs": {}}
    now = "2026-12-03T09:00:00.000+08:00"
    outcome = await jobs.record_outcome(
        store.redis, job.survey_id, now, jobs.TRANSCRIPT, payload, job.job_id
    )
    assert outcome == "transcribed"
    assert (await types(store, "L-CALLED-1"))[-2:] == ["transcript", "survey.transcribed"]
    assert await store.redis.hkeys(keys.SURVEY_TRANSCRIPTS.format(survey_id="L-CALLED-1")) == [
        job.callback_id
    ]


# --- the webhook feed resumes -------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(w: WebhookWorker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_webhook_feed_resumes_after_the_old_high_water_marks(store: Store) -> None:
    hook = MANIFEST["webhook"]
    delivered: dict[str, int] = hook["delivered"]
    # Each survey's events after its mark: those waiting after a 500 (one survey leased
    # to a consumer that crashed), and those the group has not read yet.
    expected = {
        sid: list(range(delivered.get(sid, 0) + 1, s["events"] + 1)) for sid, s in SURVEYS.items()
    }
    expected = {sid: seqs for sid, seqs in expected.items() if seqs}
    waiting = {sid: seqs for sid, seqs in hook["waiting"].items()}
    assert {**waiting, **hook["stream_unread"]} == expected

    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    try:
        endpoint = WebhookEndpoint(
            name=hook["endpoint"], url=receiver.url, secret=SECRET, timeout_s=5.0
        )
        worker = WebhookWorker(store.redis, [endpoint], consumer="gw-1", stats_interval_s=0.1)
        async with running(worker):
            await eventually(
                lambda: all(len(receiver.seqs(sid)) >= len(seqs) for sid, seqs in expected.items()),
                "the waiting events",
                WAIT_S,
            )
            await asyncio.sleep(0.2)  # nothing more may come
    finally:
        await receiver.close()

    assert {sid: receiver.seqs(sid) for sid in receiver.events} == expected
    assert receiver.out_of_order == 0 and receiver.rejected == 0
    marks = await store.redis.hgetall(keys.WEBHOOK_DELIVERED.format(endpoint="core"))
    assert {sid: int(v) for sid, v in marks.items()} == {
        sid: s["events"] for sid, s in SURVEYS.items() if sid in delivered or sid in expected
    }
    # the old dead letter is still listed, untouched
    dead = await list_dead(store.redis, "core")
    assert [(d["id"], d["sid"], int(d["seq"]), d["type"], d["error"]) for d in dead] == [
        (e["id"], e["sid"], e["seq"], e["type"], e["error"]) for e in hook["dead_letter_entries"]
    ]
