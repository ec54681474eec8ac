"""The Lua function library names the same Redis keys and transitions as the Python side
(gateway/store/keys.py, gateway/store/states.py, asr/jobs.py): read from the source, no
Redis needed."""

from __future__ import annotations

from asr import jobs
from gateway.store import keys
from gateway.store.library import library_source
from gateway.store.states import TRANSITIONS


def test_lua_keys_match_keys_module() -> None:
    src = library_source()
    for name in (
        "EVENTS",
        "STATS",
        "OPTOUT",
        "SMS_QUEUE",
        "SMS_DEFERRED",
        "REPLY_DUE",
        "DLR_DUE",
        "DLR_HELD_INDEX",
        "UNMATCHED_REPLIES",
    ):
        assert f"local {name} = '{getattr(keys, name)}'\n" in src, name
    assert (
        "local function SURVEY_EVENTS(survey_id) return 'minyi:survey:' .. survey_id"
        " .. ':events' end" in src
    )
    for state, targets in TRANSITIONS.items():
        assert f"  {state.value} = {{" in src
        for t in targets:
            assert f"{t.value} = true" in src


def test_lua_key_names_match_the_python_ones() -> None:
    src = library_source()
    assert "local ASR_DEAD = 'minyi:asr:dead'" in src and jobs.DEAD == "minyi:asr:dead"
    assert "local function ASR_DONE(job_id) return 'minyi:asr:done:' .. job_id end" in src
    assert jobs.DONE == "minyi:asr:done:{job_id}"
    assert "local ASR_JOBS = 'minyi:asr:jobs'" in src and jobs.JOBS == "minyi:asr:jobs"
