"""Delivery receipts: what the SMSC says happened to a submitted survey SMS.

A receipt arrives as a deliver_sm whose short_message holds the de-facto text format of
SMPP 3.4 Appendix B (`id:… sub:… dlvrd:… submit date:… done date:… stat:… err:…
text:…`), often with the TLVs receipted_message_id and message_state too. SMSCs vary
the text a lot, so the parser is tolerant and never raises: a receipt it cannot read
is `None` (no id) or `DeliveryState.UNKNOWN`, and the survey waits for its timeout.

Message ids: SMSCs answer submit_sm_resp and report receipts with the same id in
different spellings (hex vs decimal, leading zeros, case); `normalise_message_id`
gives one key for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from sms.smpp.constants import MESSAGE_ID_SIZE, MessageState, NetworkType, Tag

IdBase = Literal["text", "hex", "dec"]


class DeliveryState(StrEnum):
    """Message states of SMPP 3.4 §5.2.28."""

    ENROUTE = "enroute"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    DELETED = "deleted"
    UNDELIVERABLE = "undeliverable"
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    REJECTED = "rejected"


# The message_state TLV's values (SMPP 3.4 §5.2.28): the same states, by the same names.
MESSAGE_STATE_VALUES: Final[Mapping[int, DeliveryState]] = {
    state: DeliveryState[state.name] for state in MessageState
}

# The 7-letter forms of SMPP 3.4 Appendix B, and the long forms some SMSCs spell out.
STAT_WORDS: Final[Mapping[str, DeliveryState]] = {
    "DELIVRD": DeliveryState.DELIVERED,
    "DELIVERED": DeliveryState.DELIVERED,
    "UNDELIV": DeliveryState.UNDELIVERABLE,
    "UNDELIVERABLE": DeliveryState.UNDELIVERABLE,
    "EXPIRED": DeliveryState.EXPIRED,
    "DELETED": DeliveryState.DELETED,
    "REJECTD": DeliveryState.REJECTED,
    "REJECTED": DeliveryState.REJECTED,
    "ACCEPTD": DeliveryState.ACCEPTED,
    "ACCEPTED": DeliveryState.ACCEPTED,
    "UNKNOWN": DeliveryState.UNKNOWN,
    "ENROUTE": DeliveryState.ENROUTE,
}

# ENROUTE is in progress. UNKNOWN is not final either: SMPP 5.0 §4.7.15 says it "may be
# intermediate or permanent", and a later receipt or the reply window settles it.
FINAL_STATES: Final = frozenset(
    {
        DeliveryState.DELIVERED,
        DeliveryState.UNDELIVERABLE,
        DeliveryState.EXPIRED,
        DeliveryState.DELETED,
        DeliveryState.REJECTED,
        DeliveryState.ACCEPTED,
    }
)

# Labels of network_error_code's network types (SMPP 3.4 §5.3.2.31) in a stored
# receipt's error ("gsm:34"): part of the Redis data and the webhook events.
NETWORK_TYPES: Final[Mapping[int, str]] = {
    NetworkType.ANSI_136_ACCESS_DENIED: "ansi136",
    NetworkType.IS_95_ACCESS_DENIED: "is95",
    NetworkType.GSM: "gsm",
    NetworkType.ANSI_136_CAUSE: "ansi136-cause",
    NetworkType.IS_95_CAUSE: "is95-cause",
    NetworkType.ANSI_41: "ansi41",
    NetworkType.SMPP: "smpp",
    NetworkType.MESSAGE_CENTER: "smsc",
}

# A key is a known field name followed by ":"; "submit date" is also seen as
# "submit_date" / "submitdate". The look-behind keeps "msgid:" from reading as "id:".
_KEY_RE: Final = re.compile(
    r"(?<![\w])(submit[ _]?date|done[ _]?date|id|sub|dlvrd|stat|err|text)\s*:",
    re.IGNORECASE,
)
_HEX_RE: Final = re.compile(r"(?:0x)?([0-9a-f]+)", re.IGNORECASE)
_DEC_RE: Final = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Receipt:
    """One delivery receipt, as reported (ids not yet normalised)."""

    message_id: str
    state: DeliveryState
    final: bool
    error: str | None  # None when the SMSC reports no error (missing or all zeros)
    submitted_parts: int | None
    delivered_parts: int | None
    raw_stat: str | None  # the stat word exactly as the SMSC wrote it
    submitted_at: datetime | None = None  # SMSC local time, no zone given by SMPP
    done_at: datetime | None = None


def _fields(text: str) -> dict[str, str]:
    """Key -> value of the receipt text; the first occurrence of a key wins.

    Values run to the next key; all but `text` are one token, so unknown extra fields
    ("foo:bar") after a value are dropped rather than glued onto it.
    """
    matches = list(_KEY_RE.finditer(text))
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        key = re.sub(r"[ _]", "", m.group(1).lower())
        if key in fields:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end() : end].strip()
        if key != "text":
            value = value.split(maxsplit=1)[0] if value else ""
        fields[key] = value
    return fields


def _int_or_none(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _receipt_date(value: str | None) -> datetime | None:
    """YYMMDDhhmm (Appendix B), YYMMDDhhmmss or YYYYMMDDhhmmss; None if not a date."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    formats = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S", 14: "%Y%m%d%H%M%S"}
    fmt = formats.get(len(value))
    if fmt is None:
        return None
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return None


