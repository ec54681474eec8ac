"""AMI on the provisioned Asterisk: the gateway's account logs in, a wrong secret does not."""

from __future__ import annotations

import asyncio

import pytest

from devstack.asterisk import AsteriskInfo

from .amitools import AmiClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


async def _raw_login(info: AsteriskInfo, secret: str) -> str:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(info.host, info.ami_port), timeout=10
    )
    try:
        banner = await asyncio.wait_for(reader.readline(), timeout=10)
        assert banner.startswith(b"Asterisk Call Manager/")
        writer.write(
            f"Action: Login\r\nActionID: t1\r\nUsername: {info.ami_username}\r\n"
            f"Secret: {secret}\r\n\r\n".encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        return response.decode()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_gateway_account_logs_in(asterisk: AsteriskInfo) -> None:
    response = await _raw_login(asterisk, asterisk.ami_secret)
    assert "Response: Success" in response


async def test_wrong_secret_is_refused(asterisk: AsteriskInfo) -> None:
    response = await _raw_login(asterisk, "not-the-secret")
    assert "Response: Error" in response


async def test_core_settings_report_asterisk_22(ami: AmiClient, asterisk: AsteriskInfo) -> None:
    settings = await ami.action({"Action": "CoreSettings"})
    assert settings.success
    assert settings["AsteriskVersion"].startswith("22."), settings["AsteriskVersion"]
    # The version provision.sh recorded is the one running.
    assert settings["AsteriskVersion"] in asterisk.version


async def test_account_cannot_run_cli_commands(ami: AmiClient) -> None:
    # manager.conf grants no "command" privilege: an AMI client cannot reach the CLI.
    response = await ami.action({"Action": "Command", "Command": "core show version"})
    assert not response.success
