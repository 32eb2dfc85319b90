"""pdesolve installed from its wheel, not only from a checkout: the configs, the shipped weights and
the sample mesh are package data, so the CLI, ``pdesolve compare``, ``method="dcdm"`` and
``prolongation="learned"`` work from any directory.

The wheel is built from a copy of the package's sources (nothing is written into the checkout)
and installed with ``--no-deps`` into a temporary target; the dependencies come from the running
environment, so nothing is rebuilt or downloaded.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (
    "pdesolve/configs/config.yaml", "pdesolve/configs/experiment/dcdm2d.yaml",
    "pdesolve/configs/compare/default.yaml", "pdesolve/data/dcdm/dcdm2d/model.pt",
    "pdesolve/data/dcdm/dcdm3d/model.pt", "pdesolve/data/learned_multigrid/prolongation.pt",
    "pdesolve/data/meshes/disk.msh",
)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """``(target folder, environment with only the target on PYTHONPATH, working directory)``."""
    tmp = tmp_path_factory.mktemp("installed")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "pdesolve", src / "pdesolve", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("pdesolve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [s for s in SHIPPED if s not in names], "package data missing from the wheel"
    target = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONHOME", None)
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return target, env, cwd


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out


@pytest.mark.slow
def test_cli_runs_a_stored_experiment_with_the_shipped_model(installed):
    target, env, cwd = installed
    run_dir = cwd / "run"
    _run([str(target / "bin" / "pdesolve"), "+experiment=dcdm2d", "problem.n=32",
          f"hydra.run.dir={run_dir}", "write_solution=false"], env, cwd)  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    assert result["solver"]["name"] == "dcdm" and result["converged"]
    assert result["relative_residual_norm"] <= 1e-6


@pytest.mark.slow
def test_compare_and_the_library_use_the_installed_package_data(installed):
    """``pdesolve compare`` (the console script's entry point, in the same process as the library
    calls to save an interpreter start) with the learned prolongation, ``method="dcdm"`` with the
    shipped model, and the sample mesh."""
    target, env, cwd = installed
    report = cwd / "report"
    code = textwrap.dedent(f"""
        import sys
        import pdesolve, pdesolve.resources as res
        from pdesolve.cli import main
        print(pdesolve.__file__, res.config_dir())
        sys.argv = ["pdesolve", "compare", "problems=[diffusion2d]", "sizes=[15]", "out={report}",
                    "solvers={{cg: {{solver: petsc_cg}}, learned: {{solver: multigrid, "
                    "prolongation: learned}}}}", "baseline=cg",
                    "exclude=[petsc_dcdm,hybrid,dcdm,fcg,scipy_cg,deflated_cg]"]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        s = pdesolve.get_problem("pressure_poisson", dim=2, n=24, geometry="obstacles").discretize()
        d = pdesolve.solve(s, method="dcdm", rtol=1e-6, maxiter=300)
        k = pdesolve.get_problem("diffusion", dim=2, n=15, coefficient="lognormal").discretize()
        m = pdesolve.solve(k, method="multigrid", prolongation="learned", rtol=1e-8)
        mesh = pdesolve.get_problem("mesh_poisson").discretize()
        print("RESULT", d.converged, m.converged, mesh.size)
    """)
    out = _run([sys.executable, "-c", code], env, cwd).stdout
    first = out.split("\n", 1)[0].split()
    assert all(Path(p).is_relative_to(target) for p in first)  # the installed copy, no checkout
    assert out.split("RESULT")[1].split() == ["True", "True", str(217 - 48)]  # 48 boundary nodes
    with (report / "results.csv").open() as handle:
        rows = {r["solver"]: r for r in csv.DictReader(handle)}
    assert rows["learned"]["status"] == rows["cg"]["status"] == "ok", rows
    assert float(rows["learned"]["relative_residual"]) <= 1e-8 * (1 + 1e-9)
