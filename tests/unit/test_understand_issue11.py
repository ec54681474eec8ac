"""The readings issue 11 asks for: the asymmetric rule, confidence and cues, negation
scope, contrast, self-correction, typos through pinyin, a correction of an earlier
reply, the clarify flag, and bounded output."""

from __future__ import annotations

import random
import sys

import pytest

from sms.understand import Confidence, Rating, load_rules, understand
from sms.understand import cues as cue_ids

S, B, U, X = (
    Rating.SATISFIED,
    Rating.BASICALLY_SATISFIED,
    Rating.UNSATISFIED,
    Rating.UNKNOWN,
)
KNOWN_CUES = {v for k, v in vars(cue_ids).items() if k.isupper() and isinstance(v, str)}


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        # Sarcasm: a rating word never wins over the complaint beside it.
        ("真是太满意了，人影都没见到", U),
        ("好啊好啊，报完警等到天亮", U),
        ("满意满意，下回我自己破案", U),
        ("真及时，小偷早跑没影了", U),  # praise denied by a complaint of the same thing
        # Negation scope, a negation that follows, rhetorical negation.
        ("不满意？没有的事", S),
        ("哪有什么不满意", S),
        ("满意不起来", U),
        ("跟满意不沾边", U),
        ("不满意是不可能的", S),
        ("一点都不差", S),
        ("没觉得哪里好", U),
        # Contrast, and complaints aimed at someone else.
        ("人很客气，可事情一点没办", U),
        ("对那个肇事的很不满意，对你们交警没意见", S),
        ("结果还行，过程太折腾", B),
        ("态度很好，但是出警太慢了", U),  # manners do not outweigh the work
        ("满意，但是出警有点慢", B),
        ("满意，但是到现在都没人管", U),
        ("出警有点慢，但是总的来说还是满意的", B),  # never satisfied beside a complaint
        ("之前不满意，现在满意了", S),  # resolved in time
        # Self-correction and several digits.
        ("2，哦不，3", U),
        ("1吧……算了还是2", B),
        ("一还是二呢", X),
        ("1 3", X),
        ("1改3", U),  # a word between two digits that changes the answer
        ("2→1", S),
        ("3 no 1", S),
        ("1吧 算了2", B),
        ("1，还是2吧", B),
        ("1还是2呢", X),
        ("二。改三。", U),
        ("3 按错 回2", B),  # a slip between the digits: the last one is the answer
        ("2 oops meant 1", S),
        ("sent 3 by mistake, pls change to 1", S),
        ("Ignore my 1 from before, nobody followed up. 3", U),  # the 1 disowned
        ("2 是我老伴回的 我自己给1", S),
        ("刚回了个3，是回给别人的，你们这个是1", S),
        # rhetorical: nothing to be satisfied with; part satisfied
        ("有啥满意的", U),
        ("我不觉得有什么值得满意的", U),
        ("哪有什么满意的", U),
        ("部分满意", B),
        # Homophones and typos through pinyin.
        ("满衣", S),
        ("馒意", S),
        ("不瞒易", U),
        ("满一年了还没破案", U),  # 满一 is "a full year" here
        ("鸡本满意", B),  # 基本 mistyped before a rating word spelled right
        ("几本满意", B),
        ("satisified", S),  # an English word one letter off
        ("dissatisifed", U),
        # Dialect and slang.
        ("好使", S),
        ("阔以", B),
        ("整挺好", S),
        ("不行不行", U),
        ("太水了", U),
        ("坑人", U),
        ("唔满意", U),
        ("冇人理", U),
        # Complaints with no rating word.
        ("说好回电话的，一直没回", U),
        ("来了看一眼就走了", U),
        ("到底管不管", U),
        # English with negation.
        ("not happy", U),
        ("not too bad", B),
        ("wasn't helpful", U),  # a negated auxiliary
        ("I don't like how they treated me", U),
        # Negation: double, formal, slang; a negated complaint is praise; A-not-A asks.
        ("木有不满意", S),
        ("并非不满意", S),
        ("没人会不满意", S),
        ("没拖，当天就给办了", S),
        ("一点都没有为难我们", S),
        ("交警是不是偏袒对方", U),
        ("不不不 不满意", U),  # "no, no, no": not a negation of 不满意
        ("嗯 那个 民警 态度 不 太 好 我 不 满意", U),  # 不太 of 不太好 is not read twice
        ("ok but slow", B),
        # A question about the case is not praise.
        ("人找到了没有？", X),
        ("找到了吗？谢谢", X),
        # A good word alone in scare quotes is sarcasm.
        ("很“满意”", U),
        ("服务真是“周到”，材料让我来回交了四次", U),
        ("真是“高效”啊", U),
        ("骗子真是“专业”", X),  # ... of the culprit: nothing said of the police
        ("刚回的“满意”撤回，事情根本没解决", U),  # an answer quoted, not a sneer
        ("打错字了，是“满意”不是“瞒意”", S),
        # Sound-alikes of the middling and praise words, through pinyin like 满意's.
        ("一班", B),
        ("还型", B),
        ("海星", B),
        ("不措", S),
        ("插评", U),
        # No reason to be unsatisfied, and negations that follow after 那: satisfied.
        ("没理由不满意", S),
        ("找不出不满意的理由", S),
        ("不满意那是不可能的", S),
        # (round 18's weigher, with its hidden layer, gives it 0.17 of unsatisfied: the
        # rating is withheld and the citizen asked again)
        ("说我不满意是冤枉我了", X),
        ("不满意倒不至于，基本吧", B),
        ("实难满意", U),
        ("钱追回来再说满意", U),
        # Asking what the digits mean is no answer.
        ("回复1是满意吗", X),
        ("请问满意回几？", X),
        ("1是满意还是3是满意？", X),
    ],
)
def test_issue_examples(text: str, rating: Rating) -> None:
    reading = understand(text)
    assert reading.rating is rating, reading.explanation


