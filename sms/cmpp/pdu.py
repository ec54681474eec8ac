"""CMPP message bodies: one frozen dataclass per operation, how each packs for a
version, and the values carried inside fields (Msg_Id, the authenticators, the status
report).

The codec (`sms.cmpp.codec`) frames them and decodes bytes back into these classes.
Nothing here touches a socket, a loop or a logger. Building a body the spec forbids
raises `LocalCmppError` when it is packed. Section numbers: see `sms.cmpp.constants`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, TypeAlias

from sms.cmpp.constants import (
    AUTH_ZERO_PAD,
    AUTHENTICATOR_SIZE,
    FEE_CODE_SIZE,
    FEE_TYPE_SIZE,
    LINK_ID_SIZE,
    MAX_ASCII_CONTENT,
    MAX_CONTENT,
    MAX_DESTINATIONS,
    MSG_SRC_SIZE,
    REGISTERED_DELIVERY_REPORT,
    REPORT_SIZE,
    REPORT_TIME_SIZE,
    RESERVE_SIZE,
    RESULT_SIZE,
    SERVICE_ID_SIZE,
    SOURCE_ADDR_SIZE,
    SRC_ID_SIZE,
    STAT_SIZE,
    TERMINAL_ID_SIZE,
    TIME_SIZE,
    TIMESTAMP_DIGITS,
    CommandId,
    MsgFmt,
    Version,
)


class CmppError(Exception):
    """Something about a CMPP message is wrong."""


class LocalCmppError(CmppError):
    """We were asked to build something CMPP does not allow (our bug or our input)."""


class RemoteCmppError(CmppError):
    """The peer sent bytes that are not a valid CMPP message.

    `command_id` and `sequence` come from the offending header. `fatal` means the
    framing is lost (an impossible Total_Length): the connection must be closed. When it
    is not fatal the bad message was consumed and decoding can go on.
    """

    def __init__(self, command_id: int, sequence: int, reason: str, *, fatal: bool = False):
        super().__init__(f"{reason} (command_id=0x{command_id:08X}, sequence={sequence})")
        self.command_id = command_id
        self.sequence = sequence
        self.reason = reason
        self.fatal = fatal


# --- Msg_Id (7.4.3.2) ------------------------------------------------------------------

_MSG_ID_FIELDS = (("month", 4), ("day", 5), ("hour", 5), ("minute", 6), ("second", 6))
_GATEWAY_BITS, _SEQUENCE_BITS = 22, 16


@dataclass(frozen=True, slots=True)
class MsgId:
    """The 64-bit Msg_Id and its layout (7.4.3.2): bits 64-61 month, 60-56 day, 55-51
    hour, 50-45 minute, 44-39 second, 38-17 the ISMG's code, 16-1 a sequence number.

    The gateway keeps `value` and shows it as `text` (decimal): the CMPP_SUBMIT_RESP
    and the status report carry the same 8 octets, so both sides of a receipt match
    go through this one spelling.
    """

    value: int

    @property
    def text(self) -> str:
        """The id as stored and shown: the unsigned 64-bit value in decimal."""
        return str(self.value)

    def parts(self) -> dict[str, int]:
        """The layout's fields (for logs and the operator): month .. sequence."""
        out: dict[str, int] = {}
        shift = 64
        for name, bits in (*_MSG_ID_FIELDS, ("gateway", _GATEWAY_BITS)):
            shift -= bits
            out[name] = (self.value >> shift) & ((1 << bits) - 1)
        out["sequence"] = self.value & ((1 << _SEQUENCE_BITS) - 1)
        return out

    @classmethod
    def build(cls, when: datetime, gateway: int, sequence: int) -> MsgId:
        """A Msg_Id laid out as 7.4.3.2 says (an ISMG makes these; tests do too)."""
        if not 0 <= gateway < 1 << _GATEWAY_BITS or not 0 <= sequence < 1 << _SEQUENCE_BITS:
            raise LocalCmppError("Msg_Id gateway code or sequence out of range")
        value = 0
        for name, bits in _MSG_ID_FIELDS:
            value = (value << bits) | getattr(when, name)
        value = (value << _GATEWAY_BITS) | gateway
        return cls((value << _SEQUENCE_BITS) | sequence)


def msg_id_text(value: int) -> str:
    """The one spelling of a Msg_Id in the gateway (see `MsgId.text`)."""
    return MsgId(value).text


# --- Authentication (7.4.1) -------------------------------------------------------------


def timestamp(when: datetime) -> int:
    """7.4.1.1 Timestamp: MMDDHHMMSS as an integer (the SP's local clock)."""
    return int(when.strftime("%m%d%H%M%S"))


