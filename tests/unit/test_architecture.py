"""The layout rule of docs/architecture.md, checked on the source: every service has the same
file set, and each module imports only what its layer may (data flows one way: entry points
→ use cases and views → domain and store). Read with `ast`, so nothing is imported or run.

When this fails, the message names the module, the import and the rule; move the code to the
layer it belongs to rather than widening the rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "matcher", "allowance")

# What every service has, with one role each (docs/architecture.md, "One shape").
FILE_SET = (
    "api.py",
    "handlers.py",
    "sweepers.py",
    "usecases",
    "views.py",
    "domain",
    "store.py",
    "schemas.py",
    "app.py",
    "settings.py",
    "migrations",
)

# Which layers a layer may import, inside its own service. `app` (wiring) and `__main__`
# may import anything of their service.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "domain": frozenset({"domain"}),
    "settings": frozenset({"domain"}),
    "schemas": frozenset({"domain", "schemas"}),
    "store": frozenset({"domain", "settings", "store"}),
    "usecases": frozenset({"domain", "settings", "store", "usecases", "adapters"}),
    "views": frozenset({"domain", "settings", "store", "schemas", "views", "adapters"}),
    "adapters": frozenset({"domain", "settings", "store", "adapters"}),
    "handlers": frozenset({"domain", "settings", "usecases"}),
    "sweepers": frozenset({"domain", "settings", "usecases", "views"}),
    "api": frozenset({"domain", "settings", "schemas", "usecases", "views", "api"}),
}

# Modules other than the file set, and the layer each belongs to. Keep this short: a module
# that fits none of the layers is a sign the code wants to live elsewhere.
EXTRA_LAYER: dict[str, dict[str, str]] = {
    "registry": {"console": "api", "sweepers": "sweepers"},
    "matcher": {"sweepers": "sweepers", "notify": "adapters", "contract": "schemas"},
    "allowance": {
        "sweepers": "sweepers",
        "exports": "views",
        "payout_exports": "views",
        "payees": "adapters",
        "console": "api",
    },
}

# Layers that must not talk to Postgres themselves (no SQL in routes or subscribers).
NO_DATABASE = frozenset({"domain", "settings", "schemas", "handlers", "sweepers", "api"})
# The only `shared` modules a domain module may use: pure code, no I/O.
SHARED_PURE = frozenset({"shared.seoul", "shared.gwangsan", "shared.money"})


def _package(service: str) -> Path:
    return ROOT / "services" / service / service


def _modules(service: str) -> list[tuple[str, Path]]:
    """(dotted name inside the service, path) of every module of the service."""
    base = _package(service)
    out = []
    for path in sorted(base.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = path.relative_to(base).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append((".".join(parts), path))
    return out


def _layer(service: str, dotted: str) -> str | None:
    head = dotted.split(".")[0] if dotted else ""
    if head in ("", "app", "__main__"):
        return None  # the package itself, wiring and entry: anything goes
    return EXTRA_LAYER[service].get(head, head)


def _imports(path: Path, dotted: str, service: str) -> list[tuple[int, str]]:
    """Absolute names imported by a module (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = [service, *dotted.split(".")]
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = [f"{module}.{a.name}" for a in node.names]
            # `from matcher import store` names the layer in the alias, not the module.
            found.extend((node.lineno, n if module == service else module) for n in names)
    return found


def _violations(service: str) -> list[str]:
    others = set(SERVICES) - {service}
    problems: list[str] = []
    for dotted, path in _modules(service):
        layer = _layer(service, dotted)
        where = f"{path.relative_to(ROOT)}"
        for line, name in _imports(path, dotted, service):
            top = name.split(".")[0]
            if top in others:
                problems.append(f"{where}:{line} imports {name}: services never import each other")
            if top in ("devstack", "tools", "tests", "bench"):
                problems.append(f"{where}:{line} imports {name}: runtime code never imports {top}")
            if layer is None:
                continue
            if layer not in MAY_IMPORT:
                problems.append(f"{where}: module of no known layer ({layer}); see EXTRA_LAYER")
                break
            if top == service:
                target = _layer(service, ".".join(name.split(".")[1:]))
                if target is None and name.split(".")[1:2] == ["app"]:
                    problems.append(f"{where}:{line} imports {name}: only __main__ imports app")
                elif target is not None and target not in MAY_IMPORT[layer]:
                    problems.append(
                        f"{where}:{line} imports {name}: {layer} may import only"
                        f" {sorted(MAY_IMPORT[layer])}"
                    )
            if layer in NO_DATABASE and top == "asyncpg":
                problems.append(f"{where}:{line} imports asyncpg: {layer} does no SQL; use store")
            if layer == "domain":
                pure = top in sys.stdlib_module_names or top == service
                if top == "shared":
                    pure = any(name == m or name.startswith(m + ".") for m in SHARED_PURE)
                if not pure:
                    problems.append(f"{where}:{line} imports {name}: domain is pure (stdlib only)")
    return problems


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_file_set(service: str) -> None:
    """A newcomer who has read one service has read all three: the same files, one role each."""
    missing = [name for name in FILE_SET if not (_package(service) / name).exists()]
    assert not missing, f"{service} lacks {missing}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_layer_imports_only_what_it_may(service: str) -> None:
    """Data flows one way: api/handlers → usecases/views → domain/store; no SQL in entry
    points, no I/O in the domain, no service importing another."""
    problems = _violations(service)
    assert not problems, "\n".join(problems)


def test_shared_knows_no_service_and_no_dev_tool() -> None:
    """`shared/` is what every service uses; it never reaches into one of them, nor into the
    dev-only launcher, the tools or the tests."""
    problems = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in (*SERVICES, "devstack", "tools", "tests", "bench"):
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not problems, "\n".join(problems)


def test_the_rule_checker_sees_a_violation() -> None:
    """The checker itself: a route module importing the store is reported."""
    layer = _layer("matcher", "api")
    assert layer == "api" and "store" not in MAY_IMPORT[layer]
    assert _layer("allowance", "exports") == "views"
    assert _layer("registry", "usecases.postings") == "usecases"
