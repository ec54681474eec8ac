"""Two of everything (issue 14): what is lost, duplicated or reordered across process
and Redis faults, and how long they are felt.

Runs devstack/ha.py: a redis-server master and replica and three redis-sentinel on
loopback, the gateway as three processes (api; two sms+webhooks sharing one bind name),
the SMS center simulator and the webhook receiver (de-duplicating on ``id``) in this
process. ``--surveys`` are posted in batches at ``--rate``/s while, in turn, the busier
sms process is SIGKILLed (and started again once the other took its work over), the
master is SIGKILLed (and comes back from its AOF), and a SENTINEL FAILOVER is asked
for.

The last line printed is JSON: surveys answered and lost (``lost_201``: record gone;
``not_through``: no receipt on the feed), SMS sent twice unflagged
(``unflagged_duplicates``), ``sms.resent`` flags with no duplicate, events missing,
reused with other content (``events_dup_different``) or out of order, the takeover
time of the killed process's pending work, the API's outages (longest and total
seconds of failed POSTs), and the run's timeline.

    .venv/bin/python bench/ha.py --surveys 10000 --rate 100 --claim-idle-s 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack import ha  # noqa: E402  (after the path fix above)
from devstack.localstack import dump  # noqa: E402


def main() -> None:
    """Parse the arguments, run, print the timeline and the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--surveys", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100.0, help="surveys posted per second")
    parser.add_argument("--batch", type=int, default=50, help="surveys per POST")
    parser.add_argument("--claim-idle-s", type=float, default=10.0)
    parser.add_argument("--tps", type=float, default=500.0, help="the bind's submits/s")
    parser.add_argument(
        "--faults", default=",".join(ha.FAULTS), help="in order, from: " + ",".join(ha.FAULTS)
    )
    parser.add_argument("--settle-s", type=float, default=600.0, help="wait for the feed")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(ha.FAULTS)
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    workdir = Path(tempfile.mkdtemp(prefix="minyi-ha-"))
    t0 = time.monotonic()
    counts = asyncio.run(
        ha.run(
            workdir,
            args.surveys,
            claim_idle_s=args.claim_idle_s,
            faults=faults,
            batch=args.batch,
            rate=args.rate,
            tps=args.tps,
            settle_s=args.settle_s,
            say=lambda line: print(line, flush=True),
        )
    )
    counts["claim_idle_s"] = args.claim_idle_s
    counts["wall_s"] = round(time.monotonic() - t0, 1)
    counts["workdir"] = str(workdir)
    for line in counts["timeline"]:
        print(line)
    print(dump(counts))


if __name__ == "__main__":
    main()
