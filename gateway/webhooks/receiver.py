"""A small webhook receiver: for the demo, the tests, and as reference code for the
core system's developers.

It does what a real receiver must do — verify the Standard Webhooks signature and
timestamp on the raw body, drop duplicates by ``webhook-id`` (delivery is at least
once), keep each survey's events in ``seq`` order — and counts what it sees
(duplicates, ids that came again with other content, out-of-order events, bad
signatures). For tests it can be told to fail
(``fail()``, ``hang()``, or ``POST /_control``).

Run it: ``python -m gateway.webhooks.receiver --port 8099 --secret whsec_...``.
``GET /_events`` returns what it got. The control routes have no authentication:
bind it to loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway import logs
from gateway.webhooks.signing import (
    DEFAULT_TOLERANCE_S,
    HEADER_ID,
    InvalidSignature,
    decode_secret,
    verify,
)

log = logs.logger(__name__)


class WebhookReceiver:
    """An aiohttp app receiving the feed; ``start()`` serves it on loopback."""

    def __init__(self, secret: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S) -> None:
        decode_secret(secret)  # a bad secret fails here, not on every request
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._closing = asyncio.Event()
        self._arrived = asyncio.Event()  # set at each new event, for wait_until()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application()
        self.app.router.add_post("/_control", self._control)
        self.app.router.add_get("/_events", self._events)
        self.app.router.add_post("/{tail:.*}", self._receive)
        self._fail_status = 0
        self._fail_until = 0.0  # monotonic; 0 = not failing
        self._hang_until = 0.0
        self.delay_s = 0.0  # answer every request this much later (a slow receiver)
        self.reset()

    # --- what it got ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything received (the failure mode is kept)."""
        self.events: dict[str, list[dict[str, Any]]] = {}  # survey id -> events, arrival order
        self.arrivals: dict[str, float] = {}  # event id -> unix time of first arrival
        self._seen_ids: set[str] = set()
        self._content: dict[str, str] = {}  # event id -> the event as first received
        self._last_seq: dict[str, int] = {}
        self.requests = 0
        self.received = 0  # distinct events
        self.duplicates = 0
        # an id received again with other content: a receiver that de-duplicates on id
        # (as it should) has dropped a real event — the gateway must never do this
        self.conflicts = 0
        self.out_of_order = 0  # an event older than one already received for its survey
        self.rejected = 0  # bad signature or timestamp
        self.refused = 0  # answered with an injected failure
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being handled at once

    def summary(self, *, events: bool = True, arrivals: bool = False) -> dict[str, Any]:
        """Counters and the events per survey (what ``GET /_events`` returns); without
        ``events`` (``?events=0``) counters only; with ``arrivals`` (``?arrivals=1``)
        also each event's arrival time (unix seconds)."""
        extra: dict[str, Any] = {"events": self.events} if events else {}
        if arrivals:
            extra["arrivals"] = self.arrivals
        return {
            **extra,
            "requests": self.requests,
            "received": self.received,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "out_of_order": self.out_of_order,
            "rejected": self.rejected,
            "refused": self.refused,
            "max_in_flight": self.max_in_flight,
        }

    async def wait_until(self, predicate: Callable[[], bool], limit: float = 30.0) -> None:
        """Wait until `predicate()` holds, re-checking whenever a new event arrives, so
        a wait ends with the event that ends it (not at the next poll or, as a wait on
        the SMS center would, its next enquire_link). `limit` only guards against a
        hang: TimeoutError means the condition never came."""
        async with asyncio.timeout(limit):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

    def seqs(self, survey_id: str) -> list[int]:
        """The seq numbers received for a survey, in arrival order, duplicates dropped."""
        return [int(e["seq"]) for e in self.events.get(survey_id, [])]

    # --- failure injection ---------------------------------------------------------------

    def fail(self, status: int = 503, seconds: float | None = None) -> None:
        """Answer every request with ``status`` for ``seconds`` (None: until ok())."""
        self._fail_status = status
        self._fail_until = float("inf") if seconds is None else time.monotonic() + seconds

    def hang(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (then answer 503): a receiver that stalls."""
        self._hang_until = time.monotonic() + seconds

    def ok(self) -> None:
        """Back to normal: verify, record, answer 200 at once."""
        self._fail_until = 0.0
        self._hang_until = 0.0
        self.delay_s = 0.0

    # --- serving -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on ``host:port`` (0 = a free port); returns the port."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    @property
    def url(self) -> str:
        """Where the feed should POST."""
        return f"http://127.0.0.1:{self.port}/webhooks"

    async def close(self) -> None:
        """Stop serving; hanging requests are answered (503) at once."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        now = time.monotonic()
        if now < self._hang_until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._hang_until - now)
            self.refused += 1
            return web.Response(status=503, text="hung\n")
        if self.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.delay_s)
        if now < self._fail_until:
            self.refused += 1
            return web.Response(status=self._fail_status, text="failing on purpose\n")
        try:
            verify(self._secret, request.headers, body, tolerance_s=self._tolerance_s)
        except InvalidSignature as exc:
            self.rejected += 1
            log.warning("rejected a request from %s: %s", request.remote, exc)
            return web.Response(status=401, text="bad signature\n")
        msg_id = request.headers[HEADER_ID]
        doc = json.loads(body)
        if msg_id in self._seen_ids:  # a retry of something we already have
            self.duplicates += 1
            if doc.get("type") != "batch":
                self._same_content(doc)
            return web.Response(status=200, text="duplicate\n")
        for event in doc["events"] if doc.get("type") == "batch" else [doc]:
            self._record(event)
        self._seen_ids.add(msg_id)
        return web.Response(status=200, text="ok\n")

    def _record(self, event: dict[str, Any]) -> None:
        event_id = str(event["id"])
        if event_id in self._seen_ids:  # inside a batch: the id of a single event
            self.duplicates += 1
            self._same_content(event)
            return
        self._seen_ids.add(event_id)
        self._content[event_id] = _content(event)
        self.arrivals[event_id] = time.time()
        sid, seq = str(event.get("survey_id") or ""), int(event["seq"])
        if sid:  # events without a survey have no order
            if seq < self._last_seq.get(sid, 0):
                self.out_of_order += 1
                log.warning("survey %s: seq %d after seq %d", sid, seq, self._last_seq[sid])
            self._last_seq[sid] = max(seq, self._last_seq.get(sid, 0))
        self.events.setdefault(sid, []).append(event)
        self.received += 1
        self._arrived.set()
        log.debug("event %s survey %s seq %d", event.get("type"), sid, seq)

    def _same_content(self, event: dict[str, Any]) -> None:
        """A duplicate id: the same event again (fine), or another one (a conflict)."""
        first = self._content.get(str(event.get("id")))
        if first is not None and first != _content(event):
            self.conflicts += 1
            log.error("event id %s came again with other content", event.get("id"))

    async def _control(self, request: web.Request) -> web.Response:
        """``{"action": "fail", "status": 503, "seconds": 30}``, ``{"action": "hang",
        "seconds": 30}``, ``{"action": "slow", "seconds": 0.5}`` (every answer delayed),
        ``{"action": "ok"}`` or ``{"action": "reset"}``."""
        cmd = await request.json()
        action = cmd.get("action")
        if action == "fail":
            self.fail(int(cmd.get("status", 503)), cmd.get("seconds"))
        elif action == "hang":
            self.hang(float(cmd.get("seconds", 60)))
        elif action == "slow":
            self.delay_s = float(cmd.get("seconds", 1))
        elif action == "ok":
            self.ok()
        elif action == "reset":
            self.reset()
        else:
            return web.json_response({"error": f"unknown action {action!r}"}, status=400)
        return web.json_response({"action": action})

    async def _events(self, request: web.Request) -> web.Response:
        summary = self.summary(
            events=request.query.get("events") != "0",
            arrivals=request.query.get("arrivals") == "1",
        )
        return web.json_response(summary, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _content(event: dict[str, Any]) -> str:
    """An event's content, for comparing two events of one id."""
    return json.dumps(event, sort_keys=True, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.webhooks.receiver --port N --secret whsec_...``"""
    parser = argparse.ArgumentParser(prog="python -m gateway.webhooks.receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--secret", required=True, help="whsec_<base64>, as configured")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    receiver = WebhookReceiver(args.secret)
    web.run_app(receiver.app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
