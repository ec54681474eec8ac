"""The ``[dialer.asterisk]`` table: the Asterisk configuration, rendered from this file.

Read by :func:`gateway.config.dialer.parse_dialer` when the table is present; the result
is the :class:`AsteriskSettings` that :func:`gateway.dialer.asterisk.render` turns into
``pjsip.conf``, ``queues.conf``, ``extensions.conf`` and ``manager.conf``
(``minyi asterisk render``).

What the dialer already knows is not repeated here: the AMI account comes from
``[dialer.ami]``, the trunk's endpoint name from ``dialer.trunk``, the units from
``dialer.units`` (each needs agents), ``default_unit``, ``wrapup_s`` and, unless set
here, ``recordings_dir``. What ``render`` would refuse is checked when the gateway
starts, by :func:`gateway.dialer.asterisk.check_config` (gateway/startup.py), so
``minyi config check`` refuses it too, naming the setting. Secrets:
``MINYI_TRUNK_PASSWORD`` and ``MINYI_AGENT_PASSWORD_<NAME>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.config.ami import ENV_AMI_SECRET, AmiSettings
from gateway.config.reader import (
    ConfigError,
    Table,
    env_name,
    join,
    show,
    suggest,
    text,
    unique,
)

DEFAULT_TRUNK: Final = "minyi-trunk"


@dataclass(frozen=True)
class AgentPhone:
    """An agent's (访评员) SIP phone: a PJSIP endpoint the unit queues ring.

    ``contact`` is a fixed SIP URI for phones that do not register (and for the tests);
    otherwise the phone registers with ``password``.
    """

    name: str
    password: str | None = field(default=None, repr=False)  # never in a log line
    contact: str | None = None


@dataclass(frozen=True)
class UnitQueue:
    """A unit's (所队) queue: which agents answer its callbacks."""

    unit: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class AsteriskSettings:
    """Everything the rendered Asterisk configuration depends on.

    Durations are seconds. Prompts are sound names as ``Playback()`` takes them.
    """

    ami_username: str
    ami_secret: str = field(repr=False)  # never in a log line
    recordings_dir: str
    trunk_host: str
    agents: tuple[AgentPhone, ...]
    units: tuple[UnitQueue, ...]
    ami_bind: str = AmiSettings.host
    ami_port: int = AmiSettings.port
    ami_permit: tuple[str, ...] = ("127.0.0.1/32",)
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    media_address: str | None = None
    trunk_port: int = 5060
    trunk_name: str = DEFAULT_TRUNK
    trunk_match: tuple[str, ...] = ()
    trunk_username: str | None = None
    trunk_password: str | None = field(default=None, repr=False)
    codecs: tuple[str, ...] = ("alaw", "ulaw")
    default_unit: str | None = None
    greeting_prompt: str = "minyi/greeting"
    no_agent_prompt: str = "minyi/no-agent"
    goodbye_prompt: str = "minyi/goodbye"
    ivr_question_prompt: str = "minyi/ivr-question"
    ivr_invalid_prompt: str = "minyi/ivr-invalid"
    ivr_reason_prompt: str = "minyi/ivr-reason"
    ivr_thanks_prompt: str = "minyi/ivr-thanks"
    agent_ring_s: int = 15
    queue_timeout_s: int = 120
    wrapup_s: int = 5
    ivr_digit_timeout_s: int = 6
    reason_max_s: int = 60
    reason_silence_s: int = 4
    extra: Mapping[str, str] = field(default_factory=dict)


ENV_TRUNK_PASSWORD: Final = "MINYI_TRUNK_PASSWORD"
ENV_AGENT_PASSWORD: Final = "MINYI_AGENT_PASSWORD_"

PROMPTS: Final = (
    "greeting_prompt",
    "no_agent_prompt",
    "goodbye_prompt",
    "ivr_question_prompt",
    "ivr_invalid_prompt",
    "ivr_reason_prompt",
    "ivr_thanks_prompt",
)
_SECONDS: Final = (
    "agent_ring_s",
    "queue_timeout_s",
    "ivr_digit_timeout_s",
    "reason_max_s",
    "reason_silence_s",
)
KEYS: Final = (
    "sip_bind",
    "sip_port",
    "media_address",
    "trunk_host",
    "trunk_port",
    "trunk_match",
    "trunk_username",
    "trunk_password",
    "codecs",
    "recordings_dir",
    "ami_permit",
    *_SECONDS,
    *PROMPTS,
    "agents",
    "units",
)
# As gateway/dialer/asterisk.py checks them; checked here too so that a message never
# shows a secret and an agent's mistake names its entry.
_AGENT_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
_SECRET_RE: Final = re.compile(r"[!-~]{1,128}")


def _secret(value: str, path: str, origin: str) -> str:
    if not _SECRET_RE.fullmatch(value):
        raise ConfigError(
            path, f"must be 1 to 128 printable ASCII characters without spaces{origin}"
        )
    return value


def _strings(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, f"must be a non-empty array of strings, got {show(value)}")
    return tuple(text(v, f"{path}[{i}]") for i, v in enumerate(value))


def _agent(data: object, path: str, env: Mapping[str, str]) -> AgentPhone:
    t = Table(data, path, ("name", "password", "contact"))
    name = text(t.get("name"), t.at("name"), max_len=64)
    if not _AGENT_RE.fullmatch(name):
        raise ConfigError(
            t.at("name"),
            f"must be letters, digits, - or _ (not first), at most 64, got {show(name)}",
        )
    contact = text(t.get("contact"), t.at("contact")) if "contact" in t.data else None
    var = env_name(ENV_AGENT_PASSWORD, name)
    if contact is not None and "password" not in t.data and not env.get(var):
        return AgentPhone(name, contact=contact)
    if "password" not in t.data and not env.get(var):
        raise ConfigError(
            t.at("password"),
            f'is not set: put password = "..." in the file, set {var} in the environment, '
            'or give the phone a fixed contact = "sip:..."',
        )
    password, origin = t.secret("password", env, var)
    return AgentPhone(name, _secret(password, t.at("password"), origin), contact)