def test_a_word_that_sounds_like_a_rating_is_not_one() -> None:
    # 「很蛮意外」: 意外 is a word, not a typo of 满意 — the rules read no rating; the
    # weigher may guess, but never a positive one, and not sure enough to skip asking.
    alone = understand("很蛮意外", load_rules(None, weigher=False))
    assert alone.rating is X and "homophone" not in alone.cues
    reading = understand("很蛮意外")
    assert reading.rating in (X, U) and reading.clarify


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [("退订怎么弄", False), ("回复TD是退订吗？", False), ("不要退订", False), ("退订", True),
     ("以后别发了", True), ("3，以后不要再发这种短信", True),
     # 在 typed for 再, an adverb between, Wu 覅, English and pinyin; a negated opt-out
     ("别在发了", True), ("能不能不要天天发这个", True), ("覅发了", True), ("unsub pls", True),
     ("Leave me alone", True), ("Please don't contact me again", True), ("bie fa le", True),
     ("满意，不要给我退订", False), ("1，唔使退订", False)],
)  # fmt: skip
def test_opt_out_precision(text: str, opt_out: bool) -> None:
    assert understand(text).opt_out is opt_out


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [
        # a request said softly is still a request
        ("别发了行吗", True), ("能不能别发了", True), ("退订好吗", True), ("能帮我退订吗", True),
        # an opt-out said again, after the last one was not honoured
        ("我回TD了你们咋还发", True), ("上次退了怎么还发", True),
        # off the list, these SMS not wanted, 退 alone after a rating, a sound-alike
        ("把我从名单里移除", True), ("过得去吧，短信就免了", True), ("2，退", True),
        ("退丁", True), ("不需要，别发了", True), ("再发我就拉黑", True),
        # asking how, in the next clause too; negated; someone else's block list
        ("不想收了，咋个退", False), ("退订回复哪个", False), ("不要帮我退订", False),
        ("骗子把我拉黑了", False), ("怎么取消这个短信", False),
        ("police didn't do anything", False), ("事故责任推定对方全责", False),
    ],
)  # fmt: skip
def test_opt_out_requests_and_questions(text: str, opt_out: bool) -> None:
    assert understand(text).opt_out is opt_out


def test_a_rating_beside_an_opt_out_still_counts() -> None:
    # 「还行，退订谢谢」 rates and opts out; kind words alone beside an opt-out do not rate
    reading = understand("还行，退订谢谢")
    assert reading.opt_out and reading.rating is B
    assert understand("好的，退订").rating is X
    # the same with the middling word alone beside the opt-out (one signal: the fast path)
    alone = understand("还行，退订")
    assert alone.opt_out and alone.rating is B


