"""The HTTP API the core system calls: one aiohttp application, bearer-token auth, and
the operations pages.

The routes live with their concern: surveys (gateway/api/surveys.py), callbacks
(gateway/api/callbacks.py), recordings (gateway/api/recordings.py). The signed ``GET
/v1/recordings/{base}/{leg}`` is the one route besides the health and metrics pages
that takes no bearer token (the signature is its credential).
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from gateway import logs
from gateway.api.callbacks import CallbackApi
from gateway.api.recordings import RecordingsApi
from gateway.api.responses import dumps, error
from gateway.api.surveys import SurveyApi
from gateway.config import ApiToken, Settings
from gateway.store.surveys import Store

log = logs.logger(__name__)

TOKEN_KEY = web.RequestKey("token", ApiToken)


class Api:
    """Handlers; `app()` builds the aiohttp application."""

    def __init__(self, settings: Settings, store: Store, templates: Mapping[str, Any]) -> None:
        self.settings = settings
        self.store = store
        self.templates = templates
        self.accepting = True
        self.health_extra: dict[str, Any] = {}
        # Live parts of /healthz, asked on every request (e.g. the dialer's state).
        self.health_probes: dict[str, Callable[[], Any]] = {}
        # routes whose requests carry their own credential (signed recording URLs)
        self._no_token: set[web.AbstractResource] = set()

    def app(self) -> web.Application:
        """The aiohttp application with its routes and middlewares."""
        app = web.Application(
            middlewares=[self._auth], client_max_size=self.settings.api.max_body_bytes
        )
        SurveyApi(self.settings, self.store, self.templates, TOKEN_KEY, self).routes(app)
        CallbackApi(self.store, self.settings.dialer, TOKEN_KEY).routes(app)
        self._no_token = RecordingsApi(self.settings, self.store, TOKEN_KEY).routes(app)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    # --- auth -----------------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            request.path in ("/healthz", "/metrics")
            or request.match_info.route.resource in self._no_token
        ):
            resp: web.StreamResponse = await handler(request)
            return resp
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return error(401, "unauthorized", "missing bearer token")
        given = header[7:].strip().encode()
        for token in self.settings.api.tokens:
            # constant-time comparison: a token must not leak through timing
            if hmac.compare_digest(given, token.token.encode()):
                request[TOKEN_KEY] = token
                resp = await handler(request)
                return resp
        return error(401, "unauthorized", "unknown token")

    # --- operations -----------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        """Liveness and readiness: Redis reachable, binds bound."""
        t0 = time.perf_counter()
        try:
            await self.store.redis.ping()
            redis_ok = True
        except Exception:
            redis_ok = False
        body = {
            "status": "ok" if redis_ok else "degraded",
            "redis": {"ok": redis_ok, "ms": round((time.perf_counter() - t0) * 1000, 2)},
            "accepting": self.accepting,
            **self.health_extra,
            **{name: probe() for name, probe in self.health_probes.items()},
        }
        return web.json_response(body, status=200 if redis_ok else 503, dumps=dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        """Counters in the Prometheus text format."""
        lines = []
        for name, value in sorted((await self.store.stats()).items()):
            metric = "minyi_" + re.sub(r"[^a-zA-Z0-9_]", "_", name) + "_total"
            lines.append(f"{metric} {value}")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")
