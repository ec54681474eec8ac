"""Sans-IO SMPP 3.4 framing: bytes in, PDUs out; PDUs in, bytes out.

Nothing here touches a socket, a loop or a logger (h11 style). A driver feeds the
bytes it read into a `Decoder` and asks `next_pdu()` for complete PDUs; it turns PDU
bodies (`sms.smpp.pdu`) into bytes with `encode(body, sequence, status)`.

Errors are the two families of `sms.smpp.errors`: `LocalProtocolError` for what we
were asked to build and the spec forbids, `RemoteProtocolError` for what the peer
sent; a malformed PDU with a sane length is skipped (`fatal` False), an insane length
breaks the decoder for good (`fatal` True). Unknown command_status values are kept as
raw ints in the header, never rejected.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from sms.smpp.constants import (
    HEADER_LENGTH,
    MAX_PDU_LENGTH,
    MAX_SEQUENCE,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
)
from sms.smpp.errors import LocalProtocolError, RemoteProtocolError
from sms.smpp.pdu import (
    MESSAGE_FLAGS,
    MESSAGE_TAIL,
    TLV_HEADER,
    TON_NPI,
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
    Tlv,
    Unbind,
    UnbindResp,
)


@dataclass(frozen=True, slots=True)
class Header:
    """The 16-octet PDU header (3.2). `status` is the raw command_status."""

    length: int
    command_id: int
    status: int
    sequence: int


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
        payload = body.pack()
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
            if pos + TLV_HEADER.size > end:
                raise _Malformed("TLV header truncated", CommandStatus.ESME_RINVOPTPARSTREAM)
            tag, size = TLV_HEADER.unpack_from(data, pos)
            pos += TLV_HEADER.size
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
    body = BindRequest(
        kind=BindKind.of(command_id),
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
    kind = BindKind.of(command_id)
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
    source_ton, source_npi = r.unpack(TON_NPI, "source_addr_ton")
    source_addr = r.cstr("source_addr")
    dest_ton, dest_npi = r.unpack(TON_NPI, "dest_addr_ton")
    dest_addr = r.cstr("destination_addr")
    esm_class, protocol_id, priority_flag = r.unpack(MESSAGE_FLAGS, "esm_class")
    schedule = r.cstr("schedule_delivery_time")
    validity = r.cstr("validity_period")
    registered_delivery, replace_if_present, data_coding, sm_default_msg_id, sm_length = r.unpack(
        MESSAGE_TAIL, "registered_delivery"
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
