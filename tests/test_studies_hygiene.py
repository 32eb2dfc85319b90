"""The studies under experiments/ (and the examples) write tables, CSV files and figures only
through the library.

CSV files go through :func:`pdesolve.io.write_csv` / :func:`~pdesolve.io.read_csv` (or
``write_table``), markdown tables through :func:`pdesolve.io.markdown_table`, figures through
:mod:`pdesolve.plotting`; so a study never imports ``csv`` or ``matplotlib`` itself, never calls
``np.savetxt`` and never spells out a table's ``|---|`` separator line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted([*(ROOT / "experiments").rglob("*.py"), *(ROOT / "examples").rglob("*.py")])

#: Scripts that still do one of these by hand, with what they do. Each entry is to be deleted
#: once its script is converted (the test fails on an entry that no longer applies).
ALLOWED: dict[str, set[str]] = {}

SEPARATOR = re.compile(r"\|\s*:?-{3}|-{3}:?\s*\|")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of the module, classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def violations(source: str) -> dict[str, list[int]]:
    """What a study does by hand (``csv``, ``savetxt``, ``table``, ``matplotlib``) -> lines."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found: dict[str, list[int]] = {}
    for node in ast.walk(tree):
        kind = None
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
            kind = "csv" if "csv" in roots else "matplotlib" if "matplotlib" in roots else None
        elif isinstance(node, ast.ImportFrom) and not node.level:
            root = (node.module or "").split(".")[0]
            kind = root if root in ("csv", "matplotlib") else None
        elif isinstance(node, ast.Attribute) and node.attr == "savetxt":
            kind = "savetxt"
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docs and SEPARATOR.search(node.value)):  # fmt: skip
            kind = "table"
        if kind:
            found.setdefault(kind, []).append(node.lineno)
    return found


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_study_uses_the_library_helpers(path: Path):
    name = str(path.relative_to(ROOT))
    found = violations(path.read_text())
    allowed = ALLOWED.get(name, set())
    by_hand = {kind: lines for kind, lines in found.items() if kind not in allowed}
    assert not by_hand, (
        f"{name} writes by hand: {by_hand} (lines); use pdesolve.io.write_csv / read_csv / "
        "markdown_table / write_table and pdesolve.plotting.subplots / save_figure"
    )
    stale = allowed - set(found)
    assert not stale, f"{name} no longer does {sorted(stale)} by hand: delete it from ALLOWED"


def test_allowed_scripts_exist():
    assert {p for p in ALLOWED if not (ROOT / p).is_file()} == set()


def test_the_check_catches_hand_written_output():
    hand = (
        "import numpy as np\n"
        "from csv import DictWriter\n"
        "np.savetxt('a.csv', [1.0])\n"
        'lines = ["| n | error |", "|---|---|"]\n'
        "header = '| a |' + '---|' * 3\n"
    )
    assert violations(hand) == {"csv": [2], "savetxt": [3], "table": [4, 5]}
    clean = (
        '"""A study.\n\n| n | error |\n|---|---|\n"""\n'
        "from pdesolve.io import markdown_table, write_csv\n"
        "from pdesolve.plotting import save_figure, subplots\n"
        "rule = '-' * 60\n"
    )
    assert violations(clean) == {}


def test_the_documented_study_example_runs(capsys):
    text = (ROOT / "docs" / "development.md").read_text().split("## Writing a study")[1]
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    exec(compile(block, "docs/development.md", "exec"), {})
    assert capsys.readouterr().out.splitlines()[:3] == [
        "| n | iterations | error |", "|---|---|---|", "| 15 | 30 | 0.00444 |"]
