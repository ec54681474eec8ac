"""The config file: the example loads, every kind of mistake names its setting,
secrets come from the environment and never leak, quiet-hours math is right."""

from __future__ import annotations

import base64
import copy
import datetime
import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import config, startup
from gateway.config import (
    AmiSettings,
    ApiSettings,
    ApiToken,
    ConfigError,
    DialerSettings,
    QuietHours,
    RecordingsSettings,
    Settings,
    SmppBind,
    SurveySettings,
    WebhookEndpoint,
    env_name,
    load_settings,
    parse_settings,
    redacted,
)
from gateway.config.sms import CLARIFY_TEXT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "minyi.example.toml"
DOCS = ROOT / "docs" / "configuration.md"

TOKEN = "tok-" + "k" * 20
PASSWORD = "pw123456"
SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
EXAMPLE_ENV = {
    "MINYI_API_TOKEN_CORE": TOKEN,
    "MINYI_SMPP_PASSWORD_CMCC_1": PASSWORD,
    "MINYI_CMPP_SECRET_CMCC_CMPP": "cmpp-secret",
    "MINYI_WEBHOOK_SECRET_CORE": SECRET,
    "MINYI_AMI_SECRET": "ami-secret-1234",
}
SURVEY_TEXT = "请评价此次服务：回复1满意，2基本满意，3不满意"
DELETE = object()


def base() -> dict[str, Any]:
    """A small valid config, every secret in the file."""
    return {
        "api": {"tokens": [{"name": "core", "token": TOKEN, "units": ["*"]}]},
        "sms": {
            "source_addr": "106900001234",
            "templates": {"default": {"text": SURVEY_TEXT}},
            "binds": [
                {
                    "name": "a",
                    "host": "127.0.0.1",
                    "port": 2775,
                    "system_id": "minyi",
                    "password": PASSWORD,
                }
            ],
        },
        "webhooks": {
            "endpoints": [{"name": "core", "url": "https://core.example/hook", "secret": SECRET}]
        },
    }


def with_(data: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A copy of ``data`` with the setting at ``path`` ("sms.binds[0].window") set to
    ``value``, or removed when ``value`` is DELETE."""
    data = copy.deepcopy(data)
    steps: list[str | int] = [
        int(s[1:-1]) if s.startswith("[") else s for s in re.findall(r"\[\d+\]|[^.\[\]]+", path)
    ]
    node: Any = data
    for step in steps[:-1]:
        node = node[step] if isinstance(step, int) else node.setdefault(step, {})
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return data


def error(data: dict[str, Any], env: dict[str, str] | None = None) -> ConfigError:
    """The error of the config and of the checks at start (templates, Asterisk, ASR)."""
    with pytest.raises(ConfigError) as info:
        startup.parse(data, env or {})
    return info.value


# --- the example and the docs ---------------------------------------------------------


def test_example_loads() -> None:
    settings = startup.load(EXAMPLE, EXAMPLE_ENV).settings
    assert settings.source_path == EXAMPLE
    assert settings.workers == ("api", "sms", "webhooks", "dialer", "asr")
    assert settings.api.tokens == (ApiToken("core", TOKEN, ("*",)),)
    assert settings.sms.binds[0].password == PASSWORD
    assert settings.sms.binds[0].name == "cmcc-1"
    assert settings.webhooks[0].secret == SECRET
    assert settings.surveys.unit_names["330602"] == "越城区公安分局"
    assert settings.sms.templates["default"]["max_parts"] == 2
    assert settings.warnings == ()


def test_example_shows_the_defaults() -> None:
    """The example claims to show every default: hold it to that."""
    settings = startup.load(EXAMPLE, EXAMPLE_ENV).settings
    assert settings.api == ApiSettings(tokens=settings.api.tokens)
    assert settings.surveys == SurveySettings(unit_names=settings.surveys.unit_names)
    bind = settings.sms.binds[0]
    assert bind == SmppBind(bind.name, bind.host, bind.port, bind.system_id, bind.password)
    cmpp = settings.sms.binds[1]
    assert isinstance(cmpp, config.CmppBind)
    assert cmpp == config.CmppBind(
        cmpp.name, cmpp.host, cmpp.port, cmpp.sp_id, cmpp.secret, protocol=cmpp.protocol
    )
    assert (settings.sms.routes, settings.sms.default_binds) == ((), ())
    hook = settings.webhooks[0]
    assert hook == WebhookEndpoint(hook.name, hook.url, hook.secret)
    defaults = Settings(sms=settings.sms)
    assert settings.redis_url == defaults.redis_url
    assert settings.shutdown_grace_s == defaults.shutdown_grace_s
    assert settings.log == defaults.log
    sms = settings.sms
    assert (sms.reserve_units, sms.ref16, sms.registered_delivery) == (0, False, True)
    assert (sms.default_alphabet, sms.mo_reassembly_timeout_s) == ("latin1", 600.0)
    dialer = settings.dialer
    assert dialer is not None
    ami = AmiSettings("127.0.0.1", 5038, "minyi", dialer.ami.secret)
    assert dialer == DialerSettings(ami=ami, units=("330602",))
    assert settings.recordings == RecordingsSettings()
    assert settings.asr is not None and settings.asr.model.name == "small-cn"
    assert (settings.asr.pool_size, settings.asr.max_tries) == (None, 3)


ROW_TABLES = ("quiet_hours", "service_names", "unit_names", "templates")


def _keys(table: dict[str, Any]) -> set[str]:
    """Every setting's key in a parsed TOML file; section headers are not settings."""
    keys: set[str] = set()
    for key, value in table.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = value[0]
        if not isinstance(value, dict) or key in ROW_TABLES:
            keys.add(key)
        elif isinstance(value, dict):
            keys |= _keys(value)
    return keys


def test_docs_list_every_setting_of_the_example() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    keys = _keys(example) | {"token", "password", "secret"}  # shown commented out
    missing = sorted(k for k in keys if f"| `{k}` |" not in docs)
    assert missing == []
    for var in (
        "MINYI_REDIS_URL",
        "MINYI_API_TOKEN_",
        "MINYI_SMPP_PASSWORD_",
        "MINYI_CMPP_SECRET_",
    ):
        assert var in docs
    assert "MINYI_WEBHOOK_SECRET_" in docs


def test_example_without_secrets_names_both_places() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, {})
    assert info.value.path == "api.tokens[0].token"
    assert str(info.value) == (
        'config error: api.tokens[0].token: is not set: put token = "..." in the file '
        "or set MINYI_API_TOKEN_CORE in the environment"
    )


