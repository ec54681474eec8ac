"""Checking and compiling the reply-understanding rules file.

`load_rules` turns ``sms/understand/understanding.toml`` (or an ops copy) into `Rules` once:
every key is checked — an unknown key is a typo, a word listed twice is ambiguous, a
regex must compile and must not match empty text — so a bad file fails at load time
with a message naming the key, never in the middle of reading a reply. The spelling
tables (traditional, pinyin, English, numerals, homophones) are `sms.understand.rules.table`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from sms.understand.learned import WEIGHTS_PATH, Weigher, default_model, load_model
from sms.understand.learned.hidden import HIDDEN_PATH, default_hidden, load_hidden
from sms.understand.match import build_matcher, first_characters, trie_regex
from sms.understand.rules import DEFAULT_RULES_PATH, HAN, Caution, Entry, Kind, Mod, Rating, Rules
from sms.understand.rules.table import (
    Table,
    load_fold,
    load_homophones,
    load_numerals,
    load_romanised,
)

SUPPORTED_VERSION: Final = 1
# Particles and punctuation that may come between a word and its sarcasm or question
# ending: 「满意了吗」「满意，呵呵」.
_BETWEEN_ENDING: Final = "了的啊呀哦啦吧,.!。~ "
# Between a word and a negation after it only particles and a question mark may come:
# 「满意是不可能的」「不满意？没有的事」, but not 「满意，没关系」; and 「两个字跟你们」
# (「满意两个字跟你们无缘」).
_BETWEEN_NEGATED: Final = "了的啊呀?"
_NEGATED_FILLER: Final = "(?:两个字)?(?:跟|和|与)?(?:你们|我)?"
_SECTIONS: Final = (
    "version", "scheme", "numerals", "digits", "reasons", "aspects", "words", "emoji",
    "praise", "positive", "clears", "opt_out", "non_answers", "acknowledgements", "markers",
    "corrections", "neutral", "modifiers", "pinyin", "english", "traditional", "variants",
    "homophones", "caution", "weigher",
)  # fmt: skip
_MARKERS: Final = (
    Kind.CONTRAST,
    Kind.CONTRAST_START,
    Kind.LATER,
    Kind.EARLIER,
    Kind.CONCESSIVE,
    Kind.SUMMARY,
)


class _Builder:
    """Collects words and patterns from every section, refusing a word listed twice."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.words: dict[str, Entry] = {}
        self.patterns: list[tuple[str, Entry]] = []

    def add_words(self, table: Table, key: str, entry: Entry, *, required: bool = True) -> None:
        for word in table.strings(key, required=required):
            other = self.words.get(word)
            if other is not None:
                raise table.fail(key, f"{word!r} is also listed in {other.key}")
            self.words[word] = entry

    def add_patterns(self, table: Table, key: str, entry: Entry) -> None:
        for i, pattern in enumerate(table.strings(key, required=False, lower=False)):
            where = f"{key}[{i}]"
            if "(?P<" in pattern:
                raise table.fail(where, "named groups are not allowed in patterns")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise table.fail(where, f"bad regex: {exc}") from None
            if compiled.fullmatch(""):
                raise table.fail(where, "pattern matches empty text")
            self.patterns.append((pattern, entry))


def _load_reasons(root: Table, b: _Builder) -> dict[str, str]:
    reasons = root.table("reasons")
    labels: dict[str, str] = {}
    for reason_id in reasons.data:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", reason_id):
            raise reasons.fail(reason_id, "reason ids are lower-case ASCII (a-z, 0-9, _)")
        t = reasons.table(reason_id)
        t.only(
            "label", "mild", "about_police", "phrases", "patterns", "mild_phrases", "mild_patterns"
        )
        labels[reason_id] = t.string("label")
        police = t.flag("about_police")
        entry = Entry(
            Kind.COMPLAINT,
            t.where,
            Rating.UNSATISFIED,
            reason=reason_id,
            mild=t.flag("mild"),
            about_police=police,
        )
        b.add_words(t, "phrases", entry, required=False)
        b.add_patterns(t, "patterns", entry)
        # A small complaint of a reason that is not small as a whole: 「希望…加强巡逻」.
        small = Entry(
            Kind.COMPLAINT,
            t.where,
            Rating.UNSATISFIED,
            reason=reason_id,
            mild=True,
            about_police=police,
            small=True,
        )
        b.add_words(t, "mild_phrases", small, required=False)
        b.add_patterns(t, "mild_patterns", small)
    if not labels:
        raise root.fail("reasons", "at least one reason is needed")
    return labels


