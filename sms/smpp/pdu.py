"""SMPP 3.4 PDU bodies: one frozen dataclass per operation, and how each packs.

The codec (`sms.smpp.codec`) frames them: it adds the header, checks the limits and
decodes bytes back into these classes. Nothing here touches a socket, a loop or a
logger (h11 style). Building a body the spec forbids raises `LocalProtocolError` when
it is packed.

Unknown TLVs are preserved, never rejected: a carrier's SMSC speaks dialects, and an
ESME that drops what it does not know loses receipts. Section numbers refer to the
SMPP v3.4 specification, Issue 1.2; the numbers themselves live in
`sms.smpp.constants`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from sms.smpp.constants import (
    ADDR_SIZE,
    ADDRESS_RANGE_SIZE,
    DATA_CODING_DEFAULT,
    MAX_SHORT_MESSAGE,
    MAX_TLV_VALUE_LENGTH,
    MESSAGE_ID_SIZE,
    NPI_UNKNOWN,
    PASSWORD_SIZE,
    RESPONSE_BIT,
    SERVICE_TYPE_SIZE,
    SMPP_VERSION_34,
    SYSTEM_ID_SIZE,
    SYSTEM_TYPE_SIZE,
    TIME_SIZE,
    TON_UNKNOWN,
    CommandId,
)
from sms.smpp.errors import LocalProtocolError

Tlv: TypeAlias = tuple[int, bytes]

# 5.3.1: a TLV's tag and length, 2 octets each.
TLV_HEADER = struct.Struct(">HH")
# 4.4.1 one-octet field groups: ton+npi; esm_class, protocol_id, priority_flag;
# registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length.
TON_NPI = struct.Struct("BB")
MESSAGE_FLAGS = struct.Struct("BBB")
MESSAGE_TAIL = struct.Struct("BBBBB")


class BindKind(enum.Enum):
    """The three ways an ESME binds (4.1)."""

    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"

    @property
    def command_id(self) -> CommandId:
        """The bind request's command_id."""
        return _BIND_COMMANDS[self]

    @property
    def can_submit(self) -> bool:
        """Whether this session may send submit_sm (2.3: BOUND_TX, BOUND_TRX)."""
        return self is not BindKind.RECEIVER

    @property
    def can_receive(self) -> bool:
        """Whether this session may be sent deliver_sm (2.3: BOUND_RX, BOUND_TRX)."""
        return self is not BindKind.TRANSMITTER

    @classmethod
    def of(cls, command_id: int) -> BindKind:
        """The kind of a bind request or response command_id; KeyError for others."""
        return _BIND_KINDS[command_id & ~RESPONSE_BIT]


_BIND_COMMANDS = {
    BindKind.TRANSMITTER: CommandId.BIND_TRANSMITTER,
    BindKind.RECEIVER: CommandId.BIND_RECEIVER,
    BindKind.TRANSCEIVER: CommandId.BIND_TRANSCEIVER,
}
_BIND_KINDS: dict[int, BindKind] = {int(cid): kind for kind, cid in _BIND_COMMANDS.items()}


@dataclass(frozen=True, slots=True)
class BindRequest:
    """bind_transmitter / bind_receiver / bind_transceiver (4.1.1, 4.1.3, 4.1.5)."""

    kind: BindKind
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = SMPP_VERSION_34
    addr_ton: int = TON_UNKNOWN
    addr_npi: int = NPI_UNKNOWN
    address_range: str = ""

    @property
    def command_id(self) -> int:
        """This PDU's command_id."""
        return self.kind.command_id

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return b"".join(
            (
                _cstr(self.system_id, SYSTEM_ID_SIZE, "system_id"),
                _cstr(self.password, PASSWORD_SIZE, "password"),
                _cstr(self.system_type, SYSTEM_TYPE_SIZE, "system_type"),
                _u8(self.interface_version, "interface_version"),
                _u8(self.addr_ton, "addr_ton"),
                _u8(self.addr_npi, "addr_npi"),
                _cstr(self.address_range, ADDRESS_RANGE_SIZE, "address_range"),
            )
        )


@dataclass(frozen=True, slots=True)
class BindResp:
    """bind_*_resp (4.1.2, 4.1.4, 4.1.6); `tlvs` may hold sc_interface_version.

    The spec omits the body when command_status is non-zero, so an error response
    decodes with an empty system_id and is encoded without a body.
    """

    kind: BindKind
    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()

    @property
    def command_id(self) -> int:
        """This PDU's command_id."""
        return self.kind.command_id | RESPONSE_BIT

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return _cstr(self.system_id, SYSTEM_ID_SIZE, "system_id") + encode_tlvs(self.tlvs)


@dataclass(frozen=True, slots=True)
class Outbind:
    """outbind (4.1.7): the SMSC asks the ESME to bind_receiver."""

    system_id: str
    password: str
    command_id: ClassVar[int] = CommandId.OUTBIND

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return _cstr(self.system_id, SYSTEM_ID_SIZE, "system_id") + _cstr(
            self.password, PASSWORD_SIZE, "password"
        )


@dataclass(frozen=True, slots=True)
class _Empty:
    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return b""


@dataclass(frozen=True, slots=True)
class Unbind(_Empty):
    """unbind (4.2.1)."""

    command_id: ClassVar[int] = CommandId.UNBIND


@dataclass(frozen=True, slots=True)
class UnbindResp(_Empty):
    """unbind_resp (4.2.2)."""

    command_id: ClassVar[int] = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True)
