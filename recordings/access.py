"""Access to recordings: short-lived signed URLs, and the aiohttp route that serves them.

The bearer-token API hands out URLs (:func:`signed_url`) valid for ``url_ttl_s``
(default 600 s) to whoever may listen - the core system's work-order screen, a
supervisor's browser - which then fetch the audio without the API token::

    GET /v1/recordings/{base}/{leg}?expires=<unix seconds>&sig=<signature>

``leg`` is ``mix``, ``citizen``, ``agent`` or ``reason`` (:mod:`recordings.naming`).
The signature is HMAC-SHA256 (RFC 2104) over ``v1:{base}:{leg}:{expires}`` with the
gateway's recordings secret, base64url without padding; it binds the recording, the leg
and the expiry, and is compared in constant time. Answers: 200 with the WAV
(``audio/wav``, byte ranges supported), 403 with ``{"error": "forbidden", "reason": ...}``
(``bad_name``, ``bad_leg``, ``missing_signature``, ``bad_expiry``, ``expired``,
``bad_signature``), 404 ``{"error": "not_found"}``. Names are validated against
``[-A-Za-z0-9_]{1,100}`` before any file is touched, so no path leaves the recordings
directory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from gateway import logs
from gateway.privacy import mask_numbers
from recordings.naming import LEG_SUFFIXES, leg_path, valid_base

log = logs.logger(__name__)

DEFAULT_URL_TTL_S = 600
ROUTE_PREFIX = "/v1/recordings"
MIN_SECRET_BYTES = 16
_MAX_EXPIRES_DIGITS = 12  # unix seconds until the year 33658


class AccessDenied(Exception):
    """A request for a recording that must be refused; ``reason`` is the wire code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"the recordings secret needs at least {MIN_SECRET_BYTES} bytes")
    return key


def _check_name(base: str, leg: str) -> None:
    if not valid_base(base):
        raise AccessDenied("bad_name")
    if leg not in LEG_SUFFIXES:
        raise AccessDenied("bad_leg")


def signature(base: str, leg: str, expires_ts: int, secret: str | bytes) -> str:
    """The signature of one leg of a recording until ``expires_ts`` (see the docstring)."""
    msg = f"v1:{base}:{leg}:{expires_ts}".encode()
    digest = hmac.new(_key(secret), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(base: str, leg: str, expires_ts: int, secret: str | bytes) -> str:
    """The query string (``expires=...&sig=...``) granting access until ``expires_ts``.

    Raises ValueError for a bad base name or leg, or a secret shorter than 16 bytes.
    """
    try:
        _check_name(base, leg)
    except AccessDenied as exc:
        raise ValueError(f"cannot sign {base!r}/{leg!r}: {exc.reason}") from None
    expires_ts = int(expires_ts)
    return urlencode({"expires": expires_ts, "sig": signature(base, leg, expires_ts, secret)})


def signed_url(
    base: str,
    leg: str,
    secret: str | bytes,
    *,
    ttl_s: float = DEFAULT_URL_TTL_S,
    now: float | None = None,
    prefix: str = ROUTE_PREFIX,
) -> str:
    """The path and query of a URL serving one leg for ``ttl_s`` seconds from ``now``."""
    expires = int((time.time() if now is None else now) + ttl_s)
    return f"{prefix}/{base}/{leg}?{sign(base, leg, expires, secret)}"


def verify(
    base: str,
    leg: str,
    expires: str | None,
    sig: str | None,
    secret: str | bytes,
    *,
    now: float | None = None,
) -> None:
    """Return if the request may have the recording; raise :class:`AccessDenied` if not."""
    _check_name(base, leg)
    if not expires or not sig:
        raise AccessDenied("missing_signature")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > _MAX_EXPIRES_DIGITS:
        raise AccessDenied("bad_expiry")
    expected = signature(base, leg, int(expires), secret)
    # Checked before the expiry so a forged URL learns nothing about the clock.
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        raise AccessDenied("bad_signature")
    if int(expires) <= (time.time() if now is None else now):
        raise AccessDenied("expired")


def recording_routes(
    recordings_dir: Path,
    secret: str | bytes,
    *,
    prefix: str = ROUTE_PREFIX,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """The route serving signed recording URLs (GET, and HEAD); add to the API's app."""
    _key(secret)  # refuse a weak secret at start-up, not per request
    root = recordings_dir

    async def get_recording(request: web.Request) -> web.StreamResponse:
        base, leg = request.match_info["base"], request.match_info["leg"]
        try:
            verify(
                base,
                leg,
                request.query.get("expires"),
                request.query.get("sig"),
                secret,
                now=clock(),
            )
        except AccessDenied as exc:
            log.info(
                "recording refused base=%s leg=%s reason=%s peer=%s",
                mask_numbers(base[:100]),
                leg[:10],
                exc.reason,
                request.remote,
            )
            return web.json_response({"error": "forbidden", "reason": exc.reason}, status=403)
        path = leg_path(root, base, leg)
        if not await asyncio.to_thread(path.is_file):  # maybe a network share: off the loop
            return web.json_response({"error": "not_found"}, status=404)
        log.info("recording served base=%s leg=%s peer=%s", mask_numbers(base), leg, request.remote)
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "audio/wav",
                "Cache-Control": "private, no-store",
                "Content-Disposition": f'inline; filename="{path.name}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [web.get(prefix + "/{base}/{leg}", get_recording)]