def _reason(t: Table, key: str, labels: Mapping[str, str]) -> str | None:
    if key not in t.data:
        return None
    value = t.string(key)
    if value not in labels:
        raise t.fail(key, f"{value!r} is not a reason id from [reasons]")
    return value


def _load_aspects(root: Table, b: _Builder, labels: Mapping[str, str]) -> None:
    for t in root.tables("aspects"):
        t.only("reason", "praise", "party", "words")
        party = t.data.get("party")
        if party not in (None, "police", "other", "culprit"):
            raise t.fail("party", "must be 'police', 'other' or 'culprit'")
        entry = Entry(
            Kind.ASPECT,
            t.where,
            None,
            _reason(t, "reason", labels),
            praise=t.flag("praise"),
            party=str(party) if party is not None else None,
        )
        b.add_words(t, "words", entry)


def _load_judgments(root: Table, b: _Builder, labels: Mapping[str, str]) -> None:
    for t in root.tables("words"):
        t.only("level", "rating", "negated", "words", "patterns")
        level = t.string("level")
        if level not in ("rating", "opinion"):
            raise t.fail("level", "must be 'rating' or 'opinion'")
        kind = Kind.RATING if level == "rating" else Kind.OPINION
        entry = Entry(
            kind, t.where, t.rating("rating"), negated=t.rating("negated", required=False)
        )
        b.add_words(t, "words", entry, required=False)
        b.add_patterns(t, "patterns", entry)
    emoji = root.table("emoji")
    emoji.only(*(r.value for r in Rating if r is not Rating.UNKNOWN))
    for rating_key in emoji.data:
        b.add_words(
            emoji, rating_key, Entry(Kind.EMOJI, emoji.path(rating_key), Rating(rating_key))
        )
    for section, kind in (("praise", Kind.PRAISE), ("positive", Kind.POSITIVE)):
        for t in root.tables(section):
            t.only("negated_reason", "courtesy", "words", "patterns")
            entry = Entry(
                kind,
                t.where,
                Rating.SATISFIED,
                _reason(t, "negated_reason", labels),
                courtesy=t.flag("courtesy"),
            )
            b.add_words(t, "words", entry, required=False)
            b.add_patterns(t, "patterns", entry)
    clears = root.optional_table("clears")
    clears.only("words", "patterns")
    entry = Entry(Kind.CLEARS, clears.where, Rating.SATISFIED)
    b.add_words(clears, "words", entry, required=False)
    b.add_patterns(clears, "patterns", entry)


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _load_opt_out(
    root: Table, b: _Builder
) -> tuple[frozenset[str], re.Pattern[str], re.Pattern[str]]:
    opt_out = root.table("opt_out")
    opt_out.only(
        "words", "patterns", "requests", "request_patterns", "whole_reply", "negated_by",
        "question_words",
    )  # fmt: skip
    b.add_words(opt_out, "words", Entry(Kind.OPT_OUT, opt_out.path("words")))
    b.add_patterns(opt_out, "patterns", Entry(Kind.OPT_OUT, opt_out.path("patterns")))
    request = Entry(Kind.OPT_OUT, opt_out.path("requests"), request=True)
    b.add_words(opt_out, "requests", request, required=False)
    request = Entry(Kind.OPT_OUT, opt_out.path("request_patterns"), request=True)
    b.add_patterns(opt_out, "request_patterns", request)
    negators = opt_out.strings("negated_by", required=False) or ("不",)
    questions = opt_out.strings("question_words", required=False) or ("?",)
    return (
        frozenset(opt_out.strings("whole_reply", required=False)),
        # The negation ends right before the opt-out word, give or take 给我/再.
        re.compile(f"(?:{_alternation(negators)})(?:给我|帮我|再|要)?$"),
        re.compile(_alternation(questions)),
    )


