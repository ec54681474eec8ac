"""aiosmpplib's ESME, hardened at the points where 0.7.4 would lose or kill things.

aiosmpplib 0.7.4 (pinned) is used for binding, enquire_link, sequence numbers and
sending. Three of its behaviours are not acceptable for a gateway that must lose
nothing, so this subclass overrides them (private methods: the pin matters):

* An unknown command_status or command_id in a PDU header raises ValueError inside
  its reader and drops the connection — forever, if the SMSC repeats it. Here an
  unknown status is recorded and replaced by ESME_RUNKNOWNERR, an unknown command is
  answered with generic_nack (SMPP 3.4 §4.3, ESME_RINVCMDID) and skipped.
* It decodes deliver_sm itself and a malformed receipt (a date it cannot parse, a
  non-numeric err:) raises and drops the connection, and the SMSC redelivers the same
  PDU. Here deliver_sm is not decoded at all: the raw PDU is handed to a sink that
  stores it (Redis) *before* deliver_sm_resp goes out, and the gateway's own parser
  (sms/smpp/codec.py, sms/dlr.py, sms/mo.py) reads it later.
* Errors other than a few built-in ones escape its task supervisor and end the ESME
  for good. The sink runs in a task of its own, outside that supervisor.

When the sink cannot store a deliver_sm because Redis is away (restarting, failing
over), the link stays up: the deliver_sm_resp is held and the store tried again with a
growing pause (`gateway.lifecycle.Outage`) for as long as the link the PDU came on
lives. Dropping the link instead would make every submit in flight a possible
duplicate, and the SMS center would only deliver the same PDUs again into the same
outage. Nothing needs a bound here: the SMS center stops sending deliver_sm once its
own window of unanswered ones is full, and decides for itself when an unanswered one
is to be delivered again (its response timer); if it drops the link, the held PDUs
are given up (never acknowledged) and it delivers them again on the next bind. Enquire
links and submits go on meanwhile.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmpplib import ESME as _ESME
from aiosmpplib import (
    AbstractCorrelator,
    AbstractRateLimiter,
    AbstractRetryTimer,
    AbstractThrottleHandler,
    DeliverSm,
    DeliverSmResp,
    PduHeader,
    SmppCommand,
    SmppCommandStatus,
    SmppMessage,
    SubmitSm,
)

from gateway import lifecycle, logs
from sms.binds import LinkState
from sms.smpp.constants import (
    BIND_RESPONSES,
    HEADER_LENGTH,
    MAX_PDU_LENGTH,
    RESPONSE_BIT,
    CommandId,
    CommandStatus,
)
from sms.smpp.window import SendRate

log = logs.logger(__name__)

_KNOWN_COMMANDS = frozenset(c.value for c in SmppCommand)
_KNOWN_STATUSES = frozenset(s.value for s in SmppCommandStatus)

InboundSink = Callable[[bytes], Awaitable[None]]


def _why(exc: BaseException) -> str:
    """A link error for /healthz and the logs (never a password: aiosmpplib's errors
    name commands and statuses)."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the SMS center closed the connection"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return lifecycle.describe(exc)


class RateLimiter(AbstractRateLimiter):
    """aiosmpplib waits here before each send, for as long as the bind's `SendRate`
    (sms.smpp.window: a throttle pause, then a token) says."""

    def __init__(self, rate: SendRate) -> None:
        self.rate = rate

    async def limit(self) -> None:
        """Return when the next submit_sm may go out."""
        loop = asyncio.get_running_loop()
        pause = self.rate.pause_left(loop.time())
        if pause > 0:
            await asyncio.sleep(pause)
        wait = self.rate.take(loop.time())
        if wait > 0:
            await asyncio.sleep(wait)


class NoThrottle(AbstractThrottleHandler):
    """Throttling is handled by RateLimiter and the client's retries, not here."""

    async def throttled(self) -> None:
        return None

    async def not_throttled(self) -> None:
        return None

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


