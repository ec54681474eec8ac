"""The ``[surveys]`` section: how surveys are timed and worded.

The file uses human units (``reply_window_hours``); the dataclasses hold seconds.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config.reader import NAME_RE, ConfigError, Table, clock, join, show, suggest, text

HOUR: Final = 3600.0
DAY: Final = 86400.0
DEFAULT_SERVICE_NAMES: Final[Mapping[str, str]] = {
    "110": "110接处警",
    "window": "窗口服务",
    "traffic": "交通事故处理",
    "case": "案件办理",
    "scene": "现场勘查",
}
DEFAULT_TIMEZONE: Final = zoneinfo.ZoneInfo("Asia/Shanghai")
# What `callback_on` may name: a rating read from a reply (with any confidence), or
# `unclear` — a reply still without a rating after the clarifying SMS (or none to it).
CALLBACK_ON: Final = ("unsatisfied", "basically_satisfied", "satisfied", "unclear")


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
    frequency_cap_s: float = 7 * DAY
    reply_window_s: float = 72 * HOUR
    dlr_timeout_s: float = 48 * HOUR
    retention_s: float = 180 * DAY
    quiet_hours: QuietHours = QuietHours()
    # service type code -> the Chinese name used in the SMS text
    service_names: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SERVICE_NAMES))
    # unit code -> unit name
    unit_names: Mapping[str, str] = field(default_factory=dict)
    # The [sms.templates] entry sent once when a reply cannot be read as a rating
    # (unknown, or unclear); "" sends none. sms.templates provides "clarify" unless the
    # config defines it.
    clarify_template: str = "clarify"
    # How long the answer to the clarifying SMS is awaited (the reply window reopens).
    clarify_window_s: float = 24 * HOUR
    # Which readings send the survey to the callback queue (CALLBACK_ON).
    callback_on: tuple[str, ...] = ("unsatisfied", "unclear")


def _quiet_hours(data: object, path: str) -> QuietHours:
    t = Table(data, path, ("enabled", "start", "end", "spread_minutes"))
    default = QuietHours()
    return QuietHours(
        enabled=t.boolean("enabled", default.enabled),
        start=clock(t.get("start", default.start), t.at("start")),
        end=clock(t.get("end", default.end), t.at("end")),
        spread_s=t.number("spread_minutes", default.spread_s / 60, 0, 1440) * 60,
    )


def _names(data: object, path: str, *, max_len: int) -> dict[str, str]:
    """A table of code -> display name ([surveys.service_names], [surveys.unit_names])."""
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a table of code = name, got {show(data)}")
    names: dict[str, str] = {}
    for code, name in data.items():
        item = join(path, str(code))
        if not NAME_RE.fullmatch(str(code)):
            raise ConfigError(item, "a code must be 1 to 32 letters, digits, _ or -")
        names[str(code)] = text(name, item, max_len=max_len)
    return names


def _timezone(value: object, path: str) -> zoneinfo.ZoneInfo:
    name = text(value, path)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = suggest(name, zoneinfo.available_timezones())
        raise ConfigError(path, f"unknown time zone {show(name)}{hint}") from None


_KEYS: Final = (
    "timezone",
    "frequency_cap_days",
    "reply_window_hours",
    "dlr_timeout_hours",
    "retention_days",
    "quiet_hours",
    "service_names",
    "unit_names",
    "clarify_template",
    "clarify_window_hours",
    "callback_on",
)


def _callback_on(value: object, path: str) -> tuple[str, ...]:
    """The list of CALLBACK_ON names, each once."""
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"must be a list of {', '.join(CALLBACK_ON)}, got {show(value)}")
    seen: list[str] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, str) or item not in CALLBACK_ON:
            hint = suggest(item, CALLBACK_ON) if isinstance(item, str) else ""
            raise ConfigError(where, f"must be one of {', '.join(CALLBACK_ON)}{hint}")
        if item in seen:
            raise ConfigError(where, f"{show(item)} is listed twice")
        seen.append(item)
    return tuple(seen)


def parse_surveys(data: object) -> SurveySettings:
    """Check the ``[surveys]`` table; days and hours become seconds."""
    t = Table(data, "surveys", _KEYS)
    service_names = _names(
        t.get("service_names", DEFAULT_SERVICE_NAMES), t.at("service_names"), max_len=20
    )
    if not service_names:
        raise ConfigError(t.at("service_names"), "must name at least one service type")
    d = SurveySettings
    settings = SurveySettings(
        timezone=_timezone(t.get("timezone", d.timezone.key), t.at("timezone")),
        # 0 turns the cap off: a citizen may be surveyed after every service
        frequency_cap_s=t.number("frequency_cap_days", d.frequency_cap_s / DAY, 0, 365) * DAY,
        reply_window_s=t.number("reply_window_hours", d.reply_window_s / HOUR, 0, 720, above=True)
        * HOUR,
        dlr_timeout_s=t.number("dlr_timeout_hours", d.dlr_timeout_s / HOUR, 0, 720, above=True)
        * HOUR,
        retention_s=t.number("retention_days", d.retention_s / DAY, 0, 3650, above=True) * DAY,
        quiet_hours=_quiet_hours(t.get("quiet_hours", {}), t.at("quiet_hours")),
        service_names=service_names,
        unit_names=_names(t.get("unit_names", {}), t.at("unit_names"), max_len=64),
        clarify_template=text(
            t.get("clarify_template", d.clarify_template),
            t.at("clarify_template"),
            max_len=32,
            allow_empty=True,
        ),
        clarify_window_s=t.number(
            "clarify_window_hours", d.clarify_window_s / HOUR, 0, 720, above=True
        )
        * HOUR,
        callback_on=_callback_on(t.get("callback_on", list(d.callback_on)), t.at("callback_on")),
    )
    # A reply or receipt must still find its survey record when it arrives.
    if settings.retention_s < max(settings.reply_window_s, settings.dlr_timeout_s):
        raise ConfigError(
            t.at("retention_days"),
            "must be at least as long as reply_window_hours and dlr_timeout_hours",
        )
    return settings
