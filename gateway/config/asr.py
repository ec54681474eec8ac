"""The ``[asr]`` and ``[recordings]`` sections: transcribing callback recordings, and
keeping and serving the recordings.

Read by :func:`gateway.config.reader.parse_settings`. ``[asr]`` is the same table
``minyi asr models --config FILE`` reads (:mod:`asr.cli`), so ``model``, ``models_dir``
and ``[asr.models.NAME]`` mean the same in both places::

    [asr]
    model = "small-cn"          # a model name (small-cn, cn, ko-test, [asr.models.*]),
                                # or the absolute path of a model directory
    models_dir = "/var/lib/minyi/models"
    pool_size = 3               # decoder processes; default: cores - 1
    max_tries = 3               # deliveries of one job before it is dead-lettered
    claim_idle_s = 60           # a job pending this long is taken over
    job_timeout_s = 120

    [recordings]
    dir = "/var/spool/asterisk/monitor/minyi"   # default: [dialer].recordings_dir
    retention_days = 180
    url_ttl_s = 600
    # url_secret: in MINYI_RECORDINGS_URL_SECRET; unset = no recording URLs served

The recordings secret signs the short-lived URLs of recordings/access.py; without it
the api worker serves no recordings (``GET /v1/recordings/...`` answers 503).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from gateway.config.reader import ConfigError, _show, _Table, _text

if TYPE_CHECKING:
    from asr.models import ModelSpec

ENV_RECORDINGS_URL_SECRET: Final = "MINYI_RECORDINGS_URL_SECRET"
DEFAULT_RECORDINGS_DIR: Final = "/var/spool/asterisk/monitor/minyi"
_DIR_RE: Final = re.compile(r"/[-A-Za-z0-9_./]{0,200}")
_MODEL_KEYS: Final = ("path", "language", "sample_rate", "notes")
# recordings/access.py refuses shorter keys (HMAC-SHA256 wants at least 128 bits)
URL_SECRET_MIN: Final = 16


@dataclass(frozen=True)
class AsrSettings:
    """The ASR worker. ``pool_size`` None means cores - 1 on the host that runs it."""

    model: ModelSpec
    pool_size: int | None = None
    max_tries: int = 3
    claim_idle_s: float = 60.0
    job_timeout_s: float = 120.0


@dataclass(frozen=True)
class RecordingsSettings:
    """Where recordings are, how long they are kept, and how they are served."""

    dir: Path = Path(DEFAULT_RECORDINGS_DIR)
    retention_days: float = 180.0
    url_ttl_s: float = 600.0
    url_secret: str | None = field(default=None, repr=False)  # never in a log line


def _directory(value: object, path: str) -> Path:
    text = _text(value, path, max_len=300)
    if not _DIR_RE.fullmatch(text):
        raise ConfigError(
            path, f"must be an absolute path of letters, digits, - _ . /, got {_show(text)}"
        )
    return Path(text)


def _model(t: _Table) -> ModelSpec:
    """The model the worker runs, looked up in asr.models' registry (as ``minyi asr``)."""
    from asr.models import DEFAULT_MODEL, ModelRegistry, ModelSpec

    models = t.get("models", {})
    if not isinstance(models, Mapping):
        raise ConfigError(t.at("models"), f"must be tables [asr.models.NAME], got {_show(models)}")
    for name, entry in models.items():
        m = _Table(entry, f"{t.at('models')}.{name}", _MODEL_KEYS)
        _text(m.get("path"), m.at("path"), max_len=300)
        if "sample_rate" in m.data:
            m.integer("sample_rate", None, 8000, 48000)
    models_dir = _directory(t.get("models_dir", "/var/lib/minyi/models"), t.at("models_dir"))
    name = _text(t.get("model", DEFAULT_MODEL), t.at("model"), max_len=300)
    plain = {"models_dir": str(models_dir), "models": dict(models)}
    try:
        registry = ModelRegistry.from_settings(plain)
    except (ValueError, TypeError) as e:
        raise ConfigError(t.at("models"), str(e)) from None
    if name in registry.models:
        return registry.get(name)
    if name.startswith("/"):
        # A model directory given directly; its sample rate is read from its config.
        return ModelSpec(name=Path(name).name, path=Path(name), language="zh-CN")
    known = ", ".join(sorted(registry.models))
    raise ConfigError(
        t.at("model"), f"unknown model {_show(name)} (known: {known}; or an absolute path)"
    )


def parse_asr(data: object) -> AsrSettings:
    """Check the ``[asr]`` table; raises ConfigError naming the first wrong setting."""
    t = _Table(
        data,
        "asr",
        (
            "model",
            "models_dir",
            "models",
            "pool_size",
            "max_tries",
            "claim_idle_s",
            "job_timeout_s",
        ),
    )
    pool_size = t.get("pool_size", None)
    return AsrSettings(
        model=_model(t),
        pool_size=None if pool_size is None else t.integer("pool_size", None, 1, 256),
        max_tries=t.integer("max_tries", 3, 1, 100),
        claim_idle_s=t.number("claim_idle_s", 60.0, 1, 86400),
        job_timeout_s=t.number("job_timeout_s", 120.0, 1, 86400),
    )


def parse_recordings(
    data: object, env: Mapping[str, str], default_dir: str | None
) -> RecordingsSettings:
    """Check the ``[recordings]`` table. ``default_dir``: the dialer's recordings_dir."""
    t = _Table(data, "recordings", ("dir", "retention_days", "url_ttl_s", "url_secret"))
    secret: str | None = None
    if env.get(ENV_RECORDINGS_URL_SECRET) or "url_secret" in t.data:
        secret, origin = t.secret("url_secret", env, ENV_RECORDINGS_URL_SECRET)
        if len(secret.encode()) < URL_SECRET_MIN:
            # never echo the secret: the message ends up in logs and tickets
            raise ConfigError(
                t.at("url_secret"),
                f"must be at least {URL_SECRET_MIN} bytes (e.g. $(openssl rand -base64 32))"
                f"{origin}",
            )
    return RecordingsSettings(
        dir=_directory(t.get("dir", default_dir or DEFAULT_RECORDINGS_DIR), t.at("dir")),
        retention_days=t.number("retention_days", 180, 0, 3650, above=True),
        url_ttl_s=t.number("url_ttl_s", 600, 1, 7 * 86400),
        url_secret=secret,
    )
