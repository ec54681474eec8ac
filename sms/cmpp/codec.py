"""Sans-IO CMPP framing: bytes in, messages out; messages in, bytes out.

Nothing here touches a socket, a loop or a logger (h11 style). A driver feeds what it
read into a `Decoder` for its version and asks `next_pdu()` for complete messages; it
turns bodies (`sms.cmpp.pdu`) into bytes with `encode(body, sequence, version)`.

Errors are `pdu.LocalCmppError` (what we were asked to build is not CMPP) and
`pdu.RemoteCmppError` (what the peer sent is not): a malformed message with a sane
Total_Length is consumed and reported (`fatal` False; its octets are on the error as
`raw`, so a CMPP_DELIVER can still be stored and answered); an impossible length breaks
the decoder for good (`fatal` True). Sizes are checked exactly: a 3.0 message on a 2.0
bind (or the reverse) is reported, not misread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from sms.cmpp.constants import (
    AUTHENTICATOR_SIZE,
    FEE_CODE_SIZE,
    FEE_TYPE_SIZE,
    HEADER_LENGTH,
    LINK_ID_SIZE,
    MAX_PDU_LENGTH,
    MAX_SEQUENCE,
    MSG_SRC_SIZE,
    RESERVE_SIZE,
    RESPONSE_BIT,
    RESULT_SIZE,
    SERVICE_ID_SIZE,
    SOURCE_ADDR_SIZE,
    SRC_ID_SIZE,
    TERMINAL_ID_SIZE,
    TIME_SIZE,
    CommandId,
    Version,
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
    Reader,
    RemoteCmppError,
    Submit,
    SubmitResp,
    Terminate,
    TerminateResp,
    Truncated,
)

_HEADER = struct.Struct(">III")


@dataclass(frozen=True, slots=True)
class Header:
    """The 12-octet message header (7.3)."""

    length: int
    command_id: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Pdu:
    """One decoded message: its header, its typed body and its octets as received."""

    header: Header
    body: Body
    raw: bytes

    @property
    def sequence(self) -> int:
        """The header's Sequence_Id."""
        return self.header.sequence


def encode(body: Body, sequence: int, version: Version) -> bytes:
    """Serialise one message. Raises LocalCmppError for anything CMPP forbids."""
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise LocalCmppError(f"Sequence_Id out of range: {sequence}")
    payload = body.pack(version)
    length = HEADER_LENGTH + len(payload)
    if length > MAX_PDU_LENGTH:
        raise LocalCmppError(f"message of {length} octets exceeds {MAX_PDU_LENGTH}")
    return _HEADER.pack(length, body.command_id, sequence) + payload


# --- Decoding ------------------------------------------------------------------------


class _Malformed(Exception):
    pass


def _done(r: Reader, what: str, version: Version) -> None:
    if r.left:
        raise _Malformed(
            f"{r.left} octets more than a CMPP {version.label[-1]}.0 {what} holds "
            "(is the bind's protocol the ISMG's version?)"
        )


def _connect(data: bytes, version: Version) -> Body:
    r = Reader(data)
    body = Connect(
        source_addr=r.text(SOURCE_ADDR_SIZE, "Source_Addr"),
        authenticator=r.take(AUTHENTICATOR_SIZE, "AuthenticatorSource"),
        version=r.uint(1, "Version"),
        timestamp=r.uint(4, "Timestamp"),
    )
    _done(r, "CMPP_CONNECT", version)
    return body


def _connect_resp(data: bytes, version: Version) -> Body:
    r = Reader(data)
    body = ConnectResp(
        status=r.uint(RESULT_SIZE[version], "Status"),
        authenticator=r.take(AUTHENTICATOR_SIZE, "AuthenticatorISMG"),
        version=r.uint(1, "Version"),
    )
    _done(r, "CMPP_CONNECT_RESP", version)
    return body


