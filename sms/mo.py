"""Mobile-originated messages: a citizen's reply, decoded from a deliver_sm.

A reply can be one short message or a concatenated one whose parts arrive separately,
in any order, possibly twice. This module decodes ONE deliver_sm into a `MoFragment`
(text plus concatenation info); the integrator stores fragments (in Redis, under
`concat_key`) and calls `assemble` when it has them all or gives up waiting.

Whatever the bytes, decoding never raises: a citizen's "1" must not be lost because an
SMSC got a header wrong. Problems are flags on the fragment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from sms.smpp.constants import (
    DATA_CODING_BINARY,
    DATA_CODING_BINARY_ALT,
    DATA_CODING_CYRILLIC,
    DATA_CODING_DEFAULT,
    DATA_CODING_GBK,
    DATA_CODING_HEBREW,
    DATA_CODING_IA5,
    DATA_CODING_ISO2022JP,
    DATA_CODING_KSC5601,
    DATA_CODING_LATIN1,
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
    Tag,
)
from sms.text import IEI_CONCAT_8BIT, IEI_CONCAT_16BIT

DefaultAlphabet = Literal["latin1", "gsm7"]

# 3GPP TS 23.040 §9.2.3.24.1 / §9.2.3.24.8: the concatenation IEs' data lengths.
_CONCAT_IE_LENGTH: Final[Mapping[int, int]] = {IEI_CONCAT_8BIT: 3, IEI_CONCAT_16BIT: 4}

# SMPP 3.4 §5.2.19 data_coding values with a Python codec. 0 (SMSC default) is the
# bind's `default_alphabet`. 15 is "reserved" in SMPP 3.4 (KS C 5601 is 14), but
# Chinese SMSCs carry CMPP's Msg_Fmt 15 "含GB汉字" through as data_coding 15; GB18030
# decodes every GB2312/GBK byte sequence and more, so it is the tolerant choice.
_CODECS: Final[Mapping[int, str]] = {
    DATA_CODING_IA5: "ascii",
    DATA_CODING_LATIN1: "latin-1",
    DATA_CODING_CYRILLIC: "iso8859-5",
    DATA_CODING_HEBREW: "iso8859-8",
    DATA_CODING_UCS2: "utf-16-be",  # UTF-16 so handsets' surrogate pairs (emoji) decode
    DATA_CODING_ISO2022JP: "iso2022-jp",
    DATA_CODING_KSC5601: "euc-kr",
    DATA_CODING_GBK: "gb18030",  # not SMPP 3.4: CMPP/China carriers' GB text, see above
}
_BINARY: Final = frozenset({DATA_CODING_BINARY, DATA_CODING_BINARY_ALT})
_GSM7: Final = "gsm7"
_UCS2: Final = "utf-16-be"

# 3GPP TS 23.038 §6.2.1: GSM 7-bit default alphabet, one septet per octet ("unpacked"
# as SMPP carries it). 0x1B is the escape to the extension table.
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_GSM7_ESCAPE: Final = 0x1B
# TS 23.038 §6.2.1.1: the extension table; other escaped codes show the basic character.
GSM7_EXTENSION: Final[Mapping[int, str]] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a fragment belongs: part `seq` of `total` of the message `ref`."""

    ref: int
    total: int
    seq: int
    ref_bits: int  # 8 (UDH IEI 0x00) or 16 (UDH IEI 0x08, SAR TLVs)


@dataclass(frozen=True, slots=True)
class MoFragment:
    """One decoded deliver_sm: its text and, if it is one part of several, which."""

    text: str
    concat: Concat | None = None
    encoding: str = ""  # the codec used, for the record: "utf-16-be", "gb18030", ...
    decode_error: bool = False  # undecodable bytes became U+FFFD, or the UDH was broken
    binary: bool = False  # 8-bit data, not text: `text` is ""
    odd_length: bool = False  # UCS-2 with an odd trailing octet, which was dropped


