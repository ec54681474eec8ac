"""The reply reader (sms.understand) compiled by mypyc, used only when it was built from
exactly these sources. Its home is the sms package, beside the rooms it builds: the
mechanism (`use`) serves any package whose `__init__` calls it.

The reader is typed Python (mypy strict), so mypyc can compile its busiest modules
(`MODULES`) to C extensions with no change of meaning: the same code, without the
interpreter's dispatch. In the bench's mix that takes the rules from ~27,000 to
~38,000 replies a second; with the weigher, the reader passes 20,000 (round 20).

The build lives outside the source tree, under the interpreter's prefix
(``.venv/minyi-reader``), with a stamp: a hash of the modules' sources and the
interpreter's tag and extension suffix. `use` puts it before the sources on the
package's path only when the stamp matches, so an edited module is never shadowed by
an old build: it is read as Python (slower, the same readings) until it is built again,
and `make test` and `make demo` build it again. ``MINYI_READER=python`` reads as Python
even when the build is current (the tests compare the two).

    .venv/bin/python scripts/compile_reader.py build   # what `make` runs; nothing if current
    .venv/bin/python scripts/compile_reader.py status  # compiled, stale, not built or off
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Final

# The modules a reply goes through, compiled as one group. The packages' `__init__`
# modules stay Python (they put the build on their package's path), as do the rules
# file's loaders (`sms.understand.rules`: run once) and `Understanding`, the result other
# code keeps (`understanding`: a plain dataclass, as before).
MODULES: Final = (
    "sms.understand.caution",
    "sms.understand.cues",
    "sms.understand.decide",
    "sms.understand.digits",
    "sms.understand.findings",
    "sms.understand.homophone",
    "sms.understand.judge",
    "sms.understand.match",
    "sms.understand.reading",
    "sms.understand.scan",
    "sms.understand.text",
    "sms.understand.learned.features",
    "sms.understand.learned.joint",
)
GROUP: Final = "minyi_reader"  # the shared library: minyi_reader__mypyc
ENV: Final = "MINYI_READER"  # "python": never use the build
STAMP: Final = "STAMP.json"
_ROOT: Final = Path(__file__).resolve().parents[1]  # the directory holding `sms`


def build_dir() -> Path:
    """Where the build lives: beside the interpreter's packages, not in the sources."""
    return Path(sys.prefix) / "minyi-reader"


def source_of(module: str) -> Path:
    return _ROOT.joinpath(*module.split(".")).with_suffix(".py")


def stamp() -> dict[str, str]:
    """What a build must have been made from to be used now."""
    h = hashlib.sha256()
    for module in MODULES:
        h.update(module.encode() + b"\0" + source_of(module).read_bytes() + b"\0")
    # Extension modules are binary-compatible within one minor version of CPython: the
    # implementation's tag and the extensions' suffix name it (cpython-311, x86_64).
    return {
        "sources": h.hexdigest(),
        "python": sys.implementation.cache_tag or sys.version,
        "extension": str(sysconfig.get_config_var("EXT_SUFFIX")),
    }


def status() -> str:
    """ "compiled", "stale" (built from other sources or for another interpreter),
    "not built", or "off" (MINYI_READER=python)."""
    if os.environ.get(ENV) == "python":
        return "off"
    try:
        built = json.loads((build_dir() / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "not built"
    return "compiled" if built == stamp() else "stale"


_active: bool | None = None


def active() -> bool:
    """The build is current and its shared library loads (checked once a process)."""
    global _active
    if _active is None:
        _active = status() == "compiled" and _loads()
    return _active


def reader() -> str:
    """What reads replies in this process, as the gateway and the bench report it:
    "compiled", or why not ("stale", "not built", "off", or "unloadable": a current
    build whose shared library would not load)."""
    if active():
        return "compiled"
    state = status()
    return "unloadable" if state == "compiled" else state


def _loads() -> bool:
    where = str(build_dir())
    added = where not in sys.path
    if added:
        sys.path.append(where)  # the group's shared library is a top-level module
    try:
        importlib.import_module(f"{GROUP}__mypyc")
    except ImportError:
        if added:
            sys.path.remove(where)
        return False
    return True


def use(path: list[str], package: str) -> bool:
    """Put the build's copy of `package` before its sources on `path` (a package's
    ``__path__``) when the build is current; True if it did."""
    if not active():
        return False
    built = str(build_dir().joinpath(*package.split(".")))
    if built not in path:
        path.insert(0, built)
    return True
