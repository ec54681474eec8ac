"""The ``[recordings]`` section: keeping the callback recordings and serving them::

    [recordings]
    dir = "/var/spool/asterisk/monitor/minyi"   # default: [dialer].recordings_dir
    retention_days = 180
    url_ttl_s = 600
    # url_secret: in MINYI_RECORDINGS_URL_SECRET; unset = no recording URLs served

The recordings secret signs the short-lived URLs of recordings/access.py; without it
the api worker serves no recordings (``GET /v1/recordings/...`` answers 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.config.reader import ConfigError, Table, directory

ENV_RECORDINGS_URL_SECRET: Final = "MINYI_RECORDINGS_URL_SECRET"
# Where the dialplan (dialplans/) records; [dialer] and [recordings] both default to it.
DEFAULT_RECORDINGS_DIR: Final = "/var/spool/asterisk/monitor/minyi"
# recordings/access.py refuses shorter keys (HMAC-SHA256 wants at least 128 bits)
URL_SECRET_MIN: Final = 16


@dataclass(frozen=True)
class RecordingsSettings:
    """Where recordings are, how long they are kept, and how they are served."""

    dir: Path = Path(DEFAULT_RECORDINGS_DIR)
    retention_days: float = 180.0
    url_ttl_s: float = 600.0
    url_secret: str | None = field(default=None, repr=False)  # never in a log line


def parse_recordings(
    data: object, env: Mapping[str, str], default_dir: str | None
) -> RecordingsSettings:
    """Check the ``[recordings]`` table. ``default_dir``: the dialer's recordings_dir."""
    t = Table(data, "recordings", ("dir", "retention_days", "url_ttl_s", "url_secret"))
    secret: str | None = None
    if env.get(ENV_RECORDINGS_URL_SECRET) or "url_secret" in t.data:
        secret, origin = t.secret("url_secret", env, ENV_RECORDINGS_URL_SECRET)
        if len(secret.encode()) < URL_SECRET_MIN:
            # never echo the secret: the message ends up in logs and tickets
            raise ConfigError(
                t.at("url_secret"),
                f"must be at least {URL_SECRET_MIN} bytes (e.g. $(openssl rand -base64 32))"
                f"{origin}",
            )
    d = RecordingsSettings
    return RecordingsSettings(
        dir=directory(t.get("dir", default_dir or str(d.dir)), t.at("dir")),
        retention_days=t.number("retention_days", d.retention_days, 0, 3650, above=True),
        url_ttl_s=t.number("url_ttl_s", d.url_ttl_s, 1, 7 * 86400),
        url_secret=secret,
    )