@dataclass(frozen=True, slots=True)
class MoMessage:
    """A citizen's message as any protocol delivers it: who wrote, to which of our
    numbers (short code + extension), and the decoded fragment."""

    source: str
    dest: str
    fragment: MoFragment


def _concat(ref: int, total: int, seq: int, ref_bits: int) -> Concat | None:
    """A Concat, or None for one that TS 23.040 §9.2.3.24.1 says to ignore (or 1 of 1)."""
    if total < 1 or not 1 <= seq <= total:
        return None
    if total == 1:
        # A one-part "concatenation" is a complete message; nothing to wait for.
        return None
    return Concat(ref=ref, total=total, seq=seq, ref_bits=ref_bits)


def _parse_udh(udh: bytes) -> tuple[Concat | None, bool]:
    """(concatenation info, malformed) from the IEs of a User Data Header.

    TS 23.040 §9.2.3.24: IEI, length, data, repeated. Other IEs (port addressing, ...)
    are skipped; for a repeated IE the last one counts.
    """
    concat: Concat | None = None
    i = 0
    while i < len(udh):
        if i + 2 > len(udh):
            return concat, True
        iei, length = udh[i], udh[i + 1]
        data = udh[i + 2 : i + 2 + length]
        if len(data) != length:
            return concat, True
        if _CONCAT_IE_LENGTH.get(iei) == length:
            if iei == IEI_CONCAT_8BIT:
                concat = _concat(data[0], data[1], data[2], 8)
            else:
                concat = _concat(int.from_bytes(data[0:2], "big"), data[2], data[3], 16)
        i += 2 + length
    return concat, False


def _sar(tlvs: Mapping[int, bytes]) -> Concat | None:
    """Concatenation from the SAR TLVs (SMPP 3.4 §5.3.2.22-24), if all three are sane."""
    ref = tlvs.get(Tag.SAR_MSG_REF_NUM)
    total = tlvs.get(Tag.SAR_TOTAL_SEGMENTS)
    seq = tlvs.get(Tag.SAR_SEGMENT_SEQNUM)
    if not (
        isinstance(ref, bytes | bytearray)
        and isinstance(total, bytes | bytearray)
        and isinstance(seq, bytes | bytearray)
    ):
        return None
    if (len(ref), len(total), len(seq)) != (2, 1, 1):
        return None
    return _concat(int.from_bytes(ref, "big"), total[0], seq[0], 16)


def _alphabet(data_coding: int, default_alphabet: DefaultAlphabet) -> str | None:
    """Codec name for `data_coding`, "gsm7", "binary", or None when unsupported."""
    if data_coding == DATA_CODING_DEFAULT:
        return _GSM7 if default_alphabet == "gsm7" else "latin-1"
    if data_coding in _BINARY:
        return "binary"
    codec = _CODECS.get(data_coding)
    if codec is not None:
        return codec
    group = data_coding & 0xF0
    if group == 0xF0:
        # TS 23.038 §4 "data coding/message class": bit 2 set = 8-bit data.
        return "binary" if data_coding & 0x04 else _GSM7
    if group in (0xC0, 0xD0):
        return _GSM7  # TS 23.038 §4 message waiting groups, default alphabet
    if group == 0xE0:
        return _UCS2  # TS 23.038 §4 message waiting group, UCS2
    if 0x10 <= data_coding < 0x20:
        # TS 23.038 §4 general data coding, uncompressed, with a message class (SMPP
        # 3.4 leaves 0x10-0xBF reserved): bits 3-2 = alphabet. Compressed (0x20-0x3F)
        # text is not supported.
        return {0x00: _GSM7, 0x04: "binary", 0x08: _UCS2}.get(data_coding & 0x0C)
    return None


