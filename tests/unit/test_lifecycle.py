"""gateway.lifecycle: the one way workers wait out outages and stop."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from gateway import lifecycle

FAST = (0.001, 0.004)


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_reset() -> None:
    b = lifecycle.Backoff(0.5, 3.0)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_backoff_refuses_a_nonsense_schedule() -> None:
    with pytest.raises(ValueError):
        lifecycle.Backoff(0, 1)
    with pytest.raises(ValueError):
        lifecycle.Backoff(2, 1)


async def test_outlast_retries_outages_until_the_step_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tries = 0

    async def step() -> str:
        nonlocal tries
        tries += 1
        if tries < 4:
            raise RedisConnectionError("Connection refused")
        return "done"

    log = logging.getLogger("minyi.test")
    caplog.set_level(logging.INFO, logger="minyi.test")
    result = await lifecycle.outlast(
        step, asyncio.Event(), what="test step", log=log, backoff=lifecycle.Backoff(*FAST)
    )
    assert (result, tries) == ("done", 4)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # logged at the first failure only (then once a minute), with the error's message
    assert len(warnings) == 1 and "Connection refused" in warnings[0].getMessage()
    assert any("working again after 3 failed tries" in r.getMessage() for r in caplog.records)


async def test_a_redis_error_reply_is_logged_as_an_error_with_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = lifecycle.Outage(
        logging.getLogger("minyi.test"), "receipt", backoff=lifecycle.Backoff(*FAST)
    )
    caplog.set_level(logging.INFO, logger="minyi.test")
    await outage.wait(ResponseError("user_script:1: Script attempted to access nil"))
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "ResponseError: user_script:1: Script attempted to access nil" in record.getMessage()


async def test_outlast_gives_up_when_stopped_during_an_outage() -> None:
    stop = asyncio.Event()

    async def step() -> int:
        stop.set()  # e.g. SIGTERM while Redis is away
        raise OSError("unreachable")

    assert (
        await lifecycle.outlast(
            step,
            stop,
            what="x",
            log=logging.getLogger("minyi.test"),
            backoff=lifecycle.Backoff(60, 60),
        )
        is None
    )


async def test_a_cancel_a_library_turned_into_an_outage_still_cancels() -> None:
    # A client library that catches the task's CancelledError and raises a connection
    # error instead: outlast must not wait it out and retry, or a draining service waits
    # for a loop that no longer hears its cancel.
    tries = 0
    entered, stop = asyncio.Event(), asyncio.Event()

    async def step() -> None:
        nonlocal tries
        tries += 1
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server") from None

    task = asyncio.create_task(
        lifecycle.outlast(
            step,
            stop,
            what="x",
            log=logging.getLogger("minyi.test"),
            backoff=lifecycle.Backoff(*FAST),
        )
    )
    await entered.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # the bug: it retried; end it for good before failing
        stop.set()
        await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled() and tries == 1


async def test_outlast_lets_a_bug_through() -> None:
    async def step() -> None:
        raise KeyError("a bug is not an outage")

    with pytest.raises(KeyError):
        await lifecycle.outlast(
            step, asyncio.Event(), what="x", log=logging.getLogger("minyi.test")
        )


async def test_sleep_or_stop_wakes_on_the_stop_event() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await asyncio.wait_for(lifecycle.sleep_or_stop(stop, 60), 5) is True
    assert await lifecycle.sleep_or_stop(asyncio.Event(), 0.001) is False


def test_describe_keeps_the_message() -> None:
    assert lifecycle.describe(ResponseError("ERR bad")) == "ResponseError: ERR bad"
    assert lifecycle.describe(TimeoutError()) == "TimeoutError"


async def swallows_its_first_cancel(lost: asyncio.Event) -> None:
    """A loop that loses its first cancel, as one in 3.11's wait_for can, and goes on;
    ``lost`` is set when it has."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        lost.set()  # swallowed
    await asyncio.sleep(60)


async def test_cancel_all_cancels_again_a_task_that_lost_its_cancel() -> None:
    # A library may lose a cancellation without an error (3.11's wait_for): the task
    # goes on, and a single cancel would leave its owner waiting for ever.
    lost = asyncio.Event()

    async def fails() -> None:
        raise RuntimeError("its own error, logged where it happened")

    stubborn = asyncio.create_task(swallows_its_first_cancel(lost))
    failed = asyncio.create_task(fails())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)  # all three started; two have ended
    await asyncio.wait_for(lifecycle.cancel_all([stubborn, failed, done], again_s=0.02), 5)
    assert lost.is_set() and stubborn.cancelled()
    assert isinstance(failed.exception(), RuntimeError) and not done.cancelled()


async def test_cancel_all_waits_its_tasks_out_when_its_caller_is_cancelled() -> None:
    # As gather does: a stop that is itself cancelled (a drain cancelling a worker in its
    # finally) still leaves nothing it cancelled running behind its back.
    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.1)  # its own clean-up, after the cancel

    slow = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(lifecycle.cancel_all([slow], again_s=5))
    await asyncio.sleep(0.01)  # slow got its cancel and is cleaning up
    stopping.cancel()
    await asyncio.wait_for(asyncio.wait([stopping]), 5)
    assert stopping.cancelled()
    assert slow.done(), "cancel_all returned before its task ended"
