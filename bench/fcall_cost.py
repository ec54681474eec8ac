"""Server-side cost of the survey store's Redis functions: N surveys taken in and
answered 「3」 with a reason (minyi_intake + minyi_reply: the two functions that count
the most per-unit figures), on a fresh redis-server, as Redis itself measures it
(INFO commandstats: microseconds of FCALL per call). Independent of the client's speed
and mostly of the machine's other load; compare two trees by running this file from
each (``PYTHONPATH=<tree> python <tree>/bench/fcall_cost.py``).

Prints the figures and, last, one JSON line.

    .venv/bin/python bench/fcall_cost.py [--surveys 4000] [--units 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.store.surveys import Store
from tests.servers import RedisServer

REPLY = {"text": "3 态度差", "understanding": {"rating": "unsatisfied", "reasons": ["attitude"]}}


TREE = str(Path(__file__).resolve().parent.parent)


async def run(surveys: int, units: int) -> dict[str, object]:
    server = RedisServer(Path(tempfile.mkdtemp(prefix="minyi-fcall-")))
    server.start()
    try:
        redis = aioredis.Redis.from_url(server.url, decode_responses=True)
        store = Store(redis, ZoneInfo("Asia/Shanghai"))
        await store.load()
        await redis.config_resetstat()
        for i in range(surveys):
            sid, phone = f"B{i}", f"138{i:08d}"
            fields = {"unit_code": f"33060{i % units}"}
            await store.intake(
                sid, phone, fields, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
            )
            await store.reply(sid, REPLY, "unsatisfied", False, phone)
        stats = (await redis.info("commandstats"))["cmdstat_fcall"]
        await redis.aclose()
    finally:
        server.stop()
    return {
        "surveys": surveys,
        "fcalls": stats["calls"],
        "fcall_usec_per_call": stats["usec_per_call"],
        "tree": TREE,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surveys", type=int, default=4000)
    parser.add_argument("--units", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(run(args.surveys, args.units))
    print(f"fcall: {result['fcalls']} calls, {result['fcall_usec_per_call']} µs per call")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
