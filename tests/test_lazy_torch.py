"""torch is imported only by the code paths that need it: a PETSc solve of a grid Poisson problem
(one process, and two MPI ranks through the command line) runs without it, and the registries
still list every solver, preconditioner, problem and method."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

# an import of torch fails with the chain of pdesolve frames that asked for it
BLOCK = """
import sys, traceback
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            chain = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()
                     if "pdesolve" in f.filename]
            raise ImportError("torch imported by " + " <- ".join(reversed(chain)))
blocker = NoTorch()
sys.meta_path.insert(0, blocker)
"""

SCRIPT = BLOCK + """
import importlib, json, pkgutil
import pdesolve
from hydra import compose, initialize_config_dir
from pdesolve.cli import CONFIG_DIR, run

problem = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial")
result = pdesolve.solve(problem, method="petsc_cg", pc="gamg", rtol=1e-10)
with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
    cfg = compose("config", ["problem=poisson2d", "problem.n=15", "solver=petsc_cg",
                             "solver.pc=gamg"])
record = run(cfg, sys.argv[1])
names = {"solvers": pdesolve.list_solvers(), "preconditioners": pdesolve.list_preconditioners(),
         "problems": pdesolve.list_problems(), "fit": pdesolve.list_fit_methods(),
         "recover": pdesolve.list_recovery_methods()}
out = {"torch_loaded": "torch" in sys.modules, "converged": result.converged,
       "max_error": result.info["error"]["max"], "cli_iterations": record["iterations"],
       "names": names}
sys.meta_path.remove(blocker)  # now every module, learned ones included
for package in ("solvers", "problems", "fitting", "recovery"):
    pkg = importlib.import_module(f"pdesolve.{package}")
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"pdesolve.{package}.{info.name}")
out["names_after_import"] = {
    "solvers": pdesolve.list_solvers(), "preconditioners": pdesolve.list_preconditioners(),
    "problems": pdesolve.list_problems(), "fit": pdesolve.list_fit_methods(),
    "recover": pdesolve.list_recovery_methods()}
out["fcg_solver"] = type(pdesolve.get_solver("fcg")).__name__  # a declared, torch solver
print(json.dumps(out))
"""


def test_poisson_petsc_solve_never_imports_torch(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch_loaded"] is False
    assert out["converged"] and out["max_error"] < 1e-3 and out["cli_iterations"] > 0
    names = out["names"]
    assert names["solvers"] == ["dcdm", "deflated_cg", "fcg", "hybrid", "multigrid", "petsc_cg",
                                "petsc_dcdm", "scipy_cg"]  # fmt: skip
    assert names["preconditioners"] == ["coarse_grid", "dcdm_network", "deflation", "gamg",
                                        "hypre", "icc", "ilu", "jacobi", "multigrid", "none",
                                        "pinn_correction"]  # fmt: skip
    assert names["fit"] == ["pinn"]
    assert names["recover"] == ["chambolle_pock", "firenet", "fista", "ista"]
    assert {"poisson", "diffusion", "heat", "burgers", "mesh_poisson"} <= set(names["problems"])
    # importing every module registers nothing that the registries did not already list
    assert out["names_after_import"] == names
    assert out["fcg_solver"] == "FCG"
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["versions"]["torch"]  # from the package metadata, torch not imported


@pytest.mark.mpi
@pytest.mark.slow
def test_two_rank_cli_solve_never_imports_torch(tmp_path):
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    assert mpiexec, "mpiexec not found: MPICH is part of the set-up"
    code = BLOCK + "import runpy\nsys.argv[0] = 'pdesolve'\nrunpy.run_module('pdesolve', " \
        "run_name='__main__')\n"
    args = ["problem=poisson2d", "problem.n=31", "solver=petsc_cg", "solver.pc=gamg",
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", code, *args], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["sizes"]["world_size"] == 2 and result["sizes"]["assembly"] == "distributed"
    assert result["converged"]