def _load_answers(
    root: Table, b: _Builder
) -> tuple[
    frozenset[str], str, re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str],
    re.Pattern[str],
]:  # fmt: skip
    for t in root.tables("non_answers"):
        t.only("hint", "words", "patterns")
        entry = Entry(Kind.NON_ANSWER, t.where, hint=t.string("hint"))
        b.add_words(t, "words", entry, required=False)
        b.add_patterns(t, "patterns", entry)
    ack = root.table("acknowledgements")
    ack.only("hint", "whole_reply")
    markers = root.table("markers")
    markers.only(*(k.value for k in _MARKERS))
    for kind in _MARKERS:
        b.add_words(markers, kind.value, Entry(kind, markers.path(kind.value)), required=False)
    corrections = root.optional_table("corrections")
    corrections.only(
        "anywhere", "clause_start", "earlier_reply", "between_digits", "taken_back_before",
        "taken_back_after", "alternatives_between_digits",
    )  # fmt: skip
    for key, kind in (("anywhere", Kind.CORRECTION), ("clause_start", Kind.CORRECTION_START)):
        b.add_words(corrections, key, Entry(kind, corrections.path(key)), required=False)
    earlier = corrections.strings("earlier_reply", required=False)
    between = corrections.strings("between_digits", required=False)
    alternatives = corrections.strings("alternatives_between_digits", required=False)
    neutral = root.table("neutral")
    neutral.only("words")
    b.add_words(neutral, "words", Entry(Kind.NEUTRAL, neutral.path("words")))
    return (
        frozenset(ack.strings("whole_reply")),
        ack.string("hint"),
        re.compile(_alternation(earlier) if earlier else "(?!)"),
        re.compile(_alternation(between) if between else "(?!)"),
        # Anchored where the digit is: the text before it ends with one, after it starts.
        _patterns(corrections, "taken_back_before", "(?:{})$"),
        _patterns(corrections, "taken_back_after", "(?:{})"),
        re.compile(_alternation(alternatives) if alternatives else "(?!)"),
    )


def _patterns(t: Table, key: str, frame: str) -> re.Pattern[str]:
    """A list of regexes as one alternation set in ``frame`` (never matches if absent)."""
    patterns = _regexes(t, key)
    if not patterns:
        return re.compile("(?!)")
    return re.compile(frame.format("|".join(f"(?:{p})" for p in patterns)))


def _regexes(t: Table, key: str) -> tuple[str, ...]:
    """The regexes listed under ``key`` (optional), each checked to compile, with no named
    group and not matching empty text: they are joined into bigger alternations."""
    patterns = t.strings(key, required=False, lower=False)
    for i, pattern in enumerate(patterns):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise t.fail(f"{key}[{i}]", f"bad regex: {exc}") from None
        if compiled.groupindex or compiled.fullmatch(""):
            refused = "named groups and patterns that match empty text are refused"
            raise t.fail(f"{key}[{i}]", refused)
    return patterns


