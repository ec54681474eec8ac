"""The HTTP API the core system calls: one aiohttp application, bearer-token auth, and
the operations pages.

The routes live with their concern: surveys (gateway/api/surveys.py), callbacks
(gateway/api/callbacks.py), recordings (gateway/api/recordings.py). The signed ``GET
/v1/recordings/{base}/{leg}`` is the one route besides the health and metrics pages
that takes no bearer token (the signature is its credential).

Every answer is JSON. While Redis cannot be reached (down, restarting, a replica
after a failover) a request that needs it gets ``503`` with ``Retry-After``, as
``/healthz`` says; the API listens from the start, before Redis is there. The
router's own refusals (no such route, wrong method) are JSON 4xx too. Any other
exception is a bug, and is left to be one: a 500, found by the fuzz tests, never
dressed up as an answer.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway import lifecycle, logs
from gateway.api.callbacks import CallbackApi
from gateway.api.health import Health
from gateway.api.recordings import RecordingsApi
from gateway.api.responses import dumps, error
from gateway.api.surveys import SurveyApi
from gateway.config import ApiToken, Settings
from gateway.metrics import CONTENT_TYPE, Exposition
from gateway.store import connection, replication, tallies
from gateway.store.counters import write_counters
from gateway.store.surveys import Store

log = logs.logger(__name__)

TOKEN_KEY = web.RequestKey("token", ApiToken)
# Redis is not there (refused, reset, timed out, loading its data) or is a read-only
# replica after a failover: the request may succeed later. A script error (any other
# ResponseError) is a bug, not this.
REDIS_AWAY: Final = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
# RFC 9110 §10.2.3: when to try again, in seconds.
RETRY_AFTER_S: Final = 5
# While Redis is away, one log line per this many seconds, not one per request.
AWAY_LOG_EVERY_S: Final = 60.0


class Api:
    """Handlers; `app()` builds the aiohttp application."""

    def __init__(self, settings: Settings, store: Store, templates: Mapping[str, Any]) -> None:
        self.settings = settings
        self.store = store
        self.templates = templates
        self.accepting = True
        # The parts of /healthz and /metrics (gateway/api/health.py): the service
        # registers what its process has (binds, dialer, webhook backlog, ...).
        self.checks = Health(
            store.redis.ping,
            lambda: connection.health(store.redis, settings.redis.replicas),
        )
        self.checks.sources["stats"] = self._stats
        self.checks.sources["tallies"] = self._tallies
        # routes whose requests carry their own credential (signed recording URLs)
        self._no_token: set[web.AbstractResource] = set()
        self._away_logged_at = -AWAY_LOG_EVERY_S
        # Pages served beside the API with their own credential (the desk's session
        # cookie, gateway/desk/): each adds its routes and returns them, no bearer token.
        self.mounts: list[Callable[[web.Application], set[web.AbstractResource]]] = []

    def app(self) -> web.Application:
        """The aiohttp application with its routes and middlewares."""
        app = web.Application(
            middlewares=[self._errors, self._auth],
            client_max_size=self.settings.api.max_body_bytes,
        )
        SurveyApi(self.settings, self.store, self.templates, TOKEN_KEY, self).routes(app)
        CallbackApi(self.store, self.settings.dialer, TOKEN_KEY).routes(app)
        self._no_token = RecordingsApi(self.settings, self.store, TOKEN_KEY).routes(app)
        for mount in self.mounts:
            self._no_token |= mount(app)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    # --- errors ---------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # A request answers now: a write not on the replicas in time is a 503 at once
        # (gateway/store/replication.py), the core system posts again.
        replication.FAIL_FAST.set(True)
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except web.HTTPException as exc:
            if 400 <= exc.status < 500:  # the router's 404 and 405, aiohttp's 413
                code = exc.reason.lower().replace(" ", "_")
                return error(exc.status, code, exc.reason, headers=exc.headers)
            raise
        except REDIS_AWAY as exc:
            now = time.monotonic()
            if now - self._away_logged_at >= AWAY_LOG_EVERY_S:
                self._away_logged_at = now
                log.warning("api: Redis unavailable (%s); answering 503", lifecycle.describe(exc))
            return unavailable()

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
        # aiohttp decodes header bytes that are not UTF-8 to surrogates
        # (surrogateescape): the same error handler gives the bytes back.
        given = header[7:].strip().encode("utf-8", "surrogateescape")
        for token in self.settings.api.tokens:
            # constant-time comparison: a token must not leak through timing
            if hmac.compare_digest(given, token.token.encode()):
                request[TOKEN_KEY] = token
                resp = await handler(request)
                return resp
        return error(401, "unauthorized", "unknown token")

    # --- operations -----------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        """Liveness and readiness: ``200`` when the gateway can do its job, ``503`` (with
        ``Retry-After``) and the reasons in ``problems`` when it cannot: Redis away or not
        writable (not the master, or short of the replicas writes wait for), or no bind
        of a protocol up (see gateway/status.py); each part's state either way."""
        check = await self.checks.check(self.accepting)
        body = {**check.body, "problems": list(check.problems)}
        if not check.ok:
            resp = web.json_response(body, status=503, dumps=dumps)
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
            return resp
        return web.json_response(body, dumps=dumps)

    async def metrics(self, request: web.Request) -> web.Response:
        """The Prometheus text format (gateway/metrics.py): what can be read now, with
        ``minyi_redis_up 0`` while Redis is away (never a 500)."""
        exp = await self.checks.exposition()
        return web.Response(body=exp.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _stats(self, exp: Exposition, redis_up: bool) -> None:
        """The counters the Lua library keeps (gateway/store/counters.py)."""
        if redis_up:
            write_counters(exp, await self.store.stats())

    async def _tallies(self, exp: Exposition, redis_up: bool) -> None:
        """The per-unit counters the Lua keeps with the states (gateway/store/tallies.py)."""
        if redis_up:
            tallies.write_tallies(exp, await tallies.totals(self.store.redis))


def unavailable() -> web.Response:
    """503 with Retry-After: Redis cannot be reached right now."""
    resp = error(503, "unavailable", "the gateway's store (Redis) is not reachable; retry later")
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp
