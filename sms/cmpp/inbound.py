"""A stored CMPP_DELIVER, read as what the gateway's inbound path understands: a
delivery receipt (`sms.dlr.Receipt`) or a citizen's message (`sms.mo.MoMessage`).

The bind stores every CMPP_DELIVER raw before it answers it (nothing is acknowledged
before it is stored); the inbound worker calls `read_deliver` on the stored octets.
From there receipts and replies take the same path as SMPP's: receipts matched by
message id, replies reassembled, matched by extension code, read and stored.
"""

from __future__ import annotations

from datetime import datetime

from sms.cmpp.codec import decode_message
from sms.cmpp.constants import STAT_DELIVERED, MsgFmt, Version
from sms.cmpp.pdu import Deliver, StatusReport, msg_id_text, parse_report
from sms.dlr import FINAL_STATES, STAT_WORDS, DeliveryState, Receipt
from sms.mo import DefaultAlphabet, MoMessage, decode_short_message
from sms.smpp.constants import (
    DATA_CODING_BINARY,
    DATA_CODING_GBK,
    DATA_CODING_IA5,
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
)

# 7.4.5.1 Msg_Fmt → the data_coding `sms.mo` decodes: 0 is ASCII in CMPP (SMPP's 0 is
# the SMSC's default alphabet), 3 (写卡) and 4 are binary, 8 UCS-2, 15 GB text.
_DATA_CODING: dict[int, int] = {
    MsgFmt.ASCII: DATA_CODING_IA5,
    MsgFmt.SIM_WRITE: DATA_CODING_BINARY,
    MsgFmt.BINARY: DATA_CODING_BINARY,
    MsgFmt.UCS2: DATA_CODING_UCS2,
    MsgFmt.GB: DATA_CODING_GBK,
}


def receipt_of(report: StatusReport) -> Receipt:
    """The receipt a status report (7.4.5.1) says. Stat words are SMPP's; any other
    value is an ISMG or SMSC error code ("MA:0001", "MK:0005"...): the message did not
    arrive, so the part is undeliverable with that code as its error."""
    stat = report.stat.strip()
    state = STAT_WORDS.get(stat.upper())
    error = None
    if state is None:
        state, error = DeliveryState.UNDELIVERABLE, stat or "no_stat"
    elif stat.upper() != STAT_DELIVERED:
        error = stat
    return Receipt(
        message_id=msg_id_text(report.msg_id),
        state=state,
        final=state in FINAL_STATES,
        error=error,
        submitted_parts=None,
        delivered_parts=None,
        raw_stat=stat,
        submitted_at=_report_time(report.submit_time),
        done_at=_report_time(report.done_time),
    )


def message_of(deliver: Deliver, default_alphabet: DefaultAlphabet = "latin1") -> MoMessage:
    """The citizen's message in an MO CMPP_DELIVER (never raises: a broken UDH or
    undecodable octets are flags on the fragment)."""
    data_coding = _DATA_CODING.get(deliver.msg_fmt, deliver.msg_fmt)
    fragment = decode_short_message(
        data_coding,
        ESM_CLASS_UDHI if deliver.tp_udhi & 1 else 0,
        deliver.content,
        {},
        default_alphabet=default_alphabet,
    )
    return MoMessage(deliver.src_terminal_id, deliver.dest_id, fragment)


def read_deliver(
    raw: bytes, protocol: str, default_alphabet: DefaultAlphabet = "latin1"
) -> Receipt | MoMessage:
    """A stored CMPP_DELIVER of a bind speaking `protocol` ("cmpp2" / "cmpp3").

    Raises `RemoteCmppError` for octets that are not a CMPP_DELIVER, and ValueError
    for a status report whose content is not one: the caller keeps such an entry on
    the orphans stream, it is never dropped.
    """
    pdu = decode_message(raw, Version.of(protocol))
    body = pdu.body
    if not isinstance(body, Deliver):
        raise ValueError(f"not a CMPP_DELIVER: {type(body).__name__}")
    if body.is_report:
        report = parse_report(body.content)
        if report is None:
            raise ValueError(f"status report of {len(body.content)} octets (60 or 71 expected)")
        return receipt_of(report)
    return message_of(body, default_alphabet)


def _report_time(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%y%m%d%H%M")
    except ValueError:
        return None