class ReconnectTimer(AbstractRetryTimer):
    """aiosmpplib's reconnect timer on the gateway's one :class:`~gateway.lifecycle.Backoff`:
    doubles from `initial_s` up to `max_s`, starts over once bound."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.backoff = lifecycle.Backoff(initial_s, max_s)
        #: Called as each connection cycle ends, before the pause (the link is down).
        self.cycle_ended: Callable[[], None] | None = None

    async def wait(self) -> None:
        if self.cycle_ended is not None:
            self.cycle_ended()
        await asyncio.sleep(self.backoff.next_delay())

    def reset(self) -> None:
        self.backoff.reset()

    def next_delay(self) -> float:
        return self.backoff.upcoming()


class SequenceCorrelator(AbstractCorrelator):
    """Request/response correlation by sequence number only.

    The gateway correlates receipts in Redis (they must survive a restart and may
    arrive on another bind), so aiosmpplib's in-memory receipt store is not used."""

    def __init__(self) -> None:
        self._requests: dict[int, SmppMessage] = {}

    def get_cumulated_status(self, ref_num: int) -> int:
        return 0

    async def expired(self, smpp_message: SmppMessage) -> None:
        return None

    async def put(self, smpp_message: SmppMessage) -> None:
        self._requests[smpp_message.sequence_num] = smpp_message

    async def put_delivery(self, smsc_message_id: str, submit_sm: SubmitSm) -> None:
        return None

    async def put_delivery_segmented(self, deliver_sm: DeliverSm) -> DeliverSm | None:
        return deliver_sm

    async def get(self, response: SmppMessage) -> SmppMessage | None:
        return self._requests.pop(response.sequence_num, None)

    async def get_segmented(self, sequence_num: int, remove: bool = False) -> tuple[Any, int]:
        return None, 0

    async def get_delivery(self, receipt: DeliverSm) -> SubmitSm | None:
        return None

    def forget_all(self) -> None:
        """Drop requests of a dead connection (their responses will never come)."""
        self._requests.clear()


