"""`mpiexec -n 2 pdesolve ...`: one distributed PETSc solve, same answer as one rank."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest

pytestmark = pytest.mark.mpi


def run_cli(tmp_path: Path, name: str, ranks: int) -> tuple[dict, np.ndarray]:
    out = tmp_path / name
    script = str(Path(sys.executable).with_name("pdesolve"))
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    assert mpiexec, "mpiexec not found: MPICH is part of the set-up"
    cmd = [script, "problem=poisson2d", "problem.n=48", "solver=petsc_cg", "solver.rtol=1e-10",
           f"hydra.run.dir={out}"]  # fmt: skip
    if ranks > 1:
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "result.json").read_text())
    return record, meshio.read(out / "solution.vtu").point_data["u"]


def test_two_ranks_match_one_rank(tmp_path):
    one, u1 = run_cli(tmp_path, "one", 1)
    two, u2 = run_cli(tmp_path, "two", 2)
    assert one["sizes"]["ranks"] == 1 and two["sizes"]["ranks"] == 2
    assert one["converged"] and two["converged"]
    assert one["iterations"] == two["iterations"]
    assert np.linalg.norm(u1 - u2) <= 1e-10 * np.linalg.norm(u1)
    # only rank 0 wrote: one run folder with one result, nothing else created beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert len(list((tmp_path / "two").rglob("result.json"))) == 1
