"""The submit window of one bind, as a pure object: slots, answers, retries and rate.

No event loop, no socket, no clock: a method that needs the time is given `now`
(seconds on the caller's monotonic clock). `sms.smpp.client` drives it: it hands the
parts the window took to aiosmpplib, tells the window what went out and what came
back, and carries out the window's `Decision`s (finish a part, or put it back in line
after a delay). The rules, all of them here:

* A bind has `size` slots. A part takes one when it is handed to the connection and
  gives it back with its answer, except an accepted part: that one holds its slot
  until the caller has stored the message id (`stored`), so a crash in between can
  make the SMS center get at most a window of parts twice.
* Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL): the part goes back to the head of the
  line. The bind's rate follows the share of throttle answers, second by second, in
  proportion (`RetryPolicy`, `SendRate`): a share up to the tolerance costs nothing but
  the retries (some SMS centers refuse a fixed share of submits whatever the rate:
  slowing down would not get one more accepted), a larger share lowers the rate by the
  excess, and a second within the tolerance raises it back towards the configured TPS.
  Throttle answers in a row (no accept in between) to parts sent after the last pause
  pause the bind, 50 ms doubling up to 1 s: an SMS center that refuses everything for a
  while is not hammered.
* Transient statuses: back in line after 2, 4, 8, 16, 30 s, up to 5 times; then the
  status is final, as any other refusal is at once.
* A dropped connection gives back every part it had taken. One that had gone out on
  the wire without an answer may reach the citizen twice: it counts as resent. So does
  a part whose answer does not come within the response timeout. An explicit refusal
  (a throttle or transient status) is an answer: the SMS center did not take the part,
  and sending it again duplicates nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sms.smpp.constants import REGISTERED_DELIVERY_ALWAYS, CommandStatus

#: Not an SMPP status: the submit_sm could not be built from the part (our input).
BUILD_FAILED = -1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What a refusal means for the part and for the bind's rate: the one place for
    the throttle backoff and the retry limits.

    The rate moves once per `rate_interval_s`, by the share of throttle answers among
    the answers of that interval: above `throttle_tolerance` it falls by the excess
    (at most by half), otherwise it grows by `recovery_factor` (plus one) up to the
    configured TPS. Against an SMS center that caps a bind at X submits/s, the rate
    settles where about the tolerance's share of submits is refused (~1.3 X sent, X
    accepted); against one that refuses every 5th submit whatever the rate, it stays
    at the configured TPS (4 in 5 accepted at the first try, the 5th at the next).
    """

    #: SMPP 3.4 §5.1.3: the SMS center asks us to slow down.
    throttling: frozenset[int] = frozenset(
        {CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL}
    )
    #: Worth another try: system error, temporary app error, delivery failure, unknown.
    transient: frozenset[int] = frozenset(
        {
            CommandStatus.ESME_RSYSERR,
            CommandStatus.ESME_RX_T_APPN,
            CommandStatus.ESME_RDELIVERYFAILURE,
            CommandStatus.ESME_RUNKNOWNERR,
        }
    )
    max_transient_tries: int = 5
    max_transient_delay_s: float = 30.0
    #: The first pause of a bind whose throttle answers come in a row; it doubles with
    #: each further one, up to `max_throttle_pause_s`. A single throttle answer between
    #: accepts does not pause.
    throttle_pause_s: float = 0.05
    max_throttle_pause_s: float = 1.0
    min_tps: float = 1.0
    #: How often the rate is adjusted, from the answers of the interval.
    rate_interval_s: float = 1.0
    #: The share of throttle answers an interval may have without lowering the rate.
    throttle_tolerance: float = 0.25
    #: The rate after an interval within the tolerance: times this, plus one.
    recovery_factor: float = 1.25

    def transient_delay(self, transient_tries: int) -> float:
        """Seconds before the `transient_tries`-th retry of a transient refusal."""
        return min(self.max_transient_delay_s, 2.0**transient_tries)

    def throttle_pause(self, in_a_row: int) -> float:
        """The bind's pause after the `in_a_row`-th throttle answer in a row (0 for the
        first: one refusal between accepts is no reason to stop)."""
        if in_a_row < 2:
            return 0.0
        return min(self.max_throttle_pause_s, self.throttle_pause_s * 2.0 ** (in_a_row - 2))

    def adjusted(self, tps: float, max_tps: float, throttled_share: float) -> float:
        """The rate after an interval in which `throttled_share` of the answers were
        throttle answers: down by the excess over the tolerance (at most halved), or
        up towards `max_tps`."""
        excess = throttled_share - self.throttle_tolerance
        if excess > 0:
            return max(self.min_tps, tps * max(0.5, 1.0 - excess))
        return min(max_tps, tps * self.recovery_factor + 1.0)


