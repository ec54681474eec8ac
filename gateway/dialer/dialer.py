"""The callback dialer: unsatisfied citizens called back through Asterisk, to a free agent.

One loop per process (``minyi run --workers dialer``), every ``tick_s``:

1. due callbacks move from the waiting list to their unit's queue (Redis, priority then
   age; the unit queue is the longest configured unit code the survey's unit starts with);
2. within calling hours, for each unit queue: as many callbacks are claimed (state
   ``calling``) as the queue has free agents minus calls already dialled for it and not
   yet with an agent (progressive pacing: never more calls than free agents), and each
   is originated over AMI with ``ChannelId`` = the callback id;
3. AMI events follow every call (:class:`gateway.dialer.calls.CallTracker`); when the
   citizen's channel is gone the attempt's outcome, recordings and next step are stored
   in one Redis function call (``callback.attempt`` + the survey transition + the ASR job).

Nothing is dialled twice: a claim is recorded (``cb:active``) before the Originate, and
after an AMI reconnect or a process restart every recorded call is looked up among the
live channels: still up -> followed again; gone -> stored as ``lost`` (an attempt whose
result is unknown, retried later like any failed attempt). An Originate is never re-sent.

Recording names (dialplans/README.md): ``<recordings_dir>/<YYYYMMDD>_<callback id>.wav``
(both sides mixed), ``..-citizen.wav`` (heard from the citizen), ``..-agent.wav`` (sent
to the citizen: greeting and agent), ``..-reason.wav`` (IVR reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from gateway import lifecycle, logs
from gateway.config.dialer import DialerSettings, rewrite
from gateway.dialer.agents import ON_CALL, AgentDirectory, agent_states
from gateway.dialer.ami import (
    AmiClient,
    AmiConnectionLost,
    AmiError,
    OriginateOutcomeUnknown,
    OriginateRequest,
)
from gateway.dialer.asterisk import (
    CALLBACK_CONTEXT,
    IVR_CONTEXT,
    VAR_ATTEMPT_ID,
    VAR_CALLER_NAME,
    VAR_REC_BASENAME,
    VAR_SURVEY_ID,
    VAR_UNIT,
)
from gateway.dialer.attempts import (
    attempt_result,
    new_callback_id,
    rec_base,
    recording_files,
    settled_files,
)
from gateway.dialer.calls import (
    CallOutcome,
    CallTracker,
    QueueBoard,
    TrackedCall,
    agent_in_call,
    capacity,
)
from gateway.dialer.store import CallbackStore, Claim, claim_from_active
from gateway.privacy import mask_phone
from gateway.store.surveys import Store, iso

log = logs.logger(__name__)

IVR_QUEUE = "ivr"
OWNER_TTL_S = 15
HEARTBEAT_S = 5.0
LEASE_TTL_S = 15
LEASE_RETRY_S = 2.0
ADOPT_EVERY_S = 10.0
# After the citizen's channel is gone, wait this long for the Originate verdict.
SETTLE_GRACE_S = 2.0
# Recording files are closed by MixMonitor shortly after the hangup.
RECORDING_SETTLE_S = 3.0
_UNSAFE_VAR = re.compile(r"[^-A-Za-z0-9_.:]")


@dataclass
class ActiveCall:
    """A claimed callback: being dialled, ringing, queued or talking."""

    claim: Claim
    call: TrackedCall
    queue: str
    rec_base: str
    claimed_at: float
    originated_at: float | None = None
    finishing: bool = False


@dataclass
class DialerStats:
    originated: int = 0
    connected: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    recovered: int = 0
    lost: int = 0


class Dialer:
    """The callback dialer worker."""

    def __init__(
        self,
        settings: DialerSettings,
        store: Store,
        tz: ZoneInfo,
        *,
        owner: str | None = None,
        on_originate: Callable[[Claim, float], None] | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.callbacks = CallbackStore(store)
        self.tz = tz
        self.owner = owner or f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
        self.tracker = CallTracker()
        self.board = QueueBoard(wrapup_s=settings.wrapup_s)
        self.active: dict[str, ActiveCall] = {}
        self.stats = DialerStats()
        self._on_originate = on_originate
        self._clock = clock or (lambda: datetime.datetime.now(self.tz))
        self._wake = asyncio.Event()
        self._recovered: list[Mapping[str, Any]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.ami = AmiClient(settings.ami, self._on_event, self._on_connected)
        self._units = tuple(f"unit:{u}" for u in settings.units)
        self._pbx = f"{settings.ami.host}:{settings.ami.port}"
        self.leading = False
        self._lease_checked = 0.0
        # Presence: every configured agent (and any member seen) has a state; each change
        # is stored and goes on the feed as agent.state. Last published state per agent.
        self.directory = AgentDirectory.from_settings(settings.asterisk)
        self._agents_known: set[str] = set(self.directory.agents)
        self.agents: dict[str, str] = {}
        self._agent_calls: dict[str, str | None] = {}

    # --- life cycle -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Dial until ``stop`` is set; calls in progress go on in Asterisk and are
        adopted by this or another dialer later (their claims stay recorded).

        One dialer per Asterisk dials at a time (a lease in Redis): pacing counts the
        calls this process placed, so two dialers would each fill the same free agents.
        Others wait as hot standbys and take over, adopting the calls, when the lease
        of the one dialling runs out.
        """
        last_beat = last_adopt = 0.0
        outage = lifecycle.Outage(log, "dialer tick", backoff=lifecycle.Backoff(1.0))
        try:
            while not stop.is_set():
                try:
                    if not await self._lead():
                        await self._step_down()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), LEASE_RETRY_S)
                        continue
                    await self.ami.start()
                    now = time.monotonic()
                    if now - last_beat >= HEARTBEAT_S:
                        await self.callbacks.heartbeat(self.owner, OWNER_TTL_S)
                        last_beat = now
                    if self.ami.connected and (
                        self._recovered is not None or now - last_adopt >= ADOPT_EVERY_S
                    ):
                        # Here, not in the AMI callback: adoption must never run while a
                        # claim of this loop is between Redis and self.active.
                        channels, self._recovered = self._recovered, None
                        await self._adopt_orphans(channels)
                        last_adopt = now
                    await self._tick()
                    outage.over()
                except (AmiError, *lifecycle.OUTAGES) as exc:
                    await outage.wait(exc, stop)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.tick_s)
        finally:
            await self.ami.stop()
            with contextlib.suppress(asyncio.CancelledError):  # as before: the lease goes back
                await lifecycle.cancel_all(list(self._tasks))
            with contextlib.suppress(RedisError, OSError):
                # A standby takes over at once and adopts the calls still going on.
                await self.callbacks.release_lease(self._pbx, self.owner)
                await self.callbacks.forget_owner(self.owner)

    async def _lead(self) -> bool:
        """Hold (or take) the lease on this Asterisk; refreshed at most every HEARTBEAT_S."""
        now = time.monotonic()
        if self.leading and now - self._lease_checked < HEARTBEAT_S:
            return True
        self.leading = await self.callbacks.lease(self._pbx, self.owner, LEASE_TTL_S)
        self._lease_checked = now
        if self.leading and not self.ami.connected:
            log.info("dialer %s dials for %s", self.owner, self._pbx)
        return self.leading

    async def _step_down(self) -> None:
        """Not (or no longer) the dialer of this Asterisk: let go of AMI and of the
        calls in progress (the dialer that now leads adopts them)."""
        if self.active or self.ami.connected:
            log.warning("dialer %s lost the lease for %s; standing by", self.owner, self._pbx)
        await self.ami.stop()
        self.active.clear()
        self.tracker = CallTracker()
        self.agents.clear()  # the next leader publishes from what it sees
        self._agent_calls.clear()
        await self.callbacks.forget_owner(self.owner)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def health(self) -> dict[str, Any]:
        """For /healthz: is this the dialer of its Asterisk, is AMI up, what is going on."""
        now = time.time()
        return {
            "leading": self.leading,
            "ami_connected": self.ami.connected,
            "ami_connects": self.ami.connects,
            "calls_in_progress": len(self.active),
            "free_agents": {q: len(self.board.free(q, now)) for q in sorted(self.board.queues())},
            "agents": dict(sorted(self.agents.items())),
            "calling_hours_open": self.calling_hours_open(),
            "originated": self.stats.originated,
            "outcomes": dict(self.stats.outcomes),
        }

    # --- pacing and dialling ----------------------------------------------------------
    def pending(self) -> dict[str, int]:
        """Calls dialled per agent queue that have not reached an agent (nor ended)."""
        out: dict[str, int] = {}
        for a in self.active.values():
            if a.queue != IVR_QUEUE and a.call.agent is None and not a.call.ended:
                out[a.queue] = out.get(a.queue, 0) + 1
        return out

    def calling_hours_open(self) -> bool:
        return self.settings.calling_hours.open(self._clock())

    async def _tick(self) -> None:
        s = self.settings
        await self.callbacks.promote(s.units, s.default_unit)
        if self.ami.connected:
            await self._publish_agents()
        if not self.ami.connected or not self.calling_hours_open():
            return
        now = time.time()
        pending = self.pending()
        for queue in self._units:
            asterisk_queue = "minyi-unit-" + queue.removeprefix("unit:")
            room = capacity(self.board, asterisk_queue, pending, now)
            if room > 0:
                await self._claim_and_dial(queue, room)
                pending = self.pending()
        ivr_active = sum(1 for a in self.active.values() if a.queue == IVR_QUEUE)
        if s.ivr_max_calls - ivr_active > 0:
            await self._claim_and_dial(IVR_QUEUE, s.ivr_max_calls - ivr_active)

    async def _publish_agents(self) -> None:
        """Store each agent whose state changed since the last tick (``agent.state`` on
        the feed). From the board the pacing uses, so ``free`` means "would be dialled
        for"; wrap-up ending is seen here, by time, the rest arrives as AMI events."""
        self._agents_known.update(m.name for m in self.board.members.values())
        # The callback each agent took (AgentConnect): named on its on_call state, so the
        # desk knows whose call it is as soon as the agent answers.
        taken = {a.call.agent: a for a in self.active.values() if a.call.agent and not a.call.ended}
        for agent, (state, payload) in agent_states(
            self.board, self._agents_known, time.time()
        ).items():
            call = taken.get(agent) if state == ON_CALL else None
            if call is not None:
                payload["callback_id"] = call.claim.callback_id
                payload["survey_id"] = call.claim.survey_id
            cid = payload.get("callback_id")
            if self.agents.get(agent) == state and self._agent_calls.get(agent) == cid:
                continue
            await self.callbacks.agent_state(agent, state, payload)
            self.agents[agent], self._agent_calls[agent] = state, cid
            log.info("agent %s %s %s", agent, state, cid or "")

    async def _claim_and_dial(self, queue: str, room: int) -> None:
        ids = [new_callback_id() for _ in range(room)]
        claims = await self.callbacks.claim(queue, ids, self.owner)
        when = self._clock()
        for claim in claims:
            active = ActiveCall(
                claim=claim,
                call=self.tracker.track(claim.callback_id),
                queue=queue if queue == IVR_QUEUE else "minyi-unit-" + queue[5:],
                rec_base=rec_base(claim.callback_id, when),
                claimed_at=time.time(),
            )
            self.active[claim.callback_id] = active
            self._spawn(self._originate(active), f"originate-{claim.callback_id}")

    async def _originate(self, active: ActiveCall) -> None:
        claim, s = active.claim, self.settings
        request = OriginateRequest(
            channel_id=claim.callback_id,
            # the carrier's numbering: a 0 for long distance, an area code dropped, ...
            number=rewrite(claim.phone, s.number_rules),
            trunk=s.trunk,
            dial_string=s.dial_string,
            context=IVR_CONTEXT if claim.kind == "ivr" else CALLBACK_CONTEXT,
            variables={
                VAR_SURVEY_ID: _UNSAFE_VAR.sub("", claim.survey_id)[:64],
                VAR_ATTEMPT_ID: claim.callback_id,
                VAR_REC_BASENAME: active.rec_base,
                VAR_UNIT: active.queue.removeprefix("minyi-unit-") if claim.kind != "ivr" else "",
            },
            ring_timeout_s=s.ring_timeout_s,
            caller_id=s.caller_id,
        )
        if claim.kind != "ivr" and s.agent_caller_name and claim.phone:
            # "__": inherited by the agent's leg, whose INVITE shows it (minyi-agent-predial)
            name = s.agent_caller_name.replace("{number}", mask_phone(claim.phone))
            request = dataclasses.replace(
                request, variables={**request.variables, "__" + VAR_CALLER_NAME: name}
            )
        try:
            request.fields()
        except ValueError as exc:
            log.error("callback %s cannot be dialled: %s", claim.callback_id, exc)
            self.tracker.refused(claim.callback_id, "invalid")
            await self._finish(active, detail="invalid_number_format")
            return
        try:
            await self.ami.originate(request)
        except OriginateOutcomeUnknown:
            # Maybe ringing: the recovery snapshot after the reconnect decides.
            log.warning("callback %s: originate outcome unknown", claim.callback_id)
            return
        except AmiConnectionLost:
            await self._finish(active, detail="ami_unavailable", uncount=True)
            return
        except AmiError as exc:
            log.warning("callback %s: originate refused: %s", claim.callback_id, exc)
            self.tracker.refused(claim.callback_id, "refused")
            await self._finish(active, detail="originate_refused")
            return
        active.originated_at = time.time()
        self.stats.originated += 1
        if self._on_originate is not None:
            self._on_originate(claim, active.originated_at)

    # --- events -------------------------------------------------------------------------
    def _on_event(self, event: Mapping[str, Any]) -> None:
        name = event.get("Event")
        if isinstance(name, str) and name.startswith("QueueMember"):
            self.board.feed(event)
            self._wake.set()
            return
        call = self.tracker.feed(event, time.time())
        if call is None:
            return
        if name == "AgentConnect" and call.agent_interface and not call.ended:
            self.board.busy(call.agent_interface, call.channel_id)
            self._wake.set()  # the desk's on_call names the callback now, not next tick
        elif call.ended and call.agent_interface:
            self.board.released(call.agent_interface, call.channel_id)
        if name == "AgentConnect" and call.agent:
            # the agent's screen pop (gateway/desk/): within a second of the answer
            self._spawn(self._tell_desk("pop", call.channel_id, call.agent), "desk-pop")
        active = self.active.get(call.channel_id)
        if active is None or active.finishing:
            return
        if call.settled:
            self._spawn(self._finish(active), f"finish-{call.channel_id}")
        elif call.ended or call.originate_failed:
            self._spawn(self._settle_later(active), f"settle-{call.channel_id}")

    async def _settle_later(self, active: ActiveCall) -> None:
        await asyncio.sleep(SETTLE_GRACE_S)
        if not active.finishing:
            self.tracker.ended_unseen(active.call.channel_id)
            await self._finish(active)

    async def _on_connected(self) -> None:
        """After every (re)connect: re-read channels and queue members; settle what
        ended while we were away; adopt calls of dead dialers."""
        channels, queues = await self.ami.snapshot()
        self.board.load(queues)
        for call in self.tracker.reconcile(channels):
            active = self.active.get(call.channel_id)
            if active is not None and not active.finishing:
                self._spawn(self._finish(active, detail="ended_while_disconnected"), "settle")
        self._recovered = channels
        self._wake.set()

    async def _adopt_orphans(self, channels: list[Mapping[str, Any]] | None) -> None:
        """Calls recorded as in progress whose dialer is gone (or is this process after
        a restart): followed again if their channel is live, else stored as lost."""
        records = await self.callbacks.active()
        orphans = {}
        for cid, rec in records.items():
            if cid in self.active:
                continue
            owner = str(rec.get("owner", ""))
            if owner != self.owner and await self.callbacks.owner_alive(owner):
                continue
            orphans[cid] = rec
        if not orphans:
            return
        if channels is None:
            channels, _queues = await self.ami.snapshot()
        live = {str(c.get("Uniqueid")): c for c in channels}
        for cid, rec in orphans.items():
            claim = claim_from_active(cid, rec)
            queue = str(rec.get("queue", ""))
            channel = live.get(cid)
            call = self.tracker.adopt(
                cid,
                live=channel is not None,
                up=channel is not None and channel.get("ChannelState") == "6",  # Up
                agent=agent_in_call(cid, channels, self.board) if channel is not None else None,
            )
            if call.agent_interface and not call.ended:
                self.board.busy(call.agent_interface, cid)
            active = ActiveCall(
                claim=claim,
                call=call,
                queue=IVR_QUEUE if queue == IVR_QUEUE else "minyi-unit-" + queue[5:],
                rec_base=rec_base(cid, _iso_date(str(rec.get("at", "")), self.tz)),
                claimed_at=time.time(),
            )
            self.active[cid] = active
            self.stats.recovered += 1
            if channel is not None:
                log.info("callback %s adopted: still live", cid)
            else:
                log.info("callback %s adopted: gone, stored as lost", cid)
                self._spawn(self._finish(active, detail="dialer_restarted"), "adopt")

    async def _finish(self, active: ActiveCall, detail: str = "", uncount: bool = False) -> None:
        if active.finishing:
            return
        active.finishing = True
        claim, call = active.claim, active.call
        recordings = await self._recordings(active, call)
        r = attempt_result(
            claim,
            call,
            recordings,
            self.settings,
            time.time(),
            self._iso,
            detail=detail,
            uncount=uncount,
        )
        try:
            status = await self.callbacks.result(
                claim,
                r.next_state,
                r.payload,
                r.transition,
                retry_at=r.retry_at,
                asr_job=r.asr_job,
                rating=r.rating,
                uncount=uncount,
                next_kind=r.next_kind,
            )
        except Exception:
            log.exception("callback %s: storing the result failed; retrying", claim.callback_id)
            active.finishing = False
            self._spawn(self._finish_later(active, detail, uncount), "finish-retry")
            return
        self.active.pop(claim.callback_id, None)
        self.tracker.forget(claim.callback_id)
        if call.agent_interface:  # ended unseen (a lost AMI link) releases it here
            self.board.released(call.agent_interface, call.channel_id)
        self.stats.outcomes[r.outcome.value] = self.stats.outcomes.get(r.outcome.value, 0) + 1
        if r.outcome is CallOutcome.CONNECTED:
            self.stats.connected += 1
            if call.agent:
                await self._tell_desk("ended", claim.callback_id, call.agent)
        if r.outcome is CallOutcome.LOST:
            self.stats.lost += 1
        log.info(
            "callback %s attempt=%d number=%s outcome=%s next=%s %s",
            claim.callback_id,
            claim.attempt,
            mask_phone(claim.phone) if claim.phone else "-",
            r.outcome.value,
            r.next_state,
            status,
        )
        self._wake.set()

    async def _tell_desk(self, kind: str, callback_id: str, agent: str) -> None:
        """The agent's desk learns of the call; a failure costs the pop, never the call."""
        try:
            await self.callbacks.desk_call(kind, callback_id, agent)
        except Exception as exc:
            log.warning("callback %s: the desk of %s was not told (%s)", callback_id, agent, exc)

    async def _finish_later(self, active: ActiveCall, detail: str, uncount: bool) -> None:
        """Store a result again after Redis failed us (it is never dropped)."""
        await asyncio.sleep(SETTLE_GRACE_S)
        await self._finish(active, detail, uncount)

    async def _recordings(self, active: ActiveCall, call: TrackedCall) -> dict[str, Any]:
        if not call.answered:
            return {}
        files = recording_files(
            self.settings.recordings_dir, active.rec_base, reason=bool(call.reason_recording)
        )
        return await asyncio.to_thread(settled_files, files, RECORDING_SETTLE_S)

    def _iso(self, ts: float | None) -> str | None:
        return None if ts is None else iso(ts, self.tz)


def _iso_date(text: str, tz: ZoneInfo) -> datetime.datetime:
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return datetime.datetime.now(tz)