# --- every kind of mistake names its setting ------------------------------------------

ERRORS = [
    # wrong type
    ("sms.binds[0].window", "abc", 'must be an integer from 1 to 10000, got "abc"'),
    ("sms.binds[0].window", True, "must be an integer from 1 to 10000, got true"),
    ("sms.binds[0].tps", "fast", 'must be a number greater than 0 and at most 100000, got "fast"'),
    ("sms.ref16", "yes", 'must be true or false, got "yes"'),
    ("sms.binds", {"name": "a"}, "must be an array of tables, written [[sms.binds]], got a table"),
    ("api", "x", 'must be a table, got "x"'),
    ("workers", "api", 'must be a non-empty array of worker names, got "api"'),
    # out of range
    ("sms.binds[0].window", 0, "must be an integer from 1 to 10000, got 0"),
    ("api.port", 70000, "must be an integer from 1 to 65535, got 70000"),
    ("surveys.reply_window_hours", 0, "must be a number greater than 0 and at most 720, got 0"),
    ("sms.binds[0].tps", math.nan, "must be a number greater than 0 and at most 100000, got nan"),
    ("surveys.frequency_cap_days", -1, "must be a number from 0 to 365, got -1"),
    ("sms.binds[0].reconnect_max_s", 0.5, "must be a number from 1 to 86400, got 0.5"),
    (
        "sms.binds[0].dest_npi",
        2,
        "must be one of 0, 1, 3, 4, 6, 8, 9, 10, 14, 18 (SMPP 3.4 §5.2.6)",
    ),
    ("sms.binds[0].source_ton", 7, "must be one of 0, 1, 2, 3, 4, 5, 6 (SMPP 3.4 §5.2.5), got 7"),
    ("surveys.retention_days", 1, "must be at least as long as reply_window_hours"),
    # SMPP 3.4 field limits
    ("sms.binds[0].system_id", "s" * 16, "at most 15 ASCII characters (SMPP 3.4 §5.2.1)"),
    ("sms.binds[0].system_type", "t" * 13, "at most 12 ASCII characters (SMPP 3.4 §5.2.3)"),
    ("sms.source_addr", "1069x", 'must be 1 to 20 digits (SMPP 3.4 §5.2.8), got "1069x"'),
    ("sms.source_addr", "1" * 21, "must be 1 to 20 digits (SMPP 3.4 §5.2.8)"),
    # choices and names
    ("sms.binds[0].mode", "tranceiver", 'got "tranceiver"; did you mean "transceiver"?'),
    ("workers", ["api", "dailer"], 'got "dailer"; did you mean "dialer"?'),
    ("surveys.timezone", "Asia/Shangai", 'unknown time zone "Asia/Shangai"; did you mean "Asia/'),
    ("sms.binds[0].name", "cmcc 1", 'must be 1 to 32 letters, digits, _ or -, got "cmcc 1"'),
    ("sms.signature", "[绍兴公安]", 'must be empty or a signature in 【】 like "【某某公安】"'),
    ("api.tokens[0].units", [], "must be a non-empty array of unit codes"),
    ("api.tokens[0].units", ["33*06"], 'must be a unit code "330602", a prefix "3306*" or "*"'),
    # HTTPS on the API: both files, absolute paths
    ("api.tls_cert", "/etc/minyi/api.pem", "api.tls_key: is required with tls_cert"),
    ("api.tls_key", "/etc/minyi/api.key", "api.tls_cert: is required with tls_key"),
    ("api.tls_cert", "api.pem", 'must be an absolute file path, got "api.pem"'),
    # times
    (
        "surveys.quiet_hours.start",
        "25:00",
        'must be a time of day "HH:MM" or "HH:MM:SS", got "25:00"',
    ),
    ("surveys.quiet_hours.end", "8am", 'must be a time of day "HH:MM" or "HH:MM:SS", got "8am"'),
    ("surveys.quiet_hours.end", "08:60", "must be a time of day"),
    ("surveys.quiet_hours.start", 21, "must be a time of day"),
    # urls
    ("webhooks.endpoints[0].url", "ftp://core/x", "must be an http:// or https:// URL with a host"),
    ("webhooks.endpoints[0].url", "https:///x", "must be an http:// or https:// URL with a host"),
    ("webhooks.endpoints[0].url", "https://h:99999/", "must be an http:// or https:// URL"),
    ("redis_url", "http://127.0.0.1:6379", 'must look like "redis://host:6379/0"'),
    ("redis_url", "redis://h/db0", 'must look like "redis://host:6379/0"'),
    # templates
    ("sms.templates", {"other": {"text": "x"}}, 'needs a template named "default"'),
    ("sms.templates", {}, 'needs a template named "default"'),
    ("sms.templates", DELETE, 'needs a template named "default"'),
    ("sms.templates.default", "请评价", "must be a table, written [sms.templates.default]"),
    ("sms.templates.default.text", "请评价", "template 'default': text offers no reply digit 1"),
    ("sms.templates.default.colour", "red", "template 'default': unknown keys ['colour']"),
    # the clarifying SMS and the callbacks (issue 11)
    ("surveys.callback_on", ["unsatisfied", "unclaer"], 'unclear; did you mean "unclear"?'),
    ("surveys.callback_on", ["unclear", "unclear"], '"unclear" is listed twice'),
    ("surveys.callback_on", "unsatisfied", "must be a list of unsatisfied, basically_satisfied"),
    ("surveys.clarify_template", "ask", "names no template: define [sms.templates.ask]"),
    ("surveys.clarify_window_hours", 0, "must be a number greater than 0 and at most 720"),
    # webhook retries
    ("webhooks.endpoints[0].max_age_hours", 1, "must be at least 72, so results survive"),
]


