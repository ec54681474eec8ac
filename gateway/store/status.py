"""The processes' status board in Redis (keys.STATUS): each process's live parts, for
the health and metrics pages of every API process.

A process that runs ``sms`` or ``dialer`` holds state no other process has — is its
bind to the SMS center up, is its AMI connected — and may have no HTTP page of its own
(``--workers sms,webhooks``). It writes a report of that state every
`REPORT_EVERY_S`; /healthz and /metrics of any process running ``api`` read every
report. A report older than `STALE_AFTER_S` is from a process that stopped writing
(killed, hung, cut off from Redis): shown as stale, and never counted as a bind that
is up. One older than `FORGET_AFTER_S` is removed (a process that was retired). A
process that stops cleanly removes its own at once.

Ages are measured on Redis' clock (TIME), so hosts whose clocks differ agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from gateway.store import keys

REPORT_EVERY_S: Final = 2.0
STALE_AFTER_S: Final = 10.0  # several missed reports, not one slow one
FORGET_AFTER_S: Final = 600.0


@dataclass(frozen=True)
class Report:
    """One process's report: its instance name, how old it is, what it said."""

    instance: str
    age_s: float
    parts: Mapping[str, Any]

    @property
    def stale(self) -> bool:
        """The process stopped reporting: what it said may no longer hold."""
        return self.age_s > STALE_AFTER_S


async def _now(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return float(seconds) + float(micros) / 1e6


async def publish(redis: aioredis.Redis, instance: str, parts: Mapping[str, Any]) -> None:
    """Write this process's report (JSON-able parts), and forget the reports of
    processes gone for `FORGET_AFTER_S`."""
    now = await _now(redis)
    report = json.dumps({"at": now, **parts}, ensure_ascii=False, separators=(",", ":"))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(keys.STATUS, instance, report)
        pipe.hgetall(keys.STATUS)
        _, reports = await pipe.execute()
    gone = [name for name, age in _ages(reports, now).items() if age > FORGET_AFTER_S]
    if gone:
        await redis.hdel(keys.STATUS, *gone)


async def withdraw(redis: aioredis.Redis, instance: str) -> None:
    """Remove this process's report (it stops cleanly)."""
    await redis.hdel(keys.STATUS, instance)


async def read(redis: aioredis.Redis) -> list[Report]:
    """Every process's report, by instance name (reports that cannot be read are
    skipped: a process of another version may write more, never less)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.hgetall(keys.STATUS)
        (seconds, micros), raw = await pipe.execute()
    now = float(seconds) + float(micros) / 1e6
    out = []
    for name, text in sorted(_decoded(raw).items()):
        try:
            doc = json.loads(text)
            age = max(0.0, now - float(doc.pop("at")))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        out.append(Report(name, round(age, 3), doc))
    return out


def _decoded(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw.items()
    }


def _ages(raw: Mapping[Any, Any], now: float) -> dict[str, float]:
    ages = {}
    for name, text in _decoded(raw).items():
        try:
            ages[name] = now - float(json.loads(text)["at"])
        except (ValueError, KeyError, TypeError):
            ages[name] = FORGET_AFTER_S + 1  # unreadable: not ours to keep
    return ages
