"""AMI connection for the callback dialer, on panoramisk 1.4, with its traps designed out.

What panoramisk does on its own, and what this module does instead:

- It reconnects on a fixed delay and, after a reconnect, re-sends every action that
  had no reply yet: an Originate among them would dial the citizen twice. Here every
  action is *forgettable* (never re-sent) and an action caught by a disconnect fails
  at once with :class:`AmiConnectionLost`; an Originate whose acceptance was not seen
  raises :class:`OriginateOutcomeUnknown`, so the caller re-reads the live channels
  (:meth:`AmiClient.snapshot`) and looks for its ChannelId instead of dialling again.
  Reconnects back off exponentially with jitter.
- It sends Pings but never checks them, so a half-open TCP connection (peer gone, no
  RST) looks alive forever. A watchdog here pings every ``ping_interval_s`` and drops
  the connection when no reply comes within ``ping_timeout_s``.
- An ``Async: true`` Originate's future resolves only with the final
  OriginateResponse, up to the whole ring time later, and that event goes to the
  pending action, never to event handlers. :meth:`AmiClient.originate` returns as soon
  as Asterisk has *accepted* the Originate, and the final OriginateResponse is handed
  to the event handler like any other event.
- It guesses from a reply's message whether more replies follow (``Action.multi``):
  QueueAdd's "Added interface to queue" reads as the start of an event list, so its
  future would never resolve. Actions known to have one reply are sent with
  ``as_list=False`` (:data:`_ONE_REPLY`).
- The caller sets ``ChannelId``: the citizen's channel then has ``Uniqueid`` =
  ``Linkedid`` = that id and every other channel of the call (the agent's) carries the
  same ``Linkedid``; :class:`CallTracker` correlates events with calls by those two.

AMI actions and events: https://docs.asterisk.org/Latest_API/API_Documentation/AMI_Actions/
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from gateway import lifecycle, logs
from gateway.config import AmiSettings
from gateway.dialer.calls import CallTracker, TrackedCall
from gateway.privacy import mask_phone

__all__ = [
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "CallTracker",
    "OriginateOutcomeUnknown",
    "OriginateRequest",
    "TrackedCall",
]

log = logs.logger(__name__)

Event = Mapping[str, Any]
EventHandler = Callable[[Event], None]

# Asterisk's ChannelId/Uniqueid may be up to AST_MAX_UNIQUEID (150) characters; we keep
# to characters that need no quoting anywhere (AMI headers, dialplan, file names).
_CHANNEL_ID_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,127}")
_NUMBER_RE: Final = re.compile(r"\+?[0-9]{3,20}")
# Originate Variable values are split on commas by Asterisk ("Variable: a=1,b=2").
_VAR_VALUE_RE: Final = re.compile(r"[^,\r\n]{0,200}")
_VAR_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Actions with one reply that panoramisk's heuristic would wait on for more.
_ONE_REPLY: Final = frozenset({"queueadd"})


class AmiError(Exception):
    """An AMI action failed (Asterisk answered with an error, or not at all)."""


class AmiConnectionLost(AmiError):
    """The connection dropped while the action was in flight; it will not be re-sent."""


class OriginateOutcomeUnknown(AmiConnectionLost):
    """The connection dropped before Asterisk accepted or refused the Originate.

    The call may or may not be ringing: look for ``channel_id`` in a snapshot after the
    reconnect (and in later events) before deciding to dial again.
    """

    def __init__(self, channel_id: str) -> None:
        super().__init__(f"originate {channel_id}: connection lost before the response")
        self.channel_id = channel_id


@dataclass(frozen=True)
class OriginateRequest:
    """One call attempt: dial ``number`` on ``trunk`` into ``context``,s,1.

    ``dial_string`` (``[dialer] dial_string``, checked by the config) replaces the
    ``PJSIP/<number>@<trunk>`` channel with the site's own route, ``${NUMBER}`` filled in.
    """

    channel_id: str
    number: str
    trunk: str
    context: str
    variables: Mapping[str, str] = field(default_factory=dict)
    ring_timeout_s: float = 30.0
    caller_id: str | None = None
    dial_string: str | None = None

    def fields(self) -> dict[str, Any]:
        """The Originate action's headers; raises ValueError on anything unsafe."""
        if not _CHANNEL_ID_RE.fullmatch(self.channel_id):
            raise ValueError(f"channel_id must match {_CHANNEL_ID_RE.pattern}")
        if not _NUMBER_RE.fullmatch(self.number):
            raise ValueError(f"number must be digits, got {mask_phone(self.number)}")
        for name, value in self.variables.items():
            if not _VAR_NAME_RE.fullmatch(name) or not _VAR_VALUE_RE.fullmatch(value):
                raise ValueError(f"variable {name!r}: no commas or newlines in values")
        out: dict[str, Any] = {
            "Action": "Originate",
            "Channel": self.dial_string.replace("${NUMBER}", self.number)
            if self.dial_string
            else f"PJSIP/{self.number}@{self.trunk}",
            "Context": self.context,
            "Exten": "s",
            "Priority": "1",
            "Async": "true",
            "ChannelId": self.channel_id,
            "Timeout": str(int(self.ring_timeout_s * 1000)),
            "Variable": [f"{k}={v}" for k, v in self.variables.items()],
        }
        if self.caller_id is not None:
            out["CallerID"] = self.caller_id
        return out