# where the error points when it is not the path that was set
NAMED_AT = {
    "workers": "workers[1]",
    "api.tokens[0].units": "api.tokens[0].units[0]",
    "api.tls_cert": "api.tls_key",
    "api.tls_key": "api.tls_cert",
    "sms.templates.default.text": "sms.templates.default",
    "sms.templates.default.colour": "sms.templates.default",
    "surveys.callback_on": "surveys.callback_on[1]",
}


@pytest.mark.parametrize(("path", "value", "reason"), ERRORS)
def test_a_wrong_setting_is_named(path: str, value: object, reason: str) -> None:
    e = error(with_(base(), path, value))
    if (isinstance(value, list) and value) or path.startswith("sms.templates.default."):
        path = NAMED_AT[path]
    elif path.startswith("api.tls_") and reason.startswith(NAMED_AT[path]):
        path, reason = NAMED_AT[path], reason.removeprefix(NAMED_AT[path] + ": ")
    assert e.path == path
    assert reason in e.reason
    assert str(e) == f"config error: {path}: {e.reason}"
    assert "\n" not in str(e)


def test_the_example_message_reads_exactly() -> None:
    e = error(with_(base(), "sms.binds[0].window", "abc"))
    assert (
        str(e) == 'config error: sms.binds[0].window: must be an integer from 1 to 10000, got "abc"'
    )


@pytest.mark.parametrize(
    ("path", "suggestion"),
    [
        ("sms.binds[0].windw", '"window"'),
        ("redis_ur", '"redis_url"'),
        ("surveys.quiet_hours.strat", '"start"'),
        ("webhooks.endpoints[0].max_age_s", '"max_age_hours"'),
        ("api.max_body_bytes", '"max_body_mb"'),
        ("sms.mo_reassembly_timeout_s", '"mo_reassembly_timeout_minutes"'),
    ],
)
def test_an_unknown_key_gets_a_suggestion(path: str, suggestion: str) -> None:
    e = error(with_(base(), path, 1))
    assert e.path == path
    assert e.reason == f"unknown setting; did you mean {suggestion}?"


