"""`make demo`: the survey loop on a local stack, end to end.

Starts redis-server, the SMS center simulator and the gateway as real processes on
loopback, plus a webhook receiver in this process (the core system's side); posts 200
surveys, lets simulated citizens reply with a mix of answers (some never answer, some
numbers are unreachable), waits until every survey has settled, and prints what
happened — the same table a supervisor would want.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from gateway.localstack import SECRET, LocalStack, free_port
from gateway.privacy import mask_phone
from gateway.webhook_receiver import WebhookReceiver

SURVEYS = 200
# The citizens: the last digit of the number decides the answer ("" = never replies).
REPLIES = {
    "0": "1",
    "1": "满意，谢谢民警",
    "2": "2",
    "3": "还算满意吧",
    "4": "3",
    "5": "不满意，出警太慢，到现在都没人处理",
    "6": "态度很好，但是结果不满意",
    "7": "",
    "8": "TD",
    "9": "辛苦了👍",
}
UNREACHABLE = "(13|47|81)$"  # these numbers get an UNDELIV receipt
SETTLED = {"survey.replied", "survey.undeliverable", "survey.no_reply"}


def _services() -> list[str]:
    return ["110", "window", "traffic", "case", "scene"]


def _survey(i: int) -> dict[str, Any]:
    return {
        "survey_id": f"DEMO-{i:04d}",
        "phone": f"139{i:08d}",
        "service_type": _services()[i % 5],
        "unit_code": f"3306{i % 3:02d}",
        "officer_id": f"P{1000 + i % 17}",
        "occurred_at": "2026-11-23T09:30:00+08:00",
    }


def _expected_final(i: int) -> bool:
    import re

    phone = f"139{i:08d}"
    return bool(re.search(UNREACHABLE, phone)) or REPLIES[phone[-1]] != ""


def _table(rows: list[tuple[str, Any]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    out = [title, "-" * (width + 12)]
    out += [f"{k.ljust(width)}  {v!s:>8}" for k, v in rows]
    return "\n".join(out)


async def run_demo(workdir: Path | None = None) -> int:
    """Run the demo; returns the process exit code."""
    stack = LocalStack(workdir)
    receiver = WebhookReceiver(SECRET)
    t0 = time.monotonic()
    try:
        print(f"demo: work directory {stack.workdir}")
        stack.start_redis()
        auto_reply = {"by_suffix": {k: v for k, v in REPLIES.items() if v}, "delay": 0.5}
        behaviour = {"outcomes": [{"pattern": UNREACHABLE, "stat": "UNDELIV", "err": 1}]}
        stack.start_smsc(
            "--auto-reply",
            json.dumps(auto_reply, ensure_ascii=False),
            "--behaviour",
            json.dumps(behaviour),
            "--dlr-delay",
            "0.2",
        )
        await receiver.start(port=free_port())
        stack.start_gateway(stack.gateway_config(receiver.url))
        print(
            f"demo: redis, SMS center, gateway and webhook receiver up "
            f"({time.monotonic() - t0:.1f}s); posting {SURVEYS} surveys"
        )
        async with aiohttp.ClientSession() as http:
            status, body = await stack.post(http, {"surveys": [_survey(i) for i in range(SURVEYS)]})
            if status != 200:
                print(f"demo: POST failed {status}: {body}", file=sys.stderr)
                return 1
            print(f"demo: intake {body['counts']}")
            expect = [f"DEMO-{i:04d}" for i in range(SURVEYS) if _expected_final(i)]
            silent = [f"DEMO-{i:04d}" for i in range(SURVEYS) if not _expected_final(i)]

            def settled() -> bool:
                done = all(
                    SETTLED & {e["type"] for e in receiver.events.get(s, [])} for s in expect
                )
                sent = all(
                    {"survey.delivered", "survey.undeliverable"}
                    & {e["type"] for e in receiver.events.get(s, [])}
                    for s in silent
                )
                return done and sent

            deadline = time.monotonic() + 90
            while not settled():
                if time.monotonic() > deadline:
                    print("demo: not every survey settled within 90s", file=sys.stderr)
                    print(stack.tail("gateway"), file=sys.stderr)
                    return 1
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # the last events of the feed
            print(_report(receiver, time.monotonic() - t0))
        return 0 if receiver.rejected == 0 and receiver.out_of_order == 0 else 1
    finally:
        stack.stop_all()
        await receiver.close()


def _report(receiver: WebhookReceiver, elapsed: float) -> str:
    states: Counter[str] = Counter()
    ratings: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    opted_out = 0
    samples: list[str] = []
    for sid, events in sorted(receiver.events.items()):
        if not sid:
            continue
        last_state = [e for e in events if e["type"].startswith("survey.")][-1]["type"]
        states[last_state.removeprefix("survey.")] += 1
        for e in events:
            if e["type"] == "survey.replied":
                u = e["payload"]["understanding"]
                ratings[u["rating"]] += 1
                for r in u["reasons"]:
                    reasons[r] += 1
                if len(samples) < 8 and e["payload"]["text"] not in {
                    s.split("」")[0][1:] for s in samples
                }:
                    phone = e["payload"].get("phone", "")
                    samples.append(
                        f"「{e['payload']['text']}」 → {u['rating']}"
                        + (f" {u['reasons']}" if u["reasons"] else "")
                        + (" opt-out" if u["opt_out"] else "")
                        + (f" ({mask_phone(phone)})" if phone else "")
                    )
            if e["type"] == "citizen.opted_out":
                opted_out += 1
    parts = [
        _table(sorted(states.items()), "surveys by final state"),
        _table(sorted(ratings.items()), "replies by rating"),
        _table(sorted(reasons.items()) or [("(none)", 0)], "reason tags"),
        _table(
            [
                ("events received", receiver.received),
                ("duplicates", receiver.duplicates),
                ("out of order", receiver.out_of_order),
                ("bad signatures", receiver.rejected),
                ("opted out", opted_out),
                ("unmatched replies", len(receiver.events.get("", []))),
            ],
            "webhook feed",
        ),
        "how replies were read:\n  " + "\n  ".join(samples),
        f"demo: done in {elapsed:.1f}s",
    ]
    return "\n\n".join(parts)


def main() -> int:
    """Entry point of `python -m gateway.demo`."""
    return asyncio.run(run_demo())


if __name__ == "__main__":
    sys.exit(main())
