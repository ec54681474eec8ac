"""Every SMPP 3.4 number the gateway and the simulator use, each with its section.

One home: the codec (`sms.smpp.pdu`, `sms.smpp.codec`), the aiosmpplib driver
(`sms.smpp.esme`, `sms.smpp.client`), the text, receipt and reply modules of `sms/`
and the SMS-center simulator (`smsc/`) all import from here; none types a value again.
Section numbers refer to the SMPP v3.4 specification, Issue 1.2. Values that are not
in that specification but that Chinese carriers send (data_coding 0x0F) say so.
"""

from __future__ import annotations

import enum
from typing import Final

# --- Framing (3.2, 5.1) ----------------------------------------------------------------

#: 3.2: every PDU starts with four 4-octet integers (command_length, command_id,
#: command_status, sequence_number).
HEADER_LENGTH: Final = 16
#: 3.2 / 5.1.1 put no upper bound on command_length, so the bound is ours: the largest
#: PDU the spec lets a peer send. message_payload (5.3.2.32) may hold 65,535 octets
#: (a TLV's length field is 2 octets, 5.3.1); a submit_sm, deliver_sm or data_sm that
#: carries one also has the 16-octet header, its mandatory fields (at most 94 octets
#: for submit_sm, short_message then empty), the TLV's 4-octet tag and length, and a
#: few more TLVs (SAR numbers, receipted_message_id, ports...): about 65,650 octets.
#: 2**16 + 1024 holds all of that with room to spare, where 64 KiB would refuse a PDU
#: the spec allows. Anything longer means the framing is lost.
MAX_PDU_LENGTH: Final = 2**16 + 1024
#: 5.1.4: sequence_number runs 0x00000001..0x7FFFFFFF.
MAX_SEQUENCE: Final = 0x7FFFFFFF
#: 5.1.2.1: a response's command_id is its request's with bit 31 set.
RESPONSE_BIT: Final = 0x80000000


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


#: 4.1.2, 4.1.4, 4.1.6: the three bind responses, whose body an SMSC may omit when
#: command_status is not ESME_ROK.
BIND_RESPONSES: Final = frozenset(
    {
        CommandId.BIND_RECEIVER_RESP,
        CommandId.BIND_TRANSMITTER_RESP,
        CommandId.BIND_TRANSCEIVER_RESP,
    }
)


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
    RECEIPTED_MESSAGE_ID = 0x001E  # 5.3.2.12: C-Octet String, the submit_sm_resp's id
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C  # 5.3.2.22: 2 octets
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E  # 5.3.2.23: 1 octet
    SAR_SEGMENT_SEQNUM = 0x020F  # 5.3.2.24: 1 octet
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423  # 5.3.2.31: network type (1 octet) + error code (2)
    MESSAGE_PAYLOAD = 0x0424  # 5.3.2.32: used instead of short_message (then empty)
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427  # 5.3.2.35: 1 octet, a MessageState
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


#: 5.3.1: a TLV's length field is 2 octets.
MAX_TLV_VALUE_LENGTH: Final = 0xFFFF


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


class NetworkType(enum.IntEnum):
    """network_error_code's first octet (5.3.2.31): whose error code follows."""

    ANSI_136_ACCESS_DENIED = 1
    IS_95_ACCESS_DENIED = 2
    GSM = 3
    ANSI_136_CAUSE = 4
    IS_95_CAUSE = 5
    ANSI_41 = 6
    SMPP = 7
    MESSAGE_CENTER = 8


# --- Mandatory field values (5.2) --------------------------------------------------------

#: 5.2.4: interface_version for SMPP 3.4.
SMPP_VERSION_34: Final = 0x34