def test_an_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    e = error(with_(base(), "log.colour", True))
    assert str(e) == "config error: log.colour: unknown setting (known here: format, level)"


def test_a_typo_is_reported_before_the_missing_key_it_hides() -> None:
    data = with_(base(), "sms.binds[0].system_id", DELETE)
    e = error(with_(data, "sms.binds[0].sytem_id", "minyi"))
    assert e.path == "sms.binds[0].sytem_id"
    assert 'did you mean "system_id"?' in e.reason


def test_a_required_setting_is_named() -> None:
    e = error(with_(base(), "sms.binds[0].host", DELETE))
    assert str(e) == "config error: sms.binds[0].host: is required"
    e = error({})
    assert e.path == "sms.source_addr"


@pytest.mark.parametrize(
    ("path", "var"),
    [
        ("api.tokens[0].token", "MINYI_API_TOKEN_CORE"),
        ("sms.binds[0].password", "MINYI_SMPP_PASSWORD_A"),
        ("webhooks.endpoints[0].secret", "MINYI_WEBHOOK_SECRET_CORE"),
    ],
)
def test_a_missing_secret_names_the_file_and_the_environment(path: str, var: str) -> None:
    e = error(with_(base(), path, DELETE))
    assert e.path == path
    key = path.rsplit(".", 1)[1]
    assert e.reason == f'is not set: put {key} = "..." in the file or set {var} in the environment'


def test_an_empty_token_or_webhook_secret_is_unset_but_an_empty_password_is_null() -> None:
    assert error(with_(base(), "api.tokens[0].token", "")).reason.startswith("is not set")
    assert error(with_(base(), "webhooks.endpoints[0].secret", "")).reason.startswith("is not")
    # SMPP 3.4 §5.2.2: a NULL password for an SMS center that wants none
    settings = parse_settings(with_(base(), "sms.binds[0].password", ""), {})
    assert settings.sms.binds[0].password == ""


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("api.tokens[0].token", "short-token", "at least 16 printable ASCII characters"),
        ("api.tokens[0].token", "with space " * 3, "at least 16 printable ASCII characters"),
        ("api.tokens[0].token", 12345678901234567890, "must be a string in quotes, got a number"),
        ("sms.binds[0].password", "ninechars", "at most 8 ASCII characters (SMPP 3.4 §5.2.2)"),
        ("sms.binds[0].password", 12345678, "must be a string in quotes, got a number"),
        ("webhooks.endpoints[0].secret", "not-whsec-" + "a" * 30, 'must be "whsec_" followed'),
        ("webhooks.endpoints[0].secret", "whsec_!!!notbase64!!!", 'must be "whsec_" followed'),
        ("webhooks.endpoints[0].secret", "whsec_" + "QUJD", "at least 24 random bytes"),
        # 23 bytes: enough for the old floor (16), one short of the new one
        (
            "webhooks.endpoints[0].secret",
            "whsec_" + "UfWwg3Uc2vyttVVRCwMSkfLY6Q5VSMw=",
            "at least 24",
        ),
    ],
)
def test_a_bad_secret_is_named_but_never_shown(path: str, value: object, reason: str) -> None:
    e = error(with_(base(), path, value))
    assert e.path == path
    assert reason in e.reason
    assert str(value) not in str(e)


def test_a_bad_secret_from_the_environment_says_so() -> None:
    e = error(with_(base(), "api.tokens[0].token", DELETE), {"MINYI_API_TOKEN_CORE": "short"})
    assert e.path == "api.tokens[0].token"
    assert e.reason.endswith(
        "got 5 characters (value from environment variable MINYI_API_TOKEN_CORE)"
    )
    assert "short" not in str(e)


def test_a_redis_password_never_shows_in_an_error() -> None:
    e = error({**base(), "redis_url": "redis://:hunter2@/0"})
    assert e.path == "redis_url"
    assert "hunter2" not in str(e)
    assert "redis://:***@/0" in str(e)


def test_two_tokens_with_the_same_value_are_refused_without_showing_it() -> None:
    data = base()
    data["api"]["tokens"].append({"name": "other", "token": TOKEN, "units": ["3306*"]})
    e = error(data)
    assert e.path == "api.tokens[1].token"
    assert e.reason == 'is the same as the token of "core"; each client needs its own'
    assert TOKEN not in str(e)


def test_duplicate_bind_names_are_refused() -> None:
    data = base()
    data["sms"]["binds"].append(dict(data["sms"]["binds"][0]))
    e = error(data)
    assert str(e) == (
        'config error: sms.binds[1].name: "a" is used twice '
        "(also sms.binds[0].name, both read MINYI_SMPP_PASSWORD_A)"
    )


