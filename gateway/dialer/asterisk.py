"""Render the Asterisk configuration the gateway relies on, from typed settings.

``render(settings)`` is a pure function: :class:`~gateway.config.AsteriskSettings` (the
``[dialer.asterisk]`` table) in, ``{filename: text}`` out. Mode "own" (the gateway's own
Asterisk): ``pjsip.conf``, ``queues.conf``, ``extensions.conf`` and ``manager.conf``,
whole. Mode "include" (a site's PBX): only ``extensions_minyi.conf``,
``queues_minyi.conf`` and ``manager_minyi.conf``, for the site to ``#include`` — the
gateway's contexts, queues and AMI user, no transport, trunk or endpoint. The texts
come from the templates in ``dialplans/`` (see ``dialplans/README.md``); the carrier
side of ``pjsip.conf`` is built by gateway/dialer/trunk.py.

Templates use ``{{name}}`` placeholders, because Asterisk's own ``${VAR}`` and ``$[expr]``
are everywhere in a dialplan and ``string.Template``'s ``$name`` would collide with them.

Every value that lands in a config file is checked first: a newline, a ``;`` or a
bracket in a setting could otherwise add config lines or dialplan arguments of its own.

The contract with the dialer (names the gateway sets on Originate and reads back from
AMI events) is spelled out in the constants below; the dialplan templates use the same
names.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from gateway.config import AgentPhone, AsteriskSettings, ConfigError
from gateway.config.asterisk import KEYS
from gateway.dialer.trunk import trunk_values

__all__ = [
    "AGENTS_CONTEXT",
    "CALLBACK_CONTEXT",
    "EVENT_CALLBACK_ANSWERED",
    "EVENT_CALLBACK_ENDED",
    "EVENT_CALLBACK_QUEUED",
    "EVENT_IVR_ANSWERED",
    "EVENT_IVR_ENDED",
    "EVENT_IVR_RESULT",
    "INBOUND_CONTEXT",
    "INCLUDE_FILES",
    "IVR_CONTEXT",
    "OWN_FILES",
    "QUEUE_PREFIX",
    "VAR_ATTEMPT_ID",
    "VAR_CALLER_NAME",
    "VAR_REC_BASENAME",
    "VAR_SURVEY_ID",
    "VAR_UNIT",
    "AsteriskConfError",
    "agent_endpoint",
    "check",
    "check_config",
    "is_safe_rec_basename",
    "queue_name",
    "render",
    "render_template",
]

# --- the dialplan contract --------------------------------------------------------------
CALLBACK_CONTEXT: Final = "minyi-callback"
"""Originate the citizen's channel into this context (exten ``s``): greet, record, queue."""
IVR_CONTEXT: Final = "minyi-ivr"
"""Originate into this context (exten ``s``) for the automated DTMF survey."""
INBOUND_CONTEXT: Final = "minyi-from-trunk"
"""Calls the carrier sends us; rejected (the gateway only calls out)."""
AGENTS_CONTEXT: Final = "minyi-agents"
"""Calls the agents' phones place; rejected (agents only receive queue calls)."""
QUEUE_PREFIX: Final = "minyi-unit-"
"""A unit's queue is ``minyi-unit-<unit code>``."""

VAR_SURVEY_ID: Final = "MINYI_SURVEY_ID"
VAR_ATTEMPT_ID: Final = "MINYI_ATTEMPT_ID"
VAR_REC_BASENAME: Final = "MINYI_REC_BASENAME"
VAR_UNIT: Final = "MINYI_UNIT"
# The caller name the agent's phone shows (minyi-agent-predial). Set on Originate with
# the "__" prefix: inherited by every channel of the call, the agent's leg among them.
VAR_CALLER_NAME: Final = "MINYI_CALLER_NAME"

EVENT_CALLBACK_ANSWERED: Final = "MinyiCallbackAnswered"
EVENT_CALLBACK_QUEUED: Final = "MinyiCallbackQueued"
EVENT_CALLBACK_ENDED: Final = "MinyiCallbackEnded"
EVENT_IVR_ANSWERED: Final = "MinyiIvrAnswered"
EVENT_IVR_RESULT: Final = "MinyiIvrResult"
EVENT_IVR_ENDED: Final = "MinyiIvrEnded"

# The product's wheel installs dialplans/ beside gateway/ (pyproject's package data).
DEFAULT_TEMPLATE_DIR: Final = Path(__file__).resolve().parents[2] / "dialplans"
OWN_FILES: Final = ("pjsip.conf", "queues.conf", "extensions.conf", "manager.conf")
INCLUDE_FILES: Final = ("extensions_minyi.conf", "queues_minyi.conf", "manager_minyi.conf")

