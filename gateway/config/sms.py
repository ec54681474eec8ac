"""The ``[sms]`` section: sending the survey SMS and receiving the replies.

Holds the SMPP binds (``[[sms.binds]]``; a password may come from
``MINYI_SMPP_PASSWORD_<BIND>``) and the raw ``[sms.templates.NAME]`` tables. The
templates' content (placeholders, worst-case length) is checked at start by
``sms.templates.load_templates`` (see gateway/startup.py).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from gateway.config.reader import (
    MISSING,
    ConfigError,
    Table,
    ascii_field,
    code,
    env_name,
    host,
    join,
    name,
    show,
    text,
    unique,
)

BindMode = Literal["transceiver", "transmitter", "receiver"]
IdBase = Literal["text", "hex", "dec"]
Alphabet = Literal["latin1", "gsm7"]

ENV_SMPP_PASSWORD: Final = "MINYI_SMPP_PASSWORD_"

# SMPP 3.4 field limits. The spec gives C-Octet String sizes including the NULL
# terminator, so the usable length is one less.
SYSTEM_ID_MAX: Final = 15  # §5.2.1 system_id: Var. max 16
PASSWORD_MAX: Final = 8  # §5.2.2 password: Var. max 9
SYSTEM_TYPE_MAX: Final = 12  # §5.2.3 system_type: Var. max 13
SOURCE_ADDR_MAX: Final = 20  # §5.2.8 source_addr: Var. max 21 (extension included)
TON_VALUES: Final = frozenset(range(7))  # §5.2.5 Unknown … Abbreviated
NPI_VALUES: Final = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})  # §5.2.6
EXTENSION_DIGITS_MAX: Final = 6
# The carrier signature 【…】, as the config allows it; sms.templates sizes {signature} by it.
SIGNATURE_MAX: Final = 20
MINUTE: Final = 60.0


@dataclass(frozen=True)
class SmppBind:
    """One SMPP 3.4 session to an SMS center."""

    name: str
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # never in a log line
    system_type: str = ""
    mode: BindMode = "transceiver"
    window: int = 64
    tps: float = 100.0
    enquire_link_s: float = 30.0
    response_timeout_s: float = 30.0
    reconnect_initial_s: float = 1.0
    reconnect_max_s: float = 60.0
    smsc: str = "default"  # binds to the same SMS center share a message-id namespace
    submit_id_base: IdBase = "text"
    dlr_id_base: IdBase = "text"
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 0
    dest_npi: int = 1


@dataclass(frozen=True, kw_only=True)
class SmsSettings:
    """Sending the survey SMS and receiving the replies."""

    source_addr: str
    extension_digits: int = 0
    signature: str = ""
    reserve_units: int = 0
    ref16: bool = False
    registered_delivery: bool = True
    default_alphabet: Alphabet = "latin1"
    mo_reassembly_timeout_s: float = 600.0
    # raw [sms.templates.NAME] tables; sms.templates.load_templates checks them
    templates: Mapping[str, Mapping[str, Any]]
    binds: tuple[SmppBind, ...] = ()


_BIND_KEYS: Final = tuple(f.name for f in dataclasses.fields(SmppBind))
_MODES: Final[tuple[BindMode, ...]] = ("transceiver", "transmitter", "receiver")
_ID_BASES: Final[tuple[IdBase, ...]] = ("text", "hex", "dec")
_ALPHABETS: Final[tuple[Alphabet, ...]] = ("latin1", "gsm7")


def _smpp_bind(data: object, path: str, env: Mapping[str, str]) -> SmppBind:
    t = Table(data, path, _BIND_KEYS)
    bind_name = name(t.get("name"), t.at("name"))
    password, origin = t.secret("password", env, env_name(ENV_SMPP_PASSWORD, bind_name))
    if not password.isascii() or len(password) > PASSWORD_MAX or not password.isprintable():
        raise ConfigError(
            t.at("password"),
            f"must be at most {PASSWORD_MAX} ASCII characters (SMPP 3.4 §5.2.2), "
            f"got {len(password)} characters{origin}",
        )
    d = SmppBind
    reconnect_initial_s = t.number(
        "reconnect_initial_s", d.reconnect_initial_s, 0, 3600, above=True
    )
    return SmppBind(
        name=bind_name,
        host=host(t.get("host"), t.at("host")),
        port=t.integer("port", MISSING, 1, 65535),
        system_id=ascii_field(t.get("system_id"), t.at("system_id"), SYSTEM_ID_MAX, "§5.2.1"),
        password=password,
        system_type=ascii_field(
            t.get("system_type", d.system_type),
            t.at("system_type"),
            SYSTEM_TYPE_MAX,
            "§5.2.3",
            empty=True,
        ),
        mode=t.pick("mode", d.mode, _MODES),
        window=t.integer("window", d.window, 1, 10_000),
        tps=t.number("tps", d.tps, 0, 100_000, above=True),
        enquire_link_s=t.number("enquire_link_s", d.enquire_link_s, 1, 3600),
        response_timeout_s=t.number("response_timeout_s", d.response_timeout_s, 0, 600, above=True),
        reconnect_initial_s=reconnect_initial_s,
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, reconnect_initial_s, 86400),
        smsc=name(t.get("smsc", d.smsc), t.at("smsc")),
        submit_id_base=t.pick("submit_id_base", d.submit_id_base, _ID_BASES),
        dlr_id_base=t.pick("dlr_id_base", d.dlr_id_base, _ID_BASES),
        source_ton=code(
            t.get("source_ton", d.source_ton), t.at("source_ton"), TON_VALUES, "§5.2.5"
        ),
        source_npi=code(
            t.get("source_npi", d.source_npi), t.at("source_npi"), NPI_VALUES, "§5.2.6"
        ),
        dest_ton=code(t.get("dest_ton", d.dest_ton), t.at("dest_ton"), TON_VALUES, "§5.2.5"),
        dest_npi=code(t.get("dest_npi", d.dest_npi), t.at("dest_npi"), NPI_VALUES, "§5.2.6"),
    )


def _templates(value: object, path: str) -> dict[str, dict[str, Any]]:
    """The raw template tables; their content is checked by sms.templates."""
    example = f'[{path}.default] with text = "..."'
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"must be tables of templates, written {example}")
    templates: dict[str, dict[str, Any]] = {}
    for key, table in value.items():
        item = join(path, str(key))
        name(str(key), item)
        if not isinstance(table, Mapping):
            raise ConfigError(item, f'must be a table, written [{item}] with text = "..."')
        templates[str(key)] = copy.deepcopy(dict(table))
    if "default" not in templates:
        # surveys that name no template use it
        raise ConfigError(path, f'needs a template named "default", written {example}')
    return templates


def template_specs(sms: SmsSettings) -> dict[str, dict[str, Any]]:
    """Each [sms.templates.NAME] table with the [sms] settings it inherits.

    A template's own ``signature``, ``reserve_units`` or ``ref16`` wins; otherwise the
    [sms] value applies, so the load-time length check sees what the sender sends.
    """
    specs: dict[str, dict[str, Any]] = {}
    for key, raw in sms.templates.items():
        spec = dict(raw)
        spec.setdefault("signature", sms.signature)
        spec.setdefault("reserve_units", sms.reserve_units)
        spec.setdefault("ref16", sms.ref16)
        specs[key] = spec
    return specs


def _signature(value: object, path: str) -> str:
    signature = text(value, path, max_len=SIGNATURE_MAX, allow_empty=True)
    # Chinese carriers require the sender's signature in 【】 (DESIGN.md, "Contracts").
    if signature and not (len(signature) > 2 and signature[0] == "【" and signature[-1] == "】"):
        raise ConfigError(
            path, f'must be empty or a signature in 【】 like "【某某公安】", got {show(signature)}'
        )
    return signature


_KEYS: Final = (
    "source_addr",
    "extension_digits",
    "signature",
    "reserve_units",
    "ref16",
    "registered_delivery",
    "default_alphabet",
    "mo_reassembly_timeout_minutes",
    "templates",
    "binds",
)


def parse_sms(data: object, env: Mapping[str, str]) -> SmsSettings:
    """Check the ``[sms]`` table and its binds (not yet the templates' texts)."""
    t = Table(data, "sms", _KEYS)
    source_addr = text(t.get("source_addr"), t.at("source_addr"), max_len=100)
    if not source_addr.isdigit() or not source_addr.isascii() or len(source_addr) > SOURCE_ADDR_MAX:
        raise ConfigError(
            t.at("source_addr"),
            f"must be 1 to {SOURCE_ADDR_MAX} digits (SMPP 3.4 §5.2.8), got {show(source_addr)}",
        )
    d = SmsSettings
    extension_digits = t.integer("extension_digits", d.extension_digits, 0, EXTENSION_DIGITS_MAX)
    if len(source_addr) + extension_digits > SOURCE_ADDR_MAX:
        # the extension code (扩展码) is appended to source_addr in the same field
        raise ConfigError(
            t.at("extension_digits"),
            f"source_addr ({len(source_addr)} digits) plus extension_digits must be at most "
            f"{SOURCE_ADDR_MAX} digits (SMPP 3.4 §5.2.8), got {extension_digits}",
        )
    binds = tuple(_smpp_bind(item, path, env) for item, path in t.tables("binds"))
    unique([(b.name, f"sms.binds[{i}].name") for i, b in enumerate(binds)], ENV_SMPP_PASSWORD)
    _same_id_bases(binds)
    return SmsSettings(
        source_addr=source_addr,
        extension_digits=extension_digits,
        signature=_signature(t.get("signature", d.signature), t.at("signature")),
        # room kept free in every part for text the SMS center adds itself
        reserve_units=t.integer("reserve_units", d.reserve_units, 0, 60),
        ref16=t.boolean("ref16", d.ref16),
        registered_delivery=t.boolean("registered_delivery", d.registered_delivery),
        default_alphabet=t.pick("default_alphabet", d.default_alphabet, _ALPHABETS),
        mo_reassembly_timeout_s=t.number(
            "mo_reassembly_timeout_minutes", d.mo_reassembly_timeout_s / MINUTE, 0, 1440, above=True
        )
        * MINUTE,
        templates=_templates(t.get("templates", {}), t.at("templates")),
        binds=binds,
    )


def _same_id_bases(binds: Sequence[SmppBind]) -> None:
    """Binds to one SMS center must read its message ids the same way.

    A receipt may arrive on another bind than the submit_sm_resp did; both ids are
    normalised per SMS center, so two readings would never match.
    """
    first: dict[str, int] = {}
    for i, bind in enumerate(binds):
        j = first.setdefault(bind.smsc, i)
        for key in ("submit_id_base", "dlr_id_base"):
            mine, theirs = getattr(bind, key), getattr(binds[j], key)
            if mine != theirs:
                raise ConfigError(
                    f"sms.binds[{i}].{key}",
                    f'is "{mine}" but bind "{binds[j].name}" to the same SMS center '
                    f'"{bind.smsc}" says "{theirs}"; binds to one center must agree',
                )


def check_sms_worker(sms: SmsSettings) -> None:
    """What the sms worker needs: a bind to send on and, per center, one to hear on."""
    if not sms.binds:
        raise ConfigError(
            "sms.binds", "at least one [[sms.binds]] is needed when the sms worker runs"
        )
    for i, bind in enumerate(sms.binds):
        same = [b for b in sms.binds if b.smsc == bind.smsc]
        # SMPP 3.4 §2.2.1: a transmitter session never receives deliver_sm
        if bind.mode != "receiver" and all(b.mode == "transmitter" for b in same):
            raise ConfigError(
                f"sms.binds[{i}].mode",
                f'SMS center "{bind.smsc}" has no transceiver or receiver bind, so its '
                "receipts and the citizens' replies would never arrive",
            )
    if all(b.mode == "receiver" for b in sms.binds):
        raise ConfigError("sms.binds", "every bind is a receiver, so no SMS can be sent")
