"""Sans-IO SMPP 3.4 codec: bytes in, PDUs out; PDUs in, bytes out.

Nothing here touches a socket, a loop or a logger (h11 style). A driver feeds the
bytes it read into a `Decoder` and asks `next_pdu()` for complete PDUs; it turns PDU
bodies into bytes with `encode(body, sequence, status)`.

Two error families, as in h11:

* `LocalProtocolError` — we were asked to build something the spec forbids (a field
  too long, a request with a non-zero status). A bug on our side.
* `RemoteProtocolError` — the peer sent something we cannot parse. When the PDU's
  length header was sane the bad PDU has been consumed and the decoder keeps going, so
  a server can answer `generic_nack` and carry on (`fatal` is False). An insane length
  (< 16 or > `MAX_PDU_LENGTH`) leaves no way to find the next PDU boundary: `fatal` is
  True, the decoder stays broken and the connection must be closed.

Unknown command_status values and unknown TLVs are preserved, never rejected: a
carrier's SMSC speaks dialects, and an ESME that drops what it does not know loses
receipts. Section numbers refer to the SMPP v3.4 specification, Issue 1.2.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

# --- Limits ------------------------------------------------------------------------

#: 3.2: every PDU starts with four 4-octet integers.
HEADER_LENGTH = 16
#: The spec sets no upper bound; message_payload (5.3.2.32) carries at most 64 K octets,
#: and nothing this project sends is near that. Anything longer is a framing error.
MAX_PDU_LENGTH = 64 * 1024
#: 3.2: sequence numbers run 0x00000001..0x7FFFFFFF.
MAX_SEQUENCE = 0x7FFFFFFF
#: 5.2.21: sm_length is 0..254; longer texts travel in message_payload.
MAX_SHORT_MESSAGE = 254
#: 4.1.1 / 4.1.7 / 4.4.1 / 4.4.2: C-Octet String sizes, NUL terminator included.
SYSTEM_ID_SIZE = 16
PASSWORD_SIZE = 9
SYSTEM_TYPE_SIZE = 13
ADDRESS_RANGE_SIZE = 41
SERVICE_TYPE_SIZE = 6
ADDR_SIZE = 21
TIME_SIZE = 17
MESSAGE_ID_SIZE = 65
#: 5.2.4: interface_version for SMPP 3.4.
SMPP_VERSION_34 = 0x34

RESPONSE_BIT = 0x80000000


class CommandId(enum.IntEnum):
    """command_id values (5.1.2.1). Responses are the request id with bit 31 set."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(enum.IntEnum):
    """command_status values (5.1.3). A header keeps the raw int: unknown codes survive."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF


def status_name(status: int) -> str:
    """A log-friendly name for a command_status, including ones the spec does not list."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


class Tag(enum.IntEnum):
    """TLV (optional parameter) tags (5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


class MessageState(enum.IntEnum):
    """message_state values (5.2.28), carried in the message_state TLV of a receipt."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


# 5.2.12 esm_class bits.
ESM_CLASS_DELIVERY_RECEIPT = 0x04  # message type: SMSC delivery receipt (deliver_sm)
ESM_CLASS_UDHI = 0x40  # GSM feature: short_message starts with a User Data Header
# 5.2.17 registered_delivery bits 0-1: 01 = receipt on success or failure, 10 = failure only.
REGISTERED_DELIVERY_MASK = 0x03
# 5.2.19 data_coding. 0x0F is not in the 3.4 table; Chinese SMSCs use it for GBK.
DATA_CODING_DEFAULT = 0x00
DATA_CODING_IA5 = 0x01
DATA_CODING_BINARY = 0x02
DATA_CODING_LATIN1 = 0x03
DATA_CODING_UCS2 = 0x08
DATA_CODING_GBK = 0x0F
# 5.2.5 / 5.2.6 type of number and numbering plan.
TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_NATIONAL = 2
TON_ALPHANUMERIC = 5
NPI_UNKNOWN = 0
NPI_ISDN = 1


