"""The [dialer.asterisk] table: the Asterisk config rendered from the gateway's config
file, its errors naming the setting, its secrets from the environment, and
`minyi asterisk render`."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from devstack.asterisk import GATEWAY_IP, WORLD_IP, AsteriskProcess
from gateway import cli, startup
from gateway.config import (
    AgentPhone,
    AsteriskSettings,
    ConfigError,
    UnitQueue,
    parse_settings,
    redacted,
)
from gateway.dialer import cli as asterisk_cli
from gateway.dialer.asterisk import check_config, render
from tests.unit.test_config import DELETE, EXAMPLE, EXAMPLE_ENV, base, with_

AMI_SECRET = "s3cret-ami"
AGENT1_PW = "agent1-pw-0001"
TRUNK_PW = "trunk-pw-0001"


def asterisk(**over: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "trunk_host": "10.20.30.40",
        "sip_bind": "10.20.30.5",
        "agents": [
            {"name": "agent1", "password": AGENT1_PW},
            {"name": "agent2", "contact": "sip:agent2@10.20.30.6:5060"},
            {"name": "agent3", "password": "agent3-pw-0001"},
        ],
        "units": {"330602": ["agent1", "agent2"], "330603": ["agent3"]},
    }
    a.update(over)
    return a


def config(dialer_over: dict[str, Any] | None = None, **over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "ami": {"secret": AMI_SECRET},
        "units": ["330602", "330603"],
        "asterisk": asterisk(**over),
    }
    d.update(dialer_over or {})
    return with_(base(), "dialer", d)


def parse(data: dict[str, Any], env: dict[str, str] | None = None) -> AsteriskSettings:
    """The [dialer.asterisk] settings, checked at start against what Asterisk takes."""
    dialer = startup.parse(data, env or {}).settings.dialer
    assert dialer is not None and dialer.asterisk is not None
    return dialer.asterisk


def error(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        startup.parse(data, env or {})
    return info.value


# --- parsing ----------------------------------------------------------------------------


def test_parse_takes_the_rest_from_dialer() -> None:
    data = config({"trunk": "carrier-a", "wrapup_s": 7.6, "default_unit": "330603"})
    s = parse(data)
    assert s.ami_username == "minyi" and s.ami_secret == AMI_SECRET
    assert (s.ami_bind, s.ami_port) == ("127.0.0.1", 5038)
    assert s.trunk_name == "carrier-a" and s.wrapup_s == 8 and s.default_unit == "330603"
    assert s.recordings_dir == "/var/spool/asterisk/monitor/minyi"
    assert s.agents == (
        AgentPhone("agent1", password=AGENT1_PW),
        AgentPhone("agent2", contact="sip:agent2@10.20.30.6:5060"),
        AgentPhone("agent3", password="agent3-pw-0001"),
    )
    assert s.units == (UnitQueue("330602", ("agent1", "agent2")), UnitQueue("330603", ("agent3",)))
    assert s.trunk_username is None and s.trunk_password is None
    # defaults are AsteriskSettings' own
    assert (s.sip_port, s.trunk_port, s.codecs, s.agent_ring_s) == (
        5060,
        5060,
        ("alaw", "ulaw"),
        15,
    )
    assert s.greeting_prompt == "minyi/greeting" and s.media_address is None


def test_every_key_is_read() -> None:
    over: dict[str, Any] = {
        "sip_port": 5070,
        "media_address": "10.20.30.9",
        "trunk_port": 5080,
        "trunk_match": ["10.20.30.40", "10.20.30.41"],
        "trunk_username": "gw",
        "trunk_password": TRUNK_PW,
        "codecs": ["alaw"],
        "recordings_dir": "/srv/rec",
        "ami_permit": ["10.0.0.0/8"],
        "agent_ring_s": 20,
        "queue_timeout_s": 300,
        "ivr_digit_timeout_s": 5,
        "reason_max_s": 90,
        "reason_silence_s": 0,
        "greeting_prompt": "custom/hello",
        "ivr_thanks_prompt": "/opt/sounds/thanks",
    }
    s = parse(config(**over))
    for key, value in over.items():
        got = getattr(s, key)
        assert got == (tuple(value) if isinstance(value, list) else value), key


def test_no_table_no_asterisk_settings() -> None:
    dialer = parse_settings(with_(config(), "dialer.asterisk", DELETE), {}).dialer
    assert dialer is not None and dialer.asterisk is None


@pytest.mark.parametrize(
    ("dialer_over", "over", "path"),
    [
        (None, {"trunk_host": DELETE}, "dialer.asterisk.trunk_host"),
        (None, {"trunk_host": "bad host"}, "dialer.asterisk.trunk_host"),
        (None, {"sip_bind": "localhost"}, "dialer.asterisk.sip_bind"),
        (None, {"sip_port": 0}, "dialer.asterisk.sip_port"),
        (None, {"media_address": "x"}, "dialer.asterisk.media_address"),
        (None, {"trunk_match": ["a b"]}, "dialer.asterisk.trunk_match"),
        (None, {"trunk_match": []}, "dialer.asterisk.trunk_match"),
        (None, {"codecs": ["opus"]}, "dialer.asterisk.codecs"),
        (None, {"recordings_dir": "rel/dir"}, "dialer.asterisk.recordings_dir"),
        (None, {"ami_permit": ["nonsense"]}, "dialer.asterisk.ami_permit"),
        (None, {"agent_ring_s": 3}, "dialer.asterisk.agent_ring_s"),
        (None, {"queue_timeout_s": "2m"}, "dialer.asterisk.queue_timeout_s"),
        (None, {"greeting_prompt": "a,b"}, "dialer.asterisk.greeting_prompt"),
        (None, {"trunk_password": "x"}, "dialer.asterisk.trunk_password"),
        (None, {"trunk_username": "gw"}, "dialer.asterisk.trunk_password"),
        (None, {"trunk_username": "g w", "trunk_password": "p"}, "dialer.asterisk.trunk_username"),
        (None, {"sip_bnd": "1.2.3.4"}, "dialer.asterisk.sip_bnd"),
        (None, {"agents": {"name": "x"}}, "dialer.asterisk.agents"),
        (None, {"units": []}, "dialer.asterisk.units"),
        (None, {"units": {"330602": ["agent1"]}}, "dialer.asterisk.units"),
        (None, {"units": {"330602": [], "330603": ["agent3"]}}, "dialer.asterisk.units.330602"),
        (
            None,
            {"units": {"330602": ["agent1", "agent9"], "330603": ["agent3"]}},
            "dialer.asterisk.units.330602[1]",
        ),
        (
            None,
            {"units": {"330602": ["agent1", "agent1"], "330603": ["agent3"]}},
            "dialer.asterisk.units.330602[1]",
        ),
        (
            None,
            {"units": {"330602": ["agent1"], "330603": ["agent3"], "330699": ["agent2"]}},
            "dialer.asterisk.units.330699",
        ),
        ({"units": []}, {"units": {}}, "dialer.units"),
        ({"ami": {"secret": AMI_SECRET, "host": "asterisk.lan"}}, {}, "dialer.ami.host"),
        ({"ami": {"secret": AMI_SECRET, "username": "a b"}}, {}, "dialer.ami.username"),
        ({"ami": {"secret": "has space"}}, {}, "dialer.ami.secret"),
        ({"trunk": "agent1"}, {}, "dialer.trunk"),
    ],
)
def test_errors_name_the_setting(
    dialer_over: dict[str, Any] | None, over: dict[str, Any], path: str
) -> None:
    data = config(dialer_over)
    for key, value in over.items():
        data = with_(data, f"dialer.asterisk.{key}", value)
    e = error(data)
    assert e.path == path, str(e)
    assert "\n" not in str(e)


@pytest.mark.parametrize(
    ("agent", "path"),
    [
        ({"password": "x"}, "dialer.asterisk.agents[1].name"),
        ({"name": "-bad", "password": "x"}, "dialer.asterisk.agents[1].name"),
        ({"name": "agent2"}, "dialer.asterisk.agents[1].password"),
        ({"name": "agent2", "password": ""}, "dialer.asterisk.agents[1].password"),
        ({"name": "agent2", "password": 1234}, "dialer.asterisk.agents[1].password"),
        ({"name": "agent2", "contact": "tel:123"}, "dialer.asterisk.agents[1].contact"),
        ({"name": "agent2", "contact": "sip:a", "phone": "x"}, "dialer.asterisk.agents[1].phone"),
        ({"name": "agent1", "password": "x"}, "dialer.asterisk.agents[1].name"),
    ],
)
def test_agent_errors_name_the_entry(agent: dict[str, Any], path: str) -> None:
    assert error(with_(config(), "dialer.asterisk.agents[1]", agent)).path == path


def test_agent_names_sharing_an_environment_variable_are_refused() -> None:
    data = with_(config(), "dialer.asterisk.agents[2].name", "agent-1")
    data = with_(data, "dialer.asterisk.agents[0].name", "agent_1")
    e = error(data)
    assert e.path == "dialer.asterisk.agents[2].name"
    assert "MINYI_AGENT_PASSWORD_AGENT_1" in e.reason


def test_a_missing_agent_password_names_the_file_the_environment_and_contact() -> None:
    e = error(with_(config(), "dialer.asterisk.agents[0]", {"name": "agent1"}))
    assert e.reason.startswith('is not set: put password = "..." in the file, set ')
    assert "MINYI_AGENT_PASSWORD_AGENT1" in e.reason and "contact" in e.reason


def test_secrets_come_from_the_environment() -> None:
    data = with_(config(), "dialer.asterisk.agents[0]", {"name": "agent1"})
    data = with_(data, "dialer.asterisk.trunk_username", "gw")
    env = {
        "MINYI_AGENT_PASSWORD_AGENT1": "from-env-1",
        "MINYI_AGENT_PASSWORD_AGENT2": "from-env-2",  # a contact phone may also register
        "MINYI_TRUNK_PASSWORD": "trunk-from-env",
    }
    s = parse(data, env)
    assert s.agents[0].password == "from-env-1"
    assert s.agents[1] == AgentPhone("agent2", "from-env-2", "sip:agent2@10.20.30.6:5060")
    assert s.trunk_password == "trunk-from-env"
    # the environment wins over the file
    assert parse(config(), env).agents[0].password == "from-env-1"


def test_a_bad_secret_is_named_but_never_shown() -> None:
    for data, env, path in [
        (config(), {"MINYI_AGENT_PASSWORD_AGENT1": "with space"}, "agents[0].password"),
        (config(trunk_username="gw"), {"MINYI_TRUNK_PASSWORD": "with space"}, "trunk_password"),
        (config({"ami": {}}), {"MINYI_AMI_SECRET": "with space"}, None),
    ]:
        e = error(data, env)
        assert e.path == (f"dialer.asterisk.{path}" if path else "dialer.ami.secret")
        assert "with space" not in str(e)
        assert "environment variable" in str(e)


def test_a_misspelt_agent_password_variable_is_warned_about() -> None:
    settings = parse_settings(config(), {"MINYI_AGENT_PASSWORD_AGENT4": "x"})
    assert any("MINYI_AGENT_PASSWORD_AGENT4" in w for w in settings.warnings)


def test_secrets_stay_out_of_repr_and_redacted() -> None:
    settings = parse_settings(config(trunk_username="gw", trunk_password=TRUNK_PW), {})
    assert settings.dialer is not None
    assert AGENT1_PW not in repr(settings.dialer.asterisk)
    assert TRUNK_PW not in repr(settings.dialer.asterisk)
    text = json.dumps(redacted(settings))
    for secret in (AGENT1_PW, TRUNK_PW, AMI_SECRET):
        assert secret not in text
    shown = redacted(settings)["dialer"]["asterisk"]
    assert shown["ami_secret"] == shown["trunk_password"] == "***"
    assert shown["agents"][0] == {
        "name": "agent1",
        "password": "***",
        "contact": None,
        "interface": None,
    }


# --- what it renders ----------------------------------------------------------------------


def _section(text: str, name: str) -> str:
    # [name] or [name](template)
    match = re.search(
        rf"^\[{re.escape(name)}\](?:\([^)\n]*\))?\n(.*?)(?=^\[|\Z)", text, re.M | re.S
    )
    assert match, f"no [{name}] section"
    return match.group(1)


def test_rendered_pjsip_has_the_agents_and_the_trunk() -> None:
    s = parse(config({"trunk": "carrier-a"}, trunk_username="gw", trunk_password=TRUNK_PW))
    pjsip = render(s)["pjsip.conf"]
    for agent in ("agent1", "agent2", "agent3"):
        assert f"[{agent}]" in pjsip
    assert "username=agent1\npassword=" + AGENT1_PW in pjsip
    assert "contact=sip:agent2@10.20.30.6:5060" in pjsip
    assert "[agent2-auth]" not in pjsip
    assert "[carrier-a]" in pjsip and "10.20.30.40" in pjsip
    assert "username=gw\npassword=" + TRUNK_PW in pjsip
    assert "bind=10.20.30.5:5060" in pjsip


def test_rendered_queues_have_the_unit_queues_and_members() -> None:
    files = render(parse(config({"wrapup_s": 9.0}, agents_log_in=False)))
    queues = files["queues.conf"]
    unit_a = _section(queues, "minyi-unit-330602")
    assert "member => PJSIP/agent1,0,agent1,PJSIP/agent1" in unit_a
    assert "member => PJSIP/agent2,0,agent2,PJSIP/agent2" in unit_a
    assert "agent3" not in unit_a
    unit_b = _section(queues, "minyi-unit-330603")
    assert "member => PJSIP/agent3,0,agent3,PJSIP/agent3" in unit_b
    assert "wrapuptime=9" in queues
    manager = files["manager.conf"]
    assert "[minyi]" in manager and AMI_SECRET in manager


def test_the_example_block_parses_once_uncommented() -> None:
    """The commented-out [dialer.asterisk] of the example is a working table."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("# [dialer.asterisk]")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    block = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines[start:end]]
    text = "\n".join(lines[:start] + block + lines[end:])
    data = tomllib.loads(text)
    assert data["dialer"]["units"] == ["330602"]
    s = parse(data, EXAMPLE_ENV)
    assert s.trunk_host == "10.20.30.40" and s.units == (UnitQueue("330602", ("agent1", "agent2")),)
    assert s.agents[1].contact is not None and s.agents[1].password is None
    keys = {k for k in data["dialer"]["asterisk"]}
    docs = (EXAMPLE.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    for key in keys | {"name", "password", "contact"}:
        assert f"| `{key}` |" in docs, key


def test_a_config_can_drive_the_local_asterisk(tmp_path: Path) -> None:
    """The settings AsteriskProcess renders for the tests can be written as a config."""
    proc = AsteriskProcess(tmp_path, "22")
    want = proc.settings()
    data = config(
        {
            "ami": {"secret": want.ami_secret, "port": want.ami_port},
            "units": [u.unit for u in want.units],
        },
        sip_bind=GATEWAY_IP,
        sip_port=want.sip_port,
        trunk_host=WORLD_IP,
        trunk_port=want.trunk_port,
        recordings_dir=want.recordings_dir,
        agents=[{"name": a.name, "contact": a.contact} for a in want.agents],
        units={u.unit: list(u.agents) for u in want.units},
        agent_ring_s=want.agent_ring_s,
        queue_timeout_s=want.queue_timeout_s,
        ivr_digit_timeout_s=want.ivr_digit_timeout_s,
        reason_max_s=want.reason_max_s,
        reason_silence_s=want.reason_silence_s,
        agents_log_in=want.agents_log_in,
        agent_qualify_s=want.agent_qualify_s,
    )
    got = parse(data)
    assert got == want
    assert render(got) == render(want)


# --- minyi asterisk render ----------------------------------------------------------------


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    data = config()
    path = tmp_path / "minyi.toml"
    path.write_text("\n".join(f"{k} = {_toml(v)}" for k, v in data.items()), encoding="utf-8")
    return path


NAMES = ("pjsip.conf", "queues.conf", "extensions.conf", "manager.conf")


def test_render_writes_the_four_files(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "etc" / "minyi"
    assert cli.main(["asterisk", "render", "--config", str(config_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"wrote {out / n}" for n in NAMES]
    expected = render(parse(config()))
    for name in NAMES:
        assert (out / name).read_text(encoding="utf-8") == expected[name]
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o640
    assert AMI_SECRET not in "\n".join(printed)
    # again: nothing differs, nothing to refuse
    assert asterisk_cli.main(["render", "--config", str(config_file), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"unchanged {out / n}" for n in NAMES]


def test_render_refuses_to_overwrite_without_force(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["asterisk", "render", "--config", str(config_file), "--out", str(out)]
    assert asterisk_cli.main(args) == 0
    (out / "queues.conf").write_text("; edited by hand\n", encoding="utf-8")
    (out / "pjsip.conf").unlink()
    capsys.readouterr()
    assert asterisk_cli.main(args) == 1
    out_text, err = capsys.readouterr()
    assert out_text == "" and "queues.conf differs; not overwritten (--force" in err
    assert (out / "queues.conf").read_text(encoding="utf-8") == "; edited by hand\n"
    assert not (out / "pjsip.conf").exists()  # a refusal writes nothing
    assert asterisk_cli.main([*args, "--force"]) == 0
    assert f"wrote {out / 'queues.conf'}" in capsys.readouterr().out
    assert "minyi-unit-330602" in (out / "queues.conf").read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # no temporary left


def test_render_check_writes_nothing(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(tmp_path.iterdir())
    assert cli.main(["asterisk", "render", "--config", str(config_file), "--check"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("asterisk config OK: pjsip.conf, queues.conf, extensions.conf")
    assert "3 agents, 2 unit queues" in out and err == ""
    assert set(tmp_path.iterdir()) == before


def test_render_reports_a_wrong_config_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(var, value)
    assert asterisk_cli.main(["render", "--config", str(EXAMPLE), "--check"]) == 2
    assert capsys.readouterr().err == (
        "config error: dialer.asterisk: is required to render the Asterisk config\n"
    )
    bad = tmp_path / "bad2.toml"
    data = config(sip_bind="localhost")
    bad.write_text("\n".join(f"{k} = {_toml(v)}" for k, v in data.items()), encoding="utf-8")
    assert asterisk_cli.main(["render", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("config error: dialer.asterisk.sip_bind: ")
    assert not (tmp_path / "o").exists()


def test_render_needs_out_or_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert asterisk_cli.main(["render", "--config", "x.toml"]) == 2
    assert "--out" in capsys.readouterr().err


def test_the_example_still_loads_without_the_table() -> None:
    dialer = startup.load(EXAMPLE, EXAMPLE_ENV).settings.dialer
    assert dialer is not None and dialer.asterisk is None


def test_the_trunk_options_asterisk_refuses_name_their_setting() -> None:
    """What only the renderer can judge (gateway/dialer/trunk.py) is still reported with
    the setting's path, at start and by `minyi config check`."""
    base_table: dict[str, Any] = {
        "trunk_host": "10.20.30.40",
        "agents": [{"name": "agent1", "contact": "sip:agent1@10.20.30.6"}],
        "units": {"330602": ["agent1"]},
    }
    cases = [
        ({"trunk_transport": "tls"}, "dialer.asterisk.tls_cert_file"),
        ({"trunk_register": True}, "dialer.asterisk.trunk_register"),
        ({"local_net": ["10.0.0.0/33"]}, "dialer.asterisk.local_net"),
        ({"external_media_address": "nat.example"}, "dialer.asterisk.external_media_address"),
        ({"trunk_from_user": "a b"}, "dialer.asterisk.trunk_from_user"),
    ]
    for extra, path in cases:
        dialer = {
            "ami": {"secret": "s3cret-ami"},
            "units": ["330602"],
            "asterisk": base_table | extra,
        }
        settings = parse_settings(with_(base(), "dialer", dialer), {})
        assert settings.dialer is not None and settings.dialer.asterisk is not None
        with pytest.raises(ConfigError) as info:
            check_config(settings.dialer.asterisk)
        assert info.value.path == path, (extra, str(info.value))


def test_feature_codes_and_agent_settings_are_read_and_checked() -> None:
    s = parse(config(login_code="#71", agents_log_in=False, agent_qualify_s=2))
    assert (s.login_code, s.logout_code, s.agents_log_in, s.agent_qualify_s) == (
        "#71",
        "*46",
        False,
        2,
    )
    with pytest.raises(ConfigError, match=r"dialer\.asterisk\.pause_code.*another feature code"):
        parse(config(pause_code="*45"))
    with pytest.raises(ConfigError, match=r"dialer\.asterisk\.login_code.*0-9 \* #"):
        parse(config(login_code="*4 5"))


def test_agent_caller_name_is_checked() -> None:
    base_cfg = config()
    assert startup.parse(base_cfg, {}).settings.dialer.agent_caller_name == "回访 {number}"
    for bad in ('回访 "{number}"', "a,b", "{number}{number}", "{name}"):
        with pytest.raises(ConfigError, match=r"dialer\.agent_caller_name"):
            startup.parse(config({"agent_caller_name": bad}), {})
    ok = startup.parse(config({"agent_caller_name": ""}), {})
    assert ok.settings.dialer.agent_caller_name == ""