def _submit(data: bytes, version: Version) -> Body:
    r = Reader(data)
    v3 = version is Version.V30
    terminal = TERMINAL_ID_SIZE[version]
    msg_id = r.uint(8, "Msg_Id")
    pk_total, pk_number, registered, level = r.take(4, "Pk_total")
    service_id = r.text(SERVICE_ID_SIZE, "Service_Id")
    fee_user_type = r.uint(1, "Fee_UserType")
    fee_terminal_id = r.text(terminal, "Fee_terminal_Id")
    fee_terminal_type = r.uint(1, "Fee_terminal_type") if v3 else 0
    tp_pid, tp_udhi, msg_fmt = r.take(3, "TP_pId")
    msg_src = r.text(MSG_SRC_SIZE, "Msg_src")
    fee_type = r.text(FEE_TYPE_SIZE, "FeeType")
    fee_code = r.text(FEE_CODE_SIZE, "FeeCode")
    valid_time = r.text(TIME_SIZE, "ValId_Time")
    at_time = r.text(TIME_SIZE, "At_Time")
    src_id = r.text(SRC_ID_SIZE, "Src_Id")
    count = r.uint(1, "DestUsr_tl")
    dests = tuple(r.text(terminal, "Dest_terminal_Id") for _ in range(count))
    dest_type = r.uint(1, "Dest_terminal_type") if v3 else 0
    content = r.take(r.uint(1, "Msg_Length"), "Msg_Content")
    link_id = r.text(LINK_ID_SIZE, "LinkID") if v3 else ""
    if not v3:
        r.take(RESERVE_SIZE, "Reserve")
    _done(r, "CMPP_SUBMIT", version)
    return Submit(
        msg_id=msg_id,
        pk_total=pk_total,
        pk_number=pk_number,
        registered_delivery=registered,
        msg_level=level,
        service_id=service_id,
        fee_user_type=fee_user_type,
        fee_terminal_id=fee_terminal_id,
        fee_terminal_type=fee_terminal_type,
        tp_pid=tp_pid,
        tp_udhi=tp_udhi,
        msg_fmt=msg_fmt,
        msg_src=msg_src,
        fee_type=fee_type,
        fee_code=fee_code,
        valid_time=valid_time,
        at_time=at_time,
        src_id=src_id,
        dest_terminal_ids=dests,
        dest_terminal_type=dest_type,
        content=content,
        link_id=link_id,
    )


def _id_result(cls: type[SubmitResp] | type[DeliverResp], what: str) -> _Parser:
    def parse(data: bytes, version: Version) -> Body:
        r = Reader(data)
        body = cls(r.uint(8, "Msg_Id"), r.uint(RESULT_SIZE[version], "Result"))
        _done(r, what, version)
        return body

    return parse


def _deliver(data: bytes, version: Version) -> Body:
    r = Reader(data)
    v3 = version is Version.V30
    msg_id = r.uint(8, "Msg_Id")
    dest_id = r.text(SRC_ID_SIZE, "Dest_Id")
    service_id = r.text(SERVICE_ID_SIZE, "Service_Id")
    tp_pid, tp_udhi, msg_fmt = r.take(3, "TP_pid")
    src = r.text(TERMINAL_ID_SIZE[version], "Src_terminal_Id")
    src_type = r.uint(1, "Src_terminal_type") if v3 else 0
    registered = r.uint(1, "Registered_Delivery")
    content = r.take(r.uint(1, "Msg_Length"), "Msg_Content")
    link_id = r.text(LINK_ID_SIZE, "LinkID") if v3 else ""
    if not v3:
        r.take(RESERVE_SIZE, "Reserved")
    _done(r, "CMPP_DELIVER", version)
    return Deliver(
        msg_id=msg_id,
        dest_id=dest_id,
        service_id=service_id,
        tp_pid=tp_pid,
        tp_udhi=tp_udhi,
        msg_fmt=msg_fmt,
        src_terminal_id=src,
        src_terminal_type=src_type,
        registered_delivery=registered,
        content=content,
        link_id=link_id,
    )


def _active_test_resp(data: bytes, version: Version) -> Body:
    # 7.4.7.2: one Reserved octet. Some ISMGs send none; nothing depends on it.
    if len(data) > 1:
        raise _Malformed(f"{len(data)} octets in a CMPP_ACTIVE_TEST_RESP (1 expected)")
    return ActiveTestResp(data[0] if data else 0)


_EMPTY: dict[int, Body] = {
    CommandId.TERMINATE: Terminate(),
    CommandId.TERMINATE_RESP: TerminateResp(),
    CommandId.ACTIVE_TEST: ActiveTest(),
}


def _empty(command_id: int) -> _Parser:
    def parse(data: bytes, version: Version) -> Body:
        if data:
            raise _Malformed(f"{len(data)} octets of body on a header-only message")
        return _EMPTY[command_id]

    return parse


_Parser: TypeAlias = Callable[[bytes, Version], Body]

