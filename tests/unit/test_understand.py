"""Reading citizens' replies: the behaviours an officer's record depends on."""

from __future__ import annotations

import json

import pytest

from sms.understand import Rating, Understanding, load_rules, understand

S, B, U, X = (
    Rating.SATISFIED,
    Rating.BASICALLY_SATISFIED,
    Rating.UNSATISFIED,
    Rating.UNKNOWN,
)


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        # The reply scheme, in the forms citizens type it.
        ("1", S),
        ("2", B),
        ("3", U),
        ("３", U),
        ("回复1", S),
        ("【3】", U),
        ("我选2", B),
        ("3.", U),
        ("（3）", U),
        ("选三", U),
        ("①", S),
        # Degree words.
        ("非常满意", S),
        ("很满意", S),
        ("特别满意", S),
        ("还算满意", B),
        ("基本满意", B),
        ("比较满意", B),
        ("还满意", B),
        ("还挺满意的", S),
        # Negation, its scope, double negation.
        ("不满意", U),
        ("没有不满意", S),
        ("不是不满意", B),
        ("不太满意", U),
        ("不是很满意", U),
        ("谈不上满意", U),
        ("没那么满意", U),
        ("基本没有不满意的", B),
        # Rhetorical questions and sarcasm.
        ("满意个屁", U),
        ("满意才怪", U),
        ("怎么可能满意", U),
        ("怎么可能不满意", S),
        ("能满意吗", U),
        ("我会满意的", S),
        ("非常满意呵呵", U),
        ("满意？开什么玩笑", U),
        # Contrast: the clause after 但是/可是/不过 decides.
        ("态度很好，但是结果不满意", U),
        ("结果不满意，但态度还可以", U),
        ("满意，但是出警有点慢", B),
        ("态度很好，但是出警太慢了", U),
        ("不满意，不过民警辛苦了", U),
        # Change over time: what is true now decides.
        ("之前不满意，现在满意了", S),
        ("本来挺满意的，后来就没人管了", U),
        # Traditional characters, pinyin, emoji.
        ("滿意", S),
        ("不滿意", U),
        ("manyi", S),
        ("bu manyi", U),
        ("mǎn yì", S),
        ("👍", S),
        ("👎", U),
        ("😡", U),
        # Praise and complaints with no rating word.
        ("辛苦了", S),
        ("踢皮球", U),
        ("到现在都没人处理", U),
        # Non-answers.
        ("你是谁", X),
        ("打错了", X),
        ("我没有报过警", X),
        ("13800138000", X),
        ("5", X),
        ("好的", X),
        ("", X),
    ],
)
def test_rating(text: str, rating: Rating) -> None:
    assert understand(text).rating is rating


def test_digit_and_reason_together() -> None:
    reading = understand("3 出警太慢")
    assert reading.rating is U
    assert reading.reasons == ("slow_response",)
    assert "digit 3 → unsatisfied (scheme)" in reading.explanation


@pytest.mark.parametrize("text", ["TD", "td", "T", "退订", "拒收", "回复TD退订"])
def test_opt_out_alone_is_unknown_with_a_hint(text: str) -> None:
    reading = understand(text)
    assert (reading.rating, reading.opt_out) == (X, True)
    assert reading.hint == "opt-out only: no rating given"


@pytest.mark.parametrize(
    ("text", "rating"), [("3 TD", U), ("1 td", S), ("3TD", U), ("满意，退订", S)]
)
def test_opt_out_with_a_rating_keeps_both(text: str, rating: Rating) -> None:
    reading = understand(text)
    assert (reading.rating, reading.opt_out) == (rating, True)


@pytest.mark.parametrize("text", ["LTD", "std", "ok"])
def test_latin_words_match_only_whole(text: str) -> None:
    assert understand(text).opt_out is False


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("打错了", "citizen says wrong number"),
        ("我没有报过警", "citizen says they never called the police"),
        ("你是谁", "citizen asks who is texting"),
        ("13800138000", "looks like a phone number, not a rating"),
        ("5", "digit 5 is not in the reply scheme"),
        ("1 3", "several different digits (1, 3): ask which one"),
        ("好的", "acknowledgement only: ask for 1, 2 or 3"),
        ("", "empty reply"),
        ("今天天气不错吗？", "no rating words found: read the text"),
        ("谢谢，不过你们打错了", "citizen says wrong number"),
    ],
)
def test_unknown_replies_carry_a_hint_for_the_agent(text: str, hint: str) -> None:
    reading = understand(text)
    assert reading.rating is X
    assert reading.hint is not None and reading.hint.startswith(hint)


def test_hint_only_when_unknown() -> None:
    assert understand("3").hint is None