def test_asking_how_to_opt_out_has_its_hint() -> None:
    reading = understand("退订怎么弄")
    assert reading.rating is X
    assert reading.hint == "citizen asks how to opt out: tell them (reply TD)"


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("3", Confidence.CERTAIN),
        ("非常满意", Confidence.CERTAIN),
        ("不满意是不可能的", Confidence.LIKELY),
        ("满衣", Confidence.LIKELY),
        ("踢皮球", Confidence.LIKELY),  # phrases only
        ("满意，但是出警有点慢", Confidence.LIKELY),
        ("真是太满意了，人影都没见到", Confidence.UNCLEAR),  # caution chose
        ("1 3", Confidence.UNCLEAR),
        ("TD", Confidence.CERTAIN),  # plainly no rating
        ("asd3kdj", Confidence.UNCLEAR),
    ],
)
def test_every_reading_says_how_sure_it_is(text: str, confidence: Confidence) -> None:
    assert understand(text).confidence is confidence


def test_cues_name_the_evidence() -> None:
    assert understand("3").cues == ("digit",)
    assert "sarcasm" in understand("满意个屁").cues
    assert "homophone" in understand("满衣").cues
    assert "other_party" in understand("对方太不讲理，交警很公道").cues
    assert "complaint_beside_praise" in understand("真是太满意了，人影都没见到").cues
    assert "self_correction" in understand("2，哦不，3").cues
    assert "summary" in understand("出警慢了点，总的来说还行").cues


def test_cues_and_confidence_are_on_every_reading() -> None:
    rng = random.Random(11)
    pieces = ["满意", "不", "但是", "3", "1", "没人管", "谢谢", "吗", "？", "对方", "TD", "满衣"]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        reading = understand(text)
        assert isinstance(reading.confidence, Confidence)
        assert set(reading.cues) <= KNOWN_CUES, reading.cues
        assert reading.to_json()["confidence"] == reading.confidence.value


def test_a_later_reply_that_corrects_the_verdict_is_a_correction() -> None:
    reading = understand("更正一下，给3")
    assert (reading.rating, reading.correction) == (U, True)
    assert "correction" in reading.cues
    assert "'更正': corrects an earlier reply" in reading.explanation
    # A slip corrected inside one reply is not a correction of an earlier one.
    assert understand("2，哦不，3").correction is False
    assert understand("刚才按错了，应该是1").correction is True


def test_a_correction_with_no_new_answer_asks_again() -> None:
    reading = understand("按错了")
    assert (reading.rating, reading.correction, reading.clarify) == (X, True, True)
    assert reading.hint is not None and "ask again" in reading.hint


@pytest.mark.parametrize(
    ("text", "clarify"),
    [
        ("好好好", False),  # read
        ("TD", False),  # an opt-out
        ("好的", False),  # an acknowledgement
        ("收到", False),
        ("今天天气不错吗？", True),  # unknown
        ("人找到了没有？", True),
        ("一还是二呢", True),
        ("真是太满意了，人影都没见到", True),  # unclear, even though unsatisfied
        ("3", False),
    ],
)
def test_clarify_is_for_unknown_or_unclear_readings_only(text: str, clarify: bool) -> None:
    reading = understand(text)
    assert reading.clarify is clarify
    assert reading.to_json()["clarify"] is clarify


def test_acknowledgement_is_its_own_flag() -> None:
    assert understand("好的").acknowledgement is True
    assert understand("好").acknowledgement is False


@pytest.mark.parametrize("text", ["8394720156", "839472", "asd3kdj", "x2y9", "1a2b3c", "#3#3#2#"])
def test_a_digit_in_digits_or_garbage_is_not_a_rating(text: str) -> None:
    assert understand(text).rating is X


@pytest.mark.parametrize(
    "codec", ["latin-1", "cp1252", "utf-8-replace", "utf-16-be"], ids=lambda c: c
)
@pytest.mark.parametrize("reply", ["3不满意", "满意", "不满意，出警太慢", "非常满意，谢谢"])
def test_gbk_bytes_read_with_the_wrong_codec_are_unknown_with_an_encoding_hint(
    codec: str, reply: str
) -> None:
    raw = reply.encode("gbk")
    if codec == "utf-16-be" and len(raw) % 2:
        raw += b" "
    if codec == "utf-8-replace":
        text = raw.decode("utf-8", "replace")
    else:
        text = raw.decode(codec, "replace")
    reading = understand(text)
    assert reading.rating is X
    assert reading.hint is not None and reading.hint.startswith("encoding")
    assert reading.cues == ("encoding",)


