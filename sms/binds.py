"""The seam between the SMS side and the wire: what a bind of any protocol offers, and
the client that spreads surveys over binds.

The sender and the inbound worker know nothing of SMPP or CMPP. They use this:

* `SmsClient.choose(candidates)` picks the bind a survey goes through (one survey,
  one bind), `submit(part, bind)` gives a part to it and resolves to a
  `SubmitOutcome` (accepted with a message id, or refused for good), `stored(part)`
  says the outcome is in Redis (only then does an accepted part give back its slot);
* every bind hands each inbound message (a receipt or a reply), raw, to the sink it
  was built with, before it acknowledges it; `sms.inbound` decodes it by the
  protocol stored with it;
* `bound`, `link` (up or down, since when, the last error) and `stats()` for health
  and metrics.

A protocol is one codec and one bind class implementing `SmsBind`; the pure window
(`sms.smpp.window`: slots, throttling, retries, what a lost link gives back) is the
same for all, and each bind reports its `Decision`s here (`decided`), where they
become retries or outcomes.

A part may be taken by a bind only once ``before_wire`` has cleared it (the sender
records in Redis that it may reach the SMS center): after a crash, only a part so
recorded may have, so only such a part is reported as possibly sent twice when it
goes again. Clearing runs ahead of the dispatch, for the first parts of each bind's
line (up to the binds' total window), in overlapping batches, so that it adds
no round trip to a part's way to the wire; a crash can thus leave at most that many
cleared parts unsent (each then reported although it never went out), next to the
window of those on the wire. While Redis is away nothing new is cleared: the parts
cleared already still go out.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import lifecycle, logs
from gateway.config import CmppBind, SmppBind
from sms.smpp.window import Decision, Part, Verdict

log = logs.logger(__name__)

#: Stores one raw inbound message of bind `name` before the bind acknowledges it.
InboundSink = Callable[[str, bytes], Awaitable[None]]
#: Records parts as "may reach the SMS center" before a bind may take them.
BeforeWire = Callable[[Sequence[Part]], Awaitable[None]]


@dataclass(frozen=True)
class SubmitOutcome:
    """The final answer for one part."""

    bind: str
    smsc: str
    status: int  # 0 = accepted; window.BUILD_FAILED = the message could not be built
    message_id: str
    tries: int
    wire_sends: int  # times it went out on the wire
    reason: str = ""  # the refusal's name, in the bind's protocol ("" when accepted)
    # It went out and its answer was lost (a dropped link, a timeout), so the SMS
    # center may have it twice: reported on the feed. A refusal that asked us to slow
    # down (SMPP throttling, CMPP Result 8) reached nobody and does not count.
    resent: bool = False


class LinkState:
    """Whether a bind's session is up, since when, and why it last went down: what
    /healthz says of each bind (a bind reports, it never decides from this)."""

    def __init__(self) -> None:
        self.bound = False
        self.since = time.time()  # unix time of the last change (or of the start)
        self.last_error = ""  # why the link last failed or dropped ("" = never)
        self.last_error_at: float | None = None

    def up(self) -> None:
        """Logged in."""
        if not self.bound:
            self.bound, self.since = True, time.time()

    def down(self, error: str = "") -> None:
        """Not logged in (any more); ``error`` says why ("" for our own logout)."""
        now = time.time()
        if error:
            self.last_error, self.last_error_at = error, now
        if self.bound:
            self.bound, self.since = False, now

    def report(self) -> dict[str, Any]:
        """For the status report: bound, since, last_error, last_error_at."""
        return {
            "bound": self.bound,
            "since": round(self.since, 3),
            "last_error": self.last_error,
            "last_error_at": None if self.last_error_at is None else round(self.last_error_at, 3),
        }


class SmsBind(Protocol):
    """One session to an SMS center, in some protocol (SMPP: `sms.smpp.client.Bind`;
    CMPP: `sms.cmpp.bind.CmppBind`)."""

    name: str

    @property
    def settings(self) -> SmppBind | CmppBind:
        """The bind's configuration."""

    @property
    def can_send(self) -> bool:
        """Whether this bind submits (an SMPP receiver does not)."""

    @property
    def bound(self) -> bool:
        """Whether the session is up and logged in now."""

    @property
    def link(self) -> LinkState:
        """Up or down since when, and the last error (for /healthz)."""

    @property
    def outstanding(self) -> int:
        """Window slots in use."""

    @property
    def tps(self) -> float:
        """The submit rate now (lowered while the SMS center asks us to slow down)."""

    def has_room(self) -> bool:
        """Whether this bind can take a part now."""

    def take(self, part: Part) -> None:
        """Put a part in a window slot and send it (the caller checked has_room)."""

    def expire(self, now: float) -> None:
        """Parts whose answer is overdue go back in line (reported via `decided`)."""

    def refusal(self, status: int) -> str:
        """A name for a refusal status of this protocol, for the feed and the logs."""

    async def run(self) -> None:
        """Connect, log in, and reconnect for ever (cancelled to end)."""

    async def wait_bound(self) -> None:
        """Return once the session is bound."""

    async def stop(self) -> None:
        """Log out (unbind / terminate) and close."""


