"""The sans-IO SMPP 3.4 codec: golden bytes, round trips, streaming, errors, fuzz."""

from __future__ import annotations

import random

import pytest

from sms.smpp.codec import Decoder, Header, Pdu, decode_all, encode
from sms.smpp.constants import (
    MAX_PDU_LENGTH,
    MAX_TLV_VALUE_LENGTH,
    CommandId,
    CommandStatus,
    MessageState,
    Tag,
    status_name,
)
from sms.smpp.errors import LocalProtocolError, RemoteProtocolError
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
    Outbind,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    tlv_cstr,
    tlv_int,
)

# The example PDU printed in section 3.2 of the SMPP 3.4 specification: a
# bind_transmitter for system_id "SMPP3TEST", password "secret08", system_type
# "SUBMIT1", interface_version 0x50, addr_ton 1, addr_npi 1, empty address_range.
SPEC_BIND_TRANSMITTER = bytes.fromhex(
    "0000002F000000020000000000000001534D50503354455354007365637265743038005355424D4954310050010100"
)

# submit_sm laid out field by field from the table in 4.4.1.
GOLDEN_SUBMIT_SM = bytes.fromhex(
    "0000003E"  # command_length 62
    "00000004"  # command_id submit_sm
    "00000000"  # command_status
    "00000005"  # sequence_number
    "00"  # service_type ""
    "0501" + "31303635303000"  # source ton 5, npi 1, "106500"
    "0101" + "3836313338303031333830303000"  # dest ton 1, npi 1, "8613800138000"
    "40"  # esm_class: UDHI
    "00"  # protocol_id
    "01"  # priority_flag
    "00"  # schedule_delivery_time ""
    "00"  # validity_period ""
    "01"  # registered_delivery
    "00"  # replace_if_present_flag
    "08"  # data_coding UCS-2
    "00"  # sm_default_msg_id
    "0A"  # sm_length 10
    "050003A70201" + "6EE1610F"  # UDH (ref 0xA7, part 1 of 2) + "满意" in UCS-2
)


def sample_bodies() -> list[Body]:
    """One of every PDU body the codec knows, with non-default values."""
    sm = dict(
        service_type="CMT",
        source_ton=5,
        source_npi=0,
        source_addr="106575",
        dest_ton=1,
        dest_npi=1,
        dest_addr="8613800138000",
        esm_class=0x40,
        protocol_id=0,
        priority_flag=1,
        schedule_delivery_time="",
        validity_period="000001000000000R",
        registered_delivery=1,
        replace_if_present=0,
        data_coding=8,
        sm_default_msg_id=0,
        short_message=b"\x05\x00\x03\x01\x02\x01" + "您好".encode("utf-16-be"),
        tlvs=((Tag.SAR_MSG_REF_NUM, tlv_int(7, 2)), (0x1401, b"\x00vendor")),
    )
    return [
        BindRequest(BindKind.TRANSMITTER, "minyi", "secret", "VMA", 0x34, 1, 1, "10657"),
        BindRequest(BindKind.RECEIVER, "minyi", "secret"),
        BindRequest(BindKind.TRANSCEIVER, "a" * 15, "p" * 8, "s" * 12, 0x34, 0, 0, "r" * 40),
        BindResp(BindKind.TRANSMITTER, "SMSC"),
        BindResp(BindKind.RECEIVER, "SMSC", ((Tag.SC_INTERFACE_VERSION, b"\x34"),)),
        BindResp(BindKind.TRANSCEIVER, ""),
        Outbind("SMSC", "pw"),
        Unbind(),
        UnbindResp(),
        EnquireLink(),
        EnquireLinkResp(),
        GenericNack(),
        SubmitSm(**sm),  # type: ignore[arg-type]
        SubmitSm(),
        DeliverSm(**sm),  # type: ignore[arg-type]
        DeliverSm(
            esm_class=0x04,
            short_message=b"id:1 sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
            tlvs=(
                (Tag.RECEIPTED_MESSAGE_ID, tlv_cstr("1")),
                (Tag.MESSAGE_STATE, tlv_int(MessageState.DELIVERED, 1)),
            ),
        ),
        SubmitSmResp("0A1B2C3D"),
        SubmitSmResp("x" * 64),
        DeliverSmResp(),
    ]


def test_spec_example_decodes_to_bind_transmitter() -> None:
    (pdu,) = decode_all(SPEC_BIND_TRANSMITTER)
    assert pdu.header == Header(0x2F, CommandId.BIND_TRANSMITTER, 0, 1)
    assert pdu.body == BindRequest(
        BindKind.TRANSMITTER, "SMPP3TEST", "secret08", "SUBMIT1", 0x50, 1, 1
    )


