"""The project's own SMS center: an SMPP 3.4 server for tests, the demo and benchmarks.

It binds ESMEs from an accounts table, answers submit_sm with configurable message-id
styles, sends delivery receipts (text, TLVs or both; late, early, lost or failed by
destination pattern), throttles, rejects, drops and hangs on demand, and injects MO
replies (UCS-2, GBK or ASCII; concatenated by 8/16-bit UDH, SAR TLVs or
message_payload) that it keeps re-sending until the ESME acknowledges them.

In-process tests drive `SmscSimulator` directly; other processes use the HTTP control
API (see `smsc.http`). Run it with::

    python -m smsc --port 2775 --control-port 2776 --account minyi:secret
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gateway import logs
from gateway.privacy import mask_phone
from sms.smpp.constants import (
    REGISTERED_DELIVERY_ALWAYS,
    REGISTERED_DELIVERY_MASK,
    REGISTERED_DELIVERY_ON_FAILURE,
    CommandStatus,
)
from sms.smpp.pdu import BindRequest, SubmitSm, SubmitSmResp
from smsc.messages import Encoding, Split, mo_parts, read_content, receipt
from smsc.outbox import Delivery, Outbox
from smsc.rules import (
    Behaviour,
    OutcomeRule,
    SubmitRecord,
    apply_changes,
    dlr_id,
    find_outcome,
    find_reject,
    resp_id,
)
from smsc.session import SmppSession

if TYPE_CHECKING:
    from aiohttp import web

log = logs.logger(__name__)


class SmscSimulator:
    """An in-process SMSC: start it on a loopback port and point an ESME at it.

    Everything it sees is recorded: `submits` (every answered submit_sm), `deliveries`
    (every receipt and MO message, with attempts and acknowledgement), `stats()`.
    """

    def __init__(
        self,
        accounts: Mapping[str, str],
        behaviour: Behaviour | None = None,
        *,
        id_start: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = dict(accounts)
        #: Seconds, for TPS limits and throttle windows; tests pass a fake one.
        self.clock = clock
        self.behaviour = behaviour or Behaviour()
        self.counters: Counter[str] = Counter()
        self.submits: list[SubmitRecord] = []
        self.sessions: dict[int, SmppSession] = {}
        self.outbox = Outbox(lambda: self.behaviour, self._receivers, self.counters, self._notify)
        self._changed = asyncio.Event()
        self._waiting = 0
        self.host = "127.0.0.1"
        self.port = 0
        self.control_port: int | None = None
        #: The number behind the next accepted message's ids (rendered per id_format).
        self.next_message_number = id_start
        self._next_session = 0
        self._mo_reference = 0
        self._seen: set[tuple[Any, ...]] = set()
        self._throttle_until = 0.0
        self._admitted = 0  # submit_sm that reached the throttle checks (throttle_every)
        self._drop_countdown: int | None = None
        self._drop_hard = False
        self._timers: set[asyncio.Handle] = set()
        self._server: asyncio.Server | None = None
        self._control: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        control_port: int | None = None,
        control_host: str = "127.0.0.1",
    ) -> None:
        """Listen for SMPP on host:port (0 = any free port, see `.port`), and serve the
        HTTP control API on control_host:control_port if one is given."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_session, host, port)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])
        if control_port is not None:
            from smsc.http import start_control

            self._control, self.control_port = await start_control(self, control_host, control_port)
        log.info(
            "smsc listening smpp=%s:%d control=%s accounts=%d",
            host,
            self.port,
            self.control_port,
            len(self.accounts),
        )

    async def stop(self) -> None:
        """Stop listening, close every connection, cancel every timer."""
        if self._control is not None:
            await self._control.cleanup()
            self._control = None
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions.values()):
            session.drop(hard=False)
        try:  # a peer that does not read would keep a graceful close waiting forever
            await self.wait_until(lambda: not self.sessions, limit=1.0)
        except TimeoutError:
            for session in list(self.sessions.values()):
                session.abort()
            await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self.outbox.close()
        log.info("smsc stopped")

    def _new_session(self) -> SmppSession:
        self._next_session += 1
        return SmppSession(self, self._next_session)

    # --- control -------------------------------------------------------------------

    def set_behaviour(self, **changes: Any) -> None:
        """Change knobs of `Behaviour` (rules may be given as dicts, as in JSON);
        `throttle_for=seconds` answers every submit_sm with ESME_RTHROTTLED for a while."""
        throttle = changes.pop("throttle_for", None)
        was_half_open = self.behaviour.half_open
        apply_changes(self.behaviour, changes)
        if throttle is not None:
            self.throttle_for(float(throttle))
        if changes:
            log.info("behaviour changed keys=%s", ",".join(sorted(changes)))
        if was_half_open and not self.behaviour.half_open:
            self.outbox.pump_all()

    def throttle_for(self, seconds: float) -> None:
        """Answer every submit_sm with ESME_RTHROTTLED for `seconds`."""
        self._throttle_until = self.clock() + seconds
        log.info("throttling everything for %.1fs", seconds)

    def drop_connections(self, after: int = 0, *, hard: bool = False) -> int:
        """Drop every connection now, or once `after` more submit_sm have been answered
        (the next one is then lost unanswered: a drop mid-batch). Without `hard` the
        answers already given are flushed first; `hard` resets the connection (RST) and
        may lose them.
        Returns the number of connections dropped now."""
        if after > 0:
            self._drop_countdown, self._drop_hard = after, hard
            log.info("drop armed after=%d hard=%s", after, hard)
            return 0
        self._drop_countdown = None
        sessions = [s for s in self.sessions.values() if not s.closing]
        for session in sessions:
            session.drop(hard)
        self.counters["drops"] += len(sessions)
        log.info("dropped connections count=%d hard=%s", len(sessions), hard)
        return len(sessions)

    def inject_mo(
        self,
        source: str,
        dest: str,
        text: str,
        *,
        encoding: Encoding = "ucs2",
        split: Split = "udh8",
        system_id: str | None = None,
        reverse: bool = False,
    ) -> list[int]:
        """Queue an MO message from citizen `source` to address `dest` (the gateway's
        source address, plus any extension digits). Long texts become several
        deliver_sm; `reverse` sends the parts last first. Returns the delivery ids."""
        target = self._route(system_id)
        self._mo_reference += 1
        parts = mo_parts(
            citizen=source,
            dest=dest,
            text=text,
            encoding=encoding,
            split=split,
            reference=self._mo_reference,
        )
        if reverse:
            parts.reverse()
        ids = [self.outbox.add("mo", target, part, source).id for part in parts]
        log.info(
            "mo queued citizen=%s dest=%s parts=%d encoding=%s split=%s system_id=%s",
            mask_phone(source),
            dest,
            len(parts),
            encoding,
            split,
            target,
        )
        return ids

    @property
    def deliveries(self) -> list[Delivery]:
        """Every receipt and MO message ever queued, in order."""
        return self.outbox.all

    def binds(self) -> list[dict[str, object]]:
        """The current connections and what they are bound as."""
        return [s.describe() for s in self.sessions.values()]

    def stats(self) -> dict[str, Any]:
        """Counters, current binds and the number of unacknowledged deliveries."""
        out: dict[str, Any] = dict(self.counters)
        out["submits_recorded"] = len(self.submits)
        out["pending_deliveries"] = self.outbox.pending_count()
        out["binds"] = self.binds()
        return out

    async def wait_until(self, predicate: Callable[[], bool], limit: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checking whenever the simulator records
        something (a submit, a delivery, an acknowledgement, a connection). `limit`
        only guards against a hang: TimeoutError means the condition never came."""
        async with asyncio.timeout(limit):
            while not predicate():
                self._changed.clear()
                self._waiting += 1
                try:
                    await self._changed.wait()
                finally:
                    self._waiting -= 1

    def _notify(self) -> None:
        if self._waiting:
            self._changed.set()

    # --- hooks from sessions ---------------------------------------------------------

    def _session_opened(self, session: SmppSession) -> None:
        self.sessions[session.number] = session
        self.counters["connections"] += 1
        self._notify()
        log.info("connection opened peer=%s session=%d", session.peer, session.number)

    def _session_closed(self, session: SmppSession) -> None:
        self.sessions.pop(session.number, None)
        self.outbox.session_closed(session)
        self._notify()
        log.info(
            "connection closed peer=%s session=%d system_id=%s submits=%d",
            session.peer,
            session.number,
            session.system_id,
            session.submits,
        )

    def _receivers(self, system_id: str) -> list[SmppSession]:
        return [
            s
            for s in self.sessions.values()
            if s.receiving and s.system_id == system_id and not s.closing
        ]

    def _route(self, system_id: str | None) -> str:
        if system_id is not None:
            if system_id not in self.accounts:
                raise ValueError(f"unknown system_id {system_id!r}")
            return system_id
        if len(self.accounts) == 1:
            return next(iter(self.accounts))
        for session in self.sessions.values():
            if session.receiving and session.system_id is not None:
                return session.system_id
        raise ValueError("several accounts and none bound as receiver: give system_id")

    def _authenticate(self, session: SmppSession, bind: BindRequest) -> int:
        if session.kind is not None:
            status: int = CommandStatus.ESME_RALYBND
        elif bind.system_id not in self.accounts:
            status = CommandStatus.ESME_RINVSYSID
        elif self.accounts[bind.system_id] != bind.password:
            status = CommandStatus.ESME_RINVPASWD
        else:
            session.system_id, session.kind = bind.system_id, bind.kind
            session.bound_at = time.time()
            self.counters["bind_ok"] += 1
            log.info(
                "bind ok peer=%s system_id=%s kind=%s",
                session.peer,
                bind.system_id,
                bind.kind.value,
            )
            return 0
        self.counters["bind_failed"] += 1
        log.warning(
            "bind refused peer=%s system_id=%s kind=%s status=%s",
            session.peer,
            bind.system_id,
            bind.kind.value,
            CommandStatus(status).name,
        )
        return status

    def _admit(self, session: SmppSession, body: SubmitSm) -> int:
        behaviour = self.behaviour
        if behaviour.window is not None and session.outstanding > behaviour.window:
            self.counters["queue_full"] += 1
            return CommandStatus.ESME_RMSGQFUL
        if behaviour.queue_full:
            self.counters["queue_full"] += 1
            return CommandStatus.ESME_RMSGQFUL
        now = self.clock()
        self._admitted += 1
        if (
            now < self._throttle_until
            or (behaviour.max_tps is not None and not session.take_token(behaviour.max_tps, now))
            or (behaviour.throttle_every and self._admitted % behaviour.throttle_every == 0)
        ):
            self.counters["throttled"] += 1
            return CommandStatus.ESME_RTHROTTLED
        rule = find_reject(behaviour, body.source_addr, body.dest_addr)
        if rule is not None:
            self.counters["rejected"] += 1
            return rule.status
        return 0

    def _submit(self, session: SmppSession, sequence: int, body: SubmitSm) -> None:
        self.counters["submit_sm"] += 1
        if self._drop_countdown is not None:
            if self._drop_countdown == 0:
                session.outstanding -= 1
                self.counters["lost_in_drop"] += 1
                self.drop_connections(hard=self._drop_hard)
                return
            self._drop_countdown -= 1
        status = self._admit(session, body)
        content = read_content(body)
        assert session.system_id is not None  # _submit is only called once bound
        record = SubmitRecord(
            index=len(self.submits),
            at=time.time(),
            system_id=session.system_id,
            session=session.number,
            sequence=sequence,
            source=body.source_addr,
            dest=body.dest_addr,
            data_coding=body.data_coding,
            esm_class=body.esm_class,
            registered_delivery=body.registered_delivery,
            short_message=body.short_message,
            udh=content.udh,
            text=content.text,
            part=content.part,
            tlvs=body.tlvs,
            status=status,
        )
        self.submits.append(record)
        self._notify()
        if status:
            session.respond(SubmitSmResp(), sequence, status)
            return
        self.counters["accepted"] += 1
        number = self.next_message_number
        self.next_message_number += 1
        record.message_id = resp_id(self.behaviour, number)
        record.dlr_message_id = dlr_id(self.behaviour, number)
        part = content.part
        key = (body.dest_addr, body.data_coding, content.payload, part and part[1:])
        if key in self._seen:
            record.duplicate = True
            self.counters["duplicates"] += 1
        else:
            self._seen.add(key)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "submit_sm accepted citizen=%s message_id=%s part=%s",
                mask_phone(body.dest_addr),
                record.message_id,
                part,
            )
        self._answer_accepted(session, sequence, record)

    def _answer_accepted(self, session: SmppSession, sequence: int, record: SubmitRecord) -> None:
        behaviour = self.behaviour
        outcome = find_outcome(behaviour, record.dest) or _DELIVERED
        wanted = record.registered_delivery & REGISTERED_DELIVERY_MASK
        # 5.2.17: a receipt on success or failure, or on failure only.
        receipt_due = (
            wanted == REGISTERED_DELIVERY_ALWAYS
            or (wanted == REGISTERED_DELIVERY_ON_FAILURE and outcome.stat != "DELIVRD")
        ) and (outcome.dlr and not (record.part and record.part[2] in outcome.lose_parts))
        resp = SubmitSmResp(record.message_id)
        if receipt_due and behaviour.dlr_before_resp:
            # The classic race: the receipt overtakes the submit_sm_resp.
            self._queue_receipt(record, outcome)
            session.respond(resp, sequence, after=lambda: self._accepted(record, outcome, None))
            return
        delay = behaviour.dlr_delay if outcome.delay is None else outcome.delay
        session.respond(
            resp,
            sequence,
            after=lambda: self._accepted(record, outcome, delay if receipt_due else None),
        )

    def _accepted(
        self, record: SubmitRecord, outcome: OutcomeRule, dlr_delay: float | None
    ) -> None:
        if dlr_delay is not None:
            self._later(dlr_delay, self._queue_receipt, record, outcome)
        auto = self.behaviour.auto_reply
        complete = record.part is None or record.part[2] == record.part[1]
        if auto is not None and complete and outcome.stat == "DELIVRD":
            self._later(auto.delay, self._auto_reply, record)

    def _queue_receipt(self, record: SubmitRecord, outcome: OutcomeRule) -> None:
        body = receipt(
            message_id=record.dlr_message_id,
            citizen=record.dest,
            gateway_addr=record.source,
            stat=outcome.stat,
            err=outcome.err,
            submitted_at=record.at,
            done_at=time.time(),
            text=record.text,
            mode=self.behaviour.dlr_mode,
        )
        self.outbox.add("dlr", record.system_id, body, record.dest, record.dlr_message_id)

    def _auto_reply(self, record: SubmitRecord) -> None:
        auto = self.behaviour.auto_reply
        text = None if auto is None else auto.choose(record.dest)
        if auto is None or not text:
            return
        self.inject_mo(
            record.dest,
            record.source,
            text,
            encoding=auto.encoding,
            split=auto.split,
            system_id=record.system_id,
        )

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.Handle

        def run() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, run) if delay > 0 else loop.call_soon(run)
        self._timers.add(handle)


_DELIVERED = OutcomeRule(pattern="")
