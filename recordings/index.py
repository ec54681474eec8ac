"""The recording index in Redis: which survey and callback each recording belongs to.

The ASR worker indexes a callback's recording when it takes its transcription job
(:func:`index_recording`, see asr/worker.py); retention reads the index to know what to
delete and whose feed to tell, the API to find a recording's survey. A recording that is
never transcribed (``[dialer] transcribe = false``) is not indexed: retention's directory
pass deletes it by its age alone.

The two keys are in gateway/store/keys.py with the rest of the keyspace (the Lua side, which
forgets an entry when retention deletes it, is gateway/store/lua/transcripts.lua).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.store import keys
from recordings.naming import parse_file, valid_base

# hash: base -> JSON {"survey_id", "callback_id", "created_ts", "files": [file names]}
RECORDINGS = keys.RECORDINGS
# zset: base -> created_ts (unix seconds), for retention's range scan
RECORDINGS_CREATED = keys.RECORDINGS_CREATED


@dataclass(frozen=True)
class RecordingEntry:
    """One indexed recording."""

    base: str
    survey_id: str
    callback_id: str
    created_ts: float
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The index value (without the base, which is the hash field)."""
        return {
            "survey_id": self.survey_id,
            "callback_id": self.callback_id,
            "created_ts": self.created_ts,
            "files": list(self.files),
        }

    @classmethod
    def from_json(cls, base: str, raw: str | bytes) -> RecordingEntry:
        """Parse an index value; ValueError when it is not one."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("index entry is not an object")
        files = data.get("files") or []
        if not isinstance(files, list):
            raise ValueError("index entry files is not a list")
        return cls(
            base=base,
            survey_id=str(data.get("survey_id") or ""),
            callback_id=str(data.get("callback_id") or ""),
            created_ts=float(data.get("created_ts") or 0.0),
            files=tuple(str(f) for f in files),
        )


def file_names(base: str, files: Iterable[str | Path]) -> tuple[str, ...]:
    """The bare file names of a recording's files, each checked to belong to ``base``."""
    if not valid_base(base):
        raise ValueError(f"bad recording base name {base!r}")
    names: list[str] = []
    for f in files:
        name = Path(f).name
        parsed = parse_file(name)
        if parsed is None or parsed[0] != base:
            raise ValueError(f"{name!r} is not a file of recording {base!r}")
        names.append(name)
    return tuple(dict.fromkeys(names))


async def index_recording(
    redis: aioredis.Redis,
    base: str,
    survey_id: str,
    callback_id: str,
    files: Iterable[str | Path],
    created_ts: float,
) -> RecordingEntry:
    """Index a recording (replacing an earlier entry for the same base).

    ``files`` are the recording's files (paths or names; only the names are kept, and
    each must be ``<base>.wav`` or one of its legs). Raises ValueError otherwise.
    """
    entry = RecordingEntry(base, survey_id, callback_id, created_ts, file_names(base, files))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(RECORDINGS, base, json.dumps(entry.to_json(), separators=(",", ":")))
        pipe.zadd(RECORDINGS_CREATED, {base: created_ts})
        await pipe.execute()
    return entry


async def get_recording(redis: aioredis.Redis, base: str) -> RecordingEntry | None:
    """The index entry of a recording, or None (unknown, or an unreadable entry)."""
    raw = await redis.hget(RECORDINGS, base)
    if raw is None:
        return None
    try:
        return RecordingEntry.from_json(base, raw)
    except (ValueError, TypeError):
        return None