# Recording base names are built by the gateway; the dialplan re-checks this same shape
# (REGEX in minyi-sub-setup) and falls back to a name made from the channel id.
_REC_BASENAME_RE: Final = re.compile(r"[-A-Za-z0-9_]{1,100}")
# Names that become config section names, queue names, endpoint names.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_]{0,63}")
_UNIT_RE: Final = re.compile(r"[A-Za-z0-9_]{1,32}")
# Sound file names as Playback() takes them: relative to the sounds dir or absolute,
# without extension; no comma, bracket, quote or space that would split an argument.
_PROMPT_RE: Final = re.compile(r"/?[A-Za-z0-9_][-A-Za-z0-9_./]{0,200}")
_SECRET_RE: Final = re.compile(r"[!-~]{1,128}")  # printable ASCII, no space
_PATH_RE: Final = re.compile(r"/[-A-Za-z0-9_./]{0,200}")
# Feature codes an agent dials: digits, * and #.
_CODE_RE: Final = re.compile(r"[*#0-9]{2,8}")
# An include-mode interface whose endpoint the feature codes recognise: PJSIP/<endpoint>.
_PJSIP_ENDPOINT_RE: Final = re.compile(r"PJSIP/([A-Za-z0-9][-A-Za-z0-9_.]{0,63})")
_CODECS: Final = frozenset({"alaw", "ulaw", "gsm", "g722", "slin"})
_INTERFACE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}/[-A-Za-z0-9_.@/+]{1,180}")


class AsteriskConfError(ValueError):
    """A setting that cannot be written into an Asterisk config safely."""


def queue_name(unit: str) -> str:
    """The Asterisk queue that serves a unit code."""
    if not _UNIT_RE.fullmatch(unit):
        raise AsteriskConfError(f"unit code must match {_UNIT_RE.pattern}, got {unit!r}")
    return QUEUE_PREFIX + unit


def is_safe_rec_basename(name: str) -> bool:
    """True when ``name`` can be a recording base name (the dialplan's own check)."""
    return _REC_BASENAME_RE.fullmatch(name) is not None


_PLACEHOLDER: Final = r"""
    \{\{(?:
      (?P<named>[a-z][a-z0-9_]*)\}\}
      | (?P<braced>(?!))
      | (?P<escaped>(?!))
      | (?P<invalid>)
    )
"""


