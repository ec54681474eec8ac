"""Surveys over HTTP: intake (one or a batch) and read-back with the full history.

POST /v1/surveys takes one survey (a JSON object) or a batch (`{"surveys": [...]}`,
up to api.max_batch). Every item gets an answer: created, existing (the same survey id
was posted before: idempotent, never a second SMS), rejected (stored, with the reason:
opted out, too frequent), or invalid (not stored: what is wrong with it). Nothing is
answered before it is stored.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from gateway import logs
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


class Accepting(Protocol):
    """Whether the process takes new surveys (False while it drains)."""

    accepting: bool


class Invalid(Exception):
    """One survey item is malformed; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SurveyApi:
    """The survey routes; `routes(app)` adds them."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        templates: Mapping[str, Any],
        token_key: web.RequestKey[ApiToken],
        process: Accepting,
    ) -> None:
        self.settings = settings
        self.store = store
        self.templates = templates
        self.token_key = token_key
        self.process = process

    def routes(self, app: web.Application) -> None:
        """Add POST /v1/surveys and GET /v1/surveys/{survey_id}."""
        app.router.add_post("/v1/surveys", self.post_surveys)
        app.router.add_get("/v1/surveys/{survey_id}", self.get_survey)

    # --- intake ---------------------------------------------------------------------------
    async def post_surveys(self, request: web.Request) -> web.Response:
        """Create one survey or a batch."""
        if not self.process.accepting:
            return error(503, "shutting_down", "the gateway is stopping; retry elsewhere")
        try:
            body = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "invalid_json", "body is not JSON")
        except web.HTTPRequestEntityTooLarge:
            return error(413, "body_too_large", "request body too large")
        token = request[self.token_key]
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
        token = request[self.token_key]
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
