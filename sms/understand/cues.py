"""The kinds of evidence a reading rests on: the `cues` of an `Understanding`.

Each id names one kind of rule that fired, so the core system and supervisors can count
them (how many readings rest on a contrast, a typo, a guess about sarcasm) and an agent
sees at a glance why a reply was read as it was; the `explanation` says the same in
words, with the text it fired on. The ids are a contract: new ones may be added, none
is renamed.
"""

from __future__ import annotations

from typing import Final

DIGIT: Final = "digit"  # a scheme digit: 1, 回复3, 选二
RATING_WORD: Final = "rating_word"  # the survey's own words: 满意, 不满意
OPINION: Final = "opinion_word"  # 好, 不错, 一般, 垃圾
EMOJI: Final = "emoji"
COMPLAINT: Final = "complaint"  # a complaint of the taxonomy: 没人管, 推来推去, 出警慢
PRAISE: Final = "praise"  # praise or thanks: 辛苦了, 谢谢, 及时
NEGATION: Final = "negation"  # a word negated, before or after: 不满意, 满意不起来
RHETORICAL: Final = "rhetorical"  # 哪有什么不满意, 能满意吗
DEGREE: Final = "degree"  # 基本满意, 还算满意
SARCASM: Final = "sarcasm"  # 满意个屁, or praise beside a complaint it cannot mean
CONTRAST: Final = "contrast"  # 但是, 可是, 就是, 只是, 不过: the later clause weighs more
LATER: Final = "later"  # 之前…现在: what is true now decides
CONCESSION: Final = "concession"  # 虽然…: the complaint is conceded and still stands
SUMMARY: Final = "summary"  # 总之, 总的来说: the summary decides
SELF_CORRECTION: Final = "self_correction"  # 2，哦不，3: the last answer counts
CORRECTION: Final = "correction"  # 更正一下，给3: this reply corrects an earlier one
HOMOPHONE: Final = "homophone"  # 满衣 → 满意: a typo of the same sound
OTHER_PARTY: Final = "other_party"  # a complaint about someone else (对方, 骗子)
QUESTION: Final = "question"  # a question about the case: 人找到了没有？
UNDECIDED: Final = "undecided"  # 1还是2呢: no choice made
SEVERAL_DIGITS: Final = "several_digits"  # 1 3: different digits, none chosen
NOT_A_RATING: Final = "not_a_rating"  # a digit inside a number, a word or garbage
OPT_OUT: Final = "opt_out"
ACKNOWLEDGEMENT: Final = "acknowledgement"  # 好的, 收到
NON_ANSWER: Final = "non_answer"  # 打错了, 我没报过警
ENCODING: Final = "encoding"  # the text is mis-decoded bytes (GBK read as something else)
# Praise and a complaint in one reply: the asymmetric rule reads the less satisfied.
COMPLAINT_BESIDE_PRAISE: Final = "complaint_beside_praise"
MIXED: Final = "mixed"  # words of one strength that disagree: the less satisfied wins
# The safety net: a positive reading beside a word the reader could not explain (a
# negator, a question, 才, 呵呵): never left satisfied (understanding.toml, [caution]).
UNEXPLAINED: Final = "unexplained"
# The learned weigher read a reply the rules left unclear (sms.understand.learned).
WEIGHED: Final = "weighed"
