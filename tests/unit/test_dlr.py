"""Delivery receipts (SMPP 3.4 Appendix B, §5.2.28, §5.3.2.12/31/35) and message ids."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from sms.dlr import (
    DeliveryState,
    Receipt,
    normalise_message_id,
    parse_receipt,
)
from sms.smpp.constants import Tag

CLASSIC = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2411231015 done date:2411231016 "
    "stat:DELIVRD err:000 text:【绍兴公安】请评价11月23日"
)


def parse(text: str, tlvs: dict[int, bytes] | None = None) -> Receipt:
    receipt = parse_receipt(text, tlvs or {})
    assert receipt is not None
    return receipt


def test_classic_receipt() -> None:
    r = parse(CLASSIC)
    assert r == Receipt(
        message_id="0123456789",
        state=DeliveryState.DELIVERED,
        final=True,
        error=None,
        submitted_parts=1,
        delivered_parts=1,
        raw_stat="DELIVRD",
        submitted_at=datetime(2024, 11, 23, 10, 15),
        done_at=datetime(2024, 11, 23, 10, 16),
    )


@pytest.mark.parametrize(
    ("stat", "state", "final"),
    [
        ("DELIVRD", DeliveryState.DELIVERED, True),
        ("DELIVERED", DeliveryState.DELIVERED, True),
        ("delivrd", DeliveryState.DELIVERED, True),
        ("UNDELIV", DeliveryState.UNDELIVERABLE, True),
        ("UNDELIVERABLE", DeliveryState.UNDELIVERABLE, True),
        ("EXPIRED", DeliveryState.EXPIRED, True),
        ("DELETED", DeliveryState.DELETED, True),
        ("REJECTD", DeliveryState.REJECTED, True),
        ("REJECTED", DeliveryState.REJECTED, True),
        ("ACCEPTD", DeliveryState.ACCEPTED, True),
        ("UNKNOWN", DeliveryState.UNKNOWN, False),
        ("ENROUTE", DeliveryState.ENROUTE, False),
        ("BOGUS", DeliveryState.UNKNOWN, False),
    ],
)
def test_stat_words(stat: str, state: DeliveryState, final: bool) -> None:
    r = parse(f"id:1 sub:001 dlvrd:000 stat:{stat} err:000")
    assert (r.state, r.final, r.raw_stat) == (state, final, stat)


def test_keys_in_any_order_and_case_with_extra_fields() -> None:
    r = parse(
        "Stat:UNDELIV Err:034 ID:abc123 Submit Date:241123101530 "
        "vendor:x-1 Done date:241123101612 sub:1 DLVRD:0 Text:hello stat:DELIVRD"
    )
    assert r.message_id == "abc123"
    assert r.state is DeliveryState.UNDELIVERABLE  # the stat inside text: is ignored
    assert r.error == "034"
    assert (r.submitted_parts, r.delivered_parts) == (1, 0)
    assert r.submitted_at == datetime(2024, 11, 23, 10, 15, 30)
    assert r.done_at == datetime(2024, 11, 23, 10, 16, 12)


def test_extra_field_does_not_glue_onto_a_value() -> None:
    r = parse("id:42 msgid:999 stat:EXPIRED foo:bar err:ABC-7 extra")
    assert r.message_id == "42"
    assert r.state is DeliveryState.EXPIRED
    assert r.error == "ABC-7"


def test_missing_fields() -> None:
    r = parse("id:77")
    assert r.state is DeliveryState.UNKNOWN
    assert not r.final
    assert r.error is None and r.raw_stat is None
    assert r.submitted_parts is None and r.done_at is None


@pytest.mark.parametrize("date", ["24112310", "2411231099", "abcdefghij", "241323101500", ""])
def test_bad_dates_are_none(date: str) -> None:
    assert parse(f"id:1 done date:{date} stat:DELIVRD").done_at is None


def test_non_numeric_counts_are_none() -> None:
    r = parse("id:1 sub:one dlvrd:-1 stat:DELIVRD")
    assert r.submitted_parts is None and r.delivered_parts is None


def test_tlvs_win_over_text() -> None:
    tlvs = {
        Tag.RECEIPTED_MESSAGE_ID: b"5f3a\x00",
        Tag.MESSAGE_STATE: bytes([5]),
        Tag.NETWORK_ERROR_CODE: bytes([3, 0, 34]),
    }
    r = parse(CLASSIC, tlvs)
    assert r.message_id == "5f3a"
    assert r.state is DeliveryState.UNDELIVERABLE and r.final
    assert r.error == "gsm:34"
    assert r.raw_stat == "DELIVRD"  # what the text said, kept for the record


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (1, DeliveryState.ENROUTE),
        (2, DeliveryState.DELIVERED),
        (3, DeliveryState.EXPIRED),
        (4, DeliveryState.DELETED),
        (5, DeliveryState.UNDELIVERABLE),
        (6, DeliveryState.ACCEPTED),
        (7, DeliveryState.UNKNOWN),
        (8, DeliveryState.REJECTED),
    ],
)
def test_message_state_tlv_values(value: int, state: DeliveryState) -> None:
    r = parse("", {Tag.RECEIPTED_MESSAGE_ID: b"9\x00", Tag.MESSAGE_STATE: bytes([value])})
    assert r.state is state


def test_tlvs_alone_are_a_receipt() -> None:
    r = parse("", {Tag.RECEIPTED_MESSAGE_ID: b"ABC", Tag.MESSAGE_STATE: b"\x02"})
    assert (r.message_id, r.state, r.final) == ("ABC", DeliveryState.DELIVERED, True)


def test_malformed_tlvs_fall_back_to_text() -> None:
    tlvs = {
        Tag.RECEIPTED_MESSAGE_ID: b"\x00",
        Tag.MESSAGE_STATE: b"\x09",  # not an SMPP 3.4 state
        Tag.NETWORK_ERROR_CODE: b"\x03\x00",  # too short
    }
    r = parse("id:12 stat:REJECTD err:011", tlvs)
    assert (r.message_id, r.state, r.error) == ("12", DeliveryState.REJECTED, "011")


def test_zero_network_error_code_means_no_error_even_if_text_has_one() -> None:
    r = parse("id:12 stat:DELIVRD err:011", {Tag.NETWORK_ERROR_CODE: bytes([8, 0, 0])})
    assert r.error is None


def test_no_message_id_is_none() -> None:
    assert parse_receipt("sub:001 dlvrd:001 stat:DELIVRD err:000", {}) is None
    assert parse_receipt("", {}) is None
    assert parse_receipt("id: stat:DELIVRD", {}) is None


def test_garbage_never_raises() -> None:
    rng = random.Random(0x0427)
    pieces = ["id:", "stat:", "err:", "sub:", "dlvrd:", "done date:", "text:", " ", "\x00"]
    pieces += ["DELIVRD", "9999999999", "满意", "：", "\ud800", "1", "ff"]
    tags = [Tag.RECEIPTED_MESSAGE_ID, Tag.MESSAGE_STATE, Tag.NETWORK_ERROR_CODE, 0x0424]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        tlvs = {
            rng.choice(tags): rng.randbytes(rng.randint(0, 5)) for _ in range(rng.randint(0, 3))
        }
        r = parse_receipt(text, tlvs)
        if r is not None:
            assert r.message_id
            assert r.final == (r.state not in {DeliveryState.ENROUTE, DeliveryState.UNKNOWN})
            for base in ("text", "hex", "dec"):
                normalise_message_id(r.message_id, base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "base_a", "b", "base_b"),
    [
        ("1A2B", "hex", "6699", "dec"),
        ("1a2b", "hex", "0006699", "dec"),
        ("0x1A2B", "hex", "6699", "text"),
        ("00AbC", "text", "abc", "text"),
        (" 0123 ", "dec", "123", "text"),
        ("000", "dec", "0", "text"),
        ("0000", "hex", "0", "dec"),
        ("ab cd", "text", "ABCD", "text"),
    ],
)
def test_same_id_same_key(a: str, base_a: str, b: str, base_b: str) -> None:
    assert normalise_message_id(a, base_a) == normalise_message_id(b, base_b)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "base", "expected"),
    [
        ("1A2B", "hex", "6699"),
        ("6699", "dec", "6699"),
        ("00AbC", "text", "abc"),
        ("0", "text", "0"),
        ("", "text", ""),
        ("   ", "dec", ""),
        ("12G4", "hex", "12g4"),  # not hex: the text form
        ("1_000", "dec", "1_000"),  # int() would accept this; an id must not
        ("１２３", "dec", "１２３"),  # full-width digits are not a decimal id
        ("0x", "hex", "x"),  # not hex: the text form, zeros stripped
        ("F" * 66, "hex", "f" * 66),  # longer than any SMPP message_id
    ],
)
def test_normalise_message_id(raw: str, base: str, expected: str) -> None:
    assert normalise_message_id(raw, base) == expected  # type: ignore[arg-type]


def test_huge_decimal_id_does_not_hit_int_limits() -> None:
    raw = "0" + "9" * 5000
    assert normalise_message_id(raw, "dec") == "9" * 5000