class LocalProtocolError(Exception):
    """We were asked to encode something SMPP 3.4 does not allow."""


class RemoteProtocolError(Exception):
    """The peer sent bytes that are not a valid SMPP 3.4 PDU.

    `command_id` and `sequence` come from the offending header so a server can answer
    `generic_nack` with `status` (the command_status the spec suggests for this fault).
    `fatal` means the framing is lost and the connection must be closed.
    """

    def __init__(
        self,
        command_id: int,
        sequence: int,
        reason: str,
        *,
        status: int = CommandStatus.ESME_RSYSERR,
        fatal: bool = False,
    ) -> None:
        super().__init__(f"{reason} (command_id=0x{command_id:08X}, sequence={sequence})")
        self.command_id = command_id
        self.sequence = sequence
        self.reason = reason
        self.status = status
        self.fatal = fatal


# --- PDU bodies --------------------------------------------------------------------

Tlv: TypeAlias = tuple[int, bytes]


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


_BIND_COMMANDS = {
    BindKind.TRANSMITTER: CommandId.BIND_TRANSMITTER,
    BindKind.RECEIVER: CommandId.BIND_RECEIVER,
    BindKind.TRANSCEIVER: CommandId.BIND_TRANSCEIVER,
}
_BIND_KINDS: dict[int, BindKind] = {int(cid): kind for kind, cid in _BIND_COMMANDS.items()}


@dataclass(frozen=True, slots=True)
class Header:
    """The 16-octet PDU header (3.2). `status` is the raw command_status."""

    length: int
    command_id: int
    status: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Bind:
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

    def _body(self) -> bytes:
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

    def _body(self) -> bytes:
        return _cstr(self.system_id, SYSTEM_ID_SIZE, "system_id") + _encode_tlvs(self.tlvs)


@dataclass(frozen=True, slots=True)
class Outbind:
    """outbind (4.1.7): the SMSC asks the ESME to bind_receiver."""

    system_id: str
    password: str
    command_id: ClassVar[int] = CommandId.OUTBIND

    def _body(self) -> bytes:
        return _cstr(self.system_id, SYSTEM_ID_SIZE, "system_id") + _cstr(
            self.password, PASSWORD_SIZE, "password"
        )


