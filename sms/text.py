"""Outgoing SMS text: UCS-2 encoding and segmentation into concatenated parts.

Survey messages are Chinese, so they always go out as UCS-2 (SMPP 3.4 §5.2.19
data_coding 8), encoded here as UTF-16BE so that characters outside the BMP (emoji)
become surrogate pairs, which handsets reassemble. Lengths are counted in UTF-16
code units ("units"), two octets each.

Pure functions only: the SMPP driver turns each `Segment` into one submit_sm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from sms.smpp.constants import DATA_CODING_UCS2, ESM_CLASS_UDHI

# 3GPP TS 23.040 §9.2.3.16: TP-User-Data is at most 140 octets.
MAX_USER_DATA_OCTETS: Final = 140
UNIT_OCTETS: Final = 2
# 140 octets / 2 = 70 UCS-2 units in a message without a UDH.
SINGLE_MAX_UNITS: Final = MAX_USER_DATA_OCTETS // UNIT_OCTETS
# TS 23.040 §9.2.3.24.1: IEI 0x00, concatenated SMS with an 8-bit reference.
IEI_CONCAT_8BIT: Final = 0x00
# TS 23.040 §9.2.3.24.8: IEI 0x08, concatenated SMS with a 16-bit reference.
IEI_CONCAT_16BIT: Final = 0x08
# UDHL + IEI + IEL + ref + total + seq = 6 octets, leaving (140 - 6) / 2 = 67 units.
UDH_8BIT_OCTETS: Final = 6
PART_MAX_UNITS: Final = (MAX_USER_DATA_OCTETS - UDH_8BIT_OCTETS) // UNIT_OCTETS
# The 16-bit reference adds one octet: (140 - 7) // 2 = 66 units.
UDH_16BIT_OCTETS: Final = 7
PART_MAX_UNITS_REF16: Final = (MAX_USER_DATA_OCTETS - UDH_16BIT_OCTETS) // UNIT_OCTETS
# TS 23.040 §9.2.3.24.1: the "maximum number of short messages" octet, so 255 parts.
MAX_PARTS: Final = 255
ELLIPSIS: Final = "…"

_BMP_LIMIT: Final = 0xFFFF


class TextError(ValueError):
    """A text or a limit that cannot be turned into short messages."""


class TooManyParts(TextError):
    """The text needs more parts than allowed."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One short message of a (possibly concatenated) SMS, ready for submit_sm."""

    index: int  # 1-based sequence number
    total: int
    udh: bytes  # b"" for a single-part message
    payload: bytes  # UCS-2 (UTF-16BE) octets of `text`
    text: str

    @property
    def short_message(self) -> bytes:
        """The submit_sm short_message field: UDH then payload."""
        return self.udh + self.payload

    @property
    def esm_class(self) -> int:
        """The submit_sm esm_class: UDHI set exactly when a UDH is present."""
        return ESM_CLASS_UDHI if self.udh else 0

    @property
    def data_coding(self) -> int:
        """The submit_sm data_coding: always UCS-2."""
        return DATA_CODING_UCS2


def char_units(ch: str) -> int:
    """UTF-16 units of one character: 2 outside the BMP (a surrogate pair), else 1."""
    return 2 if ord(ch) > _BMP_LIMIT else 1


def count_units(text: str) -> int:
    """Length of `text` in UTF-16 code units, as the handset and the SMSC count it."""
    return sum(char_units(ch) for ch in text)


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE octets of `text`; a lone surrogate is a `TextError`, not a crash later."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        raise TextError(f"text has an unpaired surrogate at index {exc.start}") from exc


def _limits(single_max_units: int, part_max_units: int, ref16: bool) -> tuple[int, int]:
    """Effective (single, per-part) unit limits, never over 140 octets with the UDH."""
    if single_max_units < 2 or part_max_units < 2:
        # A surrogate pair (2 units) must fit in any part, or the text cannot be split.
        raise TextError("unit limits must be at least 2")
    cap = PART_MAX_UNITS_REF16 if ref16 else PART_MAX_UNITS
    return min(single_max_units, SINGLE_MAX_UNITS), min(part_max_units, cap)