# --- the driver -----------------------------------------------------------------------
class _Everything:
    """A forgettable-actions "list" that contains every action name: nothing is re-sent."""

    def __contains__(self, item: object) -> bool:
        return True


class _Manager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Manager minus its own reconnect and its unchecked pinger."""

    def __init__(self, on_lost: Callable[[object], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def ping(self) -> None:
        """Disabled: AmiClient's watchdog pings and checks the replies."""

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        pinger = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self._on_lost(exc)


class _OriginateAction(Action):  # type: ignore[misc]  # panoramisk is untyped
    """An Originate whose first response (accepted or refused) is its own future."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.accepted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def add_message(self, message: Any) -> Any:
        if not self.accepted.done():
            self.accepted.set_result(message)
        return super().add_message(message)


class AmiClient:
    """A supervised AMI session: connect, log in, watch, reconnect with backoff.

    ``on_event`` gets every event (and each final OriginateResponse); ``on_connected``
    runs after every successful login, first connection included: that is where the
    dialer re-reads channels and queue members (:meth:`snapshot`).
    """

    def __init__(
        self,
        settings: AmiSettings,
        on_event: EventHandler,
        on_connected: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_connected = on_connected
        self._manager: _Manager | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0

    @property
    def connected(self) -> bool:
        """Logged in, recovered (``on_connected`` done) and not known to be lost."""
        return self._ready.is_set()

    async def start(self) -> None:
        """Start the supervisor task (returns at once; see :meth:`wait_connected`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def wait_connected(self, limit_s: float) -> None:
        """Wait until logged in and recovered; raises TimeoutError after ``limit_s``."""
        await asyncio.wait_for(self._ready.wait(), limit_s)

    async def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            await lifecycle.stop_task(task)
        self._drop("stopped")

    # --- actions ----------------------------------------------------------------------
    async def action(self, fields: Mapping[str, Any], limit_s: float | None = None) -> Any:
        """Send one action and return its response (a list for event-list actions).

        Never re-sent: raises AmiConnectionLost if the connection drops first, AmiError
        if no reply comes within the limit or Asterisk answers with an error.
        """
        manager = self._require()
        name = str(fields.get("Action", "?"))
        one = False if name.lower() in _ONE_REPLY else None
        future = manager.send_action(dict(fields), as_list=one)
        return await self._await(future, name, limit_s)

    async def originate(self, request: OriginateRequest) -> None:
        """Send an Async Originate; return once Asterisk has accepted it.

        The call's progress then arrives as events, the final OriginateResponse
        included. Raises AmiError if Asterisk refused it, OriginateOutcomeUnknown if the
        connection dropped before the answer (do not simply dial again).
        """
        if not self._ready.is_set():
            # Not before recovery has re-read the channels: a call placed meanwhile
            # could be judged "ended while away" by a snapshot taken just before it.
            raise AmiConnectionLost("not connected to Asterisk (or still recovering)")
        manager = self._require()
        action = _OriginateAction(request.fields())
        action.future.add_done_callback(self._originate_done)
        log.info(
            "ami originate channel_id=%s number=%s context=%s",
            request.channel_id,
            mask_phone(request.number),
            request.context,
        )
        manager.send_action(action)
        try:
            first = await self._await(action.accepted, "Originate", None)
        except AmiConnectionLost:
            raise OriginateOutcomeUnknown(request.channel_id) from None
        if first.get("Response") != "Success":
            raise AmiError(f"originate {request.channel_id} refused: {first.get('Message')}")

    async def snapshot(self) -> tuple[list[Event], list[Event]]:
        """Live channels (CoreShowChannels) and queue state (QueueStatus) right now."""
        channels = await self.action({"Action": "CoreShowChannels"})
        queues = await self.action({"Action": "QueueStatus"})
        return (
            [e for e in _as_list(channels) if e.get("Event") == "CoreShowChannel"],
            [e for e in _as_list(queues) if e.get("Event") in ("QueueParams", "QueueMember")],
        )

    def _originate_done(self, future: asyncio.Future[Any]) -> None:
        # The final OriginateResponse resolves panoramisk's future instead of reaching
        # event handlers; hand it to ours so the call's outcome is never lost.
        if future.cancelled() or future.exception() is not None:
            return
        for message in _as_list(future.result()):
            if message.get("Event") == "OriginateResponse":
                self._dispatch(message)

    def _require(self) -> _Manager:
        if self._manager is None or self._lost.is_set():
            raise AmiConnectionLost("not connected to Asterisk")
        return self._manager

    async def _await(self, future: asyncio.Future[Any], what: str, limit_s: float | None) -> Any:
        self._inflight.add(future)
        try:
            limit = self.settings.action_timeout_s if limit_s is None else limit_s
            response = await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            raise AmiError(f"no reply to {what} within {limit:.0f}s") from None
        finally:
            self._inflight.discard(future)
        if not isinstance(response, list) and response.get("Response") == "Error":
            raise AmiError(f"{what}: {response.get('Message')}")
        return response

    # --- connection supervision ---------------------------------------------------------
    def _dispatch(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("ami event handler failed event=%s", event.get("Event"))

    def _lost_cb(self, exc: object) -> None:
        self._ready.clear()
        self._lost.set()
        for future in list(self._inflight):
            if not future.done():
                future.set_exception(AmiConnectionLost(f"connection lost: {exc}"))

    def _drop(self, why: str) -> None:
        manager, self._manager = self._manager, None
        self._ready.clear()
        if manager is not None and manager.protocol is not None:
            transport = getattr(manager.protocol, "transport", None)
            manager.protocol.closed = True  # we report the loss ourselves, just below
            manager.protocol.factory = None
            if transport is not None:
                transport.abort()
        self._lost_cb(why)

    async def _connect_once(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        manager = _Manager(
            self._lost_cb,
            loop=loop,
            host=s.host,
            port=s.port,
            username=s.username,
            secret=s.secret,
            forgetable_actions=_Everything(),
        )
        manager.register_event("*", lambda _m, event: self._dispatch(event))
        connection = await asyncio.wait_for(
            loop.create_connection(AMIProtocol, s.host, s.port), s.connect_timeout_s
        )
        done: asyncio.Future[Any] = loop.create_future()
        done.set_result(connection)
        manager.connection_made(done)  # sends Login
        self._manager = manager
        try:
            # panoramisk's own done-callback (added first, so run first) sets
            # .authenticated from the Login response before we resume.
            await asyncio.wait_for(
                asyncio.shield(manager.authenticated_future), s.connect_timeout_s
            )
        except TimeoutError:
            self._drop("login timeout")
            raise
        if not manager.authenticated:
            self._drop("login refused")
            raise AmiError("AMI login refused (check the AMI username and secret)")

    async def _supervise(self) -> None:
        s = self.settings
        backoff = lifecycle.Backoff(s.reconnect_initial_s, s.reconnect_max_s)
        while True:
            try:
                await self._connect_once()
            except (OSError, TimeoutError, AmiError) as exc:
                # jitter: not all gateways at once
                wait = backoff.next_delay() * random.uniform(0.5, 1.0)
                log.warning(
                    "ami connect failed host=%s port=%d error=%s retry_in=%.1fs",
                    s.host,
                    s.port,
                    exc or type(exc).__name__,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            backoff.reset()
            self.connects += 1
            log.info("ami connected host=%s port=%d connects=%d", s.host, s.port, self.connects)
            if self._on_connected is not None:
                try:
                    await self._on_connected()
                except Exception:
                    log.exception("ami on_connected failed; reconnecting")
                    self._drop("recovery failed")
                    continue
            if not self._lost.is_set():
                self._ready.set()
            await self._watch()
            log.warning("ami connection lost host=%s port=%d", s.host, s.port)

    async def _watch(self) -> None:
        """Return when the connection is lost; drop it if a Ping goes unanswered."""
        s = self.settings
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), s.ping_interval_s)
                return
            except TimeoutError:
                pass
            try:
                await self.action({"Action": "Ping"}, limit_s=s.ping_timeout_s)
            except AmiConnectionLost:
                return
            except AmiError:
                log.warning(
                    "ami ping unanswered in %.0fs: connection half-open, dropping", s.ping_timeout_s
                )
                self._drop("ping timeout")
                return


def _as_list(response: Any) -> list[Any]:
    return response if isinstance(response, list) else [response]