def test_a_korean_or_accented_reply_is_not_an_encoding_problem() -> None:
    assert understand("mǎn yì").rating is S
    assert not (understand("안녕하세요").hint or "").startswith("encoding")


@pytest.mark.parametrize("size", [200, 5_000, 20_000])
def test_output_is_bounded_however_long_the_reply(size: int) -> None:
    rng = random.Random(size)
    words = ["满意", "不满意", "太慢", "谢谢民警", "推诿", "但是", "现在", "3", "态度很好"]
    text = "，".join(rng.choice(words) for _ in range(size // 3))
    reading = understand(text)
    assert len(reading.explanation) <= 20
    assert len(reading.cues) <= 20
    assert len(reading.praise_words) <= 10


def test_pinyin_tables_come_from_the_wheel_without_the_whole_package() -> None:
    # The readings table is pypinyin's own module, loaded from the installed wheel (no
    # network); the package itself (and its 50 MB phrase dictionary) is not imported.
    understand("满衣")
    assert "pypinyin" not in sys.modules


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        # The safety net: what the reader does not explain beside a positive word.
        ("好好好，你们说了算", U),  # a sneer
        ("好好好，都是我的问题行了吧", U),  # resigned exasperation
        ("非常满意，小偷都替我谢谢你们", U),  # thanks voiced by the culprit
        ("骗子也得感谢你们", U),
        ("小偷抓住了，谢谢你们", S),  # the culprit is what was done, not who thanks
        ("谢谢你们把骗子抓了", S),
        ("满意，认定书还没出来", U),  # a complaint word it did not explain
        # A wish that it had gone otherwise is a reservation beside the rating: basically
        # satisfied, as the labelling guide has it; a wish for a negative score is not one.
        ("满意，要是早点来就好了", B),
        ("1（如果有负分就好了）", U),
    ],
)
def test_the_safety_net_never_leaves_an_unexplained_reply_satisfied(
    text: str, rating: Rating
) -> None:
    reading = understand(text)
    assert reading.rating is rating, reading.explanation
    if rating is U:
        assert reading.confidence is Confidence.UNCLEAR


# Round 11's rules: a digit disowned after a mark, 没给 negates, the one good thing
# named, a rating given as a favour.
ROUND_ELEVEN = [
    ("3！！不是2", U, Confidence.CERTAIN),
    ("1~不是3", S, Confidence.CERTAIN),
    ("民警态度挺好，但是事没给办成", U, Confidence.LIKELY),
    # (asked again in rounds 14 and 15, when the weigher could not rule out 1 % of
    # unsatisfied; the five seeds' mean of round 16 could; round 18's two models cannot)
    ("没给我甩脸子，该说的都说清楚了", S, Confidence.UNCLEAR),
    ("唯一的好处是态度还行", U, Confidence.LIKELY),
    ("唯一让我满意的是门口的保安大叔", U, Confidence.CERTAIN),
    ("说一般都是给你们面子了", U, Confidence.LIKELY),
    # Nothing to be dissatisfied with, negated or not; Sichuanese rhetoric and 莫得.
    ("有啥不满意的，挺好", S, Confidence.CERTAIN),
    ("哪有什么不满意", S, Confidence.LIKELY),
    ("这还有啥说的 满意", S, Confidence.CERTAIN),
    ("咋个可能不满意嘛", S, Confidence.LIKELY),
    ("哪个会不满意嘛", S, Confidence.LIKELY),
    ("莫得不满意，要得", S, Confidence.LIKELY),
    ("啷个这么慢哦", U, Confidence.LIKELY),
]

