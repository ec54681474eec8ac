"""A stored CMPP_DELIVER read as a receipt or a citizen's message: the Stat words and
the carriers' error codes, GBK and UCS-2, 8- and 16-bit UDH, ASCII that is not SMPP's
default alphabet; and whatever the octets, only the errors the caller keeps as orphans."""

from __future__ import annotations

import random

import pytest

from sms.cmpp.codec import encode
from sms.cmpp.constants import MsgFmt, Version
from sms.cmpp.inbound import read_deliver
from sms.cmpp.pdu import Deliver, RemoteCmppError, StatusReport
from sms.dlr import DeliveryState, Receipt
from sms.mo import MoMessage

BOTH = pytest.mark.parametrize("version", [Version.V20, Version.V30], ids=["cmpp2", "cmpp3"])


def stored(version: Version, **fields: object) -> bytes:
    body = Deliver(msg_id=77, dest_id="1065730001123", src_terminal_id="8613800138000", **fields)  # type: ignore[arg-type]
    return encode(body, 3, version)


@BOTH
@pytest.mark.parametrize(
    ("stat", "state", "error"),
    [
        ("DELIVRD", DeliveryState.DELIVERED, None),
        ("UNDELIV", DeliveryState.UNDELIVERABLE, "UNDELIV"),
        ("EXPIRED", DeliveryState.EXPIRED, "EXPIRED"),
        ("REJECTD", DeliveryState.REJECTED, "REJECTD"),
        ("MK:0005", DeliveryState.UNDELIVERABLE, "MK:0005"),  # an ISMG error code
        ("UNKNOWN", DeliveryState.UNKNOWN, "UNKNOWN"),  # not final: the deadline decides
    ],
)
def test_status_reports(version: Version, stat: str, state: DeliveryState, error: str) -> None:
    report = StatusReport(2**63 + 5, stat, "2611231005", "2611231006", "13800138000", 1)
    got = read_deliver(
        stored(version, registered_delivery=1, content=report.pack(version)), version.label
    )
    assert isinstance(got, Receipt)
    assert got.message_id == str(2**63 + 5) and got.state is state and got.error == error
    assert got.raw_stat == stat and got.done_at is not None and got.done_at.minute == 6


@BOTH
def test_replies_in_gbk_ucs2_and_ascii(version: Version) -> None:
    gbk = read_deliver(
        stored(version, msg_fmt=MsgFmt.GB, content="不满意".encode("gbk")), version.label
    )
    assert isinstance(gbk, MoMessage)
    assert (gbk.source, gbk.dest, gbk.fragment.text) == ("8613800138000", "1065730001123", "不满意")
    ascii_reply = read_deliver(stored(version, msg_fmt=MsgFmt.ASCII, content=b"TD"), version.label)
    assert isinstance(ascii_reply, MoMessage) and ascii_reply.fragment.text == "TD"
    for udh, bits in ((bytes([5, 0, 3, 9, 2, 2]), 8), (bytes([6, 8, 4, 1, 2, 2, 1]), 16)):
        part = read_deliver(
            stored(
                version, tp_udhi=1, msg_fmt=MsgFmt.UCS2, content=udh + "满意".encode("utf-16-be")
            ),
            version.label,
        )
        assert isinstance(part, MoMessage) and part.fragment.text == "满意"
        assert part.fragment.concat is not None and part.fragment.concat.ref_bits == bits


def test_what_is_not_a_deliver_is_an_error_to_keep() -> None:
    with pytest.raises(RemoteCmppError):
        read_deliver(b"\x00\x00\x00\x0c\x00\x00\x00\x05", "cmpp3")
    with pytest.raises(ValueError, match="60 or 71"):
        read_deliver(stored(Version.V30, registered_delivery=1, content=b"short"), "cmpp3")
    # a 3.0 deliver read as 2.0: reported, not misread
    with pytest.raises(RemoteCmppError):
        read_deliver(stored(Version.V30, content=b"1"), "cmpp2")


@BOTH
def test_fuzz_only_the_errors_the_inbound_worker_keeps(version: Version) -> None:
    rng = random.Random(7)
    valid = stored(
        version, msg_fmt=MsgFmt.UCS2, tp_udhi=1, content=bytes([5, 0, 3, 1, 1, 1]) + b"\x4e\x0d"
    )
    for _ in range(3000):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(12, len(data))] = rng.randrange(256)
        try:
            read_deliver(bytes(data), version.label)
        except (RemoteCmppError, ValueError):
            pass
