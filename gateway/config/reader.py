"""The gateway's one config file (TOML), every setting checked before anything starts.

Ops install the gateway on servers with no internet and edit one file by hand, so a
wrong setting must stop the gateway with one line that names the setting, e.g.
``config error: sms.binds[0].window: must be an integer from 1 to 10000, got "abc"``,
never a traceback. Unknown keys are errors too (a typo is the commonest mistake, and
a silently ignored ``windw = 8`` is worse than a refusal), with a "did you mean".

The file uses human units (``reply_window_hours``); the dataclasses hold seconds.
Survey templates are checked here too, by sms.templates.load_template, so that
`minyi config check` catches a text too long for its parts before the gateway runs.

Secrets may come from the environment instead of the file; the environment wins:

    MINYI_REDIS_URL                  redis_url
    MINYI_API_TOKEN_<NAME>           api.tokens[].token of the token named NAME
    MINYI_SMPP_PASSWORD_<BIND>       sms.binds[].password of the bind named BIND
    MINYI_WEBHOOK_SECRET_<ENDPOINT>  webhooks.endpoints[].secret
    MINYI_AMI_SECRET                 dialer.ami.secret
    MINYI_RECORDINGS_URL_SECRET      recordings.url_secret

NAME is upper-cased with every other character than A-Z and 0-9 turned into "_".
An empty environment variable counts as unset. docs/configuration.md lists every
setting; minyi.example.toml is a complete example.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import datetime
import difflib
import ipaddress
import math
import os
import re
import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from gateway.webhooks.worker import WebhookEndpoint
from sms.templates import Template, load_template
from sms.text import count_units

if TYPE_CHECKING:
    from gateway.config.asr import AsrSettings, RecordingsSettings
    from gateway.config.dialer import DialerSettings

__all__ = [
    "ApiSettings",
    "ApiToken",
    "ConfigError",
    "LogSettings",
    "QuietHours",
    "Settings",
    "SmppBind",
    "SmsSettings",
    "SurveySettings",
    "WebhookEndpoint",
    "env_name",
    "load_settings",
    "parse_settings",
    "redacted",
    "template_specs",
]

BindMode = Literal["transceiver", "transmitter", "receiver"]
IdBase = Literal["text", "hex", "dec"]
Alphabet = Literal["latin1", "gsm7"]
LogFormat = Literal["text", "json"]

WORKERS: Final = ("api", "sms", "webhooks", "dialer", "asr")
DEFAULT_SERVICE_NAMES: Final[Mapping[str, str]] = {
    "110": "110接处警",
    "window": "窗口服务",
    "traffic": "交通事故处理",
    "case": "案件办理",
    "scene": "现场勘查",
}

DEFAULT_TIMEZONE: Final = zoneinfo.ZoneInfo("Asia/Shanghai")

ENV_REDIS_URL: Final = "MINYI_REDIS_URL"
ENV_API_TOKEN: Final = "MINYI_API_TOKEN_"
ENV_SMPP_PASSWORD: Final = "MINYI_SMPP_PASSWORD_"
ENV_WEBHOOK_SECRET: Final = "MINYI_WEBHOOK_SECRET_"

# SMPP 3.4 field limits. The spec gives C-Octet String sizes including the NULL
# terminator, so the usable length is one less.
SYSTEM_ID_MAX: Final = 15  # §5.2.1 system_id: Var. max 16
PASSWORD_MAX: Final = 8  # §5.2.2 password: Var. max 9
SYSTEM_TYPE_MAX: Final = 12  # §5.2.3 system_type: Var. max 13
SOURCE_ADDR_MAX: Final = 20  # §5.2.8 source_addr: Var. max 21 (extension included)
TON_VALUES: Final = frozenset(range(7))  # §5.2.5 Unknown … Abbreviated
NPI_VALUES: Final = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})  # §5.2.6

TOKEN_MIN: Final = 16
WEBHOOK_SECRET_PREFIX: Final = "whsec_"
WEBHOOK_SECRET_MIN_BYTES: Final = 16
# The core system must get every result even after a long outage on its side: the
# feed retries for at least three days (DESIGN.md, "Nothing lost").
WEBHOOK_MIN_MAX_AGE_HOURS: Final = 72.0
EXTENSION_DIGITS_MAX: Final = 6

# Names end up in Redis keys, consumer groups and environment variable names.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_UNIT_PATTERN_RE: Final = re.compile(r"\*|[A-Za-z0-9_-]+\*?")
_HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_BARE_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_SECRET_FIELDS: Final = frozenset(
    {"token", "password", "secret", "url_secret", "ami_secret", "trunk_password"}
)
_MISSING: Final = object()
REDACTED: Final = "***"


class ConfigError(Exception):
    """A setting is wrong. ``str(e)`` is the one-line message for the operator.

    ``path`` is the setting's path in the file (``sms.binds[0].window``), or "" when
    the file itself cannot be read; ``reason`` is what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        if self.path:
            return f"config error: {self.path}: {self.reason}"
        return f"config error: {self.reason}"


