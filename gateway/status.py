"""What a process says about itself, and what the pages say about every process.

Two halves, wired by the service:

* `Reporter`, a worker of every process that runs ``sms``, ``dialer`` or ``webhooks``:
  every `status.REPORT_EVERY_S` it writes this process's live parts to the status
  board (gateway/store/status.py) — each bind's link (`sms.binds.LinkState`), the
  dialer's AMI, the webhook worker's own counters — and removes them when it stops;
* `register`, for a process that runs ``api``: the parts of /healthz and /metrics
  (gateway/api/health.py) made from this process's live state and every other
  process's report.

/healthz, part by part (each one function below), and when it answers 503:

* ``redis``: PING answered, its round trip — 503 when not answered;
* ``binds``: every bind in every process (protocol, bound, since, last error, window)
  — 503 when a protocol the config uses has no bind up, or none that sends, or none
  that receives (`sms.health`);
* ``dialer``: this process's dialer (leading, AMI, calls, free agents), as before;
* ``dialers``: every process's dialer (instance, leading, ``ami_connected``) — never
  503: alert on ``minyi_dialer_ami_up``;
* ``webhooks``: per endpoint the backlog, the queued events, the oldest undelivered
  age, the surveys due — never 503: alert on the age.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gateway import lifecycle, logs
from gateway.api.health import HealthPart, plain
from gateway.metrics import Exposition
from gateway.store import status
from gateway.webhooks import backlog
from sms import health as sms_health

if TYPE_CHECKING:
    from gateway.service import Service

log = logs.logger(__name__)


def live_parts(service: Service) -> dict[str, Any]:
    """This process's report: what only it knows."""
    parts: dict[str, Any] = {"workers": list(service.workers)}
    if service.client is not None:
        parts["binds"] = service.client.stats()["binds"]
    if service.dialer is not None:
        parts["dialer"] = service.dialer.health()
    if service.webhooks is not None:
        parts["webhooks"] = {
            name: {
                k: v for k, v in item.items() if k in ("in_flight", "out_of_order", "lost_leases")
            }
            for name, item in service.webhooks.stats().items()
            if isinstance(item, dict)
        }
    return parts


class Reporter:
    """Writes this process's report to the status board until stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def run(self, stop: asyncio.Event) -> None:
        """Report every REPORT_EVERY_S; withdraw the report when stopped."""
        redis = self.service.redis
        assert redis is not None
        outage = lifecycle.Outage(log, "status report")
        while not stop.is_set():
            try:
                await status.publish(redis, self.service.instance, live_parts(self.service))
                outage.over()
            except lifecycle.OUTAGES as exc:
                if await outage.wait(exc, stop):
                    break
                continue
            await lifecycle.sleep_or_stop(stop, status.REPORT_EVERY_S)
        try:
            await status.withdraw(redis, self.service.instance)
        except lifecycle.OUTAGES:
            pass  # it goes stale, then is forgotten


class _Board:
    """Every process's parts: this one's live, the others' from their reports."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def reports(self, redis_up: bool) -> list[status.Report]:
        own = status.Report(self.service.instance, 0.0, live_parts(self.service))
        others: list[status.Report] = []
        if redis_up and self.service.redis is not None:
            try:
                others = [
                    r for r in await status.read(self.service.redis) if r.instance != own.instance
                ]
            except lifecycle.OUTAGES:
                pass  # this process's own parts are still worth showing
        return [own, *others]

    async def binds(self, redis_up: bool) -> tuple[list[sms_health.BindRow], list[str]]:
        seen = [
            row
            for r in await self.reports(redis_up)
            for row in sms_health.rows(r.instance, r.parts.get("binds") or {}, r.age_s, r.stale)
        ]
        return sms_health.judge(self.service.settings.sms.binds, seen)

    async def dialers(self, redis_up: bool) -> list[dict[str, Any]]:
        return [
            {
                "instance": r.instance,
                "leading": d.get("leading"),
                "ami_connected": d.get("ami_connected"),
                "calls_in_progress": d.get("calls_in_progress"),
                "report_age_s": r.age_s,
                "stale": r.stale,
            }
            for r in await self.reports(redis_up)
            if isinstance(d := r.parts.get("dialer"), dict)
        ]