def _tlv_message_id(tlvs: Mapping[int, bytes]) -> str | None:
    value = tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
    if not isinstance(value, bytes | bytearray):
        return None
    # C-Octet String (SMPP 3.4 §3.1): ends at the first NUL, if the SMSC sent one.
    text = bytes(value).split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return text or None


def _tlv_state(tlvs: Mapping[int, bytes]) -> DeliveryState | None:
    value = tlvs.get(Tag.MESSAGE_STATE)
    if not isinstance(value, bytes | bytearray) or len(value) != 1:
        return None
    return MESSAGE_STATE_VALUES.get(value[0])


def _tlv_error(tlvs: Mapping[int, bytes]) -> tuple[bool, str | None]:
    """(present, error) from network_error_code; a malformed TLV counts as absent."""
    value = tlvs.get(Tag.NETWORK_ERROR_CODE)
    if not isinstance(value, bytes | bytearray) or len(value) != 3:
        return False, None
    code = int.from_bytes(value[1:3], "big")
    if code == 0:
        return True, None
    network = NETWORK_TYPES.get(value[0], f"type{value[0]}")
    return True, f"{network}:{code}"


def _text_error(value: str | None) -> str | None:
    if not value or set(value) == {"0"}:
        return None
    return value


def parse_receipt(short_message_text: str, tlvs: Mapping[int, bytes]) -> Receipt | None:
    """The delivery receipt in a deliver_sm, or None when it carries no message id.

    Reads the Appendix B text (keys in any order and case, missing or extra fields,
    long or short stat words, 10/12-digit dates) and the receipted_message_id,
    message_state and network_error_code TLVs; a TLV wins over the text. An unreadable
    state is `UNKNOWN`. Never raises.
    """
    if not isinstance(short_message_text, str):
        short_message_text = ""
    fields = _fields(short_message_text)
    message_id = _tlv_message_id(tlvs) or fields.get("id") or None
    if message_id is None:
        return None
    raw_stat = fields.get("stat") or None
    state = _tlv_state(tlvs)
    if state is None:
        stat_key = raw_stat.upper() if raw_stat else ""
        state = STAT_WORDS.get(stat_key, DeliveryState.UNKNOWN)
    tlv_error_present, error = _tlv_error(tlvs)
    if not tlv_error_present:
        error = _text_error(fields.get("err"))
    return Receipt(
        message_id=message_id,
        state=state,
        final=state in FINAL_STATES,
        error=error,
        submitted_parts=_int_or_none(fields.get("sub")),
        delivered_parts=_int_or_none(fields.get("dlvrd")),
        raw_stat=raw_stat,
        submitted_at=_receipt_date(fields.get("submitdate")),
        done_at=_receipt_date(fields.get("donedate")),
    )


def stored_form(receipt: Receipt) -> dict[str, object]:
    """The receipt as the store's ``minyi_receipt`` takes it (JSON): ``error`` is None
    (JSON null) when the SMSC reported no error, which the function stores as ''."""
    return {
        "message_id": receipt.message_id,
        "state": receipt.state.value,
        "final": receipt.final,
        "error": receipt.error,
        "stat": receipt.raw_stat,
    }


def _text_key(raw: str) -> str:
    stripped = "".join(raw.split()).lower()
    if not stripped:
        return ""
    return stripped.lstrip("0") or "0"


def normalise_message_id(raw: str, base: IdBase) -> str:
    """A canonical key for a message id, so submit_sm_resp and receipt ids match.

    "hex": base 16 (an optional 0x allowed) -> decimal string; "dec": base 10 ->
    decimal string without leading zeros; "text": whitespace removed, lower case,
    leading zeros stripped ("0" for all zeros). An id that is not valid in `base`
    falls back to the "text" form. Never raises.
    """
    if not isinstance(raw, str):
        return ""
    stripped = raw.strip()
    # SMPP 3.4 §5.2.23: the message_id field is at most 65 octets; longer "ids" are
    # not ids.
    if base == "hex" and len(stripped) <= MESSAGE_ID_SIZE:
        m = _HEX_RE.fullmatch(stripped)
        if m:
            return str(int(m.group(1), 16))
    elif base == "dec":
        # No int(): it accepts "1_000" and non-ASCII digits, and has a length limit.
        if _DEC_RE.fullmatch(stripped):
            return stripped.lstrip("0") or "0"
    return _text_key(raw)