@dataclass(frozen=True, slots=True)
class _Empty:
    def _body(self) -> bytes:
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

    def _body(self) -> bytes:
        if len(self.short_message) > MAX_SHORT_MESSAGE:
            raise LocalProtocolError(
                f"short_message is {len(self.short_message)} octets; 5.2.21 allows "
                f"{MAX_SHORT_MESSAGE} (use the message_payload TLV)"
            )
        # The one-octet fields go through struct in groups: this is the hot path of
        # every submit_sm and deliver_sm, and struct also does the range check.
        try:
            source = _PAIR.pack(self.source_ton, self.source_npi)
            dest = _PAIR.pack(self.dest_ton, self.dest_npi)
            flags = _FLAGS.pack(self.esm_class, self.protocol_id, self.priority_flag)
            tail = _TAIL.pack(
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
                _encode_tlvs(self.tlvs),
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

    def _body(self) -> bytes:
        return _cstr(self.message_id, MESSAGE_ID_SIZE, "message_id")


@dataclass(frozen=True, slots=True)
class DeliverSmResp:
    """deliver_sm_resp (4.6.2); message_id is unused and normally empty."""

    message_id: str = ""
    command_id: ClassVar[int] = CommandId.DELIVER_SM_RESP

    def _body(self) -> bytes:
        return _cstr(self.message_id, MESSAGE_ID_SIZE, "message_id")


Body: TypeAlias = (
    Bind
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


@dataclass(frozen=True, slots=True)
class Pdu:
    """One decoded PDU: its header and its typed body."""

    header: Header
    body: Body

    @property
    def sequence(self) -> int:
        """The header's sequence_number."""
        return self.header.sequence

    @property
    def status(self) -> int:
        """The header's raw command_status."""
        return self.header.status


# --- Encoding ------------------------------------------------------------------------

_HEADER = struct.Struct(">IIII")
_TLV_HEADER = struct.Struct(">HH")
# 4.4.1 one-octet field groups: ton+npi; esm_class, protocol_id, priority_flag;
# registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length.
_PAIR = struct.Struct("BB")
_FLAGS = struct.Struct("BBB")
_TAIL = struct.Struct("BBBBB")


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


def _encode_tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    parts = []
    for tag, value in tlvs:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise LocalProtocolError(f"TLV 0x{tag:04X} does not fit 5.3.1's 16-bit fields")
        parts.append(_TLV_HEADER.pack(tag, len(value)))
        parts.append(value)
    return b"".join(parts)


def tlv_int(value: int, size: int) -> bytes:
    """Encode an Integer TLV value of `size` octets (5.3.2), big-endian."""
    return value.to_bytes(size, "big")


def tlv_cstr(value: str) -> bytes:
    """Encode a C-Octet String TLV value (NUL-terminated), e.g. receipted_message_id."""
    return value.encode("latin-1") + b"\0"


def encode(body: Body, sequence: int, status: int = 0) -> bytes:
    """Serialise one PDU. Raises LocalProtocolError for anything SMPP 3.4 forbids."""
    command_id = body.command_id
    is_response = bool(command_id & RESPONSE_BIT)
    if not 0 <= status <= 0xFFFFFFFF:
        raise LocalProtocolError(f"command_status out of range: {status}")
    if not is_response and status != 0:
        raise LocalProtocolError("3.2: a request's command_status must be NULL (0)")
    # generic_nack echoes whatever sequence the peer sent, valid or not.
    limit = 0xFFFFFFFF if command_id == CommandId.GENERIC_NACK else MAX_SEQUENCE
    if not 0 <= sequence <= limit:
        raise LocalProtocolError(f"sequence_number out of range: {sequence}")
    if is_response and status != 0 and isinstance(body, (BindResp, SubmitSmResp)):
        # 4.1.2, 4.4.2: the body is not returned with a non-zero command_status.
        payload = b""
    else:
        payload = body._body()
    length = HEADER_LENGTH + len(payload)
    if length > MAX_PDU_LENGTH:
        raise LocalProtocolError(f"PDU of {length} octets exceeds {MAX_PDU_LENGTH}")
    return _HEADER.pack(length, command_id, status, sequence) + payload


# --- Decoding ------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, reason: str, status: int = CommandStatus.ESME_RSYSERR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Reader:
    """A cursor over one PDU body."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def cstr(self, name: str) -> str:
        nul = self.data.find(b"\0", self.pos)
        if nul < 0:
            raise _Malformed(
                f"{name}: C-Octet String not terminated", CommandStatus.ESME_RINVMSGLEN
            )
        value = self.data[self.pos : nul].decode("latin-1")
        self.pos = nul + 1
        return value

    def u8(self, name: str) -> int:
        if self.pos >= self.end:
            raise _Malformed(f"{name}: body truncated", CommandStatus.ESME_RINVMSGLEN)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def unpack(self, fields: struct.Struct, name: str) -> tuple[int, ...]:
        if self.pos + fields.size > self.end:
            raise _Malformed(f"{name}: body truncated", CommandStatus.ESME_RINVMSGLEN)
        values = fields.unpack_from(self.data, self.pos)
        self.pos += fields.size
        return values

    def octets(self, n: int, name: str) -> bytes:
        if self.pos + n > self.end:
            raise _Malformed(
                f"{name}: {n} octets announced, body too short", CommandStatus.ESME_RINVMSGLEN
            )
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> tuple[Tlv, ...]:
        # 5.3.1: tag (2), length (2), value (length); order and unknown tags kept.
        out: list[Tlv] = []
        data, pos, end = self.data, self.pos, self.end
        while pos < end:
            if pos + 4 > end:
                raise _Malformed("TLV header truncated", CommandStatus.ESME_RINVOPTPARSTREAM)
            tag, size = _TLV_HEADER.unpack_from(data, pos)
            pos += 4
            if pos + size > end:
                raise _Malformed(
                    f"TLV 0x{tag:04X} overruns the PDU", CommandStatus.ESME_RINVOPTPARSTREAM
                )
            out.append((tag, data[pos : pos + size]))
            pos += size
        self.pos = pos
        return tuple(out)

    def done(self) -> None:
        if self.pos != self.end:
            raise _Malformed(
                f"{self.end - self.pos} unexpected octets after the body",
                CommandStatus.ESME_RINVCMDLEN,
            )


def _decode_bind(data: bytes, command_id: int, status: int) -> Body:
    r = _Reader(data)
    body = Bind(
        kind=_BIND_KINDS[command_id],
        system_id=r.cstr("system_id"),
        password=r.cstr("password"),
        system_type=r.cstr("system_type"),
        interface_version=r.u8("interface_version"),
        addr_ton=r.u8("addr_ton"),
        addr_npi=r.u8("addr_npi"),
        address_range=r.cstr("address_range"),
    )
    r.done()
    return body


def _decode_bind_resp(data: bytes, command_id: int, status: int) -> Body:
    kind = _BIND_KINDS[command_id & ~RESPONSE_BIT]
    if not data:  # 4.1.2: no body with an error status (some SMSCs omit it on success too)
        return BindResp(kind)
    r = _Reader(data)
    system_id = r.cstr("system_id")
    return BindResp(kind, system_id, r.tlvs())


def _decode_outbind(data: bytes, command_id: int, status: int) -> Body:
    r = _Reader(data)
    body = Outbind(r.cstr("system_id"), r.cstr("password"))
    r.done()
    return body


def _decode_short_message(data: bytes, command_id: int, status: int) -> Body:
    r = _Reader(data)
    cls = SubmitSm if command_id == CommandId.SUBMIT_SM else DeliverSm
    service_type = r.cstr("service_type")
    source_ton, source_npi = r.unpack(_PAIR, "source_addr_ton")
    source_addr = r.cstr("source_addr")
    dest_ton, dest_npi = r.unpack(_PAIR, "dest_addr_ton")
    dest_addr = r.cstr("destination_addr")
    esm_class, protocol_id, priority_flag = r.unpack(_FLAGS, "esm_class")
    schedule = r.cstr("schedule_delivery_time")
    validity = r.cstr("validity_period")
    registered_delivery, replace_if_present, data_coding, sm_default_msg_id, sm_length = r.unpack(
        _TAIL, "registered_delivery"
    )
    short_message = r.octets(sm_length, "short_message")
    return cls(
        service_type=service_type,
        source_ton=source_ton,
        source_npi=source_npi,
        source_addr=source_addr,
        dest_ton=dest_ton,
        dest_npi=dest_npi,
        dest_addr=dest_addr,
        esm_class=esm_class,
        protocol_id=protocol_id,
        priority_flag=priority_flag,
        schedule_delivery_time=schedule,
        validity_period=validity,
        registered_delivery=registered_delivery,
        replace_if_present=replace_if_present,
        data_coding=data_coding,
        sm_default_msg_id=sm_default_msg_id,
        short_message=short_message,
        tlvs=r.tlvs(),
    )


def _decode_message_id_resp(data: bytes, command_id: int, status: int) -> Body:
    cls = SubmitSmResp if command_id == CommandId.SUBMIT_SM_RESP else DeliverSmResp
    if not data:  # 4.4.2: no body with an error status
        return cls()
    r = _Reader(data)
    body = cls(r.cstr("message_id"))
    r.done()
    return body


_EMPTY_BODIES: dict[int, Body] = {
    CommandId.UNBIND: Unbind(),
    CommandId.UNBIND_RESP: UnbindResp(),
    CommandId.ENQUIRE_LINK: EnquireLink(),
    CommandId.ENQUIRE_LINK_RESP: EnquireLinkResp(),
    CommandId.GENERIC_NACK: GenericNack(),
}


def _decode_empty(data: bytes, command_id: int, status: int) -> Body:
    # 4.2, 4.3, 4.11: header-only PDUs; command_length must be exactly 16.
    if data:
        raise _Malformed(
            f"{len(data)} octets of body on a header-only PDU", CommandStatus.ESME_RINVCMDLEN
        )
    return _EMPTY_BODIES[command_id]


_Parser: TypeAlias = Callable[[bytes, int, int], Body]

_PARSERS: dict[int, _Parser] = {
    CommandId.BIND_TRANSMITTER: _decode_bind,
    CommandId.BIND_RECEIVER: _decode_bind,
    CommandId.BIND_TRANSCEIVER: _decode_bind,
    CommandId.BIND_TRANSMITTER_RESP: _decode_bind_resp,
    CommandId.BIND_RECEIVER_RESP: _decode_bind_resp,
    CommandId.BIND_TRANSCEIVER_RESP: _decode_bind_resp,
    CommandId.OUTBIND: _decode_outbind,
    CommandId.UNBIND: _decode_empty,
    CommandId.UNBIND_RESP: _decode_empty,
    CommandId.ENQUIRE_LINK: _decode_empty,
    CommandId.ENQUIRE_LINK_RESP: _decode_empty,
    CommandId.GENERIC_NACK: _decode_empty,
    CommandId.SUBMIT_SM: _decode_short_message,
    CommandId.DELIVER_SM: _decode_short_message,
    CommandId.SUBMIT_SM_RESP: _decode_message_id_resp,
    CommandId.DELIVER_SM_RESP: _decode_message_id_resp,
}


def decode_body(header: Header, data: bytes) -> Body:
    """Decode one PDU body whose header is already known; raises RemoteProtocolError."""
    parser = _PARSERS.get(header.command_id)
    if parser is None:
        raise RemoteProtocolError(
            header.command_id,
            header.sequence,
            "unknown or unsupported command_id",
            status=CommandStatus.ESME_RINVCMDID,
        )
    try:
        return parser(data, header.command_id, header.status)
    except _Malformed as exc:
        raise RemoteProtocolError(
            header.command_id, header.sequence, exc.reason, status=exc.status
        ) from None


class Decoder:
    """Streaming PDU decoder: `feed()` bytes as they arrive, then drain `next_pdu()`."""

    #: Consumed bytes are only cut from the buffer past this much, so a burst of small
    #: PDUs costs one memmove, not one per PDU.
    _COMPACT_AT = 64 * 1024

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max_length = max_length
        self._fatal: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a PDU."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append bytes read from the peer."""
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > self._COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_pdu(self) -> Pdu | None:
        """The next complete PDU, or None if more bytes are needed.

        Raises RemoteProtocolError for a malformed PDU. If the error is not `fatal` the
        bad PDU was skipped and decoding can continue with the next call.
        """
        if self._fatal is not None:
            raise self._fatal
        buf, pos = self._buf, self._pos
        available = len(buf) - pos
        if available < HEADER_LENGTH:
            return None
        length, command_id, status, sequence = _HEADER.unpack_from(buf, pos)
        if length < HEADER_LENGTH or length > self._max_length:
            self._fatal = RemoteProtocolError(
                command_id,
                sequence,
                f"command_length {length} outside {HEADER_LENGTH}..{self._max_length}",
                status=CommandStatus.ESME_RINVCMDLEN,
                fatal=True,
            )
            raise self._fatal
        if available < length:
            return None
        data = bytes(buf[pos + HEADER_LENGTH : pos + length])
        self._pos = pos + length
        header = Header(length, command_id, status, sequence)
        return Pdu(header, decode_body(header, data))


def decode_all(data: bytes) -> list[Pdu]:
    """Decode a byte string holding whole PDUs (a convenience for tests and tools)."""
    decoder = Decoder()
    decoder.feed(data)
    out = []
    while (pdu := decoder.next_pdu()) is not None:
        out.append(pdu)
    if decoder.buffered:
        raise RemoteProtocolError(0, 0, f"{decoder.buffered} trailing octets", fatal=True)
    return out
