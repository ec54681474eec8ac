"""Webhook feed latency and throughput: stream -> worker -> receiver on loopback.

Starts its own redis-server (AOF on, fsync every second, as in production) and the
reference receiver (gateway.webhooks.receiver) in its own process, runs one
WebhookWorker in this process, and XADDs events in the store's shape:

- paced: ``--rate`` events/s (the target: p99 stream -> receiver under 100 ms),
- burst: all ``--count`` events at once (throughput; latency is then queueing).

Latency is receiver arrival time minus the stream entry id's time (both this host's
clock). The last line printed is JSON with both scenarios.

    .venv/bin/python bench/webhooks.py --count 10000 --surveys 2000 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config import WebhookEndpoint  # noqa: E402
from gateway.store import keys  # noqa: E402  (after the path fix above)
from gateway.webhooks.worker import WebhookWorker  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdefghij").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def entry(sid: str, seq: int) -> dict[str, str]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    event = {
        "id": f"{sid}:{seq}",
        "type": "survey.replied",
        "survey_id": sid,
        "seq": seq,
        "time": now,
        "payload": {"rating": "satisfied", "unit": "330602001"},
    }
    return {"sid": sid, "seq": str(seq), "event": json.dumps(event, separators=(",", ":"))}


async def scenario(
    name: str,
    redis: aioredis.Redis,
    http: aiohttp.ClientSession,
    receiver_url: str,
    prefix: str,
    count: int,
    surveys: int,
    rate: float | None,
    batch_max: int,
) -> dict[str, Any]:
    per = max(1, count // surveys)
    order = [(f"{prefix}{i}", seq) for seq in range(1, per + 1) for i in range(surveys)][:count]
    added: dict[str, float] = {}  # event id -> stream entry time (s)
    async with http.get(receiver_url + "/_events?events=0") as resp:
        before = (await resp.json())["received"]
    started = time.time()
    cpu = time.process_time()
    tick = 0.01
    chunk = len(order) if rate is None else max(1, int(rate * tick))
    for i in range(0, len(order), chunk):
        part = order[i : i + chunk]
        async with redis.pipeline(transaction=False) as pipe:
            for sid, seq in part:
                pipe.xadd(keys.EVENTS, entry(sid, seq))  # type: ignore[arg-type]
            ids = await pipe.execute()
        for (sid, seq), eid in zip(part, ids, strict=True):
            added[f"{sid}:{seq}"] = int(eid.split(b"-")[0]) / 1000.0
        if rate is not None:
            await asyncio.sleep(max(0.0, started + (i + chunk) / rate - time.time()))
    while True:
        async with http.get(receiver_url + "/_events?events=0") as resp:
            got = await resp.json()
        if got["received"] >= before + len(added):
            break
        await asyncio.sleep(0.2)
    cpu = time.process_time() - cpu
    async with http.get(receiver_url + "/_events?events=0&arrivals=1") as resp:
        got = await resp.json()
    mine = {k: v for k, v in got["arrivals"].items() if k in added}
    lat = sorted((mine[k] - added[k]) * 1000.0 for k in added)
    first, last = min(added.values()), max(mine.values())
    q = statistics.quantiles(lat, n=100)
    return {
        "scenario": name,
        "events": len(lat),
        "surveys": surveys,
        "offered_rate": rate,
        "batch_max": batch_max,
        "events_per_s": round(len(lat) / (last - first), 1),
        "latency_ms_p50": round(q[49], 1),
        "latency_ms_p99": round(q[98], 1),
        "latency_ms_max": round(lat[-1], 1),
        # this process: the worker, and the publisher (XADD) - a load-independent cost
        "cpu_ms_per_event": round(cpu * 1000.0 / len(lat), 3),
        "out_of_order_total": got["out_of_order"],
        "duplicates_total": got["duplicates"],
    }


async def run(args: argparse.Namespace, rport: int, hport: int) -> list[dict[str, Any]]:
    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{rport}/0")
    results: list[dict[str, Any]] = []
    try:
        url = f"http://127.0.0.1:{hport}"
        ep = WebhookEndpoint(
            name="bench",
            url=url + "/webhooks",
            secret=SECRET,
            concurrency=args.concurrency,
            batch_max=args.batch_max,
        )
        worker = WebhookWorker(redis, [ep], consumer="bench")
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        async with aiohttp.ClientSession() as http:
            for name, prefix, rate in (("paced", "P", args.rate), ("burst", "B", None)):
                result = await scenario(
                    name, redis, http, url, prefix, args.count, args.surveys, rate, args.batch_max
                )
                print(json.dumps(result), flush=True)
                results.append(result)
        stop.set()
        await task
    finally:
        await redis.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--surveys", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced scenario events/s")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-max", type=int, default=1, help="events per request")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="minyi-bench-"))
    rport, hport = free_port(), free_port()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    redis_args = ["--port", str(rport), "--bind", "127.0.0.1", "--dir", str(workdir)]
    redis_args += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    receiver_args = ["-m", "gateway.webhooks.receiver", "--port", str(hport), "--secret", SECRET]
    procs = [
        subprocess.Popen([redis_server, *redis_args], stdout=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, *receiver_args], cwd=ROOT, stderr=subprocess.DEVNULL),
    ]
    try:
        wait_port(rport)
        wait_port(hport)
        results = asyncio.run(run(args, rport, hport))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"webhooks": results}))


if __name__ == "__main__":
    main()
