"""Are the binds up? The SMS side of /healthz and /metrics, as pure functions.

Every process running ``sms`` runs every configured bind and reports each one (up or
down, since when, the last error: `sms.binds.LinkState`) through the status board
(gateway/store/status.py). From every report this says, per configured protocol
(``smpp``, ``cmpp2``, ``cmpp3``), whether the installation can still do the SMS side of
its job:

* a protocol the config uses is **down** when none of its binds is bound in any
  process: surveys routed to it wait queued, and its replies and receipts wait at
  the SMS center;
* a protocol with binds up but **none that sends** (only SMPP receivers up) or **none
  that receives** (only SMPP transmitters up) is down for that half.

Either is a problem: /healthz answers 503, naming the protocol and why each of its
binds is down. A report that went stale (its process stopped writing) never counts as
up; a bind that no process reports is down ("no process runs it"). Routes
(``[[sms.routes]]``) are not judged here: a route whose binds are all down while its
protocol has others up shows in each bind's state, not as a 503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config import CmppBind, SmppBind
from gateway.metrics import Exposition

#: One bind as one process sees it: the SmsClient.stats() row, with "name",
#: "instance", "report_age_s" and "stale" added.
BindRow = dict[str, Any]


def rows(
    instance: str, binds: Mapping[str, Mapping[str, Any]], age_s: float, stale: bool
) -> list[BindRow]:
    """The rows of one process's report (``SmsClient.stats()["binds"]``)."""
    return [
        {"name": name, "instance": instance, **state, "report_age_s": age_s, "stale": stale}
        for name, state in sorted(binds.items())
    ]


def judge(
    configured: Sequence[SmppBind | CmppBind], seen: Sequence[BindRow]
) -> tuple[list[BindRow], list[str]]:
    """Every bind row (with a row for each configured bind no process reports), and
    the problems (see the module docstring)."""
    reported = {r["name"] for r in seen}
    out = list(seen) + [
        {
            "name": b.name,
            "instance": None,
            "protocol": b.protocol,
            "smsc": b.smsc,
            "can_send": b.mode != "receiver",
            "can_receive": b.mode != "transmitter",
            "bound": False,
            "last_error": "no process runs it",
        }
        for b in configured
        if b.name not in reported
    ]
    problems = []
    for protocol in sorted({b.protocol for b in configured}):
        mine = {b.name: b for b in configured if b.protocol == protocol}
        up = [r for r in out if r["name"] in mine and r["bound"] and not r.get("stale")]
        senders = [r for r in up if mine[r["name"]].mode != "receiver"]
        receivers = [r for r in up if mine[r["name"]].mode != "transmitter"]
        why = _why_down(mine, out)
        if not up:
            problems.append(f"sms: no {protocol} bind is bound ({why})")
            continue
        if not senders and any(b.mode != "receiver" for b in mine.values()):
            problems.append(f"sms: no {protocol} bind that sends is bound ({why})")
        if not receivers and any(b.mode != "transmitter" for b in mine.values()):
            problems.append(f"sms: no {protocol} bind that receives is bound ({why})")
    return out, problems


def _why_down(mine: Mapping[str, Any], rows_: Sequence[BindRow]) -> str:
    """Each down bind of a protocol with its last error, once per distinct error."""
    seen: dict[str, str] = {}
    for r in rows_:
        if r["name"] not in mine or (r["bound"] and not r.get("stale")):
            continue
        error = (
            "its process stopped reporting"
            if r.get("stale")
            else r.get("last_error") or "not bound yet"
        )
        seen.setdefault(f"{r['name']}: {error}", "")
    return "; ".join(seen) or "none configured"


def write_metrics(exp: Exposition, rows_: Sequence[BindRow]) -> None:
    """``minyi_sms_bind_up`` and the window of each bind in each process."""
    labels = ("bind", "protocol", "instance")
    up = exp.gauge(
        "minyi_sms_bind_up",
        "1 when the bind is logged in to its SMS center, 0 when not (or its process "
        "stopped reporting), per process that runs it.",
        labels,
    )
    outstanding = exp.gauge(
        "minyi_sms_bind_outstanding_parts",
        "Window slots in use: parts sent and not yet answered.",
        labels,
    )
    tps = exp.gauge("minyi_sms_bind_tps", "The bind's submit rate limit now.", labels)
    for r in rows_:
        key = {"bind": r["name"], "protocol": r["protocol"], "instance": r["instance"] or ""}
        up.add(1 if r["bound"] and not r.get("stale") else 0, **key)
        if r["instance"] is not None:
            outstanding.add(int(r.get("outstanding", 0)), **key)
            tps.add(float(r.get("tps", 0.0)), **key)
