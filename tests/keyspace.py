"""Which keys.py name a Redis key belongs to (tests of the keyspace and of old dumps)."""

from __future__ import annotations

import re
from functools import cache

from gateway.store import keys
from gateway.store.library import key_names

# A unit queue ("unit:330602"), an Asterisk ("host:port") and an ASR job id
# ("cb-42:1") hold colons of their own; every other field is taken as one segment
# (empty for the webhook wait zset of events that belong to no survey). Survey ids may
# hold colons too (the API allows them): the tests' ids do not, so that each key names
# one family.
_WIDE_FIELDS = {"queue": ".+", "pbx": ".+", "job_id": ".+"}


@cache
def families() -> dict[str, re.Pattern[str]]:
    """keys.py name -> a pattern for its keys (consumer group names left out)."""
    out = {}
    for name, template in key_names().items():
        if not template.startswith(keys.PREFIX):
            continue
        rx = "".join(
            _WIDE_FIELDS.get(part[1:-1], "[^:]*") if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[a-z_]+\})", template)
            if part
        )
        out[name] = re.compile(rx)
    return out


def family(key: str) -> list[str]:
    """The keys.py names whose pattern ``key`` matches (one, for a well-named key)."""
    return [name for name, rx in families().items() if rx.fullmatch(key)]
