"""The image of docker/Dockerfile, built for real and run: on a Debian 12 base made from
Debian's packages (scripts/bookworm-base.sh: mmdebstrap, then podman import; no image
registry), with the wheelhouse made on the host (scripts/wheelhouse.sh). podman builds
it (``--isolation chroot``: crun cannot run containers on these machines) and buildah
runs the gateway from it (``buildah run --isolation chroot --network host``) against the
test's Redis, SMS center simulator and webhook receiver on loopback: a survey posted to
the containerised API is sent, delivered, and reported on the feed.

Slow: the first build installs Debian's python3 into the base (apt) and the wheels; a
rebuild with nothing changed reuses podman's layer cache."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from devstack.localstack import (
    SECRET,
    SMPP_PASSWORD,
    SMPP_USER,
    SOURCE_ADDR,
    TEMPLATE,
    TOKEN,
    free_port,
)
from gateway.webhooks.receiver import WebhookReceiver
from smsc.simulator import SmscSimulator
from tests.integration.sms_harness import survey

if TYPE_CHECKING:
    from tests.servers import RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/minyi-gateway:test"
BASE_IMAGE = "localhost/debian:bookworm"
BUILD_TIMEOUT_S = 900


def _tools() -> None:
    missing = [t for t in ("podman", "buildah", "mmdebstrap") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed here (scripts/setup.sh installs them with apt "
            "on Debian); the image cannot be built without them"
        )
    if os.geteuid() != 0:
        pytest.skip("building with --isolation chroot needs root")


def _run(cmd: list[str], timeout: float) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd[:4])} exited {proc.returncode}\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def image(request: pytest.FixtureRequest) -> str:
    """Build docker/Dockerfile on the mmdebstrap base; the image's name."""
    _tools()
    t0 = time.monotonic()
    _run(["bash", str(REPO / "scripts/bookworm-base.sh"), "--podman"], BUILD_TIMEOUT_S)
    request.getfixturevalue("wheelhouse")  # dist/wheelhouse, which the Dockerfile COPYs
    t1 = time.monotonic()
    _run(
        [
            "podman", "build", "--isolation", "chroot", "--format", "docker",
            "--build-arg", f"BASE={BASE_IMAGE}", "-f", "docker/Dockerfile", "-t", IMAGE, str(REPO),
        ],
        BUILD_TIMEOUT_S,
    )  # fmt: skip
    print(f"image: base+wheelhouse {t1 - t0:.0f}s, podman build {time.monotonic() - t1:.0f}s")
    return IMAGE


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """A working container of the image (buildah), removed afterwards."""
    name = _run(["buildah", "from", "--pull-never", image], 120).strip().splitlines()[-1]
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, timeout=60, check=False)


def test_the_image_is_what_the_issue_asks(image: str) -> None:
    (info,) = json.loads(_run(["podman", "image", "inspect", image], 60))
    config = info["Config"]
    assert config["User"] == "minyi"  # not root
    assert config["Entrypoint"] == ["minyi"]
    assert config["Cmd"] == ["run", "--config", "/etc/minyi/minyi.toml"]
    health = info.get("Healthcheck") or config.get("Healthcheck")
    assert health and "/opt/minyi/healthcheck.py" in " ".join(health["Test"])
    # multi-stage: nothing to build with in the result, no source tree, no test tools
    history = " ".join(h.get("CreatedBy", "") for h in info.get("History", []))
    assert "pip wheel" not in history


def test_inside_the_image_the_product_only(container: str) -> None:
    out = _run(
        ["buildah", "run", "--isolation", "chroot", container, "--", "sh", "-c",
         "id -un; ls /opt/minyi/lib/python3.11/site-packages; ls /src 2>&1 || true; "
         "minyi asterisk --help >/dev/null && echo cli-ok"],
        120,
    )  # fmt: skip
    lines = out.split()
    assert lines[0] == "minyi"
    assert "gateway" in lines and "dialplans" in lines and "vosk" in lines
    assert "smsc" not in lines and "devstack" not in lines
    assert "cli-ok" in lines


