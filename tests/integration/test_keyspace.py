"""Every key the gateway writes is named in gateway/store/keys.py, proven on a real Redis.

A broad flow drives the whole function library and the Python writers beside it (the
survey store, the callback store, ASR jobs, the recording index, the inbound stream and
the webhook queue), then SCANs the whole keyspace: each key must belong to exactly one
name of keys.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from asr import jobs
from gateway.config import DeskSettings, DeskUser
from gateway.desk.auth import Sessions
from gateway.dialer.store import CallbackStore
from gateway.store import keys, library, status, streams
from gateway.store.surveys import Store
from gateway.webhooks.intake import parse_entry
from gateway.webhooks.queue import EndpointQueue
from gateway.webhooks.sender import FreshBatch
from recordings.index import index_recording
from sms.inbound import store_pdu
from tests.keyspace import families, family

pytestmark = pytest.mark.integration

UNIT = "330602"
SMSC = "default"
ENDPOINT = "core"

# Families the flow below must reach (the SCAN would prove little on a thin keyspace).
# Not reached: ASR_LAST_ERROR (the ASR worker's retry note, a plain HSET in Python).
# DESK_CHANNEL is a pub/sub channel: it never is a key.
EXPECTED = set(families()) - {"ASR_LAST_ERROR", "DESK_CHANNEL"}


async def intake(store: Store, sid: str, phone: str, **kw: object) -> str:
    args: dict[str, object] = {"cap_s": 3600.0, "defer_at": None, "ttl_s": 86400}
    args.update(kw)
    r = await store.intake(sid, phone, {"unit_code": UNIT}, accepted_payload={"n": 1}, **args)
    return r.state


async def sent(store: Store, sid: str, mids: list[str]) -> None:
    job = await store.send_begin(sid, ext_digits=4, ext_ttl_s=3600, reply_window_s=3600)
    assert job is not None, sid
    for i, mid in enumerate(mids, 1):
        await store.part_submitted(
            sid,
            i,
            len(mids),
            smsc=SMSC,
            message_id_key=mid,
            message_id=mid,
            bind="b1",
            msgid_ttl_s=3600,
            dlr_timeout_s=3600,
            reply_window_s=3600,
        )


def receipt(state: str = "delivered") -> dict[str, object]:
    return {"message_id": "x", "state": state, "final": True, "error": None, "stat": "DELIVRD"}


async def survey_flow(store: Store) -> None:
    # rejected (opted out, too frequent), deferred then released, queued and sent
    await store.redis.sadd(keys.OPTOUT, "13900000009")
    assert await intake(store, "K-OPT", "13900000009") == "rejected"
    assert await intake(store, "K-1", "13900000001") == "queued"
    assert await intake(store, "K-FREQ", "13900000001") == "rejected"
    assert await intake(store, "K-DEF", "13900000002", defer_at=time.time() - 1) == "deferred"
    assert await store.release_due() == 1
    assert await intake(store, "K-LATER", "13900000003", defer_at=time.time() + 3600) == (
        "deferred"
    )
    await sent(store, "K-1", ["a1", "a2"])
    # a receipt before its submit_sm_resp is held, then orphaned; one waits still
    assert (await store.receipt(SMSC, "zz1", receipt(), 3600))[0] == "held"
    assert await store.sweep(orphan_after_s=0.0) >= 1
    assert (await store.receipt(SMSC, "zz2", receipt(), 3600))[0] == "held"
    for mid in ("a1", "a2"):
        await store.receipt(SMSC, mid, receipt(), 3600)
    assert (await store.get_survey("K-1") or {})["state"] == "delivered"
    # a refused part; a long MO message still missing a part, and one flushed
    await sent(store, "K-DEF", ["b1"])
    assert await store.part_failed("K-DEF", 1, 1, "refused", 0x45) == "undeliverable"
    mo = keys.MO_PARTS.format(smsc=SMSC, source="13900000001", ref="8-7", total=2)
    assert await store.mo_part(mo, 1, "不", 2, 3600) is None
    gone = keys.MO_PARTS.format(smsc=SMSC, source="13900000002", ref="8-8", total=3)
    assert await store.mo_part(gone, 1, "满", 3, 3600) is None
    assert [k for k, _ in await store.mo_flush(older_than_s=-1.0, limit=1)] == [mo]
    await store.mo_part(mo, 1, "不", 2, 3600)
    # an unsatisfied reply (a callback), one that matches nothing, an opt-out
    sid, how = await store.find_open_survey("13900000001", "", 3600)
    assert (sid, how) == ("K-1", "latest_open")
    assert (await store.reply("K-1", {"text": "3"}, "unsatisfied", False, "13900000001"))[0] == (
        "callback_pending"
    )
    assert await store.unmatched({"text": "TD"}, "13900000077", True) == 1
    for sid, phone in (("K-2", "13900000004"), ("K-3", "13900000005")):
        assert await intake(store, sid, phone) == "queued"
        await sent(store, sid, [f"c-{sid}"])
        assert (await store.reply(sid, {"text": "3"}, "unsatisfied", False, phone))[0] == (
            "callback_pending"
        )


async def callback_flow(store: Store) -> None:
    cb = CallbackStore(store)
    assert await cb.promote((UNIT,), "") == 3
    # K-1 and K-2 are dialled, K-3 waits on its unit's ready queue
    first, second = await cb.claim(f"unit:{UNIT}", ["cb-1", "cb-2"], "dialer-1")
    assert (first.survey_id, second.survey_id) == ("K-1", "K-2")
    asr_job = {"job_id": "cb-1:1", "survey_id": first.survey_id, "callback_id": "cb-1",
               "legs": {"mixed": "/var/lib/minyi/recordings/cb-1.wav"}}  # fmt: skip
    assert await cb.result(first, "called", {"outcome": "answered"}, {}, asr_job=asr_job) == (
        "stored"
    )
    assert (await cb.disposition("cb-1", {"upheld": True}))[0] == "stored"
    # a second callback: K-1 waits in cb:wait
    assert (await cb.recheck(first.survey_id, {"note": "二次回访"}, "agent", 7))[0] == "stored"
    await cb.heartbeat("dialer-1", 60)
    assert await cb.lease("127.0.0.1:5038", "dialer-1", 60)
    assert second.callback_id == "cb-2"  # in cb:active: a call in progress
    # the agents' presence, as the dialer publishes it
    assert await cb.agent_state("agent1", "free", {"units": [UNIT]}) == 1
    # agent1 took it: their desk's call; a login session and its event on the feed
    assert await cb.desk_call("pop", "cb-2", "agent1") == "K-2"
    user = DeskUser(id="agent1", pin_hash="scrypt$1$1$1$x$y", role="agent")
    sessions = Sessions(store.redis, DeskSettings(users=(user,)))
    await sessions.open(user)
    await sessions.failed("agent2")
    await library.fcall(store.redis, "minyi_desk_event", "desk.login", "t", '{"user":"agent1"}')


async def asr_and_recordings(store: Store) -> None:
    # the transcript of K-2's call (kept with the survey) and a dead-lettered job
    now = "2026-12-02T12:00:00.000+08:00"
    payload = {"job_id": "cb-2:1", "callback_id": "cb-2", "legs": {}}
    assert await jobs.record_outcome(store.redis, "K-2", now, jobs.TRANSCRIPT, payload, "cb-2:1")
    dead = {"job": "{}", "entry_id": "1-0", "reason": "poison", "detail": "x", "attempts": "3"}
    failed = {"job_id": "cb-9:1", "reason": "poison"}
    await jobs.record_outcome(
        store.redis, "K-2", now, jobs.TRANSCRIPT_FAILED, failed, "cb-9:1", dead_letter=dead
    )
    legs = {"mixed": "/var/lib/minyi/recordings/cb-3.wav"}
    await jobs.enqueue_job(store.redis, {"job_id": "cb-3:1", "survey_id": "K-2", "legs": legs})
    await index_recording(store.redis, "cb-2", "K-2", "cb-2", ["cb-2.wav"], time.time())
    await index_recording(store.redis, "cb-8", "K-1", "cb-8", ["cb-8.wav"], time.time())
    # retention forgets a recording through the library (recordings/retention.py)
    deleted = await store.redis.fcall("minyi_recording_deleted", 0, "cb-8", now, "{}")  # type: ignore[misc]
    assert deleted == "emitted"
    await store_pdu(store, "b1", SMSC, bytes(16))  # a raw deliver_sm, not yet handled


async def webhook_flow(redis: aioredis.Redis) -> None:
    q = EndpointQueue(redis, ENDPOINT, owner="w1")
    await q.ensure_group()
    read = await streams.read(redis, keys.EVENTS, q.group, "w1", count=10_000, block_ms=None)
    entries = []
    for entry_id, fields in read:
        parsed = parse_entry(fields)
        assert not isinstance(parsed, str), parsed
        entries.append((entry_id, *parsed))
    scheduled, _, late = await q.intake(entries, 0, 30.0)
    assert scheduled >= 5 and late == []
    heads = await q.claim(100, 30.0)
    # K-1's head dead-letters (max age 0), K-2 is delivered, K-FREQ is retried later,
    # K-OPT stays leased; the dead letter is replayed, the marks pruned.
    by_sid = {h.sid: h for h in heads}
    dead = await q.fail(by_sid["K-1"], "HTTP 500", 0.0, 0.0, 30.0)
    assert dead.dead
    step = await q.done(by_sid["K-2"], 30.0, 0)
    while step.head is not None:
        step = await q.done(step.head, 30.0, 0)
    # K-FREQ went out in a batch that failed: stored, K-FREQ pinned to it for the retry
    freq = by_sid["K-FREQ"]
    batch = FreshBatch("batch_k", b'{"type":"batch"}', (("K-FREQ", freq.seq, freq.seqs[-1]),))
    assert not (await q.fail(freq, "HTTP 503", 60.0, 3600.0, 30.0, pin=batch)).dead
    assert (await q.reread(by_sid["K-OPT"], 30.0)).head is not None
    assert await q.release(by_sid["K-DEF"].sid, by_sid["K-DEF"].token, 60.0)
    dead_ids = [streams.text(e[0]) for e in await redis.xrange(q.dead)]
    assert await q.replay_ids(dead_ids) == 1
    await q.fail(by_sid["K-1"], "HTTP 500", 0.0, 0.0, 30.0)  # dead again: the stream stays
    assert (await q.prune("0"))[0] == "0"
    # a process's status report (gateway/store/status.py)
    await status.publish(redis, "gw-1", {"binds": {"b1": {"bound": True}}})


async def function_libraries(redis: aioredis.Redis) -> list[str]:
    """Names of the loaded function libraries (FUNCTION LIST: flat pairs in RESP2)."""
    out = []
    for lib in await redis.function_list():
        pairs: dict[Any, Any] = (
            lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2], strict=True))
        )
        out.append(streams.text(pairs.get("library_name", pairs.get(b"library_name"))))
    return sorted(out)


async def test_every_key_the_gateway_writes_is_named_in_keys_py(store: Store) -> None:
    await survey_flow(store)
    await callback_flow(store)
    await asr_and_recordings(store)
    await webhook_flow(store.redis)

    seen: dict[str, list[str]] = {}
    unnamed, ambiguous = [], []
    async for key in store.redis.scan_iter(count=1000):
        names = family(key)
        if not names:
            unnamed.append(key)
        elif len(names) > 1:
            ambiguous.append((key, names))
        else:
            seen.setdefault(names[0], []).append(key)
    assert unnamed == [], "keys written that keys.py does not name"
    assert ambiguous == []
    assert EXPECTED - set(seen) == set(), "the flow no longer reaches these: widen it"


async def test_a_redis_that_lost_the_library_gets_it_back_at_the_next_call(
    redis: aioredis.Redis, store: Store
) -> None:
    await redis.function_flush()
    q = EndpointQueue(redis, ENDPOINT, owner="w1")
    assert await q.claim(10, 30.0) == []  # loads the library, then claims
    await redis.function_flush()
    assert (await intake(store, "K-1", "13900000001")) == "queued"  # pipelined
    await redis.function_flush()
    assert await CallbackStore(store).lease("127.0.0.1:5038", "dialer-1", 60)  # direct
    assert await function_libraries(redis) == [library.LIBRARY_NAME]
