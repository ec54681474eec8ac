"""The ops-editable rules file: what ships, what a bad edit does, what a good edit does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from sms.understand import Rating, load_rules, understand
from sms.understand.match import first_characters
from sms.understand.rules import DEFAULT_RULES_PATH

REQUIRED_REASONS = [
    "slow_response",
    "attitude",
    "result",
    "no_action",
    "shirking",
    "repeated_trips",
    "no_feedback",
    "irregular_enforcement",
    "fees",
    "not_police_business",
    "other",
]
DEFAULT_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


def edited(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the shipped rules with one exact edit (which must apply once)."""
    assert DEFAULT_TEXT.count(old) == 1, old
    path = tmp_path / "rules.toml"
    path.write_text(DEFAULT_TEXT.replace(old, new), encoding="utf-8")
    return path


def test_shipped_file_is_the_default() -> None:
    assert DEFAULT_RULES_PATH.name == "understanding.toml"
    assert DEFAULT_RULES_PATH.parent.name == "understand"
    rules = load_rules()
    assert rules.source == str(DEFAULT_RULES_PATH)
    assert dict(rules.scheme) == {
        "1": Rating.SATISFIED,
        "2": Rating.BASICALLY_SATISFIED,
        "3": Rating.UNSATISFIED,
    }


def test_shipped_taxonomy_has_every_required_reason_with_a_chinese_label() -> None:
    labels = load_rules().reason_labels
    assert list(labels) == REQUIRED_REASONS
    for reason, label in labels.items():
        assert re.search("[\u4e00-\u9fff]", label), reason
    assert labels["slow_response"] == "出警慢"
    assert labels["shirking"] == "推诿/踢皮球"


def test_shipped_patterns_all_have_known_first_characters() -> None:
    # A pattern whose first character cannot be known is tried at every position of
    # every reply: correct but slow. The shipped file must not need that.
    assert load_rules().matcher.anywhere == ()


@pytest.mark.parametrize(
    ("pattern", "first"),
    [
        ("好", {"好"}),
        ("(?<![你您])好(?=$|[了])", {"好"}),
        ("等了?[0-3]+个", {"等"}),
        ("(?:感谢|谢谢)民警", {"感", "谢"}),
        ("了?来", {"了", "来"}),
        ("[^,]好", None),
        (".好", None),
        ("(?i)td", None),
        ("x*", None),
    ],
)
def test_first_characters(pattern: str, first: set[str] | None) -> None:
    assert first_characters(pattern) == (None if first is None else frozenset(first))


def test_a_custom_rules_file_changes_the_reading(tmp_path: Path) -> None:
    # A four-option scheme, as some cities print: 「回复1满意，2基本满意，3不满意，4很不满意」.
    path = edited(tmp_path, '"3" = "unsatisfied"\n', '"3" = "unsatisfied"\n"4" = "unsatisfied"\n')
    rules = load_rules(path)
    assert understand("4", rules).rating is Rating.UNSATISFIED
    assert understand("4").rating is Rating.UNKNOWN  # the packaged rules are untouched
    assert rules.source == str(path)


def test_ops_can_add_a_word_and_a_reason(tmp_path: Path) -> None:
    path = edited(
        tmp_path,
        '[reasons.other]\nlabel = "其他"\n',
        '[reasons.parking]\nlabel = "挪车慢"\nphrases = ["挪车"]\n\n'
        '[reasons.other]\nlabel = "其他"\n',
    )
    rules = load_rules(path)
    reading = understand("挪车等了一个小时", rules)
    assert reading.rating is Rating.UNSATISFIED
    assert reading.reasons == ("slow_response", "parking")  # file order is taxonomy order


def test_a_pattern_with_an_unknown_first_character_still_matches(tmp_path: Path) -> None:
    # 「.挪车」 can start with any character: it is tried at every position (slow path).
    path = edited(
        tmp_path,
        '[reasons.fees]\nlabel = "乱收费"\n',
        "[reasons.fees]\nlabel = \"乱收费\"\npatterns = ['.挪车']\n",
    )
    rules = load_rules(path)
    assert len(rules.matcher.anywhere) == 1
    reading = understand("叫他挪车等了一个小时", rules)
    assert reading.reasons == ("slow_response", "fees")
    for text in ["挪车", "3", "满意", "好几次都没人管", "等了3个小时"]:
        assert understand(text, rules).to_json() == understand(text).to_json(), text


