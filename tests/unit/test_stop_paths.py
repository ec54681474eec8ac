"""Stop paths end even when a loop lost its cancel (lifecycle.cancel_all).

A library can lose a cancellation without an error (Python 3.11's wait_for when the
awaited call finishes at that moment): the loop goes on, and a stop that cancelled it
once and then waited for it would wait for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asr.worker import AsrWorker, AsrWorkerSettings
from gateway.config import AmiSettings, parse_settings
from gateway.config.binds import CmppBind
from gateway.desk.hub import Hub
from gateway.dialer.ami import AmiClient
from gateway.dialer.dialer import Dialer
from gateway.service import Service, _Running
from gateway.store.surveys import Store
from gateway.webhooks.sender import Poster
from sms.binds import SmsClient
from sms.cmpp.bind import CmppSession
from tests.unit.test_config_defaults import MINIMAL
from tests.unit.test_config_dialer import dialer
from tests.unit.test_lifecycle import swallows_its_first_cancel

# cancel_all cancels again after 1 s: a stop that ends within this did not hang
STOPPED_WITHIN_S = 3.0


async def stops_in_time(stopping: Awaitable[None]) -> None:
    """Await ``stopping``; fail, rather than hang, if it is still waiting after
    STOPPED_WITHIN_S. Not wait_for: a stop that swallows the CancelledError of its
    timeout returns normally from 3.11's wait_for, late, and would pass."""
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait([task], timeout=STOPPED_WITHIN_S)
    if not done:
        task.cancel()  # a second cancel, which the stubborn loop does not lose
        await asyncio.wait([task])
        pytest.fail(f"still stopping after {STOPPED_WITHIN_S}s: it lost a cancel")
    task.result()


async def loses_its_first_cancel() -> tuple[asyncio.Task[None], asyncio.Event]:
    """A running loop that swallows its first cancel and goes on, and an event set
    when it has."""
    lost = asyncio.Event()
    task = asyncio.create_task(swallows_its_first_cancel(lost))
    await asyncio.sleep(0)  # started: a task cancelled before it runs cannot lose it
    return task, lost


class _IdleBind:
    """Just enough of an SmsBind for SmsClient.stop."""

    name = "b1"

    async def stop(self) -> None:
        pass


async def test_sms_client_stop_ends_although_a_bind_loop_lost_its_cancel() -> None:
    client = SmsClient()
    client.add(_IdleBind())  # type: ignore[arg-type]
    run, lost = await loses_its_first_cancel()
    client._tasks.append(run)  # the bind's run(), as start() puts it first
    await stops_in_time(client.stop())
    assert lost.is_set() and run.cancelled()


async def test_cmpp_link_ends_although_one_of_its_loops_lost_its_cancel() -> None:
    # The reader saw the connection close; the sender loop lost the cancel that ends it.
    settings = CmppBind(name="c1", host="127.0.0.1", port=7890, sp_id="901234", secret="s")
    session = CmppSession(settings, SmsClient(), sink=None)  # type: ignore[arg-type]
    sending, lost = asyncio.Event(), asyncio.Event()

    async def login(*_: Any) -> None:
        pass

    async def read(*_: Any) -> None:
        await sending.wait()
        raise EOFError("the ISMG closed the connection")

    async def send_parts(*_: Any) -> None:
        sending.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            lost.set()  # swallowed
        await asyncio.sleep(60)

    async def keepalive(*_: Any) -> None:
        await asyncio.sleep(60)

    session._login = login  # type: ignore[method-assign]
    session._read = read  # type: ignore[method-assign]
    session._send_parts = send_parts  # type: ignore[method-assign]
    session._keepalive = keepalive  # type: ignore[method-assign]
    with pytest.raises(EOFError):
        await stops_in_time(session._serve(None, None))  # type: ignore[arg-type]
    assert lost.is_set()


async def test_ami_stop_ends_although_its_supervisor_lost_its_cancel() -> None:
    ami = AmiClient(AmiSettings(), on_event=lambda _: None)
    ami._task, lost = await loses_its_first_cancel()
    supervisor = ami._task
    await stops_in_time(ami.stop())
    assert lost.is_set() and supervisor.cancelled()


async def test_ami_stop_still_raises_the_supervisors_own_error() -> None:
    async def fails() -> None:
        raise RuntimeError("a bug in the supervisor")

    ami = AmiClient(AmiSettings(), on_event=lambda _: None)
    ami._task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="a bug"):
        await ami.stop()


class _NoRedis:
    """Redis down: the stopping dialer cannot hand its lease back (that is waited out)."""

    async def fcall(self, *_: Any) -> Any:
        raise ConnectionRefusedError("no Redis in this test")


async def test_dialer_stops_although_a_call_task_lost_its_cancel() -> None:
    tz = ZoneInfo("UTC")
    dialer_ = Dialer(parse_settings(dialer(), {}).dialer, Store(_NoRedis(), tz), tz)  # type: ignore[arg-type]
    lost = asyncio.Event()
    dialer_._spawn(swallows_its_first_cancel(lost), "call")
    await asyncio.sleep(0)
    stop = asyncio.Event()
    stop.set()
    await stops_in_time(dialer_.run(stop))
    assert lost.is_set() and not dialer_._tasks


async def test_desk_hub_closes_although_its_loop_lost_its_cancel() -> None:
    hub = Hub(redis=None)  # type: ignore[arg-type]
    hub._task, lost = await loses_its_first_cancel()
    run = hub._task
    await stops_in_time(hub.close())
    assert lost.is_set() and run.cancelled()


async def test_webhook_poster_closes_although_a_batch_lost_its_cancel() -> None:
    poster = Poster("http://127.0.0.1:9/hook", b"k", timeout_s=5, concurrency=1, batch_max=10)
    batch, lost = await loses_its_first_cancel()
    poster._batches.add(batch)
    await stops_in_time(poster.close())
    assert lost.is_set() and batch.cancelled()


async def test_asr_drain_ends_although_a_job_lost_its_cancel() -> None:
    settings = AsrWorkerSettings(model=None, stop_grace_s=0.01)  # type: ignore[arg-type]
    worker = AsrWorker(redis=None, settings=settings)  # type: ignore[arg-type]
    job, lost = await loses_its_first_cancel()
    worker._inflight["1-0"] = job
    await stops_in_time(worker._drain())
    assert lost.is_set() and job.cancelled()


async def test_service_drain_ends_although_a_worker_lost_its_cancel() -> None:
    service = Service(parse_settings(MINIMAL, {}), ("api",))
    worker, lost = await loses_its_first_cancel()
    service._running["stuck"] = _Running(asyncio.Event(), worker)  # past its drain limit
    await stops_in_time(service._drain())
    assert lost.is_set() and worker.cancelled()
