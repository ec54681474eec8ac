"""`make demo`: the survey loop on a local stack, end to end.

Starts redis-server, the SMS center simulator, Asterisk 22 (provisioned by
scripts/asterisk/provision.sh, with a simulated carrier and ten agent phones) and the
gateway as real processes on loopback, plus a webhook receiver in this process (the
core system's side); posts 200 surveys, lets simulated citizens reply with a mix of
answers (some never answer, some numbers are unreachable), calls every unsatisfied
citizen back through Asterisk to a free agent of the unit (recorded), plays the agents'
dispositions through the API, and prints what happened — the tables a supervisor
would want.

It prints the agent's desk and the supervisor's board with a demo login (agent1 or
lead, PIN 1234); the stack stops when the demo ends, unless MINYI_DEMO_HOLD gives the
seconds to keep it up for a look (``MINYI_DEMO_HOLD=600 make demo``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from devstack.asterisk import AsteriskInfo, AsteriskProcess, asterisk_home, provision
from devstack.localstack import SECRET, TOKEN, LocalStack, free_port, recent_service_time
from gateway.config import UnitQueue
from gateway.desk.auth import hash_pin
from gateway.privacy import mask_phone
from gateway.webhooks.receiver import WebhookReceiver

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
UNITS = ("330600", "330601", "330602")
AGENTS = 10
CALLBACK_END = {"survey.closed", "survey.unreachable"}
DEMO_PIN = "1234"  # the demo's desk and board logins; a real site hashes its own


def _phone(i: int) -> str:
    # The simulated carrier answers 1380000XXXX (13800000001-5 are busy, never answer,
    # reject, hang up early, do not exist: see dialplans/test/).
    return f"1380000{i:04d}"


def _dialer_toml(info: AsteriskInfo) -> str:
    units = ", ".join(f'"{u}"' for u in UNITS)
    return f"""
[dialer]
trunk = "{info.trunk}"
units = [{units}]
recordings_dir = "{info.recordings_dir}"
calling_hours = {{ start = "00:00", end = "23:59:59" }}
max_attempts = 2
retry_spacing_minutes = [0.1]
ring_timeout_s = 10
transcribe = false

[dialer.ami]
host = "{info.host}"
port = {info.ami_port}
username = "{info.ami_username}"
secret = "{info.ami_secret}"
"""


def _desk_toml() -> str:
    """The demo's logins: agent1 (unit 330600's queue) and lead (the city 3306)."""
    pin = hash_pin(DEMO_PIN)
    return f"""
[api.desk]
session_idle_minutes = 60

[[api.desk.agents]]
id = "agent1"
pin_hash = "{pin}"
units = ["{UNITS[0]}"]

