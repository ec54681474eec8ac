"""SMS loop throughput: N surveys from POST to submit_sm to DLR to the webhook feed.

Runs redis-server, an SMS center and the gateway (`minyi run`) as separate processes
on loopback, and the webhook receiver in this process. The SMS center is the project's
simulator for SMPP (`--protocol smpp`, the default), or gocmpp's server side with the
project's program for CMPP (`--protocol cmpp2` / `cmpp3`, devstack/cmpp_peer.py). Posts N surveys in
batches as fast as the API takes them; one citizen in ten replies 「3 出警太慢」.

Prints: submit_sm per second (first to last submit at the SMS center), POST→submit
latency (p50/p99, which in a burst is mostly time queued behind earlier surveys),
deliver_sm→webhook latency (p50/p99: the SMS center sending a receipt or a reply until
the receiver has the resulting event), peak RSS of the gateway process, and how many
surveys were lost; the last line is JSON.

    .venv/bin/python bench/sms_throughput.py [--surveys 20000] [--window 100] [--protocol cmpp3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.cmpp_peer import SECRET as CMPP_SECRET
from devstack.cmpp_peer import SP_ID, SRC_ID, CmppPeer
from devstack.localstack import (
    SECRET,
    LocalStack,
    dump,
    free_port,
    peak_rss_mb,
    recent_service_time,
)
from gateway.webhooks.receiver import WebhookReceiver

REPLY_SUFFIX, REPLY_TEXT = "7", "3 出警太慢"


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank), in the unit of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# A survey made it through when its receipt says so, or when the citizen answered: a
# reply processed before its receipt leaves the survey past "delivered" for good.
THROUGH = {"survey.delivered", "survey.undeliverable", "survey.replied"}


def sent_through(events: list[dict[str, Any]]) -> bool:
    """Whether a survey's events show it reached the citizen (or failed for good)."""
    return any(e["type"] in THROUGH for e in events)


def phone(i: int) -> str:
    return f"150{i:08d}"


