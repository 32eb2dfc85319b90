"""The Hydra CLI: compose API runs, result.json keys, solution.vtu, sweeps, config errors."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from pdesolve.cli import (
    CONFIG_DIR,
    FIT_RESULT_KEYS,
    KINDS,
    RECOVER_RESULT_KEYS,
    RESULT_KEYS,
    ConfigError,
    _prepare_command_line,
    run,
    run_kind,
)


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
    assert set(RESULT_KEYS) <= set(data) and data["kind"] == "solve"
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


def test_inverse_problem_run_records_what_recovery_measured(tmp_path):
    overrides = ["+experiment=firenet_compressed_sensing", "problem.n=32", "problem.levels=3",
                 "problem.noise=0.0", "recover.restarts=8"]
    data = run(composed(overrides), tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved == json.loads(json.dumps(data)) and set(RECOVER_RESULT_KEYS) <= set(saved)
    assert data["kind"] == "recover" and data["method"]["name"] == "firenet"
    assert 0.0 < data["relative_error"] < 0.5 and data["iterations"] == 8 * 20
    assert data["status"] == "not_checked" and data["success"] is False  # fixed depth, no test
    assert data["stopping_quantity"] is None and data["stopping_history"] == []
    assert len(data["misfit_norms"]) == 9 and "converged" not in data
    assert not (tmp_path / "solution.vtu").exists()


def test_recover_run_names_its_stopping_quantity(tmp_path):
    overrides = ["problem=compressed_sensing", "problem.n=32", "problem.levels=3", "recover=ista",
                 "recover.maxiter=30"]
    data = run(composed(overrides), tmp_path)
    assert data["stopping_quantity"] == "relative_change" and data["tolerance"] == 1e-8
    assert data["status"] == "not_met" and data["iterations"] == 30
    assert data["stopping_checks"] == list(range(1, 31)) and len(data["stopping_history"]) == 30


def test_fit_run_writes_its_own_fields(tmp_path):
    overrides = ["problem=poisson1d", "problem.n=15", "fit=pinn", "fit.steps=20",
                 "fit.batch=32", "fit.log_every=10", "fit.test_points=500", "fit.progress=false",
                 "model@fit.model=mlp", "fit.model.width=8", "fit.target_error=1e-4"]
    data = run(composed(overrides), tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved == json.loads(json.dumps(data)) and set(FIT_RESULT_KEYS) <= set(saved)
    assert data["status"] == "not_met" and data["success"] is False
    assert data["criteria"] == [{"name": "test_error", "target": 1e-4,
                                 "value": data["test_error"], "met": False}]
    assert data["steps"] == 20 and data["history_steps"] == [0, 10, 20]
    mesh = meshio.read(tmp_path / "solution.vtu")
    assert len(mesh.point_data["u"]) == 17  # the network at the grid, boundary nodes included


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["problem=compressed_sensing"], r"inverse problem.*recover=<name>.*firenet"),
        (["problem=poisson_source", "fit=pinn"], r"inverse problem.*recover=<name>"),
        (["problem=poisson2d", "recover=firenet"], r"PDE problem.*solver=<name>.*fit=<name>"),
        (["problem=oscillatory2d"], r"no linear system.*fit=<name> \(known: pinn\)"),
        (["fit=pinn", "recover=ista"], "not both"),
        (["problem=compressed_sensing", "recover=firenet", "recover.name=pinn"],
         "'pinn' is a fit method.*fit=pinn"),
        (["solver.name=firenet"], "'firenet' is a recover method.*recover=firenet"),
    ],
)
def test_the_kind_of_run_is_checked_before_any_work(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run(composed(overrides), tmp_path)
    assert not (tmp_path / "result.json").exists()


def test_problem_level_methods_are_not_solver_configs():
    for name in ("pinn", "firenet", "ista", "fista", "chambolle_pock"):
        with pytest.raises(ConfigCompositionException, match=name):
            composed([f"solver={name}"])


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
    kind = run_kind(cfg)
    assert cfg.problem.name and cfg[KINDS[kind]].name
    pinn = {"burgers", "allen_cahn", "allen_cahn_marching", "heat2d", "wave", "poisson_holes"}
    assert kind == ("fit" if name.startswith("raf") or name.endswith("_pinn") or name in pinn else
                    "recover" if name.startswith("firenet") else "solve")


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


def test_bad_values_and_unknown_top_level_keys_get_one_clear_line(tmp_path):
    script = str(Path(sys.executable).with_name("pdesolve"))
    cases = [
        (["problem.n=abc"], "problem.n='abc': expected int (its default is 64)"),
        (["solver.rtol=tight"], "solver.rtol='tight': expected float"),
        (["+nosuchgroup=x"], "unknown top-level key 'nosuchgroup'"),
    ]
    for overrides, message in cases:
        out = tmp_path / overrides[0].replace("=", "_").replace("+", "")
        proc = subprocess.run([script, *overrides, f"hydra.run.dir={out}"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines()[-1] == f"pdesolve: {message}" or \
            message in proc.stderr.strip().splitlines()[-1]
        assert not (out / "result.json").exists()


def test_default_cli_problem_is_not_a_grid_eigenvector():
    cfg = composed([])
    assert cfg.problem.solution == "exponential"


def test_an_unusable_output_folder_is_one_line_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = subprocess.run([sys.executable, "-m", "pdesolve", "problem.n=8",
                           f"hydra.run.dir={blocker / 'run'}"], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pdesolve: cannot write to the output folder '{blocker / 'run'}' (hydra.run.dir): "
        f"{blocker} is a file, not a folder"
    ]
    with pytest.raises(ConfigError, match="output folder"):
        run(composed(["+experiment=dcdm2d"]), blocker)  # refused before the solve


def test_a_second_run_into_one_folder_keeps_both_results_with_their_configs(tmp_path, capsys):
    first = run(composed(["problem.n=8"]), tmp_path)
    second = run(composed(["problem.n=9"]), tmp_path, overrides=["problem.n=9"])
    assert "result-2.json, config-2.yaml, solution-2.vtu" in capsys.readouterr().err
    assert json.loads((tmp_path / "result.json").read_text())["sizes"] == first["sizes"]
    assert json.loads((tmp_path / "result-2.json").read_text())["sizes"] == second["sizes"]
    assert OmegaConf.load(tmp_path / "config.yaml").problem.n == 8
    again = tmp_path / "config-2.yaml"
    assert again.read_text().startswith("# pdesolve problem.n=9\n")
    assert OmegaConf.load(again).problem.n == 9
    assert (tmp_path / "solution.vtu").is_file() and (tmp_path / "solution-2.vtu").is_file()


def test_written_files_honour_the_umask(tmp_path):
    from pdesolve.io import write_json

    old = os.umask(0o027)
    try:
        run(composed(["problem.n=8"]), tmp_path / "run")
        path = write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    for p in [path, *(tmp_path / "run").iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, p


def test_command_line_mistakes_are_one_line_naming_what_exists(tmp_path):
    out = f"hydra.run.dir={tmp_path}"
    cases = [
        (["+experiment=raf_oscillatory", "solver.model.activation=tanh"],
         "solver.model.activation=tanh: solver=petsc_cg has no key 'model'; its keys: rtol,"),
        (["problem.resolution=3"], "problem=poisson has no key 'resolution'; its keys: dim, n,"),
        (["problem=poisson7d"], "no such problem config; the known ones: "),
        (["solver=pinn"], "'pinn' is a fit method, not a solver method: select it with fit=pinn"),
    ]  # fmt: skip
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            _prepare_command_line([*overrides, out])


def test_switching_a_choice_drops_the_settings_of_the_old_one(tmp_path, capsys):
    out = f"hydra.run.dir={tmp_path}"
    args = _prepare_command_line(["+experiment=raf_oscillatory", "fit.model.activation=tanh", out])
    assert args[-1] == "~fit.model.activation_options"
    assert "dropped fit.model.activation_options" in capsys.readouterr().err
    kept = ["+experiment=raf_oscillatory", "fit.model.activation=tanh",
            "fit.model.activation_options={}", out]  # fmt: skip
    assert _prepare_command_line(kept)[-1] == f"hydra.run.dir='{tmp_path}'"  # options given
    same = ["+experiment=raf_oscillatory", "fit.model.activation=raf", out]
    assert _prepare_command_line(same)[-1] == f"hydra.run.dir='{tmp_path}'"  # no switch
    args = _prepare_command_line(["+experiment=dcdm2d", "solver=petsc_cg", out])
    assert args[-1] == "~solver.safeguard"  # dcdm's; memory, rtol, maxiter are petsc_cg's too
    cfg = composed(args[:2] + args[-1:])
    assert "safeguard" not in cfg.solver and cfg.solver.name == "petsc_cg"
    record = run(composed([*args[:2], args[-1], "problem.n=16"]), tmp_path)
    assert record["converged"]


def test_help_names_the_program_and_the_compare_command():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", return_hydra_config=True)
    assert cfg.hydra.help.app_name == "pdesolve"
    assert "pdesolve compare --help" in cfg.hydra.help.header