def _load_modifiers(root: Table) -> tuple[dict[str, Mod], re.Pattern[str], frozenset[str]]:
    """The modifiers before a word, and the regex for what may follow a word."""
    t = root.table("modifiers")
    endings = ("question_endings", "final_question_endings", "sarcasm_endings")
    after = ("negation_after", "hedged_after")
    t.only(*(m.value for m in Mod), *endings, *after)
    optional = (Mod.BASIC_ADJACENT, Mod.SOFTENER, Mod.CANNOT, Mod.EMPHATIC, Mod.NOT_QUITE)
    modifiers: dict[str, Mod] = {}
    for mod in Mod:
        for word in t.strings(mod.value, required=mod not in optional):
            if word in modifiers:
                raise t.fail(mod.value, f"{word!r} is also a {modifiers[word].value} word")
            modifiers[word] = mod
    sarcasm = t.strings("sarcasm_endings")
    question = t.strings("question_endings")
    final = t.strings("final_question_endings", required=False)
    negated = t.strings("negation_after", required=False)
    hedged = t.strings("hedged_after", required=False)
    between, between_negated = "[" + re.escape(_BETWEEN_ENDING) + "]*", f"[{_BETWEEN_NEGATED}]*"
    # 「找到了没有」 asks only when 没有 ends the clause (「找到了没有人管」 does not).
    final_re = f"(?:{trie_regex(final)})(?=$|[^{HAN}]|[啊呀呢])" if final else "(?!)"
    negated_re = trie_regex(negated) if negated else "(?!)"
    hedged_re = trie_regex(hedged) if hedged else "(?!)"
    branches = [
        f"{between}(?P<sarcasm>{trie_regex(sarcasm)})",
        f"{between_negated}{_NEGATED_FILLER}(?P<negated>{negated_re})",
        f"{between_negated}(?P<hedged>{hedged_re})",
        f"{between}(?P<question>{trie_regex(question)}|{final_re})",
    ]
    first = frozenset(_BETWEEN_ENDING + _BETWEEN_NEGATED + "两跟和与你我").union(
        w[0] for w in sarcasm + question + final + negated + hedged
    )
    return modifiers, re.compile("|".join(branches)), first


def _softened_inside(modifiers: Mapping[str, Mod]) -> re.Pattern[str]:
    softeners = tuple(w for w, mod in modifiers.items() if mod is Mod.SOFTENER)
    return re.compile(f"(?:{_alternation(softeners)})(?![没不都也])" if softeners else "(?!)")


def _undecided_words(words: Mapping[str, Entry]) -> re.Pattern[str]:
    """「满意还是不满意」「基本满意或者不满意」: two of the scheme's own words as a choice."""
    rating = [w for w, e in words.items() if e.kind is Kind.RATING and len(w) <= 3]
    word = f"(?:基本)?(?:{_alternation(tuple(rating))})" if rating else "(?!)"
    return re.compile(f"({word})(?:还是|或者|或是|或)({word})")


def _guard(chars: set[str] | None) -> str:
    """A lookahead of the characters a group's matches start with: at a position none
    of them stands, the engine skips the group in one step rather than trying each of
    its hundreds of branches (a named group defeats its own first-character check). The
    same matches; the safety net's regex reads a long reply in a fraction of the time."""
    if not chars:
        return ""
    return "(?=[" + "".join(re.escape(ch) for ch in sorted(chars)) + "])"


