"""The process supervisor: runs the selected workers in one asyncio process and drains
them on SIGTERM.

Workers talk only through Redis, so `--workers api` on one host and
`--workers sms,webhooks` on another share the work. Each process has an instance name
(default: the host name); a restarted instance re-takes its own unacknowledged work
at once, and work of an instance that stays dead is taken over after a minute.

Where the recording work runs:

- ``asr``: the ASR stream worker (asr/worker.py) with its decoder process pool (each
  pool process loads the model once); it also indexes each job's recording
  (recordings/index.py) when it takes the job, since the dialer does not;
- retention (recordings/retention.py, hourly, the first sweep at start) runs in every
  process that runs ``dialer``: recordings exist only where a dialer runs (it must see
  the files to report them), and transcription may be off with no ``asr`` worker
  anywhere. Several dialers sweeping at once is harmless: a deletion is reported once.

Drain order on SIGTERM: the API stops taking surveys (503, then closes), the sender
takes no new survey and lets the in-flight submits get their answers, the SMPP binds
unbind, the dialer stops dialling, the ASR worker takes no new job and gives running
ones the grace period (unfinished ones stay pending for the next worker), retention
stops between recordings, the webhook worker finishes its requests and hands back its
leases.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import redis.asyncio as aioredis
from aiohttp import web

from asr.pool import default_pool_size
from asr.worker import AsrWorker, AsrWorkerSettings
from gateway import lifecycle, logs, startup, status
from gateway.api.app import Api
from gateway.config import ConfigError, Settings, SmppBind
from gateway.desk import Desk
from gateway.desk import mount as mount_desk
from gateway.desk.actions import AmiActions, desk_directory
from gateway.dialer.dialer import Dialer
from gateway.store import connection, keys, streams
from gateway.store.replication import Replication
from gateway.store.surveys import Store
from gateway.webhooks.worker import WebhookWorker
from recordings import retention
from sms import compiled
from sms.binds import SmsBind, SmsClient
from sms.cmpp.bind import CmppSession
from sms.inbound import Inbound, store_pdu
from sms.sender import Sender, Unrenderable, survey_text
from sms.smpp.client import Bind as SmppSession

log = logs.logger(__name__)

KNOWN_WORKERS = ("api", "sms", "webhooks", "dialer", "asr")
MAINTENANCE_INTERVAL_S = 1.0
TRIM_EVERY = 60  # maintenance rounds
# The exit code when a worker ended by itself (EX_SOFTWARE, sysexits.h): not 0, so a
# supervisor restarts the process.
EXIT_WORKER_FAILED = 70
# How long the API's close gives requests in progress (aiohttp's AppRunner
# shutdown_timeout, its default, set here so that drain_bound_s counts it).
API_SHUTDOWN_S: Final = 60.0
# Seconds a worker cancelled at the end of the drain has for its clean-up before it is
# cancelled again (lifecycle.cancel_all): a lost cancel cannot be told from a slow one.
LEFT_CLEANUP_S: Final = 2.0


class Service:
    """One gateway process."""

    def __init__(
        self, settings: Settings, workers: tuple[str, ...], *, instance: str | None = None
    ) -> None:
        unknown = [w for w in workers if w not in KNOWN_WORKERS]
        if unknown:
            raise ConfigError(
                "workers", f"unknown worker {unknown[0]!r} (known: {', '.join(KNOWN_WORKERS)})"
            )
        checked = startup.check(settings, workers)
        self.settings = checked.settings
        self.workers = workers
        self.instance = instance or socket.gethostname()
        self.templates = checked.templates
        self.asr_model = checked.model
        self.tls = checked.tls
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.redis: aioredis.Redis | None = None
        self.replication: Replication | None = None
        self.store: Store | None = None
        self.api: Api | None = None
        self.desk: Desk | None = None
        self.client: SmsClient | None = None
        self.sender: Sender | None = None
        self.inbound: Inbound | None = None
        self.webhooks: WebhookWorker | None = None
        self.dialer: Dialer | None = None
        self.asr: AsrWorker | None = None
        self.api_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._running: dict[str, _Running] = {}

    def request_stop(self) -> None:
        """Begin the drain (what SIGTERM does)."""
        self.stopping.set()

    def _connect_redis(self) -> aioredis.Redis:
        """The process's Redis client (no connection is made yet): the standalone server
        or Sentinel's master, only ever a master (gateway/store/connection.py)."""
        return connection.connect(self.settings.redis_url, self.settings.redis)

    async def _start_api(self) -> None:
        """Listen at once: while Redis is away the API answers 503 (with Retry-After),
        and /healthz says why."""
        s = self.settings
        assert self.store is not None
        self.api = Api(s, self.store, self.templates)
        if s.api.desk.users:
            actions = None
            if s.dialer is not None:
                actions = AmiActions(s.dialer.ami, desk_directory(s))
            self.desk, routes = mount_desk(s, self.store, actions=actions, sms_text=self._sms_text)
            self.api.mounts.append(routes)
        self._runner = web.AppRunner(
            self.api.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=API_SHUTDOWN_S,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, s.api.host, s.api.port, reuse_address=True, ssl_context=self.tls
        )
        await site.start()
        self.api_port = int(self._runner.addresses[0][1])
        scheme = "https" if self.tls is not None else "http"
        log.info("api listening on %s://%s:%s", scheme, s.api.host, self.api_port)

    def _sms_text(self, fields: Mapping[str, str]) -> str | None:
        """A survey's SMS text as it was sent (the desk shows it); None if unrenderable."""
        try:
            return survey_text(fields, self.settings, self.templates)
        except Unrenderable:
            return None

    async def run(self) -> int:
        """Run until request_stop(), then drain; the process's exit code.

        0 after a requested stop (also one while Redis was still awaited at start).
        EXIT_WORKER_FAILED when a worker ended by itself (a bug: workers wait out
        Redis and link outages, they never end on their own): the others are drained
        and the process exits non-zero, so that systemd's ``Restart=on-failure`` (or
        any supervisor) starts it again.
        """
        s = self.settings
        self.redis = self._connect_redis()
        if s.redis.replicas > 0:
            # Nothing is acknowledged before its write is on a replica (WAIT).
            self.replication = Replication(self.redis, s.redis.replicas, s.redis.wait_timeout_ms)
        self.store = Store(self.redis, s.surveys.timezone, replication=self.replication)
        if "api" in self.workers:
            await self._start_api()
        loaded = await lifecycle.outlast(
            _loaded(self.store), self.stopping, what="redis unavailable", log=log
        )
        if loaded is None:
            log.info("stopped before Redis was reachable")
            await self._drain()
            return 0
        await startup.check_redis_persistence(self.redis, log)
        if "sms" in self.workers:
            binds = {b.name: b for b in s.sms.binds}
            store = self.store

            async def sink(bind: str, pdu: bytes) -> None:
                b = binds[bind]
                await store_pdu(store, bind, b.smsc, pdu, b.protocol)

            self.client = client = SmsClient()
            for b in s.sms.binds:
                # one bind class per protocol (SGIP or SMGP would be one more line)
                bind: SmsBind = (
                    SmppSession(b, client, sink)
                    if isinstance(b, SmppBind)
                    else CmppSession(b, client, sink)
                )
                client.add(bind)
            await client.start()
            # the binds' and the dispatch's loops: one of them ending is a bug, and stops
            # the process like a worker's (SmsClient.run)
            self._start("sms-client", client)
            self.sender = Sender(
                self.redis, self.store, self.client, s, self.templates, consumer=self.instance
            )
            self.inbound = Inbound(self.redis, self.store, s, consumer=self.instance)
            self._start("sender", self.sender)
            self._start("inbound", self.inbound)
            self._start("maintenance", _Maintenance(self))
        if "webhooks" in self.workers and s.webhooks:
            self.webhooks = WebhookWorker(
                self.redis,
                s.webhooks,
                consumer=self.instance,
                grace_s=min(s.shutdown_grace_s, 10),
                claim_idle_s=s.claim_idle_s,
                replication=self.replication,
            )
            self._start("webhooks", self.webhooks)
        if "dialer" in self.workers:
            if s.dialer is None:
                raise ConfigError("dialer", 'is required when workers include "dialer"')
            self.dialer = Dialer(s.dialer, self.store, s.surveys.timezone, owner=self.instance)
            self._start("dialer", self.dialer)
            self._start("retention", _Retention(self))
        if "asr" in self.workers:
            self.asr = AsrWorker(self.redis, self._asr_settings())
            self._start("asr", self.asr)
        if self.client is not None or self.dialer is not None or self.webhooks is not None:
            # what only this process knows, for every API process's pages
            self._start("status", status.Reporter(self))
        if self.api is not None:
            status.register(self)
        self.ready.set()
        # The reply reader runs compiled when `make reader` built it for these sources;
        # as Python ("stale", "not built", "off", "unloadable") it reads the same, about a
        # quarter slower.
        log.info(
            "minyi running workers=%s instance=%s reader=%s",
            ",".join(self.workers),
            self.instance,
            compiled.reader(),
        )

        stop_waiter = asyncio.create_task(self.stopping.wait())
        tasks = [r.task for r in self._running.values()]
        await asyncio.wait([stop_waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stop_waiter.cancel()
        failed = [name for name, r in self._running.items() if r.task.done()]
        for name in failed:
            task = self._running[name].task
            error = None if task.cancelled() else task.exception()
            log.critical(
                "worker %s ended by itself (%s): stopping the process",
                name,
                lifecycle.describe(error) if error is not None else "returned",
                exc_info=error,
            )
        await self._drain()
        return EXIT_WORKER_FAILED if failed else 0

    def _start(self, name: str, worker: lifecycle.Worker) -> None:
        """Run a worker until its own stop event (set by the drain, in DRAIN_ORDER)."""
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop), name=name)
        self._running[name] = _Running(stop, task)

    def _asr_settings(self) -> AsrWorkerSettings:
        s = self.settings
        assert s.asr is not None and self.asr_model is not None
        return AsrWorkerSettings(
            model=self.asr_model,
            pool_size=s.asr.pool_size or default_pool_size(),
            max_tries=s.asr.max_tries,
            claim_idle_s=s.asr.claim_idle_s,
            job_timeout_s=s.asr.job_timeout_s,
            stop_grace_s=s.shutdown_grace_s,
            consumer=self.instance,
            tz=s.surveys.timezone,
            index_recordings=True,
        )

    async def _drain(self) -> None:
        grace = self.settings.shutdown_grace_s
        log.info("draining (grace %.0fs)", grace)
        if self.api is not None:
            self.api.accepting = False
        if self.desk is not None:
            await self.desk.close()  # open desk streams end, or they would hold the close
        if self._runner is not None:
            await self._runner.cleanup()
        for name in DRAIN_ORDER:
            running = self._running.get(name)
            if running is None:
                continue
            running.stop.set()
            await _wait_stopped(running.task, _drain_limit(name, grace))
            if name == "inbound" and self.client is not None:
                # Nothing more is sent or read: unbind (the SMS center redelivers what
                # was not acknowledged to the next bind).
                await self.client.stop()
        # A worker past its limit is cancelled; it gets LEFT_CLEANUP_S for its own
        # clean-up (the dialer hands its lease back) before a cancel it may have lost
        # is sent again.
        await lifecycle.cancel_all([r.task for r in self._running.values()], again_s=LEFT_CLEANUP_S)
        if self.redis is not None:
            await self.redis.aclose()
        log.info("stopped")