_PARSERS: dict[int, _Parser] = {
    CommandId.CONNECT: _connect,
    CommandId.CONNECT_RESP: _connect_resp,
    CommandId.TERMINATE: _empty(CommandId.TERMINATE),
    CommandId.TERMINATE_RESP: _empty(CommandId.TERMINATE_RESP),
    CommandId.SUBMIT: _submit,
    CommandId.SUBMIT_RESP: _id_result(SubmitResp, "CMPP_SUBMIT_RESP"),
    CommandId.DELIVER: _deliver,
    CommandId.DELIVER_RESP: _id_result(DeliverResp, "CMPP_DELIVER_RESP"),
    CommandId.ACTIVE_TEST: _empty(CommandId.ACTIVE_TEST),
    CommandId.ACTIVE_TEST_RESP: _active_test_resp,
}


def decode_body(header: Header, data: bytes, version: Version) -> Body:
    """Decode one body whose header is known; raises RemoteCmppError."""
    parser = _PARSERS.get(header.command_id)
    if parser is None:
        raise RemoteCmppError(header.command_id, header.sequence, "unknown or unsupported")
    try:
        return parser(data, version)
    except (_Malformed, Truncated) as exc:
        raise RemoteCmppError(header.command_id, header.sequence, str(exc)) from None


def decode_message(raw: bytes, version: Version) -> Pdu:
    """Decode one whole message (its header and body), e.g. a stored CMPP_DELIVER."""
    if len(raw) < HEADER_LENGTH:
        raise RemoteCmppError(0, 0, f"{len(raw)} octets: shorter than a header", fatal=True)
    length, command_id, sequence = _HEADER.unpack_from(raw)
    if length != len(raw):
        raise RemoteCmppError(command_id, sequence, f"Total_Length {length} != {len(raw)}")
    header = Header(length, command_id, sequence)
    return Pdu(header, decode_body(header, raw[HEADER_LENGTH:], version), raw)


class MalformedMessage(RemoteCmppError):
    """A message with a sane length whose body is not valid; it was consumed."""

    def __init__(self, error: RemoteCmppError, raw: bytes) -> None:
        super().__init__(error.command_id, error.sequence, error.reason)
        self.raw = raw


class Decoder:
    """Streaming decoder for one connection: `feed()` bytes, then drain `next_pdu()`."""

    #: Consumed octets are cut from the buffer only past this much (one memmove per
    #: burst, not per message).
    _COMPACT_AT = 64 * 1024

    def __init__(self, version: Version, max_length: int = MAX_PDU_LENGTH) -> None:
        self.version = version
        self._buf = bytearray()
        self._pos = 0
        self._max_length = max_length
        self._fatal: RemoteCmppError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a message."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append octets read from the peer."""
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > self._COMPACT_AT:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_pdu(self) -> Pdu | None:
        """The next complete message, or None if more octets are needed.

        Raises `MalformedMessage` (not fatal: skipped, decoding goes on) or a fatal
        RemoteCmppError, which every later call raises again.
        """
        if self._fatal is not None:
            raise self._fatal
        buf, pos = self._buf, self._pos
        if len(buf) - pos < HEADER_LENGTH:
            return None
        length, command_id, sequence = _HEADER.unpack_from(buf, pos)
        if length < HEADER_LENGTH or length > self._max_length:
            self._fatal = RemoteCmppError(
                command_id,
                sequence,
                f"Total_Length {length} outside {HEADER_LENGTH}..{self._max_length}",
                fatal=True,
            )
            raise self._fatal
        if len(buf) - pos < length:
            return None
        raw = bytes(buf[pos : pos + length])
        self._pos = pos + length
        header = Header(length, command_id, sequence)
        try:
            body = decode_body(header, raw[HEADER_LENGTH:], self.version)
        except RemoteCmppError as exc:
            raise MalformedMessage(exc, raw) from None
        return Pdu(header, body, raw)


def decode_all(data: bytes, version: Version) -> list[Pdu]:
    """Decode octets holding whole messages (a convenience for tests and tools)."""
    decoder = Decoder(version)
    decoder.feed(data)
    out = []
    while (pdu := decoder.next_pdu()) is not None:
        out.append(pdu)
    if decoder.buffered:
        raise RemoteCmppError(0, 0, f"{decoder.buffered} trailing octets", fatal=True)
    return out


def is_response(command_id: int) -> bool:
    """Whether a Command_Id is a response (7.3: bit 31 set)."""
    return bool(command_id & RESPONSE_BIT)
