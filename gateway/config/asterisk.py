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

Two modes. ``own`` (the default): the gateway's Asterisk, rendered whole: its SIP
transport, the carrier trunk (with registration, From identity, NAT addresses, UDP, TCP
or TLS) and the agents' phones as endpoints. ``include``: a site's PBX that already
carries its calls; only the gateway's dialplan contexts, queues and AMI user are
rendered, as files the site includes. The agents are the site's extensions
(``interface = "PJSIP/1001"``), calls go out through the site's route
(``[dialer] dial_string``), and none of the trunk and transport settings apply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

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
    # mode "include": the site's device the queue rings (PJSIP/1001); own: PJSIP/<name>
    interface: str | None = None


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
    agents: tuple[AgentPhone, ...]
    units: tuple[UnitQueue, ...]
    mode: str = "own"  # MODES
    trunk_host: str = ""  # required in mode "own"
    ami_bind: str = AmiSettings.host
    ami_port: int = AmiSettings.port
    ami_permit: tuple[str, ...] = ("127.0.0.1/32",)
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    sip_tls_port: int = 5061  # the TLS transport's port (trunk_transport = "tls")
    media_address: str | None = None
    trunk_port: int = 5060
    trunk_name: str = DEFAULT_TRUNK
    trunk_match: tuple[str, ...] = ()
    trunk_username: str | None = None
    trunk_password: str | None = field(default=None, repr=False)
    codecs: tuple[str, ...] = ("alaw", "ulaw")
    # the carrier trunk (mode "own"): transport, outbound registration, identity, NAT
    trunk_transport: str = "udp"  # TRANSPORTS
    trunk_register: bool = False
    trunk_from_user: str | None = None
    trunk_from_domain: str | None = None
    external_media_address: str | None = None
    external_signaling_address: str | None = None
    local_net: tuple[str, ...] = ()
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None
    tls_verify_server: bool = True
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
    # Presence: each agent phone is sent OPTIONS every agent_qualify_s (0 = off, mode
    # "own"); one that stops answering is unavailable, never counted free.
    agent_qualify_s: int = 10
    # Agents log in and out (dynamic queue members, kept across an Asterisk restart);
    # false: every agent of a unit is always its member, only pause/unpause work.
    agents_log_in: bool = True
    # Feature codes an agent dials from the own phone (context minyi-agent-codes).
    login_code: str = "*45"
    logout_code: str = "*46"
    pause_code: str = "*47"
    unpause_code: str = "*48"
    # Their answers: sounds of Debian's asterisk-core-sounds-en.
    login_prompt: str = "agent-loginok"
    logout_prompt: str = "agent-loggedoff"
    pause_prompt: str = "dictate/paused"
    unpause_prompt: str = "activated"
    code_refused_prompt: str = "feature-not-avail-line"
    extra: Mapping[str, str] = field(default_factory=dict)


MODES: Final = ("own", "include")
TRANSPORTS: Final = ("udp", "tcp", "tls")
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
# The answers to the agents' feature codes.
AGENT_PROMPTS: Final = (
    "login_prompt",
    "logout_prompt",
    "pause_prompt",
    "unpause_prompt",
    "code_refused_prompt",
)
FEATURE_CODES: Final = ("login_code", "logout_code", "pause_code", "unpause_code")
# What an agent dials: digits, * and #, 2 to 8 of them.
_CODE_RE: Final = re.compile(r"[*#0-9]{2,8}")
_SECONDS: Final = (
    "agent_ring_s",
    "queue_timeout_s",
    "ivr_digit_timeout_s",
    "reason_max_s",
    "reason_silence_s",
)
# What only the gateway's own Asterisk has (mode "own"): refused with mode "include".
OWN_KEYS: Final = (
    "sip_bind",
    "sip_port",
    "sip_tls_port",
    "media_address",
    "trunk_host",
    "trunk_port",
    "trunk_match",
    "trunk_username",
    "trunk_password",
    "trunk_transport",
    "trunk_register",
    "trunk_from_user",
    "trunk_from_domain",
    "external_media_address",
    "external_signaling_address",
    "local_net",
    "tls_cert_file",
    "tls_key_file",
    "tls_ca_file",
    "tls_verify_server",
    "codecs",
    "agent_qualify_s",
)
KEYS: Final = (
    "mode",
    *OWN_KEYS,
    "recordings_dir",
    "ami_permit",
    *_SECONDS,
    *PROMPTS,
    *AGENT_PROMPTS,
    *FEATURE_CODES,
    "agents_log_in",
    "agents",
    "units",
)
# As gateway/dialer/asterisk.py checks them; checked here too so that a message never
# shows a secret and an agent's mistake names its entry.
_AGENT_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
_SECRET_RE: Final = re.compile(r"[!-~]{1,128}")
# A queue member's device: technology/resource, no comma (member => splits on them).
_INTERFACE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}/[-A-Za-z0-9_.@/+]{1,180}")


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


