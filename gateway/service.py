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
import contextlib
import signal
import socket
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from asr.pool import default_pool_size
from asr.worker import AsrWorker, AsrWorkerSettings
from gateway import logs, startup
from gateway.api.app import Api
from gateway.config import ConfigError, Settings
from gateway.dialer.dialer import Dialer
from gateway.store import keys, streams
from gateway.store.surveys import Store
from gateway.webhooks.worker import WebhookWorker
from recordings import retention
from sms.inbound import Inbound, store_pdu
from sms.sender import Sender
from sms.smpp.client import SmppClient

log = logs.logger(__name__)

KNOWN_WORKERS = ("api", "sms", "webhooks", "dialer", "asr")
MAINTENANCE_INTERVAL_S = 1.0
TRIM_EVERY = 60  # maintenance rounds
# Per process; blocking reads hold one each (sender, inbound, webhooks per endpoint).
REDIS_CONNECTIONS = 64


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
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.redis: aioredis.Redis | None = None
        self.store: Store | None = None
        self.api: Api | None = None
        self.client: SmppClient | None = None
        self.sender: Sender | None = None
        self.inbound: Inbound | None = None
        self.webhooks: WebhookWorker | None = None
        self.dialer: Dialer | None = None
        self.asr: AsrWorker | None = None
        self.api_port: int | None = None
        self._runner: web.AppRunner | None = None

    def request_stop(self) -> None:
        """Begin the drain (what SIGTERM does)."""
        self.stopping.set()

    async def _connect_redis(self) -> aioredis.Redis:
        delay = 0.5
        while True:
            # A blocking pool: a burst of concurrent work waits for a free connection
            # instead of failing with MaxConnectionsError.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.settings.redis_url,
                decode_responses=True,
                health_check_interval=10,
                max_connections=REDIS_CONNECTIONS,
                timeout=None,
            )
            client = aioredis.Redis.from_pool(pool)
            try:
                store = Store(client, self.settings.surveys.timezone)
                await store.load()
                self.store = store
                return client
            except (RedisError, OSError) as exc:
                await client.aclose()
                log.warning("redis unavailable (%s); retrying in %.1fs", type(exc).__name__, delay)
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except TimeoutError:
                    delay = min(10.0, delay * 2)
                else:
                    raise RuntimeError("stopped before Redis was reachable") from exc

    async def run(self) -> None:
        """Run until request_stop(), then drain."""
        s = self.settings
        self.redis = await self._connect_redis()
        assert self.store is not None
        tasks: dict[str, asyncio.Task[Any]] = {}
        if "api" in self.workers:
            self.api = Api(s, self.store, self.templates)
            self._runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, s.api.host, s.api.port, reuse_address=True)
            await site.start()
            self.api_port = int(self._runner.addresses[0][1])
            log.info("api listening on %s:%s", s.api.host, self.api_port)
        if "sms" in self.workers:
            binds = {b.name: b for b in s.sms.binds}
            store = self.store

            async def sink(bind: str, pdu: bytes) -> None:
                await store_pdu(store, bind, binds[bind].smsc, pdu)

            self.client = SmppClient(s.sms.binds, sink)
            await self.client.start()
            self.sender = Sender(
                self.redis,
                self.store,
                self.client,
                s,
                self.templates,
                consumer=f"{self.instance}",
            )
            self.inbound = Inbound(self.redis, self.store, s, consumer=self.instance)
            tasks["sender"] = asyncio.create_task(self.sender.run(), name="sender")
            tasks["inbound"] = asyncio.create_task(self.inbound.run(), name="inbound")
            tasks["maintenance"] = asyncio.create_task(self._maintenance(), name="maintenance")
        if "webhooks" in self.workers and s.webhooks:
            self.webhooks = WebhookWorker(self.redis, s.webhooks, consumer=self.instance)
            tasks["webhooks"] = asyncio.create_task(self.webhooks.run(), name="webhooks")
        if "dialer" in self.workers:
            if s.dialer is None:
                raise ConfigError("dialer", 'is required when workers include "dialer"')
            self.dialer = Dialer(s.dialer, self.store, s.surveys.timezone, owner=self.instance)
            tasks["dialer"] = asyncio.create_task(self.dialer.run(self.stopping), name="dialer")
            tasks["retention"] = asyncio.create_task(self._retention(), name="retention")
        if "asr" in self.workers:
            self.asr = AsrWorker(self.redis, self._asr_settings())
            tasks["asr"] = asyncio.create_task(self.asr.run(self.stopping), name="asr")
        if self.api is not None:
            self.api.health_extra = {"workers": list(self.workers), "instance": self.instance}
            if self.dialer is not None:
                self.api.health_probes["dialer"] = self.dialer.health
        self.ready.set()
        log.info("minyi running workers=%s instance=%s", ",".join(self.workers), self.instance)

        stop_waiter = asyncio.create_task(self.stopping.wait())
        await asyncio.wait([stop_waiter, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        for name, t in tasks.items():
            if t.done() and not t.cancelled() and t.exception() is not None:
                log.error("worker %s failed: %r", name, t.exception())
        stop_waiter.cancel()
        await self._drain(tasks)

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

    async def _retention(self) -> None:
        assert self.redis is not None
        r = self.settings.recordings
        await retention.run(
            self.redis,
            retention.RetentionSettings(r.dir, days=r.retention_days),
            self.stopping,
            tz=self.settings.surveys.timezone,
        )

    async def _maintenance(self) -> None:
        assert self.store is not None and self.redis is not None
        rounds = 0
        while True:
            try:
                await self.store.release_due()
                dialer = self.settings.dialer
                await self.store.sweep(no_reply_ivr=dialer is not None and dialer.no_reply_ivr)
                if rounds % TRIM_EVERY == 0:
                    # consumed work and delivered events (each survey keeps its own
                    # history; the streams only carry work between workers)
                    for stream in (keys.SMS_QUEUE, keys.INBOUND, keys.EVENTS, keys.ASR_JOBS):
                        await streams.trim_consumed(self.redis, stream)
            except RedisError as exc:
                log.warning("maintenance: redis error %r", exc)
            rounds += 1
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)

    async def _drain(self, tasks: Mapping[str, asyncio.Task[Any]]) -> None:
        grace = self.settings.shutdown_grace_s
        log.info("draining (grace %.0fs)", grace)
        if self.api is not None:
            self.api.accepting = False
        if self._runner is not None:
            await self._runner.cleanup()
        if self.sender is not None:
            self.sender.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(tasks["sender"]), grace)
        if self.inbound is not None:
            self.inbound.stop()
        if "maintenance" in tasks:
            tasks["maintenance"].cancel()
        if self.client is not None:
            await self.client.stop()
        if "dialer" in tasks:
            # Calls in progress go on in Asterisk; their claims stay recorded and are
            # adopted after the restart (or by another dialer once this one's lease ends).
            await _wait_stopped(tasks["dialer"], 5.0)
        if "asr" in tasks:
            # run() saw the stop: no new job; running ones get the grace period, then
            # are cancelled and stay pending for the next worker. The pool closes last.
            await _wait_stopped(tasks["asr"], grace + 15.0)
        if "retention" in tasks:
            # A sweep cut between two recordings is finished by the next one.
            await _wait_stopped(tasks["retention"], 2.0)
        if self.webhooks is not None:
            await self.webhooks.stop(grace_s=min(grace, 10.0))
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        if self.redis is not None:
            await self.redis.aclose()
        log.info("stopped")


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
