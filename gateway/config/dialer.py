"""The ``[dialer]`` section: how the callback dialer reaches Asterisk and when it calls.

Read by :func:`gateway.config.settings.parse_settings`; documented in
``minyi.example.toml``. Its ``[dialer.ami]`` table is read by :mod:`gateway.config.ami`
and the optional ``[dialer.asterisk]`` table by :mod:`gateway.config.asterisk`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.config.ami import AmiSettings, parse_ami
from gateway.config.asterisk import DEFAULT_TRUNK, AsteriskSettings, parse_asterisk
from gateway.config.reader import DIR_RE, ConfigError, Table, clock, show, text
from gateway.config.recordings import DEFAULT_RECORDINGS_DIR

MINUTE: Final = 60.0
_UNIT_RE: Final = re.compile(r"[A-Za-z0-9_]{1,32}")
_UNIT_OR_EMPTY: Final = re.compile(r"|[A-Za-z0-9_]{1,32}")
_TRUNK_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
_CALLER_ID_RE: Final = re.compile(r"[^\r\n,;]{0,80}")
# The agent phone's caller name: no comma (Originate variables split on it), no quote,
# backslash, bracket or control character; {number} at most once, no other brace.
_CALLER_NAME_RE: Final = re.compile(r'(?:[^\x00-\x1f\x7f,;"\\(){}\[\]^]|\{number\}){0,40}')
KINDS: Final = ("agent", "ivr")


@dataclass(frozen=True)
class CallingHours:
    """Local hours in which citizens may be called (default 09:00-20:00)."""

    start: datetime.time = datetime.time(9)
    end: datetime.time = datetime.time(20)

    def open(self, local: datetime.datetime) -> bool:
        """Whether citizens may be called at ``local`` (wall-clock, survey timezone)."""
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # over midnight


NUMBER: Final = "${NUMBER}"
# A channel to dial: technology/resource with ${NUMBER} once; no comma, space or newline
# (the Originate header would take them as separators).
_DIAL_STRING_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}/[-A-Za-z0-9_.@/+${}]{1,180}")


@dataclass(frozen=True)
class NumberRule:
    """Rewrites a citizen's number before it is dialled: the first rule whose ``match``
    (a regular expression, searched from the number's start) fits drops ``strip``
    leading digits and puts ``prefix`` in front. E.g. a 0 before mobile numbers of
    another city, or a local area code stripped."""

    match: str
    strip: int = 0
    prefix: str = ""

    def apply(self, number: str) -> str | None:
        """The rewritten number, or None when this rule does not fit."""
        if re.match(self.match, number) is None:
            return None
        return self.prefix + number[self.strip :]


def rewrite(number: str, rules: tuple[NumberRule, ...]) -> str:
    """``number`` as the first fitting rule rewrites it (unchanged when none fits)."""
    for rule in rules:
        out = rule.apply(number)
        if out is not None:
            return out
    return number


@dataclass(frozen=True)
class DialerSettings:
    """Everything the callback dialer needs. Durations are seconds."""

    ami: AmiSettings
    trunk: str = DEFAULT_TRUNK
    caller_id: str | None = None
    units: tuple[str, ...] = ()
    default_unit: str = ""
    calling_hours: CallingHours = CallingHours()
    max_attempts: int = 3
    retry_spacing_s: tuple[float, ...] = (1800.0, 7200.0)
    ring_timeout_s: float = 30.0
    wrapup_s: float = AsteriskSettings.wrapup_s  # the queues' wrapuptime
    ivr_max_calls: int = 10
    recordings_dir: str = DEFAULT_RECORDINGS_DIR
    recheck_kind: str = KINDS[0]
    recheck_priority: int = 7
    transcribe: bool = True
    no_reply_ivr: bool = False
    tick_s: float = 0.1
    asterisk: AsteriskSettings | None = None  # [dialer.asterisk], to render its config
    # The Originate's channel, with ${NUMBER} (after number_rules); None: PJSIP/${NUMBER}@trunk
    dial_string: str | None = None
    number_rules: tuple[NumberRule, ...] = ()
    # What an agent's phone shows as the caller of a callback; {number} is the
    # citizen's number masked (138****8000). Empty: the survey centre's caller id.
    agent_caller_name: str = "回访 {number}"

    def channel(self, number: str) -> str:
        """The channel an Originate dials for ``number`` (already rewritten)."""
        template = self.dial_string or f"PJSIP/{NUMBER}@{self.trunk}"
        return template.replace(NUMBER, number)

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
    "dial_string",
    "number_rules",
    "agent_caller_name",
    "asterisk",
)


def _match(value: object, path: str, rx: re.Pattern[str], what: str) -> str:
    found = text(value, path, max_len=200, allow_empty=True)
    if not rx.fullmatch(found):
        raise ConfigError(path, f"must be {what}, got {show(value)}")
    return found


def _units(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(path, f"must be an array of unit codes, got {show(value)}")
    return tuple(
        _match(u, f"{path}[{i}]", _UNIT_RE, "a unit code (letters, digits, _)")
        for i, u in enumerate(value)
    )


def _spacing(value: object, path: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty array of minutes, got {show(value)}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 10080:
            raise ConfigError(f"{path}[{i}]", f"must be minutes 0..10080, got {show(v)}")
        out.append(float(v) * MINUTE)
    return tuple(out)


def _dial_string(value: object, path: str) -> str:
    found = text(value, path, max_len=200)
    if not _DIAL_STRING_RE.fullmatch(found) or found.count(NUMBER) != 1:
        raise ConfigError(
            path,
            f'must be a channel with {NUMBER} once, like "PJSIP/{NUMBER}@site-trunk" or '
            f'"Local/{NUMBER}@from-internal", got {show(found)}',
        )
    if "$" in found.replace(NUMBER, ""):
        raise ConfigError(path, f"must use no variable but {NUMBER}, got {show(found)}")
    return found


def _caller_name(t: Table) -> str:
    key = "agent_caller_name"
    found = text(t.get(key, DialerSettings.agent_caller_name), t.at(key), allow_empty=True)
    if not _CALLER_NAME_RE.fullmatch(found) or found.count("{number}") > 1:
        raise ConfigError(
            t.at(key),
            'must be at most 40 characters without , ; " \\ ( ) [ ] ^ or control '
            f'characters, with {{number}} at most once (e.g. "回访 {{number}}"), got {show(found)}',
        )
    return found


def _number_rules(t: Table) -> tuple[NumberRule, ...]:
    rules = []
    for item, path in t.tables("number_rules"):
        r = Table(item, path, ("match", "strip", "prefix"))
        pattern = text(r.get("match"), r.at("match"), max_len=200)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(r.at("match"), f"is not a regular expression: {exc}") from None
        prefix = text(r.get("prefix", NumberRule.prefix), r.at("prefix"), allow_empty=True)
        if not re.fullmatch(r"[0-9]{0,16}", prefix):
            raise ConfigError(r.at("prefix"), f"must be up to 16 digits, got {show(prefix)}")
        rules.append(NumberRule(pattern, r.integer("strip", NumberRule.strip, 0, 16), prefix))
    return tuple(rules)


def parse_dialer(data: object, env: Mapping[str, str]) -> DialerSettings:
    """Check the ``[dialer]`` table; raises ConfigError naming the first wrong setting."""
    t = Table(data, "dialer", _KEYS)
    d = DialerSettings
    hours = Table(t.get("calling_hours", {}), t.at("calling_hours"), ("start", "end"))
    recheck = Table(t.get("recheck", {}), t.at("recheck"), ("kind", "priority"))
    caller_id = _match(
        t.get("caller_id", d.caller_id or ""), t.at("caller_id"), _CALLER_ID_RE, "a caller id"
    )
    units = _units(t.get("units", list(d.units)), t.at("units"))
    default_unit = _match(
        t.get("default_unit", d.default_unit), t.at("default_unit"), _UNIT_OR_EMPTY, "a unit"
    )
    if default_unit and default_unit not in units:
        raise ConfigError(t.at("default_unit"), f'"{default_unit}" is not in dialer.units')
    start = clock(hours.get("start", d.calling_hours.start), hours.at("start"))
    end = clock(hours.get("end", d.calling_hours.end), hours.at("end"))
    if start == end:
        raise ConfigError(hours.at("end"), "must differ from start")
    ami = parse_ami(t.get("ami", {}), env)
    trunk = _match(t.get("trunk", d.trunk), t.at("trunk"), _TRUNK_RE, "an endpoint name")
    max_attempts = t.integer("max_attempts", d.max_attempts, 1, 20)
    retry_spacing_s = _spacing(
        t.get("retry_spacing_minutes", [s / MINUTE for s in d.retry_spacing_s]),
        t.at("retry_spacing_minutes"),
    )
    ring_timeout_s = t.number("ring_timeout_s", d.ring_timeout_s, 1, 300)
    wrapup_s = t.number("wrapup_s", d.wrapup_s, 0, 600)
    ivr_max_calls = t.integer("ivr_max_calls", d.ivr_max_calls, 0, 1000)
    recordings_dir = _match(
        t.get("recordings_dir", d.recordings_dir),
        t.at("recordings_dir"),
        DIR_RE,
        "an absolute path of letters, digits, - _ . /",
    )
    dial_string = (
        _dial_string(t.get("dial_string"), t.at("dial_string")) if "dial_string" in t.data else None
    )
    return DialerSettings(
        ami=ami,
        trunk=trunk,
        caller_id=caller_id or None,
        units=units,
        default_unit=default_unit,
        calling_hours=CallingHours(start, end),
        max_attempts=max_attempts,
        retry_spacing_s=retry_spacing_s,
        ring_timeout_s=ring_timeout_s,
        wrapup_s=wrapup_s,
        ivr_max_calls=ivr_max_calls,
        recordings_dir=recordings_dir,
        recheck_kind=recheck.pick("kind", d.recheck_kind, KINDS),
        recheck_priority=recheck.integer("priority", d.recheck_priority, 0, 9),
        transcribe=t.boolean("transcribe", d.transcribe),
        no_reply_ivr=t.boolean("no_reply_ivr", d.no_reply_ivr),
        dial_string=dial_string,
        number_rules=_number_rules(t),
        agent_caller_name=_caller_name(t),
        # [dialer.asterisk] renders Asterisk's side of what is read above
        asterisk=parse_asterisk(
            t.get("asterisk"),
            env,
            ami=ami,
            trunk=trunk,
            units=units,
            default_unit=default_unit,
            wrapup_s=wrapup_s,
            recordings_dir=recordings_dir,
            dial_string=dial_string,
        )
        if "asterisk" in t.data
        else None,
    )
