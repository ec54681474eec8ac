"""What the API takes from a request: its JSON body, and the text inside it.

Every route reads its body with :func:`read_json`, so every body no parser likes gets
the same clear 4xx, never a 500 from deep inside the parser:

- JSON is UTF-8 (RFC 8259 §8.1): a ``charset`` other than UTF-8 is refused with 415
  (aiohttp would look the name up and fail with LookupError on ``charset=foobar``);
  bytes that are not UTF-8 are a 400;
- an integer of more than :data:`MAX_INT_DIGITS` digits is refused before Python
  converts it (past 4,300 digits that conversion raises ValueError, not a JSON error);
- nesting deeper than the recursion limit (``[[[[…``) is a 400, not a RecursionError;
- ``NaN`` and ``Infinity`` are not JSON (RFC 8259 §6) and a key given twice in one
  object is ambiguous (RFC 8259 §4: parsers disagree on which one wins): both 400.

Text fields are checked with :func:`text_problem` (no lone surrogates, no control
characters, bounded length), and anything of the client's that an error answer names
goes through :func:`shown` first: escaped and cut, never echoed raw.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from typing import Any, Final

from aiohttp import web

# No field of the API takes a number larger than a priority (0-9) or a count; 20
# digits hold every 64-bit integer.
MAX_INT_DIGITS: Final = 20
# What an error answer may quote of the client's input, in characters.
SHOWN_MAX: Final = 40
# Unicode categories never allowed in a text field: controls (Cc), format characters
# such as the right-to-left override (Cf), lone surrogates (Cs, not encodable as
# UTF-8: Redis and the SMS center would fail on them), private use (Co), unassigned
# (Cn), and the line and paragraph separators (Zl, Zp).
_REFUSED: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# In multi-line text (an agent's note) the line breaks and tab are text, and format
# characters (zero-width joiners in emoji) are allowed; controls and surrogates not.
_REFUSED_MULTILINE: Final = frozenset({"Cc", "Cs"})
_LINE_BREAKS: Final = frozenset("\t\n\r")
# A key an answer may name as it is (as "field"); any other is quoted with shown().
_FIELD_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]{1,40}")


class BadBody(Exception):
    """A request body the API cannot take: answer ``status`` with ``code`` and a
    message that says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FieldError(Exception):
    """One field of a request is wrong: ``field`` names it, ``reason`` says why (the
    answer's "field" and "reason"; 422 unless the route says otherwise)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class _NotJson(ValueError):
    """Raised from the parser's hooks; becomes a 400 with its message."""


def _int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _NotJson(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON (RFC 8259 §6)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotJson(f"the key {shown(key)} appears twice in one object")
        out[key] = value
    return out


def loads(text: str) -> Any:
    """Parse JSON text as the API does (see the module docstring); ``_NotJson``,
    ``json.JSONDecodeError`` or ``RecursionError`` when it cannot."""
    return json.loads(text, parse_int=_int, parse_constant=_constant, object_pairs_hook=_object)


async def read_json(request: web.Request) -> Any:
    """The request's body as JSON, or :class:`BadBody` (400, 413 or 415) with the
    reason."""
    charset = request.charset
    if charset is not None and _codec(charset) != "utf-8":
        raise BadBody(415, "unsupported_charset", "the body must be JSON in UTF-8 (RFC 8259 §8.1)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(413, "body_too_large", "request body too large") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody(400, "invalid_json", "the body is not UTF-8 text") from None
    try:
        return loads(text)
    except RecursionError:
        raise BadBody(400, "invalid_json", "the body is nested too deeply") from None
    except _NotJson as exc:
        raise BadBody(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadBody(
            400, "invalid_json", f"the body is not JSON ({exc.msg} at character {exc.pos})"
        ) from None


def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def text_problem(value: str, *, max_len: int, multiline: bool = False) -> str | None:
    """What is wrong with a text field's ``value`` (None: nothing): longer than
    ``max_len`` characters, or holding a character of a refused category (control
    characters, lone surrogates...; ``multiline`` allows tab, CR, LF and format
    characters)."""
    if len(value) > max_len:
        return f"longer than {max_len} characters"
    refused = _REFUSED_MULTILINE if multiline else _REFUSED
    for char in value:
        if multiline and char in _LINE_BREAKS:
            continue
        category = unicodedata.category(char)
        if category in refused:
            what = "a lone surrogate" if category == "Cs" else "a control character"
            return f"holds {what} (U+{ord(char):04X})"
    return None


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """The client's ``value`` as an error answer may quote it: in JSON string syntax
    with everything outside printable ASCII escaped (so no lone surrogate, control
    character or terminal escape is echoed), cut to ``limit`` characters."""
    text = value if isinstance(value, str) else f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[:limit] + "…"
    return json.dumps(text, ensure_ascii=True)


def field_name(key: str) -> str:
    """A key of the client's object as an answer's ``field`` names it: as is when it is
    a plain name, else quoted with :func:`shown`."""
    return key if _FIELD_NAME_RE.fullmatch(key) else shown(key)
