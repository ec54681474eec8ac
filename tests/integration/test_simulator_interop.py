"""A third-party ESME (aiosmpplib 0.7.4) against the simulator: bind as transceiver,
submit, get the submit_sm_resp, get and correlate the delivery receipt, answer an MO."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiosmpplib import (
    ESME,
    AbstractHook,
    DeliverSm,
    PhoneNumber,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.broker import SimpleBroker

from devstack.localstack import free_port
from smsc.simulator import SmscSimulator

pytestmark = pytest.mark.integration


class RecordingHook(AbstractHook):
    """Keeps what aiosmpplib parsed, and wakes the test on each message."""

    def __init__(self) -> None:
        self.messages: list[SmppMessage] = []
        self.errors: list[Exception] = []
        self.changed = asyncio.Event()

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        pass

    async def received(  # type: ignore[override]
        self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str
    ) -> None:
        if smpp_message is not None:
            self.messages.append(smpp_message)
            self.changed.set()

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self.errors.append(error)
        self.changed.set()

    async def wait_for(self, kind: type, count: int = 1) -> list[SmppMessage]:
        async with asyncio.timeout(10):
            while len(found := [m for m in self.messages if isinstance(m, kind)]) < count:
                self.changed.clear()
                await self.changed.wait()
        return found


async def test_aiosmpplib_transceiver_submits_and_gets_receipt_and_mo() -> None:
    sim = SmscSimulator({"minyi": "secret"})
    sim.set_behaviour(id_format="hex", dlr_mode="both")
    await sim.start("127.0.0.1", free_port())
    hook, broker = RecordingHook(), SimpleBroker()
    esme = ESME(
        smsc_host="127.0.0.1",
        smsc_port=sim.port,
        system_id="minyi",
        password="secret",  # aiosmpplib caps passwords at 8 characters (5.2.2)
        broker=broker,
        hook=hook,
        log_level=logging.WARNING,
        enquire_link_interval=30.0,
    )
    runner = asyncio.create_task(esme.start())
    try:
        await broker.enqueue(
            SubmitSm(
                short_message="您对本次服务满意吗？回复1满意",
                source=PhoneNumber("106575"),
                destination=PhoneNumber("13800138000"),
                log_id="survey-1",
            )
        )
        (resp,) = await hook.wait_for(SubmitSmResp)
        assert isinstance(resp, SubmitSmResp) and resp.log_id == "survey-1"
        (record,) = sim.submits
        assert resp.message_id == record.message_id
        assert record.data_coding == 8 and record.text == "您对本次服务满意吗？回复1满意"
        assert (record.source, record.dest, record.registered_delivery) == (
            "106575",
            "13800138000",
            1,
        )

        (receipt,) = await hook.wait_for(DeliverSm)
        assert isinstance(receipt, DeliverSm) and receipt.is_receipt()
        assert receipt.parse_receipt()["id"] == record.dlr_message_id
        assert receipt.log_id == "survey-1"  # aiosmpplib correlated it from the text form

        sim.inject_mo("13800138000", "106575", "1 满意")
        _, mo = await hook.wait_for(DeliverSm, 2)
        assert isinstance(mo, DeliverSm) and not mo.is_receipt()
        assert mo.short_message == "1 满意"
        await sim.wait_until(lambda: sim.stats().get("mo_acked") == 1)
        assert sim.stats()["dlr_acked"] == 1 and sim.stats()["pending_deliveries"] == 0
        assert hook.errors == []
    finally:
        writer = esme._writer  # see below
        await esme.stop()
        runner.cancel()
        try:
            await runner
        except asyncio.CancelledError:
            pass
        # aiosmpplib 0.7.4's stop() half-closes (write_eof) and forgets its writer
        # without closing it, which leaves an unclosed transport behind.
        if writer is not None:
            writer.close()
        await sim.stop()
