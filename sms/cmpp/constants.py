"""Every CMPP number the gateway and its tests use, each with its section.

One home: the codec (`sms.cmpp.pdu`, `sms.cmpp.codec`), the bind (`sms.cmpp.bind`) and
the inbound decoding (`sms.cmpp.inbound`) import from here; none types a value again.
Section numbers refer to China Mobile's "互联网短信网关接口协议" (China Mobile Peer to
Peer, CMPP) V2.0 (2002) and V3.0: both number the parts the gateway uses the same way
(6.1 long connections, 7.1 data types, 7.3 the header, 7.4.1-7.4.7 the SP↔ISMG
messages). Where the two versions differ in a field's size, both sizes are here.
"""

from __future__ import annotations

import enum
from typing import Final


class Version(enum.IntEnum):
    """7.4.1.1 Version: the high 4 bits the major, the low 4 bits the minor version."""

    V20 = 0x20
    V30 = 0x30

    @property
    def label(self) -> str:
        """The config's name for it: "cmpp2" or "cmpp3"."""
        return "cmpp2" if self is Version.V20 else "cmpp3"

    @classmethod
    def of(cls, protocol: str) -> Version:
        """The version a bind's ``protocol = "cmpp2" | "cmpp3"`` names."""
        return {"cmpp2": cls.V20, "cmpp3": cls.V30}[protocol]


# --- Framing (7.3) -------------------------------------------------------------------

#: 7.3: Total_Length, Command_Id, Sequence_Id, 4 octets each.
HEADER_LENGTH: Final = 12
#: 7.3: a response's Command_Id is its request's with bit 31 set.
RESPONSE_BIT: Final = 0x80000000
#: 7.3: Sequence_Id is a 4-octet unsigned integer "顺序累加，步长为1，循环使用"; the
#: peer may start at 0, so any value is valid on input.
MAX_SEQUENCE: Final = 0xFFFFFFFF


class CommandId(enum.IntEnum):
    """Command_Id values (7.3) of the SP↔ISMG operations (7.4)."""

    CONNECT = 0x00000001
    CONNECT_RESP = 0x80000001
    TERMINATE = 0x00000002
    TERMINATE_RESP = 0x80000002
    SUBMIT = 0x00000004
    SUBMIT_RESP = 0x80000004
    DELIVER = 0x00000005
    DELIVER_RESP = 0x80000005
    QUERY = 0x00000006
    QUERY_RESP = 0x80000006
    CANCEL = 0x00000007
    CANCEL_RESP = 0x80000007
    ACTIVE_TEST = 0x00000008
    ACTIVE_TEST_RESP = 0x80000008


# --- Field sizes (7.4), in octets ---------------------------------------------------------
# 7.1: an Octet String has a fixed size, left-aligned and padded with binary zeros; a
# full-size value has no terminator.

SOURCE_ADDR_SIZE: Final = 6  # 7.4.1.1 Source_Addr: the SP's enterprise code (SP_Id)
AUTHENTICATOR_SIZE: Final = 16  # 7.4.1.1 AuthenticatorSource, 7.4.1.2 AuthenticatorISMG
#: 7.4.1.1: AuthenticatorSource = MD5(Source_Addr + 9 octets of 0 + secret + timestamp).
AUTH_ZERO_PAD: Final = 9
#: 7.4.1.1 Timestamp: MMDDHHMMSS as a 10-digit number (an Unsigned Integer of 4 octets);
#: the MD5 input is its 10 digits, zero-padded on the left.
TIMESTAMP_DIGITS: Final = 10
SERVICE_ID_SIZE: Final = 10  # 7.4.3.1 Service_Id, 7.4.5.1 Service_Id
MSG_SRC_SIZE: Final = 6  # 7.4.3.1 Msg_src (the SP_Id)
FEE_TYPE_SIZE: Final = 2  # 7.4.3.1 FeeType "01".."05"
FEE_CODE_SIZE: Final = 6  # 7.4.3.1 FeeCode, in fen
TIME_SIZE: Final = 17  # 7.4.3.1 ValId_Time, At_Time (SMPP 3.3 time format)
SRC_ID_SIZE: Final = 21  # 7.4.3.1 Src_Id, 7.4.5.1 Dest_Id: the short code + extension
#: 7.4.3.1 Fee_terminal_Id / Dest_terminal_Id and 7.4.5.1 Src_terminal_Id: a terminal
#: (MSISDN or, in 3.0, a pseudo code) is 21 octets in 2.0 and 32 in 3.0.
TERMINAL_ID_SIZE: Final = {Version.V20: 21, Version.V30: 32}
RESERVE_SIZE: Final = 8  # 2.0: 7.4.3.1 Reserve, 7.4.5.1 Reserved
LINK_ID_SIZE: Final = 20  # 3.0: 7.4.3.1 / 7.4.5.1 LinkID, in place of the Reserve
#: 7.4.3.2 / 7.4.5.2 Result, 7.4.1.2 Status: 1 octet in 2.0, 4 in 3.0.
RESULT_SIZE: Final = {Version.V20: 1, Version.V30: 4}
MSG_ID_SIZE: Final = 8  # 7.4.3.2 Msg_Id, an Unsigned Integer of 8 octets
STAT_SIZE: Final = 7  # 7.4.5.1 status report Stat
REPORT_TIME_SIZE: Final = 10  # 7.4.5.1 status report Submit_time, Done_time (YYMMDDHHMM)
SMSC_SEQUENCE_SIZE: Final = 4  # 7.4.5.1 status report SMSC_sequence
#: 7.4.5.1: a status report (Registered_Delivery 1) carries Msg_Id, Stat, Submit_time,
#: Done_time, Dest_terminal_Id, SMSC_sequence in Msg_Content: 60 octets in 2.0, 71 in
#: 3.0 (the longer terminal id). Some 3.0 gateways (and gocmpp) send the 2.0 layout.
REPORT_SIZE: Final = {
    version: MSG_ID_SIZE
    + STAT_SIZE
    + 2 * REPORT_TIME_SIZE
    + TERMINAL_ID_SIZE[version]
    + SMSC_SEQUENCE_SIZE
    for version in Version
}
#: 7.4.3.1 DestUsr_tl: 1 to 100 destination terminals in one CMPP_SUBMIT.
MAX_DESTINATIONS: Final = 100
#: 7.4.3.1 Msg_Length: "Msg_Fmt值为0时: <160个字节; 其它 <=140个字节".
MAX_ASCII_CONTENT: Final = 159
MAX_CONTENT: Final = 140
#: 7.4.3.1 / 7.4.5.1 Msg_Length is one octet, so no Msg_Content is longer on the wire.
MAX_CONTENT_FIELD: Final = 255
#: 7.3 sets no bound on Total_Length, so ours is the longest message the spec lets a
#: peer build: a 3.0 CMPP_SUBMIT (129 fixed octets) to 100 terminals of 32 octets with
#: Dest_terminal_type, Msg_Length, 255 octets of content and the LinkID. Longer means
#: the framing is lost.
MAX_PDU_LENGTH: Final = HEADER_LENGTH + 129 + MAX_DESTINATIONS * 32 + 2 + 255 + LINK_ID_SIZE


