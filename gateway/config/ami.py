"""The ``[dialer.ami]`` table: how the dialer reaches Asterisk's manager interface.

Read by :func:`gateway.config.dialer.parse_dialer`; ``[dialer.asterisk]`` renders
Asterisk's ``manager.conf`` from the same account. The secret is best kept in the
environment (``MINYI_AMI_SECRET``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config.reader import Table, host, text

ENV_AMI_SECRET: Final = "MINYI_AMI_SECRET"


@dataclass(frozen=True)
class AmiSettings:
    """Where and how to reach Asterisk's manager interface. Durations are seconds.

    The secret has no real default: the config file requires one.
    """

    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "minyi"
    secret: str = field(default="", repr=False)  # never in a log line or a traceback
    connect_timeout_s: float = 10.0
    action_timeout_s: float = 10.0
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0


def parse_ami(data: object, env: Mapping[str, str]) -> AmiSettings:
    """Check the ``[dialer.ami]`` table; the secret may come from the environment."""
    t = Table(
        data,
        "dialer.ami",
        ("host", "port", "username", "secret", "ping_interval_s", "ping_timeout_s"),
    )
    secret, _origin = t.secret("secret", env, ENV_AMI_SECRET)
    d = AmiSettings
    return AmiSettings(
        host=host(t.get("host", d.host), t.at("host")),
        port=t.integer("port", d.port, 1, 65535),
        username=text(t.get("username", d.username), t.at("username"), max_len=80),
        secret=secret,
        ping_interval_s=t.number("ping_interval_s", d.ping_interval_s, 0.1, 300, above=True),
        ping_timeout_s=t.number("ping_timeout_s", d.ping_timeout_s, 0.1, 300, above=True),
    )
