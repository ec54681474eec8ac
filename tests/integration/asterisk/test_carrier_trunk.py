"""The carrier trunk's options (``[dialer.asterisk]``, mode "own"), each rendered and
used against the test carrier (the outside world of dialplans/test/, on 127.0.0.2):
outbound registration with digest credentials, the From identity, the number rules,
the NAT addresses, and TCP and TLS transports. The carrier reports what it received in
a ``WorldSaw`` UserEvent: the dialled number and the From, Via and Contact headers, and
where it sends its RTP.

Each test runs an Asterisk of its own (a few seconds to start), rendered with its
options."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.asterisk import (
    GATEWAY_IP,
    WORLD_IP,
    AsteriskHarnessError,
    AsteriskInfo,
    AsteriskProcess,
    asterisk_home,
    provision,
)
from devstack.localstack import free_port
from gateway.config import NumberRule, rewrite
from gateway.dialer.ami import OriginateRequest
from gateway.dialer.asterisk import CALLBACK_CONTEXT

from .amitools import AmiClient, for_channel, new_channel_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# The carrier's side: numbers 139 0000 XXXX (with a 0 in front too) answer, say what
# they received, and hang up.
WORLD_SAW = r"""
[minyi-world]
exten => _1390000XXXX,1,Set(SAW=${EXTEN})
 same => n,Goto(minyi-world-saw,s,1)
exten => _01390000XXXX,1,Set(SAW=${EXTEN})
 same => n,Goto(minyi-world-saw,s,1)

[minyi-world-saw]
exten => s,1,Answer()
 same => n,Set(F=${PJSIP_HEADER(read,From)})
 same => n,Set(V=${PJSIP_HEADER(read,Via)})
 same => n,Set(C=${PJSIP_HEADER(read,Contact)})
 same => n,Set(R=${CHANNEL(rtp,dest)})
 same => n,UserEvent(WorldSaw,Number: ${SAW},From: ${F},Via: ${V},Contact: ${C},RtpDest: ${R})
 same => n,Wait(1)
 same => n,Hangup(16)
"""

# The carrier as a registrar that challenges: the trunk's account is an AOR of the
# endpoint our calls arrive on, and that endpoint now wants digest credentials.
ACCOUNT, ACCOUNT_PW = "gw-account", "carrier-pw-8731"
# The carrier keeps sending RTP where the SDP said (no symmetric RTP: it would follow
# the packets' source instead, which is the gateway's real address either way).
SDP_RTP = """
[world-in](+)
rtp_symmetric=no
"""
WORLD_REGISTRAR = (
    SDP_RTP
    + f"""
[world-in](+)
aors={ACCOUNT}
auth=carrier-auth

[{ACCOUNT}]
type=aor
max_contacts=1
remove_existing=yes

[carrier-auth]
type=auth
auth_type=digest
username={ACCOUNT}
password={ACCOUNT_PW}
"""
)


@contextmanager
def carrier_asterisk(
    tune: dict[str, Any],
    world_pjsip: str = "",
    before_start: Callable[[AsteriskProcess], dict[str, Any]] | None = None,
) -> Iterator[AsteriskInfo]:
    """An Asterisk rendered with trunk options ``tune`` (and more from ``before_start``,
    which may write files into the session first), with the carrier's extras."""
    try:
        version = provision()
    except AsteriskHarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    proc = AsteriskProcess(
        asterisk_home() / "root",
        version["asterisk"],
        tune=tune,
        world_pjsip=world_pjsip,
        world_extensions=WORLD_SAW,
    )
    if before_start is not None:
        proc.tune.update(before_start(proc))
    try:
        info = proc.start()
    except AsteriskHarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield info
    finally:
        proc.stop()


@pytest.fixture
async def ami_for() -> AsyncIterator[Callable[[AsteriskInfo], Any]]:
    clients: list[AmiClient] = []

    async def connect(info: AsteriskInfo) -> AmiClient:
        client = AmiClient(info)
        await client.connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


async def _call(
    ami: AmiClient, info: AsteriskInfo, number: str, rules: tuple[NumberRule, ...] = ()
) -> dict[str, str]:
    """Dial ``number`` as the dialer does (rules, then the trunk); what the carrier saw."""
    cid = new_channel_id()
    request = OriginateRequest(
        channel_id=cid,
        number=rewrite(number, rules),
        trunk=info.trunk,
        context=CALLBACK_CONTEXT,
        variables={"MINYI_SURVEY_ID": "trunk-test", "MINYI_ATTEMPT_ID": cid, "MINYI_UNIT": ""},
        ring_timeout_s=15,
    )
    ami.manager.send_action(request.fields())
    saw = await ami.wait_for(
        lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "WorldSaw", "WorldSaw"
    )
    await ami.action({"Action": "Hangup", "Channel": f"/^PJSIP/{info.trunk}-.*$/"})
    return {k: str(v) for k, v in saw.items()}


