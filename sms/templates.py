"""Survey SMS templates, checked at load so that no survey is ever cut or over-billed.

A template is the survey text with `{placeholders}` for what differs per survey. Most
carriers bill per part and some append their own text (a signature, "回复TD退订"), so
the key check runs at load, not at send: the WORST-CASE rendering (every placeholder at
its maximum length) plus `reserve_units` must fit in `max_parts` parts. `render` then
truncates over-long values to those maxima, so what passed at load holds at send.

Spec keys of `[sms.templates.NAME]` (the integrator may merge the global `signature`,
`reserve_units` and `ref16` settings in):

- `text` (required): the text; the signature's place is wherever `{signature}` is.
- `max_parts` (default 1), `reserve_units` (default 0), `ref16` (default false: the
  same concatenation reference size the sender uses, which sets units per part).
- `signature`: the carrier signature 【…】; without it `{signature}` is assumed to be
  up to `SIGNATURE_MAX_UNITS` long.
- `reply_scheme` (default `DEFAULT_REPLY_SCHEME`) for `{reply_scheme}`.
- `allow_no_scheme` (default false): allow a text that does not mention every reply
  digit 1, 2, 3 (a notification, not a survey).
- `max_units`: per-placeholder overrides of `PLACEHOLDER_MAX_UNITS`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from gateway.config import ConfigError, SmsSettings, SurveySettings, template_specs
from gateway.config.reader import join
from gateway.config.sms import SIGNATURE_MAX
from sms.text import MAX_PARTS, count_units, max_parts_for_units, truncate

DEFAULT_REPLY_SCHEME: Final = "回复1满意，2基本满意，3不满意"
# The digits the reply parser reads as a rating; a survey text must offer all of them.
REPLY_DIGITS: Final = ("1", "2", "3")
# The config caps the signature at this many characters (gateway/config/sms.py).
SIGNATURE_MAX_UNITS: Final = SIGNATURE_MAX

# Every placeholder a template may use, with its default maximum length in UTF-16 units.
# `date` is "12月31日" at most, `time` "23:59". `reply_scheme` is bounded by the
# template's own scheme text instead (see `load_template`).
PLACEHOLDER_MAX_UNITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "signature": SIGNATURE_MAX_UNITS,
        "reply_scheme": count_units(DEFAULT_REPLY_SCHEME),
        "service": 12,
        "unit_name": 20,
        "officer": 8,
        "date": 6,
        "time": 5,
    }
)
PLACEHOLDERS: Final = frozenset(PLACEHOLDER_MAX_UNITS)

_SPEC_KEYS: Final = frozenset(
    {
        "text",
        "max_parts",
        "reserve_units",
        "ref16",
        "signature",
        "reply_scheme",
        "allow_no_scheme",
        "max_units",
    }
)
# Worst-case filler: any one-unit character gives the same count.
_FILLER: Final = "某"


class TemplateError(ValueError):
    """A template that cannot be used; the message names the template."""


@dataclass(frozen=True)
class Template:
    """A checked survey template. Build it with `load_template`."""

    name: str
    text: str
    placeholders: frozenset[str]
    max_units: Mapping[str, int] = field(hash=False)
    defaults: Mapping[str, str] = field(hash=False)  # signature, reply_scheme
    max_parts: int
    reserve_units: int
    ref16: bool
    worst_case_units: int  # rendered at every maximum, plus reserve_units
    worst_case_parts: int

    def render(self, values: Mapping[str, str]) -> str:
        """The SMS text for one survey.

        Values are taken from `values`, else from the template's defaults (signature,
        reply scheme), else "". Whitespace runs (a newline in a unit name) become one
        space, and a value over its maximum is cut to it with "…", so the result never
        exceeds the worst case checked at load.
        """
        filled: dict[str, str] = {}
        for name in self.placeholders:
            value = values.get(name)
            if value is None:
                value = self.defaults.get(name, "")
            value = " ".join(str(value).split())
            filled[name] = truncate(value, self.max_units[name])
        return self.text.format_map(filled)


def _fail(name: str, message: str) -> TemplateError:
    return TemplateError(f"template {name!r}: {message}")


def _placeholders(name: str, text: str) -> frozenset[str]:
    """The placeholders in `text`; unknown names and format tricks are errors."""
    found: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise _fail(
            name, f"bad braces in text ({exc}); write {{{{ and }}}} for literal ones"
        ) from exc
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in PLACEHOLDERS:
            allowed = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            raise _fail(name, f"unknown placeholder {{{field_name}}}; allowed: {allowed}")
        if format_spec or conversion:
            raise _fail(name, f"placeholder {{{field_name}}} must be plain, without : or !")
        found.add(field_name)
    return frozenset(found)


def _int(
    name: str, spec: Mapping[str, Any], key: str, default: int, low: int, high: int, label: str = ""
) -> int:
    value = spec.get(key, default)
    # bool is an int in Python; `max_parts = true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = label or key
        raise _fail(name, f"{what} must be a whole number {low}..{high}, got {value!r}")
    return value


def _str(name: str, spec: Mapping[str, Any], key: str, default: str) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str):
        raise _fail(name, f"{key} must be a string, got {value!r}")
    return value


def _bool(name: str, spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise _fail(name, f"{key} must be true or false, got {value!r}")
    return value


def _max_units(name: str, spec: Mapping[str, Any], signature: str, scheme: str) -> dict[str, int]:
    """Per-placeholder maxima: defaults, then fixed texts, then the spec's overrides."""
    result = dict(PLACEHOLDER_MAX_UNITS)
    if signature:
        result["signature"] = count_units(signature)
    result["reply_scheme"] = count_units(scheme)
    overrides = spec.get("max_units", {})
    if not isinstance(overrides, Mapping):
        raise _fail(name, f"max_units must be a table, got {overrides!r}")
    for key in overrides:
        if key not in PLACEHOLDERS:
            raise _fail(name, f"max_units names unknown placeholder {key!r}")
        result[key] = _int(name, overrides, key, 0, 1, 1000, label=f"max_units.{key}")
    return result


