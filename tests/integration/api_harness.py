"""The HTTP API alone for tests: the real aiohttp application (gateway/api/app.py) on a
loopback port, on the session's redis-server, with the loop's config
(tests/integration/sms_harness.py) and its templates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.api.app import Api
from gateway.config import Settings, parse_settings
from gateway.store.surveys import Store
from sms.templates import load_templates
from tests.integration.sms_harness import TOKEN, config

COUNTY_TOKEN = TOKEN + "-county"  # may see units 330602*
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COUNTY_AUTH = {"Authorization": f"Bearer {COUNTY_TOKEN}"}

Client = TestClient[Any, Any]


def api_settings(**over: Any) -> Settings:
    """The loop's settings (no SMS center or receiver is contacted by the API)."""
    return parse_settings(config("redis://127.0.0.1:1/0", 1, "http://127.0.0.1:9/", 8080, **over))


@asynccontextmanager
async def api_client(store: Store, settings: Settings | None = None) -> AsyncIterator[Client]:
    """A client of the API application served on a free loopback port."""
    settings = settings or api_settings()
    api = Api(settings, store, load_templates(settings.sms))
    client: Client = TestClient(TestServer(api.app()))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
