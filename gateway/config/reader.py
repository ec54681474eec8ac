"""Reading one value of the config file: the checks every section module shares.

Ops install the gateway on servers with no internet and edit one file by hand, so a
wrong setting must stop the gateway with one line that names the setting, e.g.
``config error: sms.binds[0].window: must be an integer from 1 to 10000, got "abc"``,
never a traceback. Unknown keys are errors too (a typo is the commonest mistake, and
a silently ignored ``windw = 8`` is worse than a refusal), with a "did you mean".

:class:`Table` reads one TOML table and the functions below one value each; every one
raises :class:`ConfigError` with the setting's path. Section modules (``api``,
``surveys``, ``sms``, ...) build their dataclasses with them.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

# Names end up in Redis keys, consumer groups and environment variable names.
NAME_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Directories as Asterisk and the recordings index write them: no space, quote or comma.
DIR_RE: Final = re.compile(r"/[-A-Za-z0-9_./]{0,200}")
_HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_BARE_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
MISSING: Final = object()


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


def show(value: object) -> str:
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


def show_number(x: float) -> str:
    """A number as a message shows it: 72, not 72.0."""
    return str(int(x)) if float(x).is_integer() else str(x)


def join(path: str, key: str) -> str:
    """The path of ``key`` inside the table at ``path``, quoted when TOML needs it."""
    if not _BARE_KEY_RE.fullmatch(key):
        key = '"' + key.replace('"', '\\"') + '"'
    return f"{path}.{key}" if path else key


def suggest(word: str, choices: Collection[str]) -> str:
    """'; did you mean "x"?' for the closest of ``choices``, or ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def integer(value: object, path: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi]."""
    # bool is an int in Python but never in TOML
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(path, f"must be an integer from {lo} to {hi}, got {show(value)}")
    return value


def number(value: object, path: str, lo: float, hi: float, *, above: bool = False) -> float:
    """A finite number in [lo, hi], or in (lo, hi] when ``above``."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (lo < value if above else lo <= value)
        and value <= hi  # also refuses TOML's nan and inf
    )
    if not ok:
        span = (
            f"greater than {show_number(lo)} and at most {show_number(hi)}"
            if above
            else f"from {show_number(lo)} to {show_number(hi)}"
        )
        raise ConfigError(path, f"must be a number {span}, got {show(value)}")
    assert isinstance(value, int | float)
    return float(value)


def boolean(value: object, path: str) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {show(value)}")
    return value


def text(value: object, path: str, *, max_len: int = 200, allow_empty: bool = False) -> str:
    """A one-line string of at most ``max_len`` characters."""
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {show(value)}")
    if not value and not allow_empty:
        raise ConfigError(path, "must not be empty")
    if len(value) > max_len:
        raise ConfigError(path, f"must be at most {max_len} characters, got {len(value)}")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(path, "must not contain control characters (newlines, tabs)")
    return value


def name(value: object, path: str) -> str:
    """A name that may become part of a Redis key or an environment variable."""
    value = text(value, path)
    if not NAME_RE.fullmatch(value):
        raise ConfigError(path, f"must be 1 to 32 letters, digits, _ or -, got {show(value)}")
    return value


def ascii_field(
    value: object, path: str, max_len: int, section: str, *, empty: bool = False
) -> str:
    """A protocol's text field: ASCII, with a length cap from the spec `section` cites
    ("SMPP 3.4 §5.2.1", "CMPP 7.4.3.1")."""
    value = text(value, path, max_len=10_000, allow_empty=empty)
    if not value.isascii() or len(value) > max_len:
        raise ConfigError(
            path,
            f"must be at most {max_len} ASCII characters ({section}), got {show(value)}",
        )
    return value


def host(value: object, path: str) -> str:
    """A host name or an IP address."""
    value = text(value, path, max_len=253)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME_RE.fullmatch(value):
            raise ConfigError(
                path, f"must be a host name or IP address, got {show(value)}"
            ) from None
    return value


def directory(value: object, path: str) -> Path:
    """An absolute directory path of plain characters (Asterisk writes into it)."""
    value = text(value, path, max_len=300)
    if not DIR_RE.fullmatch(value):
        raise ConfigError(
            path, f"must be an absolute path of letters, digits, - _ . /, got {show(value)}"
        )
    return Path(value)


_S = TypeVar("_S", bound=str)


def pick(value: object, path: str, options: Sequence[_S]) -> _S:
    """One of ``options``."""
    for option in options:
        if value == option:
            return option
    listed = ", ".join(f'"{o}"' for o in options)
    hint = suggest(value, options) if isinstance(value, str) else ""
    raise ConfigError(path, f"must be one of {listed}, got {show(value)}{hint}")


def code(value: object, path: str, allowed: Collection[int], section: str) -> int:
    """A protocol's code point (SMPP TON, NPI; CMPP Fee_UserType) from the table the
    spec `section` cites."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        listed = ", ".join(str(v) for v in sorted(allowed))
        raise ConfigError(path, f"must be one of {listed} ({section}), got {show(value)}")
    return value


def clock(value: object, path: str) -> datetime.time:
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
            path, f'must be a time of day "HH:MM" or "HH:MM:SS", got {show(value)}'
        ) from None


class Table:
    """One TOML table being read: refuses unknown keys, names every path."""

    def __init__(self, data: object, path: str, known: Collection[str]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"must be a table, got {show(data)}")
        for key in data:
            if key not in known:
                hint = suggest(str(key), known) or f" (known here: {', '.join(sorted(known))})"
                raise ConfigError(join(path, str(key)), f"unknown setting{hint}")
        self.data: Mapping[str, object] = data
        self.path = path

    def at(self, key: str) -> str:
        """The path of ``key`` in this table."""
        return join(self.path, key)

    def get(self, key: str, default: object = MISSING) -> object:
        """The raw value of ``key``, or ``default``; "is required" without one."""
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            raise ConfigError(self.at(key), "is required")
        return default

    def integer(self, key: str, default: object, lo: int, hi: int) -> int:
        """See :func:`integer`."""
        return integer(self.get(key, default), self.at(key), lo, hi)

    def number(
        self, key: str, default: object, lo: float, hi: float, *, above: bool = False
    ) -> float:
        """See :func:`number`."""
        return number(self.get(key, default), self.at(key), lo, hi, above=above)

    def boolean(self, key: str, default: object) -> bool:
        """See :func:`boolean`."""
        return boolean(self.get(key, default), self.at(key))

    def pick(self, key: str, default: object, options: Sequence[_S]) -> _S:
        """See :func:`pick`."""
        return pick(self.get(key, default), self.at(key), options)

    def tables(self, key: str) -> list[tuple[object, str]]:
        """An array of tables ([[key]]), as (item, path) pairs; [] when absent."""
        value = self.get(key, [])
        path = self.at(key)
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(
                path, f"must be an array of tables, written [[{path}]], got {show(value)}"
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


def unique(names: list[tuple[str, str]], prefix: str) -> None:
    """Names (with their paths) must differ, and so must their environment variables."""
    seen: dict[str, str] = {}
    for name, path in names:
        var = env_name(prefix, name)
        if var in seen:
            raise ConfigError(path, f'"{name}" is used twice (also {seen[var]}, both read {var})')
        seen[var] = path
