"""The agent's desk at ``/desk/``: login, the screen pop over Server-Sent Events, the
disposition form, pause and unpause. The supervisor's board is gateway/desk/board.py.

Routes (all HTML but the event stream; none takes the API's bearer token — the
session cookie is their credential, gateway/desk/auth.py):

- ``GET /desk/login``, ``POST /desk/login``, ``POST /desk/logout``: every login,
  refused login and logout is an event on the feed (``desk.login``,
  ``desk.login_refused``, ``desk.logout``) with the acting user;
- ``GET /desk/``: the agent's desk (a supervisor is sent to ``/board/``);
- ``GET /desk/events``: ``text/event-stream``; event ``card`` carries the rendered pop
  whenever the dialer reports the agent took a call or the call ended;
- ``POST /desk/disposition``: the agent's verdict, stored by the same function as the
  API's (``minyi_cb_disposition``) with the logged-in agent as ``agent``; refused
  (409) for a call that another agent took;
- ``POST /desk/agent/{login,logout,pause,unpause}``: the agent's queue membership and
  pause, through the dialer's agent actions (:mod:`gateway.desk.actions`);
- ``GET /desk/static/{name}``: the pages' CSS and JavaScript, from this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from gateway import logs
from gateway.api.body import text_problem
from gateway.config import Settings
from gateway.config.api import DeskUser
from gateway.config.reader import NAME_RE
from gateway.desk import pages
from gateway.desk.actions import ACTIONS, STATE_NAMES, AgentActions
from gateway.desk.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, Sessions, same, verify_pin
from gateway.desk.hub import Hub
from gateway.desk.pop import card
from gateway.dialer.store import CallbackStore
from gateway.store import keys, library
from gateway.store.surveys import Store
from sms.understand.rules.load import default_rules

log = logs.logger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_FILES: Final = {"desk.css": "text/css", "desk.js": "text/javascript"}
# SSE: a comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S: Final = 15.0
NOTE_MAX: Final = 2000
RATINGS: Final = ("satisfied", "basically_satisfied", "unsatisfied")
# Every page: no framing by another site, no caching of a citizen's data.
SECURITY_HEADERS: Final = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


class Desk:
    """The desk's handlers and what the board shares with them (sessions, the pop)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        actions: AgentActions | None,
        sms_text: Callable[[Mapping[str, str]], str | None],
    ) -> None:
        self.settings = settings
        self.desk = settings.api.desk
        self.store = store
        self.callbacks = CallbackStore(store)
        self.sessions = Sessions(store.redis, self.desk)
        self.actions = actions
        self.hub = Hub(store.redis)
        self.sms_text = sms_text
        self.labels: dict[str, str] = dict(default_rules().reason_labels)
        d = settings.dialer
        self.wrapup_s = d.wrapup_s if d is not None else 0.0
        queues: dict[str, list[str]] = {}
        if d is not None and d.asterisk is not None:
            for q in d.asterisk.units:
                for agent in q.agents:
                    queues.setdefault(agent, []).append(q.unit)
        self._queues = queues

    def routes(self, app: web.Application) -> set[web.AbstractResource]:
        """Add the desk's routes; the resources that take no bearer token (all)."""
        r = app.router
        found = [
            r.add_get("/desk/login", self.login_form),
            r.add_post("/desk/login", self.login),
            r.add_post("/desk/logout", self.logout),
            r.add_get("/desk/", self.page),
            r.add_get("/desk/events", self.events),
            r.add_post("/desk/disposition", self.disposition),
            r.add_post("/desk/agent/{action}", self.agent_action),
            r.add_get("/desk/static/{name}", self.static),
        ]
        return {route.resource for route in found if route.resource is not None}

    async def close(self) -> None:
        """End the open event streams, let go of the hub's subscription and the PBX
        connection (the drain: an open stream would hold the API's close)."""
        self.hub.end_streams()
        await self.hub.close()
        if self.actions is not None:
            await self.actions.close()

    def units_of(self, user: DeskUser) -> tuple[str, ...]:
        """An agent's unit queues (their own list, else the queues that name them); a
        supervisor's units."""
        return user.units or tuple(self._queues.get(user.id, ()))

    # --- sessions -------------------------------------------------------------------
    async def session(self, request: web.Request, role: str | None = None) -> Session:
        """The request's session, or a redirect to the login (or the user's own page)."""
        found = await self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if found is None:
            raise web.HTTPSeeOther("/desk/login")
        if role is not None and found.user.role != role:
            raise web.HTTPSeeOther("/desk/" if found.user.role == "agent" else "/board/")
        return found

    async def posted(self, request: web.Request, role: str | None = None) -> tuple[Session, Any]:
        """The session and form of a post, refused (403) without the session's CSRF
        token or from another origin."""
        s = await self.session(request, role)
        form = await request.post()
        # A browser sends Origin with every form post; another site's is refused. The
        # host only: behind a TLS-terminating proxy the scheme seen here is http.
        origin = request.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="cross-origin form")
        if not same(str(form.get("csrf", "")), s.csrf):
            raise web.HTTPForbidden(text="missing or wrong CSRF token")
        return s, form

    async def feed(self, etype: str, payload: dict[str, Any]) -> None:
        """An event of the desk on the feed (no survey)."""
        now_iso = datetime.now(self.store.tz).isoformat(timespec="milliseconds")
        await library.fcall(
            self.store.redis, "minyi_desk_event", etype, now_iso, json.dumps(payload)
        )

    # --- login ----------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.Response:
        token = secrets.token_urlsafe(24)
        resp = _html(pages.login_page(token))
        resp.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/desk/login"
        )
        return resp

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        user_id = str(form.get("user", "")).strip()
        if not NAME_RE.fullmatch(user_id):
            user_id = ""  # no configured id looks like this: never a key or a log line
        if not same(str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
            return _html(pages.message_page("登录", "页面已过期，请重新登录"), 403)
        user = self.desk.user(user_id)
        pin = str(form.get("pin", ""))[:256]
        peer = request.remote or ""
        locked = await self.sessions.locked(user_id or "-")
        # scrypt is slow on purpose: off the event loop
        ok = (
            not locked
            and user is not None
            and await asyncio.to_thread(verify_pin, pin, user.pin_hash)
        )
        if user is None or not ok:
            reason = "locked" if locked else "wrong_credentials"
            if not locked:
                await self.sessions.failed(user_id or "-")
            log.warning("desk login refused user=%s peer=%s (%s)", user_id or "-", peer, reason)
            await self.feed("desk.login_refused", {"user": user_id, "peer": peer, "reason": reason})
            token = secrets.token_urlsafe(24)
            message = "错误次数过多，请15分钟后再试" if locked else "工号或密码错误"
            resp = _html(pages.login_page(token, message, user_id), 401)
            resp.set_cookie(
                LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/desk/login"
            )
            return resp
        session = await self.sessions.open(user)
        await self.feed("desk.login", {"user": user.id, "role": user.role, "peer": peer})
        log.info("desk login user=%s role=%s peer=%s", user.id, user.role, peer)
        resp = _redirect("/desk/" if user.role == "agent" else "/board/")
        resp.set_cookie(
            SESSION_COOKIE,
            session.cookie,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
        )
        resp.del_cookie(LOGIN_CSRF_COOKIE, path="/desk/login")
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        s, _form = await self.posted(request)
        await self.sessions.close(s.cookie)
        await self.feed("desk.logout", {"user": s.user.id, "role": s.user.role})
        resp = _redirect("/desk/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    # --- the desk -------------------------------------------------------------------
    async def current_call(self, agent: str) -> dict[str, Any] | None:
        """The agent's call now or last (``keys.DESK_CALL``)."""
        raw = await self.store.redis.get(keys.DESK_CALL.format(agent=agent))
        try:
            call = json.loads(raw) if raw else None
        except ValueError:
            return None
        return call if isinstance(call, dict) else None

    async def card_html(self, s: Session, call: Mapping[str, Any]) -> str:
        """The pop of ``call`` as ``s``'s agent sees it ("" when the survey is gone)."""
        sid, cid = str(call.get("survey_id", "")), str(call.get("callback_id", ""))
        survey = await self.store.get_survey(sid)
        if survey is None:
            return ""
        mine = survey.get("cb_agent") == s.user.id and survey.get("cb_agent_for") == cid
        sv = self.settings.surveys
        c = card(
            survey,
            await self.store.events(sid),
            cid,
            tz=self.store.tz,
            full_number=mine,  # the full number only to the agent of this call
            service_names=sv.service_names,
            unit_names=sv.unit_names,
            sms_text=self.sms_text,
        )
        ended = None
        if call.get("ended_at"):
            with contextlib.suppress(ValueError, TypeError):
                ended = datetime.fromisoformat(str(call["ended_at"])).timestamp()
        return pages.card_html(
            c, labels=self.labels, csrf=s.csrf, wrapup_s=self.wrapup_s, ended_ts=ended
        )

    async def agent_state(self, user: DeskUser) -> str | None:
        """The agent's state as the dialer last stored it (``agent.state``), in words."""
        found = (await self.callbacks.agent_states()).get(user.id)
        if not found:
            return None
        state = str(found.get("state", ""))
        return STATE_NAMES.get(state, state)

    async def page(self, request: web.Request) -> web.Response:
        s = await self.session(request, "agent")
        call = await self.current_call(s.user.id)
        html = await self.card_html(s, call) if call else ""
        messages = {
            "done": "处理结果已提交，问卷已办结",
            "login": "已签入队列",
            "logout": "已签出队列",
            "pause": "已暂停接听",
            "unpause": "已恢复接听",
        }
        return _html(
            pages.desk_page(
                user=s.user.id,
                csrf=s.csrf,
                units=self.units_of(s.user),
                card=html,
                state=await self.agent_state(s.user),
                message=messages.get(request.query.get("m", ""), ""),
            )
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the agent's pop, live."""
        s = await self.session(request, "agent")
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
            }
        )
        await resp.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the page was closed
            await self._stream(s, resp)
        return resp

    async def _stream(self, s: Session, resp: web.StreamResponse) -> None:
        async with self.hub.listen(s.user.id) as queue:
            await resp.write(b"retry: 2000\n: connected\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    if await self.sessions.get(s.cookie) is None:
                        break  # the session ended: so does its stream
                    continue
                if message.get("kind") == "close":
                    break
                call = await self.current_call(s.user.id)
                if call is None or call.get("callback_id") != message.get("callback_id"):
                    call = message
                html = await self.card_html(s, call)
                data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
                await resp.write(f"event: card\n{data}\n".encode())

    async def disposition(self, request: web.Request) -> web.Response:
        s, form = await self.posted(request, "agent")
        cid = str(form.get("callback_id", ""))
        upheld = form.get("upheld")
        reasons = [str(r) for r in form.getall("reasons", [])]
        rating = str(form.get("rating", ""))
        note = str(form.get("note", ""))
        problem = None
        if upheld not in ("1", "0"):
            problem = "请选择投诉是否属实"
        elif any(r not in self.labels for r in reasons):
            problem = "原因不在分类表中"
        elif rating and rating not in RATINGS:
            problem = "评价无效"
        elif text_problem(note, max_len=NOTE_MAX, multiline=True) is not None:
            problem = "备注过长或含有无效字符"
        if problem is not None:
            return _html(pages.message_page("处理结果", problem, "/desk/"), 422)
        sid = await self.store.redis.get(keys.CB_ID.format(callback_id=cid)) if cid else None
        survey = await self.store.get_survey(str(sid)) if sid else None
        if survey is None:
            return _html(pages.message_page("处理结果", "没有这通回访", "/desk/"), 404)
        if survey.get("cb_agent") != s.user.id or survey.get("cb_agent_for") != cid:
            log.warning("desk disposition refused callback=%s agent=%s", cid, s.user.id)
            return _html(pages.message_page("处理结果", "这通电话不是您接听的", "/desk/"), 409)
        payload: dict[str, Any] = {
            "reasons": list(dict.fromkeys(reasons)),
            "note": note,
            "upheld": upheld == "1",
            "agent": s.user.id,
            "callback_id": cid,
        }
        if rating:
            payload["rating"] = rating
        status, _sid, _state = await self.callbacks.disposition(cid, payload)
        log.info("desk disposition callback=%s agent=%s status=%s", cid, s.user.id, status)
        if status in ("stored", "exists"):
            return _redirect("/desk/?m=done")
        message = {
            "state": "通话结束后才能提交处理结果",
            "stale": "该市民已有更新的回访",
            "unknown": "没有这通回访",
            "agent": "这通电话不是您接听的",
        }.get(status, status)
        return _html(pages.message_page("处理结果", message, "/desk/"), 409)

    async def agent_action(self, request: web.Request) -> web.Response:
        """Log in, log out, pause or unpause the agent (the feature codes' twins)."""
        action = request.match_info["action"]
        if action not in ACTIONS:
            raise web.HTTPNotFound()
        s, _form = await self.posted(request, "agent")
        if self.actions is None:
            return _html(pages.message_page("坐席", "未配置 Asterisk", "/desk/"), 503)
        try:
            result = await self.actions.act(s.user, action)
        except Exception as exc:  # the PBX is away or refused: say so, keep the desk
            log.warning("desk %s agent=%s failed: %s", action, s.user.id, exc)
            return _html(pages.message_page("坐席", "操作失败，请稍后再试", "/desk/"), 502)
        log.info("desk %s agent=%s ok=%s %s", action, s.user.id, result.ok, result.detail)
        if not result.ok:
            return _html(pages.message_page("坐席", f"未能完成：{result.detail}", "/desk/"), 409)
        return _redirect("/desk/?m=" + action)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        body = await asyncio.to_thread((STATIC_DIR / name).read_bytes)
        return web.Response(
            body=body,
            content_type=STATIC_FILES[name],
            charset="utf-8",
            headers={"Cache-Control": "max-age=300"},
        )
