"""Retention: recordings (and the transcripts kept with their surveys) live N days.

A sweep has two passes:

1. the index (:mod:`recordings.index`): every recording created before the cut-off has
   its files deleted, then one Redis function call (``minyi_recording_deleted``) forgets
   the index entry, deletes the transcript kept with the survey and puts a
   ``recording.deleted`` event on the survey's feed - once, however often the sweep is
   interrupted and rerun;
2. the directory: recording files nobody indexed (a crash between the call's end and
   the indexing, files copied in by hand) are deleted by modification time.

Only names of recordings (:mod:`recordings.naming`) are ever deleted, and only files
directly in the recordings directory. An index entry whose files cannot be deleted
(permissions, I/O) is kept, so the next sweep tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from gateway import lifecycle, logs
from gateway.store import library
from gateway.store.streams import text
from gateway.store.surveys import iso
from recordings.index import RECORDINGS, RECORDINGS_CREATED, RecordingEntry
from recordings.naming import parse_file, recording_files

log = logs.logger(__name__)

DEFAULT_RETENTION_DAYS = 180


@dataclass
class RetentionReport:
    """What one sweep did."""

    recordings: int = 0  # indexed recordings removed
    events: int = 0  # recording.deleted events emitted
    files: int = 0  # files deleted (indexed and not)
    bytes: int = 0
    unindexed_files: int = 0
    errors: int = 0  # files that could not be deleted (kept for the next sweep)
    kept: list[str] = field(default_factory=list)  # bases kept because of errors


@dataclass
class RetentionSettings:
    """The ``recordings`` section of the gateway's config, for :func:`run`."""

    recordings_dir: Path
    days: float = DEFAULT_RETENTION_DAYS
    every_s: float = 3600.0
    batch: int = 500


def _delete(root: Path, names: list[str]) -> tuple[list[str], int, list[str]]:
    """Delete ``names`` in ``root``: (deleted, bytes, failed). Missing files are no error."""
    deleted: list[str] = []
    failed: list[str] = []
    size = 0
    for name in names:
        path = root / name
        try:
            st = path.lstat()
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot delete recording file=%s: %s", name, exc.strerror)
            failed.append(name)
            continue
        deleted.append(name)
        size += st.st_size
    return deleted, size, failed


async def sweep(
    redis: aioredis.Redis,
    recordings_dir: Path,
    *,
    days: float = DEFAULT_RETENTION_DAYS,
    tz: ZoneInfo,
    now: float | None = None,
    batch: int = 500,
) -> RetentionReport:
    """Delete recordings older than ``days`` (see the module docstring); returns a report."""
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    report = RetentionReport()
    await _sweep_index(redis, recordings_dir, cutoff, now, days, tz, batch, report)
    await _sweep_directory(redis, recordings_dir, cutoff, batch, report)
    if report.files or report.errors:
        log.info(
            "retention sweep days=%g recordings=%d files=%d bytes=%d unindexed=%d errors=%d",
            days,
            report.recordings,
            report.files,
            report.bytes,
            report.unindexed_files,
            report.errors,
        )
    return report


async def _sweep_index(
    redis: aioredis.Redis,
    root: Path,
    cutoff: float,
    now: float,
    days: float,
    tz: ZoneInfo,
    batch: int,
    report: RetentionReport,
) -> None:
    skipped = 0  # entries kept because a file could not be deleted: page past them
    while True:
        bases = [
            text(b)
            for b in await redis.zrangebyscore(
                RECORDINGS_CREATED, "-inf", f"({cutoff}", start=skipped, num=batch
            )
        ]
        if not bases:
            return
        raws = await redis.hmget(RECORDINGS, bases)
        for base, raw in zip(bases, raws, strict=True):
            if raw is None:  # the hash entry is gone: a stale time index entry
                await redis.zrem(RECORDINGS_CREATED, base)
                continue
            try:
                entry = RecordingEntry.from_json(base, raw)
            except (ValueError, TypeError):
                entry = RecordingEntry(base, "", "", cutoff, ())
            # Every name the recording may have, not only those indexed: a leg written
            # after indexing must not outlive its recording.
            names = list(dict.fromkeys([*entry.files, *recording_files(base)]))
            names = [n for n in names if (p := parse_file(n)) is not None and p[0] == base]
            deleted, size, failed = await asyncio.to_thread(_delete, root, names)
            report.files += len(deleted)
            report.bytes += size
            if failed:
                report.errors += len(failed)
                report.kept.append(base)
                skipped += 1
                continue
            payload = {
                "base": base,
                "callback_id": entry.callback_id,
                # The indexed files and any other leg found: all gone now (some perhaps
                # by an earlier, interrupted sweep).
                "files": sorted({*entry.files, *deleted}),
                "created_at": iso(entry.created_ts, tz) if entry.created_ts else "",
                "reason": "retention",
                "retention_days": days,
            }
            outcome = await library.fcall(
                redis,
                "minyi_recording_deleted",
                base,
                iso(now, tz),
                json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            )
            report.recordings += 1
            report.events += text(outcome) == "emitted"


async def _sweep_directory(
    redis: aioredis.Redis, root: Path, cutoff: float, batch: int, report: RetentionReport
) -> None:
    def old_files() -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        try:
            with os.scandir(root) as it:
                for item in it:
                    parsed = parse_file(item.name)
                    if parsed is None or not item.is_file(follow_symlinks=False):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        if item.stat(follow_symlinks=False).st_mtime < cutoff:
                            found.append((item.name, parsed[0]))
        except FileNotFoundError:
            log.warning("recordings directory missing: %s", root)
        return found

    old = await asyncio.to_thread(old_files)
    for i in range(0, len(old), batch):
        chunk = old[i : i + batch]
        indexed = await redis.hmget(RECORDINGS, [base for _, base in chunk])
        # An indexed recording's files are the index pass's: kept until it is old.
        names = [name for (name, _), raw in zip(chunk, indexed, strict=True) if raw is None]
        deleted, size, failed = await asyncio.to_thread(_delete, root, names)
        report.files += len(deleted)
        report.unindexed_files += len(deleted)
        report.bytes += size
        report.errors += len(failed)


async def run(
    redis: aioredis.Redis, settings: RetentionSettings, stop: asyncio.Event, *, tz: ZoneInfo
) -> None:
    """Sweep every ``every_s`` until ``stop`` is set (the first sweep at once)."""
    while not stop.is_set():
        try:
            await sweep(
                redis, settings.recordings_dir, days=settings.days, tz=tz, batch=settings.batch
            )
        except lifecycle.OUTAGES as exc:
            # the next sweep finishes the work (every_s later)
            log.warning("retention sweep failed: %s", lifecycle.describe(exc))
        await lifecycle.sleep_or_stop(stop, settings.every_s)
