"""What /healthz and /metrics are made of: named parts, each asked by one function.

The service (gateway/service.py, gateway/status.py) registers the parts a process
has: the SMS binds, the dialer's AMI, the webhook backlog, ... Each part is one
function, asked on every request, so a new concern is one more registration:

* a **health probe** answers one `HealthPart`: its JSON for /healthz and the problems
  that make the gateway unable to do its job (any problem: ``503``);
* a **metrics source** adds its families to the page's `Exposition`.

Both are told whether Redis answered this request's PING (``redis_up``): a part that
needs Redis answers what it can without it, and never waits for it. A part that fails
(a bug, or Redis lost between the PING and its read) is shown as that failure; it
never fails the page, and the page never answers 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from gateway import lifecycle, logs
from gateway.metrics import Exposition

log = logs.logger(__name__)

# A part that takes longer than this is shown as timed out: the page must answer a
# health check (docker's: 5 s) while something it asks is stuck.
PART_TIMEOUT_S: Final = 2.0
# The PING that decides ``redis_up`` for the other parts.
PING_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True)
class HealthPart:
    """One part of /healthz: its JSON, and what in it stops the gateway working."""

    body: Any
    problems: tuple[str, ...] = field(default=())


#: Asked on every /healthz with whether Redis answered.
HealthProbe = Callable[[bool], Awaitable[HealthPart]]
#: Adds families to a /metrics page, told whether Redis answered.
MetricsSource = Callable[[Exposition, bool], Awaitable[None]]


def plain(body: Callable[[], Any]) -> HealthProbe:
    """A probe from a function of this process's live state that reports and never
    fails the check (e.g. the dialer's ``health()``)."""

    async def probe(redis_up: bool) -> HealthPart:
        return HealthPart(body())

    return probe


@dataclass(frozen=True)
class Check:
    """The outcome of one /healthz: the JSON, and whether the gateway is fit."""

    body: dict[str, Any]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No problem at all."""
        return not self.problems


class Health:
    """The registered parts of one process and the PING that comes first."""

    def __init__(
        self,
        ping: Callable[[], Awaitable[object]],
        writable: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        """``ping`` decides ``redis_up`` for /metrics; ``writable`` (when given) is what
        /healthz says of Redis: a dict with ``ok`` (writes would succeed: the master,
        with its replicas), ``error`` when not, and ``role`` when the node answered
        (gateway/store/connection.py ``health``)."""
        self._ping = ping
        self._writable = writable
        self.probes: dict[str, HealthProbe] = {}
        self.sources: dict[str, MetricsSource] = {}
        self.extra: dict[str, Any] = {}  # fixed facts (workers, instance)

    async def redis(self) -> tuple[bool, float, str]:
        """PING Redis: (answered, round trip in ms, the error or "")."""
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._ping()
            error = ""
        except TimeoutError:
            error = f"no answer to PING within {PING_TIMEOUT_S:g}s"
        except lifecycle.OUTAGES as exc:
            error = lifecycle.describe(exc)
        return not error, round((time.perf_counter() - t0) * 1000, 2), error

    async def check(self, accepting: bool) -> Check:
        """Every part, asked at once; problems in the order of the parts."""
        problems: list[str] = []
        if self._writable is not None:
            try:
                async with asyncio.timeout(PART_TIMEOUT_S):
                    redis_body = await self._writable()
            except TimeoutError:
                redis_body = {"ok": False, "error": f"no answer within {PART_TIMEOUT_S:g}s"}
            redis_up = "role" in redis_body  # it answered, though maybe not as master
            if not redis_body.get("ok"):
                problems.append(f"redis: {redis_body.get('error', 'not writable')}")
        else:
            redis_up, ms, error = await self.redis()
            redis_body = {"ok": redis_up, "ms": ms}
            if not redis_up:
                redis_body["error"] = error
                problems.append(f"redis: {error}")
        names = list(self.probes)
        parts = await asyncio.gather(*(self._ask(n, redis_up) for n in names))
        body: dict[str, Any] = {"redis": redis_body, "accepting": accepting, **self.extra}
        for name, part in zip(names, parts, strict=True):
            body[name] = part.body
            problems += part.problems
        return Check({"status": "degraded" if problems else "ok", **body}, tuple(problems))

    async def _ask(self, name: str, redis_up: bool) -> HealthPart:
        try:
            async with asyncio.timeout(PART_TIMEOUT_S):
                return await self.probes[name](redis_up)
        except TimeoutError:
            return HealthPart({"error": "timed out"}, (f"{name}: no answer within 2s",))
        except Exception as exc:  # one broken part must not hide the others
            if not isinstance(exc, lifecycle.OUTAGES):
                log.exception("health part %s failed", name)
            why = lifecycle.describe(exc)
            return HealthPart({"error": why}, (f"{name}: {why}",))

    async def exposition(self) -> Exposition:
        """The /metrics page: ``minyi_redis_up``, then every source's families."""
        redis_up, _, _ = await self.redis()
        exp = Exposition()
        up = exp.gauge("minyi_redis_up", "1 when Redis answered this scrape's PING, else 0.")
        failed = exp.gauge(
            "minyi_metrics_source_up",
            "0 when a part of this page could not be read (its series are missing).",
            ("source",),
        )
        for name, source in self.sources.items():
            try:
                async with asyncio.timeout(PART_TIMEOUT_S):
                    await source(exp, redis_up)
                failed.add(1, source=name)
            except Exception as exc:  # a page with what could be read, never a 500
                if not isinstance(exc, (TimeoutError, *lifecycle.OUTAGES)):
                    log.exception("metrics source %s failed", name)
                failed.add(0, source=name)
                redis_up = redis_up and not isinstance(exc, lifecycle.OUTAGES)
        up.add(1 if redis_up else 0)
        return exp
