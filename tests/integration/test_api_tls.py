"""HTTPS on the API (``[api] tls_cert``/``tls_key``), served by aiohttp itself, with a
certificate made by openssl at test time; fetched by a client that trusts only that
certificate and checks the host name, as the core system would."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from devstack.localstack import TOKEN, free_port
from gateway.api.tls import server_context
from gateway.config import ApiSettings, ConfigError, parse_settings
from gateway.service import Service
from tests.integration.sms_harness import config

if TYPE_CHECKING:
    from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certificate(
    directory: Path, name: str, *, passphrase: str | None = None
) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-days", "2", "-subj", f"/CN={name}",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", str(key), "-out", str(cert),
        *(["-passout", f"pass:{passphrase}"] if passphrase else ["-noenc"]),
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


def _settings(redis_url: str, port: int, cert: Path, key: Path) -> Any:
    cfg: dict[str, Any] = config(redis_url, free_port(), "http://127.0.0.1:9/", port)
    cfg["webhooks"] = {}
    # the API alone, with no SMS side configured: /healthz is 200 (with binds configured
    # and no process running them it is 503, tests/integration/test_health_metrics.py)
    cfg["workers"] = ["api"]
    cfg["sms"]["binds"] = []
    cfg["api"]["tls_cert"] = str(cert)
    cfg["api"]["tls_key"] = str(key)
    return parse_settings(cfg)


@pytest.fixture
async def tls_service(clean_redis: RedisServer, certs: Path) -> AsyncIterator[tuple[int, Path]]:
    cert, key = make_certificate(certs, "gateway")
    port = free_port()
    service = Service(_settings(clean_redis.url, port, cert, key), ("api",), instance="tls")
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.ready.wait(), 20)
    try:
        yield port, cert
    finally:
        service.request_stop()
        assert await asyncio.wait_for(task, 30) == 0


async def test_the_api_answers_over_tls_to_a_client_that_checks_the_certificate(
    tls_service: tuple[int, Path],
) -> None:
    port, cert = tls_service
    trust = ssl.create_default_context(cafile=str(cert))  # hostname checked (127.0.0.1)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{port}/healthz", ssl=trust) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["redis"]["ok"] is True
        # a bearer-token route too: the token travels inside TLS
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(
            f"https://127.0.0.1:{port}/v1/surveys/none", ssl=trust, headers=headers
        ) as resp:
            assert resp.status == 404
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trust)
    assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    writer.close()
    await writer.wait_closed()


async def test_a_client_that_does_not_trust_the_certificate_is_refused(
    tls_service: tuple[int, Path], certs: Path
) -> None:
    port, _ = tls_service
    other, _ = make_certificate(certs, "someone-else")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(
                f"https://127.0.0.1:{port}/healthz",
                ssl=ssl.create_default_context(cafile=str(other)),
            )


async def test_plain_http_gets_no_answer_from_the_tls_port(tls_service: tuple[int, Path]) -> None:
    port, _ = tls_service
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                await resp.read()


def test_the_floor_is_tls_1_2(certs: Path) -> None:
    # Checked on the context, not by a handshake: this machine's OpenSSL policy already
    # refuses TLS 1.1 on its own, so a handshake test would pass without our floor.
    cert, key = make_certificate(certs, "floor")
    context = server_context(ApiSettings(tls_cert=str(cert), tls_key=str(key)))
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_key_of_another_certificate_stops_the_start_naming_tls_key(
    certs: Path, tmp_path: Path
) -> None:
    cert, _ = make_certificate(certs, "mine")
    _, wrong_key = make_certificate(tmp_path, "theirs")
    settings = _settings("redis://127.0.0.1:9/0", free_port(), cert, wrong_key)
    with pytest.raises(ConfigError) as info:
        Service(settings, ("api",))
    assert info.value.path == "api.tls_key"
    assert "does not load with api.tls_cert" in info.value.reason


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "locked", passphrase="s3cret-pass")
    settings = _settings("redis://127.0.0.1:9/0", free_port(), cert, key)
    with pytest.raises(ConfigError) as info:
        Service(settings, ("api",))  # stdin is not read: no prompt
    assert info.value.path == "api.tls_key"


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    settings = _settings(
        "redis://127.0.0.1:9/0", free_port(), tmp_path / "nope.pem", tmp_path / "nope.key"
    )
    with pytest.raises(ConfigError) as info:
        Service(settings, ("api",))
    assert info.value.path == "api.tls_cert"
    assert "cannot be read" in info.value.reason


def test_processes_without_the_api_do_not_read_the_files(tmp_path: Path) -> None:
    settings = _settings(
        "redis://127.0.0.1:9/0", free_port(), tmp_path / "nope.pem", tmp_path / "nope.key"
    )
    Service(settings, ("webhooks",))  # the certificate lives on the API's hosts only
