"""UCS-2 encoding and segmentation (SMPP 3.4 §5.2.19, 3GPP TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import random

import pytest

from sms.text import (
    DATA_CODING_UCS2,
    ESM_CLASS_UDHI,
    MAX_USER_DATA_OCTETS,
    Segment,
    TextError,
    TooManyParts,
    count_units,
    max_parts_for_units,
    parts_needed,
    segment,
    truncate,
)

EMOJI = "😀"  # U+1F600: outside the BMP, a surrogate pair in UTF-16
CJK = "满"


def reassemble(parts: list[Segment]) -> str:
    """Decode like a handset: strip the UDH by its length octet, UTF-16BE, concatenate."""
    out = []
    for p in parts:
        sm = p.short_message
        if p.esm_class & ESM_CLASS_UDHI:
            sm = sm[sm[0] + 1 :]
        out.append(sm.decode("utf-16-be"))
    return "".join(out)


def check_invariants(text: str, parts: list[Segment], ref: int = 0, ref16: bool = False) -> None:
    assert reassemble(parts) == text
    assert "".join(p.text for p in parts) == text
    total = len(parts)
    for seq, p in enumerate(parts, start=1):
        assert len(p.short_message) <= MAX_USER_DATA_OCTETS
        assert p.data_coding == DATA_CODING_UCS2
        assert (p.index, p.total) == (seq, total)
        assert p.payload == p.text.encode("utf-16-be")
        if total == 1:
            assert p.udh == b"" and p.esm_class == 0
            assert count_units(p.text) <= 70
        else:
            assert p.esm_class == ESM_CLASS_UDHI
            if ref16:
                assert p.udh == bytes([6, 0x08, 4, ref >> 8, ref & 0xFF, total, seq])
                assert count_units(p.text) <= 66
            else:
                assert p.udh == bytes([5, 0x00, 3, ref, total, seq])
                assert count_units(p.text) <= 67
            # A part never ends in the high half of a surrogate pair.
            assert not 0xD800 <= int.from_bytes(p.payload[-2:], "big") <= 0xDBFF


def test_count_units_counts_surrogate_pairs_as_two() -> None:
    assert count_units("") == 0
    assert count_units("abc") == 3
    assert count_units("民意") == 2
    assert count_units(EMOJI) == 2
    assert count_units(f"a{EMOJI}满") == 4


def test_short_chinese_text_is_one_part_without_udh() -> None:
    text = "您好，请对本次服务评价：回复1满意，2基本满意，3不满意"
    [part] = segment(text, ref=7)
    assert part.udh == b""
    assert part.esm_class == 0
    assert part.short_message == text.encode("utf-16-be")
    assert part.index == part.total == 1


def test_empty_text_is_one_empty_part() -> None:
    [part] = segment("", ref=0)
    assert part.short_message == b""


@pytest.mark.parametrize(
    ("units", "expected_parts"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_boundary_lengths(units: int, expected_parts: int) -> None:
    text = CJK * units
    parts = segment(text, ref=0x42)
    assert len(parts) == expected_parts == parts_needed(text)
    check_invariants(text, parts, ref=0x42)


def test_exactly_70_units_with_an_emoji_stays_single() -> None:
    text = CJK * 68 + EMOJI
    assert count_units(text) == 70
    assert len(segment(text, ref=1)) == 1


def test_surrogate_pair_straddling_the_67_boundary_moves_to_next_part() -> None:
    # Units 67 and 68 would be the pair: the first part ends one unit early.
    text = CJK * 66 + EMOJI + CJK * 10
    parts = segment(text, ref=3)
    check_invariants(text, parts, ref=3)
    assert parts[0].text == CJK * 66
    assert parts[1].text.startswith(EMOJI)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_pair_on_every_multiple_of_67(k: int, delta: int) -> None:
    # 67*k +/- 1 units with the pair placed on the k-th part boundary.
    prefix = CJK * (67 * k - 1)
    text = prefix + EMOJI + CJK * (delta + 1)
    parts = segment(text, ref=200)
    check_invariants(text, parts, ref=200)
    assert len(parts) == parts_needed(text)


def test_ref16_uses_66_units_and_a_7_octet_udh() -> None:
    text = CJK * 133
    parts = segment(text, ref=0x1234, ref16=True)
    assert [count_units(p.text) for p in parts] == [66, 66, 1]
    check_invariants(text, parts, ref=0x1234, ref16=True)
    assert parts_needed(text, ref16=True) == 3
    assert parts_needed(text) == 2


def test_part_limit_over_the_octet_limit_is_lowered() -> None:
    parts = segment(CJK * 200, ref=0, part_max_units=80, single_max_units=90)
    assert all(len(p.short_message) <= MAX_USER_DATA_OCTETS for p in parts)
    assert [count_units(p.text) for p in parts] == [67, 67, 66]


def test_smaller_limits_are_honoured() -> None:
    parts = segment(CJK * 61, ref=0, single_max_units=60, part_max_units=30)
    assert [count_units(p.text) for p in parts] == [30, 30, 1]


def test_too_many_parts_is_a_clear_error() -> None:
    with pytest.raises(TooManyParts, match=r"needs 3 parts, more than max_parts=2"):
        segment(CJK * 135, ref=0, max_parts=2)
    with pytest.raises(TooManyParts):
        segment(CJK * (67 * 255 + 1), ref=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ref": 256}, "reference must be 0..255"),
        ({"ref": -1}, "reference must be 0..255"),
        ({"ref": 65536, "ref16": True}, "reference must be 0..65535"),
        ({"ref": 0, "max_parts": 0}, "max_parts must be"),
        ({"ref": 0, "max_parts": 256}, "max_parts must be"),
        ({"ref": 0, "part_max_units": 1}, "at least 2"),
    ],
)
def test_bad_arguments(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(TextError, match=message):
        segment("x", **kwargs)  # type: ignore[arg-type]


def test_lone_surrogate_is_a_text_error() -> None:
    with pytest.raises(TextError, match="unpaired surrogate"):
        segment("a\ud800b", ref=0)


def test_random_texts_round_trip() -> None:
    rng = random.Random(20241123)
    alphabet = [*"满意不基本派出所民警服务", *"abcXYZ019 ,.", EMOJI, "🚓", "𠀀", "，", "。"]
    for _ in range(400):
        n = rng.choice([rng.randint(0, 80), rng.randint(60, 300), rng.randint(130, 700)])
        text = "".join(rng.choice(alphabet) for _ in range(n))
        ref16 = rng.random() < 0.3
        ref = rng.randint(0, 0xFFFF if ref16 else 0xFF)
        parts = segment(text, ref=ref, ref16=ref16)
        check_invariants(text, parts, ref=ref, ref16=ref16)
        assert len(parts) == parts_needed(text, ref16=ref16)
        assert len(parts) <= max_parts_for_units(count_units(text), ref16=ref16)


def test_max_parts_for_units_is_an_upper_bound() -> None:
    assert max_parts_for_units(70) == 1
    assert max_parts_for_units(71) == 2
    assert max_parts_for_units(132) == 2
    # 133 units of pairs-on-boundaries text can need 3 parts of 66.
    assert max_parts_for_units(133) == 3
    text = CJK * 66 + EMOJI + CJK * 64 + EMOJI
    assert count_units(text) == 134
    assert parts_needed(text) == 3 <= max_parts_for_units(134)


def test_truncate() -> None:
    assert truncate("城南派出所", 5) == "城南派出所"
    assert truncate("城南派出所户籍窗口", 5) == "城南派出…"
    assert count_units(truncate(CJK * 100, 20)) == 20
    # The pair is not split: one unit short rather than a broken character.
    assert truncate("ab" + EMOJI + "cd", 4) == "ab…"
    assert truncate("abc", 1) == "…"
    assert truncate("abc", 0) == ""
    with pytest.raises(TextError):
        truncate("abc", -1)
