"""The submit window of one bind: slots, answers, retries, reconnects, timeouts, rate.

Pure: no loop, no socket; the time is an argument.
"""

from __future__ import annotations

import pytest

from sms.smpp.constants import CommandStatus
from sms.smpp.window import (
    BUILD_FAILED,
    Decision,
    Part,
    PartState,
    RetryPolicy,
    SendRate,
    SubmitWindow,
    Verdict,
)

ROK = CommandStatus.ESME_ROK
T0 = 1000.0


def part(index: int = 1, survey: str = "S1") -> Part:
    return Part(survey, index, 3, "10690", "13800138000", b"\x00A", 0, 8, "A")


def window(size: int = 3, timeout: float = 10.0, tps: float = 100.0) -> SubmitWindow:
    return SubmitWindow(size, timeout, SendRate(tps, T0))


def sent(w: SubmitWindow, p: Part, seq: int, now: float = T0) -> None:
    assert w.sending(w.take(p), seq, now) is p


def answer(w: SubmitWindow, seq: int, status: int, message_id: str | None = "m") -> Decision:
    decision = w.answer(seq, status, message_id, T0)
    assert decision is not None
    return decision


# --- slots ----------------------------------------------------------------------------


def test_slots_are_taken_up_to_the_size_and_freed_by_a_refusal() -> None:
    w = window(size=2)
    a, b = part(1), part(2)
    sent(w, a, 1)
    assert w.has_room() and w.outstanding == 1
    sent(w, b, 2)
    assert not w.has_room() and w.outstanding == 2
    d = answer(w, 1, CommandStatus.ESME_RINVDSTADR, None)
    assert d == Decision(a, Verdict.FINAL, CommandStatus.ESME_RINVDSTADR)
    assert d.frees_slot and w.has_room() and w.outstanding == 1


def test_a_taken_part_counts_before_it_reaches_the_wire() -> None:
    w = window(size=1)
    key = w.take(part())
    assert key == "S1|1|1" and not w.has_room()


def test_an_accepted_part_holds_its_slot_until_the_caller_stored_it() -> None:
    w = window(size=1)
    p = part()
    sent(w, p, 7)
    d = answer(w, 7, ROK, "abc")
    assert d == Decision(p, Verdict.ACCEPTED, 0, "abc") and not d.frees_slot
    assert not w.has_room() and p.holds_slot_of is w
    assert w.stored(p) and w.has_room() and p.holds_slot_of is None
    assert not w.stored(p)  # twice frees nothing
    assert w.outstanding == 0


def test_storing_a_part_another_window_holds_frees_nothing_here() -> None:
    w, other = window(), window()
    p = part()
    sent(other, p, 1)
    answer(other, 1, ROK)
    assert not w.stored(p) and other.outstanding == 1


def test_an_answer_for_a_sequence_that_is_not_ours_changes_nothing() -> None:
    w = window()
    sent(w, part(), 1)
    assert w.answer(99, ROK, "m", T0) is None
    assert w.outstanding == 1


def test_a_generic_nack_ends_the_part_with_its_status() -> None:
    w = window()
    p = part()
    sent(w, p, 1)
    d = answer(w, 1, CommandStatus.ESME_RINVCMDID, None)
    assert d.verdict is Verdict.FINAL and d.status == CommandStatus.ESME_RINVCMDID
    assert w.outstanding == 0


def test_a_part_that_cannot_be_built_ends_and_frees_its_slot() -> None:
    w = window()
    p = part()
    key = w.take(p)
    assert w.build_failed(key) == Decision(p, Verdict.FINAL, BUILD_FAILED)
    assert w.outstanding == 0 and w.build_failed(key) is None


def test_sending_a_part_the_window_gave_back_is_ignored() -> None:
    w = window()
    p = part()
    key = w.take(p)
    w.connection_lost()
    assert w.sending(key, 5, T0) is None
    assert w.answer(5, ROK, "m", T0) is None and p.wire_sends == 0


