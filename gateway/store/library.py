"""The one Redis function library ("minyi"): Lua parts in lua/, names generated here.

The library is the Lua files of LIBRARY_PARTS concatenated into one chunk (the later
parts use the local helpers of store.lua: emit, transition, server_time...), after a generated
prelude that holds everything the Lua must agree on with Python:

- every key name of gateway/store/keys.py, as a Lua local of the same name: a string
  for a fixed key (``EVENTS``), a function of the template's fields for a templated one
  (``SURVEY_EVENTS(survey_id)``) — so no Lua file types a key;
- the transition table of gateway/store/states.py (``TRANSITIONS``).

Every function is called with FCALL (``fcall`` here, or the pipelined
gateway.store.coalesce.Coalescer.fcall); the survey store's declare no keys, the
webhook feed's declare the endpoint's keys (see keys.py on Redis Cluster). A Redis that
does not know a function (it lost its data, or holds an older library) gets the library
loaded and the call made once more. A Redis dump written by an older version carries a
library of the same name, which ``load`` replaces.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.store import keys
from gateway.store.states import TRANSITIONS

LIBRARY_NAME = "minyi"
# Concatenated in this order: clarify, callbacks, transcripts, webhooks and desk use
# store.lua's helpers.
LIBRARY_PARTS = (
    "store.lua",
    "clarify.lua",
    "callbacks.lua",
    "transcripts.lua",
    "webhooks.lua",
    "desk.lua",
)
LUA_DIR = Path(__file__).parent / "lua"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat "
    "return then true until while".split()
)
# What may stand in a key template's literal text (no quote or backslash to escape).
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_:.\-]*\Z")


def key_names() -> dict[str, str]:
    """The names of keys.py the Lua gets: every upper-case string constant (keys and
    consumer group names) but the bare prefix, in keys.py's order."""
    return {
        name: value
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, str) and name != "PREFIX"
    }


def template_fields(template: str) -> list[str]:
    """The fields of a key template, in order (``"a:{x}:{y}"`` -> ``["x", "y"]``)."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _lua_string(text: str) -> str:
    if not _SAFE_LITERAL.match(text):
        raise ValueError(f"key text {text!r} needs escaping in Lua")
    return "'" + text + "'"


def _lua_key(name: str, template: str) -> str:
    parts: list[str] = []
    params: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal:
            parts.append(_lua_string(literal))
        if field is None:
            continue
        if spec or conversion or not _IDENT.match(field) or field in _LUA_KEYWORDS:
            raise ValueError(f"keys.{name}: field {{{field}}} cannot be a Lua parameter")
        if field in params:
            raise ValueError(f"keys.{name}: field {{{field}}} appears twice")
        params.append(field)
        parts.append(field)
    if not params:
        return f"local {name} = {' .. '.join(parts)}"
    return f"local function {name}({', '.join(params)}) return {' .. '.join(parts)} end"


def key_prelude() -> str:
    """The Lua locals for every name of keys.py."""
    lines = ["-- Generated from gateway/store/keys.py by gateway/store/library.py."]
    lines += [_lua_key(name, template) for name, template in key_names().items()]
    return "\n".join(lines)


def transition_table() -> str:
    """The Lua TRANSITIONS table of gateway/store/states.py ({from = {to = true}})."""
    rows = []
    for source, targets in sorted(TRANSITIONS.items()):
        inner = ", ".join(f"{t.value} = true" for t in sorted(targets))
        rows.append(f"  {source.value} = {{{inner}}},")
    return (
        "-- Generated from gateway/store/states.py.\nlocal TRANSITIONS = {\n"
        + "\n".join(rows)
        + "\n}"
    )


def lua_parts() -> dict[str, str]:
    """The hand-written Lua files of the library, by file name, as on disk."""
    # Read beside this module (importlib.resources gives a MultiplexedPath under some
    # editable installs, which cannot open files).
    return {name: (LUA_DIR / name).read_text(encoding="utf-8") for name in LIBRARY_PARTS}


def library_source() -> str:
    """The whole library as FUNCTION LOAD takes it."""
    return "\n".join(
        [f"#!lua name={LIBRARY_NAME}", key_prelude(), transition_table(), *lua_parts().values()]
    )


async def load(redis: aioredis.Redis) -> None:
    """Load the library, replacing one of the same name (an older version's)."""
    await redis.function_load(library_source(), replace=True)


def function_missing(exc: ResponseError) -> bool:
    """Whether Redis refused an FCALL because it does not know the function."""
    # Redis 7 answers "ERR Function not found" (redis-py drops the "ERR ").
    return "function not found" in str(exc).lower()


def script_fault(exc: ResponseError) -> bool:
    """Whether a function of the library refused the call (its argument checks) or
    failed in its Lua: the same call fails the same way again, so it is a fault to
    report, not an outage to wait out. Redis names the function and line in such an
    error ("minyi_receipt: receipt state is not a string script: minyi_receipt, on
    @user_function:42"); a refusal by Redis itself (OOM, READONLY, BUSY...) does not."""
    return "@user_function" in str(exc)


async def fcall(redis: aioredis.Redis, name: str, *args: Any, keys: Sequence[str] = ()) -> Any:
    """FCALL one function of the library, declaring ``keys`` (loads the library into a
    Redis that lacks the function, then calls again)."""
    try:
        return await redis.fcall(name, len(keys), *keys, *args)
    except ResponseError as exc:
        if not function_missing(exc):
            raise
    await load(redis)
    return await redis.fcall(name, len(keys), *keys, *args)
