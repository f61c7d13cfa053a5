"""The install is the lock: `make` installs what uv.lock holds (with uv, or with pip from its
export, requirements.lock.txt), so the lock agrees with pyproject.toml, the export with the
lock, and this environment with both."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker

PROJECT = Path(__file__).resolve().parents[1]
LOCK = PROJECT / "uv.lock"
EXPORTED = PROJECT / "requirements.lock.txt"
# The Makefile's EXPORT, flag for flag (the file's header repeats them).
EXPORT = ("export", "--quiet", "--frozen", "--all-extras", "--no-emit-project")
EXTRAS = ("deploy", "dev")


def normalized(name: str) -> str:
    """PEP 503: `Foo.Bar_baz` and `foo-bar-baz` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def uv() -> Path:
    """The uv that `make` put beside this Python."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        pytest.skip(f"no uv beside {sys.executable}: installed by pip, without uv")
    return uv


def run_uv(uv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(uv), *args], cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_lock_agrees_with_pyproject(uv: Path):
    """Resolved from the lock's own records: no index is asked."""
    checked = run_uv(uv, "lock", "--check", "--offline")

    assert checked.returncode == 0, (
        "uv.lock does not match pyproject.toml: run `.venv/bin/uv lock` (or `make upgrade` for "
        f"newer versions) and export it again\n{checked.stderr}"
    )


def test_the_export_for_pip_is_the_lock(uv: Path):
    exported = run_uv(uv, *EXPORT)

    assert exported.returncode == 0, exported.stderr
    assert EXPORTED.read_text(encoding="utf-8") == exported.stdout, (
        f"requirements.lock.txt is not the lock's export: run `.venv/bin/uv {' '.join(EXPORT)} "
        "> requirements.lock.txt`"
    )


def applies(marker: str | None) -> bool:
    return marker is None or Marker(marker).evaluate()


def locked_packages() -> list[dict]:
    return tomllib.loads(LOCK.read_text(encoding="utf-8"))["package"]


def locked_here() -> dict[str, str]:
    """The version the lock holds for this Python and platform, by package."""
    versions: dict[str, str] = {}
    for package in locked_packages():
        markers = package.get("resolution-markers")
        if markers is None or any(applies(m) for m in markers):
            versions[normalized(package["name"])] = package["version"]
    return versions


def required_here() -> dict[str, str]:
    """What the project with its deploy and dev extras needs here: the lock's graph from the
    project, following only the edges whose markers hold on this Python and platform."""
    packages: dict[tuple[str, str], dict] = {}
    by_name: dict[str, list[dict]] = {}
    for package in locked_packages():
        packages[normalized(package["name"]), package["version"]] = package
        by_name.setdefault(normalized(package["name"]), []).append(package)
    (project,) = by_name["halo-pipeline"]

    required: dict[str, str] = {}
    todo = [(project, set(EXTRAS))]
    seen: set[tuple[str, str, frozenset[str]]] = set()
    while todo:
        package, extras = todo.pop()
        name, version = normalized(package["name"]), package["version"]
        if (name, version, frozenset(extras)) in seen:
            continue
        seen.add((name, version, frozenset(extras)))
        required[name] = version
        edges = list(package.get("dependencies", []))
        for extra in extras:
            edges += package.get("optional-dependencies", {}).get(extra, [])
        for edge in edges:
            if not applies(edge.get("marker")):
                continue
            target = normalized(edge["name"])
            if "version" in edge:
                dependency = packages[(target, edge["version"])]
            else:
                (dependency,) = by_name[target]
            todo.append((dependency, set(edge.get("extra", []))))
    return required


def installed() -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            versions.setdefault(normalized(name), set()).add(distribution.version)
    return versions


def test_this_environment_is_the_lock():
    """Every locked package installed here at its locked version, and all the project needs
    with its deploy and dev extras installed."""
    locked, required, present = locked_here(), required_here(), installed()

    wrong = {
        name: f"{', '.join(sorted(present[name]))} installed, {version} locked"
        for name, version in sorted(locked.items())
        if name in present and present[name] != {version}
    }
    missing = {name: version for name, version in sorted(required.items()) if name not in present}

    assert not wrong and not missing, (
        f"this environment is not uv.lock's (`make` installs it):\n  wrong: {wrong}\n"
        f"  missing: {missing}"
    )
    assert {"dagster", "duckdb", "pandas", "pytest", "playwright"} <= required.keys()