def test_path_may_be_a_string(tmp_path: Path) -> None:
    path = edited(tmp_path, '"满意", "满足"', '"满意", "满足", "中意"')
    assert understand("很中意", load_rules(str(path))).rating is Rating.SATISFIED


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('"1" = "satisfied"', '"1" = "happy"', "scheme.1"),
        ('"1" = "satisfied"', '"x" = "satisfied"', "scheme.x"),
        ("version = 1", "version = 2", "version"),
        ("version = 1", "version = 1\ncolour = 1", "colour"),
        ('label = "出警慢"', 'label = "出警慢"\nlable = "typo"', "reasons.slow_response.lable"),
        ('label = "出警慢"', "label = 3", "reasons.slow_response.label"),
        ('"慢", "太慢",', '"慢", "(太慢",', None),  # a phrase, not a regex: fine
        (
            "patterns = [\n  '等了?",
            "patterns = [\n  '(等了?",
            "reasons.slow_response.patterns[0]",
        ),
        (
            "patterns = [\n  '等了?",
            "patterns = [\n  '(?P<x>a)', '等了?",
            "reasons.slow_response.patterns[0]",
        ),
        (
            "patterns = [\n  '等了?",
            "patterns = [\n  'a*', '等了?",
            "reasons.slow_response.patterns[0]",
        ),
        ('"慢", "太慢",', '"慢", "慢",', "reasons.slow_response.phrases"),
        ('"慢", "太慢",', '"慢", "踢皮球",', "reasons.shirking.phrases"),
        (
            'reason = "attitude"\npraise = true',
            'reason = "manners"\npraise = true',
            "aspects[0].reason",
        ),
        (
            'reason = "attitude"\npraise = true',
            'reason = "attitude"\npraise = "yes"',
            "aspects[0].praise",
        ),
        (
            'level = "rating"\nrating = "satisfied"',
            'level = "rank"\nrating = "satisfied"',
            "words[0].level",
        ),
        ("滿满 態态", "滿满 態", "traditional.pairs"),
        ("滿满 態态", "滿满 滿满", "traditional.pairs"),
        ('"man yi" = "满意"', '"Man Yi" = "满意"', "pinyin.Man Yi"),
        ('"man yi" = "满意"', '"man yi" = "满意"\n"manyi" = "满意"', "pinyin.manyi"),
        ('negation = [\n  "不",', 'negation = [\n  "不", "很",', "modifiers.degree"),
        ("phone_min_length = 7", "phone_min_length = 0", "digits.phone_min_length"),
        ('"一" = "1"', '"一" = "one"', "numerals.digits.一"),
        ('hint = "citizen says wrong number"\n', "", "non_answers[0].hint"),
        # The safety net's lists: a typo, a word in two lists, a bad regex, a bad number.
        ("unread_chars = 3", "unread_chars = 3\nunread = 1", "caution.unread"),
        ("sneer = [\n", 'sneer = [\n  "到现在",\n', "caution.sneer"),
        ("doubt_patterns = [\n", "doubt_patterns = [\n  '(分钟',\n", "caution.doubt_patterns[0]"),
        (
            "doubt_patterns = [\n",
            "doubt_patterns = [\n  '(?P<x>a)',\n",
            "caution.doubt_patterns[0]",
        ),
        ("unread_chars = 3", "unread_chars = -1", "caution.unread_chars"),
        ("unread_chars = 3", 'unread_chars = "3"', "caution.unread_chars"),
        ("not_quite = [", 'not_quite = ["不是", ', "modifiers.not_quite"),
        ('before_ratings = ["基本"]', 'before_ratings = ["非常"]', "homophones.before_ratings[0]"),
    ],
)
def test_a_bad_edit_names_its_key(tmp_path: Path, old: str, new: str, key: str | None) -> None:
    path = edited(tmp_path, old, new)
    if key is None:
        load_rules(path)
        return
    with pytest.raises(ValueError, match=re.escape(f"{path}: {key}: ")):
        load_rules(path)


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = edited(tmp_path, 'label = "出警慢"', 'label = "出警慢')
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*line"):
        load_rules(path)


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    data = tomllib.loads(DEFAULT_TEXT)
    assert "emoji" in data
    path = edited(tmp_path, "[emoji]\n", "[emoji_typo]\n")
    with pytest.raises(ValueError, match=r"emoji_typo: unknown key"):
        load_rules(path)


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_rules(tmp_path / "nope.toml")


def test_not_utf8_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(DEFAULT_TEXT.encode("gbk", "replace"))
    with pytest.raises(ValueError, match="UTF-8"):
        load_rules(path)


def test_without_a_caution_section_there_is_no_safety_net(tmp_path: Path) -> None:
    start = DEFAULT_TEXT.index("[caution]")
    end = DEFAULT_TEXT.index("# ----", start)
    path = tmp_path / "rules.toml"
    weigher = DEFAULT_TEXT.index("[weigher]")
    path.write_text(DEFAULT_TEXT[:start] + DEFAULT_TEXT[end:weigher], encoding="utf-8")
    rules = load_rules(path)
    assert rules.caution is None and rules.weigher is None
    # The reader as it was before the net (and the weigher): the sneer goes unnoticed.
    assert understand("好好好，你们说了算", rules).rating is Rating.SATISFIED
    assert understand("好好好，你们说了算").rating is Rating.UNSATISFIED


def test_an_english_typo_is_read_only_when_one_word_is_one_edit_away(tmp_path: Path) -> None:
    # 「satisified」 is one edit from satisfied; with two listed words one edit from the
    # same typo, it is left unread rather than guessed.
    assert understand("satisified").rating is Rating.SATISFIED
    path = edited(tmp_path, '"satisfied" = "满意"', '"satisfied" = "满意"\n"satisfier" = "不满意"')
    rules = load_rules(path, weigher=False)
    assert understand("satisfiedr", rules).rating is Rating.UNKNOWN  # one edit from both
    assert understand("satisfiied", rules).rating is Rating.SATISFIED  # one edit from one
    assert understand("sad", rules).rating is Rating.UNKNOWN  # short words are never guessed