def _config(redis_url: str, smsc_port: int, webhook_url: str, api_port: int) -> str:
    return f"""
workers = ["api", "sms", "webhooks"]
redis_url = "{redis_url}"
shutdown_grace_s = 5
[log]
level = "INFO"
[api]
host = "127.0.0.1"
port = {api_port}
[[api.tokens]]
name = "core"
units = ["*"]
[surveys.quiet_hours]
enabled = false
[sms]
source_addr = "{SOURCE_ADDR}"
[sms.templates.default]
text = "{TEMPLATE}"
max_parts = 2
[[sms.binds]]
name = "b1"
host = "127.0.0.1"
port = {smsc_port}
system_id = "{SMPP_USER}"
reconnect_initial_s = 0.2
reconnect_max_s = 1
[[webhooks.endpoints]]
name = "core"
url = "{webhook_url}"
max_age_hours = 1
allow_short_max_age = true
backoff_initial_s = 0.2
backoff_max_s = 1
"""


@pytest.fixture
async def peers() -> AsyncIterator[tuple[SmscSimulator, WebhookReceiver]]:
    smsc = SmscSimulator({SMPP_USER: SMPP_PASSWORD})
    await smsc.start()
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    try:
        yield smsc, receiver
    finally:
        await receiver.close()
        await smsc.stop()


async def test_the_gateway_runs_from_the_image_and_a_survey_reaches_the_feed(
    container: str,
    clean_redis: RedisServer,
    peers: tuple[SmscSimulator, WebhookReceiver],
    tmp_path: Path,
) -> None:
    smsc, receiver = peers
    api_port = free_port()
    config = tmp_path / "minyi.toml"
    config.write_text(_config(clean_redis.url, smsc.port, receiver.url, api_port))
    config.chmod(0o644)
    # the config mounted where the image expects it; secrets from the environment
    proc = await asyncio.create_subprocess_exec(
        "buildah", "run", "--isolation", "chroot", "--network", "host",
        "-v", f"{config}:/etc/minyi/minyi.toml:ro",
        "-e", f"MINYI_API_TOKEN_CORE={TOKEN}",
        "-e", f"MINYI_SMPP_PASSWORD_B1={SMPP_PASSWORD}",
        "-e", f"MINYI_WEBHOOK_SECRET_CORE={SECRET}",
        container, "--", "minyi", "run", "--config", "/etc/minyi/minyi.toml", "--instance", "image",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    output = bytearray()

    async def drain() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            output.extend(chunk)

    reader = asyncio.create_task(drain())
    api = f"http://127.0.0.1:{api_port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _until(lambda: _healthy(http, api), 60, output)
            body = survey(9001)  # survey id "S9001"
            async with http.post(
                f"{api}/v1/surveys", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as resp:
                assert resp.status == 201, await resp.text()

            async def delivered() -> bool:
                return "survey.delivered" in [e["type"] for e in receiver.events.get("S9001", [])]

            await _until(delivered, 60, output)
            types = [e["type"] for e in receiver.events["S9001"]]
            assert types[:3] == ["survey.accepted", "survey.queued", "survey.submitted"], types
            # the healthcheck the image declares, run inside it, against the live gateway
            check = await asyncio.create_subprocess_exec(
                "buildah", "run", "--isolation", "chroot", "--network", "host",
                "-e", f"MINYI_HEALTH_URL={api}/healthz",
                container, "--", "python3", "/opt/minyi/healthcheck.py",
            )  # fmt: skip
            assert await asyncio.wait_for(check.wait(), 60) == 0
    finally:
        # What `docker stop` does: SIGTERM to the gateway (the container's main process;
        # buildah itself would answer a signal by killing it). It drains and exits 0.
        gateway = _gateway_pid(proc.pid)
        if gateway is not None:
            os.kill(gateway, signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            code = await proc.wait()
        await reader
    said = output.decode()
    # the reply reader compiled for the image's python3 (minyi-reader, wheelhouse.sh)
    assert "minyi running workers=api,sms,webhooks instance=image reader=compiled" in said, said
    assert "draining" in said and said.rstrip().endswith("stopped"), said
    assert code == 0, said


def _gateway_pid(group: int) -> int | None:
    """The gateway process buildah started (in the process group ``group``)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # buildah-chroot-exec carries the same arguments: the gateway is the python
        if (
            int(fields[2]) == group
            and b"python3" in cmdline[0]
            and b"run" in cmdline
            and any(part.endswith(b"/minyi") for part in cmdline[:2])
        ):
            return int(stat.parent.name)
    return None


async def _healthy(http: aiohttp.ClientSession, api: str) -> bool:
    try:
        async with http.get(f"{api}/healthz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _until(condition: object, within_s: float, output: bytearray) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s}s; the gateway said:\n{output.decode()}")
        await asyncio.sleep(0.1)
