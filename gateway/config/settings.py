"""The gateway's one config file (TOML): the root table, and reading the whole file.

Each section has its module (``api``, ``surveys``, ``sms``, ``webhooks``, ``dialer``,
``asr``, ``recordings``, ``log``); this one reads the root keys, calls them, and checks
what spans sections. The file uses human units (``reply_window_hours``); the
dataclasses hold seconds. Checks that need a domain's code (the templates' worst-case
length, Asterisk's limits, the ASR model registry) run when the gateway starts, in
gateway/startup.py, and in `minyi config check`.

Secrets may come from the environment instead of the file; the environment wins:

    MINYI_REDIS_URL                  redis_url
    MINYI_REDIS_PASSWORD             redis.password (the data nodes found through Sentinel)
    MINYI_REDIS_SENTINEL_PASSWORD    redis.sentinel_password
    MINYI_API_TOKEN_<NAME>           api.tokens[].token of the token named NAME
    MINYI_SMPP_PASSWORD_<BIND>       sms.binds[].password of the SMPP bind named BIND
    MINYI_CMPP_SECRET_<BIND>         sms.binds[].secret of the CMPP bind named BIND
    MINYI_WEBHOOK_SECRET_<ENDPOINT>  webhooks.endpoints[].secret
    MINYI_AMI_SECRET                 dialer.ami.secret
    MINYI_RECORDINGS_URL_SECRET      recordings.url_secret

NAME is upper-cased with every other character than A-Z and 0-9 turned into "_".
An empty environment variable counts as unset. docs/configuration.md lists every
setting; minyi.example.toml is a complete example.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from gateway.config.api import ENV_API_TOKEN, ApiSettings, parse_api
from gateway.config.asr import AsrSettings, parse_asr
from gateway.config.asterisk import ENV_AGENT_PASSWORD
from gateway.config.binds import ENV_CMPP_SECRET, ENV_SMPP_PASSWORD, CmppBind, SmppBind
from gateway.config.dialer import DialerSettings, parse_dialer
from gateway.config.reader import (
    ConfigError,
    Table,
    env_name,
    host,
    pick,
    show,
    suggest,
    text,
)
from gateway.config.recordings import RecordingsSettings, parse_recordings
from gateway.config.redaction import redact_url
from gateway.config.sms import SmsSettings, check_sms_worker, parse_sms
from gateway.config.surveys import SurveySettings, parse_surveys
from gateway.config.webhooks import ENV_WEBHOOK_SECRET, WebhookEndpoint, parse_webhooks

# --- [log]: logging, configured once at the entry point
LogFormat = Literal["text", "json"]
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")


@dataclass(frozen=True)
class LogSettings:
    """Logging, configured once at the entry point."""

    level: str = "INFO"
    format: LogFormat = "text"


def parse_log(data: object) -> LogSettings:
    """Check the ``[log]`` table; the level is case-insensitive."""
    t = Table(data, "log", ("level", "format"))
    level = t.get("level", LogSettings.level)
    level = pick(level.upper() if isinstance(level, str) else level, t.at("level"), LEVELS)
    return LogSettings(level=level, format=t.pick("format", LogSettings.format, FORMATS))


WORKERS: Final = ("api", "sms", "webhooks", "dialer", "asr")
ENV_REDIS_URL: Final = "MINYI_REDIS_URL"
ENV_REDIS_PASSWORD: Final = "MINYI_REDIS_PASSWORD"
ENV_REDIS_SENTINEL_PASSWORD: Final = "MINYI_REDIS_SENTINEL_PASSWORD"
SENTINEL_SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
# Redis Sentinel's own port (redis.io, "High availability with Redis Sentinel").
SENTINEL_PORT: Final = 26379


@dataclass(frozen=True, kw_only=True)
class RedisSettings:
    """How the gateway reaches Redis besides ``redis_url``: through Sentinel (the
    ``[redis]`` section, or a ``redis+sentinel://`` URL), and how many replicas must
    hold a write before the gateway acknowledges anything that rests on it.

    ``sentinels`` empty: ``redis_url`` names the server (standalone). Otherwise the
    gateway asks the sentinels for ``master_name``'s master and follows its failovers;
    ``db``, ``username``, ``password`` and the TLS files are then those of the master
    and replicas (a standalone server takes them from ``redis_url``), the sentinel
    credentials those of the sentinels.
    """

    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = "mymaster"
    db: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    sentinel_username: str = ""
    sentinel_password: str = field(default="", repr=False)
    tls: bool = False
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Replicas a write must reach (Redis WAIT) before the gateway answers 201, answers a
    # deliver_sm, puts a part on the wire or POSTs an event; None: 1 under Sentinel, 0
    # for a standalone server (which has no replica to wait for).
    wait_replicas: int | None = None
    # How long one WAIT waits; the API answers 503 when a write is not on enough
    # replicas by then (the workers keep waiting, and say so).
    wait_timeout_ms: int = 1000

    @property
    def sentinel(self) -> bool:
        """Whether Redis is found through Sentinel."""
        return bool(self.sentinels)

    @property
    def replicas(self) -> int:
        """The replicas every acknowledged write waits for (``wait_replicas`` resolved)."""
        if self.wait_replicas is not None:
            return self.wait_replicas
        return 1 if self.sentinel else 0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway reads from its config file and environment.

    ``warnings`` are doubts that do not stop the gateway (an environment variable
    that matches no setting, a worker with nothing to do); log them at start.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis: RedisSettings = field(default_factory=RedisSettings)
    workers: tuple[str, ...] = ("api", "sms", "webhooks")
    shutdown_grace_s: float = 30.0
    # A stream entry (a survey to send, a stored deliver_sm, an event for the feed) left
    # pending this long by a process that does not renew it is taken over by another.
    claim_idle_s: float = 60.0
    api: ApiSettings = field(default_factory=ApiSettings)
    surveys: SurveySettings = field(default_factory=SurveySettings)
    sms: SmsSettings
    webhooks: tuple[WebhookEndpoint, ...] = ()
    dialer: DialerSettings | None = None
    asr: AsrSettings | None = None
    recordings: RecordingsSettings = field(default_factory=RecordingsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    source_path: Path | None = None
    warnings: tuple[str, ...] = ()


def _redis_url(root: Table, env: Mapping[str, str]) -> str:
    origin = ""
    value = root.get("redis_url", Settings.redis_url)
    if env.get(ENV_REDIS_URL):
        value, origin = env[ENV_REDIS_URL], f" (value from environment variable {ENV_REDIS_URL})"
    path = root.at("redis_url")
    url = text(value, path, max_len=2000)
    expected = (
        'must look like "redis://host:6379/0", "rediss://…", "unix:///path" or '
        '"redis+sentinel://host:26379,host:26379/master_name/0"'
    )
    try:
        parts = urllib.parse.urlsplit(url)
        db = parts.path.strip("/")
        ok = parts.scheme == "unix" and bool(parts.path)
        if parts.scheme in ("redis", "rediss"):
            ok = bool(parts.hostname) and (not db or db.isdigit())
            _ = parts.port  # raises ValueError on a bad port
        if parts.scheme in SENTINEL_SCHEMES:
            sentinel_url(url)
            ok = True
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(path, f"{expected}, got {show(redact_url(url))}{origin}")
    return url


def sentinel_url(url: str) -> dict[str, Any]:
    """The parts of ``redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/
    master_name[/db]`` (``rediss+sentinel://``: TLS) as keyword arguments of
    :class:`RedisSettings`; ValueError when it is not one. The password is the
    master's (and its replicas'); a sentinel that wants one of its own gets
    ``[redis] sentinel_password``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SENTINEL_SCHEMES:
        raise ValueError("not a sentinel URL")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinels = []
    for item in hosts.split(","):
        name, port = item, SENTINEL_PORT
        if item.startswith("["):  # [IPv6]:port
            name, _, tail = item[1:].partition("]")
            if tail:
                port = int(tail.removeprefix(":"))
        elif ":" in item:
            name, _, digits = item.rpartition(":")
            port = int(digits)
        if not name or not 0 < port < 65536:
            raise ValueError(f"bad sentinel address {item!r}")
        sentinels.append((urllib.parse.unquote(name), port))
    master, _, db = path.strip("/").partition("/")
    if not master or not (db == "" or db.isdigit()):
        raise ValueError("the path must be /master_name or /master_name/db")
    return {
        "sentinels": tuple(sentinels),
        "master_name": urllib.parse.unquote(master),
        "db": int(db or 0),
        "username": urllib.parse.unquote(username),
        "password": urllib.parse.unquote(password),
        "tls": scheme == "rediss+sentinel",
    }


_REDIS_KEYS: Final = (
    "sentinels",
    "master_name",
    "db",
    "username",
    "password",
    "sentinel_username",
    "sentinel_password",
    "tls",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "wait_replicas",
    "wait_timeout_ms",
)


def _sentinel_address(value: object, path: str) -> tuple[str, int]:
    raw = text(value, path, max_len=300)
    name, sep, digits = raw.rpartition(":") if not raw.endswith("]") else (raw, "", "")
    if not sep:
        name, digits = raw, str(SENTINEL_PORT)
    name = name.removeprefix("[").removesuffix("]")
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ConfigError(path, f'must be "host:port" (port 1-65535), got {show(raw)}')
    return host(name, path), int(digits)


def parse_redis(data: object, url: str, env: Mapping[str, str]) -> RedisSettings:
    """Check the ``[redis]`` table, together with ``redis_url`` (a
    ``redis+sentinel://`` URL fills the same settings: one or the other)."""
    t = Table(data, "redis", _REDIS_KEYS)
    d = RedisSettings()
    values: dict[str, Any] = {}
    if url.partition("://")[0] in SENTINEL_SCHEMES:
        values = sentinel_url(url)
        for key in ("sentinels", "master_name", "db", "username", "password"):
            if key in t.data:
                raise ConfigError(
                    t.at(key),
                    "is given by redis_url (a redis+sentinel:// URL): set one or the other",
                )
    elif "sentinels" in t.data:
        raw = t.get("sentinels")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(
                t.at("sentinels"), f'must be a non-empty array of "host:port", got {show(raw)}'
            )
        values["sentinels"] = tuple(
            _sentinel_address(v, f"{t.at('sentinels')}[{i}]") for i, v in enumerate(raw)
        )
        values["master_name"] = text(t.get("master_name", d.master_name), t.at("master_name"))
        values["db"] = t.integer("db", d.db, 0, 1_000_000)
        values["username"] = text(t.get("username", d.username), t.at("username"), allow_empty=True)
        values["password"] = _optional_secret(t, "password", env, ENV_REDIS_PASSWORD)
    else:
        for key in (
            "master_name",
            "db",
            "username",
            "password",
            "sentinel_username",
            "sentinel_password",
        ):
            if key in t.data:
                raise ConfigError(t.at(key), "applies to Sentinel only: set redis.sentinels")
    if values:
        values["sentinel_username"] = text(
            t.get("sentinel_username", d.sentinel_username),
            t.at("sentinel_username"),
            allow_empty=True,
        )
        values["sentinel_password"] = _optional_secret(
            t, "sentinel_password", env, ENV_REDIS_SENTINEL_PASSWORD
        )
        if values.get("password") == "" and env.get(ENV_REDIS_PASSWORD):
            values["password"] = env[ENV_REDIS_PASSWORD]
    values["tls"] = t.boolean("tls", values.get("tls", d.tls))
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        values[key] = text(t.get(key, getattr(d, key)), t.at(key), max_len=4096, allow_empty=True)
    if bool(values["tls_cert_file"]) != bool(values["tls_key_file"]):
        raise ConfigError(t.at("tls_key_file"), "tls_cert_file and tls_key_file go together")
    if "wait_replicas" in t.data:
        values["wait_replicas"] = t.integer("wait_replicas", d.wait_replicas, 0, 16)
    values["wait_timeout_ms"] = t.integer("wait_timeout_ms", d.wait_timeout_ms, 10, 60_000)
    return RedisSettings(**values)


def _optional_secret(t: Table, key: str, env: Mapping[str, str], var: str) -> str:
    """A password that may be absent (a Redis without AUTH): from ``var`` or the file."""
    if env.get(var):
        return env[var]
    return text(t.get(key, ""), t.at(key), max_len=512, allow_empty=True)


def _workers(root: Table) -> tuple[str, ...]:
    # Unset: the whole gateway in one process, the dialer and the ASR worker included
    # when their sections are there (neither can run without its own settings).
    default = list(Settings.workers) + [w for w in ("dialer", "asr") if w in root.data]
    value = root.get("workers", default)
    path = root.at("workers")
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty array of worker names, got {show(value)}")
    workers = tuple(pick(w, f"{path}[{i}]", WORKERS) for i, w in enumerate(value))
    for i, worker in enumerate(workers):
        if worker in workers[:i]:
            raise ConfigError(f"{path}[{i}]", f'"{worker}" is listed twice')
    return workers


def _warnings(settings: Settings, env: Mapping[str, str]) -> tuple[str, ...]:
    """Doubts worth a log line at start but no refusal: the environment may be shared
    by processes with other config files, and an idle worker harms nothing."""
    asterisk = settings.dialer.asterisk if settings.dialer is not None else None
    expected = {
        ENV_API_TOKEN: ("api.tokens", [t.name for t in settings.api.tokens]),
        ENV_SMPP_PASSWORD: (
            "sms.binds",
            [b.name for b in settings.sms.binds if isinstance(b, SmppBind)],
        ),
        ENV_CMPP_SECRET: (
            "sms.binds",
            [b.name for b in settings.sms.binds if isinstance(b, CmppBind)],
        ),
        ENV_WEBHOOK_SECRET: ("webhooks.endpoints", [e.name for e in settings.webhooks]),
        ENV_AGENT_PASSWORD: (
            "dialer.asterisk.agents",
            [a.name for a in asterisk.agents] if asterisk is not None else [],
        ),
    }
    found: list[str] = []
    for var in sorted(env):
        for prefix, (where, names) in expected.items():
            known = [env_name(prefix, n) for n in names]
            if var.startswith(prefix) and var not in known:
                found.append(
                    f"{var} is set but no entry of {where} has that name, "
                    f"so it is ignored{suggest(var, known)}"
                )
    if "api" in settings.workers and not settings.api.tokens:
        found.append("the api worker runs but api.tokens is empty: every request is refused")
    if "webhooks" in settings.workers and not settings.webhooks:
        found.append("the webhooks worker runs but no [[webhooks.endpoints]] is configured")
    dialer = settings.dialer
    if "dialer" in settings.workers and dialer is not None and not dialer.units:
        found.append(
            "the dialer worker runs but dialer.units is empty: callbacks to agents wait "
            "as unroutable (only the automated IVR calls are made)"
        )
    return tuple(found)


_ROOT_KEYS: Final = (
    "redis_url",
    "redis",
    "workers",
    "shutdown_grace_s",
    "claim_idle_s",
    "log",
    "api",
    "surveys",
    "sms",
    "webhooks",
    "dialer",
    "asr",
    "recordings",
)


def _dialer(root: Table, workers: tuple[str, ...], env: Mapping[str, str]) -> DialerSettings | None:
    if "dialer" not in root.data:
        if "dialer" in workers:
            raise ConfigError("dialer", 'is required when workers include "dialer"')
        return None
    return parse_dialer(root.get("dialer"), env)


def _asr(root: Table, workers: tuple[str, ...]) -> AsrSettings | None:
    # Every [asr] setting has a default: the worker may run without the table.
    if "asr" not in root.data and "asr" not in workers:
        return None
    return parse_asr(root.get("asr", {}))


def parse_settings(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: Path | None = None
) -> Settings:
    """Check a parsed config file (plus secrets from ``env``) and build the settings.

    ``env`` defaults to ``os.environ``. Raises ConfigError naming the first wrong
    setting; nothing else escapes for any input. The checks that need a domain's code
    run in gateway/startup.py.
    """
    env = os.environ if env is None else env
    root = Table(data, "", _ROOT_KEYS)
    redis_url = _redis_url(root, env)
    redis = parse_redis(root.get("redis", {}), redis_url, env)
    workers = _workers(root)
    shutdown_grace_s = root.number("shutdown_grace_s", Settings.shutdown_grace_s, 0, 3600)
    claim_idle_s = root.number("claim_idle_s", Settings.claim_idle_s, 1, 3600)
    log = parse_log(root.get("log", {}))
    api = parse_api(root.get("api", {}), env)
    surveys = parse_surveys(root.get("surveys", {}))
    sms = parse_sms(root.get("sms", {}), env)
    if "sms" in workers:
        check_sms_worker(sms)
    webhooks = parse_webhooks(root.get("webhooks", {}), env)
    dialer = _dialer(root, workers, env)
    settings = Settings(
        redis_url=redis_url,
        redis=redis,
        workers=workers,
        shutdown_grace_s=shutdown_grace_s,
        claim_idle_s=claim_idle_s,
        log=log,
        api=api,
        surveys=surveys,
        sms=sms,
        webhooks=webhooks,
        dialer=dialer,
        asr=_asr(root, workers),
        recordings=parse_recordings(
            root.get("recordings", {}), env, dialer.recordings_dir if dialer else None
        ),
        source_path=source,
    )
    return dataclasses.replace(settings, warnings=_warnings(settings, env))


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the TOML config file at ``path``; see parse_settings."""
    source = Path(path)
    try:
        # utf-8-sig: Windows editors put a byte-order mark that TOML does not allow
        data = source.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ConfigError("", f"cannot read {source}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError("", f"{source}: not UTF-8 text (bad byte at offset {e.start})") from None
    try:
        table = tomllib.loads(data)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{source}: not valid TOML: {e}") from None
    return parse_settings(table, env, source)
