"""The [asr] and [recordings] sections: defaults, the model registry shared with
``minyi asr models``, the recordings secret from the environment and never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asr.models import TEST_MODEL, bundled_test_model
from gateway import startup
from gateway.config import AsrSettings, RecordingsSettings, parse_settings, redacted
from gateway.config.asr import DEFAULT_MODEL, DEFAULT_MODELS_DIR
from gateway.config.recordings import ENV_RECORDINGS_URL_SECRET
from tests.unit.test_config import DELETE, base, error, with_

URL_SECRET = "rec-" + "s" * 28
AMI = {"host": "127.0.0.1", "secret": "ami-secret"}


def test_absent_sections_give_defaults() -> None:
    settings = parse_settings(base(), {})
    assert settings.asr is None
    assert settings.recordings == RecordingsSettings()
    assert settings.recordings.dir == Path("/var/spool/asterisk/monitor/minyi")
    assert (settings.recordings.retention_days, settings.recordings.url_ttl_s) == (180, 600)
    assert settings.recordings.url_secret is None  # recording URLs off


def test_the_asr_worker_runs_on_defaults_without_its_table() -> None:
    checked = startup.parse(with_(base(), "workers", ["asr"]), {})
    settings = checked.settings
    assert settings.asr is not None and checked.model is not None
    assert checked.model.name == DEFAULT_MODEL
    assert checked.model.path == DEFAULT_MODELS_DIR / "vosk-model-small-cn-0.22"
    assert settings.asr == AsrSettings(model=settings.asr.model)
    assert settings.asr.pool_size is None  # cores - 1 where it runs
    assert (settings.asr.max_tries, settings.asr.claim_idle_s) == (3, 60.0)


def test_the_model_comes_from_the_registry_minyi_asr_reads() -> None:
    data = with_(base(), "asr", {"model": "cn", "models_dir": "/srv/models", "pool_size": 2})
    checked = startup.parse(data, {})
    assert checked.settings.asr is not None and checked.settings.asr.pool_size == 2
    assert checked.model is not None
    assert checked.model.path == Path("/srv/models/vosk-model-cn-0.22")
    mine = {"model": "mine", "models": {"mine": {"path": "m1", "sample_rate": 8000}}}
    model = startup.parse(with_(base(), "asr", mine), {}).model
    assert model is not None and model.path == DEFAULT_MODELS_DIR / "m1"
    assert model.sample_rate == 8000
    test_model = bundled_test_model()
    if test_model is not None:
        model = startup.parse(with_(base(), "asr", {"model": TEST_MODEL}), {}).model
        assert model is not None and model == test_model
    model = startup.parse(with_(base(), "asr", {"model": "/opt/vosk/ko"}), {}).model
    assert model is not None and model.path == Path("/opt/vosk/ko")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("asr.model", "smal-cn", 'asr.model: unknown model "smal-cn" (known: '),
        ("asr.pool_size", 0, "asr.pool_size: must be an integer from 1 to 256, got 0"),
        ("asr.max_tries", "3", 'asr.max_tries: must be an integer from 1 to 100, got "3"'),
        ("asr.claim_idle_s", 0, "asr.claim_idle_s: must be a number from 1 to 86400, got 0"),
        ("asr.modle", "cn", 'asr.modle: unknown setting; did you mean "model"?'),
        ("asr.models.x", {"language": "ko"}, "asr.models.x.path: is required"),
        ("asr.models_dir", "models", "asr.models_dir: must be an absolute path"),
        ("recordings.dir", "spool", "recordings.dir: must be an absolute path"),
        ("recordings.retention_days", 0, "recordings.retention_days: must be a number greater"),
        ("recordings.url_ttl_s", 0, "recordings.url_ttl_s: must be a number from 1 to 604800"),
        ("recordings.url_secret", "short", "recordings.url_secret: must be at least 16 bytes"),
    ],
)
def test_mistakes_name_their_setting(path: str, value: object, message: str) -> None:
    text = str(error(with_(base(), path, value)))
    assert text.startswith("config error: " + message), text
    assert "\n" not in text


def test_the_url_secret_comes_from_the_environment_and_is_never_shown() -> None:
    env = {ENV_RECORDINGS_URL_SECRET: URL_SECRET}
    settings = parse_settings(base(), env)
    assert settings.recordings.url_secret == URL_SECRET
    assert URL_SECRET not in repr(settings.recordings)
    assert redacted(settings)["recordings"]["url_secret"] == "***"
    assert URL_SECRET not in json.dumps(redacted(settings))
    # The environment wins over the file; a short one is refused without being echoed.
    data = with_(base(), "recordings.url_secret", "file-" + "f" * 20)
    assert parse_settings(data, env).recordings.url_secret == URL_SECRET
    text = str(error(base(), {ENV_RECORDINGS_URL_SECRET: "tiny-secret"}))
    assert "tiny-secret" not in text and ENV_RECORDINGS_URL_SECRET in text


def test_recordings_live_where_the_dialer_writes_them() -> None:
    dialer: dict[str, Any] = {"ami": AMI, "recordings_dir": "/data/rec"}
    settings = parse_settings(with_(base(), "dialer", dialer), {})
    assert settings.recordings.dir == Path("/data/rec")
    data = with_(with_(base(), "dialer", dialer), "recordings.dir", "/mnt/rec")
    assert parse_settings(data, {}).recordings.dir == Path("/mnt/rec")
    assert parse_settings(with_(data, "dialer", DELETE), {}).recordings.dir == Path("/mnt/rec")
