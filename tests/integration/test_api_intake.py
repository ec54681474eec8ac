"""What the HTTP API takes, against the real application on the real redis-server:
every text field checked at intake (no lone surrogate, no control character, bounded),
ids matched whole, dates bounded, service types from the config; every bad request a
JSON 4xx with its reason that never echoes raw input; another unit's survey id never
reveals that survey."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devstack.fuzz import KNOWN_CALLBACK, KNOWN_SURVEY, answer_problem, prepare_callback
from gateway.store import keys
from gateway.store.surveys import Store
from tests.integration.api_harness import (
    AUTH,
    COUNTY_AUTH,
    Client,
    api_client,
    api_settings,
)
from tests.integration.sms_harness import survey

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Client]:
    async with api_client(store) as c:
        yield c


async def post(
    client: Client,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], bytes]:
    """POST and check the answer's form (JSON object, a reason on errors, < 500)."""
    data = raw if raw is not None else json.dumps(body).encode()  # \ud800 escaped: valid
    async with client.post(path, data=data, headers={**AUTH, **(headers or {})}) as r:
        text = await r.read()
        problem = answer_problem(r.status, r.content_type, text)
        assert problem is None, f"{problem}: {r.status} {text[:300]!r}"
        answer: dict[str, Any] = json.loads(text)
        return r.status, answer, text


async def surveys_stored(store: Store) -> list[str]:
    return [
        k
        async for k in store.redis.scan_iter(keys.SURVEY.format(survey_id="*"))
        if await store.redis.type(k) == "hash"
    ]


# --- item 1 and 10: text fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("officer_id", "\ud800"),  # the lone surrogate that once stopped the gateway
        ("officer_id", "P1001\udfff"),
        ("officer_id", "P1\x1b[31m"),  # ESC
        ("officer_id", "P1\x07"),  # BEL
        ("officer_id", "P1\nP2"),
        ("officer_id", "P1\u202e"),  # right-to-left override: spoofs the SMS text
        ("officer_id", "P1\u2028"),
        ("officer_id", "P" * 33),
        ("officer_id", "   "),
        ("phone", "138" + " " * 40 + "00000001"),
        ("survey_id", "S1\n"),  # "$" matched before the newline
        ("survey_id", "\ud800"),
        ("unit_code", "330602\n"),
        ("service_type", "zzz"),  # would read 「办理的zzz业务」
        ("service_type", "110\n"),
        ("occurred_at", "9999-12-31T23:59:59-12:00"),  # the sender overflowed on it
        ("occurred_at", "0001-01-01T00:00:00+14:00"),
        ("occurred_at", "2026-11-23T10:05:00+08:00" + " " * 60),
        ("template", "\ud800"),
    ],
)
async def test_a_bad_text_field_is_refused_with_its_name_and_nothing_is_stored(
    client: Client, store: Store, field: str, value: str
) -> None:
    status, answer, raw = await post(client, "/v1/surveys", survey(1, **{field: value}))
    assert status == 422 and answer["status"] == "invalid"
    assert answer["field"] == field and answer["reason"]
    # the answer repeats a survey id only when it is a valid one
    assert answer["survey_id"] == (None if field == "survey_id" else "S1")
    assert b"\\ud800" not in raw and b"\x1b" not in raw
    assert await surveys_stored(store) == []
    # the same survey, clean, is taken: the refusal was about that field only
    status, answer, _ = await post(client, "/v1/surveys", survey(1))
    assert status == 201 and answer["state"] == "queued"


async def test_officer_id_keeps_printable_text_of_any_script(client: Client, store: Store) -> None:
    status, _, _ = await post(client, "/v1/surveys", survey(2, officer_id="张警官 P-01·3"))
    assert status == 201
    stored = await store.get_survey("S2")
    assert stored is not None and stored["officer_id"] == "张警官 P-01·3"


async def test_service_types_are_the_configured_ones(store: Store) -> None:
    settings = api_settings(surveys={"service_names": {"fire": "消防检查", "110": "110接处警"}})
    async with api_client(store, settings) as client:
        status, answer, _ = await post(client, "/v1/surveys", survey(3, service_type="window"))
        assert status == 422 and answer["field"] == "service_type"
        assert "known: 110, fire" in answer["reason"]
        status, _, _ = await post(client, "/v1/surveys", survey(3, service_type="fire"))
        assert status == 201


