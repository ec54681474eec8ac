"""Logging set-up, done once at the entry point (modules only get loggers).

Loggers follow one scheme, ``minyi.<room>``: the package a module lives in, with the
``gateway.`` prefix dropped (``minyi.api``, ``minyi.webhooks``, ``minyi.dialer``,
``minyi.sms``, ``minyi.sms.smpp``, ``minyi.asr``, ``minyi.recordings``, ``minyi.smsc``);
the process itself (gateway/service.py, cli) logs as ``minyi``. Every module gets its
logger from :func:`logger`, so an operator can raise or lower one room's level with
one name.

Every line goes through the gateway's one handler, with its format, its levels and the
masking of phone numbers:

- no library logger writes around it: :func:`configure` takes the handlers off every
  library logger that brought its own, and :func:`adopt` does the same for loggers a
  library builds outside ``logging.getLogger`` (aiosmpplib's ESME makes a
  ``StructuredLogger`` with its own stderr handler, which printed whole submit_sm,
  numbers and SMS text, in a format of its own, at levels nothing here set);
- :class:`MaskNumbers` on the handler masks every mobile number in every record (its
  message, arguments, traceback and stack), whoever wrote it: a safety net under the
  rule that code masks what it logs (``gateway.privacy``).
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from typing import Any, Final

from gateway.privacy import mask_numbers

ROOT: Final = "minyi"
# Libraries whose loggers the gateway sets a level for (their own level override).
LIBRARY_LEVELS: Final = {
    # aiosmpplib logs PDUs at debug: never let them through (citizens' numbers).
    "aiosmpplib": "ERROR",
}


def logger_name(module: str) -> str:
    """The logger name for a module (``__name__``): ``minyi.<its package>``."""
    package = module.rpartition(".")[0] if "." in module else ""
    if package == "gateway" or not package:
        return ROOT
    return f"{ROOT}.{package.removeprefix('gateway.')}"


def logger(module: str) -> logging.Logger:
    """The logger of a module: ``log = logs.logger(__name__)``."""
    return logging.getLogger(logger_name(module))


class MaskNumbers(logging.Filter):
    """Masks every mobile number in a record before any handler formats it: the
    message with its arguments, the traceback and the stack (the formatter then uses
    the masked texts)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drops it."""
        message = record.getMessage()
        masked = mask_numbers(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        return True


class DropDump(logging.Filter):
    """Cuts the JSON dump aiosmpplib's StructuredLogger appends to its messages
    (``SMPP message could not be sent >>> {... the whole submit_sm ...}``): it holds the
    citizen's number and the SMS text, and nothing an operator needs."""

    MARK: Final = " >>> "

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the message up to the dump; never drops the record."""
        message = record.getMessage()
        if self.MARK in message:
            record.msg, record.args = message.split(self.MARK, 1)[0], None
        return True


def adopt(library_logger: logging.Logger, parent: str) -> None:
    """Route a logger a library built outside ``logging.getLogger`` through the
    gateway's handlers: its own handlers go, it hangs under the logger ``parent`` (whose
    level the gateway sets) and propagates, and its structured dump is cut."""
    for handler in list(library_logger.handlers):
        library_logger.removeHandler(handler)
    library_logger.parent = logging.getLogger(parent)
    library_logger.propagate = True
    library_logger.setLevel(logging.NOTSET)
    if not any(isinstance(f, DropDump) for f in library_logger.filters):
        library_logger.addFilter(DropDump())


def take_over_library_loggers() -> None:
    """Every logger outside ``minyi`` that brought handlers of its own loses them and
    propagates to the gateway's (one format, one set of levels, numbers masked)."""
    for name, item in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(item, logging.Logger) or name == ROOT or name.startswith(ROOT + "."):
            continue
        for handler in list(item.handlers):
            if not isinstance(handler, logging.NullHandler):
                item.removeHandler(handler)
        item.propagate = True


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
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
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
            "filters": {"mask": {"()": MaskNumbers}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "main",
                    "filters": ["mask"],
                },
            },
            "root": {"level": level.upper(), "handlers": ["stderr"]},
            "loggers": {name: {"level": lvl} for name, lvl in LIBRARY_LEVELS.items()},
        }
    )
    take_over_library_loggers()
