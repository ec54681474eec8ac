"""Which binds a survey may go through: the ``[[sms.routes]]`` of the config, as one
pure function.

A site with an SMPP bind to an aggregator and a CMPP bind to China Mobile routes
China Mobile's numbers (by prefix) or one unit's surveys (a bind per unit) to the CMPP
bind. The first route that matches wins; none matching means ``default_binds``, and
no ``default_binds`` means every bind that can send. `SmsClient.choose` then picks
one of the candidates, and every part of the survey goes through it.
"""

from __future__ import annotations

from gateway.config import SmsSettings


def candidates(sms: SmsSettings, phone: str, unit: str) -> tuple[str, ...]:
    """The names of the binds a survey to `phone` (11 digits) for `unit` may use;
    () means any bind that can send."""
    for route in sms.routes:
        if route.matches(phone, unit):
            return route.binds
    return sms.default_binds