def test_names_that_share_an_environment_variable_are_refused() -> None:
    data = base()
    data["webhooks"]["endpoints"][0]["name"] = "core-a"
    data["webhooks"]["endpoints"].append({**data["webhooks"]["endpoints"][0], "name": "core_a"})
    e = error(data)
    assert e.path == "webhooks.endpoints[1].name"
    assert "MINYI_WEBHOOK_SECRET_CORE_A" in e.reason


def test_extension_digits_must_fit_in_source_addr() -> None:
    data = with_(base(), "sms.source_addr", "1069000012345678")  # 16 digits
    assert parse_settings(with_(data, "sms.extension_digits", 4), {}).sms.extension_digits == 4
    e = error(with_(data, "sms.extension_digits", 5))
    assert e.path == "sms.extension_digits"
    assert "source_addr (16 digits) plus extension_digits must be at most 20 digits" in e.reason


def test_short_webhook_max_age_needs_the_test_switch() -> None:
    data = with_(base(), "webhooks.endpoints[0].max_age_hours", 0.01)
    settings = parse_settings(with_(data, "webhooks.endpoints[0].allow_short_max_age", True), {})
    assert settings.webhooks[0].max_age_s == pytest.approx(36.0)


def test_templates_inherit_the_sms_settings() -> None:
    """What fits alone may not once [sms] adds its signature, reserve or 16-bit ref."""
    assert len(SURVEY_TEXT) == 24
    one = with_(base(), "sms.templates.default.text", "{signature}" + "请" * 42 + SURVEY_TEXT)
    one = with_(one, "sms.signature", "【绍兴公安】")  # 6 + 42 + 24 = 72 > 70: two parts
    e = error(one)
    assert e.path == "sms.templates.default"
    assert e.reason.startswith("template 'default': worst case is 72 UCS-2 units")
    assert "max_parts is 1" in e.reason
    one = with_(one, "sms.signature", "【公安】")  # 70: one part
    assert startup.parse(one, {}).settings.sms.signature == "【公安】"
    assert error(with_(one, "sms.reserve_units", 1)).path == "sms.templates.default"
    # the template's own value wins over [sms]
    assert startup.parse(with_(one, "sms.templates.default.signature", "【公安】"), {})
    # two parts: 132 units fit with an 8-bit reference, not a 16-bit one (sms.text
    # counts 66 and 65 units a part for the worst case)
    two = with_(base(), "sms.templates.default", {"text": "请" * 108 + SURVEY_TEXT})
    two = with_(two, "sms.templates.default.max_parts", 2)
    assert startup.parse(two, {}).settings.sms.ref16 is False
    assert "max_parts is 2" in error(with_(two, "sms.ref16", True)).reason


def test_template_specs_merge_without_touching_the_raw_tables() -> None:
    data = with_(base(), "sms.signature", "【绍兴公安】")
    data = with_(data, "sms.templates.other", {"text": SURVEY_TEXT, "reserve_units": 5})
    settings = parse_settings(with_(data, "sms.reserve_units", 2), {})
    specs = config.template_specs(settings.sms)
    assert specs["default"] == {
        "text": SURVEY_TEXT,
        "signature": "【绍兴公安】",
        "reserve_units": 2,
        "ref16": False,
    }
    assert specs["other"]["reserve_units"] == 5
    assert settings.sms.templates["default"] == {"text": SURVEY_TEXT}


def test_names_a_template_would_cut_are_warned_about() -> None:
    data = with_(base(), "sms.templates.default.text", "{service}{unit_name}" + SURVEY_TEXT)
    data = with_(data, "surveys.service_names", {"long": "很长很长很长很长的服务名称"})  # 13
    data = with_(data, "surveys.unit_names", {"330602": "越城区公安分局"})
    assert startup.parse(data, {}).settings.warnings == (
        'surveys.service_names.long: "很长很长很长很长的服务名称" is longer than the 12 '
        'characters template "default" shows, so the SMS cuts it (raise max_units.service '
        "there)",
    )
    data = with_(data, "sms.templates.default.max_units", {"service": 13})
    assert startup.parse(data, {}).settings.warnings == ()


def test_secrets_stay_out_of_repr() -> None:
    settings = parse_settings(base(), {})
    text = repr(settings)
    assert TOKEN not in text and PASSWORD not in text and SECRET not in text
    assert "minyi" in text  # the rest is there


# --- what the workers need --------------------------------------------------------------


def test_the_sms_worker_needs_a_bind_but_an_api_process_does_not() -> None:
    data = with_(base(), "sms.binds", DELETE)
    assert error(data).path == "sms.binds"
    settings = parse_settings({**data, "workers": ["api"]}, {})
    assert settings.sms.binds == ()


