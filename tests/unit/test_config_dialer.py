"""The [dialer] config section."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from gateway.config import CallingHours, ConfigError, parse_settings
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
