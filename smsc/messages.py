"""The SMSC simulator's messages: reading a submit_sm, building receipts and MO parts.

Pure functions. The text handling (UDH parsing and building, splitting, encodings)
is written independently of `sms.text` and `sms.mo` on purpose: the simulator must
not share the gateway's bugs, or a test could pass with both wrong the same way. The
SMPP numbers themselves are not behaviour and come from `sms.smpp.constants`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from sms.smpp.constants import (
    DATA_CODING_DEFAULT,
    DATA_CODING_GBK,
    DATA_CODING_IA5,
    DATA_CODING_LATIN1,
    DATA_CODING_UCS2,
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    MAX_SHORT_MESSAGE,
    NPI_ISDN,
    TON_UNKNOWN,
    MessageState,
    NetworkType,
    Tag,
)
from sms.smpp.pdu import DeliverSm, ShortMessage, tlv_cstr, tlv_int

DlrMode = Literal["text", "tlv", "both"]
Split = Literal["udh8", "udh16", "sar", "payload"]
Encoding = Literal["ucs2", "gbk", "ascii"]

#: SMPP 3.4 Appendix B receipt "stat" words and their message_state (5.2.28).
RECEIPT_STATES: dict[str, MessageState] = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
}

_ENCODINGS: dict[str, tuple[int, str]] = {
    "ucs2": (DATA_CODING_UCS2, "utf-16-be"),
    "gbk": (DATA_CODING_GBK, "gbk"),
    "ascii": (DATA_CODING_DEFAULT, "ascii"),
}
# 3GPP TS 23.040 9.2.3.24: TP-UD holds 140 octets; the default alphabet travels over
# SMPP one character per octet, 160 of them. A concatenation UDH takes 6 (8-bit
# reference, IEI 0x00) or 7 (16-bit reference, IEI 0x08) octets, i.e. 7 or 8 septets.
_CAPACITY: dict[tuple[str, str], int] = {
    ("octets", "single"): 140,
    ("octets", "udh8"): 134,
    ("octets", "udh16"): 133,
    ("octets", "sar"): 140,
    ("septets", "single"): 160,
    ("septets", "udh8"): 153,
    ("septets", "udh16"): 152,
    ("septets", "sar"): 160,
}
# TS 23.040 9.2.3.24.1 / 9.2.3.24.8: concatenation IEs with an 8-bit or a 16-bit
# reference. A second copy of sms.text's on purpose: the simulator's UDH parser and
# builder are an independent check on the gateway's (see the module docstring).
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


# --- Reading a submit_sm -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Content:
    """The user data of a submit_sm: UDH, payload octets, decoded text, part info."""

    udh: bytes | None
    payload: bytes
    text: str
    part: tuple[int, int, int] | None  # (reference, total, sequence), 1-based


def decode_text(data_coding: int, payload: bytes) -> str:
    """Best-effort text for records; never raises (undecodable octets become U+FFFD)."""
    if data_coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be", "replace")
    if data_coding == DATA_CODING_GBK:
        return payload.decode("gbk", "replace")
    if data_coding == DATA_CODING_LATIN1:
        return payload.decode("latin-1")
    if data_coding in (DATA_CODING_DEFAULT, DATA_CODING_IA5):
        return payload.decode("ascii", "replace")
    return ""  # binary codings: the raw octets are in the record


def parse_udh(user_data: bytes) -> tuple[bytes, bytes, tuple[int, int, int] | None] | None:
    """Split user data into (UDH, payload, concat part) or None if the UDH is broken.

    TS 23.040 9.2.3.24: UDHL, then information elements (IEI, IEL, data).
    """
    if not user_data or user_data[0] + 1 > len(user_data):
        return None
    end = user_data[0] + 1
    pos, part = 1, None
    while pos + 2 <= end:
        iei, iel = user_data[pos], user_data[pos + 1]
        data = user_data[pos + 2 : pos + 2 + iel]
        if pos + 2 + iel > end:
            return None
        if iei == IEI_CONCAT_8BIT and iel == 3:
            part = (data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16BIT and iel == 4:
            part = (int.from_bytes(data[:2], "big"), data[2], data[3])
        pos += 2 + iel
    return user_data[:end], user_data[end:], part


def read_content(sm: ShortMessage) -> Content:
    """Decode a submit_sm's user data (short_message or message_payload, UDH or SAR)."""
    user_data = sm.short_message or sm.tlv(Tag.MESSAGE_PAYLOAD) or b""
    udh: bytes | None = None
    payload, part = user_data, None
    if sm.esm_class & ESM_CLASS_UDHI:
        parsed = parse_udh(user_data)
        if parsed is not None:
            udh, payload, part = parsed
    if part is None:
        ref, total, seq = (
            sm.tlv(Tag.SAR_MSG_REF_NUM),
            sm.tlv(Tag.SAR_TOTAL_SEGMENTS),
            sm.tlv(Tag.SAR_SEGMENT_SEQNUM),
        )
        if ref and total and seq:
            part = (int.from_bytes(ref, "big"), total[0], seq[0])
    return Content(udh, payload, decode_text(sm.data_coding, payload), part)


