"""SmsClient as a worker (sms.binds.SmsClient.run): a bind's loop or the dispatch that
ends by itself is a bug, raised so that the service stops the process (its supervisor
starts it again), where before the bind stayed down and nothing said so."""

from __future__ import annotations

import asyncio

import pytest

from sms.binds import SmsClient


class _Bind:
    """Just enough of an SmsBind for SmsClient.start and stop: its loop runs `body`."""

    can_send = True

    def __init__(self, name: str, body: BaseException | None = None) -> None:
        self.name = name
        self.body = body
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        await asyncio.sleep(0.01)
        if self.body is not None:
            raise self.body
        await self.stopped.wait()

    async def stop(self) -> None:
        self.stopped.set()


async def _client(*binds: _Bind) -> SmsClient:
    client = SmsClient()
    for b in binds:
        client.add(b)  # type: ignore[arg-type]
    await client.start()
    return client


async def test_a_bind_loop_that_dies_of_a_bug_is_raised_with_its_cause() -> None:
    client = await _client(_Bind("ok"), _Bind("c1", KeyError("window slot 7")))
    with pytest.raises(RuntimeError, match="bind-c1 ended by itself") as raised:
        await asyncio.wait_for(client.run(asyncio.Event()), 5)
    assert isinstance(raised.value.__cause__, KeyError)
    await client.stop()


async def test_a_bind_loop_that_returns_is_raised_too() -> None:
    class _Returns(_Bind):
        async def run(self) -> None:
            await asyncio.sleep(0.01)

    client = await _client(_Returns("s1"))
    with pytest.raises(RuntimeError, match="bind-s1 returned: it must run until stopped"):
        await asyncio.wait_for(client.run(asyncio.Event()), 5)
    await client.stop()


async def test_the_watch_ends_quietly_on_its_stop_event_and_on_stop() -> None:
    client = await _client(_Bind("b1"))
    stop = asyncio.Event()
    watch = asyncio.create_task(client.run(stop))
    await asyncio.sleep(0.05)
    assert not watch.done()  # healthy loops: it waits
    stop.set()
    await asyncio.wait_for(watch, 5)
    # the drain unbinds the client first (its loops are cancelled): no error either
    watch = asyncio.create_task(client.run(asyncio.Event()))
    await asyncio.sleep(0.01)
    await client.stop()
    await asyncio.wait_for(watch, 5)
