"""The desk and the board for tests: their logins (PINs hashed once per session) and
the API application with the desk mounted, on the session's redis-server."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from gateway.api.app import Api
from gateway.config import Settings
from gateway.desk import mount
from gateway.desk.auth import hash_pin
from gateway.store.surveys import Store
from sms.sender import Unrenderable, survey_text
from sms.templates import load_templates
from tests.integration.api_harness import api_settings

PINS = {u: f"pin-of-{u}" for u in ("agent1", "agent2", "agent3", "sup1", "sup2")}
Client = TestClient[Any, Any]


@functools.cache
def _hash(pin: str) -> str:
    return hash_pin(pin)


def desk_table(**over: Any) -> dict[str, Any]:
    """``[api.desk]``: agent1 and agent2 answer 330602, agent3 330603; sup1 oversees the
    city 3306, sup2 the county 330603 only."""
    table: dict[str, Any] = {
        "agents": [
            {"id": "agent1", "pin_hash": _hash(PINS["agent1"]), "units": ["330602"]},
            {"id": "agent2", "pin_hash": _hash(PINS["agent2"]), "units": ["330602"]},
            {"id": "agent3", "pin_hash": _hash(PINS["agent3"]), "units": ["330603"]},
        ],
        "supervisors": [
            {"id": "sup1", "pin_hash": _hash(PINS["sup1"]), "units": ["3306"]},
            {"id": "sup2", "pin_hash": _hash(PINS["sup2"]), "units": ["330603"]},
        ],
    }
    table.update(over)
    return table


def desk_settings(**desk: Any) -> Settings:
    return api_settings(api={"desk": desk_table(**desk)})


def sms_text_of(settings: Settings) -> Any:
    templates = load_templates(settings.sms)

    def text(fields: Mapping[str, str]) -> str | None:
        try:
            return survey_text(fields, settings, templates)
        except Unrenderable:
            return None

    return text


@asynccontextmanager
async def desk_client(store: Store, settings: Settings | None = None) -> AsyncIterator[Client]:
    """A client of the API application with the desk and board mounted (no PBX)."""
    settings = settings or desk_settings()
    api = Api(settings, store, load_templates(settings.sms))
    desk, routes = mount(settings, store, actions=None, sms_text=sms_text_of(settings))
    api.mounts.append(routes)
    client: Client = TestClient(TestServer(api.app()))
    await client.start_server()
    try:
        yield client
    finally:
        await desk.close()
        await client.close()


def hidden(html: str, name: str) -> str:
    """The value of the page's hidden input ``name``."""
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field in the page"
    return m.group(1)


async def login(client: Client, user: str, pin: str | None = None) -> ClientResponse:
    """Log in through the form (its double-submit token included)."""
    page = await (await client.get("/desk/login")).text()
    return await client.post(
        "/desk/login",
        data={
            "user": user,
            "pin": PINS[user] if pin is None else pin,
            "csrf": hidden(page, "csrf"),
        },
        allow_redirects=False,
    )
