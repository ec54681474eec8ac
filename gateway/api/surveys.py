"""Surveys over HTTP: intake (one or a batch) and read-back with the full history.

POST /v1/surveys takes one survey (a JSON object) or a batch (`{"surveys": [...]}`,
up to api.max_batch). Every item gets an answer: created, existing (the same survey id
was posted before: idempotent, never a second SMS), rejected (stored, with the reason:
opted out, too frequent), conflict (the id is taken by a survey of a unit this token
may not see: not stored, and neither that survey's state nor its unit is told), or
invalid (not stored: what is wrong with it). Nothing is answered before it is stored.

What each field may hold, and why (every text is also bounded in length and free of
lone surrogates and control characters, gateway/api/body.py):

- ``survey_id``, ``unit_code``: identifiers, checked whole (``fullmatch``: "S1\\n" once
  passed ``^…$`` and its webhooks then failed on the header forever);
- ``service_type``: one of ``[surveys] service_names`` — its name is what the SMS
  says, so an unknown code would put raw text in front of the citizen;
- ``officer_id``: reaches the SMS (``{officer}``), and is an identifier of the core
  system's: refused, not cleaned, when it holds a control or format character (ESC,
  BEL, a newline, a right-to-left override), since a cleaned id would no longer match
  the core system's record;
- ``occurred_at``: ISO 8601, from OCCURRED_MAX_AGE before now to OCCURRED_MAX_AHEAD
  after it (a service does not happen in the future; a day covers clocks and time
  zones set wrong); a date the SMS cannot print is refused here, not at send time;
- ``template``: one of ``[sms.templates]``.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from aiohttp import web

from gateway import logs
from gateway.api.body import BadBody, FieldError, field_name, read_json, shown, text_problem
from gateway.api.responses import dumps, error
from gateway.config import ApiToken, Settings
from gateway.privacy import mask_phone
from gateway.store.surveys import IntakeResult, Store
from sms.phone import InvalidPhone, normalise_mobile

log = logs.logger(__name__)

# Both are matched whole (fullmatch): "$" would also match before a trailing newline.
SURVEY_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
CODE_RE: Final = re.compile(r"[A-Za-z0-9_\-]{1,32}")
OFFICER_MAX: Final = 32
PHONE_MAX: Final = 32  # "+86 138-0013-8000" with room for other separators
TIME_MAX: Final = 64
OCCURRED_MAX_AGE: Final = timedelta(days=365)
OCCURRED_MAX_AHEAD: Final = timedelta(days=1)
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
            body = await read_json(request)
        except BadBody as exc:
            return error(exc.status, exc.code, exc.message)
        token = request[self.token_key]
        if isinstance(body, dict) and "surveys" in body:
            items = body["surveys"]
            if len(body) > 1:
                other = next(k for k in body if k != "surveys")
                return error(400, "invalid_batch", f'unknown key {shown(other)} beside "surveys"')
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
            status = {
                "created": 201,
                "existing": 200,
                "rejected": 200,
                "conflict": 409,
                "invalid": 422,
            }[result["status"]]
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
            except FieldError as exc:
                sid_raw = item.get("survey_id") if isinstance(item, dict) else None
                results[i] = {
                    "index": i,
                    # repeated only when it is a valid id: never raw input in an answer
                    "survey_id": sid_raw if is_survey_id(sid_raw) else None,
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
            if r.status == "existing" and not await self._visible(sid, token):
                # Another unit's survey: its state is not this token's to see (GET
                # answers 404), and a second survey of the same id cannot be made.
                results[i] = {
                    "index": i,
                    "survey_id": sid,
                    "status": "conflict",
                    "field": "survey_id",
                    "reason": "survey_id_in_use",
                    "message": "this survey id is already in use; post the survey under another id",
                }
                continue
            status = r.status if r.state != "rejected" or r.status == "existing" else "rejected"
            out: dict[str, Any] = {"index": i, "survey_id": sid, "status": status, "state": r.state}
            if r.reason:
                out["reason"] = r.reason
            results[i] = out
        return [r for r in results if r is not None]

    async def _visible(self, sid: str, token: ApiToken) -> bool:
        """Whether ``token`` may see the stored survey ``sid`` (its unit)."""
        survey = await self.store.get_survey(sid)
        return survey is not None and token.allows(survey.get("unit_code", ""))

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
            raise FieldError("survey", "must be a JSON object")
        unknown = sorted(set(item) - set(FIELDS))
        if unknown:
            raise FieldError(field_name(unknown[0]), "unknown field")
        sid = item.get("survey_id")
        if not is_survey_id(sid):
            raise FieldError("survey_id", "required: 1-64 of A-Z a-z 0-9 _ . : -")
        assert isinstance(sid, str)
        raw_phone = item.get("phone")
        if not isinstance(raw_phone, str):
            raise FieldError("phone", "required string")
        if len(raw_phone) > PHONE_MAX:
            raise FieldError("phone", f"longer than {PHONE_MAX} characters")
        try:
            phone = normalise_mobile(raw_phone)
        except InvalidPhone as exc:
            raise FieldError("phone", exc.reason) from None
        fields: dict[str, str] = {}
        for name in ("service_type", "unit_code"):
            v = item.get(name)
            if not isinstance(v, str) or not CODE_RE.fullmatch(v):
                raise FieldError(name, "required: 1-32 of A-Z a-z 0-9 _ -")
            fields[name] = v
        services = self.settings.surveys.service_names
        if fields["service_type"] not in services:
            raise FieldError(
                "service_type",
                f"unknown service type (known: {', '.join(sorted(services))})",
            )
        if not token.allows(fields["unit_code"]):
            raise FieldError("unit_code", "unit_not_allowed")
        fields["officer_id"] = self._officer(item.get("officer_id"))
        fields["occurred_at"] = self._occurred_at(item.get("occurred_at"))
        template = item.get("template", "default")
        if not isinstance(template, str) or template not in self.templates:
            raise FieldError("template", "unknown template")
        fields["template"] = template
        return sid, phone, fields

    @staticmethod
    def _officer(officer: object) -> str:
        """The officer id as given, or FieldError: it is printed in the citizen's SMS."""
        if not isinstance(officer, str) or not officer.strip():
            raise FieldError("officer_id", f"required string of at most {OFFICER_MAX} characters")
        problem = text_problem(officer, max_len=OFFICER_MAX)
        if problem is not None:
            raise FieldError("officer_id", problem)
        return officer

    def _occurred_at(self, occurred: object) -> str:
        """The service time as stored (ISO 8601 with its offset), or FieldError."""
        usage = "required ISO 8601 time, e.g. 2026-11-23T10:05:00+08:00"
        if not isinstance(occurred, str) or len(occurred) > TIME_MAX:
            raise FieldError("occurred_at", usage)
        try:
            when = datetime.fromisoformat(occurred)
        except ValueError:
            raise FieldError("occurred_at", usage) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.settings.surveys.timezone)
        now = datetime.now(self.settings.surveys.timezone)
        # Compared as instants (a comparison never overflows; converting 9999-12-31
        # at -12:00 to local time, as the SMS text needs, does).
        if not now - OCCURRED_MAX_AGE <= when <= now + OCCURRED_MAX_AHEAD:
            raise FieldError(
                "occurred_at",
                f"must be within the last {OCCURRED_MAX_AGE.days} days "
                f"(and at most {OCCURRED_MAX_AHEAD.days} day ahead)",
            )
        return when.isoformat()

    # --- read-back ------------------------------------------------------------------------
    async def get_survey(self, request: web.Request) -> web.Response:
        """A survey with its full event history."""
        sid = request.match_info["survey_id"]
        if not is_survey_id(sid):
            return error(404, "not_found", "no such survey")
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


def is_survey_id(value: object) -> bool:
    """Whether ``value`` is a survey id (a string matched whole by SURVEY_ID_RE)."""
    return isinstance(value, str) and SURVEY_ID_RE.fullmatch(value) is not None


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
