"""The ``[dialer.asterisk]`` table: the Asterisk configuration, rendered from this file.

Read by :func:`gateway.config.dialer.parse_dialer` when the table is present; the result
is the :class:`~gateway.dialer.asterisk.AsteriskSettings` that
:func:`gateway.dialer.asterisk.render` turns into ``pjsip.conf``, ``queues.conf``,
``extensions.conf`` and ``manager.conf`` (``minyi asterisk render``).

What the dialer already knows is not repeated here: the AMI account comes from
``[dialer.ami]``, the trunk's endpoint name from ``dialer.trunk``, the units from
``dialer.units`` (each needs agents), ``default_unit``, ``wrapup_s`` and, unless set
here, ``recordings_dir``. Everything is checked at load time with
:func:`gateway.dialer.asterisk.check`, so ``minyi config check`` refuses what ``render``
would refuse, naming the setting. Secrets: ``MINYI_TRUNK_PASSWORD`` and
``MINYI_AGENT_PASSWORD_<NAME>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from gateway.config.dialer import ENV_AMI_SECRET, DialerSettings
from gateway.config.reader import (
    ConfigError,
    _join,
    _show,
    _suggest,
    _Table,
    _text,
    _unique,
    env_name,
)
from gateway.dialer.asterisk import (
    AgentPhone,
    AsteriskConfError,
    AsteriskSettings,
    UnitQueue,
    check,
)

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
_KEYS: Final = (
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
# As asterisk_conf checks them; checked here too so that a message never shows a secret
# and an agent's mistake names its entry.
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
        raise ConfigError(path, f"must be a non-empty array of strings, got {_show(value)}")
    return tuple(_text(v, f"{path}[{i}]") for i, v in enumerate(value))


def _agent(data: object, path: str, env: Mapping[str, str]) -> AgentPhone:
    t = _Table(data, path, ("name", "password", "contact"))
    name = _text(t.get("name"), t.at("name"), max_len=64)
    if not _AGENT_RE.fullmatch(name):
        raise ConfigError(
            t.at("name"),
            f"must be letters, digits, - or _ (not first), at most 64, got {_show(name)}",
        )
    contact = _text(t.get("contact"), t.at("contact")) if "contact" in t.data else None
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
        raise ConfigError(path, f"must be a table of unit code = [agent names], got {_show(data)}")
    if not dialer_units:
        raise ConfigError("dialer.units", "must list at least one unit for [dialer.asterisk]")
    for code in data:
        if code not in dialer_units:
            hint = _suggest(str(code), dialer_units)
            raise ConfigError(_join(path, str(code)), f"is not in dialer.units{hint}")
    queues = []
    for code in dialer_units:  # dialer.units order: the first is the default queue
        if code not in data:
            raise ConfigError(path, f'needs the agents of unit "{code}" (it is in dialer.units)')
        at = _join(path, code)
        names = _strings(data[code], at)
        for i, name in enumerate(names):
            if name not in agents:
                raise ConfigError(
                    f"{at}[{i}]",
                    f'"{name}" is not in dialer.asterisk.agents{_suggest(name, agents)}',
                )
            if name in names[:i]:
                raise ConfigError(f"{at}[{i}]", f'"{name}" is listed twice')
        queues.append(UnitQueue(code, names))
    return tuple(queues)


def _trunk_auth(t: _Table, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    if "trunk_username" not in t.data:
        if "trunk_password" in t.data:
            raise ConfigError(t.at("trunk_password"), "needs trunk_username")
        return None, None
    username = _text(t.get("trunk_username"), t.at("trunk_username"), max_len=128)
    password, origin = t.secret("trunk_password", env, ENV_TRUNK_PASSWORD)
    return username, _secret(password, t.at("trunk_password"), origin)


def _config_error(
    exc: AsteriskConfError, paths: Mapping[str, str], secrets: list[str]
) -> ConfigError:
    """asterisk_conf's message starts with the setting's name: name its path instead."""
    message = str(exc)
    for secret in secrets:  # all checked before; a last guard (values are shown as repr)
        message = message.replace(repr(secret), "'***'")
    for what in sorted(paths, key=len, reverse=True):
        if message.startswith(what + " "):
            path = paths[what]
            reason = message[len(what) + 1 :]
            if not path.startswith("dialer.asterisk"):
                reason += " (for [dialer.asterisk])"
            return ConfigError(path, reason)
    return ConfigError("dialer.asterisk", message)


def parse_asterisk(
    data: object, env: Mapping[str, str], dialer: DialerSettings
) -> AsteriskSettings:
    """Check the ``[dialer.asterisk]`` table against the rest of ``[dialer]``.

    Raises ConfigError naming the first wrong setting, here or in ``[dialer]`` when
    Asterisk cannot take it (an AMI host that is not an IP address, say).
    """
    t = _Table(data, "dialer.asterisk", _KEYS)
    ami = dialer.ami
    origin = (
        f" (value from environment variable {ENV_AMI_SECRET})" if env.get(ENV_AMI_SECRET) else ""
    )
    _secret(ami.secret, "dialer.ami.secret", origin)
    agents = tuple(_agent(item, path, env) for item, path in t.tables("agents"))
    _unique(
        [(a.name, f"{t.at('agents')}[{i}].name") for i, a in enumerate(agents)], ENV_AGENT_PASSWORD
    )
    units = _units(t.get("units", {}), t.at("units"), dialer.units, {a.name for a in agents})
    trunk_username, trunk_password = _trunk_auth(t, env)

    def text(key: str, default: object) -> str:
        return _text(t.get(key, default), t.at(key), max_len=253)

    def seconds(key: str, default: int) -> int:
        return t.integer(key, default, 0, 86_400)  # asterisk_conf checks the real range

    media_address = text("media_address", "") if "media_address" in t.data else None
    settings = AsteriskSettings(
        ami_username=ami.username,
        ami_secret=ami.secret,
        ami_bind=ami.host,
        ami_port=ami.port,
        ami_permit=_strings(
            t.get("ami_permit", list(AsteriskSettings.ami_permit)), t.at("ami_permit")
        ),
        recordings_dir=text("recordings_dir", dialer.recordings_dir),
        trunk_name=dialer.trunk,
        trunk_host=_text(t.get("trunk_host"), t.at("trunk_host"), max_len=253),
        trunk_port=t.integer("trunk_port", AsteriskSettings.trunk_port, 1, 65535),
        trunk_match=_strings(t.get("trunk_match"), t.at("trunk_match"))
        if "trunk_match" in t.data
        else (),
        trunk_username=trunk_username,
        trunk_password=trunk_password,
        sip_bind=text("sip_bind", AsteriskSettings.sip_bind),
        sip_port=t.integer("sip_port", AsteriskSettings.sip_port, 1, 65535),
        media_address=media_address,
        codecs=_strings(t.get("codecs", list(AsteriskSettings.codecs)), t.at("codecs")),
        agents=agents,
        units=units,
        default_unit=dialer.default_unit or None,
        wrapup_s=round(dialer.wrapup_s),
        agent_ring_s=seconds("agent_ring_s", AsteriskSettings.agent_ring_s),
        queue_timeout_s=seconds("queue_timeout_s", AsteriskSettings.queue_timeout_s),
        ivr_digit_timeout_s=seconds("ivr_digit_timeout_s", AsteriskSettings.ivr_digit_timeout_s),
        reason_max_s=seconds("reason_max_s", AsteriskSettings.reason_max_s),
        reason_silence_s=seconds("reason_silence_s", AsteriskSettings.reason_silence_s),
        greeting_prompt=text("greeting_prompt", AsteriskSettings.greeting_prompt),
        no_agent_prompt=text("no_agent_prompt", AsteriskSettings.no_agent_prompt),
        goodbye_prompt=text("goodbye_prompt", AsteriskSettings.goodbye_prompt),
        ivr_question_prompt=text("ivr_question_prompt", AsteriskSettings.ivr_question_prompt),
        ivr_invalid_prompt=text("ivr_invalid_prompt", AsteriskSettings.ivr_invalid_prompt),
        ivr_reason_prompt=text("ivr_reason_prompt", AsteriskSettings.ivr_reason_prompt),
        ivr_thanks_prompt=text("ivr_thanks_prompt", AsteriskSettings.ivr_thanks_prompt),
    )
    paths = {key: t.at(key) for key in _KEYS} | {
        "ami_username": "dialer.ami.username",
        "ami_secret": "dialer.ami.secret",
        "ami_bind": "dialer.ami.host",
        "ami_port": "dialer.ami.port",
        "ami_permit entries": t.at("ami_permit"),
        "trunk_name": "dialer.trunk",
        "wrapup_s": "dialer.wrapup_s",
        "default_unit": "dialer.default_unit",
    }
    if "trunk_match" not in t.data:  # it defaults to [trunk_host]
        paths["trunk_match"] = t.at("trunk_host")
    for i, a in enumerate(agents):
        for key in ("contact", "password"):
            paths[f"agent {a.name} {key}"] = f"{t.at('agents')}[{i}].{key}"
    secrets = [s for s in (ami.secret, trunk_password, *(a.password for a in agents)) if s]
    try:
        check(settings)
    except AsteriskConfError as exc:
        raise _config_error(exc, paths, secrets) from None
    return settings