class _ConfTemplate(string.Template):
    """``{{name}}`` placeholders; any other ``{{`` is an error, Asterisk syntax is inert."""

    # A str on purpose: Template.__init_subclass__ compiles it (adding re.VERBOSE).
    pattern = _PLACEHOLDER  # type: ignore[assignment]


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; a missing value or a stray ``{{`` raises."""
    try:
        return _ConfTemplate(text).substitute(values)
    except KeyError as exc:
        raise AsteriskConfError(f"template needs a value for {exc.args[0]!r}") from None
    except ValueError as exc:
        raise AsteriskConfError(f"bad template placeholder: {exc}") from None


def _check(value: str, rx: re.Pattern[str], what: str) -> str:
    if not rx.fullmatch(value):
        raise AsteriskConfError(f"{what} must match {rx.pattern}, got {value!r}")
    return value


def _check_ip(value: str, what: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise AsteriskConfError(f"{what} must be an IP address, got {value!r}") from None
    return value


def _check_host(value: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9.:]{0,252}", value):
        raise AsteriskConfError(f"{what} must be a host name or IP address, got {value!r}")
    return value


def _check_port(value: int, what: str) -> str:
    if not 1 <= value <= 65535:
        raise AsteriskConfError(f"{what} must be a port from 1 to 65535, got {value}")
    return str(value)


def _check_seconds(value: int, what: str, low: int, high: int) -> str:
    if not low <= value <= high:
        raise AsteriskConfError(f"{what} must be from {low} to {high} seconds, got {value}")
    return str(value)


def _check_permit(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise AsteriskConfError(f"ami_permit entries must be networks, got {value!r}") from None
    return f"{net.network_address}/{net.netmask}"


def _check_sip_uri(value: str, what: str) -> str:
    if not re.fullmatch(r"sips?:[-A-Za-z0-9_.@:;=]{1,200}", value):
        raise AsteriskConfError(f"{what} must be a plain SIP URI, got {value!r}")
    return value


def _auth_section(name: str, username: str, password: str) -> str:
    return f"[{name}-auth]\ntype=auth\nauth_type=digest\nusername={username}\npassword={password}\n"


def _interface(agent: AgentPhone, mode: str) -> str:
    """The device a unit's queue rings for ``agent``."""
    if mode == "own":
        if agent.interface is not None:
            raise AsteriskConfError(f"agent {agent.name} interface is only for mode include")
        return f"PJSIP/{agent.name}"
    if agent.password is not None or agent.contact is not None:
        raise AsteriskConfError(f"agent {agent.name} password is not used with mode include")
    return _check(
        agent.interface or f"PJSIP/{agent.name}", _INTERFACE_RE, f"agent {agent.name} interface"
    )


def agent_endpoint(agent: AgentPhone, mode: str) -> str | None:
    """The PJSIP endpoint an agent's phone calls from (its feature codes are recognised
    by it): the agent's name in mode "own", ``PJSIP/<endpoint>`` interfaces in mode
    "include"; None for any other device (no feature codes; the desk still works)."""
    if mode == "own":
        return agent.name
    found = _PJSIP_ENDPOINT_RE.fullmatch(agent.interface or f"PJSIP/{agent.name}")
    return found.group(1) if found else None


def _agent_lookup(settings: AsteriskSettings) -> str:
    """minyi-sub-agent-of's lines: the calling endpoint -> agent, device, unit queues."""
    gotos, blocks = [], []
    for i, agent in enumerate(settings.agents, 1):
        endpoint = agent_endpoint(agent, settings.mode)
        if endpoint is None:
            continue
        device = _interface(agent, settings.mode)
        queues = "&".join(queue_name(u.unit) for u in settings.units if agent.name in u.agents)
        gotos.append(f' same => n,GotoIf($["${{MINYI_EP}}" = "{endpoint}"]?agent_{i})')
        blocks += [
            f" same => n(agent_{i}),Set(MINYI_AGENT={agent.name})",
            f" same => n,Set(MINYI_IF={device})",
            f" same => n,Set(MINYI_QUEUES={queues if settings.agents_log_in else ''})",
            " same => n,Return()",
        ]
    return "\n".join([*gotos, " same => n,Return()", *blocks])


def _agent_values(agent: AgentPhone, qualify_s: int) -> dict[str, str]:
    name = _check(agent.name, _NAME_RE, "agent name")
    if agent.contact is None and agent.password is None:
        raise AsteriskConfError(f"agent {name}: needs a password (to register) or a contact")
    auth = aor = ""
    if agent.password is not None:
        password = _check(agent.password, _SECRET_RE, f"agent {name} password")
        auth = f"auth={name}-auth\n" + "\n" + _auth_section(name, name, password)
    if agent.contact is not None:
        aor = f"contact={_check_sip_uri(agent.contact, f'agent {name} contact')}"
    else:
        aor = "max_contacts=1\nremove_existing=yes"
    # qualify: OPTIONS every qualify_s; a phone that does not answer (killed, unplugged,
    # gone from the network) makes the device unavailable, so app_queue and the dialer
    # stop counting it free before its registration would expire.
    qualify = f"qualify_frequency={qualify_s}" if qualify_s else "qualify_frequency=0"
    return {"name": name, "auth": auth, "aor": aor, "qualify": qualify}


def _trunk_values(s: AsteriskSettings) -> dict[str, str]:
    name = _check(s.trunk_name, _NAME_RE, "trunk_name")
    if s.trunk_name in {a.name for a in s.agents}:
        raise AsteriskConfError("trunk_name must differ from every agent name")
    bad_codecs = [c for c in s.codecs if c not in _CODECS]
    if bad_codecs or not s.codecs:
        raise AsteriskConfError(f"codecs must be some of {sorted(_CODECS)}, got {s.codecs}")
    matches = s.trunk_match or (s.trunk_host,)
    for m in matches:
        _check_host(m, "trunk_match")
    outbound_auth = auth_section = ""
    if (s.trunk_username is None) != (s.trunk_password is None):
        raise AsteriskConfError("trunk_username and trunk_password go together")
    if s.trunk_username is not None and s.trunk_password is not None:
        user = _check(s.trunk_username, _SECRET_RE, "trunk_username")
        password = _check(s.trunk_password, _SECRET_RE, "trunk_password")
        outbound_auth = f"outbound_auth={name}-auth"
        auth_section = _auth_section(name, user, password)
    sip_bind = _check_ip(s.sip_bind, "sip_bind")
    try:
        carrier = trunk_values(s, ip=_check_ip, host=_check_host, port=_check_port)
    except ValueError as exc:  # trunk.py's own checks, worded the same way
        raise AsteriskConfError(str(exc)) from None
    return {
        "trunk_name": name,
        "trunk_match": ",".join(matches),
        "trunk_outbound_auth": outbound_auth,
        "trunk_auth_section": auth_section,
        "sip_bind": sip_bind,
        "media_address": _check_ip(s.media_address or sip_bind, "media_address"),
        "codecs": ",".join(s.codecs),
        **carrier,
    }


def _values(s: AsteriskSettings) -> dict[str, str]:
    agents = {a.name for a in s.agents}
    if len(agents) != len(s.agents):
        raise AsteriskConfError("agent names must be unique")
    units = [u.unit for u in s.units]
    if len(set(units)) != len(units) or not units:
        raise AsteriskConfError("units must be unique and at least one")
    for u in s.units:
        missing = [a for a in u.agents if a not in agents]
        if missing:
            raise AsteriskConfError(f"unit {u.unit}: unknown agents {missing}")
    default_unit = s.default_unit if s.default_unit is not None else units[0]
    if default_unit not in units:
        raise AsteriskConfError(f"default_unit {default_unit!r} is not one of the units")
    if s.mode not in ("own", "include"):
        raise AsteriskConfError(f"mode must be own or include, got {s.mode!r}")
    prompts = {
        "greeting_prompt": s.greeting_prompt,
        "no_agent_prompt": s.no_agent_prompt,
        "goodbye_prompt": s.goodbye_prompt,
        "ivr_question_prompt": s.ivr_question_prompt,
        "ivr_invalid_prompt": s.ivr_invalid_prompt,
        "ivr_reason_prompt": s.ivr_reason_prompt,
        "ivr_thanks_prompt": s.ivr_thanks_prompt,
        "login_prompt": s.login_prompt,
        "logout_prompt": s.logout_prompt,
        "pause_prompt": s.pause_prompt,
        "unpause_prompt": s.unpause_prompt,
        "code_refused_prompt": s.code_refused_prompt,
    }
    values = {k: _check(v, _PROMPT_RE, k) for k, v in prompts.items()}
    codes = {
        "login_code": s.login_code,
        "logout_code": s.logout_code,
        "pause_code": s.pause_code,
        "unpause_code": s.unpause_code,
    }
    if len(set(codes.values())) != len(codes):
        raise AsteriskConfError("feature codes must differ from each other")
    values.update({k: _check(v, _CODE_RE, k) for k, v in codes.items()})
    values["persistent_members"] = "yes" if s.agents_log_in else "no"
    values.update(
        {
            "ami_username": _check(s.ami_username, _NAME_RE, "ami_username"),
            "ami_secret": _check(s.ami_secret, _SECRET_RE, "ami_secret"),
            "ami_bind": _check_ip(s.ami_bind, "ami_bind"),
            "ami_port": _check_port(s.ami_port, "ami_port"),
            "ami_permits": "\n".join(f"permit={_check_permit(p)}" for p in s.ami_permit),
            "recordings_dir": _check(s.recordings_dir.rstrip("/"), _PATH_RE, "recordings_dir"),
            "queue_prefix": QUEUE_PREFIX,
            "default_queue": queue_name(default_unit),
            "agent_ring_s": _check_seconds(s.agent_ring_s, "agent_ring_s", 5, 120),
            "queue_timeout_s": _check_seconds(s.queue_timeout_s, "queue_timeout_s", 5, 3600),
            "wrapup_s": _check_seconds(s.wrapup_s, "wrapup_s", 0, 600),
            "ivr_digit_timeout_s": _check_seconds(
                s.ivr_digit_timeout_s, "ivr_digit_timeout_s", 1, 60
            ),
            "reason_max_s": _check_seconds(s.reason_max_s, "reason_max_s", 5, 600),
            "reason_silence_s": _check_seconds(s.reason_silence_s, "reason_silence_s", 0, 60),
            "agent_qualify_s": _check_seconds(s.agent_qualify_s, "agent_qualify_s", 0, 3600),
        }
    )
    if s.mode == "own":
        values.update(_trunk_values(s))
    return values


_EXTRA_RE: Final = re.compile(r"[^\r\n]{0,500}")


def check(settings: AsteriskSettings) -> None:
    """Raise :class:`AsteriskConfError` for the first setting :func:`render` would refuse.

    Reads no template: the config file is checked with it at load time.
    """
    _values(settings)
    for agent in settings.agents:
        _interface(agent, settings.mode)
        if settings.mode == "own":
            _agent_values(agent, settings.agent_qualify_s)
    for unit in settings.units:
        queue_name(unit.unit)
    for k, v in settings.extra.items():
        _check(v, _EXTRA_RE, f"extra[{k!r}]")


def check_config(settings: AsteriskSettings) -> None:
    """:func:`check` for settings read from the config file: the ConfigError names the
    setting (``dialer.asterisk.sip_bind``, or the ``[dialer]`` one a value came from)
    and never shows a secret. The gateway runs it at start (gateway/startup.py)."""
    table = "dialer.asterisk"
    paths = {key: f"{table}.{key}" for key in KEYS} | {
        "ami_username": "dialer.ami.username",
        "ami_secret": "dialer.ami.secret",
        "ami_bind": "dialer.ami.host",
        "ami_port": "dialer.ami.port",
        "ami_permit entries": f"{table}.ami_permit",
        "trunk_name": "dialer.trunk",
        "wrapup_s": "dialer.wrapup_s",
        "default_unit": "dialer.default_unit",
    }
    if not settings.trunk_match:  # not in the file: it defaults to [trunk_host]
        paths["trunk_match"] = f"{table}.trunk_host"
    for i, agent in enumerate(settings.agents):
        for key in ("contact", "password", "interface"):
            paths[f"agent {agent.name} {key}"] = f"{table}.agents[{i}].{key}"
    secrets = [settings.ami_secret, settings.trunk_password]
    secrets += [a.password for a in settings.agents]
    try:
        check(settings)
    except AsteriskConfError as exc:
        message = str(exc)
        for secret in secrets:  # the config checked them; a last guard (shown as repr)
            if secret:
                message = message.replace(repr(secret), "'***'")
        # the message starts with the setting's name: name its path instead
        for what in sorted(paths, key=len, reverse=True):
            if message.startswith(what + " "):
                path, reason = paths[what], message[len(what) + 1 :]
                if not path.startswith(table):
                    reason += f" (for [{table}])"
                raise ConfigError(path, reason) from None
        raise ConfigError(table, message) from None


def _read(template_dir: Path, name: str) -> str:
    return (template_dir / name).read_text(encoding="utf-8")


def render(settings: AsteriskSettings, template_dir: Path = DEFAULT_TEMPLATE_DIR) -> dict[str, str]:
    """Render the gateway's Asterisk config files: ``{filename: text}``.

    Raises :class:`AsteriskConfError` naming the first setting that cannot be written
    safely. ``settings.extra`` adds (or overrides) template values, for local templates.
    """
    values = _values(settings)
    for k, v in settings.extra.items():
        values[k] = _check(v, _EXTRA_RE, f"extra[{k!r}]")
    agents = {a.name: a for a in settings.agents}
    unit_tmpl = _read(template_dir, "queues_unit.conf.tmpl")
    values["unit_queues"] = "\n".join(
        render_template(
            unit_tmpl,
            {
                "queue": queue_name(u.unit),
                "unit": u.unit,
                # Agents who log in are dynamic members (AddQueueMember), none here.
                "members": ""
                if settings.agents_log_in
                else "\n".join(
                    f"member => {dev},0,{name},{dev}"
                    for name in u.agents
                    for dev in [_interface(agents[name], settings.mode)]
                ),
            },
        )
        for u in settings.units
    )
    for agent in settings.agents:  # every device is checked, member lines or not
        _interface(agent, settings.mode)
    values["agent_lookup"] = _agent_lookup(settings)
    included = {
        name: render_template(_read(template_dir, f"{name}.tmpl"), values) for name in INCLUDE_FILES
    }
    if settings.mode == "include":
        return included
    agent_tmpl = _read(template_dir, "pjsip_agent.conf.tmpl")
    values["agent_endpoints"] = "\n".join(
        render_template(agent_tmpl, _agent_values(a, settings.agent_qualify_s))
        for a in settings.agents
    )
    values["contexts"] = included["extensions_minyi.conf"]
    values["queues"] = included["queues_minyi.conf"]
    values["ami_user"] = included["manager_minyi.conf"]
    return {
        name: render_template(_read(template_dir, f"{name}.tmpl"), values) for name in OWN_FILES
    }
