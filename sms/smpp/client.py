"""The SMPP client: several binds, a window of outstanding submit_sm per bind, TPS
limits, and retries that never drop a message.

aiosmpplib has no window cap and never resends a failed or rejected message, so the
client owns both. The rules (slots, throttling, retries, what a dropped connection
gives back) live in the pure `sms.smpp.window`; this module connects them to
aiosmpplib: a bind hands the parts its window took to the ESME's queue, reports what
went out and what came back, and carries out each `Decision` — finish the part, or
put it back in the client's line. Only a permanent refusal ends a part.

A part may be taken by a bind only once ``before_wire`` has cleared it (the sender
records in Redis that it may reach the SMS center): after a crash, only a part so
recorded may have, so only such a part is reported as possibly sent twice when it
goes again. Clearing runs ahead of the dispatch, for the first parts of the line (up
to twice the binds' total window), in overlapping batches, so that it adds no round
trip to a part's way to the wire; a crash can thus leave at most that many cleared
parts unsent (each then reported although it never went out), next to the window of
those on the wire: at most three windows reported, of which the duplicates are a part
(before, every survey in flight was: a thousand). While Redis is away nothing new is
cleared: the parts cleared already still go out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiosmpplib import (
    NPI,
    TON,
    AbstractBroker,
    AbstractHook,
    BindMode,
    GenericNack,
    PhoneNumber,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
)

from gateway import lifecycle, logs
from gateway.config import SmppBind
from sms.smpp.esme import (
    GatewayESME,
    NoThrottle,
    RateLimiter,
    ReconnectTimer,
    SequenceCorrelator,
)
from sms.smpp.window import Decision, Part, SendRate, SubmitWindow, Verdict

log = logs.logger(__name__)


@dataclass(frozen=True)
class SubmitOutcome:
    """The final answer for one part."""

    bind: str
    smsc: str
    status: int  # 0 = accepted; window.BUILD_FAILED = the submit_sm could not be built
    message_id: str
    tries: int
    # Times it went out on the wire (answered or not).
    wire_sends: int
    # Times it went out and no answer came (a dropped link, a timeout): the sender
    # reports a part with any as a possible duplicate. A refusal is an answer.
    unanswered: int = 0


class _Broker(AbstractBroker):
    """aiosmpplib pulls submit_sm from here; each names its part in `log_id`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[SubmitSm] = asyncio.Queue()

    async def enqueue(self, message: SmppMessage) -> None:  # pragma: no cover - unused
        raise NotImplementedError("the client puts parts in directly")

    async def dequeue(self) -> SmppMessage:
        return await self.queue.get()

    def clear(self) -> None:
        """Forget what a dead connection never took: the window gives it back."""
        while not self.queue.empty():
            self.queue.get_nowait()


class _Hook(AbstractHook):
    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            self.bind.on_sending(smpp_message)

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, (SubmitSmResp, GenericNack)):
            try:
                self.bind.on_response(smpp_message)
            except Exception:  # a bug here must not end the connection
                log.exception("smpp bind=%s response handling failed", self.bind.name)

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        # ValueError: the PDU could not be built (our input); anything else is a
        # transport error, and the reconnect re-queues the part.
        if isinstance(error, ValueError) and isinstance(smpp_message, SubmitSm):
            self.bind.on_build_error(smpp_message, error)


