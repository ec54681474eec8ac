"""The HTTP API the core system calls: survey intake and survey read-back.

Recordings (gateway/api/recordings.py): ``GET /v1/recordings/{base}`` hands out signed
URLs; the signed ``GET /v1/recordings/{base}/{leg}`` is the one route besides the health
and metrics pages that takes no bearer token (the signature is its credential).

POST /v1/surveys takes one survey (a JSON object) or a batch (`{"surveys": [...]}`,
up to api.max_batch). Every item gets an answer: created, existing (the same survey id
was posted before: idempotent, never a second SMS), rejected (stored, with the reason:
opted out, too frequent), or invalid (not stored: what is wrong with it). Nothing is
answered before it is stored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway import logs
from gateway.api.callbacks import CallbackApi
from gateway.api.recordings import RecordingsApi
from gateway.api.responses import dumps, error
from gateway.config import ApiToken, Settings
from gateway.privacy import mask_phone
from gateway.store.surveys import IntakeResult, Store
from sms.phone import InvalidPhone, normalise_mobile

log = logs.logger(__name__)

SURVEY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
CODE_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
FIELDS = (
    "survey_id",
    "phone",
    "service_type",
    "unit_code",
    "officer_id",
    "occurred_at",
    "template",
)

TOKEN_KEY = web.RequestKey("token", ApiToken)


class Invalid(Exception):
    """One survey item is malformed; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


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
        app.router.add_post("/v1/surveys", self.post_surveys)
        app.router.add_get("/v1/surveys/{survey_id}", self.get_survey)
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

    # --- intake ---------------------------------------------------------------------------
    async def post_surveys(self, request: web.Request) -> web.Response:
        """Create one survey or a batch."""
        if not self.accepting:
            return error(503, "shutting_down", "the gateway is stopping; retry elsewhere")
        try:
            body = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "invalid_json", "body is not JSON")
        except web.HTTPRequestEntityTooLarge:
            return error(413, "body_too_large", "request body too large")
        token = request[TOKEN_KEY]
        if isinstance(body, dict) and "surveys" in body:
            items = body["surveys"]
            if not isinstance(items, list):
                return error(400, "invalid_batch", '"surveys" must be a list')
            if len(items) > self.settings.api.max_batch:
                return error(
                    413,
                    "batch_too_large",
                    f"a batch holds at most {self.settings.api.max_batch} surveys",
                    size=len(items),
                )
            results = await self._intake_many(items, token)
            counts: dict[str, int] = {}
            for r in results:
                counts[r["status"]] = counts.get(r["status"], 0) + 1
            return web.json_response({"results": results, "counts": counts}, dumps=dumps)
        if isinstance(body, dict):
            result = (await self._intake_many([body], token))[0]
            status = {"created": 201, "existing": 200, "invalid": 422, "rejected": 200}[
                result["status"]
            ]
            if result["status"] == "invalid" and result.get("field") == "unit_code":
                status = 403 if result["reason"] == "unit_not_allowed" else status
            return web.json_response(result, status=status, dumps=dumps)
        return error(400, "invalid_body", 'expected a survey object or {"surveys": [...]}')

    async def _intake_many(self, items: list[Any], token: ApiToken) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(items)
        valid: list[tuple[int, str, str, dict[str, str]]] = []
        for i, item in enumerate(items):
            try:
                sid, phone, fields = self._validate(item, token)
            except Invalid as exc:
                sid_raw = item.get("survey_id") if isinstance(item, dict) else None
                results[i] = {
                    "index": i,
                    "survey_id": sid_raw if isinstance(sid_raw, str) else None,
                    "status": "invalid",
                    "field": exc.field,
                    "reason": exc.reason,
                }
            else:
                valid.append((i, sid, phone, fields))
        # Concurrently, so the store sends them to Redis as one pipeline; a survey id
        # posted twice in one batch is still one survey (the second finds the first).
        stored = await asyncio.gather(*(self._intake_one(sid, ph, f) for _, sid, ph, f in valid))
        for (i, sid, _, _), r in zip(valid, stored, strict=True):
            status = r.status if r.state != "rejected" or r.status == "existing" else "rejected"
            out: dict[str, Any] = {"index": i, "survey_id": sid, "status": status, "state": r.state}
            if r.reason:
                out["reason"] = r.reason
            results[i] = out
        return [r for r in results if r is not None]

    async def _intake_one(self, sid: str, phone: str, fields: dict[str, str]) -> IntakeResult:
        s = self.settings.surveys
        now = datetime.now(s.timezone)
        defer_at: float | None = None
        q = s.quiet_hours
        if q.enabled and q.contains(now):
            # Spread the morning release over spread_s by a hash of the id, so 08:00
            # is not one burst towards the SMS center (and the citizens).
            spread = (zlib.crc32(sid.encode()) % 10_000) / 10_000 * q.spread_s
            defer_at = q.next_end(now).timestamp() + spread
        result = await self.store.intake(
            sid,
            phone,
            fields,
            cap_s=s.frequency_cap_s,
            defer_at=defer_at,
            ttl_s=s.retention_s,
            accepted_payload={k: v for k, v in fields.items() if k != "phone"}
            | {"phone_masked": mask_phone(phone)},
        )
        if result.status == "created":
            log.info(
                "api survey=%s to=%s state=%s%s",
                sid,
                mask_phone(phone),
                result.state,
                f" reason={result.reason}" if result.reason else "",
            )
        return result

    def _validate(self, item: Any, token: ApiToken) -> tuple[str, str, dict[str, str]]:
        if not isinstance(item, dict):
            raise Invalid("survey", "must be a JSON object")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise Invalid(unknown[0], "unknown field")
        sid = item.get("survey_id")
        if not isinstance(sid, str) or not SURVEY_ID_RE.match(sid):
            raise Invalid("survey_id", "required: 1-64 of A-Z a-z 0-9 _ . : -")
        raw_phone = item.get("phone")
        if not isinstance(raw_phone, str):
            raise Invalid("phone", "required string")
        try:
            phone = normalise_mobile(raw_phone)
        except InvalidPhone as exc:
            raise Invalid("phone", str(exc.reason if hasattr(exc, "reason") else exc)) from None
        fields: dict[str, str] = {}
        for name in ("service_type", "unit_code"):
            v = item.get(name)
            if not isinstance(v, str) or not CODE_RE.match(v):
                raise Invalid(name, "required: 1-32 of A-Z a-z 0-9 _ -")
            fields[name] = v
        if not token.allows(fields["unit_code"]):
            raise Invalid("unit_code", "unit_not_allowed")
        officer = item.get("officer_id")
        if not isinstance(officer, str) or not 0 < len(officer) <= 32:
            raise Invalid("officer_id", "required string of at most 32 characters")
        fields["officer_id"] = officer
        occurred = item.get("occurred_at")
        try:
            when = datetime.fromisoformat(occurred) if isinstance(occurred, str) else None
        except ValueError:
            when = None
        if when is None:
            raise Invalid("occurred_at", "required ISO 8601 time, e.g. 2026-11-23T10:05:00+08:00")
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.settings.surveys.timezone)
        fields["occurred_at"] = when.isoformat()
        template = item.get("template", "default")
        if not isinstance(template, str) or template not in self.templates:
            raise Invalid("template", "unknown template")
        fields["template"] = template
        return sid, phone, fields

    # --- read-back ------------------------------------------------------------------------
    async def get_survey(self, request: web.Request) -> web.Response:
        """A survey with its full event history."""
        sid = request.match_info["survey_id"]
        survey = await self.store.get_survey(sid)
        token = request[TOKEN_KEY]
        # A token that may not see the unit gets the same answer as for a missing survey.
        if survey is None or not token.allows(survey.get("unit_code", "")):
            return error(404, "not_found", "no such survey")
        events = await self.store.events(sid)
        return web.json_response(
            {
                "survey_id": sid,
                "state": survey.get("state"),
                "survey": _public(survey),
                "events": [
                    {
                        "id": e.id,
                        "type": e.type,
                        "seq": e.seq,
                        "time": e.time,
                        "payload": e.payload,
                    }
                    for e in events
                ],
            },
            dumps=dumps,
        )

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


def _public(survey: Mapping[str, str]) -> dict[str, Any]:
    """The survey record as the API shows it: parts grouped, internals left out."""
    out: dict[str, Any] = {}
    parts: dict[int, dict[str, str]] = {}
    for k, v in survey.items():
        if k.startswith("p") and ":" in k and k[1 : k.index(":")].isdigit():
            idx = int(k[1 : k.index(":")])
            parts.setdefault(idx, {"part": str(idx)})[k[k.index(":") + 1 :]] = v
        elif k not in ("seq",):
            out[k] = v
    if parts:
        out["parts"] = [parts[i] for i in sorted(parts)]
    return out
