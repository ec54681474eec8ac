"""The per-unit, per-day counters: read them, add them up, show them.

The counters are written by the Lua functions that move the states (``tally`` in
store/lua/store.lua), never by scanning surveys: one hash per unit and local day
(``keys.TALLY_DAY``), one per unit since the start (``keys.TALLY_TOTAL``), and the set
of units (``keys.TALLY_UNITS``). A survey without a unit code counts under ``_``.

Fields of the hashes:

- ``surveys``: surveys accepted; ``hour:HH``: of them, accepted in local hour HH;
- ``state:<state>``: transitions into each state (``state:delivered`` also counts a
  receipt that came after the citizen's reply; ``state:closed`` a survey closed twice,
  after a recheck, twice);
- ``rating:<rating>``: first replies by rating (a revision moves the count on the day
  of the first reply: the day's funnel shows the rating as it stands);
  ``reply:<rating>``: every rated reply, revisions included (totals only: /metrics);
  ``rhour:HH``: replies in local hour HH; ``reason:<tag>``: reply reasons;
- ``optout``: citizens who opted out (TD/退订);
- ``callback:<outcome>``: callback attempts by outcome (connected, no_answer, ...);
- ``dreason:<tag>``: reasons the agents gave in their dispositions.

The totals keep only what /metrics shows (``surveys``, ``state:``, ``reply:``,
``callback:``); the day's hashes all but ``reply:``.

Units are codes whose prefixes are the units above them (市 3306 > 县 330602 > 所
330602510000): a unit's subtree is every unit code that starts with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.metrics import Exposition
from gateway.store import keys

Counts = dict[str, int]
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied", "unknown")
NO_UNIT = "_"


def _ints(raw: Mapping[str, str] | Mapping[bytes, bytes]) -> Counts:
    out: Counts = {}
    for k, v in raw.items():
        key = k.decode() if isinstance(k, bytes) else k
        try:
            out[key] = int(v)
        except ValueError:
            continue
    return out


async def units(redis: aioredis.Redis) -> list[str]:
    """Every unit code that has counters, sorted."""
    raw = await redis.smembers(keys.TALLY_UNITS)
    return sorted(u.decode() if isinstance(u, bytes) else str(u) for u in raw)


async def day_counts(
    redis: aioredis.Redis, unit_codes: Iterable[str], day: str
) -> dict[str, Counts]:
    """Each unit's counters for ``day`` (``YYYY-MM-DD``, local), unit -> counts."""
    codes = list(unit_codes)
    async with redis.pipeline(transaction=False) as pipe:
        for unit in codes:
            pipe.hgetall(keys.TALLY_DAY.format(unit=unit, day=day))
        found = await pipe.execute()
    return {unit: _ints(raw) for unit, raw in zip(codes, found, strict=True)}


async def totals(redis: aioredis.Redis) -> dict[str, Counts]:
    """Each unit's counters since the start, unit -> counts."""
    codes = await units(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for unit in codes:
            pipe.hgetall(keys.TALLY_TOTAL.format(unit=unit))
        found = await pipe.execute()
    return {unit: _ints(raw) for unit, raw in zip(codes, found, strict=True)}


def in_subtree(unit: str, top: str) -> bool:
    """Whether ``unit`` is ``top`` or one of the units below it (its code's prefix)."""
    return unit.startswith(top)


def add(counts: Iterable[Counts]) -> Counts:
    """The sum of several units' counters (a subtree's)."""
    out: Counts = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def _pct(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(100.0 * part / whole, 1)


@dataclass(frozen=True)
class Funnel:
    """One unit's (or subtree's) figures for a day, as the board shows them."""

    surveys: int
    delivered: int
    replied: int
    ratings: dict[str, int]
    optouts: int
    callbacks_connected: int
    callbacks_attempted: int
    closed: int
    rechecks: int

    @property
    def delivered_pct(self) -> float | None:
        return _pct(self.delivered, self.surveys)

    @property
    def replied_pct(self) -> float | None:
        return _pct(self.replied, self.delivered or self.surveys)

    def rating_pct(self, rating: str) -> float | None:
        """Share of the rated replies that gave ``rating``."""
        rated = sum(self.ratings.get(r, 0) for r in RATINGS[:3])
        return _pct(self.ratings.get(rating, 0), rated)

    @property
    def connected_pct(self) -> float | None:
        return _pct(self.callbacks_connected, self.callbacks_attempted)

    @property
    def closed_pct(self) -> float | None:
        return _pct(self.closed, self.surveys)


def funnel(c: Mapping[str, int]) -> Funnel:
    """The funnel of one set of counters."""
    attempted = sum(v for k, v in c.items() if k.startswith("callback:"))
    return Funnel(
        surveys=c.get("surveys", 0),
        delivered=c.get("state:delivered", 0),
        replied=c.get("state:replied", 0),
        ratings={r: c.get("rating:" + r, 0) for r in RATINGS},
        optouts=c.get("optout", 0),
        callbacks_connected=c.get("callback:connected", 0),
        callbacks_attempted=attempted,
        closed=c.get("state:closed", 0),
        rechecks=c.get("state:recheck", 0),
    )


def ranked(c: Mapping[str, int], prefix: str = "reason:") -> list[tuple[str, int]]:
    """The reason tags of ``prefix`` by count, most first (then by tag)."""
    found = [(k[len(prefix) :], v) for k, v in c.items() if k.startswith(prefix) and v > 0]
    return sorted(found, key=lambda kv: (-kv[1], kv[0]))


def hourly(c: Mapping[str, int], prefix: str = "hour:") -> list[int]:
    """Counts per local hour 00..23 (surveys with ``hour:``, replies with ``rhour:``)."""
    return [c.get(f"{prefix}{h:02d}", 0) for h in range(24)]


def write_tallies(exp: Exposition, by_unit: Mapping[str, Counts]) -> None:
    """The labelled series of the counters: ``minyi_surveys_total{unit,state}`` (state
    ``accepted`` is the intake count), ``minyi_replies_total{unit,rating}``,
    ``minyi_callbacks_total{unit,outcome}``."""
    families = (
        ("surveys", "state", "Surveys that reached each state, per unit.", "state:"),
        ("replies", "rating", "Rated SMS replies, per unit and rating.", "reply:"),
        ("callbacks", "outcome", "Callback attempts by outcome, per unit.", "callback:"),
    )
    for family, label, help_text, prefix in families:
        series = exp.counter(f"minyi_{family}_total", help_text, ("unit", label))
        for unit in sorted(by_unit):
            counts = by_unit[unit]
            values = {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}
            if prefix == "state:":
                values["accepted"] = counts.get("surveys", 0)
            for value, n in sorted(values.items()):
                series.add(n, unit=unit, **{label: value})
