"""The [dialer] config section."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from gateway.config import CallingHours, ConfigError, parse_settings, rewrite
from tests.unit.test_config import base, with_


def dialer(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"ami": {"secret": "s3cret-ami"}, "units": ["330602", "3306"]}
    d.update(over)
    return with_(base(), "dialer", d)


def test_defaults() -> None:
    s = parse_settings(dialer(), {}).dialer
    assert s is not None
    assert s.max_attempts == 3 and s.retry_spacing_s == (1800.0, 7200.0)
    assert s.calling_hours == CallingHours(datetime.time(9), datetime.time(20))
    assert s.ami.host == "127.0.0.1" and s.ami.port == 5038 and s.ami.secret == "s3cret-ami"
    assert s.spacing(1) == 1800.0 and s.spacing(2) == 7200.0 and s.spacing(5) == 7200.0


def test_secret_from_environment_wins() -> None:
    s = parse_settings(dialer(ami={}), {"MINYI_AMI_SECRET": "from-env"}).dialer
    assert s is not None and s.ami.secret == "from-env"


def test_dialer_worker_needs_the_section() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(with_(base(), "workers", ["api", "dialer"]), {})
    assert info.value.path == "dialer"


@pytest.mark.parametrize(
    ("over", "path"),
    [
        ({"ami": {}}, "dialer.ami.secret"),
        ({"units": ["33 06"]}, "dialer.units[0]"),
        ({"default_unit": "9999"}, "dialer.default_unit"),
        ({"calling_hours": {"start": "25:00"}}, "dialer.calling_hours.start"),
        ({"calling_hours": {"start": "09:00", "end": "09:00"}}, "dialer.calling_hours.end"),
        ({"max_attempts": 0}, "dialer.max_attempts"),
        ({"retry_spacing_minutes": []}, "dialer.retry_spacing_minutes"),
        ({"recordings_dir": "relative/dir"}, "dialer.recordings_dir"),
        ({"caller_id": "a,b"}, "dialer.caller_id"),
        ({"recheck": {"kind": "robot"}}, "dialer.recheck.kind"),
        ({"trunks": "x"}, "dialer.trunks"),
    ],
)
def test_errors_name_the_setting(over: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(dialer(**over), {})
    assert info.value.path == path


def test_calling_hours_over_midnight() -> None:
    h = CallingHours(datetime.time(22), datetime.time(6))
    assert h.open(datetime.datetime(2026, 1, 1, 23, 0)) and h.open(datetime.datetime(2026, 1, 1, 5))
    assert not h.open(datetime.datetime(2026, 1, 1, 12, 0))
    day = CallingHours()
    assert day.open(datetime.datetime(2026, 1, 1, 9, 0))
    assert not day.open(datetime.datetime(2026, 1, 1, 20, 0))


def test_default_workers_include_the_dialer_when_configured() -> None:
    assert parse_settings(base(), {}).workers == ("api", "sms", "webhooks")
    assert parse_settings(dialer(), {}).workers == ("api", "sms", "webhooks", "dialer")
    only = with_(dialer(), "workers", ["api"])
    assert parse_settings(only, {}).workers == ("api",)


def test_a_dialer_without_unit_queues_is_warned_about() -> None:
    settings = parse_settings(dialer(units=[]), {})
    assert any("dialer.units is empty" in w for w in settings.warnings)
    assert not parse_settings(dialer(), {}).warnings


# --- the route out: dial string and number rules ----------------------------------------
def test_the_default_route_is_the_trunk_and_rules_rewrite_the_first_fit() -> None:
    s = parse_settings(dialer(), {}).dialer
    assert s is not None and s.channel("13800138000") == "PJSIP/13800138000@minyi-trunk"
    rules = [
        {"match": "^0571", "strip": 4},  # a local landline: drop the own area code
        {"match": "^1[3-9]", "prefix": "0"},  # a mobile of another city: a 0 in front
        {"match": "^1", "prefix": "9"},  # never reached for 13x: the first fit wins
    ]
    s = parse_settings(dialer(number_rules=rules, dial_string="PJSIP/${NUMBER}@site"), {}).dialer
    assert s is not None
    assert rewrite("13800138000", s.number_rules) == "013800138000"
    assert rewrite("057188880000", s.number_rules) == "88880000"
    assert rewrite("02188880000", s.number_rules) == "02188880000"  # no rule: as it is
    assert s.channel("013800138000") == "PJSIP/013800138000@site"


@pytest.mark.parametrize(
    ("over", "path", "reason"),
    [
        ({"dial_string": "PJSIP/site-trunk"}, "dialer.dial_string", "with ${NUMBER} once"),
        ({"dial_string": "PJSIP/${NUMBER},x"}, "dialer.dial_string", "with ${NUMBER} once"),
        ({"dial_string": "PJSIP/${NUMBER}@${TRUNK}"}, "dialer.dial_string", "no variable but"),
        ({"number_rules": [{"match": "(["}]}, "dialer.number_rules[0].match", "not a regular"),
        (
            {"number_rules": [{"match": "^1", "prefix": "+86"}]},
            "dialer.number_rules[0].prefix",
            "digits",
        ),
        (
            {"number_rules": [{"match": "^1", "strip": 20}]},
            "dialer.number_rules[0].strip",
            "0 to 16",
        ),
        ({"number_rules": [{"prefix": "0"}]}, "dialer.number_rules[0].match", "is required"),
    ],
)
def test_route_mistakes_are_named(over: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(dialer(**over), {})
    assert info.value.path == path
    assert reason in info.value.reason


# --- [dialer.asterisk] mode = "include" --------------------------------------------------
INCLUDE = {
    "mode": "include",
    "agents": [{"name": "1001", "interface": "PJSIP/1001"}, {"name": "1002"}],
    "units": {"330602": ["1001"], "3306": ["1002"]},
}


def test_include_mode_takes_the_sites_extensions_and_route() -> None:
    s = parse_settings(dialer(asterisk=INCLUDE, dial_string="Local/${NUMBER}@from-internal"), {})
    assert s.dialer is not None and s.dialer.asterisk is not None
    a = s.dialer.asterisk
    assert a.mode == "include" and a.trunk_host == ""
    assert [x.interface for x in a.agents] == ["PJSIP/1001", "PJSIP/1002"]
    assert s.dialer.channel("13800138000") == "Local/13800138000@from-internal"


@pytest.mark.parametrize(
    ("asterisk", "path", "reason"),
    [
        (
            {**INCLUDE, "trunk_host": "10.0.0.1"},
            "dialer.asterisk.trunk_host",
            'not used with mode = "include"',
        ),
        ({**INCLUDE, "sip_port": 5070}, "dialer.asterisk.sip_port", "has its own transport"),
        (
            {**INCLUDE, "agents": [{"name": "1001", "password": "pw-123456"}, {"name": "1002"}]},
            "dialer.asterisk.agents[0].password",
            "the site's own extension",
        ),
        (
            {**INCLUDE, "agents": [{"name": "1001", "interface": "1001"}, {"name": "1002"}]},
            "dialer.asterisk.agents[0].interface",
            'like "PJSIP/1001"',
        ),
        ({**INCLUDE, "mode": "shared"}, "dialer.asterisk.mode", 'one of "own", "include"'),
    ],
)
def test_include_mode_mistakes_are_named(asterisk: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(dialer(asterisk=asterisk, dial_string="PJSIP/${NUMBER}@site"), {})
    assert info.value.path == path
    assert reason in info.value.reason


def test_include_mode_needs_the_sites_route_out() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(dialer(asterisk=INCLUDE), {})
    assert info.value.path == "dialer.dial_string"
    assert "is required" in info.value.reason


def test_own_mode_agents_have_no_interface() -> None:
    own = {
        "trunk_host": "10.0.0.1",
        "agents": [{"name": "a1", "contact": "sip:a1@10.0.0.2", "interface": "PJSIP/a1"}],
        "units": {"330602": ["a1"], "3306": ["a1"]},
    }
    with pytest.raises(ConfigError) as info:
        parse_settings(dialer(asterisk=own), {})
    assert info.value.path == "dialer.asterisk.agents[0].interface"
