"""Settings as an operator may see them: every secret replaced by "***".

`minyi config check` prints the settings this way, and error messages show URLs
through :func:`redact_url`, because both end up in logs and tickets.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

REDACTED: Final = "***"
SECRET_FIELDS: Final = frozenset(
    {
        "token",
        "password",
        "secret",
        "url_secret",
        "ami_secret",
        "trunk_password",
        "sentinel_password",
    }
)
# query parameters whose value is hidden in a URL
_SECRETISH: Final = ("password", "secret", "token", "key")


def redact_url(url: str) -> str:
    """A URL with its password (user:password@, ?password=) replaced by ***."""
    try:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{REDACTED}@{hostport}"
    if any(any(s in k.lower() for s in _SECRETISH) for k, _ in query):
        hidden = [(k, REDACTED if any(s in k.lower() for s in _SECRETISH) else v) for k, v in query]
        parts = parts._replace(query=urllib.parse.urlencode(hidden, safe="*"))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def plain(value: object, name: str = "") -> Any:
    """A settings value (``name``: its field name) as JSON-ready data, secrets replaced."""
    if name in SECRET_FIELDS:
        return REDACTED
    if (name == "url" or name.endswith("_url")) and isinstance(value, str):
        return redact_url(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, zoneinfo.ZoneInfo):
        return value.key
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def redacted(settings: object) -> dict[str, Any]:
    """Every setting as JSON-ready data, secrets replaced by "***" (`minyi config check`)."""
    shown: dict[str, Any] = plain(settings)
    return shown