# --- the settings -----------------------------------------------------------------------


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


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP API the core system calls."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024
    tokens: tuple[ApiToken, ...] = ()


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which no survey SMS goes out; surveys wait for the end.

    ``spread_s``: the surveys held back overnight are released spread over this many
    seconds after the end, so citizens' phones and the SMS center see no burst.
    """

    enabled: bool = True
    start: datetime.time = datetime.time(21, 0)
    end: datetime.time = datetime.time(8, 0)
    spread_s: float = 3600.0

    def contains(self, local: datetime.datetime) -> bool:
        """Whether ``local`` (a wall-clock time in the survey timezone) is quiet.

        ``start`` is inside the quiet period and ``end`` is not. A window with
        start > end runs over midnight; start == end means no quiet hours.
        """
        if not self.enabled or self.start == self.end:
            return False
        now = local.time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_end(self, local: datetime.datetime) -> datetime.datetime:
        """The end of the quiet period containing ``local``, in the same timezone.

        Returns ``local`` itself when it is not in quiet hours (send now). Compare
        instants with ``.timestamp()``: subtracting two datetimes that share a
        tzinfo gives wall-clock time, which is wrong across a DST change.
        """
        if not self.contains(local):
            return local
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += datetime.timedelta(days=1)
        return datetime.datetime.combine(day, self.end, tzinfo=local.tzinfo)


@dataclass(frozen=True, kw_only=True)
class SurveySettings:
    """How surveys are timed and worded."""

    timezone: zoneinfo.ZoneInfo = DEFAULT_TIMEZONE
    frequency_cap_s: float = 7 * 86400.0
    reply_window_s: float = 72 * 3600.0
    dlr_timeout_s: float = 48 * 3600.0
    retention_s: float = 180 * 86400.0
    quiet_hours: QuietHours = QuietHours()
    # service type code -> the Chinese name used in the SMS text
    service_names: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SERVICE_NAMES))
    # unit code -> unit name
    unit_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmppBind:
    """One SMPP 3.4 session to an SMS center."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # never in a log line
    system_type: str = ""
    mode: BindMode = "transceiver"
    window: int = 64
    tps: float = 100.0
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    smsc: str = "default"  # binds to the same SMS center share a message-id namespace
    submit_id_base: IdBase = "text"
    dlr_id_base: IdBase = "text"
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 1


@dataclass(frozen=True, kw_only=True)
class SmsSettings:
    """Sending the survey SMS and receiving the replies."""

    source_addr: str
    extension_digits: int = 0
    signature: str = ""
    reserve_units: int = 0
    ref16: bool = False
    registered_delivery: bool = True
    default_alphabet: Alphabet = "latin1"
    mo_reassembly_timeout_s: float = 600.0
    # raw [sms.templates.NAME] tables; sms.templates.load_template validates them
    templates: Mapping[str, Mapping[str, Any]]
    binds: tuple[SmppBind, ...] = ()


@dataclass(frozen=True)
class LogSettings:
    """Logging, configured once at the entry point."""

    level: str = "INFO"
    format: LogFormat = "text"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway reads from its config file and environment.

    ``warnings`` are doubts that do not stop the gateway (an environment variable
    that matches no setting, a worker with nothing to do); log them at start.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: tuple[str, ...] = ("api", "sms", "webhooks")
    shutdown_grace_s: float = 30.0
    api: ApiSettings = ApiSettings()
    surveys: SurveySettings = SurveySettings()
    sms: SmsSettings
    webhooks: tuple[WebhookEndpoint, ...] = ()
    dialer: DialerSettings | None = None
    asr: AsrSettings | None = None
    recordings: RecordingsSettings = field(default_factory=lambda: _default_recordings())
    log: LogSettings = LogSettings()
    source_path: Path | None = None
    warnings: tuple[str, ...] = ()


# --- reading values ---------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as the operator wrote it in TOML, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "…"
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return repr(value)


def _kind(value: object) -> str:
    """A value's TOML type only: for secrets, whose value must never be printed."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a table" if isinstance(value, Mapping) else "an array or date"


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _join(path: str, key: str) -> str:
    if not _BARE_KEY_RE.fullmatch(key):
        key = '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{key}" if path else key


def _suggest(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _integer(value: object, path: str, lo: int, hi: int) -> int:
    # bool is an int in Python but never in TOML
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(path, f"must be an integer from {lo} to {hi}, got {_show(value)}")
    return value


def _number(value: object, path: str, lo: float, hi: float, *, above: bool = False) -> float:
    """A finite number in [lo, hi], or in (lo, hi] when ``above``."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (lo < value if above else lo <= value)
        and value <= hi  # also refuses TOML's nan and inf
    )
    if not ok:
        span = (
            f"greater than {_n(lo)} and at most {_n(hi)}" if above else f"from {_n(lo)} to {_n(hi)}"
        )
        raise ConfigError(path, f"must be a number {span}, got {_show(value)}")
    assert isinstance(value, int | float)
    return float(value)


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {_show(value)}")
    return value


