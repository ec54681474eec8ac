"""The ``[webhooks]`` section: the receivers of the signed feed.

Each ``[[webhooks.endpoints]]`` secret may come from ``MINYI_WEBHOOK_SECRET_<NAME>``.
The secret format (Standard Webhooks, https://www.standardwebhooks.com/, "Signature
scheme": ``whsec_`` + base64 of the HMAC key) is read here, where the file is checked;
gateway/webhooks/signing.py signs with the key :func:`decode_secret` gives.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config.reader import (
    ConfigError,
    Table,
    env_name,
    name,
    show,
    show_number,
    text,
    unique,
)
from gateway.config.redaction import redact_url

ENV_WEBHOOK_SECRET: Final = "MINYI_WEBHOOK_SECRET_"
SECRET_PREFIX: Final = "whsec_"
SECRET_MIN_BYTES: Final = 24
HOUR: Final = 3600.0
# The core system must get every result even after a long outage on its side: the
# feed retries for at least three days (DESIGN.md, "Nothing lost").
MIN_MAX_AGE_HOURS: Final = 72.0


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_<base64>`` secret (the prefix is optional).

    Raises ValueError (without echoing the secret) when it is not valid base64 or empty.
    """
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        # Unpadded base64 is common in the wild: pad it ourselves, then decode strictly.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not base64 after the whsec_ prefix") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


@dataclass(frozen=True)
class WebhookEndpoint:
    """One receiver of the feed (from the config file)."""

    name: str
    url: str
    secret: str = field(repr=False)  # "whsec_<base64>"; never logged
    timeout_s: float = 10.0
    max_age_s: float = MIN_MAX_AGE_HOURS * HOUR
    concurrency: int = 32
    batch_max: int = 1
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 900.0

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c in "{}" for c in self.name):
            raise ValueError(f"webhook endpoint name {self.name!r} is empty or has spaces/braces")
        decode_secret(self.secret)  # fail at startup, not at the first event
        if self.concurrency < 1 or self.batch_max < 1:
            raise ValueError("webhook concurrency and batch_max must be at least 1")
        if self.timeout_s <= 0 or self.backoff_initial_s <= 0 or self.backoff_max_s <= 0:
            raise ValueError("webhook timeout and backoff must be positive")


def _url(value: object, path: str) -> str:
    url = text(value, path, max_len=2000)
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            path, f"must be an http:// or https:// URL with a host, got {show(redact_url(url))}"
        )
    return url


def _secret(t: Table, env: Mapping[str, str], endpoint: str) -> str:
    secret, origin = t.secret("secret", env, env_name(ENV_WEBHOOK_SECRET, endpoint))
    try:
        key = decode_secret(secret) if secret.startswith(SECRET_PREFIX) else b""
    except ValueError:
        key = b""
    if len(key) < SECRET_MIN_BYTES:
        # never echo the secret: the message ends up in logs and tickets
        raise ConfigError(
            t.at("secret"),
            f'must be "{SECRET_PREFIX}" followed by the base64 of at least '
            f"{SECRET_MIN_BYTES} random bytes (e.g. whsec_$(openssl rand -base64 32))"
            f"{origin}",
        )
    return secret


_KEYS: Final = (
    "name",
    "url",
    "secret",
    "timeout_s",
    "max_age_hours",
    "allow_short_max_age",
    "concurrency",
    "batch_max",
    "backoff_initial_s",
    "backoff_max_s",
)


def _endpoint(data: object, path: str, env: Mapping[str, str]) -> WebhookEndpoint:
    t = Table(data, path, _KEYS)
    endpoint = name(t.get("name"), t.at("name"))
    d = WebhookEndpoint
    allow_short = t.boolean("allow_short_max_age", False)
    max_age_hours = t.number("max_age_hours", d.max_age_s / HOUR, 0, 8760, above=True)
    if max_age_hours < MIN_MAX_AGE_HOURS and not allow_short:
        raise ConfigError(
            t.at("max_age_hours"),
            f"must be at least {show_number(MIN_MAX_AGE_HOURS)}, so results survive a 3-day "
            f"outage of the receiver (allow_short_max_age = true is for tests), "
            f"got {show_number(max_age_hours)}",
        )
    backoff_initial_s = t.number("backoff_initial_s", d.backoff_initial_s, 0, 3600, above=True)
    url = _url(t.get("url"), t.at("url"))
    secret = _secret(t, env, endpoint)
    timeout_s = t.number("timeout_s", d.timeout_s, 0, 300, above=True)
    concurrency = t.integer("concurrency", d.concurrency, 1, 1024)
    batch_max = t.integer("batch_max", d.batch_max, 1, 1000)
    backoff_max_s = t.number("backoff_max_s", d.backoff_max_s, backoff_initial_s, 86400)
    try:
        return WebhookEndpoint(
            name=endpoint,
            url=url,
            secret=secret,
            timeout_s=timeout_s,
            max_age_s=max_age_hours * HOUR,
            concurrency=concurrency,
            batch_max=batch_max,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
    except ValueError as e:  # the endpoint checks its own invariants too
        raise ConfigError(path, str(e)) from None


def parse_webhooks(data: object, env: Mapping[str, str]) -> tuple[WebhookEndpoint, ...]:
    """Check the ``[webhooks]`` table: its endpoints, each with its own name and secret."""
    t = Table(data, "webhooks", ("endpoints",))
    endpoints = tuple(_endpoint(item, path, env) for item, path in t.tables("endpoints"))
    names = [(e.name, f"webhooks.endpoints[{i}].name") for i, e in enumerate(endpoints)]
    unique(names, ENV_WEBHOOK_SECRET)
    return endpoints