@dataclass(eq=False)
class _Job:
    part: Part
    bind: str
    future: asyncio.Future[SubmitOutcome]
    resent: int = 0


class SmsClient:
    """Every bind, the line of parts waiting for each, and the futures of the parts."""

    def __init__(self, before_wire: BeforeWire | None = None) -> None:
        self.binds: dict[str, SmsBind] = {}
        #: Awaited with parts before a bind may take them (see the module docstring).
        self.before_wire = before_wire
        self._lines: dict[str, deque[Part]] = {}
        self._jobs: dict[Part, _Job] = {}
        self._wake = asyncio.Event()
        self._to_clear = asyncio.Event()
        self._clear_tasks: set[asyncio.Task[None]] = set()
        self._clearing = lifecycle.Outage(
            log, "sms: recording parts before they go out", backoff=lifecycle.Backoff(0.2, 5.0)
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._rr = 0
        self.throttled = 0
        self.resent = 0
        self.accepted = 0
        self.refused = 0

    def add(self, bind: SmsBind) -> None:
        """Add a bind (before start())."""
        self.binds[bind.name] = bind
        self._lines[bind.name] = deque()

    @property
    def senders(self) -> list[SmsBind]:
        """The binds that can submit."""
        return [b for b in self.binds.values() if b.can_send]

    def capacity(self) -> int:
        """Total window of the binds that can send."""
        return sum(b.settings.window for b in self.senders)

    def outstanding(self) -> int:
        """Parts taken by binds and not yet answered, plus those waiting in line."""
        return sum(b.outstanding for b in self.binds.values()) + sum(map(len, self._lines.values()))

    async def start(self) -> None:
        """Connect every bind (in the background; they reconnect by themselves)."""
        for b in self.binds.values():
            self._tasks.append(asyncio.create_task(b.run(), name=f"bind-{b.name}"))
        self._tasks.append(asyncio.create_task(self._dispatch(), name="sms-dispatch"))
        self._tasks.append(asyncio.create_task(self._clear_ahead(), name="sms-clear"))
        self._tasks.append(asyncio.create_task(self._watch(), name="sms-watch"))

    async def run(self, stop: asyncio.Event) -> None:
        """The client's loops as one worker (gateway.lifecycle): until ``stop`` or
        `stop()`, wait; a bind's loop or the dispatch ending by itself is a bug (each
        reconnects or waits out Redis for ever), raised here so that the service stops
        the process and its supervisor starts it again, rather than the bind staying
        down in silence."""
        stopping = asyncio.create_task(stop.wait(), name="sms-client-stop")
        try:
            await asyncio.wait([stopping, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if stop.is_set() or self._stopping:
            return
        for task in self._tasks:
            if not task.done():
                continue
            name = task.get_name()
            if task.cancelled():
                raise RuntimeError(f"{name} was cancelled: it must run until stopped")
            error = task.exception()
            if error is not None:
                raise RuntimeError(f"{name} ended by itself") from error
            raise RuntimeError(f"{name} returned: it must run until stopped")

    async def wait_bound(self, within_s: float) -> bool:
        """Wait until every bind is bound (tests, start-up readiness)."""
        try:
            async with asyncio.timeout(within_s):
                for b in self.binds.values():
                    await b.wait_bound()
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        """Log every bind out and close it."""
        self._stopping = True
        n = len(self.binds)
        for t in self._tasks[n:]:
            t.cancel()
        for b in self.binds.values():
            try:
                async with asyncio.timeout(5):
                    await b.stop()
            except (TimeoutError, OSError) as exc:
                log.warning("sms bind=%s logout failed: %r", b.name, exc)
        await lifecycle.cancel_all([*self._tasks, *self._clear_tasks])
        self._tasks.clear()

    def choose(self, candidates: Sequence[str]) -> str:
        """The bind a survey goes through: of `candidates` (all senders when empty),
        a bound one with the most room for its window, round robin among equals; an
        unbound one only when none is bound (its parts wait for the reconnect)."""
        pool = [self.binds[n] for n in candidates] if candidates else self.senders
        if not pool:
            raise LookupError("no bind can send")
        bound = [b for b in pool if b.bound] or pool
        self._rr += 1

        def load(i_b: tuple[int, SmsBind]) -> tuple[float, int]:
            i, b = i_b
            queued = b.outstanding + len(self._lines[b.name])
            return queued / max(1, b.settings.window), (i - self._rr) % len(bound)

        return min(enumerate(bound), key=load)[1].name

    def submit(self, part: Part, bind: str) -> asyncio.Future[SubmitOutcome]:
        """Queue a part for `bind`; the future resolves with its final outcome."""
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._jobs[part] = _Job(part, bind, future)
        self._lines[bind].append(part)
        self._to_clear.set()
        self._wake.set()
        return future

    def stored(self, part: Part) -> None:
        """The caller has stored the part's outcome: an accepted part gives back its
        window slot (until then a crash could make the SMS center get it twice)."""
        window = part.holds_slot_of
        if window is not None and window.stored(part):
            self.room_available()

    def decided(self, bind: SmsBind, d: Decision) -> None:
        """Carry out what a bind's window decided for one part."""
        part = d.part
        job = self._jobs.get(part)
        if d.verdict is Verdict.RETRY:
            if d.throttled:
                self.throttled += 1
            if d.resent:
                self.resent += 1
                if job is not None:
                    job.resent += 1
            if d.delay_s <= 0:
                self._requeue(part, bind.name)
            else:
                asyncio.get_running_loop().call_later(d.delay_s, self._requeue, part, bind.name)
        else:
            accepted = d.verdict is Verdict.ACCEPTED
            outcome = SubmitOutcome(
                bind.name,
                bind.settings.smsc,
                d.status,
                d.message_id,
                part.tries,
                part.wire_sends,
                "" if accepted else bind.refusal(d.status),
                resent=job is not None and job.resent > 0,
            )
            if accepted:
                self.accepted += 1
            else:
                self.refused += 1
            job = self._jobs.pop(part, None)
            if job is not None and not job.future.done():
                job.future.set_result(outcome)
        if d.frees_slot:
            self.room_available()

    def wake(self) -> None:
        """A bind has room now (it just logged in): look at the lines again."""
        self.room_available()

    def room_available(self) -> None:
        """A window slot is free: wake the dispatch (and the clearing, which keeps
        ahead of it)."""
        self._wake.set()
        self._to_clear.set()

    def _requeue(self, part: Part, bind: str) -> None:
        self._lines[bind].appendleft(part)
        self._wake.set()

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for name, line in self._lines.items():
                bind = self.binds[name]
                while line and bind.has_room():
                    if self.before_wire is not None and not line[0].cleared:
                        break  # _clear_ahead wakes us once it is
                    bind.take(line.popleft())

    def lookahead(self) -> int:
        """How many parts at the head of each line are cleared ahead of the dispatch:
        the binds' total window — enough to refill it when it frees up all at once,
        while the next ones are cleared (one Redis round trip, against the SMS
        center's). Every part cleared and not sent is reported after a crash although
        it never went out: no more of them than the window."""
        return max(1, self.capacity())

    async def _clear_ahead(self) -> None:
        """Keep the first parts of each line cleared: each batch of parts not yet
        cleared goes to ``before_wire`` in a task of its own (batches overlap: their
        records share pipelines), which wakes the dispatch once it is done."""
        while True:
            await self._to_clear.wait()
            self._to_clear.clear()
            before_wire = self.before_wire
            if before_wire is None:
                continue
            batch = [
                p
                for line in self._lines.values()
                for p in itertools.islice(line, self.lookahead())
                if not (p.cleared or p.clearing)
            ]
            if not batch:
                continue
            for part in batch:
                part.clearing = True
            task = asyncio.create_task(self._clear(before_wire, batch))
            self._clear_tasks.add(task)
            task.add_done_callback(self._clear_tasks.discard)

    async def _clear(self, before_wire: BeforeWire, batch: list[Part]) -> None:
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

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = asyncio.get_running_loop().time()
            for b in self.binds.values():
                b.expire(now)
            self._wake.set()  # a bind may have bound meanwhile

    def stats(self) -> dict[str, Any]:
        """Counters and per-bind state for /metrics and the health page."""
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "throttled": self.throttled,
            "resent": self.resent,
            "waiting": sum(map(len, self._lines.values())),
            "binds": {
                b.name: {
                    "protocol": b.settings.protocol,
                    "smsc": b.settings.smsc,
                    "can_send": b.can_send,
                    "can_receive": b.settings.mode != "transmitter",
                    **b.link.report(),
                    "outstanding": b.outstanding,
                    "tps": round(b.tps, 1),
                }
                for b in self.binds.values()
            },
        }