def _text(value: object, path: str, *, max_len: int = 200, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {_show(value)}")
    if not value and not allow_empty:
        raise ConfigError(path, "must not be empty")
    if len(value) > max_len:
        raise ConfigError(path, f"must be at most {max_len} characters, got {len(value)}")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(path, "must not contain control characters (newlines, tabs)")
    return value


def _name(value: object, path: str) -> str:
    text = _text(value, path)
    if not _NAME_RE.fullmatch(text):
        raise ConfigError(path, f"must be 1 to 32 letters, digits, _ or -, got {_show(text)}")
    return text


def _ascii(value: object, path: str, max_len: int, section: str, *, empty: bool = False) -> str:
    """A C-Octet String field of an SMPP PDU: ASCII, with a length cap from the spec."""
    text = _text(value, path, max_len=10_000, allow_empty=empty)
    if not text.isascii() or len(text) > max_len:
        raise ConfigError(
            path,
            f"must be at most {max_len} ASCII characters (SMPP 3.4 {section}), got {_show(text)}",
        )
    return text


def _host(value: object, path: str) -> str:
    text = _text(value, path, max_len=253)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME_RE.fullmatch(text):
            raise ConfigError(
                path, f"must be a host name or IP address, got {_show(text)}"
            ) from None
    return text


_S = TypeVar("_S", bound=str)


def _pick(value: object, path: str, options: Sequence[_S]) -> _S:
    for option in options:
        if value == option:
            return option
    listed = ", ".join(f'"{o}"' for o in options)
    hint = _suggest(value, options) if isinstance(value, str) else ""
    raise ConfigError(path, f"must be one of {listed}, got {_show(value)}{hint}")


def _code(value: object, path: str, allowed: Collection[int], section: str) -> int:
    """An SMPP code point (TON, NPI) from the spec's table."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        listed = ", ".join(str(v) for v in sorted(allowed))
        raise ConfigError(path, f"must be one of {listed} (SMPP 3.4 {section}), got {_show(value)}")
    return value


def _clock(value: object, path: str) -> datetime.time:
    """A time of day: "HH:MM", "HH:MM:SS", or a TOML local time (21:00:00)."""
    if isinstance(value, datetime.time) and value.tzinfo is None:
        return value
    match = _TIME_RE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        hour, minute, second = (int(g or 0) for g in match.groups())
        return datetime.time(hour, minute, second)
    except ValueError:
        raise ConfigError(
            path, f'must be a time of day "HH:MM" or "HH:MM:SS", got {_show(value)}'
        ) from None


class _Table:
    """One TOML table being read: refuses unknown keys, names every path."""

    def __init__(self, data: object, path: str, known: Collection[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"must be a table, got {_show(data)}")
        for key in data:
            if key not in known:
                hint = _suggest(str(key), known) or f" (known here: {', '.join(sorted(known))})"
                raise ConfigError(_join(path, str(key)), f"unknown setting{hint}")
        self.data: Mapping[str, object] = data
        self.path = path

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def get(self, key: str, default: object = _MISSING) -> object:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise ConfigError(self.at(key), "is required")
        return default

    def integer(self, key: str, default: object, lo: int, hi: int) -> int:
        return _integer(self.get(key, default), self.at(key), lo, hi)

    def number(
        self, key: str, default: object, lo: float, hi: float, *, above: bool = False
    ) -> float:
        return _number(self.get(key, default), self.at(key), lo, hi, above=above)

    def boolean(self, key: str, default: object) -> bool:
        return _boolean(self.get(key, default), self.at(key))

    def pick(self, key: str, default: object, options: Sequence[_S]) -> _S:
        return _pick(self.get(key, default), self.at(key), options)

    def tables(self, key: str) -> list[tuple[object, str]]:
        """An array of tables ([[key]]), as (item, path) pairs; [] when absent."""
        value = self.get(key, [])
        path = self.at(key)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(
                path, f"must be an array of tables, written [[{path}]], got {_show(value)}"
            )
        return [(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def secret(self, key: str, env: Mapping[str, str], var: str) -> tuple[str, str]:
        """A secret from ``var`` or the file, and where it came from (for messages).

        Only the SMPP password may be "" (SMPP 3.4 §5.2.2: a NULL password when
        the SMS center wants none); an empty token or webhook secret is unset.
        """
        from_env = env.get(var, "")
        if from_env:
            return from_env, f" (value from environment variable {var})"
        if key in self.data:
            value = self.data[key]
            if not isinstance(value, str):
                raise ConfigError(self.at(key), f"must be a string in quotes, got {_kind(value)}")
            if value or key == "password":
                return value, ""
        raise ConfigError(
            self.at(key),
            f'is not set: put {key} = "..." in the file or set {var} in the environment',
        )


def env_name(prefix: str, name: str) -> str:
    """The environment variable for a named secret: "core-a" -> PREFIX + "CORE_A"."""
    return prefix + re.sub(r"[^A-Z0-9]", "_", name.upper())


def _unique(names: list[tuple[str, str]], prefix: str) -> None:
    """Names (with their paths) must differ, and so must their environment variables."""
    seen: dict[str, str] = {}
    for name, path in names:
        var = env_name(prefix, name)
        if var in seen:
            raise ConfigError(path, f'"{name}" is used twice (also {seen[var]}, both read {var})')
        seen[var] = path


# --- sections ---------------------------------------------------------------------------


def _redis_url(root: _Table, env: Mapping[str, str]) -> str:
    origin = ""
    value = root.get("redis_url", Settings.redis_url)
    if env.get(ENV_REDIS_URL):
        value, origin = env[ENV_REDIS_URL], f" (value from environment variable {ENV_REDIS_URL})"
    path = root.at("redis_url")
    url = _text(value, path, max_len=2000)
    expected = 'must look like "redis://host:6379/0", "rediss://…" or "unix:///path"'
    try:
        parts = urllib.parse.urlsplit(url)
        db = parts.path.strip("/")
        ok = parts.scheme == "unix" and bool(parts.path)
        if parts.scheme in ("redis", "rediss"):
            ok = bool(parts.hostname) and (not db or db.isdigit())
            _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(path, f"{expected}, got {_show(_redact_url(url))}{origin}")
    return url


def _workers(root: _Table) -> tuple[str, ...]:
    # Unset: the whole gateway in one process, the dialer and the ASR worker included
    # when their sections are there (neither can run without its own settings).
    default = list(Settings.workers) + [w for w in ("dialer", "asr") if w in root.data]
    value = root.get("workers", default)
    path = root.at("workers")
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty array of worker names, got {_show(value)}")
    workers = tuple(_pick(w, f"{path}[{i}]", WORKERS) for i, w in enumerate(value))
    for i, worker in enumerate(workers):
        if worker in workers[:i]:
            raise ConfigError(f"{path}[{i}]", f'"{worker}" is listed twice')
    return workers


def _log(data: object) -> LogSettings:
    t = _Table(data, "log", ("level", "format"))
    level = t.get("level", "INFO")
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    level = _pick(level.upper() if isinstance(level, str) else level, t.at("level"), levels)
    return LogSettings(level=level, format=t.pick("format", "text", ("text", "json")))


def _api(data: object, env: Mapping[str, str]) -> ApiSettings:
    t = _Table(data, "api", ("host", "port", "max_batch", "max_body_mb", "tokens"))
    tokens = tuple(_api_token(item, path, env) for item, path in t.tables("tokens"))
    _unique([(tok.name, f"api.tokens[{i}].name") for i, tok in enumerate(tokens)], ENV_API_TOKEN)
    for i, tok in enumerate(tokens):
        for j in range(i):
            if tokens[j].token == tok.token:
                raise ConfigError(
                    f"api.tokens[{i}].token",
                    f'is the same as the token of "{tokens[j].name}"; each client needs its own',
                )
    return ApiSettings(
        host=_host(t.get("host", ApiSettings.host), t.at("host")),
        port=t.integer("port", ApiSettings.port, 1, 65535),
        max_batch=t.integer("max_batch", ApiSettings.max_batch, 1, 100_000),
        max_body_bytes=round(t.number("max_body_mb", 8, 0, 1024, above=True) * 1024 * 1024),
        tokens=tokens,
    )


def _api_token(data: object, path: str, env: Mapping[str, str]) -> ApiToken:
    t = _Table(data, path, ("name", "token", "units"))
    name = _name(t.get("name"), t.at("name"))
    token, origin = t.secret("token", env, env_name(ENV_API_TOKEN, name))
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
            f"for every unit, got {_show(units)}",
        )
    for i, unit in enumerate(units):
        if not isinstance(unit, str) or not _UNIT_PATTERN_RE.fullmatch(unit):
            raise ConfigError(
                f"{t.at('units')}[{i}]",
                f'must be a unit code "330602", a prefix "3306*" or "*", got {_show(unit)}',
            )
    return ApiToken(name=name, token=token, units=tuple(units))


def _quiet_hours(data: object, path: str) -> QuietHours:
    t = _Table(data, path, ("enabled", "start", "end", "spread_minutes"))
    default = QuietHours()
    return QuietHours(
        enabled=t.boolean("enabled", default.enabled),
        start=_clock(t.get("start", default.start), t.at("start")),
        end=_clock(t.get("end", default.end), t.at("end")),
        spread_s=t.number("spread_minutes", default.spread_s / 60, 0, 1440) * 60,
    )


def _names(data: object, path: str, *, max_len: int) -> dict[str, str]:
    """A table of code -> display name ([surveys.service_names], [surveys.unit_names])."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a table of code = name, got {_show(data)}")
    names: dict[str, str] = {}
    for code, name in data.items():
        item = _join(path, str(code))
        if not _NAME_RE.fullmatch(str(code)):
            raise ConfigError(item, "a code must be 1 to 32 letters, digits, _ or -")
        names[str(code)] = _text(name, item, max_len=max_len)
    return names