@dataclasses.dataclass(frozen=True)
class _Running:
    stop: asyncio.Event
    task: asyncio.Task[None]


# Drain order on SIGTERM (see the module docstring): sending first, so that its last
# answers are stored; the feed last, so that it still delivers what the others wrote.
DRAIN_ORDER: Final = (
    "sender",
    "inbound",
    "sms-client",  # unbound by the inbound's step above; its watch then ends
    "maintenance",
    "dialer",
    "asr",
    "retention",
    "webhooks",
    "status",
)


def _drain_limit(name: str, grace: float) -> float:
    """How long a worker may take to stop once told to (then it is cancelled)."""
    if name == "sender":
        return grace  # in-flight submits get their answers
    if name == "asr":
        return grace + 15.0  # running jobs get the grace period, then the pool closes
    if name == "dialer":
        return 5.0  # calls go on in Asterisk and are adopted after the restart
    if name == "webhooks":
        return min(grace, 10.0) + 5.0
    return 2.0  # maintenance, retention, status: cut between two steps, the next run finishes


def drain_bound_s(grace: float) -> float:
    """The longest a drain can take with ``shutdown_grace_s = grace``: the API's close,
    then each worker's limit in DRAIN_ORDER, then LEFT_CLEANUP_S for what is left to
    end once cancelled.

    A supervisor must wait longer than this before it kills the process (systemd's
    ``TimeoutStopSec`` in packaging/systemd/, held above it by a test).
    """
    limits = sum(_drain_limit(name, grace) for name in DRAIN_ORDER)
    return API_SHUTDOWN_S + limits + LEFT_CLEANUP_S