def _split(text: str, per_part: int) -> list[str]:
    """Cut `text` into runs of at most `per_part` units without splitting a pair."""
    parts: list[str] = []
    start = 0
    used = 0
    for i, ch in enumerate(text):
        n = char_units(ch)
        if used + n > per_part:
            # A pair that would straddle the boundary moves whole to the next part.
            parts.append(text[start:i])
            start, used = i, 0
        used += n
    parts.append(text[start:])
    return parts


def parts_needed(
    text: str,
    *,
    single_max_units: int = SINGLE_MAX_UNITS,
    part_max_units: int = PART_MAX_UNITS,
    ref16: bool = False,
) -> int:
    """How many short messages `segment` would produce for `text` (no part cap)."""
    single, per_part = _limits(single_max_units, part_max_units, ref16)
    if count_units(text) <= single:
        return 1
    return len(_split(text, per_part))


def max_parts_for_units(
    units: int,
    *,
    single_max_units: int = SINGLE_MAX_UNITS,
    part_max_units: int = PART_MAX_UNITS,
    ref16: bool = False,
) -> int:
    """The most parts ANY text of `units` UTF-16 units can need.

    For a text not known yet (a template before its values): a surrogate pair on a
    boundary can cost a part one unit, so each part but the last holds at least
    `per_part - 1` units.
    """
    single, per_part = _limits(single_max_units, part_max_units, ref16)
    if units <= single:
        return 1
    return math.ceil(units / (per_part - 1))


def _udh(ref: int, total: int, seq: int, ref16: bool) -> bytes:
    """The concatenation UDH, TS 23.040 §9.2.3.24.1 (8-bit ref) / §9.2.3.24.8 (16-bit)."""
    if ref16:
        return bytes([UDH_16BIT_OCTETS - 1, IEI_CONCAT_16BIT, 4, ref >> 8, ref & 0xFF, total, seq])
    return bytes([UDH_8BIT_OCTETS - 1, IEI_CONCAT_8BIT, 3, ref, total, seq])


def segment(
    text: str,
    ref: int,
    *,
    single_max_units: int = SINGLE_MAX_UNITS,
    part_max_units: int = PART_MAX_UNITS,
    ref16: bool = False,
    max_parts: int = MAX_PARTS,
) -> list[Segment]:
    """Split `text` into UCS-2 short messages.

    Up to `single_max_units` (70) units: one part, no UDH. Longer: parts of at most
    `part_max_units` (67; 66 with a 16-bit reference) units, each with a concatenation
    UDH carrying `ref` (0-255, or 0-65535 with `ref16`; the caller keeps the counter).
    A surrogate pair is never split: that part ends one unit early. Limits above what
    fits in 140 octets are lowered to fit. More than `max_parts` parts raises
    `TooManyParts`.
    """
    if not 1 <= max_parts <= MAX_PARTS:
        raise TextError(f"max_parts must be 1..{MAX_PARTS}, got {max_parts}")
    ref_max = 0xFFFF if ref16 else 0xFF
    if not 0 <= ref <= ref_max:
        raise TextError(f"concatenation reference must be 0..{ref_max}, got {ref}")
    single, per_part = _limits(single_max_units, part_max_units, ref16)
    payload = encode_ucs2(text)
    units = len(payload) // UNIT_OCTETS
    if units <= single:
        return [Segment(index=1, total=1, udh=b"", payload=payload, text=text)]
    chunks = _split(text, per_part)
    total = len(chunks)
    if total > max_parts:
        raise TooManyParts(
            f"text of {units} UCS-2 units needs {total} parts, more than max_parts={max_parts}"
        )
    return [
        Segment(
            index=seq,
            total=total,
            udh=_udh(ref, total, seq, ref16),
            payload=encode_ucs2(chunk),
            text=chunk,
        )
        for seq, chunk in enumerate(chunks, start=1)
    ]


def truncate(text: str, max_units: int, ellipsis: str = ELLIPSIS) -> str:
    """`text` cut to at most `max_units` units, ending in `ellipsis` when cut.

    Never splits a surrogate pair. If even the ellipsis does not fit, returns as much of
    the ellipsis as fits (possibly "").
    """
    if max_units < 0:
        raise TextError(f"max_units must be >= 0, got {max_units}")
    if count_units(text) <= max_units:
        return text
    room = max_units - count_units(ellipsis)
    if room < 0:
        return truncate(ellipsis, max_units, ellipsis="")
    kept = _split(text, room)[0] if room > 0 else ""
    return kept + ellipsis