# Round 12's rules (from its training batch, read with the weigher it trained).
ROUND_TWELVE = [
    # Why would I, where from: a question word before 不满意 says there is nothing to be
    # dissatisfied with; a complaint beside it keeps the reading unsatisfied (不就是… makes
    # light of the wait, it does not deny it). Tianjin 有嘛满意的 is 有什么好满意的.
    ("我干嘛要不满意", S, Confidence.UNCLEAR),  # round 18: 1 % unsatisfied, asked again
    ("哪来的不满意，好得很", S, Confidence.LIKELY),
    ("有哪样不满意的嘛，得行得很", S, Confidence.CERTAIN),
    ("咋整不满意嘛，民警同志态度好事情也办好了", S, Confidence.CERTAIN),
    ("嘎哈不满意啊，老铁们干得杠杠的", S, Confidence.UNCLEAR),
    ("有嘛满意的，介叫嘛事儿", U, Confidence.CERTAIN),
    ("有什么好不满意的呢，不就是排了四个小时队嘛", U, Confidence.UNCLEAR),
    # What follows takes 不满意 back: a condition, an echo laughed off, one hedged.
    # (asked again in round 13, where the weigher gave unsatisfied 1 %, `doubt`; not since
    # round 14's retraining)
    ("这都不满意那还要怎样", S, Confidence.LIKELY),
    ("谁不满意我跟谁急", S, Confidence.UNCLEAR),
    ("不满意都不好意思", S, Confidence.LIKELY),
    ("不满意？开玩笑，人家大过年的还在值班", S, Confidence.UNCLEAR),
    ("满意？开什么玩笑", U, Confidence.LIKELY),
    ("不满意？那倒不至于", B, Confidence.LIKELY),
    # 说不过去 is not among them: 「不给差评说不过去」 demands the bad rating.
    ("不给差评说不过去", U, Confidence.CERTAIN),
    # Digits: slips named (误操作, jk, 按成), a slip denied, spoken numerals after a slip,
    # and a choice asked then made.
    ("3 误操作 请忽略 1", S, Confidence.UNCLEAR),
    ("3 jk 1", S, Confidence.LIKELY),
    ("1 哎呀按成2了 1 1 1", S, Confidence.LIKELY),
    ("3（不是手滑）", U, Confidence.CERTAIN),
    ("三 啊打错 二", B, Confidence.UNCLEAR),
    ("一 哦是二", B, Confidence.CERTAIN),
    # 好纠结 is read by no rule: the safety net withholds the 1 (since round 14's weights);
    # round 18's, with its hidden layer, reads the 1吧 (0.91), and asks again
    ("1还是2好纠结 就1吧", S, Confidence.UNCLEAR),
    ("2还是3呢。。。3吧，确实没解决", U, Confidence.LIKELY),
    ("1 还是 2 还是 3 不知道", X, Confidence.UNCLEAR),
    ("1还是2呢", X, Confidence.UNCLEAR),
    # English verdicts.
    ("I waited 3 hours at the accident scene. Unacceptable.", U, Confidence.LIKELY),
    ("No one called me back. As usual.", U, Confidence.LIKELY),
    ("tks police", S, Confidence.LIKELY),
    ("acceptable", B, Confidence.CERTAIN),
]

# Round 10's rules, read with the weigher it trained.
ROUND_TEN = [
    # Digits: a slip between two digits, a numeral after 应该是 or 给.
    ("3 打错 2", B, Confidence.LIKELY),
    ("按错了，应该是一", S, Confidence.LIKELY),
    ("更正一下：给三", U, Confidence.LIKELY),
    # 不至于 hedges before the word as after it; a rhetorical word and a question
    # ending negate once, not twice; 没人 negates.
    ("不至于不满意，就是慢了点", B, Confidence.LIKELY),
    ("还不至于差评", B, Confidence.LIKELY),
    ("我哪里会满意？", U, Confidence.LIKELY),
    ("难道还能不满意吗", S, Confidence.LIKELY),
    ("没人不满意吧，这么负责的民警", S, Confidence.LIKELY),
    # Words of the regions, 很可以, 差远了, 甩锅, papers sent back (not money).
    ("嫩办得杠赛", S, Confidence.CERTAIN),
    ("很可以哦", S, Confidence.CERTAIN),
    ("普通啦，袂歹", B, Confidence.CERTAIN),
    ("上回来挺好的，这回差远了", U, Confidence.LIKELY),
    ("太专业了，专业甩锅", U, Confidence.UNCLEAR),
    ("扯拐哦，材料又被退回来了", U, Confidence.LIKELY),
    # 服务 is the whole service: beside it a small complaint leaves basically satisfied.
    ("周末延时服务很好，就是人太多", B, Confidence.UNCLEAR),
    # 😭 says nothing alone; 不麻烦 is not doubted beside praise.
    ("谢谢！钱回来了！！！😭😭", S, Confidence.LIKELY),
    ("不麻烦不麻烦，你们也辛苦", S, Confidence.LIKELY),
    # Pinyin and English.
    ("san，不解释", U, Confidence.CERTAIN),
    ("mei ren lai", U, Confidence.LIKELY),
    ("thank u", S, Confidence.LIKELY),
    ("zero percent satisfied", U, Confidence.CERTAIN),
    ("my bad, 1 was a typo, should be 3", U, Confidence.LIKELY),
]


