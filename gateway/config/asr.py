"""The ``[asr]`` section: transcribing callback recordings.

``[asr]`` is the same table ``minyi asr models --config FILE`` reads (:mod:`asr.cli`),
so ``model``, ``models_dir`` and ``[asr.models.NAME]`` mean the same in both places::

    [asr]
    model = "small-cn"          # a model name (small-cn, cn, ko-test, [asr.models.*]),
                                # or the absolute path of a model directory
    models_dir = "/var/lib/minyi/models"
    pool_size = 3               # decoder processes; default: cores - 1
    max_tries = 3               # deliveries of one job before it is dead-lettered
    claim_idle_s = 60           # a job pending this long is taken over
    job_timeout_s = 120

The file's model is kept here as plain data (:class:`ModelChoice`): which models exist
is the ASR package's knowledge, so ``asr.models.resolve_model`` turns the choice into
the model the worker runs when the gateway starts (gateway/startup.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from gateway.config.reader import ConfigError, Table, directory, show, text

DEFAULT_MODEL: Final = "small-cn"
DEFAULT_MODELS_DIR: Final = Path("/var/lib/minyi/models")
_MODEL_KEYS: Final = ("path", "language", "sample_rate", "notes")


@dataclass(frozen=True)
class ModelChoice:
    """The model as the file names it: a model name or a model directory's absolute
    path, where relative model paths live, and the ``[asr.models.NAME]`` tables."""

    name: str = DEFAULT_MODEL
    models_dir: Path = DEFAULT_MODELS_DIR
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class AsrSettings:
    """The ASR worker. ``pool_size`` None means cores - 1 on the host that runs it."""

    model: ModelChoice = ModelChoice()
    pool_size: int | None = None
    max_tries: int = 3
    claim_idle_s: float = 60.0
    job_timeout_s: float = 120.0


def _model(t: Table) -> ModelChoice:
    models = t.get("models", {})
    if not isinstance(models, Mapping):
        raise ConfigError(t.at("models"), f"must be tables [asr.models.NAME], got {show(models)}")
    for key, entry in models.items():
        m = Table(entry, f"{t.at('models')}.{key}", _MODEL_KEYS)
        text(m.get("path"), m.at("path"), max_len=300)
        if "sample_rate" in m.data:
            m.integer("sample_rate", None, 8000, 48000)
    d = ModelChoice
    models_dir = directory(t.get("models_dir", str(d.models_dir)), t.at("models_dir"))
    name = text(t.get("model", d.name), t.at("model"), max_len=300)
    return ModelChoice(name=name, models_dir=models_dir, models=dict(models))


def parse_asr(data: object) -> AsrSettings:
    """Check the ``[asr]`` table; raises ConfigError naming the first wrong setting."""
    t = Table(
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
    d = AsrSettings
    pool_size = t.get("pool_size", d.pool_size)
    return AsrSettings(
        model=_model(t),
        pool_size=None if pool_size is None else t.integer("pool_size", None, 1, 256),
        max_tries=t.integer("max_tries", d.max_tries, 1, 100),
        claim_idle_s=t.number("claim_idle_s", d.claim_idle_s, 1, 86400),
        job_timeout_s=t.number("job_timeout_s", d.job_timeout_s, 1, 86400),
    )
