"""A CMPP bind: one connection to a China Mobile ISMG (with its reconnects), an asyncio
driver of the sans-IO codec — the CMPP implementation of `sms.binds.SmsBind`.

What it does, and where the rules live:

* Logs in with CMPP_CONNECT (7.4.1: the MD5 authenticator over the SP code, the
  secret and the timestamp) and checks the ISMG's authenticator (a mismatch is
  logged, since the SP trusts the address it dials, not refused).
* Sends each part as a CMPP_SUBMIT (7.4.3, Pk_total/Pk_number and TP_udhi from the
  part) through the pure submit window (`sms.smpp.window`, shared with SMPP): slots,
  the rate, and what each answer means. Result 8 (flow control, 7.4.3.2) is the
  window's throttling: the rate halves, sending pauses, the part goes back in line,
  and it is not a resend (it reached nobody).
* Stores every CMPP_DELIVER (a reply or a status report, 7.4.5) raw through the sink
  before it answers CMPP_DELIVER_RESP; one it cannot even decode is stored too (the
  inbound worker keeps it as an orphan) and answered, so the ISMG does not resend it
  for ever.
* Sends CMPP_ACTIVE_TEST after `active_test_s` of silence and drops the link after
  three unanswered (6.1); answers the ISMG's tests; answers CMPP_TERMINATE and sends
  it itself when the gateway drains.
* A lost connection gives every part it had back to the window (those on the wire
  count as resent: the ISMG may have them), and it reconnects with the one backoff.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from gateway import lifecycle, logs
from gateway.config import CmppBind
from sms.binds import InboundSink, LinkState, SmsClient
from sms.cmpp.codec import Decoder, MalformedMessage, encode
from sms.cmpp.constants import (
    ACTIVE_TEST_TRIES,
    HEADER_LENGTH,
    MAX_SEQUENCE,
    MSG_ID_SIZE,
    REGISTERED_DELIVERY_NONE,
    REGISTERED_DELIVERY_REPORT,
    TP_UDHI,
    CommandId,
    ConnectStatus,
    MsgFmt,
    SubmitResult,
    Version,
    result_name,
)
from sms.cmpp.pdu import (
    ActiveTest,
    ActiveTestResp,
    Body,
    Connect,
    ConnectResp,
    Deliver,
    DeliverResp,
    LocalCmppError,
    RemoteCmppError,
    Submit,
    SubmitResp,
    Terminate,
    TerminateResp,
    authenticator_ismg,
    authenticator_source,
    msg_id_text,
    timestamp,
)
from sms.smpp.constants import ESM_CLASS_UDHI
from sms.smpp.window import BUILD_FAILED, Part, RetryPolicy, SendRate, SubmitWindow

log = logs.logger(__name__)

#: 7.4.3.2: Result 8 asks the SP to slow down; no Result is worth a blind retry.
POLICY = RetryPolicy(throttling=frozenset({SubmitResult.FLOW_CONTROL}), transient=frozenset())
_READ_SIZE = 64 * 1024
_LOGOUT_S = 5.0


class LoginRefused(Exception):
    """The ISMG answered CMPP_CONNECT with a non-zero Status."""


class CmppSession:
    """One CMPP connection to an ISMG, driving the window of its parts."""

    def __init__(self, settings: CmppBind, client: SmsClient, sink: InboundSink) -> None:
        self._settings = settings
        self.name = settings.name
        self.client = client
        self.version = Version.of(settings.protocol)
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self.rate = SendRate(settings.tps, self._loop.time(), POLICY)
        self.window = SubmitWindow(settings.window, settings.response_timeout_s, self.rate, POLICY)
        self.backoff = lifecycle.Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        self._bound = asyncio.Event()
        self._link = LinkState()
        self._queue: asyncio.Queue[tuple[str, Part]] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._seq = 0
        self._stopping = False
        self._terminated = asyncio.Event()
        self._last_rx = 0.0
        self._tests_unanswered = 0
        self._test_sent_at = 0.0
        self._storing: set[asyncio.Task[None]] = set()
        self.counts: dict[str, int] = {}

    # --- SmsBind ---------------------------------------------------------------------

    @property
    def settings(self) -> CmppBind:
        """The bind's configuration."""
        return self._settings

    @property
    def can_send(self) -> bool:
        """A CMPP connection always submits."""
        return True

    @property
    def bound(self) -> bool:
        """Whether the connection is up and logged in."""
        return self._bound.is_set()

    @property
    def link(self) -> LinkState:
        """Up or down since when, and the last error."""
        return self._link

    @property
    def outstanding(self) -> int:
        """Window slots in use."""
        return self.window.outstanding

    @property
    def tps(self) -> float:
        """The submit rate now."""
        return self.rate.tps

    def has_room(self) -> bool:
        """Whether this bind can take a part now."""
        return self.bound and self.window.has_room()

    def take(self, part: Part) -> None:
        """Put a part in a slot; the send loop puts it on the wire within the rate."""
        self._queue.put_nowait((self.window.take(part), part))

    def expire(self, now: float) -> None:
        """Parts whose CMPP_SUBMIT_RESP is overdue go back in line, as resent."""
        for decision in self.window.expire(now):
            log.warning("cmpp bind=%s no answer to seq=%d: resending", self.name, decision.part.seq)
            self.client.decided(self, decision)

    def refusal(self, status: int) -> str:
        """The Result's name ("CMPP_BAD_DEST_TERMINAL"), or "invalid_pdu"."""
        return "invalid_pdu" if status == BUILD_FAILED else result_name(status)

    async def wait_bound(self) -> None:
        """Return once logged in."""
        await self._bound.wait()

    async def run(self) -> None:
        """Connect, log in and serve; after every loss wait the backoff and again."""
        s = self._settings
        while not self._stopping:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(s.host, s.port), s.response_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                log.warning(
                    "cmpp bind=%s connect to %s:%s failed: %r", self.name, s.host, s.port, exc
                )
                why = "timed out" if isinstance(exc, TimeoutError) else lifecycle.describe(exc)
                self._link.down(f"connect to {s.host}:{s.port} failed: {why}")
                await asyncio.sleep(self.backoff.next_delay())
                continue
            why = "the link ended"
            try:
                await self._serve(reader, writer)
            except LoginRefused as exc:
                log.error("cmpp bind=%s login refused: %s", self.name, exc)
                why = f"login refused: {exc}"
            except (OSError, EOFError, TimeoutError, RemoteCmppError) as exc:
                if not self._stopping:
                    log.warning("cmpp bind=%s link lost: %r", self.name, exc)
                why = lifecycle.describe(exc)
            finally:
                self._link.down("" if self._stopping else why)
                self._lost(writer)
            if not self._stopping:
                await asyncio.sleep(self.backoff.next_delay())

    async def stop(self) -> None:
        """CMPP_TERMINATE (7.4.2), wait a little for its answer, close."""
        self._stopping = True
        writer = self._writer
        if writer is None or not self.bound:
            self._link.down()
            return
        self._bound.clear()
        self._link.down()
        try:
            self._send(writer, Terminate())
            await asyncio.wait_for(self._terminated.wait(), _LOGOUT_S)
        except (OSError, TimeoutError) as exc:
            log.warning("cmpp bind=%s terminate unanswered: %r", self.name, exc)
        writer.close()

    # --- One connection ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder(self.version)
        self._writer = writer  # before the login: what comes right behind it is answered
        await self._login(reader, writer, decoder)
        self._terminated.clear()
        self._last_rx = self._loop.time()
        self._tests_unanswered = 0
        self.backoff.reset()
        self._link.up()
        self._bound.set()
        s = self._settings
        log.info("cmpp bind=%s logged in to %s:%s (%s)", self.name, s.host, s.port, s.protocol)
        self.client.wake()
        tasks = [
            asyncio.create_task(self._read(reader, writer, decoder), name=f"cmpp-read-{self.name}"),
            asyncio.create_task(self._send_parts(writer), name=f"cmpp-send-{self.name}"),
            asyncio.create_task(self._keepalive(writer), name=f"cmpp-alive-{self.name}"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the reason the link ended, if any
        finally:
            await lifecycle.cancel_all(tasks)

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: Decoder
    ) -> None:
        s = self._settings
        stamp = timestamp(datetime.now())
        source = authenticator_source(s.sp_id, s.secret, stamp)
        seq = self._send(writer, Connect(s.sp_id, source, self.version, stamp))
        async with asyncio.timeout(s.response_timeout_s):
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    raise EOFError("the ISMG closed the connection during login")
                decoder.feed(data)
                pdu = decoder.next_pdu()
                if pdu is not None:
                    break
        body = pdu.body
        if not isinstance(body, ConnectResp) or pdu.sequence != seq:
            raise RemoteCmppError(pdu.header.command_id, pdu.sequence, "not our CONNECT_RESP")
        if body.status != ConnectStatus.OK:
            try:
                reason = ConnectStatus(body.status).name
            except ValueError:
                reason = f"status {body.status}"
            raise LoginRefused(f"{reason} (sp_id={s.sp_id}, {s.protocol})")
        if body.authenticator != authenticator_ismg(body.status, source, s.secret, self.version):
            log.warning("cmpp bind=%s the ISMG's AuthenticatorISMG does not match", self.name)
        if decoder.buffered:  # the ISMG may send right behind its answer
            await self._dispatch_buffered(decoder, writer)

    def _lost(self, writer: asyncio.StreamWriter) -> None:
        """The connection is gone: every part it held goes back in line."""
        self._bound.clear()
        if self._writer is writer:
            self._writer = None
        writer.close()
        while not self._queue.empty():
            self._queue.get_nowait()
        decisions = self.window.connection_lost()
        for decision in decisions:
            self.client.decided(self, decision)
        if decisions:
            log.warning("cmpp bind=%s link lost: %d parts back in line", self.name, len(decisions))

    def _send(self, writer: asyncio.StreamWriter, body: Body, sequence: int | None = None) -> int:
        if sequence is None:
            self._seq = self._seq % MAX_SEQUENCE + 1
            sequence = self._seq
        writer.write(encode(body, sequence, self.version))
        return sequence

    async def _send_parts(self, writer: asyncio.StreamWriter) -> None:
        while True:
            key, part = await self._queue.get()
            pause = self.rate.pause_left(self._loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
            wait = self.rate.take(self._loop.time())
            if wait > 0:
                await asyncio.sleep(wait)
            self._seq = seq = self._seq % MAX_SEQUENCE + 1
            try:
                data = encode(self._submit_body(part), seq, self.version)
            except LocalCmppError as exc:
                decision = self.window.build_failed(key)
                if decision is not None:
                    log.error("cmpp bind=%s cannot build CMPP_SUBMIT: %s", self.name, exc)
                    self.client.decided(self, decision)
                continue
            if self.window.sending(key, seq, self._loop.time()) is None:
                continue  # given back meanwhile (the link was lost)
            writer.write(data)
            await writer.drain()

    def _submit_body(self, part: Part) -> Submit:
        s = self._settings
        return Submit(
            pk_total=part.total,
            pk_number=part.index,
            registered_delivery=(
                REGISTERED_DELIVERY_REPORT if part.registered_delivery else REGISTERED_DELIVERY_NONE
            ),
            service_id=s.service_id,
            fee_user_type=s.fee_user_type,
            fee_terminal_id=s.fee_terminal_id,
            tp_udhi=TP_UDHI if part.esm_class & ESM_CLASS_UDHI else 0,
            msg_fmt=MsgFmt.UCS2,
            msg_src=s.msg_src or s.sp_id,
            fee_type=s.fee_type,
            fee_code=s.fee_code,
            src_id=part.source,
            dest_terminal_ids=(part.dest,),
            content=part.short_message,
        )

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: Decoder
    ) -> None:
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                raise EOFError("the ISMG closed the connection")
            self._last_rx = self._loop.time()
            decoder.feed(data)
            await self._dispatch_buffered(decoder, writer)

    async def _dispatch_buffered(self, decoder: Decoder, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                pdu = decoder.next_pdu()
            except MalformedMessage as exc:
                self._malformed(exc, writer)
                continue
            if pdu is None:
                return
            body = pdu.body
            if isinstance(body, SubmitResp):
                self._answered(pdu.sequence, body)
            elif isinstance(body, Deliver):
                self._store(pdu.raw, body.msg_id, writer)
            elif isinstance(body, ActiveTest):
                self._send(writer, ActiveTestResp(), pdu.sequence)
            elif isinstance(body, ActiveTestResp):
                self._tests_unanswered = 0
            elif isinstance(body, Terminate):
                self._send(writer, TerminateResp(), pdu.sequence)
                raise EOFError("the ISMG sent CMPP_TERMINATE")
            elif isinstance(body, TerminateResp):
                self._terminated.set()
            else:
                log.warning("cmpp bind=%s unexpected %s", self.name, type(body).__name__)

    def _answered(self, seq: int, resp: SubmitResp) -> None:
        message_id = msg_id_text(resp.msg_id) if resp.result == SubmitResult.OK else None
        decision = self.window.answer(seq, resp.result, message_id, self._loop.time())
        if decision is None:
            return
        if decision.throttled:
            self._count("flow_control")
        self.client.decided(self, decision)

    def _malformed(self, exc: MalformedMessage, writer: asyncio.StreamWriter) -> None:
        raw = exc.raw
        if exc.command_id == CommandId.DELIVER and len(raw) >= HEADER_LENGTH + MSG_ID_SIZE:
            # Stored anyway (the inbound worker keeps it as an orphan, with the reason)
            # and answered, so the ISMG does not send it again and again.
            msg_id = int.from_bytes(raw[HEADER_LENGTH : HEADER_LENGTH + MSG_ID_SIZE], "big")
            log.warning("cmpp bind=%s malformed CMPP_DELIVER kept: %s", self.name, exc.reason)
            self._store(raw, msg_id, writer)
            return
        self._count("malformed")
        log.warning("cmpp bind=%s skipped a malformed message: %s", self.name, exc)

    def _store(self, raw: bytes, msg_id: int, writer: asyncio.StreamWriter) -> None:
        # In a task of its own, so the next message is read meanwhile; the answer goes
        # out only once the message is stored.
        task = asyncio.create_task(self._store_then_answer(raw, msg_id, writer))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _store_then_answer(
        self, raw: bytes, msg_id: int, writer: asyncio.StreamWriter
    ) -> None:
        sequence = int.from_bytes(raw[8:12], "big")
        try:
            await self._sink(self.name, raw)
        except Exception as exc:
            # Not acknowledged: drop the link, the ISMG delivers it again afterwards.
            log.error("cmpp bind=%s could not store CMPP_DELIVER: %r", self.name, exc)
            writer.transport.abort()
            return
        if writer is not self._writer or writer.is_closing():
            return  # the link it came on is gone: the ISMG will deliver it again
        try:
            self._send(writer, DeliverResp(msg_id, 0), sequence)
        except (OSError, LocalCmppError) as exc:
            log.warning("cmpp bind=%s CMPP_DELIVER_RESP not sent: %r", self.name, exc)

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        s = self._settings
        while True:
            await asyncio.sleep(min(1.0, s.active_test_s / 4))
            now = self._loop.time()
            if self._tests_unanswered == 0:
                if now - self._last_rx >= s.active_test_s:
                    self._send(writer, ActiveTest())
                    self._tests_unanswered, self._test_sent_at = 1, now
            elif now - self._test_sent_at >= s.response_timeout_s:
                if self._tests_unanswered >= ACTIVE_TEST_TRIES:
                    raise TimeoutError(f"{ACTIVE_TEST_TRIES} CMPP_ACTIVE_TEST unanswered")
                self._send(writer, ActiveTest())
                self._tests_unanswered += 1
                self._test_sent_at = now

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def stats(self) -> dict[str, int]:
        """What this bind counted (flow control answers, malformed messages)."""
        return dict(self.counts)
