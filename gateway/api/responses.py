"""JSON answers of the HTTP API, shared by its handlers (api.py, api_callbacks.py,
api_recordings.py): Chinese left readable, errors in one shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web


def dumps(obj: Any) -> str:
    """JSON with non-ASCII text as is (reasons and notes are Chinese); all of it
    escaped if some string could not be sent as UTF-8 (a lone surrogate), so that an
    answer never fails to encode. The handlers never put unchecked input in an answer
    (gateway/api/body.py's ``shown``); this is the second line."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True)
    return text


def error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """An error answer: ``{"error": code, "message": message, ...extra}``."""
    body = {"error": code, "message": message, **extra}
    resp = web.json_response(body, status=status, dumps=dumps)
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-type", "content-length"):
            resp.headers[name] = value
    return resp
