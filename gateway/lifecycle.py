"""How every worker starts, waits out an outage, and stops: one convention.

A worker is an object with ``async def run(self, stop: asyncio.Event) -> None``. It
works until ``stop`` is set, then finishes or hands back what it holds (nothing taken
from Redis is acknowledged before its effect is stored, so whatever a worker leaves
is taken again by the next start or by another process) and returns. The service
(gateway/service.py) owns one stop event per worker and sets them in its drain order;
tests do the same with an event of their own.

Redis outages and dropped connections are waited out, never fatal: a worker wraps its
step in :func:`outlast`, which retries with :class:`Backoff` and gives up only when the
stop event is set. A bug (any other exception) is not retried here: it ends the
worker, and the service then stops the whole process with a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final, Protocol, TypeVar

from redis.exceptions import RedisError, ResponseError

T = TypeVar("T")

# What counts as an outage (waited out) rather than a bug (fatal): Redis's own errors
# (connection, timeout, busy loading, read-only replica...) and socket errors.
OUTAGES: Final = (RedisError, OSError)


def still_wanted() -> None:
    """Raise CancelledError if the running task was cancelled while a library turned that
    cancellation into an outage (a connection error, a timeout) that the caller is about
    to wait out: a loop that swallowed its cancel would keep a draining service waiting
    (once for 30 s, in a Sentinel failover)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_all(tasks: Collection[asyncio.Task[Any]], *, again_s: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended. One still running ``again_s``
    after its cancel is cancelled again: a library may lose a cancellation without an
    error (Python 3.11's wait_for when the awaited call finishes at that moment), and a
    loop that lost its one cancel kept a stopping webhook worker waiting for ever.
    Their own exceptions are not raised here (each loop logs its own).

    If the caller is cancelled meanwhile, the tasks are cancelled again and still waited
    out before its CancelledError is raised, as gather does: a stop cancelled in its
    turn (a drain cancelling a worker that is stopping its loops) leaves nothing it
    cancelled running behind its back."""
    pending = {task for task in tasks if not task.done()}
    interrupted: asyncio.CancelledError | None = None
    while pending:
        for task in pending:
            task.cancel()
        try:
            _, pending = await asyncio.wait(pending, timeout=again_s)
        except asyncio.CancelledError as exc:
            interrupted = exc
            pending = {task for task in pending if not task.done()}
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, as gather(return_exceptions=True) would
    if interrupted is not None:
        raise interrupted


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` (again if it lost the cancel, `cancel_all`) and wait until it
    ended, as ``task.cancel(); await task`` under ``suppress(CancelledError)`` did: the
    task's own error is raised, a cancel of the caller meanwhile is not (the caller's
    stop goes on, e.g. the dialer's to hand its lease back)."""
    with contextlib.suppress(asyncio.CancelledError):
        await cancel_all([task])
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


class Worker(Protocol):
    """A unit of work the service runs: ``run(stop)`` until ``stop`` is set."""

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish or hand back what is in hand."""


class Backoff:
    """Delays between retries of something that failed: ``initial_s``, doubling up to
    ``max_s``; :meth:`reset` after a success starts again from ``initial_s``."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self._next = initial_s

    def next_delay(self) -> float:
        """The delay to wait now; the one after it is twice as long (up to max_s)."""
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def upcoming(self) -> float:
        """The delay :meth:`next_delay` will give, without using it (for a log line)."""
        return self._next

    def reset(self) -> None:
        """A success: the next failure waits ``initial_s`` again."""
        self._next = self.initial_s


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile; True when stopped."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class Outage:
    """Waiting out an outage (Redis restarting or failing over, a dropped link): growing
    sleeps between tries (:class:`Backoff`), a log line at the first failure and then
    once a minute while it lasts, and one when it is over.

    A Redis error *reply* (ResponseError: a script error, a refused command) is logged
    as an error, with Redis's own message: it is a fault to look at, not weather.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        backoff: Backoff | None = None,
        repeat_log_s: float = 60.0,
    ) -> None:
        self.log = log
        self.what = what
        self.backoff = backoff or Backoff()
        self.repeat_log_s = repeat_log_s
        self.failures = 0
        self._logged_at = 0.0

    async def wait(self, exc: BaseException, stop: asyncio.Event | None = None) -> bool:
        """Log (if due) and sleep before the next try; True when ``stop`` was set."""
        still_wanted()
        delay = self.backoff.next_delay()
        now = time.monotonic()
        if self.failures == 0 or now - self._logged_at >= self.repeat_log_s:
            self._logged_at = now
            level = logging.ERROR if isinstance(exc, ResponseError) else logging.WARNING
            self.log.log(level, "%s: %s; retrying in %.1fs", self.what, describe(exc), delay)
        self.failures += 1
        if stop is None:
            await asyncio.sleep(delay)
            return False
        return await sleep_or_stop(stop, delay)

    def over(self) -> None:
        """A try succeeded: the next failure starts again with a short sleep."""
        if self.failures:
            self.log.info("%s: working again after %d failed tries", self.what, self.failures)
        self.failures = 0
        self.backoff.reset()


async def outlast(
    step: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    what: str,
    log: logging.Logger,
    backoff: Backoff | None = None,
) -> T | None:
    """Run ``step`` until it returns, waiting out outages (:data:`OUTAGES`) as an
    :class:`Outage`; None when ``stop`` was set before it could finish."""
    outage = Outage(log, what, backoff=backoff)
    while not stop.is_set():
        try:
            result = await step()
        except OUTAGES as exc:
            if await outage.wait(exc, stop):
                return None
        else:
            outage.over()
            return result
    return None


def describe(exc: BaseException) -> str:
    """An error for a log line: its type and its message (never just the type: a
    ResponseError's message is the part that says what went wrong)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
