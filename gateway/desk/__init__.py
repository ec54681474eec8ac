"""The people's pages the gateway serves: the agents' desk (``/desk/``: who is on the
line, the disposition form, pause) and the supervisors' board (``/board/``: live
agents and callbacks, the day's funnel per unit, charts, CSV).

:func:`mount` adds both to the API's aiohttp application (gateway/service.py calls it
when ``[api.desk]`` names users). Server-rendered HTML, our own small CSS and
JavaScript, SVG charts drawn on the server: nothing is loaded from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from gateway.config import Settings
from gateway.desk.actions import AgentActions
from gateway.desk.board import Board
from gateway.desk.web import Desk
from gateway.store.surveys import Store


def mount(
    settings: Settings,
    store: Store,
    *,
    actions: AgentActions | None,
    sms_text: Callable[[Mapping[str, str]], str | None],
) -> tuple[Desk, Callable[[web.Application], set[web.AbstractResource]]]:
    """The desk, and the function that adds the desk's and board's routes to an
    application (returning the resources that take no bearer token)."""
    desk = Desk(settings, store, actions=actions, sms_text=sms_text)
    board = Board(desk)

    def routes(app: web.Application) -> set[web.AbstractResource]:
        return desk.routes(app) | board.routes(app)

    return desk, routes


__all__ = ["Desk", "mount"]