@pytest.mark.parametrize(
    ("shift", "accepted"),
    [
        (timedelta(days=-364), True),
        (timedelta(days=-366), False),
        (timedelta(hours=20), True),  # a clock or a time zone set wrong
        (timedelta(days=2), False),
    ],
)
async def test_occurred_at_is_within_a_year_of_now(
    client: Client, shift: timedelta, accepted: bool
) -> None:
    when = (datetime.now(TZ) + shift).isoformat(timespec="seconds")
    status, answer, _ = await post(client, "/v1/surveys", survey(4, occurred_at=when))
    if accepted:
        assert status == 201, answer
    else:
        assert status == 422 and answer["field"] == "occurred_at"
        assert "365 days" in answer["reason"]


async def test_a_batch_answers_each_bad_item_and_stores_the_good_ones(
    client: Client, store: Store
) -> None:
    status, answer, _ = await post(
        client,
        "/v1/surveys",
        {
            "surveys": [
                survey(5, officer_id="P\x00"),
                survey(6),
                survey(7, survey_id="S7\n"),
                {"survey_id": "S8", "\ud800": 1},
            ]
        },
    )
    assert status == 200
    results = {r["index"]: r for r in answer["results"]}
    assert (results[0]["status"], results[0]["field"]) == ("invalid", "officer_id")
    assert results[1]["status"] == "created"
    assert (results[2]["status"], results[2]["survey_id"]) == ("invalid", None)
    assert results[3]["status"] == "invalid" and results[3]["field"] == '"\\ud800"'
    assert answer["counts"] == {"invalid": 3, "created": 1}
    assert await surveys_stored(store) == [keys.SURVEY.format(survey_id="S6")]


