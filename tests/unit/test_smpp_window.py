"""The submit window of one bind: slots, answers, retries, reconnects, timeouts, rate.

Pure: no loop, no socket; the time is an argument.
"""

from __future__ import annotations

import pytest

from sms.smpp.constants import CommandStatus
from sms.smpp.window import (
    BUILD_FAILED,
    DEFAULT_POLICY,
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
def test_a_throttling_answer_halves_the_rate_pauses_and_retries_after_the_pause(
    status: int,
) -> None:
    w = window(tps=100.0)
    p = part()
    sent(w, p, 1)
    d = answer(w, 1, status, None)
    assert d.verdict is Verdict.RETRY and d.throttled and not d.resent
    assert d.delay_s == DEFAULT_POLICY.throttle_pause_s == 1.0
    assert p.state is PartState.WAITING and w.outstanding == 0
    assert w.rate.tps == 50.0 and w.rate.pause_left(T0) == 1.0
    assert w.rate.pause_left(T0 + 1.0) == 0.0


def test_a_throttled_then_accepted_part_counts_every_wire_send() -> None:
    w = window()
    p = part()
    sent(w, p, 1)
    answer(w, 1, CommandStatus.ESME_RTHROTTLED, None)
    sent(w, p, 2)
    answer(w, 2, ROK)
    assert (p.tries, p.wire_sends) == (2, 2)


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
    q = part(2)
    sent(w, q, 3)
    assert answer(w, 3, CommandStatus.ESME_RTHROTTLED, None).delay_s == 0.25
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
    assert w.resent == 1
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
    assert w.resent == 1 and w.outstanding == 2
    assert w.answer(1, ROK, "late", T0) is None
    assert [d.part for d in w.expire(T0 + 16)] == [fresh]


# --- the send rate ----------------------------------------------------------------------


def test_the_rate_halves_on_each_throttle_down_to_one_per_second() -> None:
    rate = SendRate(8.0, T0)
    seen = []
    for _ in range(5):
        rate.throttled(T0)
        seen.append(rate.tps)
    assert seen == [4.0, 2.0, 1.0, 1.0, 1.0]


def test_the_rate_recovers_towards_the_configured_tps_and_no_further() -> None:
    rate = SendRate(500.0, T0)
    rate.throttled(T0)
    assert rate.tps == 250.0
    rate.accepted()
    assert rate.tps == 255.0  # 1% of the configured rate per accepted submit
    for _ in range(60):
        rate.accepted()
    assert rate.tps == 500.0


def test_a_slow_rate_recovers_by_at_least_one_per_accept() -> None:
    rate = SendRate(20.0, T0)
    rate.throttled(T0)
    rate.accepted()
    assert rate.tps == 11.0


def test_the_token_bucket_allows_a_small_burst_then_spaces_sends() -> None:
    rate = SendRate(100.0, T0)
    assert rate.take(T0) == 0.0  # the first token is there at once
    later = T0 + 1.0  # idle for a second: the bucket holds a tenth of a second, plus one
    assert [rate.take(later) for _ in range(11)] == [0.0] * 11
    assert rate.take(later) == pytest.approx(0.01)
    assert rate.take(later + 0.01) == pytest.approx(0.01)  # that token was already spent


def test_a_throttle_pause_holds_back_sends() -> None:
    rate = SendRate(100.0, T0)
    rate.throttled(T0 + 2)
    assert rate.pause_left(T0 + 2.5) == 0.5 and rate.pause_left(T0 + 4) == 0.0
