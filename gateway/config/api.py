"""The ``[api]`` section: the HTTP API the core system calls, and its bearer tokens.

A token may come from ``MINYI_API_TOKEN_<NAME>`` instead of the file (NAME: the
token's name, upper-cased, other characters than A-Z and 0-9 turned into "_").

``tls_cert``/``tls_key`` make the API serve HTTPS itself (aiohttp with an
``ssl.SSLContext``); both or neither. Only the paths are read here: whether the files
load, and whether the key fits the certificate, is checked at start by a process that
runs the api worker (gateway/startup.py), on the host that has the files.

``[api.desk]`` holds the people who log in to the pages the API serves: agents (访评员)
at ``/desk/`` and supervisors at ``/board/``. Each has an id and the hash of a PIN or
token (``minyi desk hash-pin``: scrypt, never the PIN itself), and the units they see:
an agent the unit queues they answer (by default those of ``[dialer.asterisk.units]``
that list them), a supervisor units and every unit below (市/县/所: codes that start
with theirs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config.reader import ConfigError, Table, env_name, host, name, show, text, unique

ENV_API_TOKEN: Final = "MINYI_API_TOKEN_"
TOKEN_MIN: Final = 16
MIB: Final = 1024 * 1024  # the file says max_body_mb
_UNIT_PATTERN_RE: Final = re.compile(r"\*|[A-Za-z0-9_-]+\*?")


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the HTTP API and the units whose surveys it may touch."""

    name: str
    token: str = field(repr=False)  # never in a log line
    units: tuple[str, ...]  # exact "330602", prefix "3306*", or "*" for every unit

    def allows(self, unit: str) -> bool:
        """Whether this token may act on surveys of ``unit`` (a unit code)."""
        for pattern in self.units:
            if pattern.endswith("*"):
                if unit.startswith(pattern[:-1]):
                    return True
            elif unit == pattern:
                return True
        return False


# scrypt$<n>$<r>$<p>$<salt, urlsafe base64>$<key, urlsafe base64> (gateway/desk/auth.py)
PIN_HASH_RE: Final = re.compile(
    r"scrypt\$[0-9]{1,8}\$[0-9]{1,3}\$[0-9]{1,3}\$[-_A-Za-z0-9=]{8,128}\$[-_A-Za-z0-9=]{16,256}"
)
_INTERFACE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}/[-A-Za-z0-9_.@]{1,80}")
ROLES: Final = ("agent", "supervisor")


@dataclass(frozen=True)
class DeskUser:
    """A person who logs in to the desk (an agent) or the board (a supervisor)."""

    id: str
    pin_hash: str = field(repr=False)  # scrypt of the PIN; never the PIN, never logged
    role: str  # ROLES
    units: tuple[str, ...] = ()  # unit codes; a supervisor's cover the units below too
    interface: str | None = None  # the agent's queue member (PJSIP/agent1) for pause


@dataclass(frozen=True)
class DeskSettings:
    """The agents' desk and the supervisors' board: who logs in, how long a session
    lives."""

    users: tuple[DeskUser, ...] = ()
    session_idle_s: float = 30 * 60.0  # a session unused this long ends
    session_max_s: float = 12 * 3600.0  # and any session ends this long after its login

    def user(self, user_id: str) -> DeskUser | None:
        """The configured user with this id, or None."""
        for u in self.users:
            if u.id == user_id:
                return u
        return None


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API the core system calls."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 1000
    max_body_bytes: int = 8 * MIB
    tokens: tuple[ApiToken, ...] = ()
    tls_cert: str | None = None  # PEM certificate chain: the API serves HTTPS
    tls_key: str | None = None  # its PEM private key (unencrypted), readable by the gateway
    desk: DeskSettings = field(default_factory=DeskSettings)


def parse_api(data: object, env: Mapping[str, str]) -> ApiSettings:
    """Check the ``[api]`` table; tokens may come from the environment."""
    t = Table(
        data,
        "api",
        ("host", "port", "max_batch", "max_body_mb", "tokens", "tls_cert", "tls_key", "desk"),
    )
    tokens = tuple(_api_token(item, path, env) for item, path in t.tables("tokens"))
    unique([(tok.name, f"api.tokens[{i}].name") for i, tok in enumerate(tokens)], ENV_API_TOKEN)
    for i, tok in enumerate(tokens):
        for j in range(i):
            if tokens[j].token == tok.token:
                raise ConfigError(
                    f"api.tokens[{i}].token",
                    f'is the same as the token of "{tokens[j].name}"; each client needs its own',
                )
    return ApiSettings(
        host=host(t.get("host", ApiSettings.host), t.at("host")),
        port=t.integer("port", ApiSettings.port, 1, 65535),
        max_batch=t.integer("max_batch", ApiSettings.max_batch, 1, 100_000),
        max_body_bytes=round(
            t.number("max_body_mb", ApiSettings.max_body_bytes / MIB, 0, 1024, above=True) * MIB
        ),
        tokens=tokens,
        tls_cert=_tls_path(t, "tls_cert", "tls_key"),
        tls_key=_tls_path(t, "tls_key", "tls_cert"),
        desk=_desk(t.get("desk", {}), t.at("desk")),
    )


