"""Hostile requests for the HTTP API, as Hypothesis strategies: what a careless or
malicious client sends to ``POST /v1/surveys`` (one or a batch), the disposition and
the recheck. The property-based tests (tests/integration/test_api_fuzz.py) and the
long run (bench/fuzz_api.py) draw from the same strategies.

A probe is mostly a valid request with a few fields replaced by something hostile
(lone surrogates, control characters, huge or wrongly typed values, unknown keys), so
that most probes get past the first check and reach the deeper ones; the rest are
bodies no parser likes (invalid UTF-8, nesting 10,000 deep, a 5,000-digit integer,
duplicate keys, NaN) and odd ``Content-Type`` charsets.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import redis.asyncio as aioredis
from hypothesis import strategies as st

from gateway.dialer.store import CallbackStore
from gateway.store import keys
from gateway.store.surveys import Store

# A callback id the test and the bench create in the store (ids are cb- + 16 hex).
KNOWN_CALLBACK: Final = "cb-00000000000000f0"
KNOWN_SURVEY: Final = "FUZZ-CB-1"
SURVEY_FIELDS: Final = (
    "survey_id",
    "phone",
    "service_type",
    "unit_code",
    "officer_id",
    "occurred_at",
    "template",
)
DISPOSITION_FIELDS: Final = ("reasons", "note", "upheld", "rating", "agent")
RECHECK_FIELDS: Final = ("kind", "priority", "note", "work_order")

# Strings that broke, or could break, something: each a known trap.
NASTY: Final = (
    "\ud800",  # a lone surrogate: valid JSON, not encodable as UTF-8
    "\udfff",
    "a\ud83dz",
    "S1\n",  # "$" matches before a trailing newline
    "S1\r\n",
    "\x1b[31m",  # ESC: a terminal escape
    "\x07",  # BEL
    "\x00",
    "\u202e",  # right-to-left override
    "\u2028",  # line separator
    "",
    " ",
    "9999-12-31T23:59:59-12:00",  # overflows when converted to local time
    "0001-01-01T00:00:00+14:00",
    "2026-11-23T10:05:00+08:00",
    "zzz",
    "110",
    "Ｓ１",
    "😀" * 40,
    "x" * 5000,
)
CHARSETS: Final = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-8",
    "application/json; charset=foobar",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    'application/json; charset="',
)


@dataclass(frozen=True)
class Probe:
    """One request: POST ``path`` with ``body`` and ``content_type`` (None: no header)."""

    path: str
    body: bytes
    content_type: str | None
    what: str  # which kind of probe, for the figures

    def headers(self, token: str) -> dict[str, str]:
        """The request headers with the bearer ``token``."""
        out = {"Authorization": f"Bearer {token}"}
        if self.content_type is not None:
            out["Content-Type"] = self.content_type
        return out


def _text(max_size: int = 40) -> st.SearchStrategy[str]:
    # Every category, surrogates and controls included (Hypothesis leaves out "Cs"
    # unless asked).
    anything = st.characters(categories=("L", "M", "N", "P", "S", "Z", "C"))
    controls = st.characters(categories=("Cc", "Cs", "Cf", "Zl", "Zp"))
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(anything, max_size=max_size),
        st.text(st.one_of(controls, st.sampled_from("AZaz09_-.:")), max_size=max_size),
        st.builds(lambda head, bad: head + bad, st.sampled_from(("S1", "P1001", "110")), controls),
    )


def _hostile_values() -> st.SearchStrategy[Any]:
    """Anything JSON can hold, weighted towards strings that hurt."""
    scalars = st.one_of(
        _TEXT,
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
    )
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=4),
        st.dictionaries(_SHORT_TEXT, scalars, max_size=3),
    )


# Built once: Hypothesis validates a strategy the first time it is drawn from.
_TEXT = _text()
_SHORT_TEXT = _text(12)
HOSTILE_VALUES: Final = _hostile_values()


def _valid_survey(sid: str, phone_digits: int) -> dict[str, Any]:
    return {
        "survey_id": sid,
        "phone": f"138{phone_digits:08d}",
        "service_type": "110",
        "unit_code": "330602",
        "officer_id": "P1001",
        "occurred_at": "2026-01-01T10:05:00+08:00",  # replaced with now by the caller
        "template": "default",
    }


_SURVEY_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,20}", fullmatch=True)


@st.composite
def survey_items(draw: st.DrawFn, occurred_at: str) -> Any:
    """One survey item: valid, or with some fields replaced, dropped or added."""
    item: dict[str, Any] = _valid_survey(
        draw(_SURVEY_IDS), draw(st.integers(min_value=0, max_value=99_999_999))
    )
    item["occurred_at"] = occurred_at
    mode = draw(st.sampled_from(("valid", "replace", "replace", "drop", "extra", "junk")))
    if mode == "replace":
        fields = st.dictionaries(
            st.sampled_from(SURVEY_FIELDS), HOSTILE_VALUES, min_size=1, max_size=3
        )
        item.update(draw(fields))
    elif mode == "drop":
        del item[draw(st.sampled_from(SURVEY_FIELDS))]
    elif mode == "extra":
        item[draw(_SHORT_TEXT)] = draw(HOSTILE_VALUES)
    elif mode == "junk":
        return draw(HOSTILE_VALUES)
    return item


@st.composite
def _object(draw: st.DrawFn, fields: tuple[str, ...], valid: dict[str, Any]) -> dict[str, Any]:
    body = dict(valid)
    body.update(draw(st.dictionaries(st.sampled_from(fields), HOSTILE_VALUES, max_size=3)))
    if draw(st.booleans()):
        body[draw(_SHORT_TEXT)] = draw(HOSTILE_VALUES)
    return body


def _encode(draw: st.DrawFn, obj: Any) -> bytes:
    """JSON bytes: escaped (lone surrogates as \\ud800, valid JSON) or raw (a lone
    surrogate then gives bytes that are not UTF-8)."""
    if draw(st.booleans()):
        return json.dumps(obj, ensure_ascii=True).encode()
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


_RAW_BODIES: Final = st.one_of(
    st.sampled_from(
        (
            b"",
            b"{",
            b"null",
            b"[]",
            b'"text"',
            b"12",
            b"\xff\xfe{}",
            b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
            b'{"survey_id": NaN}',
            b'{"priority": Infinity}',
            b'{"survey_id": "S1", "survey_id": "S2"}',
            b'{"surveys": [], "surveys": [{}]}',
            b'{"survey_id": "\\ud800"}',
            b'{"surveys": "\\u0000"}',
        )
    ),
    st.integers(min_value=1000, max_value=12_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1000, max_value=12_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(min_value=4000, max_value=6000).map(lambda n: b'{"priority": ' + b"9" * n + b"}"),
    st.integers(min_value=4000, max_value=6000).map(
        lambda n: b'{"survey_id": "S1", "phone": ' + b"1" * n + b"}"
    ),
    st.binary(max_size=64),
)


def _path_part(known: str) -> st.SearchStrategy[str]:
    # quote() cannot encode a lone surrogate; send those percent-encoded as CESU bytes
    return st.one_of(st.just(known), _TEXT).map(
        lambda v: quote(v.encode("utf-8", "surrogatepass"), safe="")
    )


_CALLBACK_PATH = _path_part(KNOWN_CALLBACK)
_SURVEY_PATH = _path_part(KNOWN_SURVEY)
_DISPOSITIONS = _object(
    DISPOSITION_FIELDS, {"reasons": ["slow_response"], "note": "核实", "upheld": True}
)
_RECHECKS = _object(RECHECK_FIELDS, {"kind": "agent", "priority": 5})
_RAW_TARGETS = st.sampled_from(
    (
        "/v1/surveys",
        f"/v1/callbacks/{KNOWN_CALLBACK}/disposition",
        f"/v1/surveys/{KNOWN_SURVEY}/recheck",
    )
)


def probes(occurred_at: str) -> st.SearchStrategy[Probe]:
    """Requests to the three routes; ``occurred_at`` is a valid time (now)."""
    items = survey_items(occurred_at)
    batches = st.lists(items, max_size=5).map(lambda surveys: {"surveys": surveys})

    @st.composite
    def probe(draw: st.DrawFn) -> Probe:
        route = draw(st.sampled_from(("survey", "batch", "disposition", "recheck", "raw")))
        content_type = draw(st.sampled_from(CHARSETS))
        if route == "survey":
            path, obj = "/v1/surveys", draw(items)
        elif route == "batch":
            path, obj = "/v1/surveys", draw(batches)
        elif route == "disposition":
            path, obj = f"/v1/callbacks/{draw(_CALLBACK_PATH)}/disposition", draw(_DISPOSITIONS)
        elif route == "recheck":
            path, obj = f"/v1/surveys/{draw(_SURVEY_PATH)}/recheck", draw(_RECHECKS)
        else:
            return Probe(draw(_RAW_TARGETS), draw(_RAW_BODIES), content_type, "raw")
        return Probe(path, _encode(draw, obj), content_type, route)

    return probe()


async def prepare_callback(store: Store) -> None:
    """Put :data:`KNOWN_SURVEY` where its disposition is due: unsatisfied, called and
    connected under :data:`KNOWN_CALLBACK`, so that valid dispositions and rechecks
    reach the store."""
    callbacks = CallbackStore(store)
    await store.intake(
        KNOWN_SURVEY,
        "13900000000",
        {"unit_code": "330602", "service_type": "110", "officer_id": "P1", "template": "default"},
        cap_s=0,
        defer_at=None,
        ttl_s=0,
        accepted_payload={},
    )
    await store.reply(KNOWN_SURVEY, {"text": "3"}, "unsatisfied", False, "13900000000")
    await callbacks.promote(("330602",), "")
    (claim,) = await callbacks.claim("unit:330602", [KNOWN_CALLBACK], "fuzz")
    await callbacks.result(claim, "called", {"outcome": "connected"}, {})


def answer_problem(status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with the API's answer to a probe (None: nothing): a 5xx, a body
    that is not a JSON object in UTF-8, an error without its reason, or raw control
    characters (an echo of the client's input that was not escaped)."""
    if status >= 500:
        return f"status {status}"
    if content_type != "application/json":
        return f"content type {content_type!r}"
    if any(b < 0x20 for b in body):
        return "a raw control character in the body"
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        return "the body is not JSON in UTF-8"
    if not isinstance(answer, dict):
        return "the body is not a JSON object"
    if status >= 400:
        reason = answer.get("message") or answer.get("reason")
        if not isinstance(reason, str) or not reason:
            return f"an error ({status}) without its reason"
    elif "status" not in answer and "results" not in answer:
        return "a success without a status"
    return None