def analyse(
    n: int,
    posted_at: dict[str, float],
    submits: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
    receiver: WebhookReceiver,
    elapsed: float,
    rss: float,
    processes: int,
    batch_max: int,
    rate: float,
    protocol: str = "smpp",
) -> dict[str, Any]:
    """The figures, from what the SMS center and the webhook receiver recorded."""
    repliers = {f"B{i:07d}" for i in range(n) if phone(i).endswith(REPLY_SUFFIX)}
    first = {}
    for s in submits:
        if s["status"] == 0:
            first.setdefault(s["dest"], s["at"])
    ats = sorted(first.values())
    submit_per_s = (len(ats) - 1) / (ats[-1] - ats[0]) if len(ats) > 1 else 0.0
    post_to_submit = [(at - posted_at[d]) * 1000 for d, at in first.items() if d in posted_at]

    sid_of = {phone(i): f"B{i:07d}" for i in range(n)}
    dlr_sent: dict[str, float] = {}
    mo_sent: dict[str, float] = {}
    for d in deliveries:
        sid = sid_of.get(d["source"])  # receipts and replies both come from the citizen
        if sid and d.get("first_sent_at"):
            (dlr_sent if d["kind"] == "dlr" else mo_sent).setdefault(sid, d["first_sent_at"])
    to_webhook: list[float] = []
    reply_to_webhook: list[float] = []
    lost = 0
    for i in range(n):
        sid = f"B{i:07d}"
        events = {e["type"]: e["id"] for e in receiver.events.get(sid, [])}
        if not sent_through(receiver.events.get(sid, [])):
            lost += 1
            continue
        arrived = receiver.arrivals.get(events.get("survey.delivered", ""))
        if arrived is not None and sid in dlr_sent:
            to_webhook.append((arrived - dlr_sent[sid]) * 1000)
        if sid in repliers:
            if "survey.replied" not in events:
                lost += 1
            elif sid in mo_sent:
                reply_arrived = receiver.arrivals.get(events["survey.replied"])
                if reply_arrived is not None:
                    reply_to_webhook.append((reply_arrived - mo_sent[sid]) * 1000)
    all_webhook = to_webhook + reply_to_webhook
    duplicates = sum(1 for s in submits if s.get("duplicate"))
    result = {
        "surveys": n,
        "submits": len(submits),
        "submit_per_s": round(submit_per_s, 1),
        "elapsed_s": round(elapsed, 1),
        "post_to_submit_p50_ms": round(pct(post_to_submit, 50), 1),
        "post_to_submit_p99_ms": round(pct(post_to_submit, 99), 1),
        "webhook_p50_ms": round(pct(all_webhook, 50), 1),
        "webhook_p99_ms": round(pct(all_webhook, 99), 1),
        "receipt_to_webhook_p99_ms": round(pct(to_webhook, 99), 1),
        "reply_to_webhook_p50_ms": round(pct(reply_to_webhook, 50), 1),
        "reply_to_webhook_p99_ms": round(pct(reply_to_webhook, 99), 1),
        "replies": len(reply_to_webhook),
        "events_received": receiver.received,
        "webhook_duplicates": receiver.duplicates,
        "out_of_order": receiver.out_of_order,
        "smsc_duplicates": duplicates,
        "lost": lost,
        "peak_rss_mb": round(rss, 1),
        "gateway_processes": processes,
        "post_rate": rate,
        "webhook_batch_max": batch_max,
        "protocol": protocol,
    }
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.surveys
    stack = LocalStack()
    receiver = WebhookReceiver(SECRET)
    peer = CmppPeer(int(args.protocol[-1])) if args.protocol != "smpp" else None
    try:
        stack.start_redis()
        bind = None
        if peer is None:
            auto = {"by_suffix": {REPLY_SUFFIX: REPLY_TEXT}, "delay": 0.2}
            stack.start_smsc("--auto-reply", json.dumps(auto, ensure_ascii=False))
        else:
            peer.start()
            await peer.behaviour(auto_reply={REPLY_SUFFIX: REPLY_TEXT}, auto_reply_delay_ms=200)
            bind = cmpp_bind(peer, args.window, args.tps)
        await receiver.start(port=free_port())
        cfg = stack.gateway_config(
            receiver.url,
            window=args.window,
            tps=args.tps,
            webhook_concurrency=64,
            webhook_batch_max=args.webhook_batch,
            bind=bind,
        )
        if args.processes == 1:
            stack.start_gateway(cfg)
        else:  # one process per worker kind, sharing Redis (how a big site scales)
            for workers in ("api", "sms", "webhooks"):
                stack.start_gateway(cfg, workers)
        print(
            f"bench: {args.protocol}, {n} surveys, bind window {args.window}, "
            f"tps cap {args.tps:.0f}, "
            f"gateway processes {args.processes}, webhook batch_max {args.webhook_batch}"
        )
        posted_at: dict[str, float] = {}
        async with aiohttp.ClientSession() as http:
            t0 = time.time()
            for start in range(0, n, args.batch):
                items = [
                    {
                        "survey_id": f"B{i:07d}",
                        "phone": phone(i),
                        "service_type": "110",
                        "unit_code": "330602",
                        "officer_id": "P1001",
                        "occurred_at": recent_service_time(),
                    }
                    for i in range(start, min(n, start + args.batch))
                ]
                if args.rate > 0:  # paced: this batch is due at start / rate seconds
                    await asyncio.sleep(max(0.0, t0 + start / args.rate - time.time()))
                sent = time.time()
                status, body = await stack.post(http, {"surveys": items})
                if status != 200 or body["counts"].get("created") != len(items):
                    raise RuntimeError(f"POST failed: {status} {str(body)[:300]}")
                for item in items:
                    posted_at[item["phone"]] = sent
            post_s = time.time() - t0
            print(f"bench: posted in {post_s:.1f}s ({n / post_s:.0f} surveys/s accepted)")
            repliers = {f"B{i:07d}" for i in range(n) if phone(i).endswith(REPLY_SUFFIX)}

            def done() -> bool:
                ev = receiver.events
                return all(sent_through(ev.get(f"B{i:07d}", [])) for i in range(n)) and all(
                    any(e["type"] == "survey.replied" for e in ev.get(s, [])) for s in repliers
                )

            deadline = time.time() + args.timeout
            while time.time() < deadline and not done():  # noqa: ASYNC110 - polling the receiver
                await asyncio.sleep(0.5)
            elapsed = time.time() - t0
            if peer is None:
                submits = await stack.smsc_all(http, "submits")
                deliveries = await stack.smsc_all(http, "deliveries")
            else:
                submits, deliveries = await peer.submits(), await peer.deliveries()
        rss = max(peak_rss_mb(pid) for pid in stack.gateway_pids().values())
    finally:
        stack.stop_all()
        if peer is not None:
            await peer.close()
            peer.stop()
        await receiver.close()

    result = analyse(
        n,
        posted_at,
        submits,
        deliveries,
        receiver,
        elapsed,
        rss,
        args.processes,
        args.webhook_batch,
        args.rate,
        args.protocol,
    )
    print(
        f"submit_sm/s        {result['submit_per_s']:>10}\n"
        f"POST→submit  p50   {result['post_to_submit_p50_ms']:>10} ms   "
        f"p99 {result['post_to_submit_p99_ms']} ms (burst: includes queueing)\n"
        f"deliver_sm→webhook p50 {result['webhook_p50_ms']} ms   p99 {result['webhook_p99_ms']} ms "
        f"(receipts and replies; replies alone p50 {result['reply_to_webhook_p50_ms']} ms, "
        f"p99 {result['reply_to_webhook_p99_ms']} ms, n={result['replies']})\n"
        f"events {receiver.received}, out of order {receiver.out_of_order}, "
        f"lost {result['lost']}, gateway peak RSS {result['peak_rss_mb']} MB"
    )
    return result


def cmpp_bind(peer: CmppPeer, window: int, tps: float) -> str:
    """The [[sms.binds]] table of a CMPP bind to the gocmpp peer."""
    return f"""\
[[sms.binds]]
name = "cmcc-1"
protocol = "{peer.protocol}"
host = "127.0.0.1"
port = {peer.port}
sp_id = "{SP_ID}"
secret = "{CMPP_SECRET}"
src_id = "{SRC_ID}"
window = {window}
tps = {tps}
reconnect_initial_s = 0.5
reconnect_max_s = 5
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--tps", type=float, default=10_000.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--processes",
        type=int,
        choices=(1, 3),
        default=1,
        help="1: all workers in one gateway process; 3: api, sms, webhooks apart",
    )
    parser.add_argument("--webhook-batch", type=int, default=1, help="webhook batch_max")
    parser.add_argument(
        "--protocol",
        choices=("smpp", "cmpp2", "cmpp3"),
        default="smpp",
        help="the bind's protocol: the simulator (smpp) or the gocmpp peer (cmpp2/cmpp3)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="post at this many surveys/s (0: all at once, a burst)",
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(dump(result))
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