def decode_gsm7(data: bytes) -> tuple[str, bool]:
    """(text, had_error) for unpacked GSM 7-bit default alphabet (TS 23.038 §6.2.1)."""
    out: list[str] = []
    error = False
    escaped = False
    for octet in data:
        if octet > 0x7F:
            out.append("\ufffd")
            error = True
            escaped = False
        elif escaped:
            # Escape-escape would select a further table (none defined): a space.
            fallback = " " if octet == _GSM7_ESCAPE else GSM7_BASIC[octet]
            out.append(GSM7_EXTENSION.get(octet, fallback))
            escaped = False
        elif octet == _GSM7_ESCAPE:
            escaped = True
        else:
            out.append(GSM7_BASIC[octet])
    if escaped:
        out.append(" ")  # TS 23.038: a lone escape is shown as a space
    return "".join(out), error


def _decode(data: bytes, codec: str) -> tuple[str, bool]:
    """(text, had_error): strict first, then U+FFFD for what does not decode."""
    if codec == _GSM7:
        return decode_gsm7(data)
    try:
        return data.decode(codec), False
    except UnicodeDecodeError:
        return data.decode(codec, "replace"), True


def decode_short_message(
    data_coding: int,
    esm_class: int,
    short_message: bytes,
    tlvs: Mapping[int, bytes],
    *,
    default_alphabet: DefaultAlphabet = "latin1",
) -> MoFragment:
    """Decode one deliver_sm carrying a citizen's message. Never raises.

    Uses message_payload when short_message is empty; splits off the UDH when esm_class
    has UDHI and takes concatenation from it (8- or 16-bit reference) or from the SAR
    TLVs; decodes by data_coding (0 = `default_alphabet`, 1 ASCII, 3 Latin-1, 8 UCS-2
    as UTF-16BE, 15 GBK/GB18030, 2/4 binary). A broken UDH leaves the whole message as
    text with `decode_error` set, so a reply is not silently lost.
    """
    data = bytes(short_message)
    if not data:
        payload = tlvs.get(Tag.MESSAGE_PAYLOAD)
        if isinstance(payload, bytes | bytearray):
            data = bytes(payload)
    concat: Concat | None = None
    decode_error = False
    if esm_class & ESM_CLASS_UDHI and data:
        udh_end = 1 + data[0]
        if udh_end <= len(data):
            concat, decode_error = _parse_udh(data[1:udh_end])
            data = data[udh_end:]
        else:
            decode_error = True
    if concat is None:
        concat = _sar(tlvs)

    codec = _alphabet(data_coding & 0xFF, default_alphabet)
    if codec == "binary":
        return MoFragment(text="", concat=concat, encoding="binary", binary=True)
    if codec is None:
        # An alphabet we cannot decode: ASCII keeps a plain "1" or "TD" readable.
        text, _ = _decode(data, "ascii")
        return MoFragment(text=text, concat=concat, encoding="ascii", decode_error=True)
    odd_length = codec == _UCS2 and len(data) % 2 == 1
    if odd_length:
        data = data[:-1]
    text, error = _decode(data, codec)
    return MoFragment(
        text=text.rstrip("\x00"),  # some SMSCs pad with NULs, as if it were a C string
        concat=concat,
        encoding=codec,
        decode_error=decode_error or error,
        odd_length=odd_length,
    )


def concat_key(source: str, concat: Concat) -> str:
    """Key of the message a fragment belongs to: same citizen, reference and total.

    `source` should be the normalised number (`sms.phone.from_smpp_address`) so that
    parts reported with and without "86" meet. The key contains it: never log the key.
    """
    return f"{source.strip()}:{concat.ref_bits}:{concat.ref}:{concat.total}"


def assemble(parts: Mapping[int, str], total: int) -> tuple[str, list[int]]:
    """The message text from its parts in order, and the part numbers still missing.

    `parts` maps a 1-based part number to its text (storing a duplicate part twice just
    overwrites it). Missing parts are left out of the text; numbers outside 1..total
    are ignored.
    """
    text = "".join(parts[seq] for seq in range(1, total + 1) if seq in parts)
    missing = [seq for seq in range(1, total + 1) if seq not in parts]
    return text, missing