# What a stored survey may hold, checked independently of the API's own validation.
_STORED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
_STORED_CODE = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


async def stored_problems(
    redis: aioredis.Redis, services: Collection[str], templates: Collection[str]
) -> list[str]:
    """What is wrong with the surveys and events in Redis (empty: nothing): every
    survey record made through the API must hold checked values only, and every event
    on the feed must be JSON. ``redis`` decodes replies to str."""
    problems: list[str] = []
    now = datetime.now().astimezone()
    async for key in redis.scan_iter(keys.SURVEY.format(survey_id="*"), count=1000):
        if await redis.type(key) != "hash":
            continue
        record = {str(k): str(v) for k, v in (await redis.hgetall(key)).items()}
        sid = record.get("id", "")
        if sid == KNOWN_SURVEY:
            continue
        where = f"survey {sid!r}"
        if not _STORED_ID.fullmatch(sid):
            problems.append(f"{where}: bad id")
        if not re.fullmatch(r"1[3-9][0-9]{9}", record.get("phone", "")):
            problems.append(f"{where}: bad phone")
        if record.get("service_type") not in services:
            problems.append(f"{where}: unknown service_type {record.get('service_type')!r}")
        if record.get("template") not in templates:
            problems.append(f"{where}: unknown template")
        if not _STORED_CODE.fullmatch(record.get("unit_code", "")):
            problems.append(f"{where}: bad unit_code")
        officer = record.get("officer_id", "")
        if not 0 < len(officer) <= 32 or any(
            unicodedata.category(c) in _BAD_CATEGORIES for c in officer
        ):
            problems.append(f"{where}: bad officer_id {officer!r}")
        try:
            when = datetime.fromisoformat(record.get("occurred_at", ""))
            if abs((when - now).total_seconds()) > timedelta(days=367).total_seconds():
                problems.append(f"{where}: occurred_at out of range")
        except (ValueError, OverflowError, TypeError):
            problems.append(f"{where}: occurred_at {record.get('occurred_at')!r}")
    for _, fields in await redis.xrange(keys.EVENTS) or []:
        try:
            json.loads((fields or {})["event"])
        except (KeyError, ValueError):
            problems.append(f"event entry {fields!r} is not JSON")
    return problems