def authenticator_source(sp_id: str, secret: str, stamp: int) -> bytes:
    """7.4.1.1 AuthenticatorSource = MD5(Source_Addr + 9 zero octets + shared secret +
    the timestamp's 10 digits)."""
    data = (
        _octets(sp_id, SOURCE_ADDR_SIZE, "Source_Addr")
        + bytes(AUTH_ZERO_PAD)
        + secret.encode("ascii")
        + f"{stamp:0{TIMESTAMP_DIGITS}d}".encode("ascii")
    )
    return hashlib.md5(data, usedforsecurity=False).digest()


def authenticator_ismg(status: int, source: bytes, secret: str, version: Version) -> bytes:
    """7.4.1.2 AuthenticatorISMG = MD5(Status + AuthenticatorSource + shared secret),
    Status in its wire size (1 octet in 2.0, 4 in 3.0)."""
    data = status.to_bytes(RESULT_SIZE[version], "big") + source + secret.encode("ascii")
    return hashlib.md5(data, usedforsecurity=False).digest()


# --- Bodies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connect:
    """CMPP_CONNECT (7.4.1.1): SP → ISMG."""

    source_addr: str
    authenticator: bytes
    version: int
    timestamp: int
    command_id: ClassVar[int] = CommandId.CONNECT

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version` (the same in both)."""
        if len(self.authenticator) != AUTHENTICATOR_SIZE:
            raise LocalCmppError("AuthenticatorSource must be 16 octets")
        return (
            _octets(self.source_addr, SOURCE_ADDR_SIZE, "Source_Addr")
            + self.authenticator
            + _uint(self.version, 1, "Version")
            + _uint(self.timestamp, 4, "Timestamp")
        )


@dataclass(frozen=True, slots=True)
class ConnectResp:
    """CMPP_CONNECT_RESP (7.4.1.2): Status (1 octet in 2.0, 4 in 3.0)."""

    status: int
    authenticator: bytes = bytes(AUTHENTICATOR_SIZE)
    version: int = Version.V30
    command_id: ClassVar[int] = CommandId.CONNECT_RESP

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version`."""
        if len(self.authenticator) != AUTHENTICATOR_SIZE:
            raise LocalCmppError("AuthenticatorISMG must be 16 octets")
        return (
            _uint(self.status, RESULT_SIZE[version], "Status")
            + self.authenticator
            + _uint(self.version, 1, "Version")
        )


@dataclass(frozen=True, slots=True)
class _Empty:
    def pack(self, version: Version) -> bytes:
        """No body."""
        return b""


@dataclass(frozen=True, slots=True)
class Terminate(_Empty):
    """CMPP_TERMINATE (7.4.2.1), either side."""

    command_id: ClassVar[int] = CommandId.TERMINATE


@dataclass(frozen=True, slots=True)
class TerminateResp(_Empty):
    """CMPP_TERMINATE_RESP (7.4.2.2)."""

    command_id: ClassVar[int] = CommandId.TERMINATE_RESP


@dataclass(frozen=True, slots=True)
class ActiveTest(_Empty):
    """CMPP_ACTIVE_TEST (7.4.7.1), either side."""

    command_id: ClassVar[int] = CommandId.ACTIVE_TEST


@dataclass(frozen=True, slots=True)
class ActiveTestResp:
    """CMPP_ACTIVE_TEST_RESP (7.4.7.2): one Reserved octet."""

    reserved: int = 0
    command_id: ClassVar[int] = CommandId.ACTIVE_TEST_RESP

    def pack(self, version: Version) -> bytes:
        """The body's octets."""
        return _uint(self.reserved, 1, "Reserved")


