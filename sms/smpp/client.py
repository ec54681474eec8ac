"""The SMPP client: several binds, a window of outstanding submit_sm per bind, TPS
limits, and retries that never drop a message.

aiosmpplib has no window cap and never resends a failed or rejected message, so the
client owns both. A part is handed to a bind only while that bind has fewer than
`window` parts taken and unanswered; its submit_sm_resp (or a generic_nack) releases
the slot. Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) halve the bind's rate
and put the part back in line; a dropped connection or a response that never comes
puts back every part the connection had taken. Only a permanent refusal ends a part.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
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

from gateway import logs
from gateway.config.reader import SmppBind
from sms.smpp.constants import CommandStatus
from sms.smpp.esme import Backoff, GatewayESME, NoThrottle, RateLimiter, SequenceCorrelator

log = logs.logger(__name__)

# SMPP 3.4 §5.1.3 command_status values the client treats specially.
ESME_ROK = CommandStatus.ESME_ROK
THROTTLING = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
# Worth another try: system error, temporary app error, delivery failure, unknown.
TRANSIENT = frozenset(
    {
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
        CommandStatus.ESME_RDELIVERYFAILURE,
        CommandStatus.ESME_RUNKNOWNERR,
    }
)
MAX_TRANSIENT_TRIES = 5
THROTTLE_PAUSE_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """The final answer for one part."""

    bind: str
    smsc: str
    status: int  # 0 = accepted
    message_id: str
    tries: int
    wire_sends: int = 1  # > 1: sent again after a drop or timeout, may be a duplicate


class PartState(enum.Enum):
    WAITING = "waiting"  # in the client's line
    TAKEN = "taken"  # handed to a bind's queue
    SENT = "sent"  # on the wire, answer pending


@dataclass(eq=False)
class Part:
    """One submit_sm to send: a segment of a survey's SMS."""

    survey_id: str
    index: int
    total: int
    source: str
    dest: str
    short_message: bytes
    esm_class: int
    data_coding: int
    text: str = ""  # the part's characters (aiosmpplib wants one; the bytes above are sent)
    registered_delivery: int = 1
    future: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    state: PartState = PartState.WAITING
    tries: int = 0
    wire_sends: int = 0
    transient_tries: int = 0
    sent_at: float = 0.0
    seq: int = 0
    holds_slot_of: Bind | None = None  # accepted, outcome not yet stored by the caller


