"""Signed recording URLs: signing, verifying, expiry, tampering, and the route itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from recordings.access import (
    DEFAULT_URL_TTL_S,
    AccessDenied,
    recording_routes,
    sign,
    signature,
    signed_url,
    verify,
)
from recordings.naming import leg_file, parse_file, valid_base

SECRET = "rec-secret-0123456789abcdef"
NOW = 1_800_000_000.0


def query(qs: str) -> tuple[str, str]:
    q = parse_qs(qs)
    return q["expires"][0], q["sig"][0]


def reason(
    base: str,
    leg: str,
    expires: str | None,
    sig: str | None,
    *,
    secret: str = SECRET,
    now: float = NOW,
) -> str:
    with pytest.raises(AccessDenied) as info:
        verify(base, leg, expires, sig, secret, now=now)
    return info.value.reason


def test_a_signed_query_verifies_until_it_expires() -> None:
    expires, sig = query(sign("cb-42_1", "citizen", int(NOW) + 600, SECRET))
    assert expires == str(int(NOW) + 600)
    verify("cb-42_1", "citizen", expires, sig, SECRET, now=NOW)
    verify("cb-42_1", "citizen", expires, sig, SECRET.encode(), now=NOW + 599)
    assert reason("cb-42_1", "citizen", expires, sig, now=NOW + 600) == "expired"


def test_the_signature_binds_recording_leg_expiry_and_secret() -> None:
    expires, sig = query(sign("cb-42", "citizen", int(NOW) + 600, SECRET))
    assert reason("cb-43", "citizen", expires, sig) == "bad_signature"
    assert reason("cb-42", "agent", expires, sig) == "bad_signature"
    assert reason("cb-42", "citizen", str(int(expires) + 1), sig) == "bad_signature"
    other = "another-secret-0123456789"
    assert reason("cb-42", "citizen", expires, sig, secret=other) == "bad_signature"
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    assert reason("cb-42", "citizen", expires, flipped) == "bad_signature"
    assert reason("cb-42", "citizen", expires, sig[:-1]) == "bad_signature"
    assert reason("cb-42", "citizen", expires, "签名") == "bad_signature"
    # A forged signature learns nothing about expiry: bad_signature even when expired.
    assert reason("cb-42", "citizen", "1", "x") == "bad_signature"


def test_malformed_requests_are_refused_before_any_crypto() -> None:
    expires, sig = query(sign("cb-42", "mix", int(NOW) + 600, SECRET))
    assert reason("cb-42", "mix", None, sig) == "missing_signature"
    assert reason("cb-42", "mix", expires, "") == "missing_signature"
    for bad in ("-5", "1e9", "١٢٣", "9" * 13, " 1"):
        assert reason("cb-42", "mix", bad, sig) == "bad_expiry", bad
    for bad in ("../etc/passwd", "a/b", "a.b", "", "x" * 101, "名字", "a\x00"):
        assert reason(bad, "mix", expires, sig) == "bad_name", bad
    assert reason("cb-42", "../mix", expires, sig) == "bad_leg"
    assert reason("cb-42", "video", expires, sig) == "bad_leg"


def test_signing_refuses_bad_names_and_weak_secrets() -> None:
    with pytest.raises(ValueError):
        sign("../x", "mix", int(NOW), SECRET)
    with pytest.raises(ValueError):
        sign("x", "leg", int(NOW), SECRET)
    with pytest.raises(ValueError, match="16 bytes"):
        sign("x", "mix", int(NOW), "short")
    with pytest.raises(ValueError, match="16 bytes"):
        recording_routes(Path("/nonexistent"), b"")


def test_signed_url_defaults_to_ten_minutes() -> None:
    url = urlsplit(signed_url("cb-42", "agent", SECRET, now=NOW))
    assert url.path == "/v1/recordings/cb-42/agent"
    expires, sig = query(url.query)
    assert int(expires) == int(NOW) + DEFAULT_URL_TTL_S == int(NOW) + 600
    assert sig == signature("cb-42", "agent", int(expires), SECRET)
    assert "=" not in sig and "+" not in sig and "/" not in sig


def test_names() -> None:
    assert leg_file("cb-1", "mix") == "cb-1.wav"
    assert leg_file("cb-1", "reason") == "cb-1-reason.wav"
    assert parse_file("cb-1-citizen.wav") == ("cb-1", "citizen")
    assert parse_file("cb-1.wav") == ("cb-1", "mix")
    assert parse_file("cb-1.WAV") is None and parse_file("../cb-1.wav") is None
    assert parse_file("notes.txt") is None and parse_file(".wav") is None
    assert valid_base("A_b-9") and not valid_base("a b")
    with pytest.raises(ValueError):
        leg_file("..", "mix")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "cb-42-citizen.wav").write_bytes(b"RIFF" + bytes(range(256)) * 40)
    (root / "cb-42.wav").write_bytes(b"RIFFmix")
    (tmp_path / "secret.wav").write_bytes(b"outside the recordings directory")
    app = web.Application()
    app.add_routes(recording_routes(root, SECRET))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_the_route_serves_a_signed_leg_as_wav(
    client: TestClient[web.Request, web.Application], tmp_path: Path
) -> None:
    resp = await client.get(signed_url("cb-42", "citizen", SECRET))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.headers["Cache-Control"] == "private, no-store"
    body = await resp.read()
    assert body == (tmp_path / "recordings" / "cb-42-citizen.wav").read_bytes()
    ranged = await client.get(
        signed_url("cb-42", "citizen", SECRET), headers={"Range": "bytes=0-3"}
    )
    assert ranged.status == 206 and await ranged.read() == b"RIFF"
    head = await client.head(signed_url("cb-42", "mix", SECRET))
    assert head.status == 200 and head.headers["Content-Length"] == "7"


async def test_the_route_refuses_bad_signatures_with_a_reason_and_404s_missing_files(
    client: TestClient[web.Request, web.Application],
) -> None:
    expired = signed_url("cb-42", "citizen", SECRET, ttl_s=-1)
    resp = await client.get(expired)
    assert resp.status == 403
    assert await resp.json() == {"error": "forbidden", "reason": "expired"}
    resp = await client.get("/v1/recordings/cb-42/citizen")
    assert (await resp.json())["reason"] == "missing_signature"
    other = signed_url("cb-42", "citizen", "another-secret-0123456789")
    assert (await (await client.get(other)).json())["reason"] == "bad_signature"
    # Signed, but the file is not there (retention deleted it, or never recorded).
    resp = await client.get(signed_url("cb-42", "agent", SECRET))
    assert resp.status == 404 and await resp.json() == {"error": "not_found"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/recordings/..%2Fsecret/mix",
        "/v1/recordings/%2E%2E/secret",
        "/v1/recordings/cb-42/..%2F..%2Fsecret",
        "/v1/recordings/cb-42%00/mix",
        "/v1/recordings/..%5Csecret/mix",
    ],
)
async def test_no_path_leaves_the_recordings_directory(
    client: TestClient[web.Request, web.Application], path: str
) -> None:
    expires = int(NOW * 2)
    resp = await client.get(f"{path}?expires={expires}&sig=x")
    assert resp.status in (403, 404)
    assert b"outside" not in await resp.read()
