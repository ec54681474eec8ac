"""The Originate's channel: the trunk by default, the site's own route with
``[dialer] dial_string`` (mode "include"), the number as the rules rewrote it."""

from __future__ import annotations

import pytest

from gateway.config import NumberRule, rewrite
from gateway.dialer.ami import OriginateRequest


def _request(number: str, dial_string: str | None = None) -> OriginateRequest:
    return OriginateRequest(
        channel_id="cb-0123456789abcdef",
        number=number,
        trunk="minyi-trunk",
        context="minyi-callback",
        dial_string=dial_string,
    )


def test_the_trunk_by_default() -> None:
    assert _request("13800138000").fields()["Channel"] == "PJSIP/13800138000@minyi-trunk"


@pytest.mark.parametrize(
    ("dial_string", "channel"),
    [
        ("PJSIP/${NUMBER}@site-trunk", "PJSIP/013800138000@site-trunk"),
        ("Local/${NUMBER}@from-internal", "Local/013800138000@from-internal"),
    ],
)
def test_the_sites_route_with_the_rewritten_number(dial_string: str, channel: str) -> None:
    number = rewrite("13800138000", (NumberRule("^1[3-9]", prefix="0"),))
    assert _request(number, dial_string).fields()["Channel"] == channel


def test_the_number_is_still_checked_before_the_route() -> None:
    with pytest.raises(ValueError, match="number must be digits"):
        _request("1380013800,0", "PJSIP/${NUMBER}@site-trunk").fields()
