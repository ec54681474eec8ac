"""HTTP API for callback recordings: short-lived signed URLs, and the audio behind them.

``GET /v1/recordings/{base}`` (bearer token) answers the signed URLs of the legs of a
recording that exist on disk, valid for ``recordings.url_ttl_s``::

    {"base": "20261123_cb-0123456789abcdef", "survey_id": "S1",
     "callback_id": "cb-0123456789abcdef", "expires_at": "2026-11-23T10:10:00+08:00",
     "legs": {"mix": "/v1/recordings/<base>/mix?expires=...&sig=...",
              "citizen": "...", "agent": "..."}}

URLs are relative to the API's base URL. The token's unit scope applies: a recording
whose survey's unit the token may not see is answered like an unknown one (404). The
recording's survey comes from the recording index (recordings/index.py, written by the
ASR worker). Answers: 200, 404 ``not_found``, 503 ``recordings_unavailable`` when
``recordings.url_secret`` is not configured.

``GET /v1/recordings/{base}/{leg}?expires=...&sig=...`` serves the audio
(recordings/access.py). It takes no bearer token: the signature is the credential, so
the URL can be handed to a browser or a work-order screen.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

from aiohttp import web

from gateway import logs
from gateway.api.responses import error
from gateway.config import ApiToken, Settings
from gateway.privacy import mask_numbers
from gateway.store.surveys import Store
from recordings.access import ROUTE_PREFIX, recording_routes, signed_url
from recordings.index import get_recording
from recordings.naming import LEGS, leg_path, valid_base

log = logs.logger(__name__)


class RecordingsApi:
    """Handlers; ``request[token_key]`` is the caller's API token (unit scope)."""

    def __init__(self, settings: Settings, store: Store, token_key: Any) -> None:
        self.recordings = settings.recordings
        self.tz = settings.surveys.timezone
        self.store = store
        self.token_key = token_key

    def routes(self, app: web.Application) -> set[web.AbstractResource]:
        """Add the routes; returns the resources the bearer token must not guard."""
        app.router.add_get(ROUTE_PREFIX + "/{base}", self.get_urls)
        secret = self.recordings.url_secret
        if secret is None:
            return set()
        added = app.router.add_routes(recording_routes(self.recordings.dir, secret))
        return {route.resource for route in added if route.resource is not None}

    async def get_urls(self, request: web.Request) -> web.Response:
        """Signed URLs of the recording's legs that exist."""
        secret = self.recordings.url_secret
        if secret is None:
            return error(503, "recordings_unavailable", "recordings.url_secret is not configured")
        base = request.match_info["base"]
        token: ApiToken = request[self.token_key]
        entry = await get_recording(self.store.redis, base) if valid_base(base) else None
        survey = await self.store.get_survey(entry.survey_id) if entry is not None else None
        # A token that may not see the unit gets the same answer as for a missing recording.
        if entry is None or survey is None or not token.allows(survey.get("unit_code", "")):
            return error(404, "not_found", "no such recording")
        root = self.recordings.dir
        legs = await asyncio.to_thread(
            lambda: [leg for leg in LEGS if leg_path(root, base, leg).is_file()]
        )
        if not legs:  # indexed, but the files are gone (retention, or another host)
            return error(404, "not_found", "no such recording")
        now = time.time()
        ttl = self.recordings.url_ttl_s
        urls = {leg: signed_url(base, leg, secret, ttl_s=ttl, now=now) for leg in legs}
        log.info(
            "recording urls base=%s legs=%s token=%s",
            mask_numbers(base),
            ",".join(legs),
            token.name,
        )
        expires = datetime.datetime.fromtimestamp(int(now + ttl), self.tz)
        return web.json_response(
            {
                "base": base,
                "survey_id": entry.survey_id,
                "callback_id": entry.callback_id,
                "expires_at": expires.isoformat(),
                "legs": urls,
            }
        )
