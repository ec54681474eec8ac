"""The SMS loop over CMPP for tests: redis-server, the gocmpp SMS center (a peer the
project did not write, `devstack.cmpp_peer`), the webhook receiver and the gateway, all
on loopback. The loop's other parts are `sms_harness`'s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from devstack.cmpp_peer import SECRET, SP_ID, SRC_ID, CmppPeer
from gateway.config import parse_settings
from gateway.service import Service
from gateway.webhooks.receiver import WebhookReceiver
from tests.integration.sms_harness import SECRET as WEBHOOK_SECRET
from tests.integration.sms_harness import config, start_service


def cmpp_bind(peer: CmppPeer, **over: Any) -> dict[str, Any]:
    """A [[sms.binds]] entry for `peer`, with short timers for tests."""
    return {
        "name": "cmcc",
        "protocol": peer.protocol,
        "host": "127.0.0.1",
        "port": peer.port,
        "sp_id": SP_ID,
        "secret": SECRET,
        "src_id": SRC_ID,
        "service_id": "MJS0010",
        "window": 16,
        "tps": 2000,
        "active_test_s": 1,
        "response_timeout_s": 5,
        "reconnect_initial_s": 0.2,
        "reconnect_max_s": 1,
        **over,
    }


class CmppLoop:
    """Handles on every part of a running CMPP loop."""

    def __init__(
        self,
        peer: CmppPeer,
        receiver: WebhookReceiver,
        service: Service,
        http: aiohttp.ClientSession,
    ) -> None:
        self.peer = peer
        self.receiver = receiver
        self.service = service
        self.http = http
        self.task: asyncio.Task[None] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.service.api_port}"

    async def post(self, body: Any) -> tuple[int, Any]:
        from tests.integration.sms_harness import TOKEN

        async with self.http.post(
            self.api + "/v1/surveys", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r:
            return r.status, await r.json()

    def types(self, sid: str) -> list[str]:
        """Event types the webhook receiver got for a survey, in arrival order."""
        return [e["type"] for e in self.receiver.events.get(sid, [])]

    def event(self, sid: str, kind: str) -> dict[str, Any]:
        """The first event of `kind` of a survey."""
        return next(e for e in self.receiver.events[sid] if e["type"] == kind)


@asynccontextmanager
async def cmpp_loop(
    redis_url: str,
    api_port: int,
    version: int,
    *,
    bind: dict[str, Any] | None = None,
    active_test_s: float = 5.0,
    extra_binds: list[dict[str, Any]] | None = None,
    **over: Any,
) -> AsyncIterator[CmppLoop]:
    """Start the gocmpp peer, the webhook receiver and a gateway with one CMPP bind."""
    peer = CmppPeer(version, active_test_s=active_test_s)
    peer.start()
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    await receiver.start()
    try:
        cfg = config(redis_url, 1, receiver.url, api_port, **over)
        cfg["sms"]["binds"] = [cmpp_bind(peer, **(bind or {})), *(extra_binds or [])]
        service, task = await start_service(parse_settings(cfg))
        async with aiohttp.ClientSession() as http:
            loop = CmppLoop(peer, receiver, service, http)
            loop.task = task
            try:
                yield loop
            finally:
                if not task.done():
                    service.request_stop()
                    await asyncio.wait_for(task, 30)
    finally:
        await receiver.close()
        await peer.close()
        peer.stop()