def _timezone(value: object, path: str) -> zoneinfo.ZoneInfo:
    name = _text(value, path)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = _suggest(name, zoneinfo.available_timezones())
        raise ConfigError(path, f"unknown time zone {_show(name)}{hint}") from None


def _surveys(data: object) -> SurveySettings:
    keys = (
        "timezone",
        "frequency_cap_days",
        "reply_window_hours",
        "dlr_timeout_hours",
        "retention_days",
        "quiet_hours",
        "service_names",
        "unit_names",
    )
    t = _Table(data, "surveys", keys)
    service_names = _names(
        t.get("service_names", DEFAULT_SERVICE_NAMES), t.at("service_names"), max_len=20
    )
    if not service_names:
        raise ConfigError(t.at("service_names"), "must name at least one service type")
    settings = SurveySettings(
        timezone=_timezone(t.get("timezone", "Asia/Shanghai"), t.at("timezone")),
        # 0 turns the cap off: a citizen may be surveyed after every service
        frequency_cap_s=t.number("frequency_cap_days", 7, 0, 365) * 86400,
        reply_window_s=t.number("reply_window_hours", 72, 0, 720, above=True) * 3600,
        dlr_timeout_s=t.number("dlr_timeout_hours", 48, 0, 720, above=True) * 3600,
        retention_s=t.number("retention_days", 180, 0, 3650, above=True) * 86400,
        quiet_hours=_quiet_hours(t.get("quiet_hours", {}), t.at("quiet_hours")),
        service_names=service_names,
        unit_names=_names(t.get("unit_names", {}), t.at("unit_names"), max_len=64),
    )
    # A reply or receipt must still find its survey record when it arrives.
    if settings.retention_s < max(settings.reply_window_s, settings.dlr_timeout_s):
        raise ConfigError(
            t.at("retention_days"),
            "must be at least as long as reply_window_hours and dlr_timeout_hours",
        )
    return settings