class Bind:
    """One SMPP session (with its reconnects), driving the window of its parts."""

    def __init__(
        self,
        settings: SmppBind,
        client: SmppClient,
        inbound_sink: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.client = client
        self._loop = asyncio.get_running_loop()
        self.broker = _Broker()
        # The loop's clock, for the rate (aiosmpplib sleeps on it) and the timeouts.
        self.rate = SendRate(settings.tps, self._loop.time())
        self.window = SubmitWindow(settings.window, settings.response_timeout_s, self.rate)
        self.correlator = SequenceCorrelator()

        async def sink(pdu: bytes) -> None:
            await inbound_sink(settings.name, pdu)

        mode = {
            "transceiver": BindMode.TRANSCEIVER,
            "transmitter": BindMode.TRANSMITTER,
            "receiver": BindMode.RECEIVER,
        }[settings.mode]
        self.esme = GatewayESME(
            smsc_host=settings.host,
            smsc_port=settings.port,
            system_id=settings.system_id,
            password=settings.password,
            system_type=settings.system_type,
            bind_mode=mode,
            client_id=settings.name,
            enquire_link_interval=float(settings.enquire_link_s),
            log_level=logging.ERROR,
            log_metadata={"bind": settings.name},
            hook=_Hook(self),
            broker=self.broker,
            rate_limiter=RateLimiter(self.rate),
            throttle_handler=NoThrottle(),
            correlator=self.correlator,
            retry_timer=ReconnectTimer(settings.reconnect_initial_s, settings.reconnect_max_s),
            socket_timeout=float(settings.response_timeout_s),
            bind_name=settings.name,
            inbound_sink=sink,
            on_connect=self.on_connect,
        )

    @property
    def can_send(self) -> bool:
        """Whether this bind's mode lets it submit (not a receiver)."""
        return self.settings.mode != "receiver"

    @property
    def bound(self) -> bool:
        """Whether the session is bound now."""
        return self.esme.bound_event.is_set()

    @property
    def outstanding(self) -> int:
        """Window slots in use."""
        return self.window.outstanding

    def has_room(self) -> bool:
        """Whether this bind can take a part now."""
        return self.can_send and self.bound and self.window.has_room()

    def take(self, part: Part) -> None:
        """Hand a part to this bind's send queue (the caller checked has_room)."""
        s = self.settings
        key = self.window.take(part)
        msg = SubmitSm(
            short_message=part.text or " ",
            source=PhoneNumber(part.source, TON(s.source_ton), NPI(s.source_npi)),
            destination=PhoneNumber(part.dest, TON(s.dest_ton), NPI(s.dest_npi)),
            esm_class=part.esm_class,
            registered_delivery=part.registered_delivery,
            encoding="ucs2",
            log_id=key,
        )
        msg.set_encoded_message(part.short_message)
        self.broker.queue.put_nowait(msg)

    def on_sending(self, msg: SubmitSm) -> None:
        """aiosmpplib is writing a submit_sm."""
        self.window.sending(msg.log_id, msg.sequence_num, self._loop.time())

    def on_response(self, resp: SmppMessage) -> None:
        """A submit_sm_resp or generic_nack arrived."""
        status = int(resp.command_status.value)
        status = self.esme.unknown_status.pop(resp.sequence_num, status)
        message_id = resp.message_id if isinstance(resp, SubmitSmResp) else None
        decision = self.window.answer(resp.sequence_num, status, message_id, self._loop.time())
        if decision is not None:
            self._carry_out(decision)

    def on_build_error(self, msg: SubmitSm, error: Exception) -> None:
        """aiosmpplib could not build the submit_sm: the part ends."""
        decision = self.window.build_failed(msg.log_id)
        if decision is not None:
            log.error("smpp bind=%s cannot build submit_sm: %s", self.name, error)
            self._carry_out(decision)

    def on_connect(self) -> None:
        """A new connection is starting: parts the previous one had taken or sent
        without an answer go back in line (they may reach the citizen twice: counted)."""
        self.correlator.forget_all()
        self.broker.clear()
        decisions = self.window.connection_lost()
        for decision in decisions:
            self._carry_out(decision)
        if decisions:
            log.warning(
                "smpp bind=%s reconnecting: %d parts back in line", self.name, len(decisions)
            )

    def expire(self, now: float) -> None:
        """Parts whose answer is overdue on a live connection go back in line."""
        for decision in self.window.expire(now):
            log.warning("smpp bind=%s no answer to seq=%d: resending", self.name, decision.part.seq)
            self._carry_out(decision)

    def _carry_out(self, d: Decision) -> None:
        part, client = d.part, self.client
        if d.verdict is Verdict.RETRY:
            if d.throttled:
                client.throttled += 1
            if d.resent:
                client.resent += 1
            client.retry(part, d.delay_s)
        else:
            outcome = SubmitOutcome(
                self.name,
                self.settings.smsc,
                d.status,
                d.message_id,
                part.tries,
                part.wire_sends,
                part.unanswered,
            )
            client.finish(part, outcome)
        if d.frees_slot:
            client.room_available()


class SmppClient:
    """All binds, and the line of parts waiting for a window slot."""

    def __init__(
        self,
        binds: Sequence[SmppBind],
        inbound_sink: Callable[[str, bytes], Awaitable[None]],
        before_wire: Callable[[Sequence[Part]], Awaitable[None]] | None = None,
    ) -> None:
        self.binds = [Bind(b, self, inbound_sink) for b in binds]
        #: Awaited with parts before a bind may take them (see the module docstring).
        self.before_wire = before_wire
        self._line: deque[Part] = deque()
        self._futures: dict[Part, asyncio.Future[SubmitOutcome]] = {}
        self._wake = asyncio.Event()
        self._to_clear = asyncio.Event()
        self._clear_tasks: set[asyncio.Task[None]] = set()
        self._clearing = lifecycle.Outage(
            log, "smpp: recording parts before they go out", backoff=lifecycle.Backoff(0.2, 5.0)
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._rr = 0
        self.throttled = 0
        self.resent = 0
        self.accepted = 0
        self.refused = 0

    @property
    def senders(self) -> list[Bind]:
        """The binds that can submit."""
        return [b for b in self.binds if b.can_send]

    def capacity(self) -> int:
        """Total window of the binds that can send."""
        return sum(b.settings.window for b in self.senders)

    def outstanding(self) -> int:
        """Parts taken by binds and not yet answered, plus those waiting in line."""
        return sum(b.outstanding for b in self.binds) + len(self._line)

    async def start(self) -> None:
        """Connect every bind (in the background; they reconnect by themselves)."""
        for b in self.binds:
            self._tasks.append(asyncio.create_task(b.esme.start(), name=f"esme-{b.name}"))
        self._tasks.append(asyncio.create_task(self._dispatch(), name="smpp-dispatch"))
        self._tasks.append(asyncio.create_task(self._clear_ahead(), name="smpp-clear"))
        self._tasks.append(asyncio.create_task(self._watch(), name="smpp-watch"))

    async def wait_bound(self, within_s: float) -> bool:
        """Wait until every bind is bound (tests, start-up readiness)."""
        try:
            async with asyncio.timeout(within_s):
                for b in self.binds:
                    await b.esme.bound_event.wait()
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        """Unbind and close every session."""
        for t in self._tasks[len(self.binds) :]:
            t.cancel()
        for b in self.binds:
            try:
                async with asyncio.timeout(5):
                    await b.esme.stop()
            except (TimeoutError, OSError) as exc:
                log.warning("smpp bind=%s unbind failed: %r", b.name, exc)
        for t in [*self._tasks, *self._clear_tasks]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._clear_tasks, return_exceptions=True)
        self._tasks.clear()

    def submit(self, part: Part) -> asyncio.Future[SubmitOutcome]:
        """Queue a part; the future resolves with its final outcome."""
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._futures[part] = future
        self._line.append(part)
        self._to_clear.set()
        self._wake.set()
        return future

    def room_available(self) -> None:
        """A window slot is free: wake the dispatcher (and the clearing, which keeps
        ahead of it)."""
        self._wake.set()
        self._to_clear.set()

    def retry(self, part: Part, delay: float) -> None:
        """Put a part back at the head of the line, now or after `delay` seconds."""
        if delay <= 0:
            self._line.appendleft(part)
            self._wake.set()
        else:
            asyncio.get_running_loop().call_later(delay, self._requeue, part)

    def _requeue(self, part: Part) -> None:
        self._line.appendleft(part)
        self._wake.set()

    def stored(self, part: Part) -> None:
        """The caller has stored the part's outcome: an accepted part gives back its
        window slot (until then a crash could make the SMSC get it twice)."""
        window = part.holds_slot_of
        if window is not None and window.stored(part):
            self.room_available()

    def finish(self, part: Part, outcome: SubmitOutcome) -> None:
        """Resolve the part's future with its final outcome."""
        if outcome.status == 0:
            self.accepted += 1
        else:
            self.refused += 1
        future = self._futures.pop(part, None)
        if future is not None and not future.done():
            future.set_result(outcome)

    async def _dispatch(self) -> None:
        senders = self.senders
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._line:
                if self.before_wire is not None and not self._line[0].cleared:
                    break  # _clear_ahead wakes us once it is
                bind = self._pick(senders)
                if bind is None:
                    break
                bind.take(self._line.popleft())

    def lookahead(self) -> int:
        """How many parts at the head of the line are cleared ahead of the dispatch:
        twice the binds' total window, so that the dispatch does not wait for a
        round trip when the window frees up all at once."""
        return max(1, 2 * self.capacity())

    async def _clear_ahead(self) -> None:
        """Keep the first parts of the line cleared: each batch of parts not yet cleared
        goes to ``before_wire`` in a task of its own (batches overlap: their records
        share pipelines), which wakes the dispatch once it is done."""
        while True:
            await self._to_clear.wait()
            self._to_clear.clear()
            before_wire = self.before_wire
            if before_wire is None:
                continue
            batch = [
                p
                for p in itertools.islice(self._line, self.lookahead())
                if not (p.cleared or p.clearing)
            ]
            if not batch:
                continue
            for part in batch:
                part.clearing = True
            task = asyncio.create_task(self._clear(before_wire, batch))
            self._clear_tasks.add(task)
            task.add_done_callback(self._clear_tasks.discard)

    async def _clear(
        self, before_wire: Callable[[Sequence[Part]], Awaitable[None]], batch: list[Part]
    ) -> None:
        try:
            await before_wire(batch)
        except lifecycle.OUTAGES as exc:
            for part in batch:
                part.clearing = False
            await self._clearing.wait(exc)  # then try again
        else:
            self._clearing.over()
            for part in batch:
                part.cleared, part.clearing = True, False
            self._wake.set()
        self._to_clear.set()

    def _pick(self, senders: list[Bind]) -> Bind | None:
        # Round robin over binds with room, so load spreads over all sessions.
        n = len(senders)
        for i in range(n):
            b = senders[(self._rr + i) % n]
            if b.has_room():
                self._rr = (self._rr + i + 1) % n
                return b
        return None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = asyncio.get_running_loop().time()
            for b in self.binds:
                b.expire(now)
            self._wake.set()  # a bind may have bound meanwhile

    def stats(self) -> dict[str, Any]:
        """Counters and per-bind state for /metrics and the health page."""
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "throttled": self.throttled,
            "resent": self.resent,
            "waiting": len(self._line),
            "binds": {
                b.name: {
                    "bound": b.bound,
                    "outstanding": b.outstanding,
                    "tps": round(b.rate.tps, 1),
                }
                for b in self.binds
            },
        }