@pytest.mark.parametrize(
    ("text", "rating", "confidence"),
    [
        # A later, less satisfied digit after words is the answer, unsure (an unsatisfied
        # reading is called back anyway) ...
        ("先给个2，后来越想越气，3", U, Confidence.UNCLEAR),
        ("1，毕竟我也不敢选3", U, Confidence.UNCLEAR),
        ("oops 1 I mean 3", U, Confidence.UNCLEAR),
        ("1，嗯……2吧", B, Confidence.UNCLEAR),
        # ... a later, more satisfied one needs words that change the answer ...
        ("3，嗯……2吧", X, Confidence.UNCLEAR),
        ("3，不对，1", S, Confidence.LIKELY),
        # ... and two digits named as alternatives are no answer.
        ("1和2之间吧", X, Confidence.UNCLEAR),
        ("2到3之间", X, Confidence.UNCLEAR),
        ("1 3", X, Confidence.UNCLEAR),
        # An unread character glued before the rating word may be a garbled 不: asked again
        # (the weigher may read it as unsatisfied, never satisfied: `Scan.garbled`; round
        # 18's leans to satisfied, so it is left unknown) ...
        ("丕满意", X, Confidence.UNCLEAR),
        ("北满意", X, Confidence.UNCLEAR),
        # ... one that sounds like a degree word is that word mistyped (pinyin).
        ("狠满意", S, Confidence.CERTAIN),
        ("停满意的", S, Confidence.CERTAIN),
        # Round 8.
        # "Could not be more": a negation that intensifies; 「不是一点半点」: not a little.
        ("不能再满意了", S, Confidence.CERTAIN),
        ("不能更失望了", U, Confidence.CERTAIN),
        ("不是一点半点的不满意", U, Confidence.CERTAIN),
        ("can't be happier", S, Confidence.CERTAIN),
        # 「没有什么好满意的」: nothing there to be satisfied with (the 没 is the 有's).
        ("没有什么好满意的", U, Confidence.CERTAIN),
        # Negations after the word, and before it: none at all, not even, let alone,
        # no one says, there is no way not to be.
        ("一点不满意都没有", S, Confidence.LIKELY),
        ("别说满意了，连基本满意都够不上", U, Confidence.LIKELY),
        ("没法满意", U, Confidence.LIKELY),
        ("要说不满意，那真没有", S, Confidence.LIKELY),
        ("有什么理由不满意", S, Confidence.LIKELY),
        # A reply's one digit, disowned: the words are the answer; with none, no answer.
        ("满意满意，刚才那个3别算", S, Confidence.LIKELY),
        ("3作废", X, Confidence.UNCLEAR),
        ("3，不是给你们的，是给撞我那个人的", X, Confidence.UNCLEAR),
        # 「是3不是2」 names the answer and the one it is not: certain (no weigher guesses).
        ("是3不是2", U, Confidence.CERTAIN),
        ("是1不是2", S, Confidence.CERTAIN),
        # Staying subscribed is no doubt beside the rating; money not returned is no opt-out.
        ("满意，不退", S, Confidence.CERTAIN),
        ("满意！不用退订", S, Confidence.CERTAIN),
        # A good word quoted after 的 is a sneer, unless it quotes an answer (回的, 说的).
        ("谢谢你们的“高效”", U, Confidence.UNCLEAR),
        # (asked again since round 18: the weigher cannot rule out 1 % of unsatisfied)
        ("刚回的“满意”", S, Confidence.UNCLEAR),
        # Asking praise of the one complaining; words of the regions.
        ("差不多得了，还来要好评", U, Confidence.CERTAIN),
        ("那民警老尿性了", S, Confidence.CERTAIN),
        ("仲可以啦", B, Confidence.CERTAIN),
        ("嗰个差佬好串", U, Confidence.CERTAIN),
        ("不好说，看后续吧", X, Confidence.UNCLEAR),
        # The rules read it as satisfied; the weigher doubts it (一塌糊涂 is mostly a mess):
        # the citizen is asked again. Trained in round 10 it doubted it enough to withhold
        # the rating (unknown); in round 11, less (satisfied, unclear); in round 12 again
        # enough to withhold it; in round 13 (three seeds' mean), less again; in round 14,
        # enough again; in round 16 (five seeds' mean), less again (0.13 of unsatisfied);
        # in round 18 (with the hidden layer, 0.28) enough again.
        ("好得一塌糊涂", X, Confidence.UNCLEAR),
        ("没以前好了", U, Confidence.CERTAIN),
        ("提前在网上预约了，到了直接办，不用排队", S, Confidence.LIKELY),
        ("不像以前那样推来推去了", S, Confidence.UNCLEAR),  # round 18: 2 % unsatisfied
        ("Absolutely satisfied", S, Confidence.CERTAIN),
        ("没有一个环节让人满意", U, Confidence.LIKELY),
        ("not exactly satisfied, the form was wrong twice", U, Confidence.LIKELY),
        ("not that bad", B, Confidence.LIKELY),
        ("不要发了行不行", X, Confidence.CERTAIN),
        ("刚才发的3不是我的意思", X, Confidence.UNCLEAR),
        # Where no police are named, a judgment with no party in its clause is about the
        # party of the clause before: no verdict on the police ...
        ("房东扣我押金不退，太坑了", X, Confidence.UNCLEAR),
        ("对方全责还死不认账，气死我了", X, Confidence.UNCLEAR),
        # ... but where they are named, it is theirs.
        ("对方不赔钱，你们也不管，气死我了", U, Confidence.LIKELY),
        # The fraudster too late, the citizen blaming themselves: nothing went wrong.
        ("很及时，骗子还没来得及转走", S, Confidence.LIKELY),
        # Round 9.
        # Sneers the safety net reads: gritted teeth, a word quoted after a degree word, a
        # praise word quoted with its degree (not a scheme answer quoted), "happy now?".
        ("好，很好，非常好（咬牙）", U, Confidence.UNCLEAR),
        ("谢谢你们这么“重视”", U, Confidence.UNCLEAR),
        ("交警处理事故“很公正”，对方是本地车牌", U, Confidence.LIKELY),
        ("回复“满意”", S, Confidence.CERTAIN),
        ("什么叫“基本满意”？", X, Confidence.UNCLEAR),
        ("给你们1，开心了吧", U, Confidence.UNCLEAR),
        # Negations: a lie, never said, does not mean it, not once, nothing to fault.
        ("说满意那是骗你们", U, Confidence.LIKELY),
        ("我从来没说过满意", U, Confidence.LIKELY),
        ("我是没投诉过，可不代表我满意", U, Confidence.LIKELY),
        ("没有一次不是推来推去的", U, Confidence.LIKELY),
        ("挑不出什么不满意的", S, Confidence.LIKELY),
        # Digits: a numeral after 不对, every digit refused, the slip names the digit.
        ("我 选 二 啊 不 对 三", U, Confidence.LIKELY),
        ("不给1，也不给2", X, Confidence.UNCLEAR),
        ("3！！刚才手滑点成1了", U, Confidence.LIKELY),
        # A rating word disowned as an answer given is not counted; 之前 alone is the past.
        ("满意满意，刚才那个不满意是我发错了", S, Confidence.LIKELY),
        ("非常满意（改一下，刚才打成非常不满意了）", S, Confidence.LIKELY),
        ("不满意（刚才打错成满意了）", U, Confidence.LIKELY),
        ("之前满意，现在不满意", U, Confidence.LIKELY),
        # A correction's 不 negates nothing after it.
        ("满意 哦不 不满意", U, Confidence.LIKELY),
        # Words: unreasonable, accepting a ruling, Henan 不中 (not the question 中不中),
        # going through the motions.
        ("扣分扣得没道理", U, Confidence.CERTAIN),
        ("认定结果可以接受", B, Confidence.CERTAIN),
        ("结果中，态度不中", U, Confidence.CERTAIN),
        ("中不中啊，到底给办不给办", X, Confidence.UNCLEAR),
        ("一般，走个流程而已", U, Confidence.UNCLEAR),
        *ROUND_TEN,
        *ROUND_ELEVEN,
        *ROUND_TWELVE,
    ],
)
def test_rounds_seven_to_twelve_digits_negations_and_words(
    text: str, rating: Rating, confidence: Confidence
) -> None:
    reading = understand(text)
    assert (reading.rating, reading.confidence) == (rating, confidence), reading.explanation


