"""HTTP side of the webhook feed: signed POSTs to one endpoint, optionally batched.

One aiohttp session per endpoint (keep-alive, at most ``concurrency`` connections).
Every request carries the Standard Webhooks headers (gateway/webhooks/signing.py).

With ``batch_max`` = 1 (the default, the Standard Webhooks norm) a request is one event
and ``webhook-id`` is made from the event's id (`signing.webhook_id`: ``.`` escaped),
the same on every retry. An id that cannot stand in a header (a control character:
RFC 9110 §5.5; anything but visible ASCII) makes a request that can never be built:
that outcome is ``permanent``, and the worker dead-letters the event at once instead
of retrying it for days. With ``batch_max`` > 1, the events of surveys that are ready
at the same moment (within ``BATCH_LINGER_S``) go out together as

    {"type": "batch", "id": "batch_<32 hex>", "events": [<event>, <event>, ...]}

signed once, with ``webhook-id`` = the batch id. A batch holds whole runs of one
survey's consecutive events, in seq order, and succeeds or fails as a whole. A batch
that failed keeps its identity: the worker stores it (`FreshBatch`: its id, its body,
its members) and every retry, by any process, sends the same id and the same bytes
(`Poster.resend`) until it is delivered — so a receiver may drop duplicates by
``webhook-id``, as the Standard Webhooks spec intends.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

import aiohttp

from gateway import lifecycle
from gateway.webhooks.signing import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    signature_with_key,
    webhook_id,
)

USER_AGENT = "minyi-gateway-webhooks/1"
# How long a ready run waits for others to share its request. Runs freed by the same
# claim or the same burst of deliveries arrive within a few milliseconds.
BATCH_LINGER_S = 0.005
# What a webhook-id may hold: visible ASCII (RFC 9110 §5.5 allows no control character
# in a field value; the signature covers the id's bytes, so the id must be plain).
_HEADER_ID_RE = re.compile(r"[\x21-\x7e]{1,256}")


@dataclass(frozen=True)
class Delivery:
    """The result of one request."""

    ok: bool
    status: int | None  # None: no HTTP answer (timeout, connection error)
    error: str  # for logs and dead letters: never the URL, never a secret
    retry_after_s: float | None = None
    permanent: bool = False  # the request cannot be built: a retry would fail the same way
    # One request, several callers (a batch): only the first (``lead``) counts it, and,
    # for a batch sent for the first time, stores it (``batch``) when it failed.
    lead: bool = True
    batch: FreshBatch | None = None
    # the same backoff jitter for every run of a failed batch: its members come due
    # together, and one claim takes them back together (None: the caller draws its own)
    jitter: float | None = None


@dataclass(frozen=True)
class FreshBatch:
    """A batch as it first went out: what every retry must send again."""

    id: str
    body: bytes
    members: tuple[tuple[str, int, int], ...]  # (survey id, first seq, last seq), in order


@dataclass(frozen=True)
class _Run:
    """One survey's consecutive events, and the caller waiting for the outcome."""

    events: Sequence[bytes]
    sid: str
    first: int
    last: int
    fut: asyncio.Future[Delivery]