# 5.2.5 type of number.
TON_UNKNOWN: Final = 0
TON_INTERNATIONAL: Final = 1
TON_NATIONAL: Final = 2
TON_NETWORK_SPECIFIC: Final = 3
TON_SUBSCRIBER_NUMBER: Final = 4
TON_ALPHANUMERIC: Final = 5
TON_ABBREVIATED: Final = 6
# 5.2.6 numbering plan indicator.
NPI_UNKNOWN: Final = 0
NPI_ISDN: Final = 1  # E.163/E.164
NPI_DATA: Final = 3  # X.121
NPI_TELEX: Final = 4  # F.69
NPI_LAND_MOBILE: Final = 6  # E.212
NPI_NATIONAL: Final = 8
NPI_PRIVATE: Final = 9
NPI_ERMES: Final = 10
NPI_INTERNET: Final = 14  # IP
NPI_WAP: Final = 18  # WAP client id

# 5.2.12 esm_class. Bits 5-2: message type; bits 7-6: GSM network features.
ESM_CLASS_TYPE_MASK: Final = 0b0011_1100
ESM_CLASS_DELIVERY_RECEIPT: Final = 0x04  # message type 0001: SMSC delivery receipt
ESM_CLASS_UDHI: Final = 0x40  # short_message starts with a User Data Header (TS 23.040)

# 5.2.17 registered_delivery, bits 1-0: which SMSC delivery receipt the ESME wants.
REGISTERED_DELIVERY_MASK: Final = 0x03
REGISTERED_DELIVERY_NONE: Final = 0x00
REGISTERED_DELIVERY_ALWAYS: Final = 0x01  # on success or failure
REGISTERED_DELIVERY_ON_FAILURE: Final = 0x02

# 5.2.19 data_coding.
DATA_CODING_DEFAULT: Final = 0x00  # SMSC default alphabet
DATA_CODING_IA5: Final = 0x01  # IA5 (CCITT T.50) / ASCII
DATA_CODING_BINARY: Final = 0x02  # octet unspecified (8-bit binary)
DATA_CODING_LATIN1: Final = 0x03  # ISO-8859-1
DATA_CODING_BINARY_ALT: Final = 0x04  # octet unspecified (8-bit binary), again
DATA_CODING_JIS: Final = 0x05  # X 0208-1990
DATA_CODING_CYRILLIC: Final = 0x06  # ISO-8859-5
DATA_CODING_HEBREW: Final = 0x07  # ISO-8859-8
DATA_CODING_UCS2: Final = 0x08  # ISO/IEC-10646
DATA_CODING_PICTOGRAM: Final = 0x09
DATA_CODING_ISO2022JP: Final = 0x0A  # ISO-2022-JP (music codes)
DATA_CODING_KANJI_EXT: Final = 0x0D  # extended Kanji JIS (X 0212-1990)
DATA_CODING_KSC5601: Final = 0x0E  # KS C 5601
#: Reserved in 5.2.19, yet Chinese SMSCs carry CMPP's Msg_Fmt 15 ("含GB汉字") through
#: SMPP as data_coding 15: GB2312/GBK text.
DATA_CODING_GBK: Final = 0x0F

# --- Field sizes ---------------------------------------------------------------------------
# 3.1: a C-Octet String's size counts its NUL terminator, so it holds one octet less.

SYSTEM_ID_SIZE: Final = 16  # 5.2.1
PASSWORD_SIZE: Final = 9  # 5.2.2
SYSTEM_TYPE_SIZE: Final = 13  # 5.2.3
ADDRESS_RANGE_SIZE: Final = 41  # 5.2.7
ADDR_SIZE: Final = 21  # 5.2.8 source_addr, 5.2.9 destination_addr
SERVICE_TYPE_SIZE: Final = 6  # 5.2.11
TIME_SIZE: Final = 17  # 5.2.15 schedule_delivery_time, 5.2.16 validity_period
MESSAGE_ID_SIZE: Final = 65  # 5.2.23
#: 5.2.21: sm_length is 0..254; longer texts travel in message_payload.
MAX_SHORT_MESSAGE: Final = 254
