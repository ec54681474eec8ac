"""From an unsatisfied reply to a transcript and a playable recording, on real servers:
the gateway service (API, SMS, webhooks, dialer, ASR) against redis-server, the SMSC
simulator, the webhook receiver, the provisioned Asterisk 22 and the real decoder (Vosk,
the Korean test model, one pool process)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from asr.models import TEST_MODEL
from devstack.asterisk import AsteriskInfo
from devstack.localstack import SOURCE_ADDR, TOKEN, free_port
from recordings.naming import parse_file
from tests.integration.sms_harness import Loop, running_loop, survey
from tests.servers import RedisServer
from tests.waiting import eventually

from .test_dialer import dialer_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

URL_SECRET = "recordings-url-secret-" + "k" * 24
OTHER_TOKEN = TOKEN + "-other"  # a token for units 3307*: may not see unit 330602


def _events(loop: Loop, sid: str, etype: str) -> list[dict[str, Any]]:
    return [e for e in loop.receiver.events.get(sid, []) if e["type"] == etype]


async def _get(loop: Loop, url: str, token: str | None = TOKEN) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with loop.http.get(loop.api + url, headers=headers) as r:
        return r.status, r.content_type, await r.read()


async def test_unsatisfied_reply_is_called_transcribed_and_its_recording_served(
    clean_redis: RedisServer, asterisk: AsteriskInfo
) -> None:
    sid, phone = "S501", "13800008501"
    async with running_loop(
        clean_redis.url,
        free_port(),
        workers=["api", "sms", "webhooks", "dialer", "asr"],
        api={
            "tokens": [
                {"name": "core", "token": TOKEN, "units": ["*"]},
                {"name": "other", "token": OTHER_TOKEN, "units": ["3307*"]},
            ]
        },
        dialer=dialer_config(asterisk),
        asr={"model": TEST_MODEL, "pool_size": 1, "claim_idle_s": 120},
        recordings={"url_secret": URL_SECRET, "url_ttl_s": 120},
    ) as loop:
        status, body = await loop.post(survey(sid.lstrip("S"), phone))
        assert status == 201, body
        await eventually(lambda: "survey.submitted" in loop.types(sid))
        loop.smsc.inject_mo(phone, SOURCE_ADDR, "3 出警太慢，态度也不好")
        await eventually(lambda: "survey.called" in loop.types(sid), within_s=90)
        (attempt,) = [e["payload"] for e in _events(loop, sid, "callback.attempt")]
        assert attempt["outcome"] == "connected"

        # The dialer queued the recording; the ASR worker decoded both legs.
        await eventually(lambda: bool(_events(loop, sid, "transcript")), within_s=240)
        assert _events(loop, sid, "transcript.failed") == []
        (transcript,) = [e["payload"] for e in _events(loop, sid, "transcript")]
        assert set(transcript["legs"]) == {"citizen", "agent"}
        assert transcript["processing_s"] > 0
        assert transcript["callback_id"] == attempt["callback_id"]
        assert transcript["model"] == TEST_MODEL

        # The recording was indexed with its survey: the API hands out signed URLs.
        parsed = parse_file(Path(attempt["recordings"]["citizen"]["path"]).name)
        assert parsed is not None
        base = parsed[0]
        status, ctype, raw = await _get(loop, f"/v1/recordings/{base}")
        assert status == 200, raw
        urls = json.loads(raw)
        assert urls["survey_id"] == sid and urls["callback_id"] == attempt["callback_id"]
        assert {"mix", "citizen", "agent"} <= set(urls["legs"])

        # The signed URL needs no bearer token; the audio comes back as a WAV.
        citizen_url = urls["legs"]["citizen"]
        status, ctype, audio = await _get(loop, citizen_url, token=None)
        assert (status, ctype) == (200, "audio/wav")
        assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
        on_disk = Path(attempt["recordings"]["citizen"]["path"])
        assert audio == await asyncio.to_thread(on_disk.read_bytes)

        # A tampered signature, or another leg under the citizen's signature: refused.
        sig_at = citizen_url.index("sig=") + 4
        flipped = "A" if citizen_url[sig_at] != "A" else "B"
        tampered = citizen_url[:sig_at] + flipped + citizen_url[sig_at + 1 :]
        status, _, raw = await _get(loop, tampered, token=None)
        assert status == 403 and json.loads(raw)["reason"] == "bad_signature"
        status, _, _ = await _get(loop, citizen_url.replace("/citizen?", "/agent?"), token=None)
        assert status == 403

        # The URL list is bearer-protected and scoped to the token's units.
        status, _, _ = await _get(loop, f"/v1/recordings/{base}", token=None)
        assert status == 401
        status, _, _ = await _get(loop, f"/v1/recordings/{base}", token=OTHER_TOKEN)
        assert status == 404
        status, _, _ = await _get(loop, "/v1/recordings/no-such-recording")
        assert status == 404
