"""A two-job local sweep through Hydra's joblib launcher: each job in its own folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_joblib_sweep_runs_get_distinct_folders(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pdesolve", "-m", "hydra/launcher=local_parallel",
           "problem=poisson2d", "problem.n=8,12", "solver=petsc_cg",
           f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib" in proc.stdout + proc.stderr  # the joblib launcher ran the jobs
    results = sorted(tmp_path.glob("*/result.json"))
    assert [p.parent.name for p in results] == ["0", "1"]
    sizes = [json.loads(p.read_text())["sizes"]["unknowns"] for p in results]
    assert sizes == [64, 144]