def test_several_reasons_in_taxonomy_order() -> None:
    reading = understand("警察说不归他们管，让我自己去找物业，跑了好几趟，到现在没人处理")
    assert reading.rating is U
    assert reading.reasons == ("no_action", "shirking", "repeated_trips", "not_police_business")


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        ("民警态度很差", ("attitude",)),
        ("处理结果不满意", ("result",)),
        ("办个证跑了五趟", ("repeated_trips",)),
        ("一直没有回音", ("no_feedback",)),
        ("执法不规范", ("irregular_enforcement",)),
        ("乱收费", ("fees",)),
        ("我要投诉", ("other",)),
        ("不及时", ("slow_response",)),
        ("不负责任", ("no_action",)),
        ("推诿", ("shirking",)),
        ("城管的事找警察也没用", ("not_police_business",)),
        ("出警一点都不慢", ()),
    ],
)
def test_reasons(text: str, reasons: tuple[str, ...]) -> None:
    assert understand(text).reasons == reasons


def test_praise_words() -> None:
    reading = understand("态度很好，但是结果不满意")
    assert reading.praise is True
    assert reading.praise_words == ("态度很好",)
    thanks = understand("谢谢")
    assert (thanks.rating, thanks.praise, thanks.praise_words) == (S, False, ())
    named = understand("特别感谢张警官，辛苦了")
    assert named.praise_words == ("感谢张警官", "辛苦了")


def test_negated_praise_is_a_complaint() -> None:
    reading = understand("民警不耐心")
    assert (reading.rating, reading.praise, reading.reasons) == (U, False, ("attitude",))


def test_rhetorical_question_affirms_a_complaint() -> None:
    assert understand("这不是推诿是什么").reasons == ("shirking",)
    assert understand("这不是乱收费吗").rating is U


def test_every_decision_is_explained() -> None:
    for text in ["3", "满意个屁", "态度很好，但是结果不满意", "踢皮球", "TD", "你是谁", "??"]:
        reading = understand(text)
        assert reading.explanation, text
        assert all(isinstance(step, str) and step for step in reading.explanation)


def test_contrast_and_time_are_named_in_the_explanation() -> None:
    assert "'但是': the later clause decides" in understand("很满意，但是不满意").explanation
    steps = understand("之前很满意，后来就没人管了").explanation
    assert "later in time: unsatisfied overrules satisfied" in steps


def test_to_json_shape() -> None:
    reading = understand("态度很好，但是结果不满意 TD")
    data = reading.to_json()
    # The original seven keys first, in their order (the feed's contract); later keys
    # are only ever added after them.
    original = ["rating", "reasons", "praise", "opt_out", "explanation", "hint", "text"]
    assert list(data)[:7] == original
    assert list(data)[7:] == ["confidence", "cues", "correction", "clarify"]
    assert data["rating"] == "unsatisfied"
    assert data["reasons"] == ["result"]
    assert data["praise"] == {"flag": True, "words": ["态度很好"]}
    assert data["opt_out"] is True
    assert data["hint"] is None
    assert data["text"] == "态度很好，但是结果不满意 TD"
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


def test_understanding_is_frozen_and_keeps_the_original_text() -> None:
    reading = understand("滿意！")
    assert isinstance(reading, Understanding)
    assert reading.text == "滿意！"
    with pytest.raises(AttributeError):
        reading.rating = U  # type: ignore[misc]


def test_rating_values_are_the_contract() -> None:
    assert [r.value for r in Rating] == [
        "satisfied",
        "basically_satisfied",
        "unsatisfied",
        "unknown",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "满\u200b意",  # zero-width space from an input method
        "满 意",
        "ＭＡＮＹＩ",
        "满意️",
        "  满意\n",
    ],
)
def test_spelling_noise_does_not_matter(text: str) -> None:
    assert understand(text).rating is S


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("等了3个小时", U),  # a quantity, not a vote
        ("第3次报警了还是没人管", U),
        ("1号", X),
        ("110", X),
        ("3.5", X),
        ("3:30", X),
        ("333", U),  # an emphatic 3
        ("3q", S),  # "thank you", a word that contains a digit
        ("打12345也没用", U),  # a hotline number, not a vote
        ("十分满意", S),  # 十分 is "very", not a number
        ("一般", B),
    ],
)
def test_digits_that_are_not_votes(text: str, rating: Rating) -> None:
    assert understand(text).rating is rating


@pytest.mark.parametrize(
    ("transcript", "rating", "reasons"),
    [
        (
            "喂你好我是之前报警的那个嗯民警来得挺快的态度也挺好就是那个事情到现在还没处理完我不太满意",
            U,
            ("no_action",),
        ),
        ("嗯对是我报的警当时民警很快就到了处理得也挺好的满意", S, ()),
        ("嗯那个怎么说呢还行吧就是等的时间有点长", B, ("slow_response",)),
        ("嗯三吧", U, ()),
        ("我选择二", B, ()),
    ],
)
def test_citizen_transcripts(transcript: str, rating: Rating, reasons: tuple[str, ...]) -> None:
    reading = understand(transcript)
    assert (reading.rating, reading.reasons) == (rating, reasons)


def test_explicit_rules_object_is_used() -> None:
    rules = load_rules()
    assert understand("3", rules).rating is U
    assert understand("3", rules) == understand("3")
