"""The high-availability run of issue 14 on real processes, shared by
tests/integration/test_ha.py (small) and bench/ha.py (large).

Redis is a master, a replica and three sentinels (devstack/sentinel.py); the gateway is
three processes found through the sentinels — ``api`` alone, and two ``sms,webhooks``
processes sharing one bind name and credentials at the SMS center (the project's
simulator, in this process, as is the webhook receiver, which de-duplicates on ``id``).
Surveys are posted in batches, as the core system would (a batch that fails is posted
again until it is answered), while the faults come, each once a share of the surveys
is answered:

- ``sms``: SIGKILL of the busier sms process; it stays down until the other has taken
  over everything it left pending (the takeover time), then starts again;
- ``master``: SIGKILL of the master; once the sentinels promote the replica, the old
  master starts again from its AOF — a master by its own account, until Sentinel makes
  it a replica (what it took meanwhile is flushed);
- ``failover``: ``SENTINEL FAILOVER``.

Then every answered survey is waited for on the feed (its receipt), and :func:`count`
says what went wrong, by the issue's measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from devstack.localstack import (
    SECRET,
    SMPP_PASSWORD,
    SMPP_USER,
    TOKEN,
    LocalStack,
    instance_of,
    recent_service_time,
)
from devstack.sentinel import ReplicatedRedis
from gateway.store import connection, keys
from gateway.webhooks.receiver import WebhookReceiver
from smsc.simulator import SmscSimulator

FAULTS = ("sms", "master", "failover")
# A survey made it through when the feed has its receipt.
THROUGH = frozenset({"survey.delivered", "survey.undeliverable"})
ENDPOINT = "core"
# The sms fault: the SMS center answers this late while the sms processes gather
# unacknowledged entries (until one holds this many, or a thirtieth of the run's
# surveys; or 30 s pass), then that one is killed: some of them parts on the wire, most
# read and not yet sent. What it can hold is bounded by what it takes of one post of
# `batch` surveys before answers come back: a twelfth of the test's run (50 of 600, one
# whole post) sat at that ceiling and was missed by one in a clean run.
SLOW_ANSWER_S = 5.0
KILL_WITH_PENDING = 200
BUSY_SHARE = 30
SMS_PROCESSES = ("gateway-sms-1", "gateway-sms-2")


@dataclass
class Run:
    """What one run saw."""

    answered: set[str] = field(default_factory=set)  # survey ids answered 201/200
    phones: dict[str, str] = field(default_factory=dict)  # survey id -> phone
    failed_posts: int = 0
    outages: list[float] = field(default_factory=list)  # seconds the API failed, each time
    takeover_s: float | None = None
    pending_at_kill: int = 0
    timeline: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        """A line of the run's timeline (seconds since start)."""
        self.timeline.append(f"{time.monotonic() - self.started:7.2f}s {what}")


class HaStack(LocalStack):
    """The local stack with the gateway's Redis found through ``rr``'s sentinels."""

    def __init__(self, workdir: Path, rr: ReplicatedRedis) -> None:
        super().__init__(workdir)
        self.rr = rr

    @property
    def redis_url(self) -> str:
        return self.rr.url


def survey(i: int) -> tuple[str, str, dict[str, Any]]:
    """Survey ``i``: its id, its phone, its request body."""
    sid, phone = f"H{i}", f"137{i:08d}"
    body = {
        "survey_id": sid,
        "phone": phone,
        "service_type": "110",
        "unit_code": "330602",
        "officer_id": "P1001",
        "occurred_at": recent_service_time(),
        "template": "default",
    }
    return sid, phone, body


