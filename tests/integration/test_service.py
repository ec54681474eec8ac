"""The process supervisor (gateway/service.py) on a real redis-server: how it ends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from devstack.localstack import free_port
from gateway import service as service_module
from gateway.config import parse_settings
from gateway.service import EXIT_WORKER_FAILED, Service
from sms.compiled import status
from tests.integration.sms_harness import config
from tests.servers import RedisServer
from tests.waiting import eventually


class _Crashing:
    """A maintenance worker with a bug: it raises on its first round."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")


async def test_a_worker_that_dies_ends_the_process_with_a_non_zero_code(
    clean_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The SMS center is not even there: the binds keep reconnecting, which is no failure.
    cfg: dict[str, Any] = config(clean_redis.url, free_port(), "http://127.0.0.1:9/", free_port())
    cfg["webhooks"] = {}
    monkeypatch.setattr(service_module, "_Maintenance", _Crashing)
    service = Service(parse_settings(cfg), ("api", "sms"), instance="crash-test")
    caplog.set_level(logging.CRITICAL, logger="minyi")
    code = await asyncio.wait_for(service.run(), 30)
    assert code == EXIT_WORKER_FAILED
    assert any(
        "worker maintenance ended by itself" in r.getMessage()
        and "UnicodeEncodeError" in r.getMessage()
        for r in caplog.records
    )
    # the others were drained: the API no longer takes surveys
    assert service.api is not None and service.api.accepting is False


async def test_a_bind_whose_loop_dies_of_a_bug_ends_the_process_with_a_non_zero_code(
    clean_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bind's loop reconnects for ever after link errors; anything else is a bug. It
    # used to end the bind's task in silence, the bind down and the process up.
    cfg: dict[str, Any] = config(clean_redis.url, free_port(), "http://127.0.0.1:9/", free_port())
    cfg["webhooks"] = {}

    async def dies(self: object) -> None:
        await asyncio.sleep(0.05)
        raise KeyError("a window slot nobody holds")

    monkeypatch.setattr(service_module.SmppSession, "run", dies)
    service = Service(parse_settings(cfg), ("api", "sms"), instance="bind-bug")
    caplog.set_level(logging.CRITICAL, logger="minyi")
    code = await asyncio.wait_for(service.run(), 30)
    assert code == EXIT_WORKER_FAILED
    (record,) = [r for r in caplog.records if "worker sms-client ended by itself" in r.getMessage()]
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "ended by itself" in str(record.exc_info[1]) and "bind-" in str(record.exc_info[1])
    assert isinstance(record.exc_info[1].__cause__, KeyError)
    assert service.api is not None and service.api.accepting is False


async def test_a_requested_stop_ends_with_code_zero(
    clean_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg: dict[str, Any] = config(clean_redis.url, free_port(), "http://127.0.0.1:9/", free_port())
    cfg["webhooks"] = {}
    service = Service(parse_settings(cfg), ("api", "sms"), instance="stop-test")
    caplog.set_level(logging.INFO, logger="minyi")
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.ready.wait(), 20)
    # ops see at start whether replies are read by the compiled reader (make reader)
    started = [r.getMessage() for r in caplog.records if "minyi running" in r.getMessage()]
    assert started == [f"minyi running workers=api,sms instance=stop-test reader={status()}"]
    assert status() == "compiled"  # `make test` builds it
    service.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


async def test_a_stop_while_waiting_for_redis_ends_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # nothing listens on this port: the service waits for Redis until told to stop
    cfg: dict[str, Any] = config(
        f"redis://127.0.0.1:{free_port()}/0", free_port(), "http://127.0.0.1:9/", free_port()
    )
    cfg["webhooks"] = {}
    service = Service(parse_settings(cfg), ("api",), instance="no-redis")
    caplog.set_level(logging.WARNING, logger="minyi")
    task = asyncio.create_task(service.run())
    await eventually(
        lambda: any("redis unavailable" in r.getMessage() for r in caplog.records),
        "the service waiting for Redis",
    )
    service.request_stop()
    assert await asyncio.wait_for(task, 10) == 0