# --- throttling and retries -----------------------------------------------------------


@pytest.mark.parametrize("status", [CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL])
def test_one_throttling_answer_retries_the_part_at_once_and_keeps_the_rate(
    status: int,
) -> None:
    w = window(tps=100.0)
    p = part()
    sent(w, p, 1)
    d = answer(w, 1, status, None)
    assert d.verdict is Verdict.RETRY and d.throttled and not d.resent
    assert d.delay_s == 0.0  # one refusal between accepts: no pause
    assert p.state is PartState.WAITING and w.outstanding == 0
    assert w.rate.tps == 100.0 and w.rate.pause_left(T0) == 0.0


def test_throttle_answers_in_a_row_pause_the_bind_longer_and_longer() -> None:
    w = window(size=10, tps=100.0)
    delays = []
    for seq in range(1, 8):
        now = T0 + seq  # each part sent after the previous pause began
        p = part(seq)
        sent(w, p, seq, now=now)
        d = w.answer(seq, CommandStatus.ESME_RTHROTTLED, None, now)
        assert d is not None
        delays.append(d.delay_s)
    assert delays == pytest.approx([0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0])
    # an accept ends the run: the next refusal does not pause
    sent(w, part(8), 8, now=T0 + 8)
    assert w.answer(8, ROK, "m", T0 + 8) is not None
    sent(w, part(9), 9, now=T0 + 9)
    d = w.answer(9, CommandStatus.ESME_RTHROTTLED, None, T0 + 9)
    assert d is not None and d.delay_s == 0.0


def test_parts_sent_before_a_pause_began_do_not_lengthen_it() -> None:
    # a window of parts was on the wire when the SMS center began to refuse: their
    # answers come after the pause began, and are answered by it already
    w = window(size=10, tps=100.0)
    for seq in range(1, 6):
        sent(w, part(seq), seq, now=T0)
    delays = []
    for seq in range(1, 6):
        d = w.answer(seq, CommandStatus.ESME_RTHROTTLED, None, T0 + 0.01)
        assert d is not None
        delays.append(d.delay_s)
    assert delays == pytest.approx([0.0, 0.05, 0.05, 0.05, 0.05])


def test_a_throttled_then_accepted_part_is_not_a_resend() -> None:
    # the SMS center refused it explicitly: it did not take it, so sending it again
    # duplicates nothing (only a send without an answer may)
    w = window()
    p = part()
    sent(w, p, 1)
    answer(w, 1, CommandStatus.ESME_RTHROTTLED, None)
    sent(w, p, 2)
    assert answer(w, 2, ROK).verdict is Verdict.ACCEPTED
    assert (p.tries, p.wire_sends, p.unanswered) == (2, 2, 0)
    assert w.resent == 0


def test_a_transient_refusal_then_accepted_is_not_a_resend() -> None:
    w = window()
    p = part()
    sent(w, p, 1)
    answer(w, 1, CommandStatus.ESME_RSYSERR, None)
    sent(w, p, 2)
    answer(w, 2, ROK)
    assert p.unanswered == 0


def test_transient_refusals_retry_with_growing_delays_then_end() -> None:
    w = window()
    p = part()
    delays = []
    for seq in range(1, 7):
        sent(w, p, seq)
        d = answer(w, seq, CommandStatus.ESME_RSYSERR, None)
        if d.verdict is Verdict.FINAL:
            break
        assert d.verdict is Verdict.RETRY and not d.throttled
        delays.append(d.delay_s)
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0]
    assert d == Decision(p, Verdict.FINAL, CommandStatus.ESME_RSYSERR)
    assert p.tries == 6 and p.transient_tries == 5 and w.outstanding == 0


@pytest.mark.parametrize(
    "status",
    [
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RDELIVERYFAILURE,
        CommandStatus.ESME_RUNKNOWNERR,
    ],
)
def test_transient_statuses_are_retried(status: int) -> None:
    w = window()
    sent(w, part(), 1)
    assert answer(w, 1, status, None).verdict is Verdict.RETRY


