"""Citizens' mobile numbers: one canonical 11-digit form for mainland China.

The core system sends numbers as people typed them ("+86 138-0013-8000", full-width
digits from a Chinese input method); SMSCs report MO sources with or without the 86
country code. Everything inside the gateway uses the bare 11 digits, so one citizen is
one key for opt-out, frequency limits and reply matching.

Error reasons never contain the number: they end up in logs.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# MIIT numbering plan: mobile numbers are 11 digits, 1 then 3-9 (13x..19x).
MOBILE_RE: Final = re.compile(r"1[3-9]\d{9}")
MOBILE_DIGITS: Final = 11
COUNTRY_CODE: Final = "86"
# Characters people put between digit groups; dropped before validation.
_SEPARATORS: Final = re.compile(r"[\s\-().·/]")
_INTERNATIONAL: Final = re.compile(r"(?:\+|00)(\d*)")


class InvalidPhone(ValueError):
    """Not a mainland Chinese mobile number; `reason` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _national_digits(raw: str) -> str:
    """The national significant number: digits only, country code and trunk 0 removed."""
    # NFKC maps full-width digits and "＋" to ASCII, so "１３８…" is "138…".
    s = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if not s:
        raise InvalidPhone("empty")
    international = _INTERNATIONAL.fullmatch(s)
    if international:
        s = international.group(1)
        if not s.startswith(COUNTRY_CODE):
            # "+1 415…" is 11 digits starting with 14: must not pass as a Chinese mobile.
            raise InvalidPhone("not a Chinese mobile number")
        s = s[len(COUNTRY_CODE) :]
    if not s:
        raise InvalidPhone("wrong length")
    if not s.isascii() or not s.isdigit():
        if any(ch.isalpha() for ch in s):
            raise InvalidPhone("contains letters")
        raise InvalidPhone("contains invalid characters")
    if len(s) == MOBILE_DIGITS + len(COUNTRY_CODE) and s.startswith(COUNTRY_CODE):
        s = s[len(COUNTRY_CODE) :]
    elif len(s) == MOBILE_DIGITS + 1 and s.startswith("0"):
        # A trunk "0" before a mobile, as dialled from a landline in another city.
        s = s[1:]
    return s


def normalise_mobile(raw: str) -> str:
    """The 11-digit mobile number in `raw`, or `InvalidPhone` with a short reason.

    Accepts separators (spaces, dashes, dots, brackets), full-width digits, and the
    prefixes +86, 0086, 86 and a trunk 0. Rejects other country codes, landlines and
    anything with letters.
    """
    s = _national_digits(raw)
    if len(s) != MOBILE_DIGITS:
        raise InvalidPhone("wrong length")
    if not MOBILE_RE.fullmatch(s):
        raise InvalidPhone("not a Chinese mobile number")
    return s


def from_smpp_address(addr: str) -> str | None:
    """The citizen's 11-digit mobile from an MO source_addr, or None if it is not one.

    SMSCs send the source with TON international ("8613800138000"), national, or with a
    "+"; short codes and landlines give None.
    """
    try:
        return normalise_mobile(addr)
    except InvalidPhone:
        return None