class GatewayESME(_ESME):
    """An ESME that stores inbound PDUs raw and survives unknown header values."""

    def __init__(
        self,
        *args: Any,
        bind_name: str,
        inbound_sink: InboundSink,
        on_connect: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # aiosmpplib's own logger prints to stderr past the gateway's handler (format,
        # levels, masking): it joins the "aiosmpplib" logger, whose level is set there.
        logs.adopt(self._logger, "aiosmpplib")
        self.bind_name = bind_name
        self._inbound_sink = inbound_sink
        self._on_connect = on_connect
        self.unknown_status: dict[int, int] = {}
        self._storing: set[asyncio.Task[None]] = set()
        # One outage for every deliver_sm waiting to be stored: one log line for all.
        self._store_outage = lifecycle.Outage(
            log,
            f"smpp bind={bind_name}: storing deliver_sm (answers held)",
            backoff=lifecycle.Backoff(0.2, 5.0),
        )
        self.bound_event = asyncio.Event()
        self.link = LinkState()
        # Why the current connection ended: the first cause seen (aiosmpplib's loop
        # swallows the errors of its tasks; its ending is told by the retry timer).
        self._lost = ""
        if isinstance(self.retry_timer, ReconnectTimer):
            self.retry_timer.cycle_ended = self._cycle_ended

    async def connect(self) -> None:
        """Every (re)connect first tells the client, which re-queues what the dead
        connection had taken but not had answered."""
        self.bound_event.clear()
        # aiosmpplib forgets the previous connection's writer without closing it (a
        # leaked socket per reconnect).
        await self._close_writer()
        self._on_connect()
        try:
            await super().connect()
        except Exception as exc:  # refused, timed out, bind refused: told, then raised
            self._note_lost(f"connect to {self.smsc_host}:{self.smsc_port} failed: {_why(exc)}")
            raise
        self._lost = ""
        log.info("smpp bind=%s bound host=%s:%s", self.bind_name, self.smsc_host, self.smsc_port)
        self.link.up()
        self.bound_event.set()

    def _note_lost(self, why: str) -> None:
        if not self._lost:
            self._lost = why

    def _cycle_ended(self) -> None:
        """The connection is gone (the retry timer is about to wait): not bound from
        now, not from the next connect."""
        self.bound_event.clear()
        self.link.down(self._lost or "the link ended")
        self._lost = ""

    async def _receive_data(self) -> bytes | None:
        try:
            result: bytes | None = await super()._receive_data()
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError) as exc:
            self._note_lost(_why(exc))
            raise
        if not self._is_shutting_down:
            self._note_lost("the SMS center unbound")
        return result

    async def _connection_keeper(self) -> None:
        await super()._connection_keeper()
        # it returns by itself on a broken session, and when enquire_link went unanswered
        if not self._is_shutting_down and self._session_state == self.bind_mode.session_state:
            self._note_lost(f"no answer to enquire_link within {self.socket_timeout:g}s")

    async def _close_writer(self) -> None:
        writer = self._writer
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass  # the peer already reset it: closed all the same

    async def _disconnect(self) -> None:
        # aiosmpplib's unbind sends UNBIND and EOF but never closes the socket.
        writer = self._writer
        await super()._disconnect()
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _get_pdu(self) -> tuple[bytes, PduHeader]:
        assert self._reader is not None
        while True:
            header_data: bytes = await self._reader.readexactly(HEADER_LENGTH)
            length, command, status, seq = struct.unpack("!IIII", header_data)
            if length < HEADER_LENGTH or length > MAX_PDU_LENGTH:
                # The stream is out of step; only a new connection can recover.
                raise ValueError(f"PDU length {length} out of range")
            body: bytes = await self._reader.readexactly(length - HEADER_LENGTH)
            if command not in _KNOWN_COMMANDS:
                log.warning(
                    "smpp bind=%s unknown command_id=0x%08x seq=%d: generic_nack",
                    self.bind_name,
                    command,
                    seq,
                )
                if not command & RESPONSE_BIT:  # never answer a response
                    assert self._writer is not None
                    self._writer.write(
                        struct.pack(
                            "!IIII",
                            HEADER_LENGTH,
                            CommandId.GENERIC_NACK,
                            CommandStatus.ESME_RINVCMDID,
                            seq,
                        )
                    )
                continue
            if status not in _KNOWN_STATUSES:
                self.unknown_status[seq] = status
                unknown = struct.pack("!I", CommandStatus.ESME_RUNKNOWNERR)
                header_data = header_data[:8] + unknown + header_data[12:]
            # SMPP 3.4 §4.1: a bind_*_resp with an error status may come without a body,
            # which aiosmpplib cannot parse ("subsection not found") — it would report a
            # wrong password as a read error and never say ESME_RINVPASWD.
            if command in BIND_RESPONSES and status != 0 and not body:
                body = b"\x00"  # an empty system_id, so the status gets through
                header_data = struct.pack("!I", length + 1) + header_data[4:]
                log.error("smpp bind=%s bind refused: status=0x%08x", self.bind_name, status)
            header: PduHeader = SmppMessage.parse_header(header_data)
            return header_data + body, header

    async def _handle_request(self, pdu: bytes, header: PduHeader) -> SmppMessage | None:
        if header.smpp_command != SmppCommand.DELIVER_SM:
            result: SmppMessage | None = await super()._handle_request(pdu, header)
            return result
        # Stored in a task of its own, so the next deliver_sm is read meanwhile (the SMSC
        # has a window of them outstanding; SMPP 3.4 §2.7 lets responses come in any
        # order). deliver_sm_resp goes out only after the store; returning None tells
        # aiosmpplib not to answer itself.
        task = asyncio.create_task(self._store_then_answer(pdu, header.sequence_num))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        return None

    async def _store_then_answer(self, pdu: bytes, sequence: int) -> None:
        writer = self._writer
        while True:
            try:
                await self._inbound_sink(pdu)
            except lifecycle.OUTAGES as exc:
                # Redis is away: keep the link, hold the answer, try again (see above).
                if writer is not self._writer or writer is None or writer.is_closing():
                    return  # the link it came on is gone: the SMSC delivers it again
                await self._store_outage.wait(exc)
                continue
            except Exception as exc:
                # Not a Redis outage: a fault that storing again would not cure. Not
                # acknowledged: drop the link, the SMSC delivers it again after
                # reconnect (and a fault here is loud).
                log.error(
                    "smpp bind=%s could not store deliver_sm: %s",
                    self.bind_name,
                    lifecycle.describe(exc),
                )
                if writer is not None:
                    writer.transport.abort()
                return
            self._store_outage.over()
            break
        if writer is not self._writer or writer is None or writer.is_closing():
            return  # the link it came on is gone: the SMSC will deliver it again
        try:
            await self._send_data(DeliverSmResp(sequence_num=sequence))
        except (ConnectionError, OSError) as exc:
            log.warning(
                "smpp bind=%s deliver_sm_resp not sent: %s", self.bind_name, lifecycle.describe(exc)
            )
