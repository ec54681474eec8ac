"""How the ASR pool waits for a job's legs (asr.pool.await_legs), on executors that fail
in ways a real process pool does only by chance: a leg lost as the pool breaks, a leg
that never ends. The real pool, killed and timed out for real, is in
tests/integration/test_asr_pool.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from asr import pool as asr_pool
from asr.pool import await_legs


class LosingExecutor(Executor):
    """Takes each task and loses it, marking itself broken: what CPython 3.11's process
    pool does to a task submitted while it fails the ones it knows of."""

    def __init__(self) -> None:
        self._broken: str | None = None
        self.taken: list[concurrent.futures.Future[Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self._broken = "A child process terminated abruptly"
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.taken.append(future)
        return future


class StuckExecutor(LosingExecutor):
    """Takes each task and never runs it, without being broken (a task that hangs)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future = super().submit(fn, *args, **kwargs)
        self._broken = None
        return future


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asr_pool, "LOST_TASK_CHECK_S", 0.02)


async def test_a_leg_lost_as_its_pool_broke_ends_as_a_dead_worker_not_at_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    executor = LosingExecutor()
    futures = {"citizen": loop.run_in_executor(executor, print)}
    started = loop.time()
    [result] = await await_legs(executor, futures, within_s=60)
    assert isinstance(result, BrokenProcessPool)
    assert loop.time() - started < 30  # two check periods, far below the job's timeout
    assert futures["citizen"].cancelled()


async def test_legs_that_end_are_returned_in_order_even_from_a_broken_pool() -> None:
    loop = asyncio.get_running_loop()
    executor = LosingExecutor()
    futures = {
        "citizen": loop.run_in_executor(executor, print),
        "agent": loop.run_in_executor(executor, print),
    }
    executor.taken[1].set_exception(BrokenProcessPool("worker died"))  # failed by the pool
    results = await await_legs(executor, futures, within_s=60)
    assert [type(r) for r in results] == [BrokenProcessPool, BrokenProcessPool]
    assert str(results[1]) == "worker died"  # the pool's own failure, kept
    assert "lost" in str(results[0])


async def test_a_leg_that_never_ends_in_a_whole_pool_times_out_and_is_cancelled() -> None:
    loop = asyncio.get_running_loop()
    executor = StuckExecutor()
    future = loop.run_in_executor(executor, print)
    with pytest.raises(TimeoutError):
        await await_legs(executor, {"citizen": future}, within_s=0.2)
    assert future.cancelled()


async def test_results_and_exceptions_come_back_by_leg() -> None:
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        futures = {
            "citizen": loop.run_in_executor(executor, str, 1),
            "agent": loop.run_in_executor(executor, int, "x"),
        }
        citizen, agent = await await_legs(executor, futures, within_s=10)
    assert citizen == "1"
    assert isinstance(agent, ValueError)