def test_a_permanent_refusal_is_final_at_once() -> None:
    w = window()
    sent(w, part(), 1)
    assert answer(w, 1, CommandStatus.ESME_RINVDSTADR, None).verdict is Verdict.FINAL


def test_the_policy_decides_the_retries() -> None:
    policy = RetryPolicy(max_transient_tries=1, throttle_pause_s=0.25)
    w = SubmitWindow(3, 10.0, SendRate(100.0, T0, policy), policy)
    p = part()
    sent(w, p, 1)
    assert answer(w, 1, CommandStatus.ESME_RSYSERR, None).verdict is Verdict.RETRY
    sent(w, p, 2)
    assert answer(w, 2, CommandStatus.ESME_RSYSERR, None).verdict is Verdict.FINAL
    q, r = part(2), part(3)
    sent(w, q, 3)
    sent(w, r, 4)
    assert answer(w, 3, CommandStatus.ESME_RTHROTTLED, None).delay_s == 0.0
    assert answer(w, 4, CommandStatus.ESME_RTHROTTLED, None).delay_s == 0.25
    assert w.rate.pause_left(T0) == 0.25


# --- reconnects and timeouts -------------------------------------------------------------


def test_a_reconnect_gives_back_taken_and_sent_parts_and_counts_the_sent_as_resent() -> None:
    w = window(size=3)
    taken, on_wire, accepted = part(1), part(2), part(3)
    w.take(taken)
    sent(w, on_wire, 2)
    sent(w, accepted, 3)
    answer(w, 3, ROK)
    decisions = w.connection_lost()
    assert {(d.part.index, d.verdict, d.resent, d.delay_s) for d in decisions} == {
        (1, Verdict.RETRY, False, 0.0),
        (2, Verdict.RETRY, True, 0.0),
    }
    assert w.resent == 1 and (taken.unanswered, on_wire.unanswered) == (0, 1)
    assert taken.state is PartState.WAITING and on_wire.state is PartState.WAITING
    # the accepted part keeps its slot: its outcome is not stored yet
    assert w.outstanding == 1 and accepted.holds_slot_of is w
    assert w.answer(2, ROK, "late", T0) is None  # the dead connection's answer
    assert w.connection_lost() == []


def test_a_part_given_back_is_taken_again_as_a_new_try() -> None:
    w = window()
    p = part()
    sent(w, p, 1)
    w.connection_lost()
    assert w.take(p) == "S1|1|2"
    assert w.sending("S1|1|2", 1, T0) is p
    assert answer(w, 1, ROK).verdict is Verdict.ACCEPTED
    assert (p.tries, p.wire_sends) == (2, 2)


def test_an_overdue_answer_sends_the_part_again_and_counts_it_as_resent() -> None:
    w = window(timeout=10.0)
    late, fresh, queued = part(1), part(2), part(3)
    sent(w, late, 1, now=T0)
    sent(w, fresh, 2, now=T0 + 5)
    w.take(queued)  # not on the wire: no answer is due
    assert w.expire(T0 + 10.0) == []  # not before the timeout has passed
    (d,) = w.expire(T0 + 10.5)
    assert d.part is late and d.verdict is Verdict.RETRY and d.resent and d.delay_s == 0.0
    assert w.resent == 1 and w.outstanding == 2 and late.unanswered == 1
    assert w.answer(1, ROK, "late", T0) is None
    assert [d.part for d in w.expire(T0 + 16)] == [fresh]


# --- the send rate ----------------------------------------------------------------------


def one_second(rate: SendRate, start: float, answers: int, throttled: int) -> None:
    """`answers` answers spread over the second from `start`, every k-th a throttle
    answer so that `throttled` of them are."""
    every = answers // throttled if throttled else 0
    for i in range(answers):
        now = start + i / answers
        if every and (i + 1) % every == 0:
            rate.throttled(now, sent_at=float("-inf"))  # no pauses in these tests
        else:
            rate.accepted(now)