def _units(
    data: object, path: str, dialer_units: tuple[str, ...], agents: set[str]
) -> tuple[UnitQueue, ...]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a table of unit code = [agent names], got {show(data)}")
    if not dialer_units:
        raise ConfigError("dialer.units", "must list at least one unit for [dialer.asterisk]")
    for code in data:
        if code not in dialer_units:
            hint = suggest(str(code), dialer_units)
            raise ConfigError(join(path, str(code)), f"is not in dialer.units{hint}")
    queues = []
    for code in dialer_units:  # dialer.units order: the first is the default queue
        if code not in data:
            raise ConfigError(path, f'needs the agents of unit "{code}" (it is in dialer.units)')
        at = join(path, code)
        names = _strings(data[code], at)
        for i, name in enumerate(names):
            if name not in agents:
                raise ConfigError(
                    f"{at}[{i}]",
                    f'"{name}" is not in dialer.asterisk.agents{suggest(name, agents)}',
                )
            if name in names[:i]:
                raise ConfigError(f"{at}[{i}]", f'"{name}" is listed twice')
        queues.append(UnitQueue(code, names))
    return tuple(queues)


def _trunk_auth(t: Table, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    if "trunk_username" not in t.data:
        if "trunk_password" in t.data:
            raise ConfigError(t.at("trunk_password"), "needs trunk_username")
        return None, None
    username = text(t.get("trunk_username"), t.at("trunk_username"), max_len=128)
    password, origin = t.secret("trunk_password", env, ENV_TRUNK_PASSWORD)
    return username, _secret(password, t.at("trunk_password"), origin)


def parse_asterisk(
    data: object,
    env: Mapping[str, str],
    *,
    ami: AmiSettings,
    trunk: str,
    units: tuple[str, ...],
    default_unit: str,
    wrapup_s: float,
    recordings_dir: str,
) -> AsteriskSettings:
    """Check the ``[dialer.asterisk]`` table against the rest of ``[dialer]`` (the keyword
    arguments, as :func:`gateway.config.dialer.parse_dialer` read them).

    Raises ConfigError naming the first wrong setting. Whether Asterisk can take every
    value is checked at start by :func:`gateway.dialer.asterisk.check_config`.
    """
    t = Table(data, "dialer.asterisk", KEYS)
    origin = (
        f" (value from environment variable {ENV_AMI_SECRET})" if env.get(ENV_AMI_SECRET) else ""
    )
    _secret(ami.secret, "dialer.ami.secret", origin)
    agents = tuple(_agent(item, path, env) for item, path in t.tables("agents"))
    unique(
        [(a.name, f"{t.at('agents')}[{i}].name") for i, a in enumerate(agents)], ENV_AGENT_PASSWORD
    )
    queues = _units(t.get("units", {}), t.at("units"), units, {a.name for a in agents})
    trunk_username, trunk_password = _trunk_auth(t, env)

    def value(key: str, default: object) -> str:
        return text(t.get(key, default), t.at(key), max_len=253)

    def seconds(key: str, default: int) -> int:
        return t.integer(key, default, 0, 86_400)  # check_config checks the real range

    media_address = value("media_address", "") if "media_address" in t.data else None
    d = AsteriskSettings
    return AsteriskSettings(
        ami_username=ami.username,
        ami_secret=ami.secret,
        ami_bind=ami.host,
        ami_port=ami.port,
        ami_permit=_strings(t.get("ami_permit", list(d.ami_permit)), t.at("ami_permit")),
        recordings_dir=value("recordings_dir", recordings_dir),
        trunk_name=trunk,
        trunk_host=text(t.get("trunk_host"), t.at("trunk_host"), max_len=253),
        trunk_port=t.integer("trunk_port", d.trunk_port, 1, 65535),
        trunk_match=_strings(t.get("trunk_match"), t.at("trunk_match"))
        if "trunk_match" in t.data
        else (),
        trunk_username=trunk_username,
        trunk_password=trunk_password,
        sip_bind=value("sip_bind", d.sip_bind),
        sip_port=t.integer("sip_port", d.sip_port, 1, 65535),
        media_address=media_address,
        codecs=_strings(t.get("codecs", list(d.codecs)), t.at("codecs")),
        agents=agents,
        units=queues,
        default_unit=default_unit or None,
        wrapup_s=round(wrapup_s),
        agent_ring_s=seconds("agent_ring_s", d.agent_ring_s),
        queue_timeout_s=seconds("queue_timeout_s", d.queue_timeout_s),
        ivr_digit_timeout_s=seconds("ivr_digit_timeout_s", d.ivr_digit_timeout_s),
        reason_max_s=seconds("reason_max_s", d.reason_max_s),
        reason_silence_s=seconds("reason_silence_s", d.reason_silence_s),
        greeting_prompt=value("greeting_prompt", d.greeting_prompt),
        no_agent_prompt=value("no_agent_prompt", d.no_agent_prompt),
        goodbye_prompt=value("goodbye_prompt", d.goodbye_prompt),
        ivr_question_prompt=value("ivr_question_prompt", d.ivr_question_prompt),
        ivr_invalid_prompt=value("ivr_invalid_prompt", d.ivr_invalid_prompt),
        ivr_reason_prompt=value("ivr_reason_prompt", d.ivr_reason_prompt),
        ivr_thanks_prompt=value("ivr_thanks_prompt", d.ivr_thanks_prompt),
    )
