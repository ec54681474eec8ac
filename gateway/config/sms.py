"""The ``[sms]`` section: sending the survey SMS and receiving the replies.

Holds the binds (``[[sms.binds]]``, SMPP or CMPP: `gateway.config.binds`), the routes
that choose a survey's bind (``[[sms.routes]]``, ``default_binds``) and the raw
``[sms.templates.NAME]`` tables. The templates' content (placeholders, worst-case
length) is checked at start by ``sms.templates.load_templates`` (gateway/startup.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from gateway.config.binds import (
    ENV_SMPP_PASSWORD,
    SRC_ID_MAX,
    Bind,
    CmppBind,
    parse_bind,
)
from gateway.config.reader import ConfigError, Table, join, name, show, text, unique

Alphabet = Literal["latin1", "gsm7"]

# The sender number, before the extension: the tightest field it goes into.
SOURCE_ADDR_MAX: Final = 20  # SMPP 3.4 §5.2.8 source_addr: Var. max 21 (extension included)
EXTENSION_DIGITS_MAX: Final = 6
# The carrier signature 【…】, as the config allows it; sms.templates sizes {signature} by it.
SIGNATURE_MAX: Final = 20
MINUTE: Final = 60.0
# A number prefix of a route: 1 to 11 digits of the 11-digit mobile number.
PREFIX_MAX: Final = 11
_UNIT_PATTERN_RE: Final = re.compile(r"\*|[0-9A-Za-z]{1,32}\*?")


@dataclass(frozen=True)
class SmsRoute:
    """``[[sms.routes]]``: surveys whose number starts with one of `prefixes` and
    whose unit matches one of `units` go through one of `binds` (an empty list matches
    everything; the first route that matches wins)."""

    binds: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    units: tuple[str, ...] = ()  # exact "330602", prefix "3306*", or "*"

    def matches(self, phone: str, unit: str) -> bool:
        """Whether a survey to `phone` (11 digits) for `unit` takes this route."""
        if self.prefixes and not phone.startswith(self.prefixes):
            return False
        if not self.units:
            return True
        return any(unit.startswith(p[:-1]) if p.endswith("*") else unit == p for p in self.units)


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
    binds: tuple[Bind, ...] = ()
    routes: tuple[SmsRoute, ...] = ()
    #: The binds of a survey no route matches; () = every bind that can send.
    default_binds: tuple[str, ...] = ()

    def source_of(self, bind: str) -> str:
        """The sender number (before the extension code) of the bind named `bind`."""
        for b in self.binds:
            if b.name == bind:
                return b.source or self.source_addr
        return self.source_addr

    def senders(self) -> tuple[str, ...]:
        """The names of the binds that can send (not receivers)."""
        return tuple(b.name for b in self.binds if b.mode != "receiver")


_ALPHABETS: Final[tuple[Alphabet, ...]] = ("latin1", "gsm7")


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


# The clarifying SMS (issue 11): sent once when a reply cannot be read as a rating
# ([surveys] clarify_template names it); a config's own [sms.templates.clarify] wins.
CLARIFY_TEMPLATE: Final = "clarify"
CLARIFY_TEXT: Final = "{signature}抱歉没能看懂您的评价，请回复数字：1满意 2基本满意 3不满意"


def template_specs(sms: SmsSettings) -> dict[str, dict[str, Any]]:
    """Each [sms.templates.NAME] table with the [sms] settings it inherits, and the
    built-in `clarify` template unless the config defines its own.

    A template's own ``signature``, ``reserve_units`` or ``ref16`` wins; otherwise the
    [sms] value applies, so the load-time length check sees what the sender sends.
    """
    specs: dict[str, dict[str, Any]] = {}
    builtin = {CLARIFY_TEMPLATE: {"text": CLARIFY_TEXT}}
    for key, raw in {**builtin, **sms.templates}.items():
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
    "routes",
    "default_binds",
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
    binds = tuple(parse_bind(item, path, env) for item, path in t.tables("binds"))
    unique([(b.name, f"sms.binds[{i}].name") for i, b in enumerate(binds)], ENV_SMPP_PASSWORD)
    _same_protocol(binds)
    _same_id_bases(binds)
    for i, bind in enumerate(binds):
        own = bind.source if isinstance(bind, CmppBind) else ""
        if own and len(own) + extension_digits > SRC_ID_MAX:
            raise ConfigError(
                f"sms.binds[{i}].src_id",
                f"src_id ({len(own)} digits) plus extension_digits must be at most "
                f"{SRC_ID_MAX} digits (CMPP 7.4.3.1 Src_Id)",
            )
    senders = {b.name for b in binds if b.mode != "receiver"}
    routes = tuple(_route(item, path, senders) for item, path in t.tables("routes"))
    default_binds = _bind_names(
        t.get("default_binds", list(d.default_binds)), t.at("default_binds"), senders, empty=True
    )
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
        routes=routes,
        default_binds=default_binds,
    )


def _bind_names(value: object, path: str, senders: set[str], *, empty: bool) -> tuple[str, ...]:
    """A list of bind names that can send (a route's or the default's)."""
    if not isinstance(value, list) or (not value and not empty):
        raise ConfigError(
            path, f'must be an array of bind names like ["cmcc-1"], got {show(value)}'
        )
    names = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or item not in senders:
            known = ", ".join(f'"{n}"' for n in sorted(senders)) or "none"
            raise ConfigError(
                f"{path}[{i}]",
                f"must name a [[sms.binds]] entry that can send (not a receiver); "
                f"got {show(item)}, known: {known}",
            )
        if item in names:
            raise ConfigError(f"{path}[{i}]", f'"{item}" is listed twice')
        names.append(item)
    return tuple(names)


def _route(data: object, path: str, senders: set[str]) -> SmsRoute:
    t = Table(data, path, ("binds", "prefixes", "units"))
    binds = _bind_names(t.get("binds"), t.at("binds"), senders, empty=False)
    prefixes = t.get("prefixes", [])
    if not isinstance(prefixes, list):
        raise ConfigError(
            t.at("prefixes"), f'must be an array like ["134", "135"], got {show(prefixes)}'
        )
    for i, prefix in enumerate(prefixes):
        if (
            not isinstance(prefix, str)
            or not prefix.isascii()
            or not prefix.isdigit()
            or not 1 <= len(prefix) <= PREFIX_MAX
        ):
            raise ConfigError(
                f"{t.at('prefixes')}[{i}]",
                f"must be 1 to {PREFIX_MAX} digits of the 11-digit mobile number "
                f'like "139", got {show(prefix)}',
            )
    units = t.get("units", [])
    if not isinstance(units, list):
        raise ConfigError(t.at("units"), f'must be an array like ["3306*"], got {show(units)}')
    for i, unit in enumerate(units):
        if not isinstance(unit, str) or not _UNIT_PATTERN_RE.fullmatch(unit):
            raise ConfigError(
                f"{t.at('units')}[{i}]",
                f'must be a unit code "330602", a prefix "3306*" or "*", got {show(unit)}',
            )
    if not prefixes and not units:
        raise ConfigError(path, "needs prefixes or units (or both): it would match every survey")
    return SmsRoute(binds=binds, prefixes=tuple(prefixes), units=tuple(units))


def _same_protocol(binds: Sequence[Bind]) -> None:
    """Binds to one SMS center speak one protocol family: their message ids share one
    namespace, and a CMPP Msg_Id and an SMPP message_id are not the same thing."""
    first: dict[str, Bind] = {}
    for i, bind in enumerate(binds):
        other = first.setdefault(bind.smsc, bind)
        if other.family != bind.family:
            raise ConfigError(
                f"sms.binds[{i}].smsc",
                f'bind "{bind.name}" speaks {bind.protocol} but "{other.name}" to the same '
                f'SMS center "{bind.smsc}" speaks {other.protocol}; give each its own smsc',
            )


def _same_id_bases(binds: Sequence[Bind]) -> None:
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