# --- item 6: a JSON 4xx for every bad request, never a 5xx --------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b"[" * 10_000 + b"]" * 10_000, None, 400, "invalid_json"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, None, 400, "invalid_json"),
        (json.dumps(survey(9)).encode(), "application/json; charset=foobar", 415, None),
        (json.dumps(survey(9)).encode(), "application/json; charset=latin-1", 415, None),
        (b'{"survey_id": "S9", "phone": ' + b"1" * 4301 + b"}", None, 400, "invalid_json"),
        (b'{"survey_id": "S9", "survey_id": "S10"}', None, 400, "invalid_json"),
        (b'{"survey_id": NaN}', None, 400, "invalid_json"),
        (b'{"officer_id": "\xed\xa0\x80"}', None, 400, "invalid_json"),  # not UTF-8
        (b"\xef\xbb\xbf{}", None, 400, "invalid_json"),  # a byte-order mark is no JSON
        (b"[1, 2]", None, 400, "invalid_body"),
        (b'"S1"', None, 400, "invalid_body"),
        (b'{"surveys": {"a": 1}}', None, 400, "invalid_batch"),
        (b'{"surveys": [], "extra": 1}', None, 400, "invalid_batch"),
    ],
)
async def test_bodies_no_parser_likes_get_a_json_4xx_with_the_reason(
    client: Client, raw: bytes, content_type: str | None, status: int, code: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/v1/surveys", f"/v1/callbacks/{KNOWN_CALLBACK}/disposition"):
        got, answer, _ = await post(client, path, raw=raw, headers=headers)
        if path == "/v1/surveys" or code not in ("invalid_body", "invalid_batch"):
            assert got == status, (path, answer)
            assert code is None or answer["error"] == code
        else:  # the callback routes say the body must be an object (422)
            assert got in (400, 422)


async def test_an_error_answer_never_echoes_raw_input(client: Client) -> None:
    _, answer, raw = await post(
        client, f"/v1/callbacks/{KNOWN_CALLBACK}/disposition", {"upheld": True, "\x1b]0;x": 1}
    )
    assert answer["field"] == '"\\u001b]0;x"' and b"\x1b" not in raw
    status, answer, raw = await post(
        client,
        f"/v1/callbacks/{KNOWN_CALLBACK}/disposition",
        {"upheld": True, "reasons": ["\ud800" + "x" * 10_000]},
    )
    assert status == 422 and len(raw) < 500 and "\\ud800" in answer["message"]


async def test_the_router_and_the_token_check_answer_json_too(client: Client) -> None:
    async with client.get("/v1/nothing-here", headers=AUTH) as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"
    async with client.put("/v1/surveys", headers=AUTH) as r:
        assert r.status == 405 and r.headers["Allow"] == "POST"
        assert (await r.json())["error"] == "method_not_allowed"
    # a token that is not UTF-8 (aiohttp's client would not send it: a raw request)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"POST /v1/surveys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401") and json.loads(body)["error"] == "unauthorized"
    too_large = io.BytesIO(b"x" * (9 << 20))  # max_body_mb is 8 by default
    async with client.post("/v1/surveys", data=too_large, headers=AUTH) as r:
        assert r.status == 413 and (await r.json())["error"] == "body_too_large"


async def test_a_path_that_is_no_survey_id_is_not_found(client: Client) -> None:
    for sid in ("S1%0A", "%ED%A0%80", "S1%1B"):
        async with client.get(f"/v1/surveys/{sid}", headers=AUTH) as r:
            assert r.status == 404 and (await r.json())["error"] == "not_found"
        async with client.post(f"/v1/surveys/{sid}/recheck", data=b"{}", headers=AUTH) as r:
            assert r.status == 404 and (await r.json())["error"] == "not_found"


# --- the disposition and the recheck: their text fields -----------------------------------


async def test_notes_keep_line_breaks_and_refuse_controls_and_surrogates(
    client: Client, store: Store
) -> None:
    await prepare_callback(store)
    path = f"/v1/callbacks/{KNOWN_CALLBACK}/disposition"
    for note in ("\ud800", "bell\x07", "esc\x1b[2J", "x" * 2001):
        status, answer, _ = await post(client, path, {"upheld": True, "note": note})
        assert status == 422 and answer["field"] == "note"
    status, answer, _ = await post(
        client, path, {"upheld": True, "note": "已核实：\n民警到场迟缓。\t已整改 👮‍♂️"}
    )
    assert status == 200 and answer["status"] == "stored"
    recheck = f"/v1/surveys/{KNOWN_SURVEY}/recheck"
    status, answer, _ = await post(client, recheck, {"note": "\x00"})
    assert status == 422 and answer["field"] == "note"
    status, answer, _ = await post(client, recheck, {"note": "工单\nGD-1", "work_order": "GD-1"})
    assert status == 202
    notes = [e.payload.get("note") for e in await store.events(KNOWN_SURVEY)]
    assert "已核实：\n民警到场迟缓。\t已整改 👮‍♂️" in notes and "工单\nGD-1" in notes


# --- item 9: another unit's survey -------------------------------------------------------


async def test_another_units_survey_id_reveals_nothing_and_makes_no_second_survey(
    client: Client, store: Store
) -> None:
    status, _, _ = await post(client, "/v1/surveys", survey(20, unit_code="330700"))
    assert status == 201
    before = await store.get_survey("S20")
    # the county token may see 330602* only: S20 belongs to 330700
    status, answer, raw = await post(
        client, "/v1/surveys", survey(20, unit_code="330602"), headers=COUNTY_AUTH
    )
    assert status == 409
    assert answer["status"] == "conflict" and answer["field"] == "survey_id"
    assert "state" not in answer and b"queued" not in raw and b"330700" not in raw
    async with client.get("/v1/surveys/S20", headers=COUNTY_AUTH) as r:
        assert r.status == 404
    status, answer, raw = await post(
        client, "/v1/surveys", {"surveys": [survey(20, unit_code="330602")]}, headers=COUNTY_AUTH
    )
    assert answer["results"][0]["status"] == "conflict" and b"queued" not in raw
    assert await store.get_survey("S20") == before  # untouched, and still one survey
    assert len(await store.events("S20")) == 2  # accepted, queued
    # its own unit still gets the idempotent answer
    status, answer, _ = await post(client, "/v1/surveys", survey(20, unit_code="330700"))
    assert status == 200 and answer["status"] == "existing" and answer["state"] == "queued"