_BIND_KEYS: Final = tuple(f.name for f in dataclasses.fields(SmppBind))
_ID_BASES: Final[tuple[IdBase, ...]] = ("text", "hex", "dec")


def _smpp_bind(data: object, path: str, env: Mapping[str, str]) -> SmppBind:
    t = _Table(data, path, _BIND_KEYS)
    name = _name(t.get("name"), t.at("name"))
    password, origin = t.secret("password", env, env_name(ENV_SMPP_PASSWORD, name))
    if not password.isascii() or len(password) > PASSWORD_MAX or not password.isprintable():
        raise ConfigError(
            t.at("password"),
            f"must be at most {PASSWORD_MAX} ASCII characters (SMPP 3.4 §5.2.2), "
            f"got {len(password)} characters{origin}",
        )
    reconnect_initial_s = t.number("reconnect_initial_s", 1.0, 0, 3600, above=True)
    return SmppBind(
        name=name,
        host=_host(t.get("host"), t.at("host")),
        port=t.integer("port", _MISSING, 1, 65535),
        system_id=_ascii(t.get("system_id"), t.at("system_id"), SYSTEM_ID_MAX, "§5.2.1"),
        password=password,
        system_type=_ascii(
            t.get("system_type", ""), t.at("system_type"), SYSTEM_TYPE_MAX, "§5.2.3", empty=True
        ),
        mode=t.pick("mode", "transceiver", ("transceiver", "transmitter", "receiver")),
        window=t.integer("window", 64, 1, 10_000),
        tps=t.number("tps", 100.0, 0, 100_000, above=True),
        enquire_link_s=t.number("enquire_link_s", 30.0, 1, 3600),
        response_timeout_s=t.number("response_timeout_s", 30.0, 0, 600, above=True),
        reconnect_initial_s=reconnect_initial_s,
        reconnect_max_s=t.number("reconnect_max_s", 60.0, reconnect_initial_s, 86400),
        smsc=_name(t.get("smsc", "default"), t.at("smsc")),
        submit_id_base=t.pick("submit_id_base", "text", _ID_BASES),
        dlr_id_base=t.pick("dlr_id_base", "text", _ID_BASES),
        source_ton=_code(t.get("source_ton", 0), t.at("source_ton"), TON_VALUES, "§5.2.5"),
        source_npi=_code(t.get("source_npi", 0), t.at("source_npi"), NPI_VALUES, "§5.2.6"),
        dest_ton=_code(t.get("dest_ton", 0), t.at("dest_ton"), TON_VALUES, "§5.2.5"),
        dest_npi=_code(t.get("dest_npi", 1), t.at("dest_npi"), NPI_VALUES, "§5.2.6"),
    )


def _templates(value: object, path: str) -> dict[str, dict[str, Any]]:
    """The raw template tables; their content is checked by sms.templates."""
    example = f'[{path}.default] with text = "..."'
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"must be tables of templates, written {example}")
    templates: dict[str, dict[str, Any]] = {}
    for name, table in value.items():
        item = _join(path, str(name))
        _name(str(name), item)
        if not isinstance(table, Mapping):
            raise ConfigError(item, f'must be a table, written [{item}] with text = "..."')
        templates[str(name)] = copy.deepcopy(dict(table))
    if "default" not in templates:
        # surveys that name no template use it
        raise ConfigError(path, f'needs a template named "default", written {example}')
    return templates