def test_spec_example_encodes_byte_for_byte() -> None:
    body = BindRequest(BindKind.TRANSMITTER, "SMPP3TEST", "secret08", "SUBMIT1", 0x50, 1, 1, "")
    assert encode(body, 1) == SPEC_BIND_TRANSMITTER


def test_golden_submit_sm() -> None:
    (pdu,) = decode_all(GOLDEN_SUBMIT_SM)
    body = pdu.body
    assert isinstance(body, SubmitSm)
    assert (body.source_ton, body.source_addr) == (5, "106500")
    assert (body.dest_ton, body.dest_addr) == (1, "8613800138000")
    assert body.esm_class == 0x40 and body.data_coding == 8 and body.registered_delivery == 1
    assert body.short_message[:6] == bytes.fromhex("050003A70201")
    assert body.short_message[6:].decode("utf-16-be") == "满意"
    assert encode(body, 5) == GOLDEN_SUBMIT_SM


def test_golden_header_only_pdus() -> None:
    assert encode(EnquireLink(), 1) == bytes.fromhex("00000010000000150000000000000001")
    assert encode(GenericNack(), 9, CommandStatus.ESME_RINVCMDID) == bytes.fromhex(
        "00000010800000000000000300000009"
    )
    # 4.4.2: an error submit_sm_resp carries no body even if a message_id was given.
    assert encode(SubmitSmResp("ignored"), 3, CommandStatus.ESME_RTHROTTLED) == bytes.fromhex(
        "00000010800000040000005800000003"
    )


@pytest.mark.parametrize("body", sample_bodies(), ids=lambda b: type(b).__name__)
def test_round_trip(body: Body) -> None:
    is_response = bool(body.command_id & 0x80000000)
    status = 0x0000ABCD if is_response and not isinstance(body, (BindResp, SubmitSmResp)) else 0
    data = encode(body, 0x7FFFFFFF, status)
    (pdu,) = decode_all(data)
    assert pdu == Pdu(Header(len(data), body.command_id, status, 0x7FFFFFFF), body)


def test_whole_then_byte_by_byte_then_trailing() -> None:
    stream = b"".join(encode(body, seq) for seq, body in enumerate(sample_bodies(), start=1))
    expected = decode_all(stream)
    assert [p.body for p in expected] == sample_bodies()

    decoder = Decoder()
    got: list[Pdu] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        while (pdu := decoder.next_pdu()) is not None:
            got.append(pdu)
    assert got == expected and decoder.buffered == 0

    trailing = encode(EnquireLink(), 99)[:11]
    decoder = Decoder()
    decoder.feed(stream + trailing)
    got = []
    while (pdu := decoder.next_pdu()) is not None:
        got.append(pdu)
    assert got == expected
    assert decoder.buffered == len(trailing)
    decoder.feed(encode(EnquireLink(), 99)[11:])
    last = decoder.next_pdu()
    assert last is not None and last.sequence == 99 and decoder.next_pdu() is None


def test_random_chunking_matches_whole_decode() -> None:
    rng = random.Random(3407)
    stream = b"".join(encode(b, i + 1) for i, b in enumerate(sample_bodies() * 20))
    expected = decode_all(stream)
    for _ in range(20):
        decoder, got, pos = Decoder(), [], 0
        while pos < len(stream):
            step = rng.randint(1, 300)
            decoder.feed(stream[pos : pos + step])
            pos += step
            while (pdu := decoder.next_pdu()) is not None:
                got.append(pdu)
        assert got == expected


def test_unknown_status_and_unknown_tlv_are_preserved() -> None:
    body = DeliverSm(short_message=b"x", tlvs=((0xFFFE, b""), (0x1400, b"\x01\x02")))
    (pdu,) = decode_all(encode(DeliverSmResp(), 4, 0x12345678) + encode(body, 5))[:1]
    assert pdu.status == 0x12345678 and status_name(pdu.status) == "0x12345678"
    assert status_name(0x58) == "ESME_RTHROTTLED"
    (pdu,) = decode_all(encode(body, 5))
    assert isinstance(pdu.body, DeliverSm)
    assert pdu.body.tlvs == body.tlvs and pdu.body.tlv(0x1400) == b"\x01\x02"
    assert pdu.body.tlv(Tag.MESSAGE_STATE) is None