def test_a_share_of_throttles_within_the_tolerance_keeps_the_configured_rate() -> None:
    # an SMS center that refuses every 5th submit whatever the rate: 20 % of answers
    rate = SendRate(200.0, T0)
    for second in range(10):
        one_second(rate, T0 + second, 200, 40)
    assert rate.tps == 200.0


def test_the_rate_falls_in_proportion_to_the_share_above_the_tolerance() -> None:
    rate = SendRate(200.0, T0)
    one_second(rate, T0, 100, 50)  # half refused: 25 points above the tolerance
    rate.accepted(T0 + 1.0)  # the first answer of the next second applies it
    assert rate.tps == pytest.approx(150.0)
    one_second(rate, T0 + 1.0, 100, 100)  # everything refused: at most halved
    rate.accepted(T0 + 2.0)
    assert rate.tps == pytest.approx(75.0)


def test_the_rate_never_falls_below_one_per_second() -> None:
    rate = SendRate(8.0, T0)
    for second in range(6):
        one_second(rate, T0 + second, 10, 10)
    rate.accepted(T0 + 6)
    assert rate.tps == 1.0


def test_the_rate_recovers_towards_the_configured_tps_and_no_further() -> None:
    rate = SendRate(500.0, T0)
    one_second(rate, T0, 100, 100)
    rate.accepted(T0 + 1)
    assert rate.tps == 250.0
    seen = []
    for second in range(1, 6):  # seconds without throttling
        one_second(rate, T0 + second, 10, 0)
        seen.append(rate.tps)
    rate.accepted(T0 + 6)
    seen.append(rate.tps)
    assert seen == [250.0, 313.5, 392.875, 492.09375, 500.0, 500.0]


def test_a_rate_at_the_floor_recovers() -> None:
    rate = SendRate(20.0, T0)
    rate.tps = 1.0
    one_second(rate, T0, 5, 0)
    rate.accepted(T0 + 1)
    assert rate.tps == 2.25


@pytest.mark.parametrize("cap", [100.0, 500.0])
def test_against_a_tps_cap_the_rate_settles_around_it(cap: float) -> None:
    # an SMS center that accepts at most `cap` submits a second of a bind configured
    # for 1000: nearly the cap is accepted, and about a quarter more is sent
    rate = SendRate(1000.0, T0)
    sent_rates = []
    for second in range(60):
        r = rate.tps
        sent_rates.append(r)
        one_second(rate, T0 + second, round(r), round(r - min(r, cap)))
    settled = sent_rates[-20:]
    accepted = sum(min(r, cap) for r in settled) / len(settled)
    sent_mean = sum(settled) / len(settled)
    assert accepted >= 0.9 * cap
    assert sent_mean <= 1.5 * cap


def test_the_token_bucket_allows_a_small_burst_then_spaces_sends() -> None:
    rate = SendRate(100.0, T0)
    assert rate.take(T0) == 0.0  # the first token is there at once
    later = T0 + 1.0  # idle for a second: the bucket holds a tenth of a second, plus one
    assert [rate.take(later) for _ in range(11)] == [0.0] * 11
    assert rate.take(later) == pytest.approx(0.01)
    assert rate.take(later + 0.01) == pytest.approx(0.01)  # that token was already spent


def test_a_throttle_pause_holds_back_sends() -> None:
    rate = SendRate(100.0, T0)
    rate.throttled(T0 + 2, sent_at=T0 + 1.9)
    assert rate.throttled(T0 + 2, sent_at=T0 + 1.95) == pytest.approx(0.05)
    assert rate.pause_left(T0 + 2.02) == pytest.approx(0.03)
    assert rate.pause_left(T0 + 4) == 0.0