def test_every_sms_center_needs_a_bind_that_hears_receipts() -> None:
    data = with_(base(), "sms.binds[0].mode", "transmitter")
    e = error(data)
    assert e.path == "sms.binds[0].mode"
    assert "receipts and the citizens' replies would never arrive" in e.reason
    receiver = {**data["sms"]["binds"][0], "name": "rx", "mode": "receiver"}
    data["sms"]["binds"].append(receiver)
    assert len(parse_settings(data, {}).sms.binds) == 2
    # a receiver for another SMS center does not help
    data["sms"]["binds"][1]["smsc"] = "unicom"
    assert error(data).path == "sms.binds[0].mode"


def test_receivers_alone_cannot_send() -> None:
    e = error(with_(base(), "sms.binds[0].mode", "receiver"))
    assert str(e) == "config error: sms.binds: every bind is a receiver, so no SMS can be sent"


def test_binds_to_one_sms_center_read_message_ids_alike() -> None:
    data = base()
    data["sms"]["binds"].append({**data["sms"]["binds"][0], "name": "b", "dlr_id_base": "hex"})
    e = error(data)
    assert e.path == "sms.binds[1].dlr_id_base"
    assert 'bind "a" to the same SMS center "default" says "text"' in e.reason
    data["sms"]["binds"][1]["smsc"] = "other"
    assert parse_settings(data, {}).sms.binds[1].dlr_id_base == "hex"


def test_a_worker_listed_twice_is_refused() -> None:
    e = error({**base(), "workers": ["api", "sms", "api"]})
    assert str(e) == 'config error: workers[2]: "api" is listed twice'


# --- values as the dataclasses hold them ----------------------------------------------


def test_human_units_become_seconds() -> None:
    data = base()
    data["api"]["max_body_mb"] = 0.5
    data["surveys"] = {
        "frequency_cap_days": 0,
        "reply_window_hours": 1.5,
        "dlr_timeout_hours": 1,
        "retention_days": 2,
        "quiet_hours": {"start": "22:30:15", "end": datetime.time(7, 0), "spread_minutes": 0},
    }
    data["sms"]["mo_reassembly_timeout_minutes"] = 2
    data["webhooks"]["endpoints"][0]["max_age_hours"] = 100
    settings = parse_settings(data, {})
    surveys = settings.surveys
    assert settings.api.max_body_bytes == 512 * 1024
    assert (surveys.frequency_cap_s, surveys.reply_window_s) == (0.0, 5400.0)
    assert (surveys.dlr_timeout_s, surveys.retention_s) == (3600.0, 172800.0)
    assert surveys.quiet_hours == QuietHours(True, datetime.time(22, 30, 15), datetime.time(7), 0.0)
    assert settings.sms.mo_reassembly_timeout_s == 120.0
    assert settings.webhooks[0].max_age_s == 360000.0


def test_service_names_replace_the_default_set() -> None:
    settings = parse_settings(with_(base(), "surveys.service_names", {"110": "110接警"}), {})
    assert settings.surveys.service_names == {"110": "110接警"}
    assert parse_settings(base(), {}).surveys.service_names["window"] == "窗口服务"
    assert error(with_(base(), "surveys.service_names", {})).path == "surveys.service_names"


def test_log_level_is_case_insensitive() -> None:
    settings = parse_settings(with_(base(), "log.level", "debug"), {})
    assert settings.log.level == "DEBUG"


def test_the_settings_are_frozen() -> None:
    settings = parse_settings(base(), {})
    with pytest.raises(AttributeError):
        settings.redis_url = "redis://elsewhere/0"  # type: ignore[misc]


# --- the environment ----------------------------------------------------------------------


def test_environment_wins_over_the_file() -> None:
    env = {
        "MINYI_REDIS_URL": "redis://redis.internal:6380/2",
        "MINYI_API_TOKEN_CORE": "env-token-" + "e" * 10,
        "MINYI_SMPP_PASSWORD_A": "envpw",
        "MINYI_WEBHOOK_SECRET_CORE": "whsec_" + base64.b64encode(b"e" * 32).decode(),
    }
    settings = parse_settings(base(), env)
    assert settings.redis_url == env["MINYI_REDIS_URL"]
    assert settings.api.tokens[0].token == env["MINYI_API_TOKEN_CORE"]
    assert settings.sms.binds[0].password == "envpw"
    assert settings.webhooks[0].secret == env["MINYI_WEBHOOK_SECRET_CORE"]


def test_an_empty_environment_variable_counts_as_unset() -> None:
    settings = parse_settings(base(), {"MINYI_API_TOKEN_CORE": "", "MINYI_REDIS_URL": ""})
    assert settings.api.tokens[0].token == TOKEN
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_environment_variable_names() -> None:
    assert env_name("MINYI_API_TOKEN_", "core-system") == "MINYI_API_TOKEN_CORE_SYSTEM"
    assert env_name("MINYI_SMPP_PASSWORD_", "cmcc.1") == "MINYI_SMPP_PASSWORD_CMCC_1"
    data = with_(base(), "api.tokens[0]", {"name": "core-system", "units": ["*"]})
    settings = parse_settings(data, {"MINYI_API_TOKEN_CORE_SYSTEM": TOKEN})
    assert settings.api.tokens[0].token == TOKEN


