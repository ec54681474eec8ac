"""JSON answers of the HTTP API, shared by its handlers (api.py, api_callbacks.py,
api_recordings.py): Chinese left readable, errors in one shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def dumps(obj: Any) -> str:
    """JSON with non-ASCII text as is (reasons and notes are Chinese)."""
    return json.dumps(obj, ensure_ascii=False)


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """An error answer: ``{"error": code, "message": message, ...extra}``."""
    body = {"error": code, "message": message, **extra}
    return web.json_response(body, status=status, dumps=dumps)
