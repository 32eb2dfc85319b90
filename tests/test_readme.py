"""The README: its tables list exactly what the registries hold, and its examples run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_readme_command_line_examples_run(tmp_path):
    """The README's Hydra block: every line composes, and every solve line runs in-process at
    n = 31 (a `-m` sweep's first value; the DCDM experiment and the PINN line run in
    test_cli.py), converging in more than one iteration (the default manufactured solution is
    not a grid eigenvector)."""
    from hydra import compose, initialize_config_dir

    from pdesolve.cli import CONFIG_DIR, run

    block = README.read_text().split("**Hydra experiment configs**")[1].split("```")[1]
    lines = [ln.split("#")[0].split() for ln in block.splitlines() if "bin/pdesolve" in ln]
    assert len(lines) >= 5
    runs = []
    for words in lines:
        args = words[words.index(next(w for w in words if w.endswith("bin/pdesolve"))) + 1:]
        args = [a.split(",")[0] for a in args if a != "-m"]  # a sweep: its first value
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=args)
        if "+experiment=dcdm2d" not in args and "fit=pinn" not in args:
            runs.append([a for a in args if not a.startswith("problem.n=")] + ["problem.n=31"])
    assert len(runs) >= 3
    for k, overrides in enumerate(runs):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
        record = run(cfg, tmp_path / str(k))
        assert {p.name for p in (tmp_path / str(k)).iterdir()} >= {"result.json", "config.yaml"}
        if record["kind"] == "solve":
            assert record["converged"] and record["iterations"] > 1, overrides
