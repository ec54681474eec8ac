"""The SMSC simulator on a loopback port, driven by a raw SMPP client on sms.smpp.codec.

Every wait below is bounded only to stop a hang; no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from devstack.localstack import free_port
from sms.smpp.codec import Decoder, Pdu, encode
from sms.smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
)
from sms.smpp.pdu import (
    BindKind,
    BindRequest,
    BindResp,
    Body,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    tlv_int,
)
from smsc.messages import parse_udh
from smsc.rules import OutcomeRule, RejectRule
from smsc.simulator import SmscSimulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HANG = 10.0  # seconds; only to turn a hang into a failure
GATEWAY = "106575"
CITIZEN = "13800138000"


class RawEsme:
    """A bare SMPP client: send PDUs, read PDUs in arrival order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = Decoder()
        self.sequence = 0

    @classmethod
    async def connect(cls, port: int) -> RawEsme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, body: Body, sequence: int | None = None, status: int = 0) -> int:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        self.writer.write(encode(body, sequence, status))
        return sequence

    async def read(self) -> Pdu:
        async with asyncio.timeout(HANG):
            while (pdu := self.decoder.next_pdu()) is None:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    raise EOFError("connection closed by the SMSC")
                self.decoder.feed(data)
        return pdu

    async def bind(self, password: str = "secret", kind: BindKind = BindKind.TRANSCEIVER) -> Pdu:
        self.send(BindRequest(kind, "minyi", password))
        return await self.read()

    async def at_eof(self) -> bool:
        """True once the SMSC closed the connection (after reading what it sent)."""
        try:
            while True:
                await self.read()
        except EOFError:
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def submit(dest: str = CITIZEN, text: str = "您好", **fields: object) -> SubmitSm:
    values: dict[str, object] = dict(
        source_addr=GATEWAY,
        dest_addr=dest,
        data_coding=8,
        registered_delivery=1,
        short_message=text.encode("utf-16-be"),
    )
    values.update(fields)
    return SubmitSm(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[SmscSimulator]:
    simulator = SmscSimulator({"minyi": "secret", "other": "pw"})
    await simulator.start("127.0.0.1", free_port())
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def esme(sim: SmscSimulator) -> AsyncIterator[RawEsme]:
    client = await RawEsme.connect(sim.port)
    try:
        yield client
    finally:
        await client.close()


async def test_bind_checks_accounts_and_session_state(sim: SmscSimulator, esme: RawEsme) -> None:
    esme.send(submit())
    assert (await esme.read()).status == CommandStatus.ESME_RINVBNDSTS

    bad = await esme.bind(password="wrong")
    assert bad.status == CommandStatus.ESME_RINVPASWD
    esme.send(BindRequest(BindKind.TRANSMITTER, "nobody", "secret"))
    assert (await esme.read()).status == CommandStatus.ESME_RINVSYSID

    ok = await esme.bind()
    assert ok.status == 0 and ok.body == BindResp(
        BindKind.TRANSCEIVER, "MINYISIM", ((Tag.SC_INTERFACE_VERSION, b"\x34"),)
    )
    assert (await esme.bind()).status == CommandStatus.ESME_RALYBND
    assert sim.stats()["bind_failed"] == 3
    (bind,) = sim.binds()
    assert bind["system_id"] == "minyi" and bind["kind"] == "transceiver"

    receiver = await RawEsme.connect(sim.port)
    try:
        assert (await receiver.bind(kind=BindKind.RECEIVER)).status == 0
        receiver.send(submit())
        assert (await receiver.read()).status == CommandStatus.ESME_RINVBNDSTS
    finally:
        await receiver.close()

    seq = esme.send(EnquireLink())
    reply = await esme.read()
    assert reply.body == EnquireLinkResp() and reply.sequence == seq
    esme.send(Unbind())
    assert (await esme.read()).body == UnbindResp()
    assert await esme.at_eof()


async def test_submit_gets_resp_then_receipt_with_text_and_tlvs(
    sim: SmscSimulator, esme: RawEsme
) -> None:
    # Real SMSCs answer in one style and receipt in another: hex here, decimal there.
    sim.set_behaviour(
        id_format="hex", id_upper=True, id_width=8, dlr_id_format="dec", dlr_id_width=0
    )
    sim.next_message_number = 0x2A3B
    await esme.bind()
    seq = esme.send(submit(text="【公安】请评价"))
    resp = await esme.read()
    assert resp.sequence == seq and resp.status == 0
    assert resp.body == SubmitSmResp("00002A3B")

    dlr = await esme.read()
    body = dlr.body
    assert isinstance(body, DeliverSm) and dlr.header.command_id == CommandId.DELIVER_SM
    assert body.esm_class == ESM_CLASS_DELIVERY_RECEIPT
    assert (body.source_addr, body.dest_addr) == (CITIZEN, GATEWAY)
    text = body.short_message.decode("ascii")
    assert text.startswith(f"id:{0x2A3B} sub:001 dlvrd:001 submit date:")
    assert " stat:DELIVRD err:000 text:" in text
    assert body.tlv(Tag.RECEIPTED_MESSAGE_ID) == str(0x2A3B).encode() + b"\0"
    assert body.tlv(Tag.MESSAGE_STATE) == bytes((MessageState.DELIVERED,))
    esme.send(DeliverSmResp(), dlr.sequence)

    await sim.wait_until(lambda: sim.stats().get("dlr_acked") == 1)
    (record,) = sim.submits
    assert record.text == "【公安】请评价" and record.data_coding == 8
    assert record.message_id == "00002A3B" and record.dlr_message_id == str(0x2A3B)
    assert record.udh is None and record.part is None and not record.duplicate
    assert sim.deliveries[0].acked_at is not None and sim.stats()["pending_deliveries"] == 0


async def test_receipt_text_only_tlv_only_and_uuid_ids(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    sim.set_behaviour(dlr_mode="text", id_format="uuid")
    esme.send(submit())
    resp, dlr = await esme.read(), await esme.read()
    assert isinstance(resp.body, SubmitSmResp) and len(resp.body.message_id) == 36
    assert isinstance(dlr.body, DeliverSm) and dlr.body.tlvs == ()
    assert dlr.body.short_message.startswith(f"id:{resp.body.message_id} ".encode())
    esme.send(DeliverSmResp(), dlr.sequence)

    sim.set_behaviour(dlr_mode="tlv", id_format="dec")
    esme.send(submit(dest="13900139000"))
    resp, dlr = await esme.read(), await esme.read()
    assert isinstance(resp.body, SubmitSmResp) and isinstance(dlr.body, DeliverSm)
    assert dlr.body.short_message == b""
    assert dlr.body.tlv(Tag.RECEIPTED_MESSAGE_ID) == resp.body.message_id.encode() + b"\0"
    esme.send(DeliverSmResp(), dlr.sequence)


async def test_receipt_before_resp_mode(sim: SmscSimulator, esme: RawEsme) -> None:
    sim.set_behaviour(dlr_before_resp=True)
    await esme.bind()
    seq = esme.send(submit())
    first, second = await esme.read(), await esme.read()
    assert isinstance(first.body, DeliverSm) and first.body.esm_class == ESM_CLASS_DELIVERY_RECEIPT
    assert isinstance(second.body, SubmitSmResp) and second.sequence == seq
    assert first.body.tlv(Tag.RECEIPTED_MESSAGE_ID) == second.body.message_id.encode() + b"\0"
    esme.send(DeliverSmResp(), first.sequence)


async def test_receipt_goes_to_a_receiver_of_the_same_system_id(sim: SmscSimulator) -> None:
    tx, rx = await RawEsme.connect(sim.port), await RawEsme.connect(sim.port)
    try:
        assert (await tx.bind(kind=BindKind.TRANSMITTER)).status == 0
        assert (await rx.bind(kind=BindKind.RECEIVER)).status == 0
        tx.send(submit())
        assert (await tx.read()).status == 0
        dlr = await rx.read()
        assert isinstance(dlr.body, DeliverSm) and dlr.body.esm_class == ESM_CLASS_DELIVERY_RECEIPT
        rx.send(DeliverSmResp(), dlr.sequence)
    finally:
        await tx.close()
        await rx.close()


async def test_outcome_and_reject_rules(sim: SmscSimulator, esme: RawEsme) -> None:
    sim.set_behaviour(
        outcomes=[
            {"pattern": "0$", "stat": "UNDELIV", "err": 13},
            {"pattern": "9$", "dlr": False},
            OutcomeRule(pattern="7$", lose_parts=(2,)),
        ],
        rejects=[
            RejectRule(pattern="^999"),
            {"pattern": "^10650000$", "field": "source", "status": 0x45},
        ],
    )
    await esme.bind()
    esme.send(submit(dest="99912345678"))
    assert (await esme.read()).status == CommandStatus.ESME_RINVDSTADR
    esme.send(submit(source_addr="10650000"))
    assert (await esme.read()).status == CommandStatus.ESME_RSUBMITFAIL

    esme.send(submit(dest="13800000009"))  # accepted, but never a receipt
    for seq in (1, 2):  # a two-part message whose second receipt is lost
        udh = bytes((5, 0, 3, 0x42, 2, seq))
        esme.send(submit(dest="13800000007", esm_class=ESM_CLASS_UDHI, short_message=udh + b"\0a"))
    esme.send(submit(dest="13800000010"))  # undeliverable, submitted last
    # Receipts leave in submit order, so every receipt that was due before the last
    # one has arrived by the time the last one does: the others provably never came.
    answers: list[Pdu] = []
    receipts: list[DeliverSm] = []
    while not receipts or receipts[-1].source_addr != "13800000010":
        pdu = await esme.read()
        if isinstance(pdu.body, DeliverSm):
            receipts.append(pdu.body)
            esme.send(DeliverSmResp(), pdu.sequence)
        else:
            answers.append(pdu)
    assert [p.status for p in answers] == [0, 0, 0, 0]
    part1, failed = receipts
    parts = [r for r in sim.submits if r.dest == "13800000007"]
    assert [r.part for r in parts] == [(0x42, 2, 1), (0x42, 2, 2)]
    assert part1.tlv(Tag.RECEIPTED_MESSAGE_ID) == parts[0].message_id.encode() + b"\0"
    assert b"stat:UNDELIV err:013" in failed.short_message
    assert failed.tlv(Tag.MESSAGE_STATE) == bytes((MessageState.UNDELIVERABLE,))
    assert failed.tlv(Tag.NETWORK_ERROR_CODE) == b"\x03\x00\x0d"
    assert [d.kind for d in sim.deliveries] == ["dlr", "dlr"]
    assert [r.status for r in sim.submits] == [0x0B, 0x45, 0, 0, 0, 0]


async def test_throttling_queue_full_and_window() -> None:
    now = [1000.0]  # a frozen clock: the TPS limit is checked without any timing
    sim = SmscSimulator({"minyi": "secret"}, clock=lambda: now[0])
    await sim.start("127.0.0.1", free_port())
    esme = await RawEsme.connect(sim.port)
    try:
        await _throttling(sim, esme, now)
    finally:
        await esme.close()
        await sim.stop()


async def _throttling(sim: SmscSimulator, esme: RawEsme, now: list[float]) -> None:
    await esme.bind()
    sim.set_behaviour(max_tps=5.0)
    for _ in range(8):
        esme.send(submit(registered_delivery=0))
    statuses = [(await esme.read()).status for _ in range(8)]
    # The bucket holds one second of tokens.
    assert statuses == [0] * 5 + [CommandStatus.ESME_RTHROTTLED] * 3
    now[0] += 0.5  # two and a half tokens come back
    for _ in range(3):
        esme.send(submit(registered_delivery=0))
    statuses = [(await esme.read()).status for _ in range(3)]
    assert statuses == [0, 0, CommandStatus.ESME_RTHROTTLED]

    sim.set_behaviour(max_tps=None, throttle_for=3600)
    esme.send(submit(registered_delivery=0))
    assert (await esme.read()).status == CommandStatus.ESME_RTHROTTLED
    sim.set_behaviour(throttle_for=0, queue_full=True)
    esme.send(submit(registered_delivery=0))
    assert (await esme.read()).status == CommandStatus.ESME_RMSGQFUL

    # With answers that take a minute, more than `window` unanswered submits overflow
    # the queue. The verdicts are read from the records: the answers never come here.
    sim.set_behaviour(queue_full=False, window=2, response_delay=60)
    for _ in range(4):
        esme.send(submit(registered_delivery=0))
    await sim.wait_until(lambda: len(sim.submits) == 8 + 3 + 2 + 4)
    full = CommandStatus.ESME_RMSGQFUL
    assert [r.status for r in sim.submits[-4:]] == [0, 0, full, full]
    assert sim.stats()["throttled"] == 5 and sim.stats()["queue_full"] == 3


async def test_drop_mid_batch(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    sim.drop_connections(after=3)
    # One write, so the SMSC reads the whole batch before it hangs up mid-way.
    esme.writer.write(b"".join(encode(submit(registered_delivery=0), n) for n in range(2, 12)))
    answered = []
    with pytest.raises(EOFError):
        while True:
            answered.append(await esme.read())
    assert [p.status for p in answered] == [0, 0, 0]
    assert len(sim.submits) == 3 and sim.stats()["lost_in_drop"] == 1
    await sim.wait_until(lambda: not sim.sessions)

    again = await RawEsme.connect(sim.port)
    try:
        assert (await again.bind()).status == 0
        again.send(submit(registered_delivery=0))
        assert (await again.read()).status == 0
    finally:
        await again.close()


async def test_a_hard_drop_resets_and_a_soft_one_closes(sim: SmscSimulator) -> None:
    # hard: an RST, as a crashed SMS center or a firewall sends; the ESME's read fails
    # at once (and so would its next write). Soft: FIN after the answers, read as EOF.
    for hard in (True, False):
        esme = await RawEsme.connect(sim.port)
        try:
            assert (await esme.bind()).status == 0
            assert sim.drop_connections(hard=hard) == 1
            if hard:
                with pytest.raises(ConnectionResetError):
                    await esme.reader.read(65536)
            else:
                assert await esme.reader.read(65536) == b""
        finally:
            esme.writer.close()
        await sim.wait_until(lambda: not sim.sessions)


async def test_duplicates_are_counted(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    for dest in (CITIZEN, CITIZEN, "13900139000"):
        esme.send(submit(dest=dest, registered_delivery=0))
        assert (await esme.read()).status == 0
    assert [r.duplicate for r in sim.submits] == [False, True, False]
    assert sim.stats()["duplicates"] == 1


async def test_half_open_reads_but_never_answers(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    sim.set_behaviour(half_open=True)
    esme.send(EnquireLink())
    esme.send(submit())
    await sim.wait_until(lambda: sim.stats().get("ignored_half_open") == 2)
    sim.set_behaviour(half_open=False)
    seq = esme.send(EnquireLink())
    reply = await esme.read()  # the first answer on the wire is for the last request
    assert reply.sequence == seq and reply.body == EnquireLinkResp()
    assert sim.submits == []


async def test_malformed_pdus_get_generic_nack_and_connection_survives(
    sim: SmscSimulator, esme: RawEsme
) -> None:
    await esme.bind()
    esme.writer.write(bytes.fromhex("00000010 00000077 00000000 00000021"))
    nack = await esme.read()
    assert nack.body == GenericNack() and nack.sequence == 0x21
    assert nack.status == CommandStatus.ESME_RINVCMDID

    truncated = encode(submit(), 0x22)[:30]
    esme.writer.write(len(truncated).to_bytes(4, "big") + truncated[4:])
    nack = await esme.read()
    assert nack.body == GenericNack() and nack.sequence == 0x22

    esme.send(DeliverSm(), 0x23)  # an SMSC-only operation from an ESME
    nack = await esme.read()
    assert nack.body == GenericNack() and nack.status == CommandStatus.ESME_RINVCMDID

    esme.send(submit(registered_delivery=0))
    assert (await esme.read()).body == SubmitSmResp("1")
    assert sim.stats()["malformed"] == 2

    # An insane length loses the framing: nack, then the SMSC hangs up.
    esme.writer.write(bytes.fromhex("00FFFFFF 00000004 00000000 00000030"))
    nack = await esme.read()
    assert nack.status == CommandStatus.ESME_RINVCMDLEN and nack.sequence == 0x30
    assert await esme.at_eof()


def _reassemble(parts: list[DeliverSm], codec: str) -> str:
    by_seq: dict[int, bytes] = {}
    for part in parts:
        if part.esm_class & ESM_CLASS_UDHI:
            parsed = parse_udh(part.short_message)
            assert parsed is not None and parsed[2] is not None
            _, payload, (_, _, seq) = parsed
        elif part.tlv(Tag.SAR_SEGMENT_SEQNUM) is not None:
            seq, payload = part.tlv(Tag.SAR_SEGMENT_SEQNUM)[0], part.short_message  # type: ignore[index]
        else:
            seq, payload = 1, part.short_message or part.tlv(Tag.MESSAGE_PAYLOAD) or b""
        by_seq[seq] = payload
    return b"".join(by_seq[k] for k in sorted(by_seq)).decode(codec)


@pytest.mark.parametrize(
    ("encoding", "split", "codec", "data_coding", "parts", "text"),
    [
        ("ucs2", "udh8", "utf-16-be", 8, 3, "您对本次110接警服务是否满意？回复1满意" * 8),
        ("ucs2", "udh16", "utf-16-be", 8, 2, "不满意，出警太慢了😡" * 8),
        ("gbk", "sar", "gbk", 15, 2, "民警态度很好，非常满意" * 10),
        ("ascii", "udh8", "ascii", 0, 2, "TD " * 60),
        ("ucs2", "payload", "utf-16-be", 8, 1, "三" * 200),
        ("ucs2", "udh8", "utf-16-be", 8, 1, "1"),
    ],
)
async def test_mo_injection_and_concatenation(
    sim: SmscSimulator,
    esme: RawEsme,
    encoding: str,
    split: str,
    codec: str,
    data_coding: int,
    parts: int,
    text: str,
) -> None:
    await esme.bind(kind=BindKind.TRANSCEIVER)
    ids = sim.inject_mo(CITIZEN, GATEWAY + "0012", text, encoding=encoding, split=split)  # type: ignore[arg-type]
    assert len(ids) == parts
    received = []
    for _ in range(parts):
        pdu = await esme.read()
        assert isinstance(pdu.body, DeliverSm)
        received.append(pdu.body)
        esme.send(DeliverSmResp(), pdu.sequence)
    for body in received:
        assert (body.source_addr, body.dest_addr) == (CITIZEN, GATEWAY + "0012")
        assert body.data_coding == data_coding and not body.esm_class & ESM_CLASS_DELIVERY_RECEIPT
        assert len(body.short_message) <= 160
    if split == "udh16" and parts > 1:
        assert received[0].short_message[:3] == b"\x06\x08\x04"
    if split == "sar":
        assert {b.tlv(Tag.SAR_TOTAL_SEGMENTS) for b in received} == {tlv_int(parts, 1)}
    assert _reassemble(received, codec) == text
    await sim.wait_until(lambda: sim.stats().get("mo_acked") == parts)


async def test_mo_parts_out_of_order(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    sim.inject_mo(CITIZEN, GATEWAY, "慢" * 150, reverse=True)
    seqs = []
    for _ in range(3):
        pdu = await esme.read()
        assert isinstance(pdu.body, DeliverSm)
        seqs.append(pdu.body.short_message[5])
        esme.send(DeliverSmResp(), pdu.sequence)
    assert seqs == [3, 2, 1]


async def test_deliver_sm_is_stored_until_acknowledged(sim: SmscSimulator) -> None:
    sim.set_behaviour(deliver_timeout=0.2)
    first = await RawEsme.connect(sim.port)
    try:
        # Queued while nobody is bound: stored, then sent on bind.
        (mo_id,) = sim.inject_mo(CITIZEN, GATEWAY, "3 不满意", system_id="minyi")
        assert (await first.bind(kind=BindKind.RECEIVER)).status == 0
        original = await first.read()
        # Unanswered: the SMSC sends it again on the same connection after the timeout.
        again = await first.read()
        assert again.body == original.body and again.sequence != original.sequence
        # A temporary refusal is retried too.
        first.send(DeliverSmResp(), again.sequence, CommandStatus.ESME_RX_T_APPN)
        third = await first.read()
        assert third.body == original.body
    finally:
        await first.close()  # the connection drops with the MO still unacknowledged

    second = await RawEsme.connect(sim.port)
    try:
        assert (await second.bind(kind=BindKind.TRANSCEIVER)).status == 0
        redelivered = await second.read()
        assert redelivered.body == original.body
        second.send(DeliverSmResp(), redelivered.sequence)
        delivery = sim.deliveries[mo_id]
        await sim.wait_until(lambda: delivery.acked_at is not None)
        assert delivery.attempts >= 4 and sim.stats()["pending_deliveries"] == 0
        assert sim.stats()["mo_acked"] == 1
    finally:
        await second.close()


async def test_permanent_refusal_is_not_retried(sim: SmscSimulator, esme: RawEsme) -> None:
    await esme.bind()
    refused = sim.inject_mo(CITIZEN, GATEWAY, "x", system_id="minyi")
    kept = sim.inject_mo(CITIZEN, GATEWAY, "y", system_id="minyi")
    first = await esme.read()
    esme.send(DeliverSmResp(), first.sequence, CommandStatus.ESME_RX_P_APPN)
    second = await esme.read()
    esme.send(DeliverSmResp(), second.sequence)
    await sim.wait_until(lambda: sim.stats().get("mo_acked") == 1)
    assert sim.deliveries[refused[0]].failed and sim.deliveries[kept[0]].acked_at is not None
    assert sim.stats()["pending_deliveries"] == 0


async def test_auto_reply_from_citizens(sim: SmscSimulator, esme: RawEsme) -> None:
    sim.set_behaviour(
        auto_reply={"by_suffix": {"1": "1", "23": "3 出警太慢"}, "default": None, "delay": 0}
    )
    await esme.bind()
    for dest in ("13800000001", "13800000002", "13800000123"):
        esme.send(submit(dest=dest, registered_delivery=0))
    replies, answered = {}, 0
    while answered < 3 or len(replies) < 2:  # answers and replies interleave
        pdu = await esme.read()
        if isinstance(pdu.body, SubmitSmResp):
            answered += 1
            continue
        assert isinstance(pdu.body, DeliverSm) and pdu.body.esm_class == 0
        replies[pdu.body.source_addr] = pdu.body.short_message.decode("utf-16-be")
        assert pdu.body.dest_addr == GATEWAY
        esme.send(DeliverSmResp(), pdu.sequence)
    assert replies == {"13800000001": "1", "13800000123": "3 出警太慢"}
    assert [d.citizen for d in sim.deliveries] == ["13800000001", "13800000123"]


async def test_http_control_api() -> None:
    sim = SmscSimulator({"minyi": "secret"})
    await sim.start("127.0.0.1", free_port(), control_port=free_port())
    base = f"http://127.0.0.1:{sim.control_port}"
    esme = await RawEsme.connect(sim.port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/behaviour", json={"id_format": "dec", "id_width": 6}
            ) as r:
                assert r.status == 200 and (await r.json())["id_width"] == 6
            async with http.post(f"{base}/behaviour", json={"no_such_knob": 1}) as r:
                assert r.status == 400
            async with http.post(f"{base}/behaviour", json={"window": "ten"}) as r:
                assert r.status == 400
            async with http.post(f"{base}/behaviour", data=b"{not json") as r:
                assert r.status == 400

            await esme.bind()
            esme.send(submit(registered_delivery=0))
            assert (await esme.read()).body == SubmitSmResp("000001")

            async with http.get(f"{base}/submits", params={"since": "0"}) as r:
                page = await r.json()
            assert page["next"] == 1 and page["submits"][0]["text"] == "您好"
            async with http.get(f"{base}/submits", params={"since": "1"}) as r:
                assert (await r.json())["submits"] == []

            mo = {"source": CITIZEN, "dest": GATEWAY, "text": "1", "encoding": "gbk"}
            async with http.post(f"{base}/mo", json=mo) as r:
                assert (await r.json()) == {"deliveries": [0]}
            async with http.post(f"{base}/mo", json={"source": CITIZEN}) as r:
                assert r.status == 400
            pdu = await esme.read()
            assert isinstance(pdu.body, DeliverSm) and pdu.body.data_coding == 15
            esme.send(DeliverSmResp(), pdu.sequence)
            await sim.wait_until(lambda: sim.stats().get("mo_acked") == 1)

            async with http.get(f"{base}/stats") as r:
                stats = await r.json()
            assert stats["accepted"] == 1 and stats["binds"][0]["system_id"] == "minyi"
            async with http.get(f"{base}/deliveries") as r:
                assert (await r.json())["deliveries"][0]["acked_at"] is not None

            async with http.post(f"{base}/drop", json={}) as r:
                assert (await r.json())["dropped"] == 1
            assert await esme.at_eof()
    finally:
        await esme.close()
        await sim.stop()


async def test_command_line_entry_point_serves_until_terminated() -> None:
    port, control = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsc",
        "--port",
        str(port),
        "--control-port",
        str(control),
        "--account",
        "minyi:secret",
        "--dlr-id-format",
        "dec",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(HANG):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("smsc simulator ready") and f":{port}" in line
        esme = await RawEsme.connect(port)
        try:
            assert (await esme.bind()).status == 0
        finally:
            await esme.close()
    finally:
        proc.terminate()
        async with asyncio.timeout(HANG):
            assert await proc.wait() == 0