def template_specs(sms: SmsSettings) -> dict[str, dict[str, Any]]:
    """Each [sms.templates.NAME] table with the [sms] settings it inherits.

    A template's own ``signature``, ``reserve_units`` or ``ref16`` wins; otherwise the
    [sms] value applies, so the load-time length check sees what the sender sends.
    """
    specs: dict[str, dict[str, Any]] = {}
    for name, raw in sms.templates.items():
        spec = dict(raw)
        spec.setdefault("signature", sms.signature)
        spec.setdefault("reserve_units", sms.reserve_units)
        spec.setdefault("ref16", sms.ref16)
        specs[name] = spec
    return specs


def load_templates(sms: SmsSettings) -> dict[str, Template]:
    """Every template, loaded and checked (a ConfigError names the one that fails)."""
    templates: dict[str, Template] = {}
    for name, spec in template_specs(sms).items():
        try:
            templates[name] = load_template(name, spec)
        except ValueError as e:  # sms.templates.TemplateError: too long, bad placeholder…
            raise ConfigError(_join("sms.templates", name), str(e)) from None
    return templates


def _signature(value: object, path: str) -> str:
    text = _text(value, path, max_len=20, allow_empty=True)
    # Chinese carriers require the sender's signature in 【】 (DESIGN.md, "Contracts").
    if text and not (len(text) > 2 and text[0] == "【" and text[-1] == "】"):
        raise ConfigError(
            path, f'must be empty or a signature in 【】 like "【某某公安】", got {_show(text)}'
        )
    return text


def _sms(data: object, env: Mapping[str, str]) -> SmsSettings:
    keys = (
        "source_addr",
        "extension_digits",
        "signature",
        "reserve_units",
        "ref16",
        "registered_delivery",
        "default_alphabet",
        "mo_reassembly_timeout_minutes",
        "templates",
        "binds",
    )
    t = _Table(data, "sms", keys)
    source_addr = _text(t.get("source_addr"), t.at("source_addr"), max_len=100)
    if not source_addr.isdigit() or not source_addr.isascii() or len(source_addr) > SOURCE_ADDR_MAX:
        raise ConfigError(
            t.at("source_addr"),
            f"must be 1 to {SOURCE_ADDR_MAX} digits (SMPP 3.4 §5.2.8), got {_show(source_addr)}",
        )
    extension_digits = t.integer("extension_digits", 0, 0, EXTENSION_DIGITS_MAX)
    if len(source_addr) + extension_digits > SOURCE_ADDR_MAX:
        # the extension code (扩展码) is appended to source_addr in the same field
        raise ConfigError(
            t.at("extension_digits"),
            f"source_addr ({len(source_addr)} digits) plus extension_digits must be at most "
            f"{SOURCE_ADDR_MAX} digits (SMPP 3.4 §5.2.8), got {extension_digits}",
        )
    binds = tuple(_smpp_bind(item, path, env) for item, path in t.tables("binds"))
    _unique([(b.name, f"sms.binds[{i}].name") for i, b in enumerate(binds)], ENV_SMPP_PASSWORD)
    _same_id_bases(binds)
    return SmsSettings(
        source_addr=source_addr,
        extension_digits=extension_digits,
        signature=_signature(t.get("signature", ""), t.at("signature")),
        # room kept free in every part for text the SMS center adds itself
        reserve_units=t.integer("reserve_units", 0, 0, 60),
        ref16=t.boolean("ref16", False),
        registered_delivery=t.boolean("registered_delivery", True),
        default_alphabet=t.pick("default_alphabet", "latin1", ("latin1", "gsm7")),
        mo_reassembly_timeout_s=t.number("mo_reassembly_timeout_minutes", 10, 0, 1440, above=True)
        * 60,
        templates=_templates(t.get("templates", {}), t.at("templates")),
        binds=binds,
    )


def _same_id_bases(binds: Sequence[SmppBind]) -> None:
    """Binds to one SMS center must read its message ids the same way.

    A receipt may arrive on another bind than the submit_sm_resp did; both ids are
    normalised per SMS center, so two readings would never match.
    """
    first: dict[str, int] = {}
    for i, bind in enumerate(binds):
        j = first.setdefault(bind.smsc, i)
        for key in ("submit_id_base", "dlr_id_base"):
            mine, theirs = getattr(bind, key), getattr(binds[j], key)
            if mine != theirs:
                raise ConfigError(
                    f"sms.binds[{i}].{key}",
                    f'is "{mine}" but bind "{binds[j].name}" to the same SMS center '
                    f'"{bind.smsc}" says "{theirs}"; binds to one center must agree',
                )


def _check_sms_worker(sms: SmsSettings) -> None:
    """What the sms worker needs: a bind to send on and, per center, one to hear on."""
    if not sms.binds:
        raise ConfigError(
            "sms.binds", "at least one [[sms.binds]] is needed when the sms worker runs"
        )
    for i, bind in enumerate(sms.binds):
        same = [b for b in sms.binds if b.smsc == bind.smsc]
        # SMPP 3.4 §2.2.1: a transmitter session never receives deliver_sm
        if bind.mode != "receiver" and all(b.mode == "transmitter" for b in same):
            raise ConfigError(
                f"sms.binds[{i}].mode",
                f'SMS center "{bind.smsc}" has no transceiver or receiver bind, so its '
                "receipts and the citizens' replies would never arrive",
            )
    if all(b.mode == "receiver" for b in sms.binds):
        raise ConfigError("sms.binds", "every bind is a receiver, so no SMS can be sent")