@dataclass(frozen=True, slots=True, kw_only=True)
class Submit:
    """CMPP_SUBMIT (7.4.3.1): SP → ISMG. Field sizes differ by version (terminal ids
    of 21 or 32 octets; 3.0 adds the terminal types and LinkID in place of Reserve)."""

    msg_id: int = 0  # filled by the ISMG
    pk_total: int = 1
    pk_number: int = 1
    registered_delivery: int = REGISTERED_DELIVERY_REPORT
    msg_level: int = 0
    service_id: str = ""
    fee_user_type: int = 0
    fee_terminal_id: str = ""
    fee_terminal_type: int = 0  # 3.0 only
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MsgFmt.UCS2
    msg_src: str = ""
    fee_type: str = "01"
    fee_code: str = ""
    valid_time: str = ""
    at_time: str = ""
    src_id: str = ""
    dest_terminal_ids: tuple[str, ...] = ()
    dest_terminal_type: int = 0  # 3.0 only
    content: bytes = b""
    link_id: str = ""  # 3.0 only; 2.0 sends 8 zero octets of Reserve
    command_id: ClassVar[int] = CommandId.SUBMIT

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version`."""
        terminal = TERMINAL_ID_SIZE[version]
        if not 1 <= len(self.dest_terminal_ids) <= MAX_DESTINATIONS:
            raise LocalCmppError(f"DestUsr_tl must be 1..{MAX_DESTINATIONS}")
        limit = MAX_ASCII_CONTENT if self.msg_fmt == MsgFmt.ASCII else MAX_CONTENT
        if len(self.content) > limit:
            raise LocalCmppError(
                f"Msg_Content is {len(self.content)} octets; 7.4.3.1 allows {limit} "
                f"with Msg_Fmt {self.msg_fmt}"
            )
        v3 = version is Version.V30
        head = (
            _uint(self.msg_id, 8, "Msg_Id")
            + _u8s(self.pk_total, self.pk_number, self.registered_delivery, self.msg_level)
            + _octets(self.service_id, SERVICE_ID_SIZE, "Service_Id")
            + _u8s(self.fee_user_type)
            + _octets(self.fee_terminal_id, terminal, "Fee_terminal_Id")
            + (_u8s(self.fee_terminal_type) if v3 else b"")
            + _u8s(self.tp_pid, self.tp_udhi, self.msg_fmt)
            + _octets(self.msg_src, MSG_SRC_SIZE, "Msg_src")
            + _octets(self.fee_type, FEE_TYPE_SIZE, "FeeType")
            + _octets(self.fee_code, FEE_CODE_SIZE, "FeeCode")
            + _octets(self.valid_time, TIME_SIZE, "ValId_Time")
            + _octets(self.at_time, TIME_SIZE, "At_Time")
            + _octets(self.src_id, SRC_ID_SIZE, "Src_Id")
            + _u8s(len(self.dest_terminal_ids))
        )
        dests = b"".join(_octets(d, terminal, "Dest_terminal_Id") for d in self.dest_terminal_ids)
        tail = (_u8s(self.dest_terminal_type) if v3 else b"") + _u8s(len(self.content))
        trailer = _octets(self.link_id, LINK_ID_SIZE, "LinkID") if v3 else bytes(RESERVE_SIZE)
        return head + dests + tail + self.content + trailer


@dataclass(frozen=True, slots=True)
class SubmitResp:
    """CMPP_SUBMIT_RESP (7.4.3.2): the Msg_Id and the Result (1 octet in 2.0, 4 in 3.0)."""

    msg_id: int
    result: int
    command_id: ClassVar[int] = CommandId.SUBMIT_RESP

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version`."""
        return _uint(self.msg_id, 8, "Msg_Id") + _uint(self.result, RESULT_SIZE[version], "Result")


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """CMPP_DELIVER (7.4.5.1): ISMG → SP, an MO message (`registered_delivery` 0) or a
    status report (1, with the report in `content`)."""

    msg_id: int
    dest_id: str  # the SP's number the citizen wrote to (short code + extension)
    service_id: str = ""
    tp_pid: int = 0
    tp_udhi: int = 0
    msg_fmt: int = MsgFmt.UCS2
    src_terminal_id: str = ""  # the citizen's number
    src_terminal_type: int = 0  # 3.0 only
    registered_delivery: int = 0
    content: bytes = b""
    link_id: str = ""  # 3.0 only
    command_id: ClassVar[int] = CommandId.DELIVER

    @property
    def is_report(self) -> bool:
        """Whether this is a status report (7.4.5.1 Registered_Delivery 1)."""
        return self.registered_delivery == REGISTERED_DELIVERY_REPORT

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version`."""
        v3 = version is Version.V30
        if len(self.content) > 255:
            raise LocalCmppError("Msg_Content longer than Msg_Length can say")
        return (
            _uint(self.msg_id, 8, "Msg_Id")
            + _octets(self.dest_id, SRC_ID_SIZE, "Dest_Id")
            + _octets(self.service_id, SERVICE_ID_SIZE, "Service_Id")
            + _u8s(self.tp_pid, self.tp_udhi, self.msg_fmt)
            + _octets(self.src_terminal_id, TERMINAL_ID_SIZE[version], "Src_terminal_Id")
            + (_u8s(self.src_terminal_type) if v3 else b"")
            + _u8s(self.registered_delivery, len(self.content))
            + self.content
            + (_octets(self.link_id, LINK_ID_SIZE, "LinkID") if v3 else bytes(RESERVE_SIZE))
        )