def _agent(data: object, path: str, env: Mapping[str, str], mode: str) -> AgentPhone:
    t = Table(data, path, ("name", "password", "contact", "interface"))
    name = text(t.get("name"), t.at("name"), max_len=64)
    if not _AGENT_RE.fullmatch(name):
        raise ConfigError(
            t.at("name"),
            f"must be letters, digits, - or _ (not first), at most 64, got {show(name)}",
        )
    if mode == "include":
        for key in ("password", "contact"):
            if key in t.data:
                raise ConfigError(
                    t.at(key),
                    'is not used with mode = "include": the agent is the site\'s own '
                    'extension, named by interface = "PJSIP/1001"',
                )
        interface = text(t.get("interface", f"PJSIP/{name}"), t.at("interface"), max_len=200)
        if not _INTERFACE_RE.fullmatch(interface):
            raise ConfigError(
                t.at("interface"),
                f'must be a device like "PJSIP/1001" or "Local/1001@from-queue/n", '
                f"got {show(interface)}",
            )
        return AgentPhone(name, interface=interface)
    if "interface" in t.data:
        raise ConfigError(
            t.at("interface"),
            'is only used with mode = "include"; the gateway\'s own Asterisk rings PJSIP/<name>',
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


def _codes(t: Table) -> dict[str, Any]:
    """The feature codes (distinct, digits * #) and whether agents log in and out."""
    codes: dict[str, Any] = {}
    for key in FEATURE_CODES:
        code = text(t.get(key, getattr(AsteriskSettings, key)), t.at(key), max_len=8)
        if not _CODE_RE.fullmatch(code):
            raise ConfigError(t.at(key), f"must be 2 to 8 of the keys 0-9 * #, got {show(code)}")
        if code in codes.values():
            raise ConfigError(t.at(key), f"{show(code)} is already another feature code")
        codes[key] = code
    codes["agents_log_in"] = t.boolean("agents_log_in", AsteriskSettings.agents_log_in)
    return codes


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
    dial_string: str | None = None,
) -> AsteriskSettings:
    """Check the ``[dialer.asterisk]`` table against the rest of ``[dialer]`` (the keyword
    arguments, as :func:`gateway.config.dialer.parse_dialer` read them).

    Raises ConfigError naming the first wrong setting. Whether Asterisk can take every
    value is checked at start by :func:`gateway.dialer.asterisk.check_config`.
    """
    t = Table(data, "dialer.asterisk", KEYS)
    mode = t.pick("mode", AsteriskSettings.mode, MODES)
    if mode == "include":
        return _include(t, env, ami, units, default_unit, wrapup_s, recordings_dir, dial_string)
    origin = (
        f" (value from environment variable {ENV_AMI_SECRET})" if env.get(ENV_AMI_SECRET) else ""
    )
    _secret(ami.secret, "dialer.ami.secret", origin)
    agents = tuple(_agent(item, path, env, mode) for item, path in t.tables("agents"))
    unique(
        [(a.name, f"{t.at('agents')}[{i}].name") for i, a in enumerate(agents)], ENV_AGENT_PASSWORD
    )
    queues = _units(t.get("units", {}), t.at("units"), units, {a.name for a in agents})
    trunk_username, trunk_password = _trunk_auth(t, env)

    def value(key: str, default: object) -> str:
        return text(t.get(key, default), t.at(key), max_len=253)

    def seconds(key: str, default: int) -> int:
        return t.integer(key, default, 0, 86_400)  # check_config checks the real range

    def optional(key: str) -> str | None:
        return value(key, "") if key in t.data else None

    media_address = optional("media_address")
    d = AsteriskSettings
    agent_prompts: dict[str, Any] = {key: value(key, getattr(d, key)) for key in AGENT_PROMPTS}
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
        sip_tls_port=t.integer("sip_tls_port", d.sip_tls_port, 1, 65535),
        media_address=media_address,
        codecs=_strings(t.get("codecs", list(d.codecs)), t.at("codecs")),
        trunk_transport=t.pick("trunk_transport", d.trunk_transport, TRANSPORTS),
        trunk_register=t.boolean("trunk_register", d.trunk_register),
        trunk_from_user=optional("trunk_from_user"),
        trunk_from_domain=optional("trunk_from_domain"),
        external_media_address=optional("external_media_address"),
        external_signaling_address=optional("external_signaling_address"),
        local_net=_strings(t.get("local_net"), t.at("local_net")) if "local_net" in t.data else (),
        tls_cert_file=optional("tls_cert_file"),
        tls_key_file=optional("tls_key_file"),
        tls_ca_file=optional("tls_ca_file"),
        tls_verify_server=t.boolean("tls_verify_server", d.tls_verify_server),
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
        agent_qualify_s=t.integer("agent_qualify_s", d.agent_qualify_s, 0, 3600),
        **agent_prompts,
        **_codes(t),
    )


