"""Stop paths end even when a loop lost its cancel (lifecycle.cancel_all).

A library can lose a cancellation without an error (Python 3.11's wait_for when the
awaited call finishes at that moment): the loop goes on, and a stop that cancelled it
once and then waited for it would wait for ever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.config.binds import CmppBind
from sms.binds import SmsClient
from sms.cmpp.bind import CmppSession

# cancel_all cancels again after 1 s: a stop that ends within this did not hang
STOPPED_WITHIN_S = 5.0


async def loses_its_first_cancel() -> tuple[asyncio.Task[None], asyncio.Event]:
    """A running loop that swallows its first cancel and goes on, and an event set
    when it has."""
    lost = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            lost.set()  # swallowed
        await asyncio.sleep(60)

    task = asyncio.create_task(loop())
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
    await asyncio.wait_for(client.stop(), STOPPED_WITHIN_S)
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
        await asyncio.wait_for(session._serve(None, None), STOPPED_WITHIN_S)  # type: ignore[arg-type]
    assert lost.is_set()
