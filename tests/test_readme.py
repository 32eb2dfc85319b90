"""The README: its tables list exactly what the registries hold, and its examples run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pdesolve
from pdesolve.problems import PROBLEMS
from pdesolve.solvers import PRECONDITIONERS, SOLVERS

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_after(heading: str) -> list[str]:
    text = README.read_text()
    start = text.index(heading)
    names = []
    for line in text[start:].splitlines()[1:]:
        if names and not line.startswith("|"):
            break
        match = re.match(r"\| `([a-z0-9_]+)` \|", line)
        if match:
            names.append(match.group(1))
    return names


def test_tables_list_the_registries():
    pdesolve.list_preconditioners()
    assert sorted(_table_after("Linear solvers (")) == SOLVERS.names()
    assert sorted(_table_after("Preconditioners (")) == PRECONDITIONERS.names()
    assert sorted(_table_after("Problems (")) == PROBLEMS.names()
    assert sorted(_table_after("Fit methods (")) == pdesolve.list_fit_methods()
    assert sorted(_table_after("Recovery methods (")) == pdesolve.list_recovery_methods()


def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
        for line, printed in zip(
            [c for c in re.findall(r"print\(.*\)\s*#\s*(.+)", block)], out.getvalue().splitlines(),
            strict=False,
        ):
            assert printed == line.strip(), (printed, line)
