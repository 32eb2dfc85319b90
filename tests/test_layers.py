"""The package's layers: no import cycles, no private names across modules, layer rules.

The rules: ``linalg`` imports nothing of pdesolve but itself and the registry; ``discretize``
only ``linalg``; ``problems`` nothing of ``solvers``/``train``/``cli``; ``nn`` nothing of
``solvers``/``problems``/``train``; nothing imports the CLI. Imports inside functions count too.
A module importing its own parent package (as registries do) is not a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pdesolve"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(imported module, imported names)`` for every import in ``path`` (any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    package = _module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, [alias.name for alias in node.names]))
    return out


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(module: str, names: list[str]) -> list[str]:
    """The pdesolve modules an import statement loads (``from pkg import mod`` loads pkg.mod)."""
    if not module.startswith("pdesolve"):
        return []
    targets = [module] if module in MODULES else []
    targets += [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    return targets


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = set()
        for module, names in _imports(path):
            for target in _resolve(module, names):
                if target != name and not name.startswith(target + "."):  # parent packages
                    edges.add(target)
        graph[name] = edges
    return graph


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_names_imported_across_modules():
    offenders = []
    for name, path in MODULES.items():
        for module, names in _imports(path):
            if module.startswith("pdesolve"):
                offenders += [f"{name}: from {module} import {n}" for n in names
                              if n.startswith("_") and n != "__version__"]  # fmt: skip
    assert not offenders, "\n".join(offenders)


FORBIDDEN = {
    "pdesolve.linalg": ("pdesolve.discretize", "pdesolve.problems", "pdesolve.solvers",
                        "pdesolve.nn", "pdesolve.train", "pdesolve.cli", "pdesolve.io"),
    "pdesolve.discretize": ("pdesolve.problems", "pdesolve.solvers", "pdesolve.nn",
                            "pdesolve.train", "pdesolve.cli"),
    "pdesolve.problems": ("pdesolve.solvers", "pdesolve.train", "pdesolve.cli"),
    "pdesolve.nn": ("pdesolve.solvers", "pdesolve.problems", "pdesolve.train", "pdesolve.cli"),
}  # fmt: skip


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_rules(layer):
    offenders = []
    for name, path in MODULES.items():
        if name != layer and not name.startswith(layer + "."):
            continue
        for module, names in _imports(path):
            for target in _resolve(module, names) or [module]:
                if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[layer]):
                    offenders.append(f"{name} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_nothing_imports_the_cli():
    offenders = [
        name for name, path in MODULES.items()
        if name not in ("pdesolve.cli", "pdesolve.__main__")
        and any("pdesolve.cli" in _resolve(m, n) for m, n in _imports(path))
    ]  # fmt: skip
    assert not offenders