async def test_registration_from_identity_number_rules_and_nat(ami_for: Any) -> None:
    tune = {
        "trunk_username": ACCOUNT,
        "trunk_password": ACCOUNT_PW,
        "trunk_register": True,
        "trunk_from_user": "057188880000",
        "trunk_from_domain": "ims.carrier.example",
        "external_signaling_address": "192.0.2.7",
        "external_media_address": "192.0.2.8",
        # our side of the NAT: our own address is inside, the carrier (127.0.0.2) is not
        "local_net": (f"{GATEWAY_IP}/32",),
    }
    with carrier_asterisk(tune, WORLD_REGISTRAR) as info:
        ami: AmiClient = await ami_for(info)
        # registered at the carrier, which challenged for the digest
        await _registered(ami)
        # the registrar's side (the gateway's AMI user may not list contacts: its CLI)
        contacts = _cli(info, "pjsip show contacts")
        assert re.search(rf"Contact:\s+{ACCOUNT}/sip:{ACCOUNT}@192\.0\.2\.7:", contacts), contacts
        saw = await _call(ami, info, "13900001234", (NumberRule("^1[3-9]", prefix="0"),))
    assert saw["Number"] == "013900001234"  # rewritten before it was dialled
    assert re.search(r"<sip:057188880000@ims\.carrier\.example>", saw["From"]), saw
    assert saw["Via"].startswith("SIP/2.0/UDP "), saw
    assert "192.0.2.7" in saw["Contact"], saw  # external_signaling_address
    assert saw["RtpDest"].startswith("192.0.2.8:"), saw  # external_media_address in the SDP


async def test_without_nat_settings_the_real_addresses_go_out(ami_for: Any) -> None:
    """The NAT test above cannot pass by accident: without the settings, the carrier
    sees the gateway's own address."""
    with carrier_asterisk({}, SDP_RTP) as info:
        ami: AmiClient = await ami_for(info)
        saw = await _call(ami, info, "13900001235")
    assert saw["Number"] == "13900001235"
    assert GATEWAY_IP in saw["Contact"] and saw["RtpDest"].startswith(GATEWAY_IP), saw
    assert "057188880000" not in saw["From"]


async def test_tcp_transport(ami_for: Any) -> None:
    world_tcp = "[world-tcp]\ntype=transport\nprotocol=tcp\nbind={{world_bind}}:{{world_port}}\n"
    with carrier_asterisk({"trunk_transport": "tcp"}, world_tcp) as info:
        ami: AmiClient = await ami_for(info)
        saw = await _call(ami, info, "13900001236")
    assert saw["Via"].startswith("SIP/2.0/TCP "), saw
    assert saw["Number"] == "13900001236"


def _certificate(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-days", "2", "-noenc", "-subj", "/CN=carrier.test",
            "-addext", f"subjectAltName=IP:{WORLD_IP},IP:{GATEWAY_IP}",
            "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.pem"),
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _tls_files(carrier_tls_port: int, trusted: str) -> Callable[[AsteriskProcess], dict[str, Any]]:
    def files(proc: AsteriskProcess) -> dict[str, Any]:
        _certificate(proc.dir / "tls")
        _certificate(proc.dir / "other")  # someone else's
        return {
            "trunk_transport": "tls",
            "trunk_port": carrier_tls_port,
            "sip_tls_port": free_port(GATEWAY_IP),
            "tls_cert_file": f"{proc.chroot_dir}/tls/tls.pem",
            "tls_key_file": f"{proc.chroot_dir}/tls/tls.key",
            # the carrier's certificate is its own CA
            "tls_ca_file": f"{proc.chroot_dir}/{trusted}/tls.pem",
        }

    return files


def _world_tls(carrier_tls_port: int) -> str:
    return (
        f"[world-tls]\ntype=transport\nprotocol=tls\nbind={{{{world_bind}}}}:{carrier_tls_port}\n"
        "cert_file={{session_dir}}/tls/tls.pem\npriv_key_file={{session_dir}}/tls/tls.key\n"
        "method=tlsv1_2\n"
    )


async def test_tls_transport_verifying_the_carrier(ami_for: Any) -> None:
    port = free_port(WORLD_IP)
    with carrier_asterisk({}, _world_tls(port), before_start=_tls_files(port, "tls")) as info:
        ami: AmiClient = await ami_for(info)
        saw = await _call(ami, info, "13900001237")
    assert saw["Via"].startswith("SIP/2.0/TLS "), saw
    assert saw["Number"] == "13900001237"


async def test_tls_refuses_a_carrier_it_cannot_verify(ami_for: Any) -> None:
    port = free_port(WORLD_IP)
    with carrier_asterisk({}, _world_tls(port), before_start=_tls_files(port, "other")) as info:
        ami: AmiClient = await ami_for(info)
        cid = new_channel_id()
        request = OriginateRequest(cid, "13900001238", info.trunk, CALLBACK_CONTEXT)
        ami.manager.send_action(request.fields())
        await ami.wait_for(for_channel(cid, "Hangup"), "the call's end")
    assert not [e for e in ami.events if e.get("UserEvent") == "WorldSaw"]  # never reached


def _cli(info: AsteriskInfo, command: str) -> str:
    """An Asterisk CLI command through the running Asterisk's control socket."""
    session = info.recordings_dir_in_chroot.rsplit("/", 1)[0]
    proc = subprocess.run(
        ["chroot", str(asterisk_home() / "root"), "/usr/sbin/asterisk",
         "-C", f"{session}/etc/asterisk.conf", "-rx", command],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return proc.stdout + proc.stderr


async def _registered(ami: AmiClient, within_s: float = 20.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + within_s
    while True:
        regs = await _list(ami, "PJSIPShowRegistrationsOutbound", "OutboundRegistrationDetail")
        if regs and regs[0].get("Status") == "Registered":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not registered within {within_s}s: {regs}")
        await asyncio.sleep(0.3)


async def _list(ami: AmiClient, action: str, event: str) -> list[dict[str, str]]:
    """The events a list action answers with (panoramisk gathers them)."""
    answer = await ami.action({"Action": action})
    items = answer if isinstance(answer, list) else [answer]
    return [{k: str(v) for k, v in m.items()} for m in items if m.get("Event") == event]
