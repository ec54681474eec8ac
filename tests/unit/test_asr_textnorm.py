"""Chinese normalisation of Vosk output before reply understanding."""

from __future__ import annotations

import pytest

from asr.textnorm import digits_for_reply, join_cjk, normalize_utterance


@pytest.mark.parametrize(
    ("raw", "joined"),
    [
        ("我 很 满意", "我很满意"),
        ("  我  很\t满意 ", "我很满意"),
        ("打 110 报警", "打 110 报警"),  # Latin/digits keep their spaces
        ("ok 好 的", "ok 好的"),
        ("hello world", "hello world"),
        ("안녕 하세요", "안녕 하세요"),  # Hangul is written with spaces
        ("民 警 態 度 很 好 。", "民警態度很好。"),  # traditional characters, CJK punctuation
        ("ｏｋ 好", "ｏｋ好"),  # full-width forms count as CJK
        ("", ""),
    ],
)
def test_join_cjk(raw: str, joined: str) -> None:
    assert join_cjk(raw) == joined


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三", "3"),
        ("一", "1"),
        ("幺", "1"),
        ("两", "2"),
        ("嗯三吧", "嗯3吧"),
        ("那个二", "那个2"),
        ("三号", "3号"),
        ("选三", "选3"),
        ("我选择二", "我选择2"),
        ("按一", "按1"),
        ("回复三", "回复3"),
        ("选第三个", "选第3个"),
        ("我选三吧谢谢", "我选3吧谢谢"),
        ("不满意选三 ok", "不满意选3 ok"),
    ],
)
def test_numerals_answering_the_reply_scheme_become_digits(text: str, expected: str) -> None:
    assert digits_for_reply(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "十分满意",  # "very satisfied", not 10
        "一般",  # "so-so"
        "按一下",  # "press it once"
        "选一个好的",
        "一个警察来了",
        "三十",
        "我很满意",
        "第一次报警",
        "3",
    ],
)
def test_numerals_in_words_stay_characters(text: str) -> None:
    assert digits_for_reply(text) == text


def test_normalize_utterance_by_language() -> None:
    assert normalize_utterance("我 选 三", "zh-CN") == "我选3"
    assert normalize_utterance("嗯 三", "zh") == "嗯3"
    assert normalize_utterance("[unk] 不 满意", "zh-CN") == "不满意"
    assert normalize_utterance("네 만족 합니다 [unk]", "ko") == "네 만족 합니다"
    assert normalize_utterance("삼", "ko") == "삼"