def test_the_os_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINYI_SMPP_PASSWORD_A", "frompenv")
    assert parse_settings(base()).sms.binds[0].password == "frompenv"


def test_a_misspelt_environment_variable_is_warned_about() -> None:
    settings = parse_settings(base(), {"MINYI_API_TOKEN_COER": TOKEN, "MINYI_OTHER": "x"})
    assert settings.warnings == (
        "MINYI_API_TOKEN_COER is set but no entry of api.tokens has that name, so it is "
        'ignored; did you mean "MINYI_API_TOKEN_CORE"?',
    )


def test_idle_workers_are_warned_about() -> None:
    data = {**with_(base(), "api.tokens", DELETE), "webhooks": {}}
    warnings = parse_settings(data, {}).warnings
    assert any("api.tokens is empty" in w for w in warnings)
    assert any("no [[webhooks.endpoints]]" in w for w in warnings)


# --- redaction -----------------------------------------------------------------------------


def test_redacted_hides_every_secret() -> None:
    data = base()
    data["redis_url"] = "redis://minyi:redispass@redis.internal:6379/0"
    data["webhooks"]["endpoints"][0]["url"] = "https://user:urlpass@core.example/hook?token=qs1"
    data["sms"]["binds"].append({**data["sms"]["binds"][0], "name": "b", "password": "pw2"})
    settings = parse_settings(data, {"MINYI_API_TOKEN_CORE": "env-token-" + "z" * 10})
    shown = redacted(settings)
    text = json.dumps(shown, ensure_ascii=False)
    for secret in (TOKEN, "env-token-", PASSWORD, "pw2", SECRET, "redispass", "urlpass", "qs1"):
        assert secret not in text
    assert shown["api"]["tokens"][0] == {"name": "core", "token": "***", "units": ["*"]}
    assert [b["password"] for b in shown["sms"]["binds"]] == ["***", "***"]
    assert shown["webhooks"][0]["secret"] == "***"
    assert shown["redis_url"] == "redis://minyi:***@redis.internal:6379/0"
    assert shown["webhooks"][0]["url"] == "https://user:***@core.example/hook?token=***"
    # and everything else is there, as JSON
    assert shown["surveys"]["timezone"] == "Asia/Shanghai"
    assert shown["surveys"]["quiet_hours"]["start"] == "21:00:00"
    assert shown["sms"]["binds"][0]["window"] == 64
    assert json.loads(text) == shown


# --- ApiToken ------------------------------------------------------------------------------


def test_token_units() -> None:
    token = ApiToken("county", TOKEN, ("330602", "3306*"))
    assert token.allows("330602")
    assert token.allows("330621")
    assert token.allows("3306")
    assert not token.allows("330502")
    assert token.allows("33060")
    assert not token.allows("330")
    assert ApiToken("city", TOKEN, ("*",)).allows("110000")
    assert not ApiToken("one", TOKEN, ("330602",)).allows("3306021")
    assert not ApiToken("none", TOKEN, ()).allows("330602")


# --- quiet hours ---------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = QuietHours(start=datetime.time(21), end=datetime.time(8))
LUNCH = QuietHours(start=datetime.time(12), end=datetime.time(14))


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        ("2026-03-01 20:59:59.999999", False),
        ("2026-03-01 21:00:00", True),  # start is quiet
        ("2026-03-01 23:59:59", True),
        ("2026-03-02 00:00:00", True),
        ("2026-03-02 07:59:59.999999", True),
        ("2026-03-02 08:00:00", False),  # end is not
        ("2026-03-02 12:00:00", False),
    ],
)
def test_quiet_hours_over_midnight(when: str, quiet: bool) -> None:
    assert NIGHT.contains(at(when)) is quiet


@pytest.mark.parametrize(
    ("when", "quiet"),
    [
        ("2026-03-01 11:59:59", False),
        ("2026-03-01 12:00:00", True),
        ("2026-03-01 13:59:59", True),
        ("2026-03-01 14:00:00", False),
        ("2026-03-01 23:00:00", False),
        ("2026-03-01 03:00:00", False),
    ],
)
def test_quiet_hours_within_one_day(when: str, quiet: bool) -> None:
    assert LUNCH.contains(at(when)) is quiet


def test_no_quiet_hours_when_disabled_or_empty() -> None:
    off = QuietHours(enabled=False)
    empty = QuietHours(start=datetime.time(8), end=datetime.time(8))
    for hour in range(24):
        local = at(f"2026-03-01 {hour:02}:00:00")
        assert not off.contains(local)
        assert not empty.contains(local)
        assert off.next_end(local) == local