[[api.desk.supervisors]]
id = "lead"
pin_hash = "{pin}"
units = ["3306"]
"""


def _start_asterisk() -> tuple[AsteriskProcess, AsteriskInfo]:
    version = provision()
    agents = [f"agent{i}" for i in range(1, AGENTS + 1)]
    units = tuple(UnitQueue(u, tuple(agents[k::3])) for k, u in enumerate(UNITS))
    proc = AsteriskProcess(
        asterisk_home() / "root", version["asterisk"], AGENTS, units, agent_talk_loops=1
    )
    return proc, proc.start()


def _services() -> list[str]:
    return ["110", "window", "traffic", "case", "scene"]


def _survey(i: int) -> dict[str, Any]:
    return {
        "survey_id": f"DEMO-{i:04d}",
        "phone": _phone(i),
        "service_type": _services()[i % 5],
        "unit_code": f"3306{i % 3:02d}",
        "officer_id": f"P{1000 + i % 17}",
        "occurred_at": recent_service_time(),
    }


def _expected_final(i: int) -> bool:
    import re

    phone = _phone(i)
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
    asterisk: AsteriskProcess | None = None
    try:
        print(f"demo: work directory {stack.workdir}")
        print("demo: provisioning Asterisk 22 (first run downloads Debian packages)")
        proc, info = await asyncio.to_thread(_start_asterisk)
        asterisk = proc
        print(f"demo: Asterisk {proc.version} up, {AGENTS} agent phones in {len(UNITS)} units")
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
        workers = ("api", "sms", "webhooks", "dialer")
        extra = _dialer_toml(info) + _desk_toml()
        config = stack.gateway_config(receiver.url, workers=workers, extra=extra)
        stack.start_gateway(config)
        print(
            f"demo: redis, SMS center, gateway and webhook receiver up "
            f"({time.monotonic() - t0:.1f}s); posting {SURVEYS} surveys"
        )
        print(f"demo: agent's desk   {stack.api}/desk/   (login agent1, PIN {DEMO_PIN})")
        print(f"demo: supervisor's board {stack.api}/board/  (login lead, PIN {DEMO_PIN})")
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
            print(f"demo: SMS loop settled ({time.monotonic() - t0:.1f}s); calling back")
            if not await _callbacks(stack, http, receiver):
                print(stack.tail("gateway"), file=sys.stderr)
                return 1
            await asyncio.sleep(0.5)  # the last events of the feed
            print(_report(receiver, time.monotonic() - t0))
            print(_callback_report(receiver, info))
            print(f"demo: desk {stack.api}/desk/ (agent1 / PIN {DEMO_PIN})")
            print(f"demo: board {stack.api}/board/ (lead / PIN {DEMO_PIN})")
            hold = float(os.environ.get("MINYI_DEMO_HOLD", "0") or 0)
            if hold > 0:
                print(f"demo: the stack stays up {hold:.0f}s (MINYI_DEMO_HOLD)")
                await asyncio.sleep(hold)
        return 0 if receiver.rejected == 0 and receiver.out_of_order == 0 else 1
    finally:
        stack.stop_all()
        await receiver.close()
        if asterisk is not None:
            asterisk.stop()


def _types(receiver: WebhookReceiver, sid: str) -> list[str]:
    return [e["type"] for e in receiver.events.get(sid, [])]


async def _callbacks(
    stack: LocalStack, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> bool:
    """Wait for every callback; answer each connected one as its agent would."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    pending = [s for s in receiver.events if "survey.callback_pending" in _types(receiver, s)]
    print(f"demo: {len(pending)} unsatisfied citizens to call back")
    disposed: set[str] = set()
    deadline = time.monotonic() + 600
    next_report = time.monotonic() + 15
    while time.monotonic() < deadline:
        for sid in pending:
            events = receiver.events.get(sid, [])
            if sid in disposed or not events or events[-1]["type"] != "survey.called":
                continue
            attempt = [e for e in events if e["type"] == "callback.attempt"][-1]["payload"]
            replied = [e for e in events if e["type"] == "survey.replied"][-1]["payload"]
            verdict = {
                "upheld": bool(replied["understanding"]["reasons"]),
                "reasons": replied["understanding"]["reasons"],
                "note": "demo: the agent confirmed what the citizen wrote",
                "agent": attempt["agent"],
            }
            url = f"{stack.api}/v1/callbacks/{attempt['callback_id']}/disposition"
            async with http.post(url, json=verdict, headers=headers) as r:
                if r.status != 200:
                    print(f"demo: disposition failed {r.status}: {await r.text()}")
                    return False
            disposed.add(sid)
        done = sum(1 for s in pending if CALLBACK_END & set(_types(receiver, s)[-1:]))
        if done == len(pending):
            return True
        if time.monotonic() >= next_report:
            talking = sum(1 for s in pending if _types(receiver, s)[-1:] == ["survey.calling"])
            print(f"demo: callbacks {done}/{len(pending)} done, {talking} calls in progress")
            next_report = time.monotonic() + 15
        await asyncio.sleep(0.5)
    print("demo: not every callback finished within 600s", file=sys.stderr)
    return False


def _callback_report(receiver: WebhookReceiver, info: AsteriskInfo) -> str:
    outcomes: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    finals: Counter[str] = Counter()
    recorded_s = 0.0
    files = 0
    for events in receiver.events.values():
        attempts = [e["payload"] for e in events if e["type"] == "callback.attempt"]
        if not attempts:
            continue
        finals[[e["type"] for e in events if e["type"].startswith("survey.")][-1][7:]] += 1
        for a in attempts:
            outcomes[a["outcome"]] += 1
            if a["agent"]:
                agents[a["agent"]] += 1
            for leg, rec in a["recordings"].items():
                files += 1
                if leg == "mix" and rec["duration_s"]:
                    recorded_s += rec["duration_s"]
    return "\n\n".join(
        [
            _table(sorted(outcomes.items()), "callback attempts by outcome"),
            _table(sorted(finals.items()), "called-back surveys by final state"),
            _table(sorted(agents.items()) or [("(none)", 0)], "calls per agent"),
            _table(
                [("recording files", files), ("recorded minutes", round(recorded_s / 60, 1))],
                f"recordings (removed with the demo's Asterisk) in {info.recordings_dir}",
            ),
        ]
    )


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
                (
                    "unmatched replies",
                    sum(e["type"] == "reply.unmatched" for e in receiver.events.get("", [])),
                ),
            ],
            "webhook feed",
        ),
        "how replies were read:\n  " + "\n  ".join(samples),
        f"demo: done in {elapsed:.1f}s",
    ]
    return "\n\n".join(parts)


def main() -> int:
    """Entry point of `python -m devstack.demo`."""
    return asyncio.run(run_demo())


if __name__ == "__main__":
    sys.exit(main())
