"""The layout holds (DESIGN.md, "Layout"; docs/architecture.md): three floors, imports run
one way, no cycles, no room too big, no module too long, tools never in the product."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("gateway", "sms", "asr", "recordings")
TOOLS = ("smsc", "devstack")
MAX_MODULES_PER_FOLDER = 15
MAX_MODULE_LINES = 600

# The ground imports no other package of the project.
GROUND = (
    "gateway.config",
    "gateway.store",
    "gateway.privacy",
    "gateway.logs",
    "gateway.lifecycle",
    "gateway.metrics",  # the /metrics exposition: every room may describe its series
)
# The domains import the ground and, where one truly uses another, only these edges.
DOMAINS = (
    "sms",
    "asr",
    "recordings",
    "gateway.api",
    "gateway.webhooks",
    "gateway.dialer",
    "gateway.desk",
)
DOMAIN_EDGES = {
    # a transcript's citizen leg is read by the same reader as an SMS reply
    ("asr", "sms"): {"sms.understand"},
    # the ASR worker indexes each job's recording when it takes the job
    ("asr", "recordings"): {"recordings.index", "recordings.naming"},
    # intake checks the citizen's number
    ("gateway.api", "sms"): {"sms.phone", "sms.understand"},
    # the callback routes check dispositions against the dialer's store
    ("gateway.api", "gateway.dialer"): {"gateway.dialer.store"},
    # the desk stores dispositions through the dialer's store, reads the agents' states
    # there, and logs agents in and out and pauses them with the dialer's agent actions
    ("gateway.desk", "gateway.dialer"): {
        "gateway.dialer.store",
        "gateway.dialer.ami",
        "gateway.dialer.agents",
    },
    # the desk checks a note as the API checks text fields
    ("gateway.desk", "gateway.api"): {"gateway.api.body"},
    # the desk shows the reason labels of the taxonomy (the SMS text comes from the top)
    ("gateway.desk", "sms"): {"sms.understand"},
    # recordings are served by the API with their signed URLs
    ("gateway.api", "recordings"): {"recordings.access", "recordings.index", "recordings.naming"},
}
# The top floor wires them; it may import anything of the product.
TOP = ("gateway.service", "gateway.cli", "gateway.startup", "gateway.status", "gateway")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(packages: tuple[str, ...]) -> Iterator[tuple[str, Path]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only: no import
    happens at run time, so no cycle)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports at run time, at the top or inside a
    function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                # `from gateway.store import keys` imports the module gateway.store.keys;
                # `from gateway.store.keys import SURVEY` the module gateway.store.keys
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in _KNOWN else base)
    return {m for m in found if m in _KNOWN} - {name}


_KNOWN = {n for n, _ in _modules(PRODUCT + TOOLS)}


def _floor(module: str) -> str:
    if any(module == t for t in TOP if t != "gateway") or module == "gateway":
        return "top"
    if any(module == g or module.startswith(g + ".") for g in GROUND):
        return "ground"
    if module.startswith(TOOLS):
        return "tool"
    return "domain"


def _domain(module: str) -> str:
    return max((d for d in DOMAINS if module == d or module.startswith(d + ".")), key=len)


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in _modules(PRODUCT + TOOLS)}


def test_the_ground_imports_nothing_above_it() -> None:
    wrong = [
        f"{m} imports {i}"
        for m, imps in _graph().items()
        if _floor(m) == "ground"
        for i in sorted(imps)
        if _floor(i) != "ground"
    ]
    assert not wrong, "\n".join(wrong)


def test_domains_use_each_other_only_along_the_documented_edges() -> None:
    wrong = []
    for m, imps in _graph().items():
        if _floor(m) != "domain":
            continue
        for i in sorted(imps):
            if _floor(i) in ("top", "tool"):
                wrong.append(f"{m} imports {i} ({_floor(i)})")
            elif _floor(i) == "domain" and _domain(i) != _domain(m):
                allowed = DOMAIN_EDGES.get((_domain(m), _domain(i)), set())
                if not any(i == a or i.startswith(a + ".") for a in allowed):
                    wrong.append(f"{m} imports {i}")
    assert not wrong, "\n".join(wrong)


def test_the_product_never_imports_a_tool() -> None:
    wrong = [
        f"{m} imports {i}"
        for m, imps in _graph().items()
        if m.split(".")[0] in PRODUCT
        for i in sorted(imps)
        if i.split(".")[0] in TOOLS
        # `minyi smsc` starts the simulator when the source tree is there (a lazy
        # import that says so when it is not: the tool is never installed)
        and (m, i) != ("gateway.cli", "smsc.cli")
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    graph = _graph()
    # Tarjan's strongly connected components: any component of more than one module
    # (or a module importing itself) is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            # a package __init__ importing its own submodules is how packages re-export
            if v and w.startswith(v + "."):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", PRODUCT + TOOLS)
def test_no_room_holds_more_than_fifteen_modules(package: str) -> None:
    for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]:
        modules = list(folder.glob("*.py"))  # __init__ counts: it is a module too
        assert len(modules) <= MAX_MODULES_PER_FOLDER, f"{folder}: {len(modules)} modules"


def test_no_module_is_over_six_hundred_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for _, path in _modules(PRODUCT + TOOLS)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "\n".join(long)


def test_every_module_logs_under_its_room() -> None:
    """Loggers come from gateway.logs.logger(__name__), never a name typed by hand."""
    wrong = []
    for name, path in _modules(PRODUCT + TOOLS):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and name != "gateway.logs"
            ):
                wrong.append(f"{name}: getLogger({node.args[0].value!r})")
    assert not wrong, "\n".join(wrong)


def test_config_is_the_lowest_room_of_the_ground() -> None:
    """The config reader imports nothing of the project but itself (not even the store):
    every other room may read settings without a cycle."""
    wrong = [
        f"{m} imports {i}"
        for m, imps in _graph().items()
        if m.startswith("gateway.config")
        for i in sorted(imps)
        if not i.startswith("gateway.config")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_import_reader_sees_every_form_of_import(tmp_path: Path) -> None:
    """The tests above cannot pass by not looking: top-level, aliased, relative and
    lazy imports all count; only ``if TYPE_CHECKING:`` blocks do not (no run-time
    import happens there)."""
    pkg = tmp_path / "gateway" / "config"
    pkg.mkdir(parents=True)
    probe = pkg / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "import sms.text\n"
        "from gateway import logs\n"
        "from ..webhooks import worker\n"
        "if TYPE_CHECKING:\n"
        "    from asr.models import ModelSpec\n"
        "def f() -> None:\n"
        "    from gateway.service import Service\n"
        "from . import reader\n",
        encoding="utf-8",
    )
    found = _imports("gateway.config.probe", probe)
    assert found == {
        "sms.text",
        "gateway.logs",
        "gateway.webhooks.worker",
        "gateway.service",
        "gateway.config.reader",
    }
