"""gateway.dialer.asterisk: rendering the Asterisk configs, and refusing unsafe settings."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gateway.config import AgentPhone, AsteriskSettings, UnitQueue
from gateway.dialer.asterisk import (
    INCLUDE_FILES,
    OWN_FILES,
    AsteriskConfError,
    is_safe_rec_basename,
    queue_name,
    render,
    render_template,
)

REPO = Path(__file__).resolve().parents[2]


def settings(**overrides: object) -> AsteriskSettings:
    base = AsteriskSettings(
        ami_username="minyi",
        ami_secret="s3cret-Value",
        recordings_dir="/var/spool/minyi/recordings",
        trunk_host="10.20.30.40",
        agents=(
            AgentPhone("agent1", password="pw-1"),
            AgentPhone("agent2", contact="sip:agent2@10.1.1.2:5060"),
        ),
        units=(UnitQueue("330602", ("agent1", "agent2")), UnitQueue("330603", ("agent2",))),
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def sections(text: str) -> list[str]:
    return re.findall(r"^\[([^\]]+)\]", text, flags=re.M)


def test_renders_the_four_files_with_every_placeholder_filled() -> None:
    files = render(settings())
    assert sorted(files) == ["extensions.conf", "manager.conf", "pjsip.conf", "queues.conf"]
    for name, text in files.items():
        assert "{{" not in text and "}}" not in text, name


def test_pjsip_has_the_trunk_identified_by_address_and_the_agents() -> None:
    pjsip = render(settings())["pjsip.conf"]
    assert "bind=127.0.0.1:5060" in pjsip
    assert "contact=sip:10.20.30.40:5060" in pjsip
    assert "match=10.20.30.40" in pjsip
    # agent1 registers with a password; agent2 has a fixed contact and no auth.
    assert "[agent1-auth]" in pjsip and "password=pw-1" in pjsip
    assert "contact=sip:agent2@10.1.1.2:5060" in pjsip
    assert "[agent2-auth]" not in pjsip
    assert sections(pjsip).count("agent1") == 2  # endpoint + aor
    # Media always through Asterisk, otherwise MixMonitor records nothing.
    assert "direct_media=no" in pjsip


def test_trunk_auth_is_rendered_only_when_configured() -> None:
    plain = render(settings())["pjsip.conf"]
    assert "outbound_auth" not in plain
    auth = render(settings(trunk_username="gw", trunk_password="pw"))["pjsip.conf"]
    assert "outbound_auth=minyi-trunk-auth" in auth
    assert "[minyi-trunk-auth]" in auth
    with pytest.raises(AsteriskConfError, match="go together"):
        render(settings(trunk_username="gw"))


def test_one_queue_per_unit_with_its_agents_as_static_members() -> None:
    queues = render(settings(agents_log_in=False))["queues.conf"]
    assert "persistentmembers=no" in queues
    assert "[minyi-unit-330602](minyi-queue)" in queues
    assert "member => PJSIP/agent1,0,agent1,PJSIP/agent1" in queues
    unit_b = queues.split("[minyi-unit-330603](minyi-queue)")[1]
    assert "PJSIP/agent2" in unit_b and "PJSIP/agent1" not in unit_b
    assert queue_name("330602") == "minyi-unit-330602"


def test_manager_grants_least_privilege_and_only_permitted_networks() -> None:
    manager = render(settings(ami_permit=("127.0.0.1/32", "10.0.0.0/8")))["manager.conf"]
    assert "deny=0.0.0.0/0.0.0.0" in manager
    assert "permit=127.0.0.1/255.255.255.255" in manager
    assert "permit=10.0.0.0/255.0.0.0" in manager
    write = re.search(r"^write=(.*)$", manager, flags=re.M)
    assert write is not None
    assert "command" not in write.group(1) and "system" not in write.group(1)
    assert "originate" in write.group(1)


def test_dialplan_globals_come_from_settings() -> None:
    ext = render(settings(greeting_prompt="custom/hello", default_unit="330603"))["extensions.conf"]
    assert "MINYI_GREETING=custom/hello" in ext
    assert "MINYI_DEFAULT_QUEUE=minyi-unit-330603" in ext
    assert "MINYI_RECORDINGS_DIR=/var/spool/minyi/recordings" in ext
    for context in ("minyi-callback", "minyi-ivr", "minyi-from-trunk", "minyi-agents"):
        assert f"[{context}]" in ext


def test_mixmonitor_and_record_take_only_checked_names() -> None:
    ext = render(settings())["extensions.conf"]
    # Only the dialplan's validated copy of the name (MINYI_REC, and the reason file
    # built from it) and config globals: never the gateway's raw variable, never
    # anything the caller controls (caller id, dialled digits, headers).
    allowed = {
        "MINYI_RECORDINGS_DIR",
        "MINYI_REC",
        "MINYI_REASON_FILE",
        "MINYI_REASON_SILENCE",
        "MINYI_REASON_MAX",
    }
    for app in ("MixMonitor(", "Record("):
        lines = [line for line in ext.splitlines() if app in line and not line.startswith(";")]
        assert lines, app
        for line in lines:
            assert set(re.findall(r"\$\{([A-Z_]+)\}", line)) <= allowed, line
    reason = next(line for line in ext.splitlines() if "Set(MINYI_REASON_FILE=" in line)
    assert "${MINYI_REC}" in reason
    mixmonitor = next(line for line in ext.splitlines() if "MixMonitor(" in line)
    assert "r(" in mixmonitor and "t(" in mixmonitor


@pytest.mark.parametrize(
    "overrides",
    [
        {"agents": (AgentPhone("agent1\n[evil]", password="x"),)},
        {"agents": (AgentPhone("agent1"),)},  # neither password nor contact
        {"agents": (AgentPhone("agent1", password="pw\ntype=aor"),)},
        {"ami_secret": "two words"},
        {"ami_secret": "line\nbreak"},
        {"greeting_prompt": "hello,evil"},
        {"greeting_prompt": "hello)"},
        {"recordings_dir": "relative/dir"},
        {"recordings_dir": "/var/rec dir"},
        {"trunk_host": "10.0.0.1\nmatch=0.0.0.0/0"},
        {"sip_bind": "localhost"},
        {"sip_port": 70000},
        {"codecs": ("opus",)},
        {"units": (UnitQueue("330602", ("agent9",)),)},
        {"units": (UnitQueue("330602", ()), UnitQueue("330602", ()))},
        {"units": ()},
        {"units": (UnitQueue("33 06", ()),)},
        {"default_unit": "111111"},
        {"ami_permit": ("not-a-net",)},
        {"agent_ring_s": 0},
        {"trunk_name": "agent1"},
        {"extra": {"k": "a\nb"}},
    ],
)
def test_unsafe_or_inconsistent_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(AsteriskConfError):
        render(settings(**overrides))


def test_rec_basename_shape() -> None:
    assert is_safe_rec_basename("s-123_a-1")
    for bad in ("", "a" * 101, "../x", "a,b", "a b", "名字", "x.wav", "a)t(b"):
        assert not is_safe_rec_basename(bad), bad


def test_template_placeholders() -> None:
    assert render_template("a={{x}} ${ASTERISK} $[1+1] @{y}", {"x": "1"}) == (
        "a=1 ${ASTERISK} $[1+1] @{y}"
    )
    with pytest.raises(AsteriskConfError, match="'y'"):
        render_template("{{y}}", {})
    with pytest.raises(AsteriskConfError):
        render_template("{{ x}}", {"x": "1"})


def test_template_dir_can_be_replaced(tmp_path: Path) -> None:
    for name in ("pjsip_agent.conf.tmpl", "queues_unit.conf.tmpl"):
        (tmp_path / name).write_text("")
    for name in (*OWN_FILES, *INCLUDE_FILES):
        (tmp_path / f"{name}.tmpl").write_text(f"; {name} {{{{site}}}}\n")
    files = render(settings(extra={"site": "shaoxing"}), template_dir=tmp_path)
    assert files["manager.conf"] == "; manager.conf shaoxing\n"


def test_provisioned_modules_conf_never_loads_the_forbidden_modules() -> None:
    text = (REPO / "scripts/asterisk/modules.conf").read_text()
    noload = set(re.findall(r"^noload\s*=>\s*(\S+)", text, flags=re.M))
    load = set(re.findall(r"^load\s*=>\s*(\S+)", text, flags=re.M))
    required = {
        "res_srtp.so",
        "res_resolver_unbound.so",
        "res_config_ldap.so",
        "res_config_pgsql.so",
        "res_stir_shaken.so",
    }
    assert required <= noload
    assert not (noload & load)


# --- mode "include": only what goes into a site's PBX -------------------------------------
def include(**overrides: object) -> AsteriskSettings:
    given: dict[str, object] = {
        "mode": "include",
        "trunk_host": "",
        "agents": (AgentPhone("1001", interface="PJSIP/1001"), AgentPhone("1002")),
        "units": (UnitQueue("330602", ("1001", "1002")),),
    }
    return dataclasses.replace(settings(), **(given | overrides))


def test_include_mode_renders_only_contexts_queues_and_the_ami_user() -> None:
    files = render(include())
    assert set(files) == set(INCLUDE_FILES)
    every = "\n".join(files.values())
    # nothing of the site's own: no transport, endpoint, trunk, [general] or [globals]
    for line in ("type=transport", "type=endpoint", "type=aor", r"\[general\]", r"\[globals\]"):
        assert not re.search(f"^{line}", every, flags=re.M), line
    sections = set(re.findall(r"^\[([^\]]+)\]", every, flags=re.M))
    assert sections == {
        "minyi-sub-setup",
        "minyi-callback",
        "minyi-agent-predial",
        "minyi-agent-codes",
        "minyi-sub-agent-code",
        "minyi-sub-agent-of",
        "minyi-ivr",
        "minyi-queue",
        "minyi-unit-330602",
        "minyi",
    }
    # the agents are the site's extensions
    queues = render(include(agents_log_in=False))["queues_minyi.conf"]
    assert "member => PJSIP/1001,0,1001,PJSIP/1001" in queues
    assert "member => PJSIP/1002,0,1002,PJSIP/1002" in queues  # default interface
    assert "write=call,agent,user,originate,reporting" in files["manager_minyi.conf"]


def test_own_mode_holds_the_include_files_inside_its_whole_files() -> None:
    same_agents = (AgentPhone("agent1", interface="PJSIP/agent1"), AgentPhone("agent2"))
    own, inc = render(settings()), render(include(agents=same_agents, units=settings().units))
    assert set(own) == set(OWN_FILES)
    contexts = inc["extensions_minyi.conf"].split("[minyi-sub-setup]", 1)[1]
    assert contexts in own["extensions.conf"]
    assert "[minyi-from-trunk]" in own["extensions.conf"]  # own mode's endpoints land there
    assert "[minyi-from-trunk]" not in inc["extensions_minyi.conf"]


def test_include_mode_refuses_what_would_define_a_device() -> None:
    with pytest.raises(AsteriskConfError, match="agent 1001 password is not used"):
        render(
            include(
                agents=(AgentPhone("1001", password="pw-1"),),
                units=(UnitQueue("330602", ("1001",)),),
            )
        )
    with pytest.raises(AsteriskConfError, match="interface"):
        render(
            include(
                agents=(AgentPhone("1001", interface="PJSIP/1001,bad"),),
                units=(UnitQueue("330602", ("1001",)),),
            )
        )
    with pytest.raises(AsteriskConfError, match="interface is only for mode include"):
        wrong = AgentPhone("agent1", contact="sip:a@1.2.3.4", interface="X/1")
        render(settings(agents=(wrong, *settings().agents[1:])))


# --- the carrier trunk's options (mode "own") ---------------------------------------------
def _section(text: str, name: str, kind: str) -> str:
    for block in re.split(r"\n(?=\[)", text):
        if block.startswith(f"[{name}]") and f"type={kind}" in block:
            return block
    raise AssertionError(f"no [{name}] type={kind} in\n{text}")


def test_udp_is_the_default_and_alone() -> None:
    pjsip = render(settings())["pjsip.conf"]
    assert re.findall(r"^protocol=(\w+)", pjsip, flags=re.M) == ["udp"]
    assert "contact=sip:10.20.30.40:5060\n" in pjsip
    assert "type=registration" not in pjsip and "from_user" not in pjsip


@pytest.mark.parametrize(("kind", "port"), [("tcp", "5060"), ("tls", "5061")])
def test_tcp_and_tls_get_a_transport_the_trunk_uses(kind: str, port: str) -> None:
    extra: dict[str, object] = {"trunk_transport": kind}
    if kind == "tls":
        extra |= {"tls_cert_file": "/etc/asterisk/gw.pem", "tls_key_file": "/etc/asterisk/gw.key",
                  "tls_ca_file": "/etc/asterisk/carrier-ca.pem"}  # fmt: skip
    pjsip = render(settings(**extra))["pjsip.conf"]
    transport = _section(pjsip, f"minyi-{kind}", "transport")
    assert f"protocol={kind}" in transport and f"bind=127.0.0.1:{port}" in transport
    trunk = pjsip.split("[minyi-trunk](minyi-endpoint)", 1)[1].split("\n[", 1)[0]
    assert f"transport=minyi-{kind}" in trunk
    assert f"contact=sip:10.20.30.40:5060;transport={kind}" in pjsip
    assert "[minyi-udp]" in pjsip  # the agents' phones stay on UDP
    if kind == "tls":
        assert (
            "verify_server=yes" in transport
            and "ca_list_file=/etc/asterisk/carrier-ca.pem" in transport
        )
        assert "method=tlsv1_2" in transport


def test_tls_needs_its_files_and_a_ca_to_verify() -> None:
    with pytest.raises(AsteriskConfError, match="tls_cert_file and tls_key_file are required"):
        render(settings(trunk_transport="tls"))
    with pytest.raises(AsteriskConfError, match="tls_ca_file is required"):
        render(settings(trunk_transport="tls", tls_cert_file="/a.pem", tls_key_file="/a.key"))
    with pytest.raises(AsteriskConfError, match="tls_cert_file must go with"):
        render(settings(tls_cert_file="/a.pem"))


def test_registration_from_identity_and_nat() -> None:
    pjsip = render(
        settings(
            trunk_username="gw-account",
            trunk_password="pw-account",
            trunk_register=True,
            trunk_from_user="057188880000",
            trunk_from_domain="ims.carrier.example",
            external_signaling_address="203.0.113.7",
            external_media_address="203.0.113.8",
            local_net=("10.0.0.0/8", "192.168.1.0/24"),
        )
    )["pjsip.conf"]
    reg = _section(pjsip, "minyi-trunk-reg", "registration")
    assert "server_uri=sip:10.20.30.40:5060\n" in reg
    assert "client_uri=sip:gw-account@ims.carrier.example\n" in reg
    assert "outbound_auth=minyi-trunk-auth" in reg and "endpoint=minyi-trunk" in reg
    trunk = pjsip.split("[minyi-trunk](minyi-endpoint)", 1)[1].split("\n[", 1)[0]
    assert "from_user=057188880000" in trunk and "from_domain=ims.carrier.example" in trunk
    udp = _section(pjsip, "minyi-udp", "transport")
    assert "external_signaling_address=203.0.113.7" in udp
    assert "external_media_address=203.0.113.8" in udp
    assert "local_net=10.0.0.0/8" in udp and "local_net=192.168.1.0/24" in udp


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("trunk_from_user", "a;b", "trunk_from_user must match"),
        ("trunk_from_domain", "x\ny", "trunk_from_domain must match"),
        ("external_media_address", "carrier.example", "external_media_address must be an IP"),
        ("local_net", ("10.0.0.0/33",), "local_net entries must be networks"),
        ("trunk_transport", "sctp", "trunk_transport must be one of"),
    ],
)
def test_trunk_options_are_checked(field: str, value: object, message: str) -> None:
    with pytest.raises(AsteriskConfError, match=message):
        render(settings(**{field: value}))


def test_registration_needs_someone_to_register_as() -> None:
    with pytest.raises(AsteriskConfError, match="trunk_register needs trunk_username"):
        render(settings(trunk_register=True))


# --- the agents' phones: presence, feature codes, what the agent leg carries --------------
def test_agent_phones_are_qualified_so_a_dead_phone_is_unavailable() -> None:
    pjsip = render(settings())["pjsip.conf"]
    for agent in ("agent1", "agent2"):  # registering, and with a fixed contact
        assert "qualify_frequency=10" in _section(pjsip, agent, "aor")
    assert "qualify_frequency=3" in render(settings(agent_qualify_s=3))["pjsip.conf"]
    with pytest.raises(AsteriskConfError, match="agent_qualify_s"):
        render(settings(agent_qualify_s=5000))


def test_agents_who_log_in_are_dynamic_members_kept_across_a_restart() -> None:
    queues = render(settings())["queues.conf"]
    assert "persistentmembers=yes" in queues
    assert "member =>" not in queues


def test_feature_codes_are_configurable_and_find_the_calling_agent() -> None:
    ext = render(settings())["extensions.conf"]
    for code, action in (("*45", "login"), ("*46", "logout"), ("*47", "pause"), ("*48", "unpause")):
        assert f"exten => {code},1,Gosub(minyi-sub-agent-code,s,1({action}))" in ext
    # own mode: the phones' context searches the codes before refusing everything else
    agents_ctx = ext.split("[minyi-agents]\n", 1)[1].split("\n\n", 1)[0]
    assert agents_ctx.splitlines()[:2] == [
        "include => minyi-agent-codes",
        "include => minyi-agents-refused",
    ]
    assert ' same => n,GotoIf($["${MINYI_EP}" = "agent2"]?agent_2)' in ext
    assert "Set(MINYI_QUEUES=minyi-unit-330602&minyi-unit-330603)" in ext  # agent2's units
    custom = render(settings(login_code="#71", pause_code="*9", login_prompt="custom/in"))
    assert "exten => #71,1,Gosub(minyi-sub-agent-code,s,1(login))" in custom["extensions.conf"]
    assert "Set(MINYI_PROMPT=custom/in)" in custom["extensions.conf"]
    with pytest.raises(AsteriskConfError, match="differ"):
        render(settings(pause_code="*45"))
    with pytest.raises(AsteriskConfError, match="logout_code"):
        render(settings(logout_code="*4,6"))
    # static members: the phone can pause, not log in or out (no queues to join)
    static = render(settings(agents_log_in=False))["extensions.conf"]
    assert "Set(MINYI_QUEUES=)" in static and "MINYI_QUEUES=minyi" not in static


def test_include_mode_codes_know_pjsip_interfaces_only() -> None:
    files = render(
        include(
            agents=(
                AgentPhone("1001", interface="PJSIP/1001"),
                AgentPhone("cc7", interface="Local/7@from-queue/n"),
            ),
            units=(UnitQueue("330602", ("1001", "cc7")),),
        )
    )
    ext = files["extensions_minyi.conf"]
    assert '"${MINYI_EP}" = "1001"' in ext and "Set(MINYI_IF=PJSIP/1001)" in ext
    assert "cc7" not in ext  # no endpoint to recognise: the desk still works for it


def test_the_agent_leg_carries_the_ids_and_the_caller_name() -> None:
    ext = render(settings())["extensions.conf"]
    assert "Queue(${MINYI_QUEUE},rb(minyi-agent-predial^s^1),,,${MINYI_QUEUE_TIMEOUT})" in ext
    assert "Set(__MINYI_AGENT_CID=${MINYI_AID})" in ext  # inherited by the agent's leg
    predial = ext.split("[minyi-agent-predial]\n", 1)[1].split("\n\n", 1)[0]
    assert "Set(PJSIP_HEADER(add,X-Minyi-Callback-Id)=${MINYI_AGENT_CID})" in predial
    assert "Set(PJSIP_HEADER(add,X-Minyi-Survey-Id)=${MINYI_AGENT_SID})" in predial
    assert "CONNECTEDLINE(name,i)=${MINYI_CALLER_NAME}" in predial