def test_next_end_across_midnight_and_the_year() -> None:
    end = NIGHT.next_end(at("2026-12-31 23:00:00"))
    assert end == at("2027-01-01 08:00:00")
    assert end.tzinfo is SHANGHAI
    assert end.timestamp() - at("2026-12-31 23:00:00").timestamp() == 9 * 3600
    assert NIGHT.next_end(at("2026-12-31 21:00:00")) == at("2027-01-01 08:00:00")


def test_next_end_after_midnight_is_the_same_day() -> None:
    assert NIGHT.next_end(at("2027-01-01 00:00:00")) == at("2027-01-01 08:00:00")
    assert NIGHT.next_end(at("2027-01-01 07:59:59")) == at("2027-01-01 08:00:00")


def test_next_end_outside_quiet_hours_is_now() -> None:
    now = at("2026-03-01 08:00:00")
    assert NIGHT.next_end(now) is now
    assert LUNCH.next_end(at("2026-03-01 13:15:00")) == at("2026-03-01 14:00:00")


def test_next_end_in_a_zone_with_dst_is_the_wall_clock_end() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # clocks go forward at 02:00 on 2025-03-30
    start = at("2025-03-29 23:00:00", berlin)
    end = NIGHT.next_end(start)
    assert (end.hour, end.minute, end.utcoffset()) == (8, 0, datetime.timedelta(hours=2))
    assert end.timestamp() - start.timestamp() == 8 * 3600  # one hour less than the wall


# --- the file --------------------------------------------------------------------------------


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml")
    assert info.value.path == ""
    assert (
        str(info.value)
        == f"config error: cannot read {tmp_path / 'nope.toml'}: No such file or directory"
    )


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "minyi.toml"
    path.write_text('[sms]\nsource_addr = "1069\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert str(info.value).startswith(f"config error: {path}: not valid TOML: ")
    assert "line 2" in str(info.value)
    path.write_bytes(b'redis_url = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_settings(path, {})


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "minyi.toml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert startup.load(path, EXAMPLE_ENV).settings.sms.source_addr == "106900001234"


ODD_VALUES: list[object] = ["abc", "", -1, 0, 10**30, True, math.inf, [], [1, "x"], {"k": 1}]


def _leaves(node: object, path: str) -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list) and node and isinstance(node[0], dict):
        return [p for i, v in enumerate(node) for p in _leaves(v, f"{path}[{i}]")]
    return [path]


def test_any_value_anywhere_is_accepted_or_a_config_error() -> None:
    """Like h11's fuzz loop: parses, or raises ConfigError with one line; nothing else."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    paths = _leaves(data, "")
    assert len(paths) > 60
    for path in paths:
        for value in ODD_VALUES:
            try:
                startup.parse(with_(data, path, value), EXAMPLE_ENV)
            except ConfigError as e:
                assert str(e).startswith("config error: ")
                assert "\n" not in str(e)
                assert TOKEN not in str(e) and SECRET not in str(e)


# --- the CLI ---------------------------------------------------------------------------------


def test_config_check_prints_ok_and_the_redacted_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(var, value)
    assert startup.main(["check", "--config", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    first, _, rest = out.partition("\n")
    assert first == "config OK"
    assert json.loads(rest)["sms"]["binds"][0]["password"] == "***"
    assert PASSWORD not in out and TOKEN not in out and SECRET not in out
    assert err == ""


def test_config_check_reports_the_error_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(var, value)
    path = tmp_path / "minyi.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("window = 64", "windw = 64")
    path.write_text(text, encoding="utf-8")
    assert startup.main(["config", "check", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == 'config error: sms.binds[0].windw: unknown setting; did you mean "window"?\n'


def test_config_check_prints_warnings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("MINYI_SMPP_PASSWORD_CMCC_2", "x")
    assert startup.main(["check", "--config", str(EXAMPLE)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("config warning: MINYI_SMPP_PASSWORD_CMCC_2 is set but no entry")


def test_config_check_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert startup.main(["check"]) == 2
    assert "--config" in capsys.readouterr().err


def test_the_clarifying_sms_is_built_in_and_a_configs_own_wins() -> None:
    checked = startup.check(parse_settings(base(), {}))
    clarify = checked.templates["clarify"]
    assert clarify.render({"signature": ""}) == CLARIFY_TEXT.format(signature="")
    own = with_(base(), "sms.templates.clarify", {"text": "请回复1满意2基本满意3不满意"})
    assert startup.check(parse_settings(own, {})).templates["clarify"].text == (
        "请回复1满意2基本满意3不满意"
    )
    # "" sends none: no template needed
    none = with_(base(), "surveys.clarify_template", "")
    assert startup.check(parse_settings(none, {})).settings.surveys.clarify_template == ""
