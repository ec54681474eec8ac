"""The one exposition of /metrics: families of series in the Prometheus text format.

Every room that has something to count describes it here, and gateway/api/app.py
serves the result. Pure: no I/O, no Redis, no logging; the readers of Redis (the
store's counters, the webhook backlog, the processes' status reports) fill an
`Exposition` and `render()` writes the page.

The text format (Prometheus "Exposition formats", text format version 0.0.4):

* every family has one ``# HELP name text`` and one ``# TYPE name type`` line before
  its samples, and its samples stand together;
* a counter only goes up (a restart may reset it) and its name ends in ``_total``;
  a gauge goes up and down and never ends in ``_total``;
* label values are escaped (``\\`` → ``\\\\``, ``"`` → ``\\"``, a line feed → ``\\n``),
  HELP text too (backslash and line feed);
* names match ``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*``
  and never begin with ``__`` (reserved).

What a family means is said once, where it is declared. Adding a labelled series is one
call::

    exp.counter("minyi_surveys_total", "Surveys by unit and state.", ("unit", "state")
        ).add(12, unit="330602", state="closed")

`promtool check metrics` (Debian's ``prometheus`` package) passes on a real scrape
(tests/integration/test_health_metrics.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge"]

_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class MetricError(ValueError):
    """A family declared against the format's rules, or a series given twice: a bug of
    the caller, never of the data."""


def escape_label_value(value: str) -> str:
    """A label value as the text format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text as the text format writes it (backslash and line feed escaped)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, NaN and the infinities by name."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


@dataclass
class Family:
    """One metric family: its name, meaning, type, label names and samples."""

    name: str
    help: str
    kind: Kind
    labels: tuple[str, ...]
    samples: dict[tuple[str, ...], float] = field(default_factory=dict)

    def add(self, value: float, **labels: str) -> Family:
        """Add one series (its labels exactly the family's label names)."""
        if set(labels) != set(self.labels):
            raise MetricError(
                f"{self.name}: labels {sorted(labels)} given, {sorted(self.labels)} declared"
            )
        key = tuple(str(labels[n]) for n in self.labels)
        if key in self.samples:
            raise MetricError(
                f"{self.name}: series {dict(zip(self.labels, key, strict=True))} given twice"
            )
        self.samples[key] = value
        return self

    def render(self) -> Iterable[str]:
        """The family's lines."""
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for key in sorted(self.samples):
            value = format_value(self.samples[key])
            if key:
                pairs = ",".join(
                    f'{n}="{escape_label_value(v)}"' for n, v in zip(self.labels, key, strict=True)
                )
                yield f"{self.name}{{{pairs}}} {value}"
            else:
                yield f"{self.name} {value}"


class Exposition:
    """The families of one scrape, in the order they were first declared."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
        """A counter family (its name ends in ``_total``); the same one if declared
        again with the same help and labels."""
        if not name.endswith("_total"):
            raise MetricError(f"counter {name} must end in _total")
        return self._family(name, help, "counter", labels)

    def gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
        """A gauge family (never named ``_total``)."""
        if name.endswith("_total"):
            raise MetricError(f"gauge {name} must not end in _total: a gauge goes down")
        return self._family(name, help, "gauge", labels)

    def _family(self, name: str, help: str, kind: Kind, labels: tuple[str, ...]) -> Family:
        if not _NAME_RE.fullmatch(name):
            raise MetricError(f"metric name {name!r} is not valid")
        for label in labels:
            if not _LABEL_RE.fullmatch(label) or label.startswith("__"):
                raise MetricError(f"{name}: label name {label!r} is not valid")
        if len(set(labels)) != len(labels):
            raise MetricError(f"{name}: a label name given twice")
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = Family(name, help, kind, tuple(labels))
        elif (family.kind, family.labels, family.help) != (kind, tuple(labels), help):
            raise MetricError(f"{name} declared twice, differently")
        return family

    def render(self) -> str:
        """The page: every family, HELP and TYPE first, one line feed at the end."""
        lines = [line for f in self.families.values() for line in f.render()]
        return "\n".join(lines) + "\n" if lines else ""