class EnquireLink(_Empty):
    """enquire_link (4.11.1)."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True)
class EnquireLinkResp(_Empty):
    """enquire_link_resp (4.11.2)."""

    command_id: ClassVar[int] = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True)
class GenericNack(_Empty):
    """generic_nack (4.3): the answer to a PDU that could not be understood."""

    command_id: ClassVar[int] = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortMessage:
    """The body shared by submit_sm (4.4.1) and deliver_sm (4.6.1)."""

    service_type: str = ""
    source_ton: int = TON_UNKNOWN
    source_npi: int = NPI_UNKNOWN
    source_addr: str = ""
    dest_ton: int = TON_UNKNOWN
    dest_npi: int = NPI_UNKNOWN
    dest_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present: int = 0
    data_coding: int = DATA_CODING_DEFAULT
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: tuple[Tlv, ...] = ()
    command_id: ClassVar[int]

    def tlv(self, tag: int) -> bytes | None:
        """The value of the first TLV with `tag`, or None."""
        for t, value in self.tlvs:
            if t == tag:
                return value
        return None

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        if len(self.short_message) > MAX_SHORT_MESSAGE:
            raise LocalProtocolError(
                f"short_message is {len(self.short_message)} octets; 5.2.21 allows "
                f"{MAX_SHORT_MESSAGE} (use the message_payload TLV)"
            )
        # The one-octet fields go through struct in groups: this is the hot path of
        # every submit_sm and deliver_sm, and struct also does the range check.
        try:
            source = TON_NPI.pack(self.source_ton, self.source_npi)
            dest = TON_NPI.pack(self.dest_ton, self.dest_npi)
            flags = MESSAGE_FLAGS.pack(self.esm_class, self.protocol_id, self.priority_flag)
            tail = MESSAGE_TAIL.pack(
                self.registered_delivery,
                self.replace_if_present,
                self.data_coding,
                self.sm_default_msg_id,
                len(self.short_message),
            )
        except struct.error:
            raise LocalProtocolError(self._octet_fault()) from None
        return b"".join(
            (
                _cstr(self.service_type, SERVICE_TYPE_SIZE, "service_type"),
                source,
                _cstr(self.source_addr, ADDR_SIZE, "source_addr"),
                dest,
                _cstr(self.dest_addr, ADDR_SIZE, "destination_addr"),
                flags,
                _cstr(self.schedule_delivery_time, TIME_SIZE, "schedule_delivery_time"),
                _cstr(self.validity_period, TIME_SIZE, "validity_period"),
                tail,
                self.short_message,
                encode_tlvs(self.tlvs),
            )
        )

    def _octet_fault(self) -> str:
        for name in (
            "source_ton",
            "source_npi",
            "dest_ton",
            "dest_npi",
            "esm_class",
            "protocol_id",
            "priority_flag",
            "registered_delivery",
            "replace_if_present",
            "data_coding",
            "sm_default_msg_id",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 0xFF:
                return f"{name} must fit one octet: {value!r}"
        return "a one-octet field is out of range"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(ShortMessage):
    """submit_sm (4.4.1): ESME → SMSC."""

    command_id: ClassVar[int] = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(ShortMessage):
    """deliver_sm (4.6.1): SMSC → ESME, an MO message or a delivery receipt."""

    command_id: ClassVar[int] = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True)
class SubmitSmResp:
    """submit_sm_resp (4.4.2). The body is omitted when command_status is non-zero."""

    message_id: str = ""
    command_id: ClassVar[int] = CommandId.SUBMIT_SM_RESP

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return _cstr(self.message_id, MESSAGE_ID_SIZE, "message_id")


@dataclass(frozen=True, slots=True)
class DeliverSmResp:
    """deliver_sm_resp (4.6.2); message_id is unused and normally empty."""

    message_id: str = ""
    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP

    def pack(self) -> bytes:
        """The body's octets, without the header."""
        return _cstr(self.message_id, MESSAGE_ID_SIZE, "message_id")


Body: TypeAlias = (
    BindRequest
    | BindResp
    | Outbind
    | Unbind
    | UnbindResp
    | EnquireLink
    | EnquireLinkResp
    | GenericNack
    | SubmitSm
    | SubmitSmResp
    | DeliverSm
    | DeliverSmResp
)


# --- Field encoding ------------------------------------------------------------------


def _cstr(value: str, size: int, name: str) -> bytes:
    # 3.1: C-Octet Strings are NUL-terminated; `size` counts the NUL.
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"{name} must be latin-1 text: {value!r}") from None
    if len(raw) >= size:
        raise LocalProtocolError(f"{name} is {len(raw)} octets; SMPP 3.4 allows {size - 1}")
    if b"\0" in raw:
        raise LocalProtocolError(f"{name} contains NUL")
    return raw + b"\0"


def _u8(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name} must fit one octet: {value}")
    return bytes((value,))


def encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    """TLVs in order (5.3.1); raises LocalProtocolError for a tag or value too large."""
    parts = []
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > MAX_TLV_VALUE_LENGTH:
            raise LocalProtocolError(f"TLV 0x{tag:04X} does not fit 5.3.1's 16-bit fields")
        parts.append(TLV_HEADER.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


def tlv_int(value: int, size: int) -> bytes:
    """Encode an Integer TLV value of `size` octets (5.3.2), big-endian."""
    return value.to_bytes(size, "big")


def tlv_cstr(value: str) -> bytes:
    """Encode a C-Octet String TLV value (NUL-terminated), e.g. receipted_message_id."""
    return value.encode("latin-1") + b"\0"
