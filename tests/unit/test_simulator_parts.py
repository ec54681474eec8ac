"""The SMSC simulator's pure parts, no socket: message id styles, how an MO is split into
parts, and behaviour changes that are refused as a whole."""

from __future__ import annotations

import pytest

from sms.smpp.constants import ESM_CLASS_UDHI
from smsc.messages import decode_text, mo_parts, parse_udh
from smsc.rules import Behaviour, apply_changes, format_id

GATEWAY = "106575"
CITIZEN = "13800138000"


def test_message_id_styles() -> None:
    assert format_id(255, "hex") == "ff" and format_id(255, "hex", True, 8) == "000000FF"
    assert format_id(255, "dec", width=6) == "000255"
    one, two = format_id(1, "uuid"), format_id(2, "uuid", upper=True)
    assert len(one) == 36 and one.count("-") == 4 and one != two.lower() and two == two.upper()


@pytest.mark.parametrize(
    ("encoding", "split", "text", "sizes"),
    [
        ("ucs2", "udh8", "满" * 70, [70]),
        ("ucs2", "udh8", "满" * 71, [67, 4]),
        ("ucs2", "udh16", "满" * 71, [66, 5]),
        ("ucs2", "sar", "满" * 71, [70, 1]),
        ("ucs2", "udh8", "满" * 68 + "😀", [69]),  # 70 UTF-16 units: still one message
        ("ucs2", "udh8", "满" * 66 + "😀" + "满" * 10, [66, 11]),  # the pair is not split
        ("ascii", "udh8", "a" * 160, [160]),
        ("ascii", "udh8", "a" * 161, [153, 8]),
        ("gbk", "udh8", "满" * 70, [70]),
        ("gbk", "udh8", "满" * 71, [67, 4]),
    ],
)
def test_mo_split_boundaries(encoding: str, split: str, text: str, sizes: list[int]) -> None:
    parts = mo_parts(citizen=CITIZEN, dest=GATEWAY, text=text, encoding=encoding, split=split)  # type: ignore[arg-type]
    texts = []
    for part in parts:
        user_data = part.short_message
        if part.esm_class & ESM_CLASS_UDHI:
            parsed = parse_udh(user_data)
            assert parsed is not None
            user_data = parsed[1]
        texts.append(decode_text(part.data_coding, user_data))
    assert [len(t) for t in texts] == sizes and "".join(texts) == text


def test_bad_behaviour_changes_nothing() -> None:
    behaviour = Behaviour()
    for bad in (
        {"window": "ten"},
        {"half_open": 1},
        {"max_tps": -1},
        {"dlr_mode": "sms"},
        {"outcomes": [{"pattern": "(", "stat": "DELIVRD"}]},
        {"outcomes": [{"pattern": "0$", "stat": "LOST"}]},
        {"rejects": [{"pattern": "1", "colour": "red"}]},
        {"dlr_delay": 1, "deliver_window": 0},
    ):
        with pytest.raises((ValueError, TypeError)):
            apply_changes(behaviour, bad)
    assert behaviour == Behaviour()
    apply_changes(behaviour, {"window": 10, "max_tps": 50, "dlr_id_format": None})
    assert (behaviour.window, behaviour.max_tps) == (10, 50.0)
