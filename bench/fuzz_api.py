"""The HTTP API under hostile requests, for a long run: every bad request must get a JSON
4xx with a reason, none a 5xx, and the gateway must keep running.

Starts the local stack (redis-server, the SMS center simulator, the gateway as its own
process with the api, sms and webhooks workers, and a webhook receiver in this
process), puts one survey where its disposition is due, draws ``--requests`` probes
from devstack/fuzz.py's Hypothesis strategies (valid surveys with hostile fields,
batches, dispositions, rechecks, bodies no parser likes, odd charsets) and POSTs them
``--concurrency`` at a time. Prints the figures, then one JSON line:

- ``requests``, ``status_2xx``, ``status_4xx``, ``status_5xx``;
- ``bad_answers``: answers below 500 that are not a JSON object with a reason (or
  that echo a raw control character): ``devstack.fuzz.answer_problem``;
- ``no_answer``: requests that got no HTTP answer at all;
- ``crashed``: 1 if the gateway process exited or stopped answering /healthz;
- ``stored_invalid``: surveys or events in Redis that fail the independent checks of
  ``devstack.fuzz.stored_problems``;
- ``log_tracebacks``: tracebacks in the gateway's log.

    .venv/bin/python bench/fuzz_api.py --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, given, seed, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.fuzz import (  # noqa: E402
    Probe,
    answer_problem,
    prepare_callback,
    probes,
    stored_problems,
)
from devstack.localstack import SECRET, TOKEN, LocalStack, dump  # noqa: E402
from gateway.config.surveys import DEFAULT_SERVICE_NAMES  # noqa: E402
from gateway.store.surveys import Store  # noqa: E402
from gateway.webhooks.receiver import WebhookReceiver  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")


def draw(n: int, seed_value: int) -> list[Probe]:
    """``n`` probes from the strategies (Hypothesis's generation phase only)."""
    out: list[Probe] = []
    now = datetime.now(TZ).isoformat(timespec="seconds")

    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(probes(now))
    def collect(probe: Probe) -> None:
        out.append(probe)

    collect()
    return out


class Figures:
    """Counts of answers, by status class and by probe kind."""

    def __init__(self) -> None:
        self.by_class: collections.Counter[str] = collections.Counter()
        self.by_kind_5xx: collections.Counter[str] = collections.Counter()
        self.samples_5xx: list[str] = []
        self.samples_bad: list[str] = []
        self.bad_answers = 0
        self.no_answer = 0

    def record(self, probe: Probe, status: int | None, content_type: str, body: bytes) -> None:
        if status is None:
            self.no_answer += 1
            return
        self.by_class[f"status_{status // 100}xx"] += 1
        if status >= 500:
            self.by_kind_5xx[probe.what] += 1
            if len(self.samples_5xx) < 10:
                self.samples_5xx.append(
                    f"{status} {probe.what} {probe.path[:60]} {probe.content_type} "
                    f"{probe.body[:80]!r} -> {body[:120]!r}"
                )
        problem = answer_problem(status, content_type, body)
        if problem is not None and status < 500:
            self.bad_answers += 1
            if len(self.samples_bad) < 5:
                self.samples_bad.append(f"{problem}: {status} {probe.path[:60]} -> {body[:120]!r}")


async def send_all(api: str, todo: list[Probe], concurrency: int, figures: Figures) -> None:
    """POST every probe, ``concurrency`` at a time."""
    queue: asyncio.Queue[Probe] = asyncio.Queue()
    for probe in todo:
        queue.put_nowait(probe)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def worker() -> None:
            while not queue.empty():
                probe = queue.get_nowait()
                try:
                    async with http.post(
                        api + probe.path, data=probe.body, headers=probe.headers(TOKEN)
                    ) as r:
                        figures.record(probe, r.status, r.content_type, await r.read())
                except (aiohttp.ClientError, TimeoutError):
                    figures.record(probe, None, "", b"")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def healthy(api: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(api + "/healthz") as r:
            return r.status == 200
    except (aiohttp.ClientError, OSError):
        return False


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()

    t0 = time.perf_counter()
    todo = draw(args.requests, args.seed)
    drawn_s = time.perf_counter() - t0
    kinds = dict(collections.Counter(p.what for p in todo))
    print(f"drew {len(todo)} probes in {drawn_s:.1f}s: {kinds}")

    stack = LocalStack(log_level="WARNING")
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    figures = Figures()
    try:
        stack.start_redis()
        stack.start_smsc()
        stack.start_gateway(stack.gateway_config(receiver.url))
        redis = aioredis.Redis.from_url(stack.redis_url, decode_responses=True)
        store = Store(redis, TZ)
        await store.load()
        await prepare_callback(store)
        t1 = time.perf_counter()
        await send_all(stack.api, todo, args.concurrency, figures)
        elapsed = time.perf_counter() - t1
        gateway = stack.procs["gateway"]
        crashed = int(gateway.poll() is not None or not await healthy(stack.api))
        problems = await stored_problems(redis, DEFAULT_SERVICE_NAMES, ("default",))
        await redis.aclose()
        log_text = (stack.workdir / "gateway.log").read_text(errors="replace")
    finally:
        stack.stop_all()
        await receiver.close()
    result: dict[str, Any] = {
        "requests": len(todo),
        "status_2xx": figures.by_class["status_2xx"],
        "status_4xx": figures.by_class["status_4xx"],
        "status_5xx": figures.by_class["status_5xx"],
        "bad_answers": figures.bad_answers,
        "no_answer": figures.no_answer,
        "crashed": crashed,
        "stored_invalid": len(problems),
        "log_tracebacks": log_text.count("Traceback"),
        "status_5xx_by_kind": dict(figures.by_kind_5xx),
        "requests_per_s": round(len(todo) / elapsed, 1),
    }
    for name in ("requests", "status_2xx", "status_4xx", "status_5xx", "bad_answers"):
        print(f"{name:16} {result[name]}")
    for name in ("no_answer", "crashed", "stored_invalid", "log_tracebacks"):
        print(f"{name:16} {result[name]}")
    for sample in figures.samples_5xx:
        print("  5xx:", sample)
    for sample in figures.samples_bad:
        print("  bad answer:", sample)
    for problem in problems[:10]:
        print("  stored:", problem)
    if args.keep:
        print("work directory:", stack.workdir)
    else:
        shutil.rmtree(stack.workdir, ignore_errors=True)
    print(dump(result))


if __name__ == "__main__":
    asyncio.run(main())
