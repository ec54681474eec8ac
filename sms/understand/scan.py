"""Finding what a normalised reply says, word by word, before any decision is made.

`scan` walks the rules' words left to right (longest first) and the digits of the
reply, and records each finding as a `Signal` (a rating with its strength) or as a
side fact (a reason tag, praise, opt-out, a non-answer, a clause boundary). Each
finding carries one explanation line and a cue id (`sms.understand.cues`). Deciding the
overall rating from the signals is `sms.understand.decide`'s job.

Before the words are read, sound-alike typos of the rules' target words are corrected
(`sms.understand.homophone`: 满衣 → 满意) and the text is read again.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Final, NamedTuple

from sms.understand import caution, cues
from sms.understand.digits import read_digits, taken_back, undecided, word_taken_back
from sms.understand.findings import TIER_OPINION, TIER_PHRASE, TIER_RATING, Boundary, Scan, Signal
from sms.understand.judge import NO_ENDING, Ending, Mods, judge, scare_quoted
from sms.understand.rules import Entry, Kind, Mod, Rating, Rules
from sms.understand.text import CLAUSE_BREAKS, clause_starts, core_of

# Enum members read once: on 3.11 `Rating.X` takes EnumType.__getattr__'s slow path.
_BASICALLY_SATISFIED: Final = Rating.BASICALLY_SATISFIED
_KIND_ASPECT: Final = Kind.ASPECT
_KIND_CLEARS: Final = Kind.CLEARS
_KIND_COMPLAINT: Final = Kind.COMPLAINT
_KIND_CONCESSIVE: Final = Kind.CONCESSIVE
_KIND_CONTRAST: Final = Kind.CONTRAST
_KIND_CONTRAST_START: Final = Kind.CONTRAST_START
_KIND_CORRECTION: Final = Kind.CORRECTION
_KIND_CORRECTION_START: Final = Kind.CORRECTION_START
_KIND_EARLIER: Final = Kind.EARLIER
_KIND_EMOJI: Final = Kind.EMOJI
_KIND_LATER: Final = Kind.LATER
_KIND_NEUTRAL: Final = Kind.NEUTRAL
_KIND_NON_ANSWER: Final = Kind.NON_ANSWER
_KIND_OPINION: Final = Kind.OPINION
_KIND_OPT_OUT: Final = Kind.OPT_OUT
_KIND_POSITIVE: Final = Kind.POSITIVE
_KIND_PRAISE: Final = Kind.PRAISE
_KIND_RATING: Final = Kind.RATING
_KIND_SUMMARY: Final = Kind.SUMMARY
_MOD_CANNOT: Final = Mod.CANNOT
_MOD_NOT_QUITE: Final = Mod.NOT_QUITE
_MOD_RHETORICAL_IF_QUESTION: Final = Mod.RHETORICAL_IF_QUESTION
_MOD_SOFTENER: Final = Mod.SOFTENER
_SATISFIED: Final = Rating.SATISFIED
_UNSATISFIED: Final = Rating.UNSATISFIED
_TIERS: Final = {Kind.RATING: TIER_RATING, Kind.OPINION: TIER_OPINION, Kind.EMOJI: TIER_OPINION}

_MAX_MODIFIERS: Final = 8  # a longer negation, degree or filler chain is not one phrase
# An aspect noun governs a judgment this near (「处理得也」): not 「态度也挺好就是…我不太满意」.
_ASPECT_REACH: Final = 6
# 「3，不，2」: a clause of only 不 between two answers takes the first one back.
_BREAK: Final = "[" + "".join(re.escape(ch) for ch in sorted(CLAUSE_BREAKS)) + "]"
_LONE_NO: Final = re.compile(f"(?:^|(?<={_BREAK}))(?:哦|噢|呃)?不[不是]*(?={_BREAK}|$)")
_IS_ANSWER: Final = re.compile(f"(?<={_BREAK})(?:是|选|应该|就)(?=[0-9])")
# 「不是不满意，是非常满意」: the clause that starts 是 (or 而是) after a 不是 decides.
_BUT_IS: Final = re.compile(f"(?<={_BREAK})而?是(?!的|[0-9])")
# A complaint followed by these is a small one: 「慢了点」「时间长了一点」.
_SOFT_AFTER: Final = ("了点", "了一点", "一点", "点儿", "了些", "了一些")
# 「不满意的是对方」: the judgment names its target after it.
_TARGET_AFTER: Final = re.compile("的(?:是|就是|主要是)")
_DIGIT: Final = re.compile("[0-9]")
# Characters that start a word carrying its own negation (不予立案, 没人管, 无人理).
_NEGATORS: Final = frozenset("不没无未别")


class _Aspect(NamedTuple):
    start: int
    end: int
    clause: int
    entry: Entry


def scan(norm: str, rules: Rules) -> Scan:
    """Find every signal and side fact in a normalised reply."""
    core = core_of(norm)
    if core in rules.opt_out_whole:
        out = Scan(norm)
        out.opt_out.append(core)
        out.notes.append((0, f"whole reply {core!r} → opt-out"))
        out.cue(cues.OPT_OUT)
        return out
    if core in rules.ack_whole:
        out = Scan(norm)
        out.acknowledgement = rules.ack_hint
        out.notes.append((0, f"whole reply {core!r} is an acknowledgement"))
        out.cue(cues.ACKNOWLEDGEMENT)
        return out
    covered = rules.matcher.find(norm)
    typos = []
    # Typos matter when the answer word is garbled: with the scheme's own word (满意) only
    # a sound-alike right before it (「步满意」). Plain loops: 3.11 comprehensions are calls.
    ratings = []
    for s, e, entry in covered:
        if entry.kind is _KIND_RATING:
            ratings.append((s, e))
    homophones = rules.homophones
    if homophones is not None and not ratings:
        typos = homophones.find(norm, core, ((s, e) for s, e, _ in covered))
    elif homophones is not None:
        # The scheme's own word is there: only a sound-alike negator before it (「步满意」).
        for s, e in ratings:
            typo = homophones.negator_before(norm, s, e)
            if typo is not None:
                typos.append(typo)
    if typos:
        for typo in reversed(typos):  # from the right: earlier starts stay where they are
            end = typo.start + len(typo.typed)
            norm = norm[: typo.start] + typo.target + norm[end:]
        covered = rules.matcher.find(norm)
        core = core_of(norm)
    out = Scan(norm)
    for typo in typos:
        out.notes.append((typo.start, f"{typo.typed!r} sounds like {typo.target!r}: a typo"))
        out.cue(cues.HOMOPHONE)
    _Reader(out, rules, core, covered).read()
    return out


# The first characters of an opt-out that is a "don't" itself (别发了, 不要再发, 勿扰).
_DONT: Final = frozenset("别不勿甭莫表")


class _Reader:
    """One pass over one reply; keeps the clause layout and the aspects seen so far."""

    __slots__ = (
        "aspects",
        "conceded",
        "consumed",
        "core",
        "covered",
        "explained",
        "last_clears_end",
        "last_rating_end",
        "last_signal_end",
        "norm",
        "out",
        "parties",
        "rules",
        "starts",
    )

    def __init__(
        self, out: Scan, rules: Rules, core: str, covered: list[tuple[int, int, Entry]]
    ) -> None:
        self.out = out
        self.rules = rules
        self.norm = out.norm
        self.core = core
        self.starts = clause_starts(self.norm)
        self.aspects: list[_Aspect] = []
        self.parties: list[tuple[int, int, str]] = []  # (start, clause, party)
        self.covered = covered
        # Spans read besides the words: modifiers, endings, clauses (for `unexplained`).
        self.explained: list[tuple[int, int]] = []
        self.last_signal_end = 0
        self.last_rating_end = -2  # end of the last rating word (「满意，不对，…」)
        self.consumed = 0  # end of a negation read after a word (「是不可能的」)
        self.last_clears_end = -1  # end of the last 「不是对你们」
        # Start of a last clause opened by 虽然: its complaints are conceded (small).
        self.conceded = len(self.norm) + 1

    def read(self) -> None:
        covered = self.covered
        if len(covered) > 1:
            # Party words first: 「不满意的是对方」 names its party after the judgment.
            self.parties = [
                (start, self.clause(start), entry.party)
                for start, _, entry in covered
                if entry.party is not None
            ]
        for start, end, entry in covered:
            _HANDLERS[entry.kind](self, entry, start, end)
        norm = self.norm
        if _DIGIT.search(norm):
            read_digits(self.out, self.rules, self.core, self.covered, self.explained)
            # Digit notes came last; put every note back in text order (stable).
            self.out.notes.sort(key=_position)
        if len(self.out.signals) > 1:
            self.lone_answers()
        if "还是" in norm or "或" in norm:
            rules = self.rules
            m = rules.undecided.search(norm) or rules.undecided_words.search(norm)
            if m is not None:
                undecided(self.out, self.norm, m)
        if len(self.core) > 1 and self.rules.earlier_reply.search(self.core):
            self.out.earlier_reply = True
        if "请问" in norm or norm.rstrip().endswith(("?", "吗", "呢")):
            # 「这不是推诿吗」「能满意吗」: a rhetorical question answers, it does not ask.
            self.out.questioning = "请问" in norm or cues.RHETORICAL not in self.out.cues
        caution.find(self.out, self.rules, self.covered, self.explained, self.parties, self.starts)

    # -- helpers -----------------------------------------------------------------------

    def clause(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos) - 1

    def explain_clause(self, pos: int) -> None:
        """The whole clause around `pos` was read (as a complaint, or about someone else)."""
        clause = self.clause(pos)
        end = self.starts[clause + 1] if clause + 1 < len(self.starts) else len(self.norm)
        self.explained.append((self.starts[clause], end))

    def signal(self, pos: int, end: int, tier: int, rating: Rating, overall: bool) -> None:
        self.out.signals.append(Signal(pos, tier, rating, overall))
        self.last_signal_end = end

    def modifiers(self, pos: int) -> Mods:
        """The negation, degree and filler words right before `pos`, read backwards,
        longest first, within the clause."""
        if pos == 0 or self.norm[pos - 1] not in self.rules.modifier_last_chars:
            return Mods(pos, ())  # the common case, decided without a regex
        n = len(self.norm)
        # Not back into a word read as a signal: 不太 of 「态度不太好我不满意」 grades 好 only.
        lo = max(self.starts[self.clause(pos)], min(self.consumed, pos))
        if self.last_signal_end <= pos:
            lo = max(lo, self.last_signal_end)
        at, stop = n - pos, n - lo  # the same span in the reversed text
        match = self.rules.modifiers_reversed.match
        backwards = self.norm[::-1]
        table, kinds = self.rules.modifiers, list[Mod]()
        while at < stop and len(kinds) < _MAX_MODIFIERS:
            m = match(backwards, at, stop)
            if m is None:
                break
            kind = table[m.group()[::-1]]
            if not kinds and kind is _MOD_NOT_QUITE and self.norm[pos] in _NEGATORS:
                # 「金额不够不予立案」: 不够 ends the predicate before; the word stands alone.
                break
            kinds.append(kind)
            at = m.end()
        if len(kinds) > 1 and self.norm.count("不", n - at, pos) == pos - (n - at):
            return Mods(pos, ())  # 「不不不，不满意」: "no, no, no", not a negation of it
        return Mods(n - at, tuple(kinds))

    def ending(self, end: int) -> Ending:
        """What follows a word: sarcasm (满意个屁), a negation (满意是不可能的), a hedge
        (不满意谈不上) or a question (满意吗, 找到了没有)."""
        norm = self.norm
        if end >= len(norm) or norm[end] not in self.rules.ending_first_chars:
            return NO_ENDING  # the common case, decided without a regex
        m = self.rules.ending.match(norm, end)
        if m is None:
            return NO_ENDING
        if m.group("negated") or m.group("hedged"):
            self.consumed = m.end()
        return Ending(
            m.group("sarcasm"),
            m.group("question") is not None,
            m.group("negated"),
            m.group("hedged"),
            m.end(),
        )

    def aspects_before(self, before: int) -> list[_Aspect]:
        """The aspects that govern a judgment starting at `before`, nearest first: in the
        same clause, close by, with no other judgment in between."""
        if not self.aspects:
            return []
        clause = self.clause(before)
        return [
            a
            for a in reversed(self.aspects)
            if a.clause == clause
            and self.last_signal_end <= a.end <= before
            and before - a.end <= _ASPECT_REACH
        ]

    def party_of(self, start: int, end: int, carry: bool = False) -> str | None:
        """Who an unsatisfied finding is about: the nearest party word before it in its
        clause (「对方太不讲理」), or the one it names right after it (「不满意的是对方」); with
        `carry`, where no police are named, the clause before's (「房东扣押金不退，太坑了」)."""
        if not self.parties:
            return None
        clause = self.clause(start)
        span = self.norm[start:end]
        if any(word in span for word in self.rules.police_words):
            return "police"  # 「小偷比你们来得还勤」 is about 你们
        before = [(c, p) for pos, c, p in self.parties if pos <= start and c >= clause - 1]
        unnamed = carry and all(p != "police" for _, _, p in self.parties)
        if before and (before[-1][0] == clause or unnamed):
            return before[-1][1]
        if _TARGET_AFTER.match(self.norm, end):
            after = [party for pos, c, party in self.parties if c == clause and pos > end]
            return after[0] if after else None
        return None

    def other_party(self, start: int, end: int, span: str, *, judgment: bool = True) -> bool:
        """Drop an unsatisfied finding about someone else, saying so. A culprit's party
        takes only judgments away (「骗子太可恶」), not complaints (「嫌疑人逍遥法外」)."""
        party = self.party_of(start, end, carry=judgment)
        if party != "other" and not (party == "culprit" and judgment):
            return False
        self.out.notes.append(
            (start, f"{span!r} is about another party, not the police: not counted")
        )
        self.out.cues.append(cues.OTHER_PARTY)
        self.explain_clause(start)
        return True

    def complaint_signal(
        self,
        start: int,
        end: int,
        mild: bool,
        softened: bool,
        tier: int = TIER_PHRASE,
        reason: str | None = None,
    ) -> None:
        softened = softened or start >= self.conceded
        rating = _UNSATISFIED
        small = mild or softened
        self.explain_clause(start)
        self.out.signals.append(
            Signal(start, tier, rating, False, None, small, softened, reason=reason)
        )
        self.last_signal_end = end

    def softened(self, mods: Mods, start: int, end: int) -> bool:
        """「有点慢」「慢了点」「时间有点长」: a complaint said as a small one."""
        if _MOD_SOFTENER in mods.kinds or self.norm.startswith(_SOFT_AFTER, end):
            return True
        return self.rules.softened_inside.search(self.norm, start, end) is not None

    # -- handlers, one per kind of word --------------------------------------------------

    def judgment(self, entry: Entry, start: int, end: int) -> None:
        assert entry.rating is not None
        mods = self.modifiers(start)
        after = self.ending(end)
        outer = None if entry.kind is _KIND_RATING else mods.start  # 「什么叫“基本满意”」 names it
        if entry.rating is not _UNSATISFIED and scare_quoted(self.norm, start, end, outer):
            after = after._replace(sarcasm="“”")  # scare quotes: 「服务真是“周到”」
        span = self.norm[mods.start : end]
        gone = word_taken_back(self.norm, self.rules, mods.start, start, end, entry)
        if gone is not None:  # 「刚才那个不满意是我发错了」
            self.out.notes.append((start, f"{span!r} is taken back: not counted"))
            self.out.cues.append(cues.SELF_CORRECTION)
            self.explained.append(gone)
            return
        if after.question and after.sarcasm is None and after.negated is None:
            # 「满意？开什么玩笑」「满意吗？不满意！」: the survey's question echoed back.
            if _MOD_RHETORICAL_IF_QUESTION not in mods.kinds and not mods.negations:
                self.out.notes.append((start, f"{span!r} echoes the question: ignored"))
                echo = after.end
                while echo < len(self.norm) and self.norm[echo] == "?":
                    echo += 1  # 「满意吗？满意」: the question mark is the echo's
                self.explained.append((mods.start, echo))
                return
        rating, how = judge(entry, mods, after)
        if how:
            self.out.cues.append(how[0])
        detail = "".join([f", {h}" for h in how[1:]]) if len(how) > 1 else ""
        self.out.notes.append((start, f"{span!r} → {rating} ({entry.kind} word{detail})"))
        aspects = self.aspects_before(mods.start) if self.aspects else []
        self.explained.append((mods.start, max(end, after.end)))
        if rating is _UNSATISFIED:
            if self.other_party(start, end, span):
                return
            if self.last_clears_end == mods.start:
                self.out.notes.append(
                    (start, f"{span!r} is what the citizen says they are not: not counted")
                )
                return
        self.out.cues.append(cues.RATING_WORD if entry.kind is _KIND_RATING else cues.OPINION)
        if entry.kind is _KIND_RATING:
            self.last_rating_end = end
        tier = _TIERS[entry.kind]
        if rating is _UNSATISFIED:
            self.explain_clause(start)
            softened = mods.hedged or _MOD_SOFTENER in mods.kinds or start >= self.conceded
            signal = Signal(start, tier, rating, not aspects, None, softened, softened)
            self.out.signals.append(signal)
            self.last_signal_end = end
            self.aspect_reason(aspects, start, end)
            return
        courtesy = bool(aspects) and (
            aspects[0].entry.reason == "attitude" or bool(aspects[0].entry.party)
        )
        self.out.signals.append(
            Signal(start, tier, rating, not aspects, None, False, False, courtesy)
        )
        self.last_signal_end = end
        if rating is _SATISFIED and entry.kind is _KIND_OPINION:
            praised = next((a for a in aspects if a.entry.praise), None)
            if praised is not None:
                about = self.norm[praised.start : end]
                self.out.praise_words.append(about)
                self.out.notes.append((start, f"{about!r} → praise"))

    def aspect_reason(self, aspects: list[_Aspect], start: int, end: int) -> None:
        """「结果不满意」「态度很差」: the nearest aspect with a reason gives the reason."""
        aspect = next((a for a in aspects if a.entry.reason), None)
        if aspect is not None and aspect.entry.reason is not None:
            self.out.reasons.append(aspect.entry.reason)
            about = self.norm[aspect.start : end]
            self.out.notes.append((start, f"{about!r} → reason {aspect.entry.reason}"))

    def emoji(self, entry: Entry, start: int, end: int) -> None:
        assert entry.rating is not None
        self.out.notes.append((start, f"{self.norm[start:end]!r} → {entry.rating} (emoji)"))
        self.out.cues.append(cues.EMOJI)
        self.signal(start, end, TIER_OPINION, entry.rating, True)

    def complaint(self, entry: Entry, start: int, end: int) -> None:
        mods = self.modifiers(start)
        span = self.norm[mods.start : end]
        after = self.ending(end)
        self.explained.append((mods.start, max(end, after.end)))
        # 「这不是推诿吗」 affirms the complaint; 「也不能不管啊」 demands what was not done.
        negations = mods.negations + (after.negated is not None)
        rhetorical = bool(negations % 2) and after.question
        if rhetorical:
            self.out.cues.append(cues.RHETORICAL)  # it says it is: a verdict, as an opinion
        elif negations % 2 and _MOD_CANNOT not in mods.kinds:
            self.out.notes.append((start, f"{span!r} → satisfied (negated complaint)"))
            self.out.cues.append(cues.NEGATION)
            self.signal(start, end, TIER_PHRASE, _SATISFIED, False)
            return
        assert entry.reason is not None
        if not entry.about_police and self.other_party(start, end, span, judgment=False):
            # The reason still stands if the reply is unsatisfied: 「对方还没赔钱，你们也不催」.
            self.out.other_reasons.append(entry.reason)
            return
        self.out.reasons.append(entry.reason)
        softened = entry.small or self.softened(mods, start, end)
        small = ", a small one" if softened or entry.mild or start >= self.conceded else ""
        what = entry.reason + small + (", rhetorical question" if rhetorical else "")
        self.out.notes.append((start, f"{span!r} → unsatisfied (complaint: {what})"))
        self.out.cues.append(cues.COMPLAINT)
        tier = TIER_OPINION if rhetorical else TIER_PHRASE
        self.complaint_signal(start, end, entry.mild, softened, tier, entry.reason)

    def praise(self, entry: Entry, start: int, end: int) -> None:
        mods = self.modifiers(start)
        quoted = scare_quoted(self.norm, start, end, mods.start)  # 「真是“高效”啊」: the opposite
        what = f"{entry.kind} in scare quotes" if quoted else str(entry.kind)
        after = self.ending(end)
        self.explained.append((mods.start, max(end, after.end)))
        if after.question and not mods.negations:
            # 「人找到了没有？」「解决了吗」 asks about the case; it is not praise.
            self.out.notes.append((start, f"{self.norm[start:end]!r} asks about the case"))
            self.out.cues.append(cues.QUESTION)
            self.out.asks = "citizen asks about the case: call back"
            return
        negations = mods.negations + (after.negated is not None) + quoted
        if negations % 2 or _MOD_CANNOT in mods.kinds:
            span = self.norm[mods.start : end]
            if self.other_party(start - quoted, end, span):  # the clause before 「“」
                return
            reason = f": {entry.reason}" if entry.reason else ""
            self.out.notes.append((start, f"{span!r} → unsatisfied (negated {what}{reason})"))
            self.out.cues.append(cues.NEGATION)
            if entry.reason:
                self.out.reasons.append(entry.reason)
            softened = mods.hedged or _MOD_SOFTENER in mods.kinds
            mild = entry.reason == "slow_response"
            self.complaint_signal(start, end, mild, softened, reason=entry.reason)
            return
        if entry.kind is _KIND_PRAISE:
            self.out.praise_words.append(self.norm[start:end])
        rating = _BASICALLY_SATISFIED if mods.basic else _SATISFIED
        self.out.notes.append((start, f"{self.norm[mods.start : end]!r} → {rating} ({what})"))
        self.out.cues.append(cues.PRAISE)
        self.out.signals.append(
            Signal(start, TIER_PHRASE, rating, False, courtesy=entry.courtesy, reason=entry.reason)
        )
        self.last_signal_end = end

    def clears(self, entry: Entry, start: int, end: int) -> None:
        """「跟交警没关系」「不是你们的问题」: the police are not the ones complained of."""
        self.out.notes.append((start, f"{self.norm[start:end]!r} → satisfied (police not blamed)"))
        self.out.cues.append(cues.OTHER_PARTY)
        self.signal(start, end, TIER_PHRASE, _SATISFIED, False)
        self.last_clears_end = end

    def aspect(self, entry: Entry, start: int, end: int) -> None:
        self.aspects.append(_Aspect(start, end, self.clause(start), entry))
        if entry.party is not None:
            self.parties.append((start, self.clause(start), entry.party))

    def opt_out(self, entry: Entry, start: int, end: int) -> None:
        # A request is no question (「别发了行吗」), a "don't" no negation (「不需要，别发了」).
        word = self.norm[start:end]
        clause = self.clause(start)
        lo = self.starts[clause]
        # its clause and the next: 「不想收了，咋个退」 asks how
        hi = self.starts[clause + 2] if clause + 2 < len(self.starts) else len(self.norm)
        if word[:1] not in _DONT and self.rules.opt_out_negated.search(self.norm, lo, start):
            self.out.notes.append((start, f"{word!r} is negated: not an opt-out"))
            self.out.opt_out.clear()  # 「刚才那个TD是手滑，不要给我退订」: none of it
            self.out.cues[:] = [c for c in self.out.cues if c != cues.OPT_OUT]
            return
        if taken_back(self.norm, self.rules, start, end) is not None:  # 「刚才那个TD是手滑」
            self.out.notes.append((start, f"{word!r} is taken back: not an opt-out"))
            return
        if not entry.request and self.rules.opt_out_question.search(self.norm, lo, hi):
            self.out.notes.append((start, f"{word!r} in a question: not an opt-out"))
            self.out.asks = "citizen asks how to opt out: tell them (reply TD)"
            return
        self.out.opt_out.append(word)
        self.out.cues.append(cues.OPT_OUT)
        self.out.notes.append((start, f"{word!r} → opt-out"))

    def non_answer(self, entry: Entry, start: int, end: int) -> None:
        assert entry.hint is not None
        self.out.non_answer_hints.append(entry.hint)
        self.out.cues.append(cues.NON_ANSWER)
        self.out.notes.append((start, f"{self.norm[start:end]!r} → non-answer ({entry.hint})"))

    def marker(self, entry: Entry, start: int, end: int) -> None:
        word = self.norm[start:end]
        clause_start = self.starts[self.clause(start)]
        if entry.kind is _KIND_CONTRAST_START and start != clause_start:
            return  # 「就是不满意」: emphasis, not 「…，就是慢了点」
        if entry.kind is _KIND_CORRECTION_START:
            # 「3，不对，2」「2不对1」 but not 「处理得不对」.
            before = self.norm[clause_start:start].strip()
            if before and not before[-1].isdigit() and self.last_rating_end < start - 1:
                return
        if entry.kind in (_KIND_CORRECTION, _KIND_CORRECTION_START):
            self.consumed = end  # 「满意 哦不 不满意」: its 不 negates nothing after it
            self.out.boundaries.append(Boundary(start, True, word, cues.SELF_CORRECTION))
            return
        if entry.kind in (_KIND_EARLIER, _KIND_CONCESSIVE):
            # 「之前不满意，…」: what follows overrules it (read as the past or conceded).
            self.explain_clause(start)
            clause = self.clause(start)
            if clause + 1 >= len(self.starts):
                if entry.kind is _KIND_CONCESSIVE:
                    self.conceded = start  # 「民警尽力了，虽然钱没追回」: conceded
                return
            start = self.starts[clause + 1]
        later = entry.kind in (_KIND_LATER, _KIND_EARLIER)
        kind = cues.LATER if later else cues.CONTRAST
        if entry.kind is _KIND_SUMMARY:
            kind = cues.SUMMARY
        elif entry.kind is _KIND_CONCESSIVE:
            kind = cues.CONCESSION
        past = entry.kind is _KIND_EARLIER
        self.out.boundaries.append(Boundary(start, later, word, kind, past))

    def lone_answers(self) -> None:
        """「2，不，3」「3 不 1」: a clause of only 不 between answers corrects the first;
        so does one that starts 是 + a digit (「手滑按了1，是3」). 「不是A，是B」 contrasts."""
        signals, norm = self.out.signals, self.norm
        if "不" not in norm and not self.out.digit_votes:
            return
        for m in _LONE_NO.finditer(norm):
            start = m.start()
            if any(s.pos < start for s in signals) and any(s.pos > start for s in signals):
                word = m.group()
                self.out.boundaries.append(Boundary(start, True, word, cues.SELF_CORRECTION))
                self.explained.append((start, m.end()))
        for m in _IS_ANSWER.finditer(norm) if self.out.digit_votes else ():
            start = m.start()
            if any(s.digit is not None and s.pos < start for s in signals):
                self.out.boundaries.append(Boundary(start, True, m.group(), cues.SELF_CORRECTION))
        if self.core.startswith("不是"):
            for m in _BUT_IS.finditer(self.norm):
                self.out.boundaries.append(Boundary(m.start(), False, m.group(), cues.CONTRAST))
        self.out.boundaries.sort()