class _Broker(AbstractBroker):
    """aiosmpplib pulls submit_sm from here; each carries its Part in `extra_data`
    lookup (`log_id` = part key)."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind
        self.queue: asyncio.Queue[tuple[Part, SubmitSm]] = asyncio.Queue()

    async def enqueue(self, message: SmppMessage) -> None:  # pragma: no cover - unused
        raise NotImplementedError("the client puts parts in directly")

    async def dequeue(self) -> SmppMessage:
        part, msg = await self.queue.get()
        self.bind.taken_by_connection.add(part)
        return msg


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
    """One SMPP session (with its reconnects) and the parts it has taken."""

    def __init__(
        self,
        settings: SmppBind,
        client: SmppClient,
        inbound_sink: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.client = client
        self.broker = _Broker(self)
        self.rate = RateLimiter(settings.tps)
        self.correlator = SequenceCorrelator()
        # Parts taken and not yet answered, plus accepted parts whose answer the caller
        # has not stored yet (<= window): a crash can then re-send at most a window.
        self.outstanding = 0
        self.taken_by_connection: set[Part] = set()
        self.by_seq: dict[int, Part] = {}
        self.by_key: dict[str, Part] = {}
        self.resent = 0

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
            rate_limiter=self.rate,
            throttle_handler=NoThrottle(),
            correlator=self.correlator,
            retry_timer=Backoff(settings.reconnect_initial_s, settings.reconnect_max_s),
            socket_timeout=float(settings.response_timeout_s),
            bind_name=settings.name,
            inbound_sink=sink,
            on_connect=self.on_connect,
        )

    @property
    def can_send(self) -> bool:
        return self.settings.mode != "receiver"

    @property
    def bound(self) -> bool:
        return self.esme.bound_event.is_set()

    def has_room(self) -> bool:
        return self.can_send and self.bound and self.outstanding < self.settings.window

    def take(self, part: Part) -> None:
        """Hand a part to this bind's send queue (the caller checked has_room)."""
        s = self.settings
        part.state = PartState.TAKEN
        part.tries += 1
        self.outstanding += 1
        key = f"{part.survey_id}|{part.index}|{part.tries}"
        self.by_key[key] = part
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
        self.broker.queue.put_nowait((part, msg))

    def on_sending(self, msg: SubmitSm) -> None:
        part = self.by_key.get(msg.log_id)
        if part is not None:
            part.state = PartState.SENT
            part.wire_sends += 1
            part.seq = msg.sequence_num
            part.sent_at = time.monotonic()
            self.by_seq[msg.sequence_num] = part

    def _answered(self, part: Part) -> None:
        self.taken_by_connection.discard(part)
        self.by_seq.pop(part.seq, None)
        self.by_key.pop(f"{part.survey_id}|{part.index}|{part.tries}", None)

    def free_slot(self) -> None:
        """One window slot is free again."""
        self.outstanding -= 1
        self.client.room_available()

    def _release(self, part: Part) -> None:
        self._answered(part)
        self.free_slot()

    def on_response(self, resp: SmppMessage) -> None:
        part = self.by_seq.get(resp.sequence_num)
        if part is None:
            return  # an answer for a connection we already gave up on
        status = int(resp.command_status.value)
        status = self.esme.unknown_status.pop(resp.sequence_num, status)
        if status == ESME_ROK and isinstance(resp, SubmitSmResp):
            self._answered(part)  # its slot is freed by SmppClient.stored()
            part.holds_slot_of = self
            self.rate.accepted()
            self.client.finish(
                part,
                Outcome(
                    self.name, self.settings.smsc, 0, resp.message_id, part.tries, part.wire_sends
                ),
            )
            return
        self._release(part)
        if status in THROTTLING:
            self.rate.throttled(THROTTLE_PAUSE_S)
            self.client.throttled += 1
            self.client.retry(part, delay=THROTTLE_PAUSE_S)
        elif status in TRANSIENT and part.transient_tries < MAX_TRANSIENT_TRIES:
            part.transient_tries += 1
            self.client.retry(part, delay=min(30.0, 2.0**part.transient_tries))
        else:
            self.client.finish(part, Outcome(self.name, self.settings.smsc, status, "", part.tries))

    def on_build_error(self, msg: SubmitSm, error: Exception) -> None:
        part = self.by_key.get(msg.log_id)
        if part is not None:
            log.error("smpp bind=%s cannot build submit_sm: %s", self.name, error)
            self._release(part)
            self.client.finish(part, Outcome(self.name, self.settings.smsc, -1, "", part.tries))

    def on_connect(self) -> None:
        """A new connection is starting: parts the previous one had taken or sent
        without an answer go back in line (they may reach the citizen twice: counted)."""
        self.correlator.forget_all()
        stale = list(self.taken_by_connection)
        # parts still in the local queue were never taken by a connection
        while not self.broker.queue.empty():
            stale.append(self.broker.queue.get_nowait()[0])
        for part in stale:
            if part.state is PartState.SENT:
                self.resent += 1
                self.client.resent += 1
            self._release(part)
            self.client.retry(part, delay=0.0)
        if stale:
            log.warning("smpp bind=%s reconnecting: %d parts back in line", self.name, len(stale))

    def expire(self, now: float) -> None:
        """Parts whose answer is overdue on a live connection go back in line."""
        timeout = self.settings.response_timeout_s
        for part in [p for p in self.by_seq.values() if now - p.sent_at > timeout]:
            log.warning("smpp bind=%s no answer to seq=%d: resending", self.name, part.seq)
            self.resent += 1
            self.client.resent += 1
            self._release(part)
            self.client.retry(part, delay=0.0)


class SmppClient:
    """All binds, and the line of parts waiting for a window slot."""

    def __init__(
        self,
        binds: Sequence[SmppBind],
        inbound_sink: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        self.binds = [Bind(b, self, inbound_sink) for b in binds]
        self._line: deque[Part] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._rr = 0
        self.throttled = 0
        self.resent = 0
        self.accepted = 0
        self.refused = 0

    @property
    def senders(self) -> list[Bind]:
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
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def submit(self, part: Part) -> asyncio.Future[Outcome]:
        """Queue a part; the future resolves with its final outcome."""
        self._line.append(part)
        self._wake.set()
        return part.future

    def room_available(self) -> None:
        self._wake.set()

    def retry(self, part: Part, delay: float) -> None:
        part.state = PartState.WAITING
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
        bind = part.holds_slot_of
        if bind is not None:
            part.holds_slot_of = None
            bind.free_slot()

    def finish(self, part: Part, outcome: Outcome) -> None:
        if outcome.status == 0:
            self.accepted += 1
        else:
            self.refused += 1
        if not part.future.done():
            part.future.set_result(outcome)

    async def _dispatch(self) -> None:
        senders = self.senders
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._line:
                bind = self._pick(senders)
                if bind is None:
                    break
                bind.take(self._line.popleft())

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
            now = time.monotonic()
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