def _load_caution(root: Table) -> Caution | None:
    """The safety net's words as one regex: groups innocent, complaint, sneer, doubt,
    police (in that order at one position; see `Rules.caution`)."""
    if "caution" not in root.data:
        return None
    t = root.table("caution")
    t.only(
        "complaint", "sneer", "sneer_patterns", "doubt", "doubt_patterns", "innocent",
        "innocent_patterns", "narration", "police_come_in", "fillers", "unread_chars",
    )  # fmt: skip
    names = ("innocent", "complaint", "sneer", "doubt", "narration", "police_come_in")
    lists = {key: t.strings(key, required=key in names[1:4]) for key in names}
    seen: dict[str, str] = {}
    for key, words in lists.items():
        for word in words:
            if word in seen:
                raise t.fail(key, f"{word!r} is also listed in {t.path(seen[word])}")
            seen[word] = key
    alternatives = {key: [trie_regex(words)] if words else [] for key, words in lists.items()}
    # The characters each list's matches can start with (None: unknown).
    starts: dict[str, set[str] | None] = {k: {w[0] for w in words} for k, words in lists.items()}
    for key in ("innocent", "sneer", "doubt"):
        for pattern in _regexes(t, f"{key}_patterns"):
            alternatives[key].insert(0, pattern)
            known, first = starts[key], first_characters(pattern)
            starts[key] = None if known is None or first is None else known | first
    branches = [
        f"{_guard(starts[key])}(?P<{key}>{'|'.join(alternatives[key]) or '(?!)'})"
        for key in names[:-1]
    ]
    police = lists["police_come_in"]
    branches.append(f"{_guard(starts['police_come_in'])}(?P<police>{trie_regex(police)})")
    fillers = t.data.get("fillers", "")
    if not isinstance(fillers, str):
        raise t.fail("fillers", "must be a string of characters")
    unread = t.data.get("unread_chars", 0)
    if not isinstance(unread, int) or isinstance(unread, bool) or unread < 0:
        raise t.fail("unread_chars", "must be a whole number, 0 or more (0: off)")
    pattern = "|".join(branches)
    firsts = first_characters(pattern)
    trigger = None
    if firsts:
        trigger = re.compile("[" + "".join(re.escape(ch) for ch in sorted(firsts)) + "]")
    return Caution(re.compile(pattern), frozenset(fillers), unread, trigger)


def parse_rules(data: Mapping[str, object], source: str, *, weigher: bool = True) -> Rules:
    """Check and compile rules already read from TOML; `source` names them in errors.
    `weigher` False reads by the rules alone (the trainer: the weights are its output)."""
    root = Table(dict(data), "", source)
    root.only(*_SECTIONS)
    if root.data.get("version") != SUPPORTED_VERSION:
        raise root.fail("version", f"must be {SUPPORTED_VERSION}")
    scheme_table = root.table("scheme")
    scheme: dict[str, Rating] = {}
    for digit in scheme_table.data:
        if not re.fullmatch("[0-9]", digit):
            raise scheme_table.fail(digit, "scheme keys are single digits")
        rating = scheme_table.rating(digit)
        assert rating is not None
        scheme[digit] = rating
    if not scheme:
        raise root.fail("scheme", "at least one digit is needed")
    digit_rules = root.table("digits")
    digit_rules.only("units_after", "units_before", "phone_min_length")
    b = _Builder(source)
    labels = _load_reasons(root, b)
    _load_aspects(root, b, labels)
    _load_judgments(root, b, labels)
    opt_out_whole, opt_out_negated, opt_out_question = _load_opt_out(root, b)
    ack_whole, ack_hint, earlier_reply, digit_change, taken_before, taken_after, alternatives = (
        _load_answers(root, b)
    )
    modifiers, ending, ending_first = _load_modifiers(root)
    romanised = load_romanised(root)
    numeral_digits, numeral_lone, numeral_chosen, numeral_choice = load_numerals(root)
    scheme_digits = "".join(sorted(scheme))
    fold = load_fold(root)
    return Rules(
        source=source,
        scheme=scheme,
        reason_labels=labels,
        reason_order={reason: i for i, reason in enumerate(labels)},
        matcher=build_matcher(b.words, b.patterns),
        modifiers=modifiers,
        modifiers_reversed=re.compile(trie_regex(word[::-1] for word in modifiers)),
        modifier_last_chars=frozenset(word[-1] for word in modifiers),
        softened_inside=_softened_inside(modifiers),
        police_words=tuple(w for w, e in b.words.items() if e.party == "police"),
        ending=ending,
        ending_first_chars=ending_first,
        units_after=digit_rules.strings("units_after"),
        units_before=digit_rules.strings("units_before"),
        phone_min_length=digit_rules.integer("phone_min_length"),
        fold=fold,
        fold_chars=re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(fold)) + "]")
        if fold
        else re.compile("(?!)"),
        pinyin=romanised,
        pinyin_max=max(map(len, romanised), default=0),
        numeral_digits=numeral_digits,
        numeral_chars=re.compile("[" + "".join(map(re.escape, numeral_digits)) + "]"),
        numeral_lone=numeral_lone,
        numeral_chosen=numeral_chosen,
        numeral_choice=numeral_choice,
        opt_out_whole=opt_out_whole,
        opt_out_negated=opt_out_negated,
        opt_out_question=opt_out_question,
        ack_whole=ack_whole,
        ack_hint=ack_hint,
        # 「1还是2」「选2还是3」「1或2」: two scheme digits offered as a choice.
        undecided=re.compile(
            f"([{scheme_digits}])\\s*(?:还是|或者|或是|或|or)\\s*选?([{scheme_digits}])"
        ),
        undecided_words=_undecided_words(b.words),
        earlier_reply=earlier_reply,
        digit_change=digit_change,
        digit_alternatives=alternatives,
        taken_back_before=taken_before,
        taken_back_after=taken_after,
        homophones=load_homophones(root, tuple(numeral_digits)),
        caution=_load_caution(root),
        weigher=_load_weigher(root) if weigher else None,
    )


