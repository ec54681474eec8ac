"""HTTP API for callbacks: the agent's disposition and the second callback (二次回访).

``POST /v1/callbacks/{callback_id}/disposition`` (after a ``connected`` attempt)::

    {"reasons": ["slow_response"], "note": "...", "upheld": true,
     "rating": "unsatisfied", "agent": "agent1"}

``reasons`` are tag ids of the reply-understanding taxonomy (``minyi parse --tags``);
``upheld`` (required) says whether the complaint was verified; ``rating`` (optional) is
the citizen's rating as the agent heard it. The survey closes; the feed gets
``callback.disposition`` then ``survey.closed``. Answers: 200 stored (or already
stored: idempotent), 404 unknown callback, 409 not the survey's latest connected
attempt or ``agent`` names someone other than the agent who took the call (code
``agent``), 422 invalid body. Without ``agent`` the disposition is the core system's.

``POST /v1/surveys/{survey_id}/recheck`` (a closed or unreachable survey)::

    {"kind": "agent" | "ivr", "priority": 0-9, "note": "...", "work_order": "..."}

dials the citizen again (same attempts policy); the agent's disposition or the IVR
rating closes it. Answers: 202 queued, 404 unknown survey, 409 not closed.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway.api.body import BadBody, FieldError, field_name, read_json, shown, text_problem
from gateway.api.responses import error
from gateway.api.surveys import is_survey_id
from gateway.config import ApiToken
from gateway.config.dialer import KINDS, DialerSettings
from gateway.dialer.store import CallbackStore
from gateway.store import keys
from gateway.store.surveys import Store
from sms.understand.rules.load import default_rules

NOTE_MAX = 2000
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
_CALLBACK_ID_RE = re.compile(r"cb-[0-9a-f]{16}")
_REF_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.:/]{0,63}")


class CallbackApi:
    """Handlers; ``token_of(request)`` gives the caller's API token (unit scope)."""

    def __init__(self, store: Store, dialer: DialerSettings | None, token_key: Any) -> None:
        self.store = store
        self.callbacks = CallbackStore(store)
        self.dialer = dialer
        self.token_key = token_key
        self.reason_tags = frozenset(default_rules().reason_labels)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/callbacks/{callback_id}/disposition", self.disposition)
        app.router.add_post("/v1/surveys/{survey_id}/recheck", self.recheck)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise FieldError("body", "must be a JSON object")
        return body

    async def _allowed(self, request: web.Request, survey_id: str) -> bool:
        token: ApiToken = request[self.token_key]
        survey = await self.store.get_survey(survey_id)
        return survey is not None and token.allows(survey.get("unit_code", ""))

    async def disposition(self, request: web.Request) -> web.Response:
        cid = request.match_info["callback_id"]
        if not _CALLBACK_ID_RE.fullmatch(cid):
            return error(404, "not_found", "no such callback")
        try:
            payload = self._disposition(await self._body(request))
        except BadBody as e:
            return error(e.status, e.code, e.message)
        except FieldError as e:
            return error(422, "invalid", f"{e.field}: {e.reason}", field=e.field)
        sid = await self.store.redis.get(keys.CB_ID.format(callback_id=cid))
        if sid is None or not await self._allowed(request, str(sid)):
            return error(404, "not_found", "no such callback")
        payload["callback_id"] = cid
        status, sid, state = await self.callbacks.disposition(cid, payload)
        if status in ("stored", "exists"):
            return web.json_response(
                {"status": status, "survey_id": sid, "state": state, "callback_id": cid}
            )
        if status == "unknown":
            return error(404, "not_found", "no such callback")
        if status == "agent":  # ``state`` is then the agent who took the call
            return error(
                409,
                "agent",
                f"callback {cid} was taken by another agent; only that agent gives its disposition",
                survey_id=sid,
            )
        message = {
            "stale": "a later callback attempt exists for this survey",
            "state": f"the survey is {state}, not waiting for a disposition",
        }[status]
        return error(409, status, message, survey_id=sid, state=state)

    def _disposition(self, body: dict[str, Any]) -> dict[str, Any]:
        _known_only(body, ("reasons", "note", "upheld", "rating", "agent"))
        reasons = body.get("reasons", [])
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise FieldError("reasons", "must be a list of reason tags")
        unknown = [r for r in reasons if r not in self.reason_tags]
        if unknown:
            raise FieldError("reasons", f"unknown tag {shown(unknown[0])}")
        upheld = body.get("upheld")
        if not isinstance(upheld, bool):
            raise FieldError("upheld", "required: true or false")
        note = _note(body.get("note", ""))
        rating = body.get("rating")
        if rating is not None and rating not in RATINGS:
            raise FieldError("rating", f"must be one of {', '.join(RATINGS)}")
        agent = body.get("agent")
        if agent is not None and (not isinstance(agent, str) or not _REF_RE.fullmatch(agent)):
            raise FieldError("agent", "must be an agent name (letters, digits, - _ . :)")
        out: dict[str, Any] = {
            "reasons": list(dict.fromkeys(reasons)),
            "note": note,
            "upheld": upheld,
        }
        if rating is not None:
            out["rating"] = rating
        if agent is not None:
            out["agent"] = agent
        return out

    async def recheck(self, request: web.Request) -> web.Response:
        sid = request.match_info["survey_id"]
        try:
            body = await self._body(request) if request.can_read_body else {}
            kind, priority, payload = self._recheck(body)
        except BadBody as e:
            return error(e.status, e.code, e.message)
        except FieldError as e:
            return error(422, "invalid", f"{e.field}: {e.reason}", field=e.field)
        if not is_survey_id(sid) or not await self._allowed(request, sid):
            return error(404, "not_found", "no such survey")
        status, state = await self.callbacks.recheck(sid, payload, kind, priority)
        if status == "stored":
            return web.json_response(
                {"status": "queued", "survey_id": sid, "state": state}, status=202
            )
        if status == "unknown":
            return error(404, "not_found", "no such survey")
        return error(
            409, "state", f"the survey is {state}; only a closed or unreachable one is rechecked"
        )

    def _recheck(self, body: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        _known_only(body, ("kind", "priority", "note", "work_order"))
        d = self.dialer
        kind = body.get("kind", d.recheck_kind if d else "agent")
        if kind not in KINDS:
            raise FieldError("kind", f"must be one of {', '.join(KINDS)}")
        priority = body.get("priority", d.recheck_priority if d else 7)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            raise FieldError("priority", "must be an integer 0-9 (9 first)")
        note = _note(body.get("note", ""))
        payload: dict[str, Any] = {"kind": kind, "priority": priority, "note": note}
        work_order = body.get("work_order")
        if work_order is not None:
            if not isinstance(work_order, str) or not _REF_RE.fullmatch(work_order):
                raise FieldError("work_order", "must be a reference (letters, digits, - _ . : /)")
            payload["work_order"] = work_order
        return str(kind), priority, payload


def _known_only(body: dict[str, Any], known: tuple[str, ...]) -> None:
    """FieldError naming the first key of ``body`` not in ``known`` (quoted if odd)."""
    for key in body:
        if key not in known:
            raise FieldError(field_name(key), f"unknown field (known: {', '.join(sorted(known))})")


def _note(note: object) -> str:
    """A note (multi-line text for people: the agent's notes, the work order's words):
    line breaks and tabs are kept, other control characters and lone surrogates are
    refused — a note goes to the feed as it is written, never to a citizen."""
    if not isinstance(note, str):
        raise FieldError("note", f"must be text of at most {NOTE_MAX} characters")
    problem = text_problem(note, max_len=NOTE_MAX, multiline=True)
    if problem is not None:
        raise FieldError("note", problem)
    return note
