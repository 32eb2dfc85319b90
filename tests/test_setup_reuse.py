"""experiments/setup_reuse/run.py --quick: every row, and repeated solves that pay no set-up."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "experiments" / "setup_reuse" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("setup_reuse_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_quick_table(bench, tmp_path, one_thread):
    assert bench.main(["--quick", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "setup_reuse.csv") as f:
        rows = list(csv.DictReader(f))
    expected = [(c.problem, c.label) for c in bench.cases(quick=True)]
    assert [(r["problem"], r["solver"]) for r in rows] == expected
    assert len(rows) == 10
    for r in rows:
        assert r["converged"] == "True", r
        assert float(r["repeat_setup_time"]) == 0.0, r  # repeated solves reuse the set-up
        assert int(r["setups"]) == 1, r  # one set-up for the first and all repeated solves
        assert float(r["setup_s"]) > 0.0
        assert float(r["first_solve_s"]) >= float(r["setup_s"])
        assert int(r["repeat_its"]) == int(r["first_its"])  # same b, same x0: same work
        if r["solver"] == "petsc_cg + GAMG":
            assert float(r["first / gamg"]) == 1.0
    table = (tmp_path / "setup_reuse.md").read_text()
    assert "load average" in table and table.count("\n| ") == 11  # header + 10 rows
    with pytest.raises(SystemExit):  # results are not overwritten unless asked
        bench.main(["--quick", "--out", str(tmp_path)])