def load_template(name: str, spec: Mapping[str, Any]) -> Template:
    """Validate one `[sms.templates.NAME]` table and return the `Template`.

    Errors (`TemplateError`, naming the template): unknown keys or placeholders, bad
    types, a survey text without every reply digit (unless `allow_no_scheme`), and a
    worst-case rendering plus `reserve_units` that does not fit in `max_parts` parts.
    """
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise _fail(name, f"unknown keys {unknown}; allowed: {sorted(_SPEC_KEYS)}")
    text = _str(name, spec, "text", "")
    if not text.strip():
        raise _fail(name, "text is required")
    placeholders = _placeholders(name, text)
    max_parts = _int(name, spec, "max_parts", 1, 1, MAX_PARTS)
    reserve_units = _int(name, spec, "reserve_units", 0, 0, 1000)
    ref16 = _bool(name, spec, "ref16")
    signature = _str(name, spec, "signature", "")
    scheme = _str(name, spec, "reply_scheme", DEFAULT_REPLY_SCHEME)
    max_units = _max_units(name, spec, signature, scheme)

    if not _bool(name, spec, "allow_no_scheme"):
        # Digits in per-survey values (a date) or the signature (【110】) do not count.
        fixed = text.format_map({p: scheme if p == "reply_scheme" else "" for p in placeholders})
        absent = [d for d in REPLY_DIGITS if d not in fixed]
        if absent:
            raise _fail(
                name,
                f"text offers no reply digit {', '.join(absent)} (use {{reply_scheme}}, "
                "or set allow_no_scheme = true for a text that asks nothing)",
            )

    rendered = count_units(text.format_map({p: _FILLER * max_units[p] for p in placeholders}))
    worst = rendered + reserve_units
    parts = max_parts_for_units(worst, ref16=ref16)
    if parts > max_parts:
        raise _fail(
            name,
            f"worst case is {worst} UCS-2 units ({rendered} rendered with every placeholder "
            f"at its maximum + {reserve_units} reserved), which takes {parts} parts; "
            f"max_parts is {max_parts}",
        )
    return Template(
        name=name,
        text=text,
        placeholders=placeholders,
        max_units=MappingProxyType({p: max_units[p] for p in placeholders}),
        defaults=MappingProxyType({"signature": signature, "reply_scheme": scheme}),
        max_parts=max_parts,
        reserve_units=reserve_units,
        ref16=ref16,
        worst_case_units=worst,
        worst_case_parts=parts,
    )


def load_templates(sms: SmsSettings) -> dict[str, Template]:
    """Every ``[sms.templates.NAME]``, with what it inherits from ``[sms]``, loaded and
    checked; a ConfigError names the one that fails (``sms.templates.NAME``)."""
    templates: dict[str, Template] = {}
    for name, spec in template_specs(sms).items():
        try:
            templates[name] = load_template(name, spec)
        except ValueError as e:  # TemplateError: too long, bad placeholder…
            raise ConfigError(join("sms.templates", name), str(e)) from None
    return templates


def cut_names(surveys: SurveySettings, templates: Mapping[str, Template]) -> list[str]:
    """Warnings for service and unit names longer than a template shows: the SMS would
    cut them (`render` truncates to the template's maximum)."""
    found: list[str] = []
    for key, placeholder in (("service_names", "service"), ("unit_names", "unit_name")):
        names: Mapping[str, str] = getattr(surveys, key)
        for code, name in names.items():
            for tname, template in templates.items():
                limit = template.max_units.get(placeholder)
                if limit is not None and count_units(name) > limit:
                    found.append(
                        f'{join("surveys." + key, code)}: "{name}" is longer than the '
                        f'{limit} characters template "{tname}" shows, so the SMS cuts it '
                        f"(raise max_units.{placeholder} there)"
                    )
                    break
    return found
