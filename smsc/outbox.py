"""The SMSC simulator's store of deliver_sm (receipts and MO messages) for the ESMEs.

Like a real SMSC, a deliver_sm stays stored until the ESME acknowledges it with a
deliver_sm_resp of ESME_ROK. If no answer comes within `deliver_timeout`, the
connection drops, or the answer is a temporary error, it is sent again — possibly on
another connection of the same system_id. That is the case the gateway must survive
without losing a receipt or a reply, and without double-counting one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gateway import logs
from gateway.privacy import mask_phone
from sms.smpp.constants import CommandStatus, status_name
from sms.smpp.pdu import DeliverSm

if TYPE_CHECKING:
    from smsc.rules import Behaviour
    from smsc.session import SmppSession

log = logs.logger(__name__)


@dataclass(slots=True, eq=False)
class Delivery:
    """One deliver_sm the SMSC owes an ESME, and what became of it."""

    id: int
    kind: Literal["dlr", "mo"]
    system_id: str
    body: DeliverSm
    citizen: str
    created: float
    message_id: str = ""  # receipts: the id the receipt names
    attempts: int = 0
    first_sent_at: float | None = None  # wall clock: latency to the webhook feed
    acked_at: float | None = None
    failed: bool = False  # permanently refused (ESME_RX_P_APPN)
    session: SmppSession | None = None
    sequence: int = 0
    timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> bool:
        """Not yet acknowledged nor permanently refused."""
        return self.acked_at is None and not self.failed

    def to_json(self) -> dict[str, Any]:
        """JSON form for GET /deliveries."""
        body = self.body
        return {
            "id": self.id,
            "kind": self.kind,
            "system_id": self.system_id,
            "source": body.source_addr,
            "dest": body.dest_addr,
            "message_id": self.message_id,
            "esm_class": body.esm_class,
            "data_coding": body.data_coding,
            "short_message": body.short_message.hex(),
            "tlvs": [[tag, value.hex()] for tag, value in body.tlvs],
            "attempts": self.attempts,
            "created": self.created,
            "first_sent_at": self.first_sent_at,
            "acked_at": self.acked_at,
            "failed": self.failed,
        }


class Outbox:
    """Queues per system_id, a window per connection, retries until acknowledged."""

    def __init__(
        self,
        behaviour: Callable[[], Behaviour],
        receivers: Callable[[str], list[SmppSession]],
        counters: Counter[str],
        on_change: Callable[[], None],
    ) -> None:
        self._behaviour = behaviour
        self._on_change = on_change
        self._receivers = receivers
        self._counters = counters
        self._queues: dict[str, deque[Delivery]] = {}
        self._round_robin = 0
        self.all: list[Delivery] = []

    def add(
        self,
        kind: Literal["dlr", "mo"],
        system_id: str,
        body: DeliverSm,
        citizen: str,
        message_id: str = "",
    ) -> Delivery:
        """Store a deliver_sm for `system_id` and send it if a receiver is bound."""
        delivery = Delivery(len(self.all), kind, system_id, body, citizen, time.time(), message_id)
        self.all.append(delivery)
        self._queues.setdefault(system_id, deque()).append(delivery)
        self._counters[f"{kind}_queued"] += 1
        self._on_change()
        self.pump(system_id)
        return delivery

    def pump(self, system_id: str) -> None:
        """Send what is queued for `system_id` while some receiver has window room."""
        queue = self._queues.get(system_id)
        behaviour = self._behaviour()
        if not queue or behaviour.half_open:
            return
        receivers = self._receivers(system_id)
        while queue and receivers:
            count = len(receivers)
            target = None
            for i in range(count):
                candidate = receivers[(self._round_robin + i) % count]
                if len(candidate.in_flight) < behaviour.deliver_window:
                    target = candidate
                    self._round_robin += i + 1
                    break
            if target is None:
                return
            delivery = queue.popleft()
            if delivery.pending:
                self._transmit(target, delivery, behaviour.deliver_timeout)

    def pump_all(self) -> None:
        """Pump every system_id (after half-open mode ends)."""
        for system_id in list(self._queues):
            self.pump(system_id)

    def _transmit(self, session: SmppSession, delivery: Delivery, timeout: float) -> None:
        delivery.sequence = session.send_request(delivery.body)
        delivery.session = session
        delivery.attempts += 1
        if delivery.first_sent_at is None:
            delivery.first_sent_at = time.time()
        session.in_flight[delivery.sequence] = delivery
        loop = asyncio.get_running_loop()
        delivery.timer = loop.call_later(timeout, self._timed_out, delivery)
        self._counters[f"{delivery.kind}_sent"] += 1
        self._on_change()
        if delivery.attempts > 1:
            self._counters[f"{delivery.kind}_resent"] += 1
            log.info(
                "deliver_sm resent kind=%s delivery=%d attempt=%d citizen=%s peer=%s",
                delivery.kind,
                delivery.id,
                delivery.attempts,
                mask_phone(delivery.citizen),
                session.peer,
            )

    def _detach(self, delivery: Delivery) -> None:
        if delivery.timer is not None:
            delivery.timer.cancel()
            delivery.timer = None
        if delivery.session is not None:
            delivery.session.in_flight.pop(delivery.sequence, None)
            delivery.session = None

    def _requeue(self, deliveries: Iterable[Delivery]) -> None:
        # Back to the front, oldest first: a retried receipt must not fall behind
        # newer traffic for long.
        for delivery in sorted(deliveries, key=lambda d: d.id, reverse=True):
            if delivery.pending:
                self._queues.setdefault(delivery.system_id, deque()).appendleft(delivery)

    def _timed_out(self, delivery: Delivery) -> None:
        delivery.timer = None
        session = delivery.session
        self._detach(delivery)
        self._counters["deliver_timeouts"] += 1
        log.info(
            "deliver_sm unanswered kind=%s delivery=%d citizen=%s peer=%s",
            delivery.kind,
            delivery.id,
            mask_phone(delivery.citizen),
            session.peer if session else "-",
        )
        self._requeue([delivery])
        self.pump(delivery.system_id)

    def on_response(self, session: SmppSession, sequence: int, status: int) -> None:
        """A deliver_sm_resp (or generic_nack) for one of our deliver_sm arrived."""
        delivery = session.in_flight.get(sequence)
        if delivery is None:
            self._counters["deliver_sm_resp_unexpected"] += 1
            return
        self._detach(delivery)
        if status == CommandStatus.ESME_ROK:
            delivery.acked_at = time.time()
            self._counters[f"{delivery.kind}_acked"] += 1
        elif status == CommandStatus.ESME_RX_P_APPN:
            delivery.failed = True
            self._counters[f"{delivery.kind}_refused"] += 1
            log.info(
                "deliver_sm refused for good kind=%s delivery=%d peer=%s",
                delivery.kind,
                delivery.id,
                session.peer,
            )
        else:
            # Any other error is treated as temporary (ESME_RX_T_APPN and friends):
            # wait a timeout's length, then offer it again.
            self._counters[f"{delivery.kind}_nacked"] += 1
            log.info(
                "deliver_sm not accepted kind=%s delivery=%d status=%s peer=%s",
                delivery.kind,
                delivery.id,
                status_name(status),
                session.peer,
            )
            timeout = self._behaviour().deliver_timeout
            delivery.timer = asyncio.get_running_loop().call_later(timeout, self._retry, delivery)
        self._on_change()
        self.pump(delivery.system_id)

    def _retry(self, delivery: Delivery) -> None:
        delivery.timer = None
        self._requeue([delivery])
        self.pump(delivery.system_id)

    def session_closed(self, session: SmppSession) -> None:
        """Take back what was in flight on a lost connection and offer it elsewhere."""
        in_flight = list(session.in_flight.values())
        for delivery in in_flight:
            self._detach(delivery)
        self._requeue(in_flight)
        if session.system_id is not None:
            self.pump(session.system_id)

    def pending_count(self) -> int:
        """Deliveries not yet acknowledged (queued or in flight)."""
        return sum(1 for d in self.all if d.pending)

    def close(self) -> None:
        """Cancel every timer (simulator stop)."""
        for delivery in self.all:
            if delivery.timer is not None:
                delivery.timer.cancel()
                delivery.timer = None
