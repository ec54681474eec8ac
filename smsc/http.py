"""HTTP control API of the SMSC simulator, for the demo and benchmarks in other processes.

Loopback only by default; no authentication, so never expose it.

    GET  /stats                     counters, binds, pending deliveries
    GET  /submits?since=N&limit=M   answered submit_sm from index N
    GET  /deliveries?since=N        receipts and MO messages with their attempts
    GET  /behaviour                 current knobs
    POST /behaviour  {...}          change knobs (Behaviour fields, plus "throttle_for")
    POST /mo  {source, dest, text, encoding?, split?, system_id?, reverse?}
    POST /drop  {after?: N, hard?: bool}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from smsc.rules import behaviour_json

if TYPE_CHECKING:  # the simulator starts this API: a run-time import would be a cycle
    from smsc.simulator import SmscSimulator

_SIM: web.AppKey[SmscSimulator] = web.AppKey("sim")


def _sim(request: web.Request) -> SmscSimulator:
    return request.app[_SIM]


def _int_arg(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="body is not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


async def get_stats(request: web.Request) -> web.Response:
    """GET /stats."""
    return web.json_response(_sim(request).stats())


async def get_submits(request: web.Request) -> web.Response:
    """GET /submits?since=N&limit=M → {"next": index to ask for next, "submits": [...]}."""
    sim = _sim(request)
    since = max(0, _int_arg(request, "since", 0))
    limit = max(1, _int_arg(request, "limit", 1000))
    chunk = sim.submits[since : since + limit]
    return web.json_response({"next": since + len(chunk), "submits": [r.to_json() for r in chunk]})


async def get_deliveries(request: web.Request) -> web.Response:
    """GET /deliveries?since=N&limit=M."""
    sim = _sim(request)
    since = max(0, _int_arg(request, "since", 0))
    limit = max(1, _int_arg(request, "limit", 1000))
    chunk = sim.deliveries[since : since + limit]
    return web.json_response(
        {"next": since + len(chunk), "deliveries": [d.to_json() for d in chunk]}
    )


async def get_behaviour(request: web.Request) -> web.Response:
    """GET /behaviour."""
    return web.json_response(behaviour_json(_sim(request).behaviour))


async def post_behaviour(request: web.Request) -> web.Response:
    """POST /behaviour: change knobs; answers with the resulting behaviour."""
    sim = _sim(request)
    changes = await _json_body(request)
    try:
        sim.set_behaviour(**changes)
    except (ValueError, TypeError, KeyError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response(behaviour_json(sim.behaviour))


async def post_mo(request: web.Request) -> web.Response:
    """POST /mo: inject a citizen's message; answers {"deliveries": [ids]}."""
    sim = _sim(request)
    data = await _json_body(request)
    try:
        ids = sim.inject_mo(
            str(data["source"]),
            str(data["dest"]),
            str(data["text"]),
            encoding=data.get("encoding", "ucs2"),
            split=data.get("split", "udh8"),
            system_id=data.get("system_id"),
            reverse=bool(data.get("reverse", False)),
        )
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"missing field {exc}") from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"deliveries": ids})


async def post_drop(request: web.Request) -> web.Response:
    """POST /drop: {"after": N, "hard": bool} → {"dropped": n} (0 when armed for later)."""
    sim = _sim(request)
    data = await _json_body(request)
    try:
        after = int(data.get("after", 0))
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="after must be an integer") from None
    dropped = sim.drop_connections(after, hard=bool(data.get("hard", False)))
    return web.json_response({"dropped": dropped, "armed_after": after or None})


def control_app(sim: SmscSimulator) -> web.Application:
    """The aiohttp application serving the control API for `sim`."""
    app = web.Application()
    app[_SIM] = sim
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/submits", get_submits)
    app.router.add_get("/deliveries", get_deliveries)
    app.router.add_get("/behaviour", get_behaviour)
    app.router.add_post("/behaviour", post_behaviour)
    app.router.add_post("/mo", post_mo)
    app.router.add_post("/drop", post_drop)
    return app


async def start_control(sim: SmscSimulator, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the control API; returns the runner (cleanup() to stop) and the port."""
    runner = web.AppRunner(control_app(sim), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])  # the real port when 0 was asked for
    return runner, bound
