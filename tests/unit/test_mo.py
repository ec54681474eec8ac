"""Citizens' replies: decoding deliver_sm (SMPP 3.4 §5.2.19, TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import random

import pytest

from sms.mo import (
    Concat,
    MoFragment,
    assemble,
    concat_key,
    decode_gsm7,
    decode_short_message,
)
from sms.smpp.constants import Tag
from sms.text import segment

UDHI = 0x40


def decode(dc: int, data: bytes, esm: int = 0, tlvs: dict[int, bytes] | None = None) -> MoFragment:
    return decode_short_message(dc, esm, data, tlvs or {})


# --- encodings ---------------------------------------------------------------------------


def test_ucs2_chinese_reply() -> None:
    f = decode(8, "1满意，民警态度很好".encode("utf-16-be"))
    assert f == MoFragment(text="1满意，民警态度很好", encoding="utf-16-be")


def test_ucs2_surrogate_pair_decodes_to_emoji() -> None:
    assert decode(8, "满意👍".encode("utf-16-be")).text == "满意👍"


def test_ucs2_odd_trailing_byte_is_dropped_with_a_flag() -> None:
    f = decode(8, "3".encode("utf-16-be") + b"\x00")
    assert f.text == "3"
    assert f.odd_length and not f.decode_error


def test_ucs2_lone_surrogate_is_a_replacement_char() -> None:
    f = decode(8, b"\xd8\x00\x00\x31")
    assert f.text == "\ufffd1"
    assert f.decode_error


def test_gbk_data_coding_15() -> None:
    f = decode(15, "2基本满意".encode("gbk"))
    assert (f.text, f.encoding, f.decode_error) == ("2基本满意", "gb18030", False)


def test_gbk_undecodable_bytes() -> None:
    f = decode(15, b"1\xff\xff")
    assert f.text.startswith("1") and "\ufffd" in f.text
    assert f.decode_error


@pytest.mark.parametrize("dc", [1, 3])
def test_ascii_and_latin1(dc: int) -> None:
    assert decode(dc, b"TD").text == "TD"


def test_latin1_high_bytes() -> None:
    assert decode(3, b"caf\xe9").text == "café"


def test_ascii_high_bytes_are_replaced() -> None:
    f = decode(1, b"1\xe9")
    assert (f.text, f.decode_error) == ("1\ufffd", True)


def test_default_alphabet_latin1_and_gsm7() -> None:
    data = b"1\x00@"  # GSM: 0x00 is "@" and 0x40 is "¡"
    assert decode_short_message(0, 0, b"a@b", {}).text == "a@b"
    gsm = decode_short_message(0, 0, data, {}, default_alphabet="gsm7")
    assert gsm.text == "1@¡"
    assert gsm.encoding == "gsm7"


def test_gsm7_table_and_extension() -> None:
    assert decode_gsm7(b"\x01\x02\x03\x11\x5f\x7f") == ("£$¥_§à", False)
    assert decode_gsm7(b"\x1b\x65\x1b\x28x\x1b\x29\x1b\x3c\x1b\x3e") == ("€{x}[]", False)
    # An escaped code with no extension character shows the basic one.
    assert decode_gsm7(b"\x1bA") == ("A", False)
    assert decode_gsm7(b"1\x1b") == ("1 ", False)
    assert decode_gsm7(b"\x1b\x1b") == (" ", False)
    assert decode_gsm7(b"\x80") == ("\ufffd", True)


@pytest.mark.parametrize("dc", [2, 4, 0xF4, 0xF7, 0x14])
def test_binary_has_no_text(dc: int) -> None:
    f = decode(dc, b"\x01\x02\xff")
    assert (f.text, f.binary, f.encoding) == ("", True, "binary")


@pytest.mark.parametrize(
    ("dc", "data", "text"),
    [
        (0xF0, b"1", "1"),  # TS 23.038 message class group, default alphabet
        (0xF1, b"\x00", "@"),
        (0x18, "满意".encode("utf-16-be"), "满意"),  # general group, UCS2, class 0
        (0xE0, "满意".encode("utf-16-be"), "满意"),  # MWI group, UCS2
        (0x0E, "좋아".encode("euc-kr"), "좋아"),  # KS C 5601, SMPP 3.4's value 14
    ],
)
def test_gsm_dcs_groups(dc: int, data: bytes, text: str) -> None:
    assert decode(dc, data).text == text


@pytest.mark.parametrize("dc", [5, 9, 0x0D, 0x40, 0x2C, 0xBF])
def test_unsupported_alphabet_keeps_ascii_readable(dc: int) -> None:
    f = decode(dc, b"1\x99")
    assert f.text == "1\ufffd"
    assert f.decode_error and not f.binary


def test_trailing_nul_padding_is_removed() -> None:
    assert decode(0, b"1\x00\x00").text == "1"
    assert decode(8, "1\x00".encode("utf-16-be")).text == "1"


def test_message_payload_when_short_message_is_empty() -> None:
    f = decode(8, b"", tlvs={Tag.MESSAGE_PAYLOAD: "不满意，等了很久".encode("utf-16-be")})
    assert f.text == "不满意，等了很久"


def test_short_message_wins_over_message_payload() -> None:
    assert decode(1, b"1", tlvs={Tag.MESSAGE_PAYLOAD: b"3"}).text == "1"


def test_empty_message() -> None:
    assert decode(8, b"") == MoFragment(text="", encoding="utf-16-be")


# --- concatenation -----------------------------------------------------------------------


def test_udh_8bit_concatenation() -> None:
    udh = bytes([5, 0x00, 3, 0xA7, 3, 2])
    f = decode(8, udh + "第二段".encode("utf-16-be"), esm=UDHI)
    assert f.text == "第二段"
    assert f.concat == Concat(ref=0xA7, total=3, seq=2, ref_bits=8)


def test_udh_16bit_concatenation() -> None:
    udh = bytes([6, 0x08, 4, 0x12, 0x34, 2, 1])
    f = decode(8, udh + "第一段".encode("utf-16-be"), esm=UDHI)
    assert f.concat == Concat(ref=0x1234, total=2, seq=1, ref_bits=16)


def test_other_ies_are_skipped() -> None:
    # Application port addressing (IEI 0x05, 4 octets) before the concatenation IE.
    udh = bytes([11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 9, 2, 2])
    f = decode(8, udh + "尾".encode("utf-16-be"), esm=UDHI | 0x80)  # UDHI + reply path
    assert f.text == "尾"
    assert f.concat == Concat(ref=9, total=2, seq=2, ref_bits=8)
    assert not f.decode_error


def test_udh_without_concatenation() -> None:
    udh = bytes([6, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0])
    f = decode(1, udh + b"hi", esm=UDHI)
    assert (f.text, f.concat, f.decode_error) == ("hi", None, False)


@pytest.mark.parametrize(
    "udh",
    [
        bytes([5, 0x00, 3, 1, 3, 0]),  # seq 0
        bytes([5, 0x00, 3, 1, 3, 4]),  # seq > total
        bytes([5, 0x00, 3, 1, 0, 0]),  # total 0
        bytes([5, 0x00, 3, 1, 1, 1]),  # 1 of 1: complete, nothing to wait for
        bytes([4, 0x00, 2, 1, 3]),  # wrong IE length
    ],
)
def test_ignored_concatenation_ies(udh: bytes) -> None:
    f = decode(1, udh + b"1", esm=UDHI)
    assert f.text == "1"
    assert f.concat is None


def test_ie_overrunning_the_udh_is_flagged() -> None:
    f = decode(1, bytes([3, 0x00, 3, 1]) + b"1", esm=UDHI)
    assert f.text == "1" and f.decode_error and f.concat is None


def test_udh_longer_than_message_keeps_the_text() -> None:
    f = decode(1, bytes([50]) + b"1", esm=UDHI)
    assert f.decode_error
    assert f.text.endswith("1")  # the bytes are kept rather than thrown away


def test_udhi_without_concatenation_in_the_message_uses_sar() -> None:
    tlvs = {
        Tag.SAR_MSG_REF_NUM: b"\x01\x02",
        Tag.SAR_TOTAL_SEGMENTS: b"\x02",
        Tag.SAR_SEGMENT_SEQNUM: b"\x02",
    }
    f = decode(8, "满意".encode("utf-16-be"), tlvs=tlvs)
    assert f.concat == Concat(ref=0x0102, total=2, seq=2, ref_bits=16)


@pytest.mark.parametrize(
    "tlvs",
    [
        {Tag.SAR_MSG_REF_NUM: b"\x01\x02", Tag.SAR_TOTAL_SEGMENTS: b"\x02"},
        {
            Tag.SAR_MSG_REF_NUM: b"\x01",
            Tag.SAR_TOTAL_SEGMENTS: b"\x02",
            Tag.SAR_SEGMENT_SEQNUM: b"\x01",
        },
        {
            Tag.SAR_MSG_REF_NUM: b"\x00\x01",
            Tag.SAR_TOTAL_SEGMENTS: b"\x02",
            Tag.SAR_SEGMENT_SEQNUM: b"\x03",
        },
    ],
)
def test_incomplete_or_bad_sar_is_ignored(tlvs: dict[int, bytes]) -> None:
    assert decode(1, b"1", tlvs=tlvs).concat is None


def test_udh_wins_over_sar() -> None:
    udh = bytes([5, 0x00, 3, 7, 2, 1])
    tlvs = {
        Tag.SAR_MSG_REF_NUM: b"\x00\x09",
        Tag.SAR_TOTAL_SEGMENTS: b"\x02",
        Tag.SAR_SEGMENT_SEQNUM: b"\x02",
    }
    f = decode(1, udh + b"a", esm=UDHI, tlvs=tlvs)
    assert f.concat == Concat(ref=7, total=2, seq=1, ref_bits=8)


def test_round_trip_through_our_own_segmentation_out_of_order_with_duplicates() -> None:
    reply = "3不满意。" + "接警后等了四十分钟民警才到现场，处理过程也不耐烦，" * 6 + "😡"
    for ref16 in (False, True):
        parts = segment(reply, ref=0x1FF if ref16 else 0x7F, ref16=ref16)
        assert len(parts) >= 3
        arrivals = [*parts, parts[1], parts[0]]
        random.Random(7).shuffle(arrivals)
        stored: dict[str, dict[int, str]] = {}
        for p in arrivals:
            f = decode(8, p.short_message, esm=p.esm_class)
            assert f.concat is not None and not f.decode_error
            stored.setdefault(concat_key("13800138000", f.concat), {})[f.concat.seq] = f.text
        [got] = stored.values()
        text, missing = assemble(got, len(parts))
        assert (text, missing) == (reply, [])


def test_assemble_missing_parts() -> None:
    assert assemble({3: "c", 1: "a"}, 4) == ("ac", [2, 4])
    assert assemble({}, 2) == ("", [1, 2])
    assert assemble({1: "a", 9: "z", 0: "?"}, 2) == ("a", [2])
    assert assemble({1: "a"}, 0) == ("", [])


def test_concat_key_separates_messages() -> None:
    a = Concat(ref=1, total=2, seq=1, ref_bits=8)
    assert concat_key("13800138000", a) == concat_key(" 13800138000", Concat(1, 2, 2, 8))
    assert concat_key("13800138000", a) != concat_key("13900139000", a)
    assert concat_key("13800138000", a) != concat_key("13800138000", Concat(1, 3, 1, 8))
    assert concat_key("13800138000", a) != concat_key("13800138000", Concat(1, 2, 1, 16))
    assert concat_key("13800138000", a) != concat_key("13800138000", Concat(2, 2, 1, 8))


# --- garbage -----------------------------------------------------------------------------


def test_garbage_never_raises() -> None:
    rng = random.Random(0x0424)
    tags: list[int] = [Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM]
    tags += [Tag.MESSAGE_PAYLOAD, 0x0005]
    for _ in range(5000):
        data = rng.randbytes(rng.randint(0, 160))
        tlvs = {
            rng.choice(tags): rng.randbytes(rng.randint(0, 4)) for _ in range(rng.randint(0, 4))
        }
        for alphabet in ("latin1", "gsm7"):
            f = decode_short_message(
                rng.randint(0, 255),
                rng.choice([0, 0x40, 0xC0, rng.randint(0, 255)]),
                data,
                tlvs,
                default_alphabet=alphabet,  # type: ignore[arg-type]
            )
            assert isinstance(f.text, str)
            assert not (f.binary and f.text)
            if f.concat is not None:
                assert 1 <= f.concat.seq <= f.concat.total
                assert f.concat.total >= 2
                assert f.concat.ref_bits in (8, 16)
