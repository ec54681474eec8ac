"""constraints.txt pins what `make setup` installs: every dependency the project declares
has a pin, every pin is inside the range the project declares, and the .venv the tests
run in holds exactly the pinned versions (a package upgraded by hand shows here)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def entries(name: str) -> list[str]:
    """The lines of a pip requirements file, comments and blank lines left out."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [kept for line in lines if (kept := line.split("#", 1)[0].strip())]


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in entries("constraints.txt"):
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        found[canonicalize_name(name)] = Version(version)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in ("dev", "asr"):
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines + entries("requirements-test.txt")]


def test_every_declared_dependency_is_pinned_inside_its_declared_range() -> None:
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is declared but has no line in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pinned[name]}, outside the declared {req}"
        )


def test_the_venv_holds_the_pinned_versions() -> None:
    wrong = []
    for name, version in sorted(pins().items()):
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: pinned {version}, not installed")
            continue
        if installed != version:
            wrong.append(f"{name}: pinned {version}, installed {installed}")
    assert not wrong, "the .venv differs from constraints.txt (run make setup):\n" + "\n".join(
        wrong
    )