class _Maintenance:
    """The sms process's housekeeping: deferred surveys released, reply windows and
    receipt deadlines closed, consumed stream entries trimmed."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def run(self, stop: asyncio.Event) -> None:
        """Every MAINTENANCE_INTERVAL_S until ``stop``; Redis outages are waited out."""
        store, redis = self.service.store, self.service.redis
        assert store is not None and redis is not None
        dialer = self.service.settings.dialer
        no_reply_ivr = dialer is not None and dialer.no_reply_ivr
        unclear_callback = "unclear" in self.service.settings.surveys.callback_on
        rounds = 0

        async def one_round() -> None:
            await store.release_due()
            await store.sweep(no_reply_ivr=no_reply_ivr, unclear_callback=unclear_callback)
            if rounds % TRIM_EVERY == 0:
                # consumed work and delivered events (each survey keeps its own
                # history; the streams only carry work between workers)
                for stream in (keys.SMS_QUEUE, keys.INBOUND, keys.EVENTS, keys.ASR_JOBS):
                    await streams.trim_consumed(redis, stream)

        while not stop.is_set():
            await lifecycle.outlast(one_round, stop, what="maintenance", log=log)
            rounds += 1
            await lifecycle.sleep_or_stop(stop, MAINTENANCE_INTERVAL_S)


class _Retention:
    """Recording retention (hourly, the first sweep at start) in a dialer process."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until ``stop``."""
        redis, s = self.service.redis, self.service.settings
        assert redis is not None
        r = s.recordings
        await retention.run(
            redis,
            retention.RetentionSettings(r.dir, days=r.retention_days),
            stop,
            tz=s.surveys.timezone,
        )


def _loaded(store: Store) -> Callable[[], Awaitable[bool]]:
    async def load() -> bool:
        await store.load()
        return True

    return load


async def _wait_stopped(task: asyncio.Task[Any], limit_s: float) -> None:
    """Give a worker that saw the stop event ``limit_s`` to end; it is cancelled later."""
    try:
        await asyncio.wait_for(asyncio.shield(task), limit_s)
    except TimeoutError:
        log.warning("%s did not stop within %.0fs; cancelling it", task.get_name(), limit_s)
    except Exception as exc:  # the rest of the drain must still run
        log.error("%s stopped with %r", task.get_name(), exc)


def install_signal_handlers(service: Service) -> Callable[[], None]:
    """SIGTERM and SIGINT begin the drain; returns a function that removes them."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)

    def remove() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return remove