async def run(
    workdir: Path,
    surveys: int,
    *,
    claim_idle_s: float = 5.0,
    faults: Sequence[str] = FAULTS,
    batch: int = 50,
    rate: float = 50.0,
    tps: float = 500.0,
    settle_s: float = 180.0,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The whole run; returns :func:`count`'s counts (with the run's timeline)."""
    rr = ReplicatedRedis(workdir / "redis")
    rr.start()
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    smsc.set_behaviour(max_tps=tps * 2)
    stack = HaStack(workdir, rr)
    stack.smpp_port = smsc.port
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    redis = connection.connect(rr.url)
    state = Run()
    try:
        cfg = stack.gateway_config(
            receiver.url,
            window=64,
            tps=tps,
            root=f"claim_idle_s = {claim_idle_s:g}\n",
            extra="\n[redis]\nwait_timeout_ms = 500\n",
        )
        stack.start_gateway(cfg, "api", name="gateway-api")
        for name in SMS_PROCESSES:
            stack.start_gateway(cfg, "sms,webhooks", name=name)
        await smsc.wait_until(lambda: len(smsc.binds()) >= 2, 30)
        state.note("started: api, sms-1, sms-2 (one bind name, two sessions)")
        marks = [(i + 1) * surveys // (len(faults) + 1) for i in range(len(faults))]

        async def fault_sequence() -> None:
            # one after the other, each once its share of the surveys is answered
            for fault, mark in zip(faults, marks, strict=True):
                await until(functools.partial(answered, state, mark), "the fault's mark", 3600)
                await inject(fault, stack, rr, redis, smsc, state, say, surveys)

        sequence = asyncio.create_task(fault_sequence())
        async with aiohttp.ClientSession() as http:
            await post_all(http, stack.api, surveys, batch, rate, state)
        say(f"posted: {len(state.answered)} answered")
        await sequence
        # woken by each event on the feed (the SMS center records nothing after the last
        # receipt until its next enquire_link)
        await receiver.wait_until(
            lambda: all(through(receiver, sid) for sid in state.answered), settle_s
        )
        state.note("every answered survey has its receipt on the feed")
        return await count(redis, smsc, receiver, state)
    except TimeoutError:
        state.note("gave up waiting for the feed")
        return await count(redis, smsc, receiver, state)
    finally:
        stack.stop_all()
        await redis.aclose()
        await receiver.close()
        await smsc.stop()
        rr.stop()


def through(receiver: WebhookReceiver, sid: str) -> bool:
    """Whether the feed has the survey's receipt."""
    return any(e["type"] in THROUGH for e in receiver.events.get(sid, ()))


async def post_all(
    http: aiohttp.ClientSession,
    api: str,
    surveys: int,
    batch: int,
    rate: float,
    state: Run,
) -> None:
    """POST the surveys in batches, ``rate`` surveys a second; a batch that fails is
    posted again (as the core system does) until answered. Records what was answered
    and the API's outages."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    t0 = time.monotonic()
    for start in range(0, surveys, batch):
        ahead = t0 + start / rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
        items = [survey(i) for i in range(start, min(surveys, start + batch))]
        body = {"surveys": [b for _, _, b in items]}
        failing_since: float | None = None
        while True:
            try:
                async with http.post(f"{api}/v1/surveys", json=body, headers=headers) as r:
                    doc = await r.json() if r.status == 200 else None
            except (aiohttp.ClientError, OSError, ValueError):
                doc = None
            if doc is not None:
                break
            state.failed_posts += 1
            if failing_since is None:
                failing_since = time.monotonic()
                state.note("the API fails")
            await asyncio.sleep(0.1)
        if failing_since is not None:
            state.outages.append(time.monotonic() - failing_since)
            state.note(f"the API answers again ({state.outages[-1]:.1f}s)")
        for (sid, phone, _), result in zip(items, doc["results"], strict=True):
            if result["status"] in ("created", "existing"):
                state.answered.add(sid)
                state.phones[sid] = phone


async def inject(
    fault: str,
    stack: HaStack,
    rr: ReplicatedRedis,
    redis: aioredis.Redis,
    smsc: SmscSimulator,
    state: Run,
    say: Callable[[str], None],
    surveys: int,
) -> None:
    """One fault (see the module docstring), waited out."""
    if fault == "sms":
        busy = min(KILL_WITH_PENDING, surveys // BUSY_SHARE)
        # A slow SMS center first (answers held back): the sms processes then hold surveys
        # read and parts on the wire unanswered, as a busy process does when it dies.
        smsc.set_behaviour(response_delay=SLOW_ANSWER_S)
        # The busier of the two is killed, on the count just read, of the send queue
        # alone. Which process a post's entries go to is Redis's choice: the reader
        # blocked longest. Posts every 5 s and reads that block 500 ms lock into a
        # rhythm where the same process wins every post; waiting for sms-1 in
        # particular met 2 entries in 30 s once. The feed's deliveries are pending only
        # for a moment: once a batch of them met the wait and was acknowledged before
        # the count was read again, and the process died holding 1 entry.
        held = {name: 0 for name in SMS_PROCESSES}

        async def busy_enough() -> bool:
            for name in held:
                held[name] = await pending_of(redis, instance_of(name), feed=False)
            return max(held.values()) >= busy

        with contextlib.suppress(TimeoutError):
            await until(busy_enough, "an sms process busy", 30)
        victim = max(held, key=lambda name: held[name])
        state.pending_at_kill = held[victim]
        t0 = time.monotonic()
        stack.stop(victim, signal.SIGKILL)
        smsc.set_behaviour(response_delay=0.0)
        short = victim.removeprefix("gateway-")
        state.note(f"SIGKILL {short} ({state.pending_at_kill} entries pending)")
        consumer = instance_of(victim)
        await until(lambda: ge(pending_of(redis, consumer), 0, below=True), "takeover", 600)
        state.takeover_s = time.monotonic() - t0
        state.note(f"the other took everything over in {state.takeover_s:.1f}s")
        await asyncio.to_thread(stack.start_gateway, stack.workdir / "minyi.toml", "sms,webhooks",
                                name=victim)  # fmt: skip
    elif fault == "master":
        old = rr.master()
        old.kill()
        state.note(f"SIGKILL master :{old.port}")
        new = await asyncio.to_thread(rr.wait_new_master, old.port)
        state.note(f"sentinels promoted :{new}")
        await asyncio.to_thread(old.start)
        state.note(f"old master :{old.port} back from its AOF")
        await asyncio.to_thread(rr.wait_in_sync, 60)
        state.note("old master is a replica again, in sync")
    elif fault == "failover":
        old_port = rr.master_port()
        new = await asyncio.to_thread(rr.failover)
        state.note(f"SENTINEL FAILOVER :{old_port} -> :{new}")
        await asyncio.to_thread(rr.wait_in_sync, 60)
    say(state.timeline[-1])


def answered(state: Run, least: int) -> bool:
    """Whether ``least`` surveys are answered."""
    return len(state.answered) >= least


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, within_s: float) -> None:
    """Re-check ``check`` every 50 ms until it holds; TimeoutError after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within_s:g}s")
        await asyncio.sleep(0.05)


