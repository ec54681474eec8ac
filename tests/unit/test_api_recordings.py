"""The API's recording routes without Redis: which requests need the bearer token, the
signed route's refusals, and the answer when no recordings secret is configured."""

from __future__ import annotations

import dataclasses
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.app import Api
from gateway.config import RecordingsSettings, Settings, parse_settings
from gateway.store.surveys import Store
from recordings.access import signed_url
from tests.unit.test_config import TOKEN, base

SECRET = "rec-" + "s" * 28
BASE = "20261123_cb-0123456789abcdef"


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)


async def _client(settings: Settings) -> TestClient[object, object]:
    # Never connected: these requests are all answered before Redis is asked.
    redis = aioredis.Redis.from_url("redis://127.0.0.1:1/0")
    api = Api(settings, Store(redis, settings.surveys.timezone), {})
    client: TestClient[object, object] = TestClient(TestServer(api.app()))
    await client.start_server()
    return client


@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[TestClient[object, object]]:
    _wav(tmp_path / f"{BASE}-citizen.wav")
    settings = parse_settings(base(), {})
    recordings = RecordingsSettings(dir=tmp_path, url_secret=SECRET)
    client = await _client(dataclasses.replace(settings, recordings=recordings))
    try:
        yield client
    finally:
        await client.close()


async def test_a_signed_url_needs_no_bearer_token(signed: TestClient[object, object]) -> None:
    url = signed_url(BASE, "citizen", SECRET, ttl_s=60)
    r = await signed.get(url)
    assert (r.status, r.content_type) == (200, "audio/wav")
    assert (await r.read())[:4] == b"RIFF"
    r = await signed.head(url)
    assert r.status == 200


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing_signature"),
        ("?expires=abc&sig=x", "bad_expiry"),
        ("?expires=9999999999&sig=forged", "bad_signature"),
    ],
)
async def test_a_bad_signature_is_refused(
    signed: TestClient[object, object], query: str, reason: str
) -> None:
    r = await signed.get(f"/v1/recordings/{BASE}/citizen{query}")
    assert r.status == 403
    assert (await r.json())["reason"] == reason


async def test_an_expired_url_is_refused(signed: TestClient[object, object]) -> None:
    r = await signed.get(signed_url(BASE, "citizen", SECRET, ttl_s=60, now=time.time() - 120))
    assert r.status == 403 and (await r.json())["reason"] == "expired"


async def test_everything_else_still_needs_the_token(signed: TestClient[object, object]) -> None:
    for path in (f"/v1/recordings/{BASE}", "/v1/surveys/S1", "/v1/recordings/a/b/c"):
        r = await signed.get(path)
        assert r.status == 401, path


async def test_without_a_secret_no_recording_is_served() -> None:
    client = await _client(parse_settings(base(), {}))
    try:
        r = await client.get(signed_url(BASE, "citizen", SECRET, ttl_s=60))
        assert r.status == 401  # no such route: the token guards it like any other path
        r = await client.get(f"/v1/recordings/{BASE}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 503
        assert (await r.json())["error"] == "recordings_unavailable"
    finally:
        await client.close()
