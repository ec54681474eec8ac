"""The sans-IO CMPP codec: every message both ways in 2.0 and 3.0 sizes, decoded whole,
byte by byte and with trailing bytes, and fuzzed: it parses, or raises the remote
error, nothing else."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime

import pytest

from sms.cmpp.codec import Decoder, MalformedMessage, decode_all, decode_message, encode
from sms.cmpp.constants import (
    HEADER_LENGTH,
    MAX_PDU_LENGTH,
    REPORT_SIZE,
    CommandId,
    MsgFmt,
    Version,
    result_name,
)
from sms.cmpp.pdu import (
    ActiveTest,
    ActiveTestResp,
    Body,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    LocalCmppError,
    MsgId,
    RemoteCmppError,
    StatusReport,
    Submit,
    SubmitResp,
    Terminate,
    TerminateResp,
    authenticator_ismg,
    authenticator_source,
    parse_report,
    timestamp,
)

V2, V3 = Version.V20, Version.V30
BOTH = pytest.mark.parametrize("version", [V2, V3], ids=["cmpp2", "cmpp3"])
UCS2 = "您好，请评价".encode("utf-16-be")


def bodies(version: Version) -> list[Body]:
    """One of every message, with values in every field."""
    return [
        Connect("901234", bytes(range(16)), version, 1123100503),
        ConnectResp(0, bytes(range(16, 32)), version),
        Terminate(),
        TerminateResp(),
        ActiveTest(),
        ActiveTestResp(0),
        Submit(
            pk_total=2,
            pk_number=1,
            service_id="MJS0010",
            fee_user_type=2,
            fee_terminal_type=0 if version is V2 else 1,
            tp_udhi=1,
            msg_fmt=MsgFmt.UCS2,
            msg_src="901234",
            fee_type="01",
            fee_code="000000",
            valid_time="",
            src_id="1065730001123",
            dest_terminal_ids=("13800138000", "13900139000"),
            content=bytes([5, 0, 3, 7, 2, 1]) + UCS2,
            link_id="" if version is V2 else "LINK1",
        ),
        SubmitResp(MsgId.build(datetime(2026, 11, 23, 10, 5, 3), 1234, 42).value, 0),
        SubmitResp(0, 8),
        Deliver(
            msg_id=99,
            dest_id="1065730001123",
            service_id="MJS0010",
            tp_udhi=0,
            msg_fmt=MsgFmt.GB,
            src_terminal_id="8613800138000",
            content="不满意".encode("gbk"),
        ),
        Deliver(
            msg_id=100,
            dest_id="1065730001",
            src_terminal_id="13800138000",
            registered_delivery=1,
            content=StatusReport(5, "DELIVRD", "2611231005", "2611231006", "13800138000", 7).pack(
                version
            ),
        ),
        DeliverResp(99, 0),
    ]


@BOTH
def test_every_message_round_trips(version: Version) -> None:
    for body in bodies(version):
        data = encode(body, 7, version)
        [pdu] = decode_all(data, version)
        assert pdu.body == body and pdu.sequence == 7 and pdu.raw == data
        assert pdu.header.length == len(data) and pdu.header.command_id == body.command_id


@pytest.mark.parametrize(
    ("body", "v2", "v3"),
    [
        (Connect("901234", bytes(16), 0x20, 0), 39, 39),  # 7.4.1.1
        (ConnectResp(0), 30, 33),  # 7.4.1.2: Status of 1 / 4 octets
        (SubmitResp(1, 0), 21, 24),  # 7.4.3.2
        (DeliverResp(1, 0), 21, 24),  # 7.4.5.2
        (ActiveTestResp(), 13, 13),  # 7.4.7.2
        (Terminate(), 12, 12),
        (
            Submit(dest_terminal_ids=("1",), content=b"ab"),
            12 + 117 + 21 + 1 + 2 + 8,
            12 + 129 + 32 + 2 + 2 + 20,
        ),
        (Deliver(msg_id=1, dest_id="1", content=b"abc"), 12 + 65 + 3 + 8, 12 + 77 + 3 + 20),
    ],
)
def test_sizes_are_the_specs(body: Body, v2: int, v3: int) -> None:
    assert len(encode(body, 1, V2)) == v2
    assert len(encode(body, 1, V3)) == v3


def test_status_report_layouts_and_both_are_read() -> None:
    report = StatusReport(12345, "UNDELIV", "2611231005", "2611231006", "13800138000", 9)
    assert [len(report.pack(v)) for v in (V2, V3)] == [60, 71] == [REPORT_SIZE[V2], REPORT_SIZE[V3]]
    for version in (V2, V3):  # 3.0 gateways that send 2.0's 60 octets exist (gocmpp does)
        assert parse_report(report.pack(version)) == report
    assert parse_report(b"\0" * 59) is None and parse_report(b"") is None


def test_msg_id_layout_and_its_one_spelling() -> None:
    # gocmpp's example server answers with this id: 0xb2b9da8000010000
    parts = MsgId(12878564852733378560).parts()
    assert parts == {
        "month": 11,
        "day": 5,
        "hour": 14,
        "minute": 29,
        "second": 42,
        "gateway": 1,
        "sequence": 0,
    }
    built = MsgId.build(datetime(2026, 12, 31, 23, 59, 59), 0x3FFFFF, 0xFFFF)
    assert built.parts() == {
        "month": 12,
        "day": 31,
        "hour": 23,
        "minute": 59,
        "second": 59,
        "gateway": 0x3FFFFF,
        "sequence": 0xFFFF,
    }
    assert built.text == str(built.value) and built.value < 2**64
    with pytest.raises(LocalCmppError):
        MsgId.build(datetime(2026, 1, 1), 1 << 22, 0)


def test_authenticators_are_the_md5_the_spec_says() -> None:
    stamp = timestamp(datetime(2026, 1, 2, 3, 4, 5))
    assert stamp == 102030405  # MMDDHHMMSS; the MD5 takes its 10 digits, "0102030405"
    source = authenticator_source("901234", "s3cret", stamp)
    assert source == hashlib.md5(b"901234" + bytes(9) + b"s3cret" + b"0102030405").digest()
    # AuthenticatorISMG: Status in its wire size, 1 octet in 2.0 and 4 in 3.0
    assert (
        authenticator_ismg(0, source, "s3cret", V2)
        == hashlib.md5(b"\0" + source + b"s3cret").digest()
    )
    assert (
        authenticator_ismg(0, source, "s3cret", V3)
        == hashlib.md5(bytes(4) + source + b"s3cret").digest()
    )


@BOTH
def test_byte_by_byte_gives_the_same_messages(version: Version) -> None:
    stream = b"".join(encode(b, i + 1, version) for i, b in enumerate(bodies(version)))
    whole = decode_all(stream, version)
    decoder = Decoder(version)
    got = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        while (pdu := decoder.next_pdu()) is not None:
            got.append(pdu)
    assert got == whole and decoder.buffered == 0


@BOTH
def test_trailing_bytes_wait_for_more_and_are_not_a_message(version: Version) -> None:
    data = encode(ActiveTest(), 1, version)
    decoder = Decoder(version)
    decoder.feed(data + data[:5])
    assert decoder.next_pdu() is not None
    assert decoder.next_pdu() is None and decoder.buffered == 5
    with pytest.raises(RemoteCmppError) as err:
        decode_all(data + b"\0", version)
    assert err.value.fatal


def test_a_message_of_the_other_version_is_reported_and_skipped() -> None:
    # a 3.0 CMPP_SUBMIT_RESP on a 2.0 bind: a clear error, and the next message still reads
    data = encode(SubmitResp(5, 0), 1, V3) + encode(ActiveTest(), 2, V3)
    decoder = Decoder(V2)
    decoder.feed(data)
    with pytest.raises(MalformedMessage) as err:
        decoder.next_pdu()
    assert not err.value.fatal and "protocol" in err.value.reason
    assert err.value.raw == data[:24]
    pdu = decoder.next_pdu()
    assert pdu is not None and isinstance(pdu.body, ActiveTest)


def test_unknown_command_is_skipped_not_fatal() -> None:
    unknown = (HEADER_LENGTH + 2).to_bytes(4, "big") + (0x33).to_bytes(4, "big") + bytes(6)
    decoder = Decoder(V3)
    decoder.feed(unknown + encode(Terminate(), 9, V3))
    with pytest.raises(MalformedMessage):
        decoder.next_pdu()
    pdu = decoder.next_pdu()
    assert pdu is not None and pdu.sequence == 9


@pytest.mark.parametrize("length", [0, 11, MAX_PDU_LENGTH + 1, 0xFFFFFFFF])
def test_insane_length_is_fatal_and_stays_fatal(length: int) -> None:
    decoder = Decoder(V3)
    decoder.feed(length.to_bytes(4, "big") + CommandId.SUBMIT.to_bytes(4, "big") + bytes(4))
    for _ in range(2):
        with pytest.raises(RemoteCmppError) as err:
            decoder.next_pdu()
        assert err.value.fatal


@pytest.mark.parametrize(
    "body",
    [
        Submit(dest_terminal_ids=("1",), content=bytes(141)),  # 7.4.3.1: <= 140 octets
        Submit(dest_terminal_ids=("1",), msg_fmt=MsgFmt.ASCII, content=bytes(160)),  # < 160
        Submit(dest_terminal_ids=()),  # DestUsr_tl 1..100
        Submit(dest_terminal_ids=("1",) * 101),
        Submit(dest_terminal_ids=("1",), src_id="1" * 22),  # Src_Id is 21 octets
        Submit(dest_terminal_ids=("号码",)),  # Octet Strings are ASCII
        Submit(dest_terminal_ids=("1",), tp_udhi=256),
        Connect("1234567", bytes(16), 0x30, 0),  # Source_Addr is 6 octets
        Connect("901234", bytes(15), 0x30, 0),
        SubmitResp(2**64, 0),
    ],
)
def test_what_cmpp_forbids_is_a_local_error(body: Body) -> None:
    with pytest.raises(LocalCmppError):
        encode(body, 1, V3)
    with pytest.raises(LocalCmppError):
        encode(ActiveTest(), -1, V3)


@BOTH
def test_fuzz_parses_or_raises_the_remote_error(version: Version) -> None:
    rng = random.Random(15)
    valid = [encode(b, 1, version) for b in bodies(version)]
    for _ in range(4000):
        if rng.random() < 0.5:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 6)):  # flip, cut or grow a valid message
                pos = rng.randrange(len(data))
                data[pos] = rng.randrange(256)
            if rng.random() < 0.3:
                del data[rng.randrange(len(data)) :]
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 64)))
            if rng.random() < 0.5 and len(data) >= 8:  # a plausible length and command
                data[0:4] = len(data).to_bytes(4, "big")
                data[4:8] = rng.choice(list(CommandId)).to_bytes(4, "big")
        decoder = Decoder(version)
        decoder.feed(bytes(data))
        for _ in range(10):
            try:
                if decoder.next_pdu() is None:
                    break
            except RemoteCmppError as exc:
                if exc.fatal:
                    break
        try:
            decode_message(bytes(data), version)
        except RemoteCmppError:
            pass


def test_result_names() -> None:
    assert result_name(8) == "CMPP_FLOW_CONTROL" and result_name(99) == "CMPP_RESULT_99"
