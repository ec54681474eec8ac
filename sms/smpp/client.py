"""An SMPP bind: one session on aiosmpplib, with a window of outstanding submit_sm and
a TPS limit — the SMPP implementation of `sms.binds.SmsBind`.

aiosmpplib has no window cap and never resends a failed or rejected message, so the
bind owns both. The rules (slots, throttling, retries, what a dropped connection
gives back) live in the pure `sms.smpp.window`; this module connects them to
aiosmpplib: the bind hands the parts its window took to the ESME's queue, reports what
went out and what came back, and gives each `Decision` to the client
(`sms.binds.SmsClient.decided`), which finishes the part or puts it back in line.
Only a permanent refusal ends a part.
"""

from __future__ import annotations

import asyncio
import logging

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
from gateway.config import SmppBind
from sms.binds import InboundSink, LinkState, SmsClient
from sms.smpp.constants import status_name
from sms.smpp.esme import (
    GatewayESME,
    NoThrottle,
    RateLimiter,
    ReconnectTimer,
    SequenceCorrelator,
)
from sms.smpp.window import BUILD_FAILED, Decision, Part, SendRate, SubmitWindow

log = logs.logger(__name__)


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
        client: SmsClient,
        inbound_sink: InboundSink,
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
    def link(self) -> LinkState:
        """Up or down since when, and the last error."""
        return self.esme.link

    @property
    def outstanding(self) -> int:
        """Window slots in use."""
        return self.window.outstanding

    @property
    def tps(self) -> float:
        """The submit rate now."""
        return self.rate.tps

    def refusal(self, status: int) -> str:
        """The command_status's name; "invalid_pdu" when the submit_sm was not built."""
        return "invalid_pdu" if status == BUILD_FAILED else status_name(status)

    async def run(self) -> None:
        """Bind, and rebind after every drop (aiosmpplib's loop)."""
        await self.esme.start()

    async def wait_bound(self) -> None:
        """Return once bound."""
        await self.esme.bound_event.wait()

    async def stop(self) -> None:
        """Unbind and close."""
        await self.esme.stop()
        self.esme.bound_event.clear()
        self.esme.link.down()

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
        self.client.decided(self, d)