class Poster:
    """POSTs events to one endpoint; packs concurrent runs into batches if asked to."""

    def __init__(
        self, url: str, key: bytes, *, timeout_s: float, concurrency: int, batch_max: int
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.batch_max = batch_max
        self._key = key
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._waiting: list[_Run] = []
        self._waiting_events = 0
        self._timer: asyncio.TimerHandle | None = None
        self._batches: set[asyncio.Task[None]] = set()
        # stored batches being sent again: their other members' callers join the request
        self._resending: dict[str, asyncio.Future[Delivery]] = {}

    async def open(self) -> None:
        """Create the HTTP session (inside the running loop)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self._concurrency),
            headers={"user-agent": USER_AGENT},
        )

    async def close(self) -> None:
        """Abort batches still being sent and close the session."""
        if self._timer is not None:
            self._timer.cancel()
        await lifecycle.cancel_all(list(self._batches))
        for run in self._waiting:
            run.fut.cancel()
        for fut in self._resending.values():
            fut.cancel()
        if self._session is not None:
            await self._session.close()

    async def send(self, events: Sequence[bytes], sid: str, seqs: Sequence[int]) -> Delivery:
        """Deliver a run of one survey's events (``seqs`` theirs, in order; ``sid`` and
        the first seq name the first one if it has no readable id)."""
        if self.batch_max == 1:
            return await self._post(webhook_id(_event_id(events[0], sid, seqs[0])), events[0])
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        if self._waiting_events + len(events) > self.batch_max:
            self._flush()
        self._waiting.append(_Run(events, sid, seqs[0], seqs[-1], fut))
        self._waiting_events += len(events)
        if self._waiting_events >= self.batch_max:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(BATCH_LINGER_S, self._flush)
        return await fut

    async def resend(self, batch_id: str, body: bytes) -> Delivery:
        """Send a stored batch again, as it first went out. Callers for its other
        members that ask while it is in flight share its outcome (``lead`` False)."""
        current = self._resending.get(batch_id)
        if current is not None:
            return replace(await asyncio.shield(current), lead=False)
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._resending[batch_id] = fut
        try:
            outcome = replace(await self._post(batch_id, body), jitter=random.random())
            fut.set_result(outcome)
            return outcome
        finally:
            del self._resending[batch_id]
            if not fut.done():
                fut.cancel()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        runs, self._waiting, self._waiting_events = self._waiting, [], 0
        runs = [run for run in runs if not run.fut.done()]  # callers gone
        if runs:
            task = asyncio.create_task(self._send_batch(runs))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _send_batch(self, runs: list[_Run]) -> None:
        batch_id = "batch_" + uuid.uuid4().hex
        body = b"".join(
            [
                b'{"type":"batch","id":"',
                batch_id.encode(),
                b'","events":[',
                b",".join(e for run in runs for e in run.events),
                b"]}",
            ]
        )
        outcome = await self._post(batch_id, body)
        if not outcome.ok:
            members = tuple((run.sid, run.first, run.last) for run in runs)
            outcome = replace(
                outcome, batch=FreshBatch(batch_id, body, members), jitter=random.random()
            )
        waiting = [run for run in runs if not run.fut.done()]
        for i, run in enumerate(waiting):
            run.fut.set_result(replace(outcome, lead=i == 0))

    async def _post(self, msg_id: str, body: bytes) -> Delivery:
        assert self._session is not None, "Poster.open() first"
        if not _HEADER_ID_RE.fullmatch(msg_id):
            # repr: the id's control characters shown escaped in logs and dead letters
            return Delivery(
                False,
                None,
                f"cannot build the request: event id {msg_id[:64]!r} cannot be a header",
                permanent=True,
            )
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            HEADER_ID: msg_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: signature_with_key(self._key, msg_id, timestamp, body),
        }
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                await resp.read()  # drain, so the connection is kept alive
                status = resp.status
                retry_after = _retry_after(resp.headers.get("retry-after"))
        except TimeoutError:
            return Delivery(False, None, f"timeout after {self.timeout_s:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            # The exception text may carry the URL (and a token in it): type name only.
            return Delivery(False, None, f"connection error ({type(exc).__name__})")
        except ValueError as exc:
            # aiohttp refused to write the request (a header it will not send): a
            # failed attempt like any other, retried and dead-lettered in time.
            return Delivery(False, None, f"request refused by the HTTP client: {exc}")
        if 200 <= status < 300:
            return Delivery(True, status, "")
        return Delivery(False, status, f"HTTP {status}", retry_after)


def _event_id(event: bytes, sid: str, seq: int) -> str:
    try:
        return str(json.loads(event)["id"])
    except (ValueError, KeyError, TypeError):
        return f"{sid}:{seq}"


def _retry_after(value: str | None) -> float | None:
    # RFC 9110 §10.2.3: delay-seconds or an HTTP date; we honour the seconds form.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