def test_error_responses_without_body_decode() -> None:
    header_only = bytes.fromhex("0000001080000009000000" + "0E" + "00000001")
    (pdu,) = decode_all(header_only)
    assert pdu.body == BindResp(BindKind.TRANSCEIVER) and pdu.status == 0x0E
    (pdu,) = decode_all(bytes.fromhex("00000010800000040000001400000002"))
    assert pdu.body == SubmitSmResp() and pdu.status == CommandStatus.ESME_RMSGQFUL


def _with_length(body_hex: str, command_id: int, sequence: int = 42) -> bytes:
    body = bytes.fromhex(body_hex)
    return (
        (16 + len(body)).to_bytes(4, "big")
        + command_id.to_bytes(4, "big")
        + bytes(4)
        + (sequence.to_bytes(4, "big") + body)
    )


SUBMIT_HEAD = "00" + "0000" + "3100" + "0000" + "3200" + "000000" + "00" + "00" + "00000000"

MALFORMED = {
    "unknown command id": (_with_length("", 0x00000077), CommandStatus.ESME_RINVCMDID),
    "unterminated C-string": (_with_length("61626364", CommandId.BIND_TRANSCEIVER), None),
    "bind truncated before address_range": (
        _with_length("6100" + "6200" + "00" + "340000", CommandId.BIND_TRANSMITTER),
        None,
    ),
    "sm_length overruns": (_with_length(SUBMIT_HEAD + "05" + "6869", CommandId.SUBMIT_SM), None),
    "TLV header truncated": (
        _with_length(SUBMIT_HEAD + "00" + "0424", CommandId.SUBMIT_SM),
        CommandStatus.ESME_RINVOPTPARSTREAM,
    ),
    "TLV value overruns": (
        _with_length(SUBMIT_HEAD + "00" + "04240010" + "41", CommandId.DELIVER_SM),
        CommandStatus.ESME_RINVOPTPARSTREAM,
    ),
    "body on enquire_link": (
        _with_length("00", CommandId.ENQUIRE_LINK),
        CommandStatus.ESME_RINVCMDLEN,
    ),
    "trailing octets after message_id": (
        _with_length("3100FF", CommandId.SUBMIT_SM_RESP),
        CommandStatus.ESME_RINVCMDLEN,
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_pdu_is_skipped_and_decoder_carries_on(case: str) -> None:
    data, status = MALFORMED[case]
    decoder = Decoder()
    decoder.feed(data + encode(EnquireLink(), 43))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert not info.value.fatal
    assert info.value.sequence == 42
    assert info.value.command_id == int.from_bytes(data[4:8], "big")
    if status is not None:
        assert info.value.status == status
    pdu = decoder.next_pdu()
    assert pdu is not None and pdu.body == EnquireLink() and pdu.sequence == 43


@pytest.mark.parametrize("length", [0, 15, MAX_PDU_LENGTH + 1, 0xFFFFFFFF])
def test_insane_length_is_fatal_and_stays_fatal(length: int) -> None:
    decoder = Decoder()
    decoder.feed(length.to_bytes(4, "big") + bytes.fromhex("000000150000000000000007"))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert info.value.fatal and info.value.status == CommandStatus.ESME_RINVCMDLEN
    assert info.value.sequence == 7
    decoder.feed(encode(EnquireLink(), 8))
    with pytest.raises(RemoteProtocolError):
        decoder.next_pdu()


def test_largest_message_payload_fits_the_pdu_limit() -> None:
    # 5.3.2.32: message_payload may hold 65,535 octets; with the header, the mandatory
    # fields at their longest and the SAR TLVs the PDU must still be within the limit.
    body = SubmitSm(
        service_type="CMT",
        source_addr="1" * 20,
        dest_addr="2" * 20,
        schedule_delivery_time="0" * 16,
        validity_period="0" * 16,
        tlvs=(
            (Tag.MESSAGE_PAYLOAD, b"x" * MAX_TLV_VALUE_LENGTH),
            (Tag.SAR_MSG_REF_NUM, tlv_int(7, 2)),
            (Tag.SAR_TOTAL_SEGMENTS, tlv_int(1, 1)),
            (Tag.SAR_SEGMENT_SEQNUM, tlv_int(1, 1)),
        ),
    )
    data = encode(body, 1)
    assert len(data) <= MAX_PDU_LENGTH
    decoder = Decoder()
    for i in range(0, len(data), 4096):  # arrives in pieces, as from a socket
        decoder.feed(data[i : i + 4096])
    pdu = decoder.next_pdu()
    assert pdu is not None and pdu.body == body and decoder.buffered == 0


def test_length_at_the_limit_is_not_fatal() -> None:
    decoder = Decoder()
    decoder.feed(MAX_PDU_LENGTH.to_bytes(4, "big") + bytes.fromhex("000000040000000000000007"))
    assert decoder.next_pdu() is None  # waits for the rest of the PDU


def test_partial_header_needs_more_data() -> None:
    decoder = Decoder()
    decoder.feed(b"\x00\x00\x00")
    assert decoder.next_pdu() is None and decoder.buffered == 3


@pytest.mark.parametrize(
    ("body", "sequence", "status"),
    [
        (BindRequest(BindKind.TRANSMITTER, "a" * 16, "pw"), 1, 0),  # 5.2.1: 15 octets + NUL
        (BindRequest(BindKind.TRANSMITTER, "minyi", "123456789"), 1, 0),  # 5.2.2: 8 + NUL
        (BindRequest(BindKind.TRANSMITTER, "民意", "pw"), 1, 0),  # not latin-1
        (BindRequest(BindKind.TRANSMITTER, "a\0b", "pw"), 1, 0),
        (SubmitSm(dest_addr="1" * 21), 1, 0),  # 5.2.9: 20 + NUL
        (SubmitSm(short_message=b"x" * 255), 1, 0),  # 5.2.21
        (SubmitSm(esm_class=256), 1, 0),
        (SubmitSm(tlvs=((0x10000, b""),)), 1, 0),
        (SubmitSmResp("m" * 65), 1, 0),  # 5.2.23: 64 + NUL
        (EnquireLink(), 1, CommandStatus.ESME_RSYSERR),  # requests carry no status
        (EnquireLink(), 0x80000000, 0),
        (EnquireLink(), -1, 0),
        (EnquireLinkResp(), 1, 1 << 32),
        # over MAX_PDU_LENGTH, though each TLV alone is legal
        (
            SubmitSm(tlvs=((Tag.MESSAGE_PAYLOAD, b"x" * 0xFFFF), (Tag.CALLBACK_NUM, b"1" * 1024))),
            1,
            0,
        ),
    ],
)
def test_local_protocol_errors(body: Body, sequence: int, status: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode(body, sequence, status)


def test_generic_nack_may_echo_any_sequence() -> None:
    (pdu,) = decode_all(encode(GenericNack(), 0xFFFFFFFF, CommandStatus.ESME_RINVCMDLEN))
    assert pdu.sequence == 0xFFFFFFFF


def _drain(data: bytes) -> list[Pdu]:
    """Decode everything decodable; only RemoteProtocolError may escape a step."""
    decoder = Decoder()
    decoder.feed(data)
    got = []
    while True:
        try:
            pdu = decoder.next_pdu()
        except RemoteProtocolError as exc:
            if exc.fatal:
                return got
            continue
        if pdu is None:
            return got
        got.append(pdu)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[i] = rng.randrange(256)
        elif op == 1 and buf:
            del buf[i : i + rng.randint(1, 8)]
        elif op == 2:
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and len(buf) >= 16:
            # Keep the length sane but wrong, to reach the body parsers.
            start = rng.randrange(0, len(buf) - 15)
            buf[start : start + 4] = rng.randint(16, 300).to_bytes(4, "big")
        elif op == 4 and buf:
            buf = buf[: rng.randrange(len(buf))]
    return bytes(buf)


def test_fuzz_parses_or_raises_remote_protocol_error() -> None:
    rng = random.Random(20240601)
    valid = [encode(b, i + 1) for i, b in enumerate(sample_bodies())]
    decoded = 0
    for i in range(4000):
        if i % 4 == 0:
            sample = rng.randbytes(rng.randint(0, 200))
            # Give random bodies a plausible header so they reach the parsers.
            if i % 8 == 0 and len(sample) >= 16:
                sample = (
                    len(sample).to_bytes(4, "big")
                    + rng.choice([b"\x00\x00\x00\x04", b"\x00\x00\x00\x05", b"\x00\x00\x00\x09"])
                    + sample[8:]
                )
        else:
            sample = _mutate(rng, b"".join(rng.sample(valid, rng.randint(1, 3))))
        for pdu in _drain(sample):
            decoded += 1
            # Whatever decodes and is encodable must survive a second round trip
            # (except error responses, whose body 4.1.2 / 4.4.2 tell us to drop).
            if pdu.status and isinstance(pdu.body, (BindResp, SubmitSmResp)):
                continue
            try:
                again = encode(pdu.body, pdu.sequence, pdu.status)
            except LocalProtocolError:
                continue
            assert decode_all(again)[0].body == pdu.body
    assert decoded > 1000  # the mutations must leave plenty of valid PDUs to check