# [weigher]'s numbers (the rest of the table names its files)
WEIGHER_SETTINGS: Final = (
    "take",
    "override",
    "lift",
    "veto",
    "danger_cost",
    "sure",
    "doubt",
    "withhold",
)


def _load_weigher(root: Table) -> Weigher | None:
    """The learned weigher ([weigher]): its weight file, looked up beside the rules file
    and then in the package, and the probabilities at which its answer is taken."""
    if "weigher" not in root.data:
        return None
    t = root.table("weigher")
    t.only("weights", "hidden", *WEIGHER_SETTINGS)
    path = _beside(root, t.string("weights"))
    try:
        model = default_model() if path == WEIGHTS_PATH else load_model(path)
    except (OSError, ValueError) as exc:
        raise t.fail("weights", str(exc)) from None
    take, override, lift, veto, sure = (
        t.share(k) for k in ("take", "override", "lift", "veto", "sure")
    )
    cost = t.data.get("danger_cost")
    if not isinstance(cost, int | float) or isinstance(cost, bool) or cost < 1:
        raise t.fail("danger_cost", "must be a number of at least 1")
    weigher = Weigher(model, take, override, lift, veto, float(cost), sure)
    if "doubt" in t.data:  # optional: a rules file of round 3 asks nothing more
        weigher = dataclasses.replace(weigher, doubt=t.share("doubt"))
    if "withhold" in t.data:  # optional: before round 10 a doubted reading kept its rating
        weigher = dataclasses.replace(weigher, withhold=t.share("withhold"))
    if "hidden" in t.data:  # optional: before round 18 the linear model weighed alone
        path = _beside(root, t.string("hidden"))
        try:
            hidden = default_hidden() if path == HIDDEN_PATH else load_hidden(path)
        except (OSError, ValueError) as exc:
            raise t.fail("hidden", str(exc)) from None
        weigher = dataclasses.replace(weigher, hidden=hidden)
    return weigher


def _beside(root: Table, name: str) -> Path:
    """A file the rules name: beside the rules file, else in the package."""
    beside = Path(root.source).parent / name
    return beside if beside.exists() else DEFAULT_RULES_PATH.parent / name


def load_rules(path: str | Path | None = None, *, weigher: bool = True) -> Rules:
    """Read and check a rules file; None means the one shipped in the package.

    Raises ValueError naming the bad key when the file is malformed, OSError when it
    cannot be read.
    """
    file = DEFAULT_RULES_PATH if path is None else Path(path)
    raw = file.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{file}: not valid UTF-8 TOML: {exc}") from None
    return parse_rules(data, str(file), weigher=weigher)


@functools.cache
def default_rules() -> Rules:
    """The packaged rules, loaded once per process."""
    return load_rules(None)
