"""Callback dialer against the local Asterisk: how fast a free agent gets a citizen.

Provisions Asterisk 22 (scripts/asterisk/provision.sh, reused when present), starts it
with ``--agents`` agent phones in one unit queue and a redis-server, then makes
``--callbacks`` surveys unsatisfied at once (the reply function the SMS path uses) and
runs the real dialer (gateway.dialer.dialer.Dialer over AMI) until every callback is settled.
Citizens are the test outside world's answering numbers (they complain, the agent
phone says its line ``--talk-loops`` times and hangs up).

    .venv/bin/python bench/dialer.py --callbacks 200 --agents 10

Printed: reply -> Originate (includes waiting for an agent, since the replies come
at once); dial lag = Originate minus the later of the reply and the moment the queue
got room for one more call (an agent free and out of wrap-up; target: within 1 s);
calls per minute; agent occupancy. The last line is JSON with at least
``callbacks``, ``connected``, ``originate_p99_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from devstack.asterisk import AsteriskProcess, asterisk_home, provision  # noqa: E402
from devstack.localstack import LocalStack  # noqa: E402
from gateway.config import AmiSettings, CallingHours, DialerSettings, UnitQueue  # noqa: E402
from gateway.dialer.calls import capacity  # noqa: E402
from gateway.dialer.dialer import Dialer  # noqa: E402
from gateway.dialer.store import Claim  # noqa: E402
from gateway.store import keys  # noqa: E402
from gateway.store.surveys import Store  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
UNIT = "330602"


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


class Probe:
    """Times taken from inside the dialer: each Originate, and each moment the queue
    got room for one more call (a free agent, wrap-up over, not already being dialled
    for), sampled every 10 ms."""

    def __init__(self, dialer: Dialer, queue: str) -> None:
        self.dialer = dialer
        self.queue = queue
        self.originated: dict[str, float] = {}
        self.room_at: list[float] = []

    def on_originate(self, claim: Claim, at: float) -> None:
        self.originated[claim.survey_id] = at

    async def watch(self, stop: asyncio.Event) -> None:
        had_room = False
        while not stop.is_set():
            now = time.time()
            room = capacity(self.dialer.board, self.queue, self.dialer.pending(), now) > 0
            if room and not had_room:
                self.room_at.append(now)
            had_room = room
            await asyncio.sleep(0.01)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    version = provision()
    agents = tuple(f"agent{i}" for i in range(1, args.agents + 1))
    proc = AsteriskProcess(
        asterisk_home() / "root",
        version["asterisk"],
        agent_count=args.agents,
        units=(UnitQueue(UNIT, agents),),
        agent_talk_loops=args.talk_loops,
    )
    info = proc.start()
    stack = LocalStack(Path(tempfile.mkdtemp(prefix="minyi-bench-dialer-")))
    stack.start_redis()
    redis = aioredis.Redis.from_url(stack.redis_url, decode_responses=True, max_connections=64)
    try:
        store = Store(redis, TZ)
        await store.load()
        settings = DialerSettings(
            ami=AmiSettings(
                host=info.host,
                port=info.ami_port,
                username=info.ami_username,
                secret=info.ami_secret,
            ),
            trunk=info.trunk,
            units=(UNIT,),
            recordings_dir=str(info.recordings_dir),
            calling_hours=CallingHours(datetime.time(0), datetime.time(23, 59, 59)),
            ring_timeout_s=10,
            wrapup_s=5,
            transcribe=False,
        )
        dialer = Dialer(
            settings, store, TZ, clock=lambda: datetime.datetime(2026, 1, 5, 10, tzinfo=TZ)
        )
        probe = Probe(dialer, f"minyi-unit-{UNIT}")
        dialer._on_originate = probe.on_originate
        stop = asyncio.Event()
        task = asyncio.create_task(dialer.run(stop))
        watcher = asyncio.create_task(probe.watch(stop))
        await dialer.ami.wait_connected(30)

        replied: dict[str, float] = {}
        sids = [f"B{i}" for i in range(args.callbacks)]
        for i, sid in enumerate(sids):
            phone = f"1380000{8000 + i:04d}"
            await store.intake(
                sid,
                phone,
                {"unit_code": UNIT, "service_type": "110"},
                cap_s=0,
                defer_at=None,
                ttl_s=86400,
                accepted_payload={},
            )
        t0 = time.time()
        for i, sid in enumerate(sids):
            replied[sid] = time.time()
            phone = f"1380000{8000 + i:04d}"
            payload = {"text": "3", "understanding": {"rating": "unsatisfied"}}
            await store.reply(sid, payload, "unsatisfied", False, phone)

        done: set[str] = set()
        deadline = time.monotonic() + args.limit_s
        while len(done) < len(sids) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            for sid in sids:
                if sid not in done:
                    state = await redis.hget(keys.SURVEY.format(survey_id=sid), "state")
                    if state in ("called", "unreachable", "closed"):
                        done.add(sid)
            print(
                f"  {len(done)}/{len(sids)} settled, {dialer.stats.originated} originated",
                flush=True,
            )
        wall = time.time() - t0
        stop.set()
        await task
        await watcher

        attempts = []
        for sid in sids:
            for e in await store.events(sid):
                if e.type == "callback.attempt":
                    attempts.append(e.payload)
        connected = [a for a in attempts if a["outcome"] == "connected"]
        talk = 0.0
        for a in connected:
            start = datetime.datetime.fromisoformat(a["connected_at"])
            end = datetime.datetime.fromisoformat(a["ended_at"])
            talk += (end - start).total_seconds()
        reply_to_orig = [
            (probe.originated[s] - replied[s]) * 1000 for s in sids if s in probe.originated
        ]
        lags = []
        for sid, at in probe.originated.items():
            rooms = [f for f in probe.room_at if f <= at]
            start = max(replied[sid], rooms[-1] if rooms else replied[sid])
            lags.append((at - start) * 1000)
        result = {
            "callbacks": len(sids),
            "agents": args.agents,
            "settled": len(done),
            "connected": len(connected),
            "attempts": len(attempts),
            "outcomes": dict(dialer.stats.outcomes),
            "reply_to_originate_p50_ms": round(pct(reply_to_orig, 50), 1),
            "reply_to_originate_p99_ms": round(pct(reply_to_orig, 99), 1),
            "originate_p50_ms": round(pct(lags, 50), 1),
            "originate_p99_ms": round(pct(lags, 99), 1),
            "originate_max_ms": round(max(lags, default=0.0), 1),
            "calls_per_minute": round(len(attempts) / wall * 60, 1),
            "agent_occupancy": round(talk / (args.agents * wall), 3),
            "wall_s": round(wall, 1),
            "asterisk": version["asterisk"],
        }
        print(
            f"callbacks {len(sids)}  agents {args.agents}  connected {len(connected)}"
            f"  attempts {len(attempts)}  in {wall:.0f} s"
        )
        print(
            "reply -> Originate (incl. waiting for an agent):"
            f" p50 {result['reply_to_originate_p50_ms']} ms"
            f"  p99 {result['reply_to_originate_p99_ms']} ms"
        )
        print(
            f"dial lag (later of reply / agent free -> Originate): p50 {result['originate_p50_ms']}"
            f" ms  p99 {result['originate_p99_ms']} ms  max {result['originate_max_ms']} ms"
        )
        print(
            f"calls/min {result['calls_per_minute']}"
            f"  agent occupancy {result['agent_occupancy']:.0%}"
        )
        return result
    finally:
        await redis.aclose()
        stack.stop_all()
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callbacks", type=int, default=200)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument(
        "--talk-loops", type=int, default=1, help="agent talk: times the agent says its line"
    )
    parser.add_argument("--limit-s", type=float, default=1800)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
