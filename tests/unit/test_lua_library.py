"""The Lua function library takes its key names from keys.py and types none itself.

The Lua files are read as text (no Lua interpreter here): their string literals and
code are separated by a small scanner, enough for the plain Lua the library is
written in. Whether the keys the functions really write are in keys.py is proven on a
real Redis by tests/integration/test_keyspace.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.store import keys
from gateway.store.library import (
    LIBRARY_NAME,
    key_names,
    key_prelude,
    library_source,
    lua_parts,
    template_fields,
    transition_table,
)
from gateway.store.states import TRANSITIONS

REPO = Path(__file__).resolve().parents[2]


def scan(src: str) -> tuple[list[str], str]:
    """(string literals, code with comments and literals blanked) of a Lua source."""
    literals: list[str] = []
    code: list[str] = []
    i = 0
    while i < len(src):
        if src.startswith("--", i):
            end = src.find("\n", i)
            i = len(src) if end < 0 else end
        elif src[i] in "'\"":
            quote, j, text = src[i], i + 1, []
            while src[j] != quote:
                if src[j] == "\\":
                    j += 1
                text.append(src[j])
                j += 1
            literals.append("".join(text))
            code.append(" '' ")
            i = j + 1
        else:
            code.append(src[i])
            i += 1
    return literals, "".join(code)


def key_fragments() -> set[str]:
    """The literal pieces of the templated keys that hold a colon ("survey:", ":events",
    "cb:ready:"...): typed in Lua, they would be half a hand-made key."""
    out = set()
    for value in key_names().values():
        if not value.startswith(keys.PREFIX):
            continue
        tail = value[len(keys.PREFIX) :]
        if not template_fields(tail):
            continue
        for piece in re.split(r"\{[a-z_]+\}", tail):
            if ":" in piece and len(piece) >= 4:
                out.add(piece)
    return out


def hand_typed_keys(src: str) -> list[str]:
    """What in a Lua source looks like a key typed by hand instead of a generated name."""
    literals, code = scan(src)
    found = [f"literal {s!r}" for s in literals if re.search(r"minyi(?!_)", s)]
    fragments = key_fragments()
    # A piece that follows a field (":events") is flagged where a literal starts with it:
    # "asr:dead" is a counter's name, not the end of WEBHOOK_DEAD.
    found += [
        f"literal {s!r} (key piece)"
        for s in literals
        if any(s.startswith(f) if f.startswith(":") else f in s for f in fragments)
    ]
    # the old prefix local, or a prefix of our own
    found += [f"prefix {m.group(0)!r}" for m in re.finditer(r"\b(P|PREFIX)\b", code)]
    # a generated name used as the start or the end of another key
    names = "|".join(sorted(key_names(), key=len, reverse=True))
    call = rf"\b(?:{names})\b(?:\s*\([^()]*\))?"
    found += [f"built on {m.group(0)!r}" for m in re.finditer(rf"{call}\s*\.\.", code)]
    found += [f"built on {m.group(0)!r}" for m in re.finditer(rf"\.\.\s*(?:{names})\b", code)]
    return found


def test_the_prelude_gives_every_key_of_keys_py_its_value() -> None:
    seen: dict[str, str] = {}
    for line in key_prelude().splitlines()[1:]:
        if m := re.fullmatch(r"local (\w+) = '([^']*)'", line):
            seen[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"local function (\w+)\(([\w, ]*)\) return (.*) end", line)
        assert m, line
        params = m.group(2).split(", ")
        pieces = []
        for piece in m.group(3).split(" .. "):
            if piece.startswith("'"):
                pieces.append(piece.strip("'"))
            else:
                assert piece in params, line
                pieces.append("{" + piece + "}")
        seen[m.group(1)] = "".join(pieces)
    assert seen == key_names()
    assert seen["SURVEY_EVENTS"] == keys.SURVEY_EVENTS
    assert seen["WEBHOOK_WAIT"] == "minyi:wh:{endpoint}:wait:{survey_id}"


def test_keys_the_lua_writes_are_named_in_keys_py() -> None:
    # Written by the Lua before they had a name in keys.py.
    assert keys.SURVEY_TRANSCRIPTS == "minyi:survey:{survey_id}:transcripts"
    assert keys.UNMATCHED_REPLIES_SEQ == "minyi:replies:unmatched:seq"


def test_asr_and_recordings_take_their_key_names_from_keys_py() -> None:
    from asr import jobs
    from recordings import index

    assert (jobs.JOBS, jobs.GROUP, jobs.DEAD, jobs.DONE, jobs.LAST_ERROR) == (
        keys.ASR_JOBS,
        keys.ASR_GROUP,
        keys.ASR_DEAD,
        keys.ASR_DONE,
        keys.ASR_LAST_ERROR,
    )
    assert (index.RECORDINGS, index.RECORDINGS_CREATED) == (
        keys.RECORDINGS,
        keys.RECORDINGS_CREATED,
    )
    for module in ("asr/jobs.py", "recordings/index.py"):
        assert keys.PREFIX not in (REPO / module).read_text(encoding="utf-8"), module


def test_the_transition_table_is_the_one_of_states_py() -> None:
    table = transition_table()
    for state, targets in TRANSITIONS.items():
        row = re.search(rf"^  {state.value} = \{{(.*)\}},$", table, re.M)
        assert row, state
        assert set(re.findall(r"(\w+) = true", row.group(1))) == {t.value for t in targets}


def test_the_library_is_one_chunk_named_minyi_with_the_prelude_first() -> None:
    src = library_source()
    assert src.startswith(f"#!lua name={LIBRARY_NAME}\n")
    assert LIBRARY_NAME == "minyi"  # an old dump's library of this name is replaced
    assert src.index("local EVENTS =") < src.index("local TRANSITIONS =")
    assert src.index("local TRANSITIONS =") < src.index("local function emit(")
    assert src.index("local function emit(") < src.index("'minyi_wh_intake'")


@pytest.mark.parametrize("name", sorted(lua_parts()))
def test_no_lua_file_types_a_key(name: str) -> None:
    assert hand_typed_keys(lua_parts()[name]) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "local k = 'minyi:stats'",
        "local P = 'minyi:'",
        "redis.call('DEL', P .. 'survey:' .. sid)",
        "redis.call('DEL', prefix .. 'cb:ready:' .. queue)",
        "redis.call('HSET', SURVEY(sid) .. ':transcripts', f, v)",
        "redis.call('XADD', EVENTS .. ':copy', '*', 'a', 'b')",
        "local k = owner_key .. DIALER_OWNER",
        'local k = "minyi" .. ":" .. "asr:jobs"',
    ],
)
def test_the_check_finds_a_hand_typed_key(snippet: str) -> None:
    assert hand_typed_keys(snippet)


def test_the_check_leaves_fields_names_and_comments_alone() -> None:
    ok = (
        "-- a comment may say minyi:survey:<id>:events\n"
        "redis.call('HINCRBY', STATS, 'event:' .. etype, 1)\n"
        "redis.call('HSET', SURVEY(sid), 'p' .. idx .. ':mid', mid)\n"
        "redis.call('HINCRBY', STATS, 'asr:dead', 1)\n"
        "redis.register_function('minyi_intake', function(_, a) end)\n"
    )
    assert hand_typed_keys(ok) == []


def test_every_function_the_python_calls_is_registered() -> None:
    registered = set(re.findall(r"register_function\('(\w+)'", library_source()))
    called: set[str] = set()
    for package in ("gateway", "sms", "asr", "recordings"):
        for path in (REPO / package).rglob("*.py"):
            source = path.read_text("utf-8")
            # a module that calls a function says fcall; metric families (minyi_*_total,
            # gateway/metrics.py) are named in modules that never do
            if "fcall" in source:
                called |= set(re.findall(r"[\"'](minyi_[a-z_]+)[\"']", source))
    assert called, "no FCALL found: the pattern above is stale"
    assert called <= registered, called - registered
    assert {n for n in registered if n.startswith("minyi_wh_")} >= {
        "minyi_wh_intake",
        "minyi_wh_claim",
        "minyi_wh_reread",
        "minyi_wh_done",
        "minyi_wh_fail",
        "minyi_wh_release",
        "minyi_wh_replay",
        "minyi_wh_prune",
    }