DEFAULT_POLICY = RetryPolicy()


class SendRate:
    """A bind's submit rate: a token bucket whose rate follows the share of throttle
    answers, interval by interval (`RetryPolicy.adjusted`), and pauses when throttle
    answers come in a row (`RetryPolicy.throttle_pause`)."""

    #: The bucket holds a tenth of a second of sends, plus one.
    BURST_S = 0.1

    def __init__(self, max_tps: float, now: float, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.max_tps = max_tps
        self.tps = max_tps
        self.policy = policy
        self.paused_until = 0.0
        self._tokens = 1.0
        self._last = now
        self._interval_start = now
        self._answers = 0
        self._throttles = 0
        self._in_a_row = 0  # throttle answers since the last accept
        self._pause_began = float("-inf")

    def throttled(self, now: float, sent_at: float) -> float:
        """The SMS center refused a submit sent at `sent_at` with a throttle status.
        Returns how long the part waits before it goes again (the bind's pause)."""
        self._count(now, throttled=True)
        # A part sent before the last pause began was answered by that pause already.
        if sent_at >= self._pause_began:
            self._in_a_row += 1
            pause = self.policy.throttle_pause(self._in_a_row)
            if pause > 0:
                self.paused_until = max(self.paused_until, now + pause)
                self._pause_began = now
        return self.pause_left(now)

    def accepted(self, now: float) -> None:
        """A submit was accepted."""
        self._in_a_row = 0
        self._count(now, throttled=False)

    def _count(self, now: float, *, throttled: bool) -> None:
        if now - self._interval_start >= self.policy.rate_interval_s and self._answers:
            share = self._throttles / self._answers
            self.tps = self.policy.adjusted(self.tps, self.max_tps, share)
            self._interval_start, self._answers, self._throttles = now, 0, 0
        self._answers += 1
        self._throttles += throttled

    def pause_left(self, now: float) -> float:
        """Seconds of the throttle pause still to wait (0 when not paused)."""
        return max(0.0, self.paused_until - now)

    def take(self, now: float) -> float:
        """Take the next send's token: seconds to wait before sending it (0: now)."""
        capacity = self.tps * self.BURST_S + 1
        self._tokens = min(capacity, self._tokens + (now - self._last) * self.tps)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        wait = (1.0 - self._tokens) / self.tps
        self._tokens = 0.0
        self._last = now + wait
        return wait


class PartState(enum.Enum):
    """Where a part is."""

    WAITING = "waiting"  # in the client's line
    TAKEN = "taken"  # handed to a bind's connection
    SENT = "sent"  # on the wire, answer pending


@dataclass(eq=False)
class Part:
    """One submit_sm to send, a segment of a survey's SMS, and its send history."""

    survey_id: str
    index: int
    total: int
    source: str
    dest: str
    short_message: bytes
    esm_class: int
    data_coding: int
    text: str = ""  # the part's characters (aiosmpplib wants one; the bytes above are sent)
    registered_delivery: int = REGISTERED_DELIVERY_ALWAYS
    state: PartState = PartState.WAITING
    tries: int = 0  # times a bind took it
    wire_sends: int = 0  # times it went out on the wire
    # Times it went out on the wire and no answer came (a dropped link, a timeout): the
    # SMS center may have it, so it may reach the citizen twice.
    unanswered: int = 0
    transient_tries: int = 0
    sent_at: float = 0.0
    seq: int = 0
    holds_slot_of: SubmitWindow | None = None  # accepted, outcome not yet stored
    # Recorded as "may reach the SMS center" (the client's before_wire): only then may
    # a bind take it.
    cleared: bool = False
    clearing: bool = False  # being cleared now
    # An earlier life of the gateway recorded it so and stored no answer (a crash): the
    # SMS center may have it already.
    out_before: bool = False

    @property
    def key(self) -> str:
        """Names this try of this part (aiosmpplib's log_id carries it)."""
        return f"{self.survey_id}|{self.index}|{self.tries}"


class Verdict(enum.Enum):
    """What became of a part the window let go of."""

    ACCEPTED = "accepted"  # final, with a message id; its slot is held until stored()
    FINAL = "final"  # refused for good (or not buildable)
    RETRY = "retry"  # back in line after `delay_s`


@dataclass(frozen=True, slots=True)
class Decision:
    """One part the window let go of, and what the driver must do with it."""

    part: Part
    verdict: Verdict
    status: int = 0
    message_id: str = ""
    delay_s: float = 0.0
    throttled: bool = False  # the SMS center asked us to slow down
    resent: bool = False  # it was on the wire unanswered: it may reach the citizen twice

    @property
    def frees_slot(self) -> bool:
        """Whether the part's window slot is free again now."""
        return self.verdict is not Verdict.ACCEPTED


class SubmitWindow:
    """The slots of one bind and the parts in them."""

    def __init__(
        self,
        size: int,
        response_timeout_s: float,
        rate: SendRate,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.size = size
        self.response_timeout_s = response_timeout_s
        self.rate = rate
        self.policy = policy
        # Parts taken and not answered, plus accepted parts whose outcome the caller
        # has not stored yet: never more than `size`.
        self.outstanding = 0
        self.resent = 0
        self._taken: dict[str, Part] = {}  # by key: handed to the connection
        self._sent: dict[int, Part] = {}  # by sequence number: on the wire

    def has_room(self) -> bool:
        """Whether a slot is free."""
        return self.outstanding < self.size

    def take(self, part: Part) -> str:
        """Put `part` in a slot (the caller checked has_room); returns its key."""
        part.state = PartState.TAKEN
        part.tries += 1
        self.outstanding += 1
        key = part.key
        self._taken[key] = part
        return key

    def sending(self, key: str, seq: int, now: float) -> Part | None:
        """The part `key` goes out on the wire as `seq`; None if it is no longer ours."""
        part = self._taken.get(key)
        if part is None:
            return None
        part.state = PartState.SENT
        part.wire_sends += 1
        part.seq = seq
        part.sent_at = now
        self._sent[seq] = part
        return part

    def answer(self, seq: int, status: int, message_id: str | None, now: float) -> Decision | None:
        """The answer to `seq`: a submit_sm_resp (`message_id` set) or a generic_nack
        (`message_id` None). None when `seq` is not ours (a dead connection's)."""
        part = self._sent.get(seq)
        if part is None:
            return None
        if status == CommandStatus.ESME_ROK and message_id is not None:
            self._forget(part)  # the slot stays taken until stored()
            part.holds_slot_of = self
            self.rate.accepted(now)
            return Decision(part, Verdict.ACCEPTED, status, message_id)
        self._release(part)
        policy = self.policy
        if status in policy.throttling:
            delay = self.rate.throttled(now, part.sent_at)
            return self._again(part, status, delay, throttled=True)
        if status in policy.transient and part.transient_tries < policy.max_transient_tries:
            part.transient_tries += 1
            return self._again(part, status, policy.transient_delay(part.transient_tries))
        return Decision(part, Verdict.FINAL, status)

    def build_failed(self, key: str) -> Decision | None:
        """The submit_sm for `key` could not be built: the part ends, unsendable."""
        part = self._taken.get(key)
        if part is None:
            return None
        self._release(part)
        return Decision(part, Verdict.FINAL, BUILD_FAILED)

    def stored(self, part: Part) -> bool:
        """The caller stored an accepted part's outcome: True if that freed its slot."""
        if part.holds_slot_of is not self:
            return False
        part.holds_slot_of = None
        self.outstanding -= 1
        return True

    def connection_lost(self) -> list[Decision]:
        """A new connection starts: every part the old one had taken goes back in line,
        and those it had sent count as resent (the SMS center may have them)."""
        decisions = []
        for part in list(self._taken.values()):
            resent = part.state is PartState.SENT
            if resent:
                self.resent += 1
                part.unanswered += 1
            self._release(part)
            decisions.append(self._again(part, 0, 0.0, resent=resent))
        return decisions

    def expire(self, now: float) -> list[Decision]:
        """Parts whose answer is overdue on a live connection go back in line, resent."""
        timeout = self.response_timeout_s
        decisions = []
        for part in [p for p in self._sent.values() if now - p.sent_at > timeout]:
            self.resent += 1
            part.unanswered += 1
            self._release(part)
            decisions.append(self._again(part, 0, 0.0, resent=True))
        return decisions

    def _again(
        self,
        part: Part,
        status: int,
        delay_s: float,
        *,
        throttled: bool = False,
        resent: bool = False,
    ) -> Decision:
        part.state = PartState.WAITING
        return Decision(
            part, Verdict.RETRY, status, delay_s=delay_s, throttled=throttled, resent=resent
        )

    def _forget(self, part: Part) -> None:
        self._taken.pop(part.key, None)
        if self._sent.get(part.seq) is part:
            del self._sent[part.seq]

    def _release(self, part: Part) -> None:
        self._forget(part)
        self.outstanding -= 1