def _url(value: object, path: str) -> str:
    url = _text(value, path, max_len=2000)
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            path, f"must be an http:// or https:// URL with a host, got {_show(_redact_url(url))}"
        )
    return url


def _webhook_secret(t: _Table, env: Mapping[str, str], name: str) -> str:
    secret, origin = t.secret("secret", env, env_name(ENV_WEBHOOK_SECRET, name))
    key = b""
    if secret.startswith(WEBHOOK_SECRET_PREFIX):
        encoded = secret[len(WEBHOOK_SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) < WEBHOOK_SECRET_MIN_BYTES:
        # never echo the secret: the message ends up in logs and tickets
        raise ConfigError(
            t.at("secret"),
            f'must be "{WEBHOOK_SECRET_PREFIX}" followed by the base64 of at least '
            f"{WEBHOOK_SECRET_MIN_BYTES} random bytes (e.g. whsec_$(openssl rand -base64 32))"
            f"{origin}",
        )
    return secret


def _webhook_endpoint(data: object, path: str, env: Mapping[str, str]) -> WebhookEndpoint:
    keys = (
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
    t = _Table(data, path, keys)
    name = _name(t.get("name"), t.at("name"))
    allow_short = t.boolean("allow_short_max_age", False)
    max_age_hours = t.number("max_age_hours", 72, 0, 8760, above=True)
    if max_age_hours < WEBHOOK_MIN_MAX_AGE_HOURS and not allow_short:
        raise ConfigError(
            t.at("max_age_hours"),
            f"must be at least {_n(WEBHOOK_MIN_MAX_AGE_HOURS)}, so results survive a 3-day "
            f"outage of the receiver (allow_short_max_age = true is for tests), "
            f"got {_n(max_age_hours)}",
        )
    backoff_initial_s = t.number("backoff_initial_s", 1.0, 0, 3600, above=True)
    url = _url(t.get("url"), t.at("url"))
    secret = _webhook_secret(t, env, name)
    timeout_s = t.number("timeout_s", 10.0, 0, 300, above=True)
    concurrency = t.integer("concurrency", 32, 1, 1024)
    batch_max = t.integer("batch_max", 1, 1, 1000)
    backoff_max_s = t.number("backoff_max_s", 900.0, backoff_initial_s, 86400)
    try:
        return WebhookEndpoint(
            name=name,
            url=url,
            secret=secret,
            timeout_s=timeout_s,
            max_age_s=max_age_hours * 3600,
            concurrency=concurrency,
            batch_max=batch_max,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
    except ValueError as e:  # gateway/webhooks/worker.py checks its own invariants too
        raise ConfigError(path, str(e)) from None


def _webhooks(data: object, env: Mapping[str, str]) -> tuple[WebhookEndpoint, ...]:
    t = _Table(data, "webhooks", ("endpoints",))
    endpoints = tuple(_webhook_endpoint(item, path, env) for item, path in t.tables("endpoints"))
    names = [(e.name, f"webhooks.endpoints[{i}].name") for i, e in enumerate(endpoints)]
    _unique(names, ENV_WEBHOOK_SECRET)
    return endpoints


def _cut_names(surveys: SurveySettings, templates: Mapping[str, Template]) -> list[str]:
    """Service and unit names longer than a template shows: the SMS would cut them."""
    found: list[str] = []
    for key, placeholder in (("service_names", "service"), ("unit_names", "unit_name")):
        names: Mapping[str, str] = getattr(surveys, key)
        for code, name in names.items():
            for tname, template in templates.items():
                limit = template.max_units.get(placeholder)
                if limit is not None and count_units(name) > limit:
                    found.append(
                        f'{_join("surveys." + key, code)}: "{name}" is longer than the '
                        f'{limit} characters template "{tname}" shows, so the SMS cuts it '
                        f"(raise max_units.{placeholder} there)"
                    )
                    break
    return found


def _warnings(
    settings: Settings, env: Mapping[str, str], templates: Mapping[str, Template]
) -> tuple[str, ...]:
    """Doubts worth a log line at start but no refusal: the environment may be shared
    by processes with other config files, and an idle worker harms nothing."""
    from gateway.config.asterisk import ENV_AGENT_PASSWORD

    asterisk = settings.dialer.asterisk if settings.dialer is not None else None
    expected = {
        ENV_API_TOKEN: ("api.tokens", [t.name for t in settings.api.tokens]),
        ENV_SMPP_PASSWORD: ("sms.binds", [b.name for b in settings.sms.binds]),
        ENV_WEBHOOK_SECRET: ("webhooks.endpoints", [e.name for e in settings.webhooks]),
        ENV_AGENT_PASSWORD: (
            "dialer.asterisk.agents",
            [a.name for a in asterisk.agents] if asterisk is not None else [],
        ),
    }
    found: list[str] = []
    for var in sorted(env):
        for prefix, (where, names) in expected.items():
            known = [env_name(prefix, n) for n in names]
            if var.startswith(prefix) and var not in known:
                found.append(
                    f"{var} is set but no entry of {where} has that name, "
                    f"so it is ignored{_suggest(var, known)}"
                )
    found += _cut_names(settings.surveys, templates)
    if "api" in settings.workers and not settings.api.tokens:
        found.append("the api worker runs but api.tokens is empty: every request is refused")
    if "webhooks" in settings.workers and not settings.webhooks:
        found.append("the webhooks worker runs but no [[webhooks.endpoints]] is configured")
    dialer = settings.dialer
    if "dialer" in settings.workers and dialer is not None and not dialer.units:
        found.append(
            "the dialer worker runs but dialer.units is empty: callbacks to agents wait "
            "as unroutable (only the automated IVR calls are made)"
        )
    return tuple(found)


# --- entry points -----------------------------------------------------------------------

_ROOT_KEYS: Final = (
    "redis_url",
    "workers",
    "shutdown_grace_s",
    "log",
    "api",
    "surveys",
    "sms",
    "webhooks",
    "dialer",
    "asr",
    "recordings",
)


def _dialer(
    root: _Table, workers: tuple[str, ...], env: Mapping[str, str]
) -> DialerSettings | None:
    from gateway.config.dialer import parse_dialer  # it reads values with this module

    if "dialer" not in root.data:
        if "dialer" in workers:
            raise ConfigError("dialer", 'is required when workers include "dialer"')
        return None
    return parse_dialer(root.get("dialer"), env)


def _default_recordings() -> RecordingsSettings:
    from gateway.config.asr import RecordingsSettings

    return RecordingsSettings()


def _asr(root: _Table, workers: tuple[str, ...]) -> AsrSettings | None:
    from gateway.config.asr import parse_asr

    # Every [asr] setting has a default: the worker may run without the table.
    if "asr" not in root.data and "asr" not in workers:
        return None
    return parse_asr(root.get("asr", {}))


def _recordings(
    root: _Table, env: Mapping[str, str], dialer: DialerSettings | None
) -> RecordingsSettings:
    from gateway.config.asr import parse_recordings

    default_dir = dialer.recordings_dir if dialer is not None else None
    return parse_recordings(root.get("recordings", {}), env, default_dir)


def parse_settings(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: Path | None = None
) -> Settings:
    """Check a parsed config file (plus secrets from ``env``) and build the settings.

    ``env`` defaults to ``os.environ``. Raises ConfigError naming the first wrong
    setting; nothing else escapes for any input.
    """
    env = os.environ if env is None else env
    root = _Table(data, "", _ROOT_KEYS)
    redis_url = _redis_url(root, env)
    workers = _workers(root)
    shutdown_grace_s = root.number("shutdown_grace_s", 30.0, 0, 3600)
    log = _log(root.get("log", {}))
    api = _api(root.get("api", {}), env)
    surveys = _surveys(root.get("surveys", {}))
    sms = _sms(root.get("sms", {}), env)
    templates = load_templates(sms)
    if "sms" in workers:
        _check_sms_worker(sms)
    webhooks = _webhooks(root.get("webhooks", {}), env)
    dialer = _dialer(root, workers, env)
    settings = Settings(
        redis_url=redis_url,
        workers=workers,
        shutdown_grace_s=shutdown_grace_s,
        log=log,
        api=api,
        surveys=surveys,
        sms=sms,
        webhooks=webhooks,
        dialer=dialer,
        asr=_asr(root, workers),
        recordings=_recordings(root, env, dialer),
        source_path=source,
    )
    return dataclasses.replace(settings, warnings=_warnings(settings, env, templates))


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the TOML config file at ``path``; see parse_settings."""
    source = Path(path)
    try:
        # utf-8-sig: Windows editors put a byte-order mark that TOML does not allow
        text = source.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ConfigError("", f"cannot read {source}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError("", f"{source}: not UTF-8 text (bad byte at offset {e.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{source}: not valid TOML: {e}") from None
    return parse_settings(data, env, source)


def _redact_url(url: str) -> str:
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
    secretish = ("password", "secret", "token", "key")
    if any(any(s in k.lower() for s in secretish) for k, _ in query):
        hidden = [(k, REDACTED if any(s in k.lower() for s in secretish) else v) for k, v in query]
        parts = parts._replace(query=urllib.parse.urlencode(hidden, safe="*"))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _plain(value: object, name: str = "") -> Any:
    """A settings value as JSON-ready data, with secrets replaced."""
    if name in _SECRET_FIELDS:
        return REDACTED
    if (name == "url" or name.endswith("_url")) and isinstance(value, str):
        return _redact_url(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, zoneinfo.ZoneInfo):
        return value.key
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def redacted(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON-ready data, secrets replaced by "***" (`minyi config check`)."""
    plain: dict[str, Any] = _plain(settings)
    return plain
