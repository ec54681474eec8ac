"""Logging set-up, done once at the entry point (modules only get loggers).

Loggers follow one scheme, ``minyi.<room>``: the package a module lives in, with the
``gateway.`` prefix dropped (``minyi.api``, ``minyi.webhooks``, ``minyi.dialer``,
``minyi.sms``, ``minyi.sms.smpp``, ``minyi.asr``, ``minyi.recordings``, ``minyi.smsc``);
the process itself (gateway/service.py, cli) logs as ``minyi``. Every module gets its
logger from :func:`logger`, so an operator can raise or lower one room's level with
one name.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from typing import Any, Final

ROOT: Final = "minyi"


def logger_name(module: str) -> str:
    """The logger name for a module (``__name__``): ``minyi.<its package>``."""
    package = module.rpartition(".")[0] if "." in module else ""
    if package == "gateway" or not package:
        return ROOT
    return f"{ROOT}.{package.removeprefix('gateway.')}"


def logger(module: str) -> logging.Logger:
    """The logger of a module: ``log = logs.logger(__name__)``."""
    return logging.getLogger(logger_name(module))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger: text (human) or json (one object per line)."""
    formatter: dict[str, Any]
    if fmt == "json":
        formatter = {"()": JsonFormatter}
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"main": formatter},
            "handlers": {
                "stderr": {"class": "logging.StreamHandler", "formatter": "main"},
            },
            "root": {"level": level.upper(), "handlers": ["stderr"]},
            # aiosmpplib logs PDUs at debug; never let them through (citizens' numbers).
            "loggers": {"aiosmpplib": {"level": "ERROR"}},
        }
    )