async def ge(count: Awaitable[int], least: int, *, below: bool = False) -> bool:
    """``await count`` >= ``least`` (or, ``below``: <= ``least``)."""
    n = await count
    return n <= least if below else n >= least


async def pending_of(redis: aioredis.Redis, consumer: str, *, feed: bool = True) -> int:
    """Entries ``consumer`` holds unacknowledged: the send queue's and (``feed``) the
    feed's."""
    total = 0
    streams = [(keys.SMS_QUEUE, keys.SMS_GROUP)]
    if feed:
        streams.append((keys.EVENTS, keys.WEBHOOK_GROUP.format(endpoint=ENDPOINT)))
    for stream, group in streams:
        while True:
            try:
                summary = await redis.xpending(stream, group)
                break
            except Exception:  # a failover under way: ask again
                await asyncio.sleep(0.1)
        for row in summary.get("consumers") or []:
            if row["name"] == consumer:
                total += int(row["pending"])
    return total


async def count(
    redis: aioredis.Redis, smsc: SmscSimulator, receiver: WebhookReceiver, state: Run
) -> dict[str, Any]:
    """The issue's measures, from the SMS center's submits, the feed and the master."""
    sids = sorted(state.answered)
    accepted = Counter(s.dest for s in smsc.submits if s.status == 0)
    types = {sid: [e["type"] for e in receiver.events.get(sid, [])] for sid in sids}
    flagged = {sid for sid, t in types.items() if "sms.resent" in t}
    twice = {sid for sid in sids if accepted[state.phones[sid]] > 1}
    lost, missing, gaps = [], 0, 0
    for sid in sids:
        history = await redis.lrange(keys.SURVEY_EVENTS.format(survey_id=sid), 0, -1)
        if not await redis.exists(keys.SURVEY.format(survey_id=sid)):
            lost.append(sid)
        got = {str(e["id"]) for e in receiver.events.get(sid, [])}
        missing += sum(1 for h in history if str(json.loads(h)["id"]) not in got)
        seqs = receiver.seqs(sid)
        gaps += sum(1 for a, b in itertools.pairwise(seqs) if b > a + 1)
    counts = {
        "surveys_answered": len(sids),
        "lost_201": len(lost),
        "not_through": sum(1 for sid in sids if not through(receiver, sid)),
        "never_sent": sum(1 for sid in sids if accepted[state.phones[sid]] == 0),
        "sent_twice": len(twice),
        "unflagged_duplicates": len(twice - flagged),
        "flags_without_duplicate": len(flagged - twice),
        "events_missing": missing,
        "seq_gaps": gaps,
        "events_dup_different": receiver.conflicts,
        "events_out_of_order": receiver.out_of_order,
        "redelivered_same_id": receiver.duplicates,
        "takeover_s": round(state.takeover_s, 2) if state.takeover_s is not None else None,
        "pending_at_kill": state.pending_at_kill,
        "api_outage_max_s": round(max(state.outages, default=0.0), 2),
        "api_outage_total_s": round(sum(state.outages), 2),
        "failed_posts": state.failed_posts,
        "binds_seen_by_smsc": smsc.counters["bind_ok"],
        "lost_examples": lost[:5],
        "timeline": state.timeline,
    }
    return counts
