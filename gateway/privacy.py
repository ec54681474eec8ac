"""Keep citizens' numbers and secrets out of logs: one masking rule for the whole gateway.

A phone number shows its first three and last four digits (``138****8000``), whether it
is a field of its own (:func:`mask_phone`) or inside free text such as an error message
or a recording's file name (:func:`mask_numbers`).
"""

from __future__ import annotations

import re
from typing import Final

# Mainland mobile numbers are 11 digits starting with 1, possibly written with the
# country code in front (8613800138000): the last 11 digits of such a run are masked.
_MOBILE: Final = re.compile(r"(?<!\d)(?:86)?1\d{10}(?!\d)")


def mask_phone(phone: str) -> str:
    """Mask a phone number for logs: 13800138000 -> 138****8000.

    Short or odd strings are masked entirely except the last two characters, so a
    malformed number typed by a citizen still never reaches a log in clear.
    """
    if len(phone) >= 11:
        return phone[:-8] + "****" + phone[-4:]
    if len(phone) > 2:
        return "*" * (len(phone) - 2) + phone[-2:]
    return "*" * len(phone)


def mask_numbers(text: str) -> str:
    """Mask every mobile number inside ``text`` (``call 13812348000`` -> ``call
    138****8000``), by the same rule as :func:`mask_phone`."""
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