def register(service: Service) -> None:
    """The parts of this process's /healthz and /metrics."""
    assert service.api is not None
    service.api.checks.extra = {"workers": list(service.workers), "instance": service.instance}
    board = _Board(service)
    _probes(service, board)
    _sources(service, board)


def _probes(service: Service, board: _Board) -> None:
    assert service.api is not None and service.redis is not None
    redis, checks = service.redis, service.api.checks
    configured = service.settings.sms.binds
    endpoints = [e.name for e in service.settings.webhooks]

    async def binds(redis_up: bool) -> HealthPart:
        rows, problems = await board.binds(redis_up)
        return HealthPart(rows, tuple(problems))

    async def dialers(redis_up: bool) -> HealthPart:
        return HealthPart(await board.dialers(redis_up))

    async def webhooks(redis_up: bool) -> HealthPart:
        if not redis_up:
            return HealthPart({"error": "Redis is not reachable"})
        return HealthPart(backlog.health_body(await backlog.measure(redis, endpoints)))

    if configured:
        checks.probes["binds"] = binds
    if service.dialer is not None:
        checks.probes["dialer"] = plain(service.dialer.health)
    if service.settings.dialer is not None:
        checks.probes["dialers"] = dialers
    if endpoints:
        checks.probes["webhooks"] = webhooks


def _sources(service: Service, board: _Board) -> None:
    assert service.api is not None and service.redis is not None
    redis, checks = service.redis, service.api.checks
    configured = service.settings.sms.binds
    endpoints = [e.name for e in service.settings.webhooks]

    async def bind_metrics(exp: Exposition, redis_up: bool) -> None:
        sms_health.write_metrics(exp, (await board.binds(redis_up))[0])

    async def dialer_metrics(exp: Exposition, redis_up: bool) -> None:
        write_dialers(exp, await board.dialers(redis_up))

    async def webhook_metrics(exp: Exposition, redis_up: bool) -> None:
        reports = await board.reports(redis_up)
        backlog.write_worker_metrics(
            exp, {r.instance: r.parts["webhooks"] for r in reports if "webhooks" in r.parts}
        )
        if redis_up:
            backlog.write_metrics(exp, await backlog.measure(redis, endpoints))

    async def report_metrics(exp: Exposition, redis_up: bool) -> None:
        age = exp.gauge(
            "minyi_status_report_age_seconds",
            "Age of each process's last status report (0 for the process scraped).",
            ("instance",),
        )
        for r in await board.reports(redis_up):
            age.add(r.age_s, instance=r.instance)

    if configured:
        checks.sources["binds"] = bind_metrics
    if service.settings.dialer is not None:
        checks.sources["dialers"] = dialer_metrics
    if endpoints:
        checks.sources["webhooks"] = webhook_metrics
    checks.sources["reports"] = report_metrics


def write_dialers(exp: Exposition, dialers: list[dict[str, Any]]) -> None:
    """Per process running a dialer: AMI up, leading, calls in progress."""
    ami = exp.gauge(
        "minyi_dialer_ami_up",
        "1 when the dialer's AMI connection to Asterisk is up (0 also when its process "
        "stopped reporting).",
        ("instance",),
    )
    leading = exp.gauge(
        "minyi_dialer_leading", "1 for the dialer that holds its Asterisk's lease.", ("instance",)
    )
    calls = exp.gauge(
        "minyi_dialer_calls_in_progress", "Callback calls in progress.", ("instance",)
    )
    for d in dialers:
        fresh = not d["stale"]
        ami.add(1 if fresh and d["ami_connected"] else 0, instance=d["instance"])
        leading.add(1 if fresh and d["leading"] else 0, instance=d["instance"])
        calls.add(int(d["calls_in_progress"] or 0), instance=d["instance"])
