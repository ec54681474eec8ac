"""Citizens' mobile numbers."""

from __future__ import annotations

import random

import pytest

from sms.phone import InvalidPhone, from_smpp_address, normalise_mobile


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        " 13800138000 ",
        "+86 138-0013-8000",
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        "0086 138 0013 8000",
        "(+86) 138.0013.8000",
        "１３８００１３８０００",
        "＋８６　１３８００１３８０００",
        "013800138000",
    ],
)
def test_accepted_forms(raw: str) -> None:
    assert normalise_mobile(raw) == "13800138000"


@pytest.mark.parametrize("prefix", ["13", "14", "15", "16", "17", "18", "19"])
def test_every_mobile_prefix(prefix: str) -> None:
    number = prefix + "912345678"
    assert normalise_mobile(number) == number


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("  - ", "empty"),
        ("1380013800", "wrong length"),
        ("138001380001", "wrong length"),
        ("86138001380", "not a Chinese mobile number"),
        ("12800138000", "not a Chinese mobile number"),
        ("02188888888", "not a Chinese mobile number"),
        ("+1 415 555 0100", "not a Chinese mobile number"),
        ("0014155550100", "not a Chinese mobile number"),
        ("+852 9123 4567", "not a Chinese mobile number"),
        ("1380013800O", "contains letters"),
        ("tel:13800138000", "contains letters"),
        ("138*0013#8000", "contains invalid characters"),
        ("+", "not a Chinese mobile number"),
        ("+86", "wrong length"),
        ("١٣٨٠٠١٣٨٠٠٠", "contains invalid characters"),
    ],
)
def test_rejected_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalise_mobile(raw)
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_reason_never_contains_the_number() -> None:
    with pytest.raises(InvalidPhone) as info:
        normalise_mobile("1380013800099")
    assert "138" not in str(info.value)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("8613800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("13800138000", "13800138000"),
        ("10086", None),
        ("106900001234", None),
        ("", None),
        ("abc", None),
    ],
)
def test_from_smpp_address(addr: str, expected: str | None) -> None:
    assert from_smpp_address(addr) == expected


def test_garbage_only_raises_invalid_phone() -> None:
    rng = random.Random(86)
    alphabet = "0123456789+-() ８６１abc\u3000\x00é"
    for _ in range(2000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        try:
            result = normalise_mobile(raw)
        except InvalidPhone:
            assert from_smpp_address(raw) is None
        else:
            assert len(result) == 11 and result.isdigit()
            assert from_smpp_address(raw) == result
