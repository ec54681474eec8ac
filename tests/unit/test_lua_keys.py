"""The Lua function library names the same Redis keys and transitions as the Python side
(gateway/store/keys.py, gateway/store/states.py, asr/jobs.py): read from the source, no
Redis needed."""

from __future__ import annotations

import re

from asr import jobs
from gateway.store import keys
from gateway.store.states import TRANSITIONS
from gateway.store.surveys import library_source


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
        "UNMATCHED",
    ):
        m = re.search(rf"local {name} = P \.\. '([^']+)'", src)
        assert m, name
        assert "minyi:" + m.group(1) == getattr(
            keys, name if name != "UNMATCHED" else "UNMATCHED_REPLIES"
        )
    for state, targets in TRANSITIONS.items():
        assert f"  {state.value} = {{" in src
        for t in targets:
            assert f"{t.value} = true" in src


def test_lua_key_names_match_the_python_ones() -> None:
    src = library_source()
    assert "P .. 'asr:dead'" in src and jobs.DEAD == "minyi:asr:dead"
    assert "P .. 'asr:done:' .. job_id" in src and jobs.DONE == "minyi:asr:done:{job_id}"
    assert "local ASR_JOBS = P .. 'asr:jobs'" in src and jobs.JOBS == "minyi:asr:jobs"
