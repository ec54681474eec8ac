"""Keep citizens' numbers and secrets out of logs."""

from __future__ import annotations


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