def _include(
    t: Table,
    env: Mapping[str, str],
    ami: AmiSettings,
    units: tuple[str, ...],
    default_unit: str,
    wrapup_s: float,
    recordings_dir: str,
    dial_string: str | None,
) -> AsteriskSettings:
    """``mode = "include"``: only what goes into the site's PBX (contexts, queues, AMI)."""
    for key in OWN_KEYS:
        if key in t.data:
            raise ConfigError(
                t.at(key),
                'is not used with mode = "include": the site\'s PBX has its own transport '
                "and trunk (calls go out through dialer.dial_string)",
            )
    if dial_string is None:
        raise ConfigError(
            "dialer.dial_string",
            'is required with dialer.asterisk.mode = "include": the site\'s route out, '
            'e.g. "PJSIP/${NUMBER}@site-trunk" or "Local/${NUMBER}@from-internal"',
        )
    origin = (
        f" (value from environment variable {ENV_AMI_SECRET})" if env.get(ENV_AMI_SECRET) else ""
    )
    _secret(ami.secret, "dialer.ami.secret", origin)
    agents = tuple(_agent(item, path, env, "include") for item, path in t.tables("agents"))
    unique(
        [(a.name, f"{t.at('agents')}[{i}].name") for i, a in enumerate(agents)], ENV_AGENT_PASSWORD
    )
    queues = _units(t.get("units", {}), t.at("units"), units, {a.name for a in agents})
    d = AsteriskSettings

    def value(key: str, default: str) -> str:
        return text(t.get(key, default), t.at(key), max_len=253)

    def seconds(key: str, default: int) -> int:
        return t.integer(key, default, 0, 86_400)

    settings = AsteriskSettings(
        mode="include",
        ami_username=ami.username,
        ami_secret=ami.secret,
        ami_bind=ami.host,
        ami_port=ami.port,
        ami_permit=_strings(t.get("ami_permit", list(d.ami_permit)), t.at("ami_permit")),
        recordings_dir=value("recordings_dir", recordings_dir),
        agents=agents,
        units=queues,
        default_unit=default_unit or None,
        wrapup_s=round(wrapup_s),
        agent_ring_s=seconds("agent_ring_s", d.agent_ring_s),
        queue_timeout_s=seconds("queue_timeout_s", d.queue_timeout_s),
        ivr_digit_timeout_s=seconds("ivr_digit_timeout_s", d.ivr_digit_timeout_s),
        reason_max_s=seconds("reason_max_s", d.reason_max_s),
        reason_silence_s=seconds("reason_silence_s", d.reason_silence_s),
    )
    prompts: dict[str, Any] = {key: value(key, getattr(d, key)) for key in PROMPTS + AGENT_PROMPTS}
    return dataclasses.replace(settings, **prompts, **_codes(t))
