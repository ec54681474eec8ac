"""The gateway joins a site's existing PBX (``[dialer.asterisk] mode = "include"``).

The PBX (devstack.asterisk.SitePbx) has its own transport, carrier trunk, extensions
1001/1002 and a dialplan routing the carrier's calls; the gateway's rendered files are
added with ``#include``, as an operator adds them. Shown here on a real Asterisk 22:
callbacks reach an existing extension, the site's inbound calls route as before (its
own globals intact), and reloading the configuration keeps a call in progress."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Iterator

import pytest

from devstack.asterisk import (
    UNIT_A,
    AsteriskHarnessError,
    AsteriskInfo,
    SitePbx,
    asterisk_home,
    provision,
)
from gateway.dialer.asterisk import CALLBACK_CONTEXT

from .amitools import AmiClient, for_channel, new_channel_id, user_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[SitePbx, AsteriskInfo]]:
    try:
        version = provision()
        pbx = SitePbx(asterisk_home() / "root", version["asterisk"])
        info = pbx.start()
    except AsteriskHarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield pbx, info
    finally:
        pbx.stop()


@pytest.fixture
async def gateway_ami(site: tuple[SitePbx, AsteriskInfo]) -> AsyncIterator[AmiClient]:
    """The gateway's AMI user, from the included manager_minyi.conf."""
    client = AmiClient(site[1])
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def admin_ami(site: tuple[SitePbx, AsteriskInfo]) -> AsyncIterator[AmiClient]:
    """The site's own administrator (all permissions)."""
    pbx, info = site
    client = AmiClient(
        dataclasses.replace(info, ami_username=pbx.admin_username, ami_secret=pbx.admin_secret)
    )
    await client.connect()
    yield client
    await client.close()


def test_the_rendered_files_define_no_device_of_their_own(
    site: tuple[SitePbx, AsteriskInfo],
) -> None:
    pbx, _ = site
    files = pbx.rendered()
    assert set(files) == {"extensions_minyi.conf", "queues_minyi.conf", "manager_minyi.conf"}
    sections = set(re.findall(r"^\[([^\]]+)\]", "\n".join(files.values()), flags=re.M))
    assert all(s.startswith("minyi") for s in sections), sections


def _vars(cid: str) -> dict[str, str]:
    return {
        "MINYI_SURVEY_ID": "site-survey",
        "MINYI_ATTEMPT_ID": cid,
        "MINYI_REC_BASENAME": f"site-{cid[-12:]}",
        "MINYI_UNIT": UNIT_A,
    }


async def test_a_callback_reaches_the_sites_extension_and_outlives_a_reload(
    gateway_ami: AmiClient, admin_ami: AmiClient, site: tuple[SitePbx, AsteriskInfo]
) -> None:
    pbx, _ = site
    cid = new_channel_id()
    # out through the site's own trunk (dial_string "PJSIP/${NUMBER}@site-trunk")
    gateway_ami.originate("13800008000", CALLBACK_CONTEXT, _vars(cid), cid)
    answered = await gateway_ami.wait_for(user_event(cid, "MinyiCallbackAnswered"), "answered")
    queued = await gateway_ami.wait_for(user_event(cid, "MinyiCallbackQueued"), "queued")
    assert queued["Queue"] == f"minyi-unit-{UNIT_A}"
    connect = await gateway_ami.wait_for(for_channel(cid, "AgentConnect"), "AgentConnect")
    assert connect["MemberName"] == pbx.AGENT  # the site's existing extension
    assert connect["Interface"] == f"PJSIP/{pbx.AGENT}"

    # the operator reloads after adding or changing the includes: the call goes on
    for command in (
        "dialplan reload",
        "module reload res_pjsip.so",
        "queue reload all",
        "manager reload",
    ):
        reply = await admin_ami.action({"Action": "Command", "Command": command})
        assert reply.success, (command, reply)
    channels = await admin_ami.action({"Action": "CoreShowChannels"})
    ours = [c for c in channels if c.get("Event") == "CoreShowChannel" and c.get("Linkedid") == cid]
    assert len(ours) >= 2, channels  # the citizen and the agent, still bridged
    assert not [e for e in gateway_ami.events if for_channel(cid, "Hangup")(e)]

    hangup = await gateway_ami.action({"Action": "Hangup", "Channel": answered["Channel"]})
    assert hangup.success
    ended = await gateway_ami.wait_for(user_event(cid, "MinyiCallbackEnded"), "ended")
    assert ended["Stage"] == "queued" and ended["Agent"] == pbx.AGENT
    assert ended["HangupCause"] == "16"  # a normal clearing: ours, not the reload's


async def test_the_sites_inbound_calls_route_as_before(
    admin_ami: AmiClient, site: tuple[SitePbx, AsteriskInfo]
) -> None:
    pbx, _ = site
    cid = new_channel_id()
    # the carrier sends the site a call for its DID, as it always has
    admin_ami.manager.send_action(
        {
            "Action": "Originate",
            "Channel": f"PJSIP/{pbx.DID}@world-to-site",
            "Application": "Wait",
            "Data": "3",
            "Async": "true",
            "ChannelId": cid,
        }
    )
    # over SIP the site's side is a call of its own (its own Linkedid): found by the DID
    inbound = await admin_ami.wait_for(
        lambda e: e.get("UserEvent") == "SiteInbound" and e.get("Did") == pbx.DID, "SiteInbound"
    )
    assert inbound["Channel"].startswith(f"PJSIP/{pbx.TRUNK}-")  # came in on the site's trunk
    assert inbound["Did"] == pbx.DID
    assert inbound["Site"] == pbx.SITE_GLOBAL  # the site's [globals] were not replaced
    dial = await admin_ami.wait_for(
        lambda e: e.get("Event") == "DialEnd" and e.get("Channel") == inbound["Channel"], "DialEnd"
    )
    assert dial["DestChannel"].startswith("PJSIP/1002-") and dial["DialStatus"] == "ANSWER"
    await admin_ami.wait_for(for_channel(cid, "Hangup"), "the inbound call's end")
