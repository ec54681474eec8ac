"""The ``[dialer]`` section: how the callback dialer reaches Asterisk and when it calls.

Read by :func:`gateway.config.reader.parse_settings`; documented in ``minyi.example.toml``.
The AMI secret is best kept in the environment (``MINYI_AMI_SECRET``). The optional
``[dialer.asterisk]`` table is read by :mod:`gateway.config.asterisk`.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.config.reader import ConfigError, _clock, _host, _show, _Table, _text
from gateway.dialer.ami import AmiSettings
from gateway.dialer.asterisk import AsteriskSettings

ENV_AMI_SECRET: Final = "MINYI_AMI_SECRET"
_UNIT_RE: Final = re.compile(r"[A-Za-z0-9_]{1,32}")
_UNIT_OR_EMPTY: Final = re.compile(r"|[A-Za-z0-9_]{1,32}")
_TRUNK_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
_CALLER_ID_RE: Final = re.compile(r"[^\r\n,;]{0,80}")
_DIR_RE: Final = re.compile(r"/[-A-Za-z0-9_./]{0,200}")
KINDS: Final = ("agent", "ivr")


@dataclass(frozen=True)
class CallingHours:
    """Local hours in which citizens may be called (default 09:00-20:00)."""

    start: datetime.time = datetime.time(9)
    end: datetime.time = datetime.time(20)

    def open(self, local: datetime.datetime) -> bool:
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # over midnight


@dataclass(frozen=True)
class DialerSettings:
    """Everything the callback dialer needs. Durations are seconds."""

    ami: AmiSettings
    trunk: str = "minyi-trunk"
    caller_id: str | None = None
    units: tuple[str, ...] = ()
    default_unit: str = ""
    calling_hours: CallingHours = CallingHours()
    max_attempts: int = 3
    retry_spacing_s: tuple[float, ...] = (1800.0, 7200.0)
    ring_timeout_s: float = 30.0
    wrapup_s: float = 5.0
    ivr_max_calls: int = 10
    recordings_dir: str = "/var/spool/asterisk/monitor/minyi"
    recheck_kind: str = "agent"
    recheck_priority: int = 7
    transcribe: bool = True
    no_reply_ivr: bool = False
    tick_s: float = 0.1
    asterisk: AsteriskSettings | None = None  # [dialer.asterisk], to render its config

    def spacing(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        s = self.retry_spacing_s
        return s[min(attempt, len(s)) - 1] if s else 0.0


_KEYS: Final = (
    "ami",
    "trunk",
    "caller_id",
    "units",
    "default_unit",
    "calling_hours",
    "max_attempts",
    "retry_spacing_minutes",
    "ring_timeout_s",
    "wrapup_s",
    "ivr_max_calls",
    "recordings_dir",
    "recheck",
    "transcribe",
    "no_reply_ivr",
    "asterisk",
)


def _match(value: object, path: str, rx: re.Pattern[str], what: str) -> str:
    text = _text(value, path, max_len=200, allow_empty=True)
    if not rx.fullmatch(text):
        raise ConfigError(path, f"must be {what}, got {_show(value)}")
    return text


def _ami(data: object, env: Mapping[str, str]) -> AmiSettings:
    t = _Table(
        data,
        "dialer.ami",
        ("host", "port", "username", "secret", "ping_interval_s", "ping_timeout_s"),
    )
    secret, _origin = t.secret("secret", env, ENV_AMI_SECRET)
    return AmiSettings(
        host=_host(t.get("host", "127.0.0.1"), t.at("host")),
        port=t.integer("port", 5038, 1, 65535),
        username=_text(t.get("username", "minyi"), t.at("username"), max_len=80),
        secret=secret,
        ping_interval_s=t.number("ping_interval_s", 5.0, 0.1, 300, above=True),
        ping_timeout_s=t.number("ping_timeout_s", 5.0, 0.1, 300, above=True),
    )


def _units(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(path, f"must be an array of unit codes, got {_show(value)}")
    return tuple(
        _match(u, f"{path}[{i}]", _UNIT_RE, "a unit code (letters, digits, _)")
        for i, u in enumerate(value)
    )


def _spacing(value: object, path: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty array of minutes, got {_show(value)}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 10080:
            raise ConfigError(f"{path}[{i}]", f"must be minutes 0..10080, got {_show(v)}")
        out.append(float(v) * 60.0)
    return tuple(out)


def parse_dialer(data: object, env: Mapping[str, str]) -> DialerSettings:
    """Check the ``[dialer]`` table; raises ConfigError naming the first wrong setting."""
    t = _Table(data, "dialer", _KEYS)
    hours = _Table(t.get("calling_hours", {}), t.at("calling_hours"), ("start", "end"))
    recheck = _Table(t.get("recheck", {}), t.at("recheck"), ("kind", "priority"))
    caller_id = _match(t.get("caller_id", ""), t.at("caller_id"), _CALLER_ID_RE, "a caller id")
    units = _units(t.get("units", []), t.at("units"))
    default_unit = _match(t.get("default_unit", ""), t.at("default_unit"), _UNIT_OR_EMPTY, "a unit")
    if default_unit and default_unit not in units:
        raise ConfigError(t.at("default_unit"), f'"{default_unit}" is not in dialer.units')
    start = _clock(hours.get("start", "09:00"), hours.at("start"))
    end = _clock(hours.get("end", "20:00"), hours.at("end"))
    if start == end:
        raise ConfigError(hours.at("end"), "must differ from start")
    settings = DialerSettings(
        ami=_ami(t.get("ami", {}), env),
        trunk=_match(t.get("trunk", "minyi-trunk"), t.at("trunk"), _TRUNK_RE, "an endpoint name"),
        caller_id=caller_id or None,
        units=units,
        default_unit=default_unit,
        calling_hours=CallingHours(start, end),
        max_attempts=t.integer("max_attempts", 3, 1, 20),
        retry_spacing_s=_spacing(
            t.get("retry_spacing_minutes", [30, 120]), t.at("retry_spacing_minutes")
        ),
        ring_timeout_s=t.number("ring_timeout_s", 30.0, 1, 300),
        wrapup_s=t.number("wrapup_s", 5.0, 0, 600),
        ivr_max_calls=t.integer("ivr_max_calls", 10, 0, 1000),
        recordings_dir=_match(
            t.get("recordings_dir", DialerSettings.recordings_dir),
            t.at("recordings_dir"),
            _DIR_RE,
            "an absolute path of letters, digits, - _ . /",
        ),
        recheck_kind=recheck.pick("kind", "agent", KINDS),
        recheck_priority=recheck.integer("priority", 7, 0, 9),
        transcribe=t.boolean("transcribe", True),
        no_reply_ivr=t.boolean("no_reply_ivr", False),
    )
    if "asterisk" not in t.data:
        return settings
    from gateway.config.asterisk import parse_asterisk  # it reads these settings

    return dataclasses.replace(settings, asterisk=parse_asterisk(t.get("asterisk"), env, settings))