def _desk(data: object, path: str) -> DeskSettings:
    t = Table(data, path, ("agents", "supervisors", "session_idle_minutes", "session_max_hours"))
    d = DeskSettings
    users: list[DeskUser] = []
    for role, key in (("agent", "agents"), ("supervisor", "supervisors")):
        users += [_desk_user(item, item_path, role) for item, item_path in t.tables(key)]
    seen: dict[str, int] = {}
    for i, u in enumerate(users):
        if u.id in seen:
            raise ConfigError(path, f'user id "{u.id}" is given twice (agents and supervisors)')
        seen[u.id] = i
    return DeskSettings(
        users=tuple(users),
        session_idle_s=t.number("session_idle_minutes", d.session_idle_s / 60, 1, 1440) * 60,
        session_max_s=t.number("session_max_hours", d.session_max_s / 3600, 0.1, 168) * 3600,
    )


def _desk_user(data: object, path: str, role: str) -> DeskUser:
    t = Table(data, path, ("id", "pin_hash", "units", "interface"))
    user_id = name(t.get("id"), t.at("id"))
    pin_hash = text(t.get("pin_hash"), t.at("pin_hash"), max_len=512)
    if not PIN_HASH_RE.fullmatch(pin_hash):
        raise ConfigError(
            t.at("pin_hash"),
            "must be a hash made by `minyi desk hash-pin` (scrypt$...), never the PIN itself",
        )
    units = t.get("units", [])
    if not isinstance(units, list) or not all(
        isinstance(u, str) and _UNIT_PATTERN_RE.fullmatch(u) and "*" not in u for u in units
    ):
        raise ConfigError(t.at("units"), f"must be an array of unit codes, got {show(units)}")
    if role == "supervisor" and not units:
        raise ConfigError(t.at("units"), "a supervisor needs the units they oversee")
    interface = None
    if "interface" in t.data:
        if role != "agent":
            raise ConfigError(t.at("interface"), "is an agent's phone; a supervisor has none")
        interface = text(t.get("interface"), t.at("interface"))
        if not _INTERFACE_RE.fullmatch(interface):
            raise ConfigError(
                t.at("interface"), f'must be like "PJSIP/1001", got {show(interface)}'
            )
    return DeskUser(
        id=user_id, pin_hash=pin_hash, role=role, units=tuple(units), interface=interface
    )


def _tls_path(t: Table, key: str, other: str) -> str | None:
    """An absolute file path, given together with ``other``."""
    if key not in t.data:
        if other in t.data:
            raise ConfigError(t.at(key), f"is required with {other} (HTTPS needs both)")
        return None
    path = text(t.get(key), t.at(key), max_len=4096)
    if not path.startswith("/"):
        raise ConfigError(t.at(key), f"must be an absolute file path, got {show(path)}")
    return path


def _api_token(data: object, path: str, env: Mapping[str, str]) -> ApiToken:
    t = Table(data, path, ("name", "token", "units"))
    token_name = name(t.get("name"), t.at("name"))
    token, origin = t.secret("token", env, env_name(ENV_API_TOKEN, token_name))
    if len(token) < TOKEN_MIN or not all(33 <= ord(c) <= 126 for c in token):
        raise ConfigError(
            t.at("token"),
            f"must be at least {TOKEN_MIN} printable ASCII characters without spaces "
            f"(it is sent in an HTTP header), got {len(token)} characters{origin}",
        )
    units = t.get("units")
    if not isinstance(units, list) or not units:
        raise ConfigError(
            t.at("units"),
            f'must be a non-empty array of unit codes like ["330602", "3306*"] or ["*"] '
            f"for every unit, got {show(units)}",
        )
    for i, unit in enumerate(units):
        if not isinstance(unit, str) or not _UNIT_PATTERN_RE.fullmatch(unit):
            raise ConfigError(
                f"{t.at('units')}[{i}]",
                f'must be a unit code "330602", a prefix "3306*" or "*", got {show(unit)}',
            )
    return ApiToken(name=token_name, token=token, units=tuple(units))
