"""Starting the gateway: the config file, then every check that needs a domain's code.

gateway/config/ reads and checks the file on its own: it is the ground floor and
imports no domain. What only a domain can judge runs here, at the top floor, before
any worker starts (gateway/service.py) and in `minyi config check`:

- the survey templates (``sms.templates.load_templates``): placeholders, worst-case
  length; and, as warnings, the service and unit names a template would cut;
- ``[dialer.asterisk]`` against what Asterisk takes (``gateway.dialer.asterisk``);
- the ``[asr]`` model, looked up in ``asr.models``' registry; for a process that runs
  the asr worker, also its files on this host;
- for a process that runs the api worker, its TLS certificate and key when
  ``[api] tls_cert`` is set (``gateway.api.tls``): read and matched here, on the host
  that has them.

Every refusal is a ConfigError naming the setting, as the config's own.

Once Redis is reachable, :func:`check_redis_persistence` reads how it keeps its data
(``CONFIG GET``) and the service logs a loud warning, naming the setting, for each way
a restart of Redis could lose what the gateway was told was stored
(docs/operations.md, "Redis").

`minyi config check --config FILE` prints "config OK" and every setting as JSON with
secrets replaced by "***", or the one-line error naming the wrong setting; it exits 2
on a wrong config (as argparse does for a wrong command line), so scripts and deploy
tools can stop on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from asr.models import KNOWN_MODELS, ModelSpec, check_model_files, resolve_model
from gateway import logs
from gateway.api.tls import server_context
from gateway.config import (
    AsrSettings,
    ConfigError,
    Settings,
    load_settings,
    parse_settings,
    plain,
    redacted,
)
from gateway.config.cli import EXIT_CONFIG_ERROR, EXIT_OK, parse_command
from gateway.dialer.asterisk import check_config
from sms.templates import Template, cut_names, load_templates


@dataclass(frozen=True)
class Checked:
    """The settings once every check passed, and what the domains made of them."""

    settings: Settings  # its warnings include the domains' (names a template cuts)
    templates: Mapping[str, Template]  # every [sms.templates.NAME], loaded
    model: ModelSpec | None  # the ASR model, when [asr] is there or the asr worker runs
    tls: ssl.SSLContext | None = None  # the API's HTTPS context (api worker, tls_cert set)


def check(settings: Settings, workers: Sequence[str] | None = None) -> Checked:
    """Run every check that needs a domain's code on ``settings``.

    ``workers``: the workers this process is about to run. Without them (`minyi config
    check`, on any host) nothing on this host is looked at; with ``asr`` among them
    the ``[asr]`` defaults apply when the table is absent, and the model's files must
    be installed here; with ``api``, the TLS certificate and key must load here.
    Raises ConfigError naming the first wrong setting.
    """
    templates = load_templates(settings.sms)
    clarify = settings.surveys.clarify_template
    if clarify and clarify not in templates:
        raise ConfigError(
            "surveys.clarify_template",
            f'names no template: define [sms.templates.{clarify}] or set "" (no clarifying SMS)',
        )
    dialer = settings.dialer
    if dialer is not None and dialer.asterisk is not None:
        check_config(dialer.asterisk)
    if workers is not None and "asr" in workers and settings.asr is None:
        settings = dataclasses.replace(settings, asr=AsrSettings())
    model = resolve_model(settings.asr.model) if settings.asr is not None else None
    if workers is not None and "asr" in workers:
        assert model is not None
        _installed(model)
    tls = server_context(settings.api) if workers is not None and "api" in workers else None
    warnings = (*settings.warnings, *cut_names(settings.surveys, templates))
    return Checked(dataclasses.replace(settings, warnings=warnings), templates, model, tls)


log = logs.logger(__name__)

# The Redis settings whose values decide whether a restart loses data.
PERSISTENCE_SETTINGS = ("appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy")


def persistence_risks(config: Mapping[str, str]) -> list[str]:
    """What Redis settings (CONFIG GET) put acknowledged data at risk, one sentence each
    naming the setting and the fix; empty when AOF is on, fsync'd every second or
    always, and nothing is evicted. Pure: :func:`check_redis_persistence` asks Redis."""
    risks: list[str] = []
    aof = config.get("appendonly", "").lower() == "yes"
    if not aof:
        if config.get("save", "").strip():
            risks.append(
                "appendonly is no: a restart of Redis loses every survey, receipt and "
                f"event written since the last RDB snapshot (save {config['save']!r}); "
                "set appendonly yes, appendfsync everysec"
            )
        else:
            risks.append(
                "appendonly is no and save is empty: a restart of Redis loses everything "
                "(surveys, queues, the webhook feed); set appendonly yes, appendfsync everysec"
            )
    elif config.get("appendfsync", "").lower() == "no":
        risks.append(
            "appendfsync is no: the kernel decides when the AOF reaches the disk, a crash "
            "of the host can lose half a minute of writes; set appendfsync everysec"
        )
    policy = config.get("maxmemory-policy", "noeviction").lower()
    if policy != "noeviction" and config.get("maxmemory", "0") not in ("", "0"):
        risks.append(
            f"maxmemory-policy is {policy} with maxmemory {config['maxmemory']}: a full "
            "Redis silently evicts surveys, streams and webhook queues; set "
            "maxmemory-policy noeviction"
        )
    return risks


async def check_redis_persistence(
    redis: aioredis.Redis, logger: logging.Logger | None = None
) -> list[str]:
    """Read Redis's persistence settings and log a warning for each risk (see
    :func:`persistence_risks`), or that they could not be checked (a managed Redis may
    refuse CONFIG). Returns the warnings."""
    logger = logger or log
    try:
        raw = await redis.config_get(*PERSISTENCE_SETTINGS)
    except RedisError as exc:
        warning = (
            f"Redis persistence could not be checked (CONFIG GET refused: {exc}); make sure "
            "it runs with appendonly yes, appendfsync everysec and maxmemory-policy "
            "noeviction, or a restart of Redis can lose acknowledged surveys"
        )
        logger.warning(warning)
        return [warning]
    config = {str(k): str(v) for k, v in raw.items()}
    warnings = [f"REDIS CAN LOSE DATA: {risk}" for risk in persistence_risks(config)]
    for warning in warnings:
        logger.warning(warning)
    return warnings


def _installed(model: ModelSpec) -> None:
    files = check_model_files(model.path)
    if not files.present:
        fetch = model.name if model.name in KNOWN_MODELS else "ARCHIVE --name " + model.path.name
        raise ConfigError(
            "asr.model",
            f'model "{model.name}" is not installed at {model.path} (missing '
            f"{', '.join(files.missing)}); install it with: minyi asr fetch {fetch}",
        )


def parse(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: Path | None = None
) -> Checked:
    """:func:`gateway.config.parse_settings`, then :func:`check`."""
    return check(parse_settings(data, env, source))


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Checked:
    """:func:`gateway.config.load_settings`, then :func:`check`."""
    return check(load_settings(path, env))


def shown(checked: Checked) -> dict[str, Any]:
    """Every setting as `minyi config check` prints it: secrets hidden, and the ASR
    model as the registry resolved it (what the worker runs)."""
    data = redacted(checked.settings)
    if checked.model is not None:
        data["asr"]["model"] = plain(checked.model)
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minyi config", description="Config file tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check_command = commands.add_parser(
        "check", help="check a config file and print the settings it gives (secrets hidden)"
    )
    check_command.add_argument(
        "--config", required=True, metavar="FILE", help="the TOML config file"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run `minyi config ...`; return the exit code."""
    args = parse_command(argv, "config", _parser())
    if isinstance(args, int):
        return args
    try:
        checked = load(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    for warning in checked.settings.warnings:
        print(f"config warning: {warning}", file=sys.stderr)
    print("config OK")
    print(json.dumps(shown(checked), ensure_ascii=False, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
