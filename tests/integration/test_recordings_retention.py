"""Retention against a real redis-server: old recordings go, with one event per survey."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from gateway.store import keys
from gateway.store.surveys import Store
from recordings.index import RECORDINGS, RECORDINGS_CREATED, get_recording, index_recording
from recordings.retention import RetentionSettings, run, sweep
from tests.waiting import eventually

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
DAY = 86400.0
NOW = time.time()


async def survey(store: Store, sid: str, phone: str) -> None:
    await store.intake(
        sid, phone, {"unit": "330602"}, cap_s=0, defer_at=None, ttl_s=0, accepted_payload={}
    )


def names(root: Path) -> list[str]:
    return sorted(os.listdir(root))


def touch(root: Path, name: str, age_days: float, size: int = 44) -> Path:
    path = root / name
    path.write_bytes(b"\0" * size)
    ts = NOW - age_days * DAY
    os.utime(path, (ts, ts))
    return path


async def test_old_indexed_recordings_are_deleted_with_one_event_per_survey(
    store: Store, redis_text: aioredis.Redis, tmp_path: Path
) -> None:
    await survey(store, "S-old", "13800138001")
    await survey(store, "S-new", "13800138002")
    # A transcript is kept with the survey (as the ASR worker's Lua function does).
    await redis_text.hset(
        keys.SURVEY_TRANSCRIPTS.format(survey_id="S-old"), mapping={"cb-old": "{}", "cb-x": "{}"}
    )
    legs = ["cb-old.wav", "cb-old-citizen.wav", "cb-old-agent.wav"]
    for name in legs:
        touch(tmp_path, name, 1)  # mtime says new: the index's creation time decides
    touch(tmp_path, "cb-old-reason.wav", 1)  # written after indexing: goes too
    await index_recording(redis_text, "cb-old", "S-old", "cb-old", legs, NOW - 200 * DAY)
    for name in ("cb-new.wav", "cb-new-citizen.wav"):
        touch(tmp_path, name, 400)  # mtime says old, but the index says new: kept
    await index_recording(
        redis_text, "cb-new", "S-new", "cb-new", [tmp_path / "cb-new.wav"], NOW - 10 * DAY
    )
    # A recording whose survey expired from Redis: files go, no event.
    touch(tmp_path, "cb-gone.wav", 300)
    await index_recording(
        redis_text, "cb-gone", "S-expired", "cb-gone", ["cb-gone.wav"], NOW - 300 * DAY
    )

    report = await sweep(redis_text, tmp_path, days=180, tz=TZ, now=NOW)

    assert (report.recordings, report.events, report.files, report.errors) == (2, 1, 5, 0)
    assert report.bytes == 5 * 44
    left = names(tmp_path)
    assert left == ["cb-new-citizen.wav", "cb-new.wav"]
    assert await get_recording(redis_text, "cb-old") is None
    assert await redis_text.zscore(RECORDINGS_CREATED, "cb-old") is None
    assert await get_recording(redis_text, "cb-new") is not None
    [event] = [e for e in await store.events("S-old") if e.type == "recording.deleted"]
    p = event.payload
    assert p["base"] == "cb-old" and p["callback_id"] == "cb-old"
    assert sorted(p["files"]) == sorted([*legs, "cb-old-reason.wav"])
    assert (p["reason"], p["retention_days"]) == ("retention", 180)
    assert p["created_at"].endswith("+08:00")
    assert await redis_text.hgetall(keys.SURVEY_TRANSCRIPTS.format(survey_id="S-old")) == {
        "cb-x": "{}"
    }
    assert not [e for e in await store.events("S-new") if e.type == "recording.deleted"]
    assert not await redis_text.exists(keys.SURVEY.format(survey_id="S-expired"))

    # Rerun: nothing left to do, no second event.
    again = await sweep(redis_text, tmp_path, days=180, tz=TZ, now=NOW)
    assert (again.recordings, again.events, again.files) == (0, 0, 0)
    assert len([e for e in await store.events("S-old") if e.type == "recording.deleted"]) == 1


async def test_unindexed_files_go_by_modification_time_and_other_files_stay(
    redis_text: aioredis.Redis, store: Store, tmp_path: Path
) -> None:
    touch(tmp_path, "orphan.wav", 181)
    touch(tmp_path, "orphan-agent.wav", 181)
    touch(tmp_path, "fresh-citizen.wav", 179)
    touch(tmp_path, "notes.txt", 1000)  # not a recording's name: never touched
    touch(tmp_path, "odd.name.wav", 1000)
    (tmp_path / "sub").mkdir()
    touch(tmp_path / "sub", "deep.wav", 1000)  # only the directory itself is swept
    report = await sweep(redis_text, tmp_path, days=180, tz=TZ, now=NOW)
    assert (report.unindexed_files, report.files, report.events) == (2, 2, 0)
    assert names(tmp_path) == [
        "fresh-citizen.wav",
        "notes.txt",
        "odd.name.wav",
        "sub",
    ]
    assert (tmp_path / "sub" / "deep.wav").exists()


async def test_a_recording_whose_files_cannot_be_deleted_is_kept_for_the_next_sweep(
    redis_text: aioredis.Redis, store: Store, tmp_path: Path
) -> None:
    await survey(store, "S1", "13800138001")
    touch(tmp_path, "cb-1.wav", 1)
    # A directory where a leg should be: unlink fails (EISDIR) whoever runs the test.
    (tmp_path / "cb-1-agent.wav").mkdir()
    await index_recording(redis_text, "cb-1", "S1", "cb-1", ["cb-1.wav"], NOW - 365 * DAY)
    report = await sweep(redis_text, tmp_path, days=180, tz=TZ, now=NOW)
    assert (report.errors, report.kept, report.events, report.files) == (1, ["cb-1"], 0, 1)
    assert await get_recording(redis_text, "cb-1") is not None
    (tmp_path / "cb-1-agent.wav").rmdir()
    report = await sweep(redis_text, tmp_path, days=180, tz=TZ, now=NOW)
    assert (report.recordings, report.events, report.errors) == (1, 1, 0)
    [event] = [e for e in await store.events("S1") if e.type == "recording.deleted"]
    assert event.payload["files"] == ["cb-1.wav"]  # deleted by the first sweep


async def test_index_refuses_files_of_another_recording(redis_text: aioredis.Redis) -> None:
    with pytest.raises(ValueError):
        await index_recording(redis_text, "cb-1", "S1", "cb-1", ["cb-2.wav"], NOW)
    with pytest.raises(ValueError):
        await index_recording(redis_text, "../cb-1", "S1", "cb-1", ["cb-1.wav"], NOW)
    entry = await index_recording(redis_text, "cb-1", "S1", "", ["/var/rec/cb-1-agent.wav"], NOW)
    assert entry.files == ("cb-1-agent.wav",)
    raw = await redis_text.hget(RECORDINGS, "cb-1")
    assert raw is not None and json.loads(raw)["files"] == ["cb-1-agent.wav"]


async def test_the_retention_loop_sweeps_at_once_and_stops(
    redis_text: aioredis.Redis, store: Store, tmp_path: Path
) -> None:
    touch(tmp_path, "orphan.wav", 365)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run(redis_text, RetentionSettings(tmp_path, every_s=3600), stop, tz=TZ)
    )
    await eventually(lambda: not (tmp_path / "orphan.wav").exists(), "the orphan swept", 10)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_note_event_emits_only_for_an_existing_survey(
    redis_text: aioredis.Redis, store: Store
) -> None:
    await survey(store, "S1", "13800138001")
    seq = await redis_text.fcall(
        "minyi_note_event", 0, "S1", "2026-01-01T00:00:00+08:00", "x.y", "{}"
    )  # type: ignore[misc]
    assert int(seq) > 0
    assert [e.type for e in await store.events("S1")][-1] == "x.y"
    assert await redis_text.fcall("minyi_note_event", 0, "S2", "t", "x.y", "{}") == 0  # type: ignore[misc]
    assert not await redis_text.exists(keys.SURVEY.format(survey_id="S2"))