def _position(note: tuple[int, str]) -> int:
    return note[0]


# One handler per kind of word; a table rather than a chain of ifs keeps `read` flat.
_HANDLERS: Final[dict[Kind, Callable[[_Reader, Entry, int, int], None]]] = {
    _KIND_RATING: _Reader.judgment,
    _KIND_OPINION: _Reader.judgment,
    _KIND_EMOJI: _Reader.emoji,
    _KIND_COMPLAINT: _Reader.complaint,
    _KIND_PRAISE: _Reader.praise,
    _KIND_POSITIVE: _Reader.praise,
    _KIND_CLEARS: _Reader.clears,
    _KIND_ASPECT: _Reader.aspect,
    _KIND_OPT_OUT: _Reader.opt_out,
    _KIND_NON_ANSWER: _Reader.non_answer,
    _KIND_CONTRAST: _Reader.marker,
    _KIND_CONTRAST_START: _Reader.marker,
    _KIND_LATER: _Reader.marker,
    _KIND_EARLIER: _Reader.marker,
    _KIND_CONCESSIVE: _Reader.marker,
    _KIND_SUMMARY: _Reader.marker,
    _KIND_CORRECTION: _Reader.marker,
    _KIND_CORRECTION_START: _Reader.marker,
    _KIND_NEUTRAL: lambda *_: None,  # neutral words (满意度, 你好) only hide what they contain
}
