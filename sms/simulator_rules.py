"""What the SMSC simulator does with a message: pure rules, formats and encodings.

Nothing here does I/O. `Behaviour` is the knob board (message-id styles, receipts,
throttling, failure switches, per-destination outcomes); the functions turn a
submit_sm into records and receipts, and an MO text into deliver_sm parts. The text
handling is written independently of `sms.text` on purpose: the simulator must not
share the gateway's bugs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from sms.pdu import (
    DATA_CODING_DEFAULT,
    DATA_CODING_GBK,
    DATA_CODING_IA5,
    DATA_CODING_LATIN1,
    DATA_CODING_UCS2,
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    NPI_ISDN,
    TON_UNKNOWN,
    CommandStatus,
    DeliverSm,
    MessageState,
    ShortMessage,
    Tag,
    tlv_cstr,
    tlv_int,
)

IdFormat = Literal["hex", "dec", "uuid"]
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
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """What happens to messages whose destination matches `pattern` (re.search).

    `stat` is the Appendix B word in the receipt; `dlr=False` means no receipt ever
    comes; `lose_parts` drops the receipt of those part numbers of a concatenated
    message; `delay` overrides the behaviour's receipt delay.
    """

    pattern: str
    stat: str = "DELIVRD"
    err: int = 0
    dlr: bool = True
    lose_parts: tuple[int, ...] = ()
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.stat not in RECEIPT_STATES:
            raise ValueError(f"stat must be one of {sorted(RECEIPT_STATES)}: {self.stat!r}")
        re.compile(self.pattern)


@dataclass(frozen=True, slots=True)
class RejectRule:
    """submit_sm whose `field` ("dest" or "source") matches `pattern` get `status`."""

    pattern: str
    status: int = CommandStatus.ESME_RINVDSTADR
    field: Literal["dest", "source"] = "dest"

    def __post_init__(self) -> None:
        if self.field not in ("dest", "source"):
            raise ValueError(f"field must be 'dest' or 'source': {self.field!r}")
        re.compile(self.pattern)


@dataclass(frozen=True, slots=True)
class AutoReply:
    """Citizens who answer: after `delay`, the recipient of a delivered message replies
    with `choose(destination)`; None means this citizen stays silent."""

    choose: Callable[[str], str | None]
    delay: float = 1.0
    encoding: Encoding = "ucs2"
    split: Split = "udh8"

    @classmethod
    def by_suffix(
        cls,
        replies: Mapping[str, str],
        default: str | None = None,
        **kwargs: Any,
    ) -> AutoReply:
        """Reply by the number's ending: the longest key that ends the number wins, so
        {"1": "1", "3": "3 态度不好"} is a map from the last digit to the reply."""
        keys = sorted(replies, key=len, reverse=True)

        def choose(number: str) -> str | None:
            for key in keys:
                if number.endswith(key):
                    return replies[key]
            return default

        return cls(choose, **kwargs)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AutoReply:
        """{"by_suffix": {...}, "default": str|null, "delay": s, "encoding", "split"}."""
        extra = {k: obj[k] for k in ("delay", "encoding", "split") if k in obj}
        if "delay" in extra:
            extra["delay"] = float(extra["delay"])
        return cls.by_suffix(dict(obj.get("by_suffix", {})), obj.get("default"), **extra)


@dataclass(slots=True)
class Behaviour:
    """Every knob of the simulator; change them with `SmscSimulator.set_behaviour`."""

    # submit_sm_resp message ids, and the (possibly different) style in receipts.
    id_format: IdFormat = "hex"
    id_upper: bool = False
    id_width: int = 0
    dlr_id_format: IdFormat | None = None
    dlr_id_upper: bool | None = None
    dlr_id_width: int | None = None
    # Delivery receipts (registered_delivery & 1).
    dlr_mode: DlrMode = "both"
    dlr_delay: float = 0.0
    dlr_before_resp: bool = False
    outcomes: tuple[OutcomeRule, ...] = ()
    # Admission: first failing check decides the submit_sm_resp status.
    window: int | None = None  # unanswered submits per bind → ESME_RMSGQFUL
    max_tps: float | None = None  # per bind → ESME_RTHROTTLED
    queue_full: bool = False  # → ESME_RMSGQFUL
    rejects: tuple[RejectRule, ...] = ()
    # Failures.
    response_delay: float = 0.0
    half_open: bool = False  # read everything, answer nothing, deliver nothing
    # deliver_sm towards the ESME: stored until acknowledged.
    deliver_timeout: float = 5.0
    deliver_window: int = 50
    # MO replies from citizens.
    auto_reply: AutoReply | None = None


def apply_changes(behaviour: Behaviour, changes: Mapping[str, Any]) -> None:
    """Apply `changes` (Python objects or their JSON forms) to `behaviour` in place.

    Raises ValueError for unknown keys or values that do not fit, before changing
    anything, so a bad POST /behaviour leaves the simulator as it was.
    """
    known = {f.name for f in fields(Behaviour)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown behaviour keys: {sorted(unknown)}")
    converted: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "outcomes":
            value = tuple(_outcome(v) for v in value)
        elif key == "rejects":
            value = tuple(_reject(v) for v in value)
        elif key == "auto_reply" and isinstance(value, Mapping):
            value = AutoReply.from_json(value)
        elif key in ("id_format", "dlr_id_format") and value not in (None, "hex", "dec", "uuid"):
            raise ValueError(f"{key} must be hex, dec or uuid: {value!r}")
        elif key == "dlr_mode" and value not in ("text", "tlv", "both"):
            raise ValueError(f"dlr_mode must be text, tlv or both: {value!r}")
        elif key in ("dlr_delay", "response_delay", "deliver_timeout", "max_tps"):
            value = None if value is None else float(value)
        converted[key] = value
    for key, value in converted.items():
        setattr(behaviour, key, value)


def _outcome(value: OutcomeRule | Mapping[str, Any]) -> OutcomeRule:
    if isinstance(value, OutcomeRule):
        return value
    data = dict(value)
    data["lose_parts"] = tuple(data.get("lose_parts", ()))
    return OutcomeRule(**data)


def _reject(value: RejectRule | Mapping[str, Any]) -> RejectRule:
    if isinstance(value, RejectRule):
        return value
    data = dict(value)
    if isinstance(data.get("status"), str):
        data["status"] = CommandStatus[data["status"]]
    return RejectRule(**data)


def behaviour_json(behaviour: Behaviour) -> dict[str, Any]:
    """A JSON-friendly view of the current behaviour (for GET/POST /behaviour)."""
    out: dict[str, Any] = {}
    for f in fields(Behaviour):
        value = getattr(behaviour, f.name)
        if f.name in ("outcomes", "rejects"):
            value = [{g.name: getattr(rule, g.name) for g in fields(rule)} for rule in value]
        elif f.name == "auto_reply":
            value = None if value is None else {"delay": value.delay, "encoding": value.encoding}
        out[f.name] = value
    return out


def find_outcome(behaviour: Behaviour, dest: str) -> OutcomeRule | None:
    """The first outcome rule matching `dest`, if any."""
    for rule in behaviour.outcomes:
        if re.search(rule.pattern, dest):
            return rule
    return None


def find_reject(behaviour: Behaviour, source: str, dest: str) -> RejectRule | None:
    """The first reject rule matching this submit, if any."""
    for rule in behaviour.rejects:
        if re.search(rule.pattern, dest if rule.field == "dest" else source):
            return rule
    return None


# --- Message ids -------------------------------------------------------------------

_UUID_PREFIX = 0x6D696E79_69000000_8000 << 48  # fixed high bits: "uuid-ish", stable


def format_id(number: int, style: IdFormat, upper: bool = False, width: int = 0) -> str:
    """Render message number `number` as an SMSC would: hex, decimal or a UUID form."""
    if style == "hex":
        text = format(number, "x").zfill(width)
    elif style == "dec":
        text = str(number).zfill(width)
    else:
        text = str(uuid.UUID(int=_UUID_PREFIX | (number & 0xFFFF_FFFF_FFFF)))
    return text.upper() if upper else text


def resp_id(behaviour: Behaviour, number: int) -> str:
    """The id given in submit_sm_resp."""
    return format_id(number, behaviour.id_format, behaviour.id_upper, behaviour.id_width)


def dlr_id(behaviour: Behaviour, number: int) -> str:
    """The id the receipt names; some SMSCs use another style than the resp."""
    return format_id(
        number,
        behaviour.dlr_id_format or behaviour.id_format,
        behaviour.id_upper if behaviour.dlr_id_upper is None else behaviour.dlr_id_upper,
        behaviour.id_width if behaviour.dlr_id_width is None else behaviour.dlr_id_width,
    )


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
            # 5.3.2.31: network type (3 = SMPP error), then a 2-octet error code.
            tlvs += ((Tag.NETWORK_ERROR_CODE, bytes((3,)) + tlv_int(err & 0xFFFF, 2)),)
    return DeliverSm(
        source_ton=TON_UNKNOWN,
        source_npi=NPI_ISDN,
        source_addr=citizen,
        dest_addr=gateway_addr,
        esm_class=ESM_CLASS_DELIVERY_RECEIPT,
        short_message=short_message[:254],
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


@dataclass(slots=True)
class SubmitRecord:
    """One submit_sm as the simulator saw it and answered it."""

    index: int
    at: float
    system_id: str
    session: int
    sequence: int
    source: str
    dest: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    udh: bytes | None
    text: str
    part: tuple[int, int, int] | None
    tlvs: tuple[tuple[int, bytes], ...]
    status: int = 0
    message_id: str = ""
    dlr_message_id: str = ""
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form for GET /submits (octets as hex)."""
        return {
            "index": self.index,
            "at": self.at,
            "system_id": self.system_id,
            "session": self.session,
            "sequence": self.sequence,
            "source": self.source,
            "dest": self.dest,
            "data_coding": self.data_coding,
            "esm_class": self.esm_class,
            "registered_delivery": self.registered_delivery,
            "short_message": self.short_message.hex(),
            "udh": None if self.udh is None else self.udh.hex(),
            "text": self.text,
            "part": None if self.part is None else list(self.part),
            "tlvs": [[tag, value.hex()] for tag, value in self.tlvs],
            "status": self.status,
            "message_id": self.message_id,
            "dlr_message_id": self.dlr_message_id,
            "duplicate": self.duplicate,
        }
