"""The one way a test waits for something it cannot be told about: ``eventually()``.

A test waits for the state that proves its condition (a webhook received, a Redis field
set, a file written), never for a fixed time. When nothing pushes that state to the test,
``eventually()`` re-checks it every few milliseconds; its bound only keeps a broken run
from hanging and is never part of what the test asserts. Waits that can be pushed stay
pushed: an AMI event (``amitools.AmiClient.wait_for``), the SMSC simulator's own records
(``SmscSimulator.wait_until``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["ended", "eventually"]

T = TypeVar("T")

# Between two checks. Short, so a test goes on as soon as its condition holds; the
# checks are cheap (a list scan, a Redis read) next to the servers' own work.
EVERY_S = 0.02


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    what: str = "the condition",
    within_s: float = 30.0,
    *,
    every_s: float = EVERY_S,
) -> T:
    """Re-check ``check`` (a plain or an async function) until it returns something
    true, and return that; raise AssertionError naming ``what`` after ``within_s``."""
    if not isinstance(what, str):  # eventually(check, 30) would wait the default and say "30"
        raise TypeError(f"eventually(): what must name the condition, got {what!r}")
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within_s:g}s")
        await asyncio.sleep(every_s)


async def ended(task: asyncio.Task[object], what: str, within_s: float = 60.0) -> None:
    """Wait for ``task`` to end (its result or exception is the caller's to read); after
    ``within_s`` fail naming every task of the loop still running, with where each one
    waits, rather than hang until pytest's timeout with nothing to show."""
    done, _ = await asyncio.wait({task}, timeout=within_s)
    if done:
        return
    stuck = []
    for other in asyncio.all_tasks():
        if other.done() or other is asyncio.current_task():
            continue
        frames = [
            f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}"
            for f in other.get_stack(limit=8)
        ]
        stuck.append(f"{other.get_name()}: {' <- '.join(reversed(frames)) or 'not started'}")
    raise AssertionError(f"{what}: not ended within {within_s:g}s; running:\n" + "\n".join(stuck))
