"""Survey templates: placeholders, the worst-case length check, truncation."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sms.templates import (
    DEFAULT_REPLY_SCHEME,
    PLACEHOLDER_MAX_UNITS,
    PLACEHOLDERS,
    TemplateError,
    load_template,
)
from sms.text import count_units, parts_needed

SIGNATURE = "【绍兴公安】"
# Signature first, as carriers require; 64 units at worst, + 6 for "回复TD退订" = 70.
DEFAULT_TEXT = "{signature}请评价{date}{unit_name}{service}：{reply_scheme}"


def default_spec(**extra: Any) -> dict[str, Any]:
    return {"text": DEFAULT_TEXT, "signature": SIGNATURE, "reserve_units": 6, **extra}


def test_realistic_default_fits_one_part_with_reserve() -> None:
    t = load_template("default", default_spec())
    assert t.max_parts == 1
    assert t.worst_case_units == 70
    assert t.worst_case_parts == 1
    text = t.render(
        {
            "signature": SIGNATURE,
            "date": "11月23日",
            "unit_name": "越城区公安分局城南派出所",
            "service": "户籍办理",
        }
    )
    assert (
        text
        == "【绍兴公安】请评价11月23日越城区公安分局城南派出所户籍办理：" + DEFAULT_REPLY_SCHEME
    )
    assert count_units(text) + 6 <= 70
    assert parts_needed(text + "回复TD退订") == 1


def test_signature_defaults_to_the_configured_one() -> None:
    t = load_template("default", default_spec())
    assert t.render({}).startswith(SIGNATURE + "请评价：")


def test_signature_can_go_at_the_end() -> None:
    t = load_template(
        "t", {"text": "请评价{service}：{reply_scheme}{signature}", "signature": "【公安】"}
    )
    assert t.render({"service": "110接警"}) == f"请评价110接警：{DEFAULT_REPLY_SCHEME}【公安】"


def test_example_config_template_without_placeholders() -> None:
    t = load_template(
        "default",
        {
            "text": "您好，请对民警此次的服务进行评价：回复1满意，2基本满意，3不满意。",
            "max_parts": 2,
        },
    )
    assert t.placeholders == frozenset()
    assert t.render({"signature": "【x】"}) == t.text


def test_too_long_template_fails_with_a_clear_message() -> None:
    spec = {
        "text": "{signature}您好，您于{date}{time}在{unit_name}办理的{service}业务已办结，"
        "经办民警{officer}，请您对本次服务进行评价：{reply_scheme}",
        "signature": SIGNATURE,
        "reserve_units": 6,
    }
    with pytest.raises(TemplateError) as info:
        load_template("window_service", spec)
    message = str(info.value)
    assert "'window_service'" in message
    assert "worst case is 111 UCS-2 units (105 rendered" in message
    assert "6 reserved" in message
    assert "takes 2 parts; max_parts is 1" in message
    # The same text is fine when two parts are allowed.
    assert load_template("window_service", {**spec, "max_parts": 2}).worst_case_parts == 2


def test_reserve_alone_can_tip_it_over() -> None:
    load_template("t", {"text": "满" * 54 + DEFAULT_REPLY_SCHEME})  # 70 units
    with pytest.raises(TemplateError, match="71 UCS-2 units"):
        load_template("t", {"text": "满" * 54 + DEFAULT_REPLY_SCHEME, "reserve_units": 1})


def test_ref16_lowers_the_part_size() -> None:
    text = "满" * 115 + DEFAULT_REPLY_SCHEME  # 131 units: 2 parts of 67, or 66 with ref16...
    assert load_template("t", {"text": text, "max_parts": 2}).worst_case_parts == 2
    # ...but a surrogate pair on each boundary may cost a unit: 131 > 2 * 65.
    with pytest.raises(TemplateError, match="takes 3 parts"):
        load_template("t", {"text": text, "max_parts": 2, "ref16": True})


def test_unknown_signature_length_assumes_the_longest() -> None:
    with pytest.raises(TemplateError, match=r"worst case is 84 UCS-2 units \(78 rendered"):
        load_template("default", {"text": DEFAULT_TEXT, "reserve_units": 6})


def test_max_units_overrides() -> None:
    t = load_template("t", default_spec(max_units={"unit_name": 10}))
    assert t.worst_case_units == 60
    assert t.render({"unit_name": "越城区公安分局城南派出所"}).count("…") == 1
    with pytest.raises(TemplateError, match="unknown placeholder 'phone'"):
        load_template("t", default_spec(max_units={"phone": 11}))
    with pytest.raises(TemplateError, match=r"max_units.unit_name must be a whole number"):
        load_template("t", default_spec(max_units={"unit_name": 0}))


def test_truncation_keeps_the_load_check_true() -> None:
    t = load_template("default", default_spec())
    values = {
        "date": "2024年11月23日星期六",
        "unit_name": "绍兴市公安局越城区分局城南派出所户籍窗口一",
        "service": "居民身份证补领及户口迁移业务",
        "officer": "欧阳某某某某某某某某",
    }
    text = t.render(values)
    assert "绍兴市公安局越城区分局城南派出所户籍窗…" in text  # 21 units cut to 20
    assert "居民身份证补领及户口迁…" in text
    assert "请评价2024年…" in text
    assert count_units(text) + t.reserve_units == t.worst_case_units == 70


def test_render_never_exceeds_worst_case_random_values() -> None:
    rng = random.Random(23)
    alphabet = [*"城南派出所民警户籍", *"ab1 \n", "😀"]
    t = load_template(
        "t",
        {
            "text": "{signature}{date}{time}{unit_name}{service}{officer}{reply_scheme}",
            "signature": SIGNATURE,
            "max_parts": 2,
        },
    )
    for _ in range(300):
        values = {
            p: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            for p in ("date", "time", "unit_name", "service", "officer")
        }
        text = t.render(values)
        assert count_units(text) <= t.worst_case_units
        assert parts_needed(text) <= t.worst_case_parts <= t.max_parts


def test_whitespace_in_values_is_collapsed_and_braces_are_literal() -> None:
    t = load_template("t", {"text": "{unit_name}：{reply_scheme}"})
    assert t.render({"unit_name": " 城南\n派出所 "}).startswith("城南 派出所：")
    assert t.render({"unit_name": "{service}"}).startswith("{service}：")


def test_literal_braces_in_text() -> None:
    t = load_template("t", {"text": "{{注意}}{reply_scheme}"})
    assert t.render({}) == "{注意}" + DEFAULT_REPLY_SCHEME


def test_missing_value_renders_empty() -> None:
    t = load_template("t", {"text": "{officer}民警：{reply_scheme}"})
    assert t.render({}) == "民警：" + DEFAULT_REPLY_SCHEME


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{phone}{reply_scheme}", "unknown placeholder {phone}"),
        ("{}{reply_scheme}", "unknown placeholder {}"),
        ("{0}{reply_scheme}", "unknown placeholder {0}"),
        ("{unit_name.upper}{reply_scheme}", "unknown placeholder {unit_name.upper}"),
        ("{service:>10}{reply_scheme}", "must be plain"),
        ("{service!r}{reply_scheme}", "must be plain"),
        ("{service{reply_scheme}", "bad braces"),
        ("service}{reply_scheme}", "bad braces"),
        ("   ", "text is required"),
    ],
)
def test_placeholder_validation(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace(".", r"\.")):
        load_template("t", {"text": text})


def test_unknown_placeholder_message_lists_the_allowed_ones() -> None:
    with pytest.raises(TemplateError) as info:
        load_template("t", {"text": "{phone}"})
    for p in PLACEHOLDERS:
        assert f"{{{p}}}" in str(info.value)


def test_allowed_set_is_one_constant() -> None:
    assert PLACEHOLDERS == frozenset(PLACEHOLDER_MAX_UNITS)
    assert {"signature", "service", "unit_name", "date", "time", "officer"} <= PLACEHOLDERS


def test_reply_scheme_is_required_for_surveys() -> None:
    with pytest.raises(TemplateError, match="no reply digit 1, 2, 3"):
        load_template("notice", {"text": "{signature}您的回访已登记。", "signature": SIGNATURE})
    t = load_template("notice", {"text": "您的回访已登记。", "allow_no_scheme": True})
    assert t.render({}) == "您的回访已登记。"


def test_digits_in_values_or_signature_do_not_count_as_a_scheme() -> None:
    with pytest.raises(TemplateError, match="no reply digit 2, 3"):
        load_template("t", {"text": "【110】{date}请回复1"})


def test_custom_reply_scheme() -> None:
    t = load_template(
        "t", {"text": "{reply_scheme}", "reply_scheme": "满意回1，一般回2，不满意回3"}
    )
    assert t.render({}) == "满意回1，一般回2，不满意回3"
    with pytest.raises(TemplateError, match="no reply digit 3"):
        load_template("t", {"text": "{reply_scheme}", "reply_scheme": "满意回1，不满意回2"})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_parts": 0}, "max_parts must be a whole number 1..255"),
        ({"max_parts": True}, "max_parts must be a whole number"),
        ({"max_parts": "1"}, "max_parts must be a whole number"),
        ({"reserve_units": -1}, "reserve_units must be"),
        ({"ref16": "yes"}, "ref16 must be true or false"),
        ({"allow_no_scheme": 1}, "allow_no_scheme must be true or false"),
        ({"signature": 5}, "signature must be a string"),
        ({"max_units": [1]}, "max_units must be a table"),
        ({"sigature": "【x】"}, "unknown keys \\['sigature'\\]"),
    ],
)
def test_spec_validation(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template("default", default_spec(**extra))


def test_missing_text() -> None:
    with pytest.raises(TemplateError, match="'x': text is required"):
        load_template("x", {})