@dataclass(frozen=True, slots=True)
class DeliverResp:
    """CMPP_DELIVER_RESP (7.4.5.2): the deliver's Msg_Id and a Result (0: received)."""

    msg_id: int
    result: int = 0
    command_id: ClassVar[int] = CommandId.DELIVER_RESP

    def pack(self, version: Version) -> bytes:
        """The body's octets for `version`."""
        return _uint(self.msg_id, 8, "Msg_Id") + _uint(self.result, RESULT_SIZE[version], "Result")


Body: TypeAlias = (
    Connect
    | ConnectResp
    | Terminate
    | TerminateResp
    | ActiveTest
    | ActiveTestResp
    | Submit
    | SubmitResp
    | Deliver
    | DeliverResp
)


# --- The status report inside a CMPP_DELIVER (7.4.5.1) ----------------------------------


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The Msg_Content of a status report: which message, and what became of it."""

    msg_id: int
    stat: str
    submit_time: str = ""  # YYMMDDHHMM
    done_time: str = ""
    dest_terminal_id: str = ""
    smsc_sequence: int = 0

    def pack(self, version: Version) -> bytes:
        """The content octets in `version`'s layout (60 octets in 2.0, 71 in 3.0)."""
        return (
            _uint(self.msg_id, 8, "Msg_Id")
            + _octets(self.stat, STAT_SIZE, "Stat")
            + _octets(self.submit_time, REPORT_TIME_SIZE, "Submit_time")
            + _octets(self.done_time, REPORT_TIME_SIZE, "Done_time")
            + _octets(self.dest_terminal_id, TERMINAL_ID_SIZE[version], "Dest_terminal_Id")
            + _uint(self.smsc_sequence, 4, "SMSC_sequence")
        )


def parse_report(content: bytes) -> StatusReport | None:
    """The status report in a Msg_Content, or None when it is not one.

    The layout is chosen by the length, not by the connection's version: 60 octets is
    2.0's (21-octet terminal id), 71 is 3.0's (32); 3.0 gateways that send the 2.0
    layout exist (gocmpp's server does), and a receipt must not be lost for that.
    """
    terminal = {size: TERMINAL_ID_SIZE[v] for v, size in REPORT_SIZE.items()}.get(len(content))
    if terminal is None:
        return None
    r = Reader(content)
    try:
        return StatusReport(
            msg_id=r.uint(8, "Msg_Id"),
            stat=r.text(STAT_SIZE),
            submit_time=r.text(REPORT_TIME_SIZE),
            done_time=r.text(REPORT_TIME_SIZE),
            dest_terminal_id=r.text(terminal),
            smsc_sequence=r.uint(4, "SMSC_sequence"),
        )
    except Truncated:  # pragma: no cover - the length was checked above
        return None


# --- Field encoding and decoding ----------------------------------------------------------


def _octets(value: str, size: int, name: str) -> bytes:
    # 7.1 Octet String: fixed size, left-aligned, padded with binary zeros.
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        raise LocalCmppError(f"{name} must be ASCII: {value!r}") from None
    if len(raw) > size:
        raise LocalCmppError(f"{name} is {len(raw)} octets; CMPP allows {size}")
    if b"\0" in raw:
        raise LocalCmppError(f"{name} contains NUL")
    return raw + bytes(size - len(raw))


def _uint(value: int, size: int, name: str) -> bytes:
    if not isinstance(value, int) or not 0 <= value < 1 << (8 * size):
        raise LocalCmppError(f"{name} must fit {size} octet(s): {value!r}")
    return value.to_bytes(size, "big")


def _u8s(*values: int) -> bytes:
    try:
        return struct.pack(f"{len(values)}B", *values)
    except struct.error:
        raise LocalCmppError(f"a one-octet field is out of range: {values}") from None


class Truncated(Exception):
    """A body ended before a field."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name}: body truncated")
        self.name = name


class Reader:
    """A cursor over one body (used by the codec and `parse_report`)."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def take(self, n: int, name: str) -> bytes:
        """The next `n` octets."""
        if self.pos + n > self.end:
            raise Truncated(name)
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def uint(self, n: int, name: str) -> int:
        """An Unsigned Integer of `n` octets (7.1: network byte order)."""
        return int.from_bytes(self.take(n, name), "big")

    def text(self, n: int, name: str = "Octet String") -> str:
        """A fixed-size Octet String: up to its first NUL, as ASCII (other octets, which
        a tolerant reader keeps, as U+FFFD)."""
        raw = self.take(n, name).split(b"\0", 1)[0]
        return raw.decode("ascii", "replace")

    @property
    def left(self) -> int:
        """Octets not read yet."""
        return self.end - self.pos
