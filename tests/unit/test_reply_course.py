"""How a reply moves its survey on (sms.inbound.course): [surveys] callback_on and the
clarifying SMS (issue 11, item 4). The store's side is proven on real servers in
tests/integration/test_clarify.py."""

from __future__ import annotations

import dataclasses

from gateway.config import SurveySettings
from sms.inbound import course
from sms.understand import Confidence, Rating, understand

DEFAULT = SurveySettings()


def test_a_rating_decides_and_callback_on_says_which_ones_call_back() -> None:
    unsatisfied = course(understand("3"), DEFAULT)
    assert (unsatisfied.course, unsatisfied.callback) == ("rated", True)
    satisfied = course(understand("1"), DEFAULT)
    assert (satisfied.course, satisfied.callback) == ("rated", False)
    wide = dataclasses.replace(DEFAULT, callback_on=("unsatisfied", "basically_satisfied"))
    assert course(understand("2"), wide).callback
    assert not course(understand("2"), DEFAULT).callback
    assert course(understand("3"), DEFAULT).unclear_callback
    assert not course(understand("3"), wide).unclear_callback


def test_an_unreadable_or_unsure_positive_reply_is_asked_about_once() -> None:
    unknown = understand("在开会，晚点回")
    assert unknown.rating is Rating.UNKNOWN
    assert course(unknown, DEFAULT).course == "unclear"
    assert course(unknown, DEFAULT).clarify_window_s == DEFAULT.clarify_window_s > 0
    # Satisfied, but the reader is unsure: no rating yet, not a closed survey.
    unsure = dataclasses.replace(understand("1"), confidence=Confidence.UNCLEAR)
    assert unsure.rating is Rating.SATISFIED
    assert course(unsure, DEFAULT).course == "unclear"
    # An unsure unsatisfied reading calls back all the same.
    doubted = dataclasses.replace(understand("3"), confidence=Confidence.UNCLEAR)
    assert course(doubted, DEFAULT).course == "rated"
    # No clarifying SMS configured: nothing to wait for.
    off = dataclasses.replace(DEFAULT, clarify_template="")
    assert course(unknown, off).clarify_window_s == 0


def test_an_acknowledgement_or_an_opt_out_is_not_asked_about() -> None:
    assert course(understand("好的"), DEFAULT).course == "none"
    assert course(understand("TD"), DEFAULT).course == "none"
