"""The supervisor's board at ``/board/``: live agents and callbacks, the day's funnel per
unit and per subtree (市/县/所), reasons ranked, charts, CSV export.

The day's figures are the counters the Lua keeps per unit and day
(gateway/store/tallies.py), never a scan of the surveys. A supervisor sees the units
of their login and every unit below (codes that start with theirs). Citizens' numbers
appear masked only (calls in progress).

Routes: ``GET /board/?day=YYYY-MM-DD`` (default today, in ``[surveys] timezone``),
``GET /board/live`` (the live panel, refreshed by the page), ``GET
/board/export.csv?day=...``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from gateway.desk import pages
from gateway.desk.actions import STATE_NAMES
from gateway.desk.chart import funnel_svg, hourly_svg
from gateway.desk.web import Desk, _html
from gateway.privacy import mask_phone
from gateway.store import keys, tallies
from gateway.store.tallies import Counts

_DAY_RE: Final = re.compile(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]")
QUEUE_PREFIX: Final = "minyi-unit-"
# cb:ready scores are priority band * 1e13 + created milliseconds (callbacks.lua)
_BAND: Final = 10**13


class Board:
    """The board's handlers (sessions and settings from the desk)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.store = desk.store
        self.names = desk.settings.surveys.unit_names
        d = desk.settings.dialer
        self.queue_units: tuple[str, ...] = d.units if d is not None else ()

    def routes(self, app: web.Application) -> set[web.AbstractResource]:
        """Add the board's routes; the resources that take no bearer token (all)."""
        r = app.router
        found = [
            r.add_get("/board/", self.page),
            r.add_get("/board/live", self.live),
            r.add_get("/board/export.csv", self.export),
        ]
        return {route.resource for route in found if route.resource is not None}

    # --- scope and figures ------------------------------------------------------------
    def name(self, unit: str) -> str:
        return f"{self.names[unit]}（{unit}）" if unit in self.names else unit

    def _day(self, request: web.Request) -> str:
        day = request.query.get("day", "")
        if not day:
            return datetime.now(self.store.tz).date().isoformat()
        if not _DAY_RE.fullmatch(day):
            raise web.HTTPBadRequest(text="day must be YYYY-MM-DD")
        return day

    async def figures(self, scope: Iterable[str], day: str) -> list[tuple[str, str, Counts]]:
        """Rows (kind "top" | "total" | "unit", unit, counts): each scope unit's subtree, then
        its units that have counters, each unit with units below it preceded by its
        own subtree's total (市 > 县 > 所)."""
        every = await tallies.units(self.store.redis)
        scope = list(scope)
        wanted = sorted({u for u in every if any(tallies.in_subtree(u, top) for top in scope)})
        counts = await tallies.day_counts(self.store.redis, wanted, day)
        rows: list[tuple[str, str, Counts]] = []
        for top in scope:
            below = [u for u in wanted if tallies.in_subtree(u, top)]
            rows.append(("top", top, tallies.add(counts[u] for u in below)))
            for unit in below:  # in code order: each unit right after the one above it
                kids = [v for v in below if v != unit and tallies.in_subtree(v, unit)]
                if kids and unit != top:
                    rows.append(("total", unit, tallies.add(counts[v] for v in [unit, *kids])))
                rows.append(("unit", unit, counts[unit]))
        return rows

    # --- live -----------------------------------------------------------------------
    async def live_html(self, scope: tuple[str, ...]) -> str:
        """The live panel for a supervisor of ``scope``."""
        now = time.time()

        def covered(unit: str) -> bool:
            return any(tallies.in_subtree(unit, top) for top in scope)

        # the agents' states as the dialer stores them (agent.state), by unit; an agent
        # logged out of every queue counts under the units of its desk login
        agents: list[tuple[str, str, str]] = []
        for name, entry in (await self.desk.callbacks.agent_states()).items():
            user = self.desk.desk.user(name)
            units = [str(u) for u in entry.get("units") or ()] or (
                list(self.desk.units_of(user)) if user is not None else []
            )
            state = str(entry.get("state", ""))
            agents += [
                (self.name(u), name, STATE_NAMES.get(state, state)) for u in units if covered(u)
            ]
        agents.sort()
        redis = self.store.redis
        calls = 0
        for raw in (await redis.hgetall(keys.CB_ACTIVE)).values():
            try:
                record: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue
            queue = str(record.get("queue", ""))
            if queue.startswith("unit:") and covered(queue[5:]):
                calls += 1
        waiting: list[tuple[str, int, str]] = []
        for unit in self.queue_units:
            if not covered(unit):
                continue
            scores = await redis.zrange(
                keys.CB_READY.format(queue="unit:" + unit), 0, -1, withscores=True
            )
            created = [(int(pair[1]) % _BAND) / 1000 for pair in scores]
            oldest = min(created, default=None)
            age = "—" if oldest is None else _age(now - oldest)
            waiting.append((self.name(unit), len(scores), age))
        return pages.live_html(agents, calls, waiting) + await self._calls_table(scope)

    async def _calls_table(self, scope: tuple[str, ...]) -> str:
        """Calls in progress with the citizen's number masked."""
        redis = self.store.redis
        rows = []
        for cid, raw in sorted((await redis.hgetall(keys.CB_ACTIVE)).items()):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            survey = await self.store.get_survey(str(record.get("sid", "")))
            if survey is None:
                continue
            unit = survey.get("unit_code", "")
            if not any(tallies.in_subtree(unit, top) for top in scope):
                continue
            rows.append(
                f"<tr><td>{pages.e(mask_phone(survey.get('phone', '')))}</td>"
                f"<td>{pages.e(self.name(unit))}</td><td>{pages.e(cid)}</td></tr>"
            )
        if not rows:
            return ""
        return (
            '<table class="grid calls"><tr><th>市民</th><th>单位</th><th>回访</th></tr>'
            + "".join(rows)
            + "</table>"
        )

    # --- handlers -------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        s = await self.desk.session(request, "supervisor")
        day = self._day(request)
        scope = self.desk.units_of(s.user)
        rows = await self.figures(scope, day)
        table = "".join(
            pages.funnel_row(
                self.name(u) + (" 合计" if kind != "unit" else ""),
                tallies.funnel(c),
                total=kind != "unit",
            )
            for kind, u, c in rows
        )
        whole = tallies.add(c for kind, _u, c in rows if kind == "top")
        f = tallies.funnel(whole)
        stages = [
            ("调查短信", f.surveys),
            ("已送达", f.delivered),
            ("已回复", f.replied),
            ("满意/基本满意", f.ratings["satisfied"] + f.ratings["basically_satisfied"]),
            ("不满意", f.ratings["unsatisfied"]),
            ("回访接通", f.callbacks_connected),
            ("已办结", f.closed),
        ]
        charts = funnel_svg(stages) + hourly_svg(
            tallies.hourly(whole), tallies.hourly(whole, "rhour:")
        )
        return _html(
            pages.board_page(
                user=s.user.id,
                csrf=s.csrf,
                day=day,
                live=await self.live_html(scope),
                rows=table,
                reasons=tallies.ranked(whole),
                verified=tallies.ranked(whole, "dreason:"),
                charts=charts,
                labels=self.desk.labels,
            )
        )

    async def live(self, request: web.Request) -> web.Response:
        s = await self.desk.session(request, "supervisor")
        return _html(await self.live_html(self.desk.units_of(s.user)))

    async def export(self, request: web.Request) -> web.Response:
        s = await self.desk.session(request, "supervisor")
        day = self._day(request)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(
            ["日期", "单位代码", "单位名称", "范围", "调查数", "送达数", "送达率%", "回复数",
             "回复率%", "满意", "基本满意", "不满意", "满意率%", "退订", "回访次数", "回访接通",
             "接通率%", "办结", "办结率%", "二次回访", "主要原因"]
        )  # fmt: skip
        for kind, unit, c in await self.figures(self.desk.units_of(s.user), day):
            f = tallies.funnel(c)
            top = ";".join(f"{self.desk.labels.get(t, t)}:{n}" for t, n in tallies.ranked(c)[:3])
            w.writerow(
                [day, unit, self.names.get(unit, ""), "本单位" if kind == "unit" else "合计",
                 f.surveys, f.delivered, _pct(f.delivered_pct), f.replied, _pct(f.replied_pct),
                 f.ratings["satisfied"], f.ratings["basically_satisfied"],
                 f.ratings["unsatisfied"], _pct(f.rating_pct("satisfied")), f.optouts,
                 f.callbacks_attempted, f.callbacks_connected, _pct(f.connected_pct), f.closed,
                 _pct(f.closed_pct), f.rechecks, top]
            )  # fmt: skip
        # a byte-order mark: Excel opens UTF-8 CSV as such only with one
        body = ("\ufeff" + out.getvalue()).encode("utf-8")
        return web.Response(
            body=body,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="minyi-{day}.csv"',
                "Cache-Control": "no-store",
            },
        )


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}秒"
    if s < 3600:
        return f"{s // 60}分{s % 60}秒"
    return f"{s // 3600}小时{s % 3600 // 60}分"
