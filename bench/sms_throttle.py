"""Sending against an SMS center that throttles: accepted submits per second, and how
many resends the gateway reported (only a send whose answer was lost may be a
duplicate; an explicit ESME_RTHROTTLED is not).

Runs redis-server, the SMS center simulator and the gateway (`minyi run`) as separate
processes on loopback; the simulator answers every Nth submit_sm with ESME_RTHROTTLED
(`throttle_every`), or caps each bind at a TPS (`--smsc-tps`). Posts N surveys and waits
until each one's submit is accepted.

Prints accepted/s (first to last accepted submit at the SMS center), throttle answers,
the `sms.resent` events on the feed, the duplicates the SMS center saw, and lost
surveys; the last line is JSON.

    .venv/bin/python bench/sms_throttle.py [--surveys 2000] [--every 5] [--tps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.localstack import SECRET, LocalStack, dump, free_port
from gateway.webhooks.receiver import WebhookReceiver


def phone(i: int) -> str:
    return f"151{i:08d}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.surveys
    stack = LocalStack()
    receiver = WebhookReceiver(SECRET)
    try:
        stack.start_redis()
        stack.start_smsc()
        await receiver.start(port=free_port())
        cfg = stack.gateway_config(receiver.url, window=args.window, tps=args.tps)
        stack.start_gateway(cfg)
        async with aiohttp.ClientSession() as http:
            knobs: dict[str, Any] = {"throttle_every": args.every or None}
            if args.smsc_tps:
                knobs["max_tps"] = args.smsc_tps
            await stack.smsc(http, "POST", "/behaviour", knobs)
            print(
                f"bench: {n} surveys, gateway tps {args.tps:.0f} window {args.window}, "
                f"SMSC throttles every {args.every or '-'}th submit, "
                f"caps at {args.smsc_tps or '-'} tps"
            )
            t0 = time.time()
            for start in range(0, n, 500):
                items = [
                    {
                        "survey_id": f"T{i:07d}",
                        "phone": phone(i),
                        "service_type": "110",
                        "unit_code": "330602",
                        "officer_id": "P1001",
                        "occurred_at": "2026-11-23T09:30:00+08:00",
                    }
                    for i in range(start, min(n, start + 500))
                ]
                status, body = await stack.post(http, {"surveys": items})
                if status != 200 or body["counts"].get("created") != len(items):
                    raise RuntimeError(f"POST failed: {status} {str(body)[:300]}")
            deadline = time.time() + args.timeout
            while time.time() < deadline:
                stats = await stack.smsc(http, "GET", "/stats")
                if stats.get("accepted", 0) >= n:
                    break
                await asyncio.sleep(0.5)
            elapsed = time.time() - t0
            submits = await stack.smsc_all(http, "submits")
            await asyncio.sleep(2.0)  # the last events reach the receiver
    finally:
        stack.stop_all()
        await receiver.close()
    accepted = sorted(s["at"] for s in submits if s["status"] == 0)
    first_accepted: dict[str, float] = {}
    for s in submits:
        if s["status"] == 0:
            first_accepted.setdefault(s["dest"], s["at"])
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    resent = sum(
        1 for events in receiver.events.values() for e in events if e["type"] == "sms.resent"
    )
    return {
        "surveys": n,
        "every": args.every,
        "smsc_tps": args.smsc_tps,
        "gateway_tps": args.tps,
        "window": args.window,
        "accepted": len(accepted),
        "accepted_per_s": round((len(accepted) - 1) / span, 1) if span else 0.0,
        "throttled": sum(1 for s in submits if s["status"] == 0x58),
        "sms_resent_events": resent,
        "smsc_duplicates": sum(1 for s in submits if s.get("duplicate")),
        "lost": n - len(first_accepted),
        "elapsed_s": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surveys", type=int, default=2000)
    parser.add_argument("--every", type=int, default=5, help="throttle every Nth (0: never)")
    parser.add_argument("--smsc-tps", type=float, default=0.0, help="SMSC cap per bind")
    parser.add_argument("--tps", type=float, default=200.0, help="the gateway's bind tps")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600.0)
    result = asyncio.run(run(parser.parse_args()))
    for key, value in result.items():
        print(f"{key}: {value}")
    print(dump(result))


if __name__ == "__main__":
    main()
