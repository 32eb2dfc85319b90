"""The Hydra CLI: compose API runs, result.json keys, solution.vtu, sweeps, config errors."""

import json
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from pdesolve.cli import CONFIG_DIR, RESULT_KEYS, run


def composed(overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="config", overrides=overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["problem=poisson2d", "problem.n=24", "solver=petsc_cg", "solver.pc=gamg"],
        ["problem=poisson3d", "problem.n=8", "solver=scipy_cg"],
        ["problem=diffusion2d", "problem.n=15", "solver=petsc_cg", "solver.pc=icc"],
        ["problem=mesh_poisson", "problem.refine=1", "solver=petsc_cg"],
    ],
)
def test_run_writes_result_and_solution(tmp_path, overrides):
    record = run(composed(overrides), tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert set(RESULT_KEYS) <= set(data)
    assert data == json.loads(json.dumps(record))
    assert data["converged"] and data["reason"] == "CONVERGED_RTOL"
    assert data["relative_residual_norm"] <= 1e-8
    assert len(data["residual_norms"]) >= 2 and data["iterations"] > 0
    assert data["versions"]["petsc"].startswith("3.26")
    mesh = meshio.read(tmp_path / "solution.vtu")
    u = mesh.point_data["u"]
    assert len(u) == len(mesh.points) > data["sizes"]["unknowns"]  # boundary nodes included
    if "exact" in mesh.point_data:
        assert np.max(np.abs(u - mesh.point_data["exact"])) == pytest.approx(data["errors"]["max"])
        assert data["errors"]["max"] < 0.05


def test_mesh_run_reports_fem_errors(tmp_path):
    data = run(composed(["problem=mesh_poisson", "solver=scipy_cg"]), tmp_path)
    assert {"l2", "h1_semi", "max"} <= set(data["errors"])


def test_inverse_problem_run_records_relative_error(tmp_path):
    overrides = ["+experiment=firenet_compressed_sensing", "problem.n=32", "problem.levels=3",
                 "problem.noise=0.0", "solver.restarts=8"]
    data = run(composed(overrides), tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["errors"] == data["errors"]
    assert 0.0 < data["errors"]["relative_error"] < 0.5
    assert data["relative_residual_norm"] is None  # no linear system solved


def test_unknown_config_key_is_an_error():
    with pytest.raises(ConfigCompositionException, match="resolution"):
        composed(["problem.resolution=3"])


def test_unknown_group_option_is_an_error():
    with pytest.raises(ConfigCompositionException, match="poisson7d"):
        composed(["problem=poisson7d"])


def test_experiment_config_composes():
    cfg = composed(["+experiment=poisson2d_gamg"])
    assert cfg.problem.n == 256 and cfg.solver.pc == "gamg" and cfg.solver.rtol == 1e-10


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_config_composes(name):
    cfg = composed([f"+experiment={name}"])
    assert cfg.problem.name and cfg.solver.name


def test_dcdm2d_experiment_through_the_cli(tmp_path):
    data = run(composed(["+experiment=dcdm2d"]), tmp_path)
    assert data["converged"] and data["relative_residual_norm"] <= 1e-6
    assert data["sizes"]["unknowns"] == 128 * 128
    assert data["iterations"] < 634 / 4  # CG's iterations on this system, over four


def test_console_script_multirun_sweep(tmp_path):
    script = Path(sys.executable).with_name("pdesolve")
    subprocess.run(
        [str(script), "-m", "problem=poisson1d", "problem.n=15,31", f"hydra.sweep.dir={tmp_path}"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    results = sorted(tmp_path.glob("*/result.json"))
    assert len(results) == 2
    errors = [json.loads(p.read_text())["errors"]["max"] for p in results]
    sizes = sorted(json.loads(p.read_text())["sizes"]["unknowns"] for p in results)
    assert sizes == [15, 31]
    assert max(errors) / min(errors) == pytest.approx(4.0, rel=0.1)  # second order: h halves
