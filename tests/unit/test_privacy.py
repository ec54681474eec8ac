"""gateway.privacy: the one rule for phone numbers in logs (138****8000)."""

from __future__ import annotations

from gateway.privacy import mask_numbers, mask_phone


def test_a_number_keeps_its_first_three_and_last_four_digits() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("8613800138000") == "86138****8000"


def test_short_or_odd_strings_are_masked_all_but_the_last_two() -> None:
    assert mask_phone("12345") == "***45"
    assert mask_phone("1") == "*"
    assert mask_phone("") == ""


def test_numbers_inside_text_are_masked_by_the_same_rule() -> None:
    text = "call 8613812348000 / 13812348000-in.wav, ref 123456789012345"
    assert mask_numbers(text) == "call 86138****8000 / 138****8000-in.wav, ref 123456789012345"
    for number in ("13812348000", "8613812348000"):
        assert mask_numbers(number) == mask_phone(number)
