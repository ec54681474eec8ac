"""The whole SMS loop on real servers for tests: redis-server (the session fixture), the
project's SMSC simulator over TCP, the reference webhook receiver over HTTP, and the
gateway service itself, all on loopback."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from devstack.localstack import (
    SECRET,
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    TEMPLATE,
    TOKEN,
    recent_service_time,
)
from gateway.config import Settings, parse_settings
from gateway.service import Service
from gateway.webhooks.receiver import WebhookReceiver
from smsc.simulator import SmscSimulator

LONG_TEMPLATE = (
    "{signature}尊敬的市民您好：您于{date}{time}就{service}事项与我局{unit_name}民警{officer}"
    "进行了接触。为了不断改进公安工作、提升服务质量，我们诚挚地邀请您对本次服务作出评价，"
    "您的意见对我们非常重要，我们将认真研究每一条反馈。回复1满意，2基本满意，3不满意。谢谢！😊"
)


def config(
    redis_url: str, smsc_port: int, webhook_url: str, api_port: int, **over: Any
) -> dict[str, Any]:
    """A TOML-shaped config dict for the loop; `over` is merged section by section."""
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "workers": ["api", "sms", "webhooks"],
        "shutdown_grace_s": 10,
        "log": {"level": "WARNING"},
        "api": {
            "host": "127.0.0.1",
            "port": api_port,
            "tokens": [
                {"name": "core", "token": TOKEN, "units": ["*"]},
                {"name": "county", "token": TOKEN + "-county", "units": ["330602*"]},
            ],
        },
        "surveys": {"quiet_hours": {"enabled": False}},
        "sms": {
            "source_addr": SOURCE_ADDR,
            "signature": "【平安绍兴】",
            "templates": {
                "default": {"text": TEMPLATE, "max_parts": 1},
                "long": {"text": LONG_TEMPLATE, "max_parts": 4},
            },
            "binds": [
                {
                    "name": "b1",
                    "host": "127.0.0.1",
                    "port": smsc_port,
                    "system_id": SMPP_USER,
                    "password": SMPP_PASSWORD,
                    "window": 50,
                    "tps": 2000,
                    "enquire_link_s": 5,
                    "response_timeout_s": 5,
                    "reconnect_initial_s": 0.2,
                    "reconnect_max_s": 1,
                }
            ],
        },
        "webhooks": {
            "endpoints": [
                {
                    "name": "core",
                    "url": webhook_url,
                    "secret": SECRET,
                    "max_age_hours": 1,
                    "allow_short_max_age": True,
                    "backoff_initial_s": 0.2,
                    "backoff_max_s": 1,
                    "timeout_s": 2,
                }
            ]
        },
    }
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def survey(n: int | str, phone: str | None = None, **over: Any) -> dict[str, Any]:
    """A valid survey request body."""
    body = {
        "survey_id": f"S{n}",
        "phone": phone or f"138{int(str(n).strip('S') or 0) % 100_000_000:08d}",
        "service_type": "110",
        "unit_code": "330602",
        "officer_id": "P1001",
        "occurred_at": recent_service_time(),
        "template": "default",
    }
    body.update(over)
    return body


class Loop:
    """Handles on every part of a running loop."""

    def __init__(
        self,
        smsc: Any,
        receiver: WebhookReceiver,
        service: Service,
        http: aiohttp.ClientSession,
    ) -> None:
        self.smsc = smsc
        self.receiver = receiver
        self.service = service
        self.http = http
        self.task: asyncio.Task[None] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.service.api_port}"

    async def post(self, body: Any, token: str = TOKEN) -> tuple[int, Any]:
        async with self.http.post(
            self.api + "/v1/surveys", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return r.status, await r.json()

    async def get(self, sid: str, token: str = TOKEN) -> tuple[int, Any]:
        async with self.http.get(
            self.api + f"/v1/surveys/{sid}", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return r.status, await r.json()

    def types(self, sid: str) -> list[str]:
        """Event types the webhook receiver got for a survey, in arrival order."""
        return [e["type"] for e in self.receiver.events.get(sid, [])]

    async def stop_service(self) -> None:
        """SIGTERM-like drain of the gateway."""
        self.service.request_stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)


async def start_service(settings: Settings) -> tuple[Service, asyncio.Task[None]]:
    """Start a gateway in this process and wait until it serves."""
    service = Service(settings, settings.workers, instance="test")
    task = asyncio.create_task(service.run())
    waiter = asyncio.create_task(service.ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
        raise AssertionError("gateway stopped during start")
    if waiter not in done:
        raise AssertionError("gateway did not start within 20s")
    await asyncio.wait_for(service.client.wait_bound(10), 15) if service.client else None
    return service, task


@asynccontextmanager
async def running_loop(
    redis_url: str,
    api_port: int,
    *,
    behaviour: dict[str, Any] | None = None,
    bind: dict[str, Any] | None = None,
    binds: list[dict[str, Any]] | None = None,
    smsc: Any = None,
    **over: Any,
) -> AsyncIterator[Loop]:
    """Start an SMS center (the project's simulator, or ``smsc``: another one not yet
    started, e.g. tests/peers/npm_smsc.NpmSmsc), the webhook receiver and the gateway;
    stop them all afterwards. ``behaviour`` goes to the SMS center's set_behaviour."""
    if smsc is None:
        smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    if behaviour:
        smsc.set_behaviour(**behaviour)
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    cfg = config(redis_url, smsc.port, receiver.url, api_port, **over)
    cfg["sms"]["binds"][0].update(bind or {})
    if binds is not None:  # several binds, each the first one's settings plus its own
        cfg["sms"]["binds"] = [{**cfg["sms"]["binds"][0], **b} for b in binds]
    settings = parse_settings(cfg)
    service, task = await start_service(settings)
    async with aiohttp.ClientSession() as http:
        loop = Loop(smsc, receiver, service, http)
        loop.task = task
        try:
            yield loop
        finally:
            if not task.done():
                await loop.stop_service()
            await receiver.close()
            await smsc.stop()


def widest_recent_date() -> str:
    """The latest past day whose month and day both have two digits ("11月30日"): the
    API takes only the last year's dates, and a shorter date ("1月2日") would let the
    long text fit in one part fewer."""
    day = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)
    while day.month < 10 or day.day < 10:
        day -= timedelta(days=1)
    return day.replace(hour=10, minute=5, second=0, microsecond=0).isoformat()
