"""gateway/config/ is the ground floor (DESIGN.md, "Layout"): it imports no other package
of the project, so every domain may import it without a cycle. Read from the source
with ``ast``, so an import inside a function or under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "gateway" / "config"
# the floors above, and every other room of the project
FORBIDDEN = (
    "sms",
    "asr",
    "recordings",
    "smsc",
    "devstack",
    "gateway.api",
    "gateway.webhooks",
    "gateway.dialer",
    "gateway.service",
    "gateway.cli",
    "gateway.startup",
    "gateway.store",
)


def imported(path: Path, package: str = "gateway.config") -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones made absolute (from
    ``package``, the file's own)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            # `from gateway import dialer` imports gateway.dialer
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def forbidden(module: str) -> str | None:
    """The forbidden room ``module`` is in, if any."""
    for room in FORBIDDEN:
        if module == room or module.startswith(room + "."):
            return room
    return None


MODULES = sorted(CONFIG.glob("*.py"))


def test_every_module_of_the_package_is_read() -> None:
    names = {m.stem for m in MODULES}
    assert {"__init__", "reader", "settings", "sms", "dialer", "asterisk", "asr"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[m.stem for m in MODULES])
def test_config_imports_nothing_above_the_ground(path: Path) -> None:
    wrong = [
        f"{path.name}:{line} imports {module}"
        for line, module in imported(path)
        if forbidden(module)
    ]
    assert wrong == []


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    """The test above cannot pass by not looking."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "import sms.text\n"
        "from gateway import dialer\n"
        "from ..webhooks import worker\n"
        "if TYPE_CHECKING:\n"
        "    from asr.models import ModelSpec\n"
        "def f() -> None:\n"
        "    from gateway.service import Service\n"
        "from gateway.config.reader import ConfigError\n"
        "from . import reader\n"
        "from gateway.apiary import x\n",
        encoding="utf-8",
    )
    rooms = [forbidden(module) for _line, module in sorted(imported(probe))]
    assert rooms == [
        None,
        "sms",
        "gateway.dialer",
        "gateway.webhooks",
        "asr",
        "gateway.service",
        None,
        None,
        None,
    ]