def test_english_the_rules_cannot_read_is_asked_again_not_guessed() -> None:
    # Character n-grams of unknown English are noise: the weigher read these as
    # satisfied on new text. No word read, no Chinese: unknown, and the citizen is asked.
    for text in ("need to improve a lot", "why need to wait so long one", "LTD"):
        reading = understand(text)
        assert reading.rating is X and reading.clarify, reading.explanation
    assert understand("not happy").rating is U  # English the rules know is read


def test_a_positive_reading_resting_on_no_positive_word_is_never_closing() -> None:
    # The weigher may read a reply with no positive word as (basically) satisfied, but
    # only unsure: the citizen is asked again rather than the survey closed.
    for text in (
        "报警后民警一直打电话跟我保持联系，很安心",
        "办案民警让我下载国家反诈APP，挺有用的",
    ):
        reading = understand(text)
        assert reading.rating is S and "weighed" in reading.cues, reading.explanation
        assert reading.confidence is Confidence.UNCLEAR and reading.clarify
        assert reading.explanation[-1] == "no positive word read: ask again"
    for text in ("出警很快，满意", "挺好"):
        assert understand(text).confidence is not Confidence.UNCLEAR


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [
        # An opt-out word the reply disowns, like a digit, is not an opt-out ...
        ("满意满意，刚才那个TD是手滑，不要给我退订", False),
        ("我刚才回的TD是不小心按的，满意", False),
        ("刚才回的TD撤回，我还要收消息", False),
        ("满意。之前发的退订不算，我还要看后续", False),
        # ... and one the citizen says was sent to them wrongly still is.
        ("TD，发错人了", True),
        ("退订，谢谢", True),
        # Round 11: not to this number, off the list, 退退退, 不用再来问; don't unsubscribe
        # me, I never said so, does TD cost money.
        ("别再往这发了", True),
        ("请不要再给这个号码发短信，这是我父亲的手机", True),
        ("请把我从你们的短信名单里删掉", True),
        ("烦死了，天天发，退退退", True),
        ("退个订，还有你们那个民警挺好的", True),
        ("满意满意，不用再来问我了", True),
        ("别把我退订了，我还要等你们通知结果", False),
        ("我没有说要退订哦，1", False),
        ("回TD要扣钱不", False),
    ],
)
def test_an_opt_out_taken_back_is_not_an_opt_out(text: str, opt_out: bool) -> None:
    reading = understand(text)
    assert reading.opt_out is opt_out, reading.explanation
    assert ("opt_out" in reading.cues) is opt_out


