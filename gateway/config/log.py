"""The ``[log]`` section: logging, configured once at the entry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from gateway.config.reader import Table, pick

LogFormat = Literal["text", "json"]
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")


@dataclass(frozen=True)
class LogSettings:
    """Logging, configured once at the entry point."""

    level: str = "INFO"
    format: LogFormat = "text"


def parse_log(data: object) -> LogSettings:
    """Check the ``[log]`` table; the level is case-insensitive."""
    t = Table(data, "log", ("level", "format"))
    level = t.get("level", LogSettings.level)
    level = pick(level.upper() if isinstance(level, str) else level, t.at("level"), LEVELS)
    return LogSettings(level=level, format=t.pick("format", LogSettings.format, FORMATS))