# --- Field values --------------------------------------------------------------------------


class MsgFmt(enum.IntEnum):
    """7.4.3.1 / 7.4.5.1 Msg_Fmt: the content's coding."""

    ASCII = 0
    SIM_WRITE = 3  # 短信写卡操作: binary for the SIM, not text
    BINARY = 4
    UCS2 = 8
    GB = 15  # 含GB汉字: GB2312/GBK text


class ConnectStatus(enum.IntEnum):
    """7.4.1.2 Status of CMPP_CONNECT_RESP; "5~: 其他错误"."""

    OK = 0
    BAD_STRUCTURE = 1
    BAD_SOURCE_ADDR = 2  # 非法源地址: the SP_Id is unknown
    AUTH_FAILED = 3  # 认证错: the secret (or the clock) is wrong
    VERSION_TOO_HIGH = 4


class SubmitResult(enum.IntEnum):
    """7.4.3.2 Result of CMPP_SUBMIT_RESP. 2.0 lists 0-8 and "9~: 其他错误"; 3.0 names
    9-13 too."""

    OK = 0
    BAD_STRUCTURE = 1
    BAD_COMMAND = 2
    DUPLICATE_SEQUENCE = 3
    BAD_LENGTH = 4
    BAD_FEE_CODE = 5
    TOO_LONG = 6
    BAD_SERVICE_ID = 7
    FLOW_CONTROL = 8  # 流量控制错: the ISMG asks the SP to slow down
    FEE_TERMINAL_NOT_SERVED = 9
    BAD_SRC_ID = 10
    BAD_MSG_SRC = 11
    BAD_FEE_TERMINAL = 12
    BAD_DEST_TERMINAL = 13


def result_name(result: int) -> str:
    """A log- and feed-friendly name for a CMPP_SUBMIT_RESP Result, known or not."""
    try:
        return "CMPP_" + SubmitResult(result).name
    except ValueError:
        return f"CMPP_RESULT_{result}"


# 7.4.3.1 Registered_Delivery: 0 no status report, 1 a status report wanted.
REGISTERED_DELIVERY_NONE: Final = 0
REGISTERED_DELIVERY_REPORT: Final = 1
# 7.4.5.1 Registered_Delivery of a CMPP_DELIVER: 0 an MO message, 1 a status report.
DELIVER_MO: Final = 0
DELIVER_REPORT: Final = 1
# 7.4.3.1 TP_udhi (GSM 03.40 9.2.3.23, one bit, right-aligned): Msg_Content starts
# with a User Data Header.
TP_UDHI: Final = 1
# 7.4.3.1 Fee_UserType: 0 the destination, 1 the source, 2 the SP, 3 Fee_terminal_Id.
FEE_USER_TYPES: Final = frozenset(range(4))
# 7.4.3.1 FeeType: 01 free, 02 per message, 03 monthly, 04 capped, 05 charged by the SP.
FEE_TYPES: Final = ("01", "02", "03", "04", "05")
# 3.0 7.4.3.1 Fee_terminal_type / Dest_terminal_type: 0 a real number, 1 a pseudo code.
TERMINAL_REAL: Final = 0

# 7.4.5.1 Stat of a status report: the SMPP words (DELIVRD, EXPIRED, DELETED, UNDELIV,
# ACCEPTD, UNKNOWN, REJECTD); anything else is an ISMG or SMSC error code such as
# "MA:0001", "MK:0005", "ID:0076", which means the message did not arrive.
STAT_DELIVERED: Final = "DELIVRD"

# --- Timers and window (6.1, 6.4) ---------------------------------------------------------

#: 6.1: with nothing to send for C (3 minutes) a side sends CMPP_ACTIVE_TEST; an answer
#: is awaited T (60 s), and after N (3) unanswered tests the connection is dropped.
ACTIVE_TEST_IDLE_S: Final = 180.0
ACTIVE_TEST_TIMEOUT_S: Final = 60.0
ACTIVE_TEST_TRIES: Final = 3
#: 6.4: the sliding window of unanswered requests, W = 16 as the spec suggests.
WINDOW: Final = 16