def test_a_question_aside_and_money_not_refunded_are_read_as_such() -> None:
    # A question about the case beside a rating (请问, 想问下) does not doubt the rating ...
    assert understand("满意，不过想问下驾驶证什么时候能寄到").rating is S
    # ... and 「钱退不退」 asks about money, it is no "staying subscribed".
    reading = understand("签注办好了，钱退不退")
    assert reading.rating is X and not reading.opt_out, reading.explanation
    # Not understanding what the officers said is a complaint, not a question about the
    # survey; asking which officer helped is not asking who is texting.
    reading = understand("说话太快了，我老人家听不明白也不多讲一遍")
    assert reading.rating is U, reading.explanation
    # (Its praise beside the question is the weigher's to read: trained in round 10 it
    # lifted it to satisfied, in round 11 it leaves it unknown, and the citizen is asked.)
    reading = understand("请问是哪位警官办的？办得很好，想知道名字")
    assert reading.hint != "citizen asks who is texting" and reading.rating is not U
    assert reading.rating is S or reading.clarify, reading.explanation
    assert understand("哪位？").hint == "citizen asks who is texting"
    assert understand("不明白").hint == "citizen does not understand the survey"
    assert understand("我没报警").hint == "citizen says they never called the police"
    assert understand("医院说没有报警回执不给走医保，派出所当天就给开了，感谢").rating is S
    # "STOP." first is an opt-out with the verdict after it.
    reading = understand("STOP. not satisfied")
    assert reading.opt_out and reading.rating is U, reading.explanation
