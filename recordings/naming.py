"""How recording files are named, and the only way from a name to a path.

A callback's recordings share a base name (MixMonitor's file name without extension):
``<base>.wav`` is both directions mixed, ``<base>-citizen.wav`` and ``<base>-agent.wav``
are the two legs (MixMonitor ``r()``/``t()``), ``<base>-reason.wav`` is the citizen's
recorded reason from the automated call. Bases are ``[-A-Za-z0-9_]{1,100}``: no dots,
no slashes, so a base can never name a file outside the recordings directory.
"""

from __future__ import annotations

import re
from pathlib import Path

BASE_PATTERN = re.compile(r"[-A-Za-z0-9_]{1,100}")
EXTENSION = ".wav"
# leg -> suffix after the base; "mix" is the plain <base>.wav
LEG_SUFFIXES: dict[str, str] = {
    "mix": "",
    "citizen": "-citizen",
    "agent": "-agent",
    "reason": "-reason",
}
LEGS = tuple(LEG_SUFFIXES)


def valid_base(base: str) -> bool:
    """Whether ``base`` is a recording base name (see the module docstring)."""
    return BASE_PATTERN.fullmatch(base) is not None


def leg_file(base: str, leg: str) -> str:
    """The file name of one leg of a recording; ValueError for a bad base or leg."""
    if not valid_base(base):
        raise ValueError(f"bad recording base name {base!r}")
    if leg not in LEG_SUFFIXES:
        raise ValueError(f"bad recording leg {leg!r}; use {', '.join(LEGS)}")
    return base + LEG_SUFFIXES[leg] + EXTENSION


def leg_path(root: Path, base: str, leg: str) -> Path:
    """The path of one leg inside ``root`` (validated; never outside ``root``)."""
    return root / leg_file(base, leg)


def parse_file(name: str) -> tuple[str, str] | None:
    """``(base, leg)`` for a recording file name, None for any other file."""
    if not name.endswith(EXTENSION):
        return None
    stem = name[: -len(EXTENSION)]
    for leg, suffix in LEG_SUFFIXES.items():
        if suffix and stem.endswith(suffix) and valid_base(stem[: -len(suffix)]):
            return stem[: -len(suffix)], leg
    return (stem, "mix") if valid_base(stem) else None


def recording_files(base: str) -> list[str]:
    """Every file name a recording with this base may have."""
    return [leg_file(base, leg) for leg in LEGS]