# --- Building deliver_sm -------------------------------------------------------------


def smpp_date(at: float) -> str:
    """Appendix B's YYMMDDhhmm, local time."""
    return time.strftime("%y%m%d%H%M", time.localtime(at))


def receipt(
    *,
    message_id: str,
    citizen: str,
    gateway_addr: str,
    stat: str,
    err: int,
    submitted_at: float,
    done_at: float,
    text: str,
    mode: DlrMode,
) -> DeliverSm:
    """A delivery receipt (esm_class 0x04) in Appendix B text form and/or TLVs."""
    short_message = b""
    tlvs: tuple[tuple[int, bytes], ...] = ()
    if mode in ("text", "both"):
        dlvrd = 1 if stat == "DELIVRD" else 0
        short_message = (
            f"id:{message_id} sub:001 dlvrd:{dlvrd:03d} submit date:{smpp_date(submitted_at)} "
            f"done date:{smpp_date(done_at)} stat:{stat} err:{err:03d} text:{text[:20]}"
        ).encode("ascii", "replace")
    if mode in ("tlv", "both"):
        tlvs = (
            (Tag.RECEIPTED_MESSAGE_ID, tlv_cstr(message_id)),
            (Tag.MESSAGE_STATE, tlv_int(RECEIPT_STATES[stat], 1)),
        )
        if err:
            # 5.3.2.31: network type (GSM), then a 2-octet error code.
            code = tlv_int(NetworkType.GSM, 1) + tlv_int(err & 0xFFFF, 2)
            tlvs += ((Tag.NETWORK_ERROR_CODE, code),)
    return DeliverSm(
        source_ton=TON_UNKNOWN,
        source_npi=NPI_ISDN,
        source_addr=citizen,
        dest_addr=gateway_addr,
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=short_message[:MAX_SHORT_MESSAGE],
        tlvs=tlvs,
    )


def _chunks(text: str, codec: str, capacity: int) -> list[bytes]:
    # Split on characters, never inside one: a GBK double byte or a UTF-16 surrogate
    # pair stays in one part.
    parts: list[bytes] = []
    current = b""
    for ch in text:
        encoded = ch.encode(codec)
        if len(current) + len(encoded) > capacity:
            parts.append(current)
            current = b""
        current += encoded
    parts.append(current)
    return parts


def mo_parts(
    *,
    citizen: str,
    dest: str,
    text: str,
    encoding: Encoding = "ucs2",
    split: Split = "udh8",
    reference: int = 0,
) -> list[DeliverSm]:
    """An MO text as one or more deliver_sm (esm_class 0): a concatenation UDH with an
    8-bit or 16-bit reference, SAR TLVs (5.3.2.22-24), or one message_payload TLV."""
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {sorted(_ENCODINGS)}: {encoding!r}")
    if split not in ("udh8", "udh16", "sar", "payload"):
        raise ValueError(f"split must be udh8, udh16, sar or payload: {split!r}")
    data_coding, codec = _ENCODINGS[encoding]
    unit = "septets" if encoding == "ascii" else "octets"
    base = dict(
        source_ton=TON_UNKNOWN,
        source_npi=NPI_ISDN,
        source_addr=citizen,
        dest_addr=dest,
        data_coding=data_coding,
    )
    whole = text.encode(codec)
    if split == "payload":
        return [DeliverSm(**base, tlvs=((Tag.MESSAGE_PAYLOAD, whole),))]  # type: ignore[arg-type]
    if len(whole) <= _CAPACITY[(unit, "single")]:
        return [DeliverSm(**base, short_message=whole)]  # type: ignore[arg-type]
    chunks = _chunks(text, codec, _CAPACITY[(unit, split)])
    total = len(chunks)
    if total > 255:
        raise ValueError(f"text needs {total} parts; a concatenated SMS has at most 255")
    out = []
    for seq, chunk in enumerate(chunks, start=1):
        if split == "sar":
            tlvs = (
                (Tag.SAR_MSG_REF_NUM, tlv_int(reference & 0xFFFF, 2)),
                (Tag.SAR_TOTAL_SEGMENTS, tlv_int(total, 1)),
                (Tag.SAR_SEGMENT_SEQNUM, tlv_int(seq, 1)),
            )
            out.append(DeliverSm(**base, short_message=chunk, tlvs=tlvs))  # type: ignore[arg-type]
            continue
        if split == "udh8":
            udh = bytes((5, IEI_CONCAT_8BIT, 3, reference & 0xFF, total, seq))
        else:
            udh = bytes((6, IEI_CONCAT_16BIT, 4)) + tlv_int(reference & 0xFFFF, 2)
            udh += bytes((total, seq))
        out.append(
            DeliverSm(**base, esm_class=ESM_CLASS_UDHI, short_message=udh + chunk)  # type: ignore[arg-type]
        )
    return out
