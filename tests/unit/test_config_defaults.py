"""Every default of the config file is written once, in its dataclass: a file that sets
nothing optional gives exactly the dataclasses built from their field defaults. A
default typed again in a reader (and changed in one place only) fails here, naming the
field."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from gateway import config
from gateway.config import (
    AgentPhone,
    AmiSettings,
    ApiSettings,
    AsrSettings,
    AsteriskSettings,
    DialerSettings,
    LogSettings,
    RecordingsSettings,
    Settings,
    SmppBind,
    SmsSettings,
    SurveySettings,
    UnitQueue,
    WebhookEndpoint,
    parse_settings,
)
from tests.unit.test_config import SECRET, SURVEY_TEXT

TEMPLATES = {"default": {"text": SURVEY_TEXT}}
BIND = {"name": "a", "host": "127.0.0.1", "port": 2775, "system_id": "minyi", "password": "pw"}
ENDPOINT = {"name": "core", "url": "https://core.example/hook", "secret": SECRET}
AMI_SECRET = "ami-secret"
# only what has no default
MINIMAL: dict[str, Any] = {
    "sms": {"source_addr": "106900001234", "templates": TEMPLATES, "binds": [BIND]},
    "webhooks": {"endpoints": [ENDPOINT]},
}

checked: set[type] = set()


def assert_defaults(parsed: Any, **given: Any) -> None:
    """``parsed`` equals its dataclass built from ``given`` and the field defaults."""
    expected = type(parsed)(**given)
    wrong = {
        f.name: (getattr(parsed, f.name), getattr(expected, f.name))
        for f in dataclasses.fields(parsed)
        if getattr(parsed, f.name) != getattr(expected, f.name)
    }
    assert wrong == {}, "parsed (left) differs from the dataclass default (right)"
    _note(parsed)


def _note(value: object) -> None:
    """Record the dataclasses compared, nested ones included."""
    if isinstance(value, tuple | list):
        for item in value:
            _note(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        checked.add(type(value))
        for f in dataclasses.fields(value):
            _note(getattr(value, f.name))


def test_the_root_and_every_section_without_a_table() -> None:
    settings = parse_settings(MINIMAL, {})
    assert_defaults(
        settings,
        sms=SmsSettings(
            source_addr="106900001234",
            templates=TEMPLATES,
            binds=(SmppBind("a", "127.0.0.1", 2775, "minyi", "pw"),),
        ),
        webhooks=(WebhookEndpoint("core", ENDPOINT["url"], SECRET),),
        warnings=settings.warnings,  # api.tokens is empty: not a default, a doubt
    )
    for section in (settings.api, settings.surveys, settings.log, settings.recordings):
        assert_defaults(section)
    sms = settings.sms
    assert_defaults(sms, source_addr="106900001234", templates=TEMPLATES, binds=sms.binds)
    assert_defaults(settings.sms.binds[0], **BIND)
    assert_defaults(settings.webhooks[0], **ENDPOINT)


def test_empty_tables_are_the_defaults_too() -> None:
    data = {**MINIMAL, "api": {}, "surveys": {"quiet_hours": {}}, "log": {}, "recordings": {}}
    settings = parse_settings(data, {})
    assert settings.api == ApiSettings()
    assert settings.surveys == SurveySettings()
    assert settings.log == LogSettings()
    assert settings.recordings == RecordingsSettings()


def test_dialer_asr_and_recordings() -> None:
    data = {**MINIMAL, "dialer": {"ami": {"secret": AMI_SECRET}}, "asr": {}}
    settings = parse_settings(data, {})
    assert settings.workers == (*Settings.workers, "dialer", "asr")  # their sections are there
    assert settings.dialer is not None and settings.asr is not None
    assert_defaults(settings.dialer, ami=AmiSettings(secret=AMI_SECRET))
    assert_defaults(settings.dialer.ami, secret=AMI_SECRET)
    assert_defaults(settings.asr)
    # the recordings are where the dialer records, by default the same directory
    assert_defaults(settings.recordings)
    assert str(settings.recordings.dir) == DialerSettings.recordings_dir


def test_the_asterisk_table_and_what_it_takes_from_the_dialer() -> None:
    agent = {"name": "agent1", "contact": "sip:agent1@10.0.0.2"}
    asterisk = {"trunk_host": "10.0.0.1", "agents": [agent], "units": {"330602": ["agent1"]}}
    dialer = {"ami": {"secret": AMI_SECRET}, "units": ["330602"], "asterisk": asterisk}
    settings = parse_settings({**MINIMAL, "dialer": dialer}, {})
    assert settings.dialer is not None and settings.dialer.asterisk is not None
    assert_defaults(
        settings.dialer.asterisk,
        ami_username=AmiSettings.username,
        ami_secret=AMI_SECRET,
        recordings_dir=DialerSettings.recordings_dir,
        trunk_host="10.0.0.1",
        agents=(AgentPhone("agent1", contact=agent["contact"]),),
        units=(UnitQueue("330602", ("agent1",)),),
    )
    assert_defaults(settings.dialer.asterisk.agents[0], **agent)
    assert_defaults(settings.dialer.asterisk.units[0], unit="330602", agents=("agent1",))


def test_a_number_rule_and_what_it_leaves_out() -> None:
    dialer = {"ami": {"secret": AMI_SECRET}, "number_rules": [{"match": "^1"}]}
    settings = parse_settings({**MINIMAL, "dialer": dialer}, {})
    assert settings.dialer is not None
    assert_defaults(settings.dialer.number_rules[0], match="^1")


def test_a_cmpp_bind_and_a_route() -> None:
    cmpp = {"name": "cmcc", "protocol": "cmpp2", "host": "10.1.1.1", "port": 7890}
    cmpp |= {"sp_id": "901234", "secret": "s3cret"}
    route = {"binds": ["cmcc"], "prefixes": ["139"]}
    sms = {**MINIMAL["sms"], "binds": [BIND, cmpp], "routes": [route]}
    settings = parse_settings({**MINIMAL, "sms": sms}, {})
    assert_defaults(settings.sms.binds[1], **cmpp)
    assert_defaults(settings.sms.routes[0], binds=("cmcc",), prefixes=("139",))
    assert settings.sms.default_binds == SmsSettings.default_binds


PIN_HASH = "scrypt$16384$8$1$c2FsdHNhbHQ=$" + "A" * 43 + "="


def test_a_desk_user() -> None:
    desk = {"agents": [{"id": "agent1", "pin_hash": PIN_HASH}]}
    settings = parse_settings({**MINIMAL, "api": {"desk": desk}}, {})
    assert_defaults(settings.api.desk, users=settings.api.desk.users)
    assert_defaults(settings.api.desk.users[0], id="agent1", pin_hash=PIN_HASH, role="agent")


def test_every_settings_dataclass_was_compared() -> None:
    """A new section (or a new dataclass in one) needs its line above."""
    test_the_root_and_every_section_without_a_table()
    test_dialer_asr_and_recordings()
    test_the_asterisk_table_and_what_it_takes_from_the_dialer()
    test_a_number_rule_and_what_it_leaves_out()
    test_a_cmpp_bind_and_a_route()
    test_a_desk_user()
    exported = {
        obj
        for obj in vars(config).values()
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj)
    }
    # ApiToken has no default: every key of an [[api.tokens]] entry is required
    assert exported - checked == {config.ApiToken}
    assert {AsteriskSettings, AsrSettings, config.ModelChoice, config.CallingHours} <= checked
