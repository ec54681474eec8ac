"""One SMPP connection to the SMSC simulator: framing, bind state, batched writes.

The per-PDU path is kept short because the simulator must outrun the gateway: every
PDU decoded from one read is handled, the answers are collected, and they leave in one
`transport.write` at the end of `data_received`. Writes made from timers (receipts,
MO messages, delayed answers) are coalesced by one `call_soon` flush.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway import logs
from sms.smpp.codec import Decoder, Pdu, encode
from sms.smpp.constants import MAX_SEQUENCE, SMPP_VERSION_34, CommandStatus, Tag
from sms.smpp.errors import RemoteProtocolError
from sms.smpp.pdu import (
    BindKind,
    BindRequest,
    BindResp,
    Body,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)

if TYPE_CHECKING:
    from smsc.outbox import Delivery
    from smsc.simulator import SmscSimulator

log = logs.logger(__name__)

#: bind_*_resp system_id: who we are (5.2.1, at most 15 octets).
SMSC_SYSTEM_ID = "MINYISIM"
_BIND_RESP_TLVS = ((Tag.SC_INTERFACE_VERSION, bytes((SMPP_VERSION_34,))),)


class SmppSession(asyncio.Protocol):
    """The SMSC side of one ESME connection (2.3: OPEN → BOUND_* → CLOSED)."""

    def __init__(self, sim: SmscSimulator, number: int) -> None:
        self.sim = sim
        self.number = number
        self.peer = "-"
        self.transport: asyncio.Transport | None = None
        self.decoder = Decoder()
        self.system_id: str | None = None
        self.kind: BindKind | None = None
        self.receiving = False  # bound as RX/TRX and the bind_resp has left
        self.bound_at: float | None = None
        self.closing = False
        self.submits = 0
        self.outstanding = 0  # submit_sm received and not yet answered
        self.in_flight: dict[int, Delivery] = {}  # our deliver_sm awaiting an answer
        self._out: list[bytes] = []
        self._in_read = False
        self._flush_handle: asyncio.Handle | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._next_sequence = 0
        self._tokens = 0.0
        self._tokens_at: float | None = None

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the connection with the simulator."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.sim._session_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; what was in flight goes back to the store."""
        self.closing = True
        self.receiving = False
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.sim._session_closed(self)

    def data_received(self, data: bytes) -> None:
        """Decode every complete PDU, handle it, and answer in one write."""
        if self.closing:
            return
        self.decoder.feed(data)
        self._in_read = True
        try:
            while not self.closing:
                try:
                    pdu = self.decoder.next_pdu()
                except RemoteProtocolError as exc:
                    self._malformed(exc)
                    continue
                if pdu is None:
                    break
                self._handle(pdu)
        finally:
            self._in_read = False
        self.flush()
        self.sim._notify()  # wake wait_until() callers once per read

    # --- handling ----------------------------------------------------------------

    def _malformed(self, exc: RemoteProtocolError) -> None:
        self.sim.counters["malformed"] += 1
        log.warning("malformed pdu peer=%s reason=%s fatal=%s", self.peer, exc.reason, exc.fatal)
        if not self.sim.behaviour.half_open:
            # 4.3: generic_nack echoes the sequence number of the offending PDU.
            self.sim.counters["generic_nack_sent"] += 1
            self.write(encode(GenericNack(), exc.sequence & 0xFFFFFFFF, exc.status))
        if exc.fatal:
            self.drop(hard=False)

    def _handle(self, pdu: Pdu) -> None:
        body, sequence = pdu.body, pdu.sequence
        if self.sim.behaviour.half_open:
            self.sim.counters["ignored_half_open"] += 1
            return
        if isinstance(body, SubmitSm):
            self._submit(sequence, body)
        elif isinstance(body, DeliverSmResp):
            self.sim.outbox.on_response(self, sequence, pdu.status)
        elif isinstance(body, EnquireLink):
            self.respond(EnquireLinkResp(), sequence)
        elif isinstance(body, BindRequest):
            self._bind(sequence, body)
        elif isinstance(body, Unbind):
            self._unbind(sequence)
        elif isinstance(body, GenericNack):
            # A nack for one of our deliver_sm counts as a failed delivery attempt.
            status = pdu.status or CommandStatus.ESME_RSYSERR
            self.sim.outbox.on_response(self, sequence, status)
        elif isinstance(body, (DeliverSm, Outbind)):
            # SMSC-to-ESME operations (4.1.7, 4.6) make no sense in this direction.
            self.respond(GenericNack(), sequence, CommandStatus.ESME_RINVCMDID)
        # Other responses (enquire_link_resp, unbind_resp, ...) need nothing.

    def _submit(self, sequence: int, body: SubmitSm) -> None:
        self.outstanding += 1  # every submit_sm_resp, whatever its status, pays it back
        if self.kind is None or not self.kind.can_submit:
            # 2.3: submit_sm is only valid in BOUND_TX and BOUND_TRX.
            self.respond(SubmitSmResp(), sequence, CommandStatus.ESME_RINVBNDSTS)
            return
        self.submits += 1
        self.sim._submit(self, sequence, body)

    def _bind(self, sequence: int, body: BindRequest) -> None:
        status = self.sim._authenticate(self, body)
        resp = BindResp(body.kind, SMSC_SYSTEM_ID, _BIND_RESP_TLVS)
        if status:
            self.respond(resp, sequence, status)
            return
        self.respond(resp, sequence, after=self._bind_answered)

    def _bind_answered(self) -> None:
        if self.kind is not None and self.kind.can_receive and not self.closing:
            self.receiving = True
            if self.system_id is not None:
                self.sim.outbox.pump(self.system_id)

    def _unbind(self, sequence: int) -> None:
        log.info("unbind peer=%s system_id=%s", self.peer, self.system_id)
        self.receiving = False
        self.respond(UnbindResp(), sequence, after=lambda: self.drop(hard=False))

    # --- output -----------------------------------------------------------------

    def respond(
        self,
        body: Body,
        sequence: int,
        status: int = 0,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Answer a request, after `response_delay` if one is configured; `after`
        runs once the answer is queued for the wire."""
        data = encode(body, sequence, status)
        delay = self.sim.behaviour.response_delay
        if delay > 0:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def later() -> None:
                self._timers.discard(handle)
                self._answer(body, data, after)

            handle = loop.call_later(delay, later)
            self._timers.add(handle)
            return
        self._answer(body, data, after)

    def _answer(self, body: Body, data: bytes, after: Callable[[], None] | None) -> None:
        if isinstance(body, SubmitSmResp):
            self.outstanding -= 1
        if self.sim.behaviour.half_open:
            return  # switched to half-open while the answer waited
        self.write(data)
        if after is not None:
            after()

    def send_request(self, body: Body) -> int:
        """Send an SMSC-originated request (deliver_sm); returns its sequence number."""
        self._next_sequence = self._next_sequence % MAX_SEQUENCE + 1
        self.write(encode(body, self._next_sequence))
        return self._next_sequence

    def write(self, data: bytes) -> None:
        """Queue bytes; they leave at the end of the current read or on the next tick."""
        if self.closing:
            return
        self._out.append(data)
        if not self._in_read and self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write everything queued in one call."""
        self._flush_handle = None
        if self._out and self.transport is not None and not self.closing:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def drop(self, hard: bool) -> None:
        """Close the connection without unbind. `hard` resets it, as a crashed SMS center
        or a firewall does: unsent bytes are discarded and the peer gets an RST, so its
        next read or write fails (a plain close sends FIN, and a write after it
        succeeds)."""
        if self.closing or self.transport is None:
            return
        self.flush()
        self.closing = True
        self.receiving = False
        if hard:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # linger on, 0 s: close() sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, even in the middle of a graceful close."""
        self.closing = True
        self.receiving = False
        if self.transport is not None:
            self.transport.abort()

    # --- admission ----------------------------------------------------------------

    def take_token(self, tps: float, now: float) -> bool:
        """Token bucket for max TPS per bind; holds at most one second of tokens."""
        capacity = max(tps, 1.0)
        if self._tokens_at is None:
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * tps)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def describe(self) -> dict[str, object]:
        """This bind, for stats()."""
        return {
            "session": self.number,
            "peer": self.peer,
            "system_id": self.system_id,
            "kind": None if self.kind is None else self.kind.value,
            "bound_at": self.bound_at,
            "submits": self.submits,
            "in_flight": len(self.in_flight),
        }
