"""The PINN experiment configs through the CLI: model, metrics and plots in the run folder, the
saved model loads with one call and evaluates u at user points; a used folder is refused unless
resumed, and a resume with changed options is refused."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from pdesolve.cli import CONFIG_DIR, run
from pdesolve.train.pinn import load_pinn

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

TINY = ["fit.steps=3", "fit.bfgs_steps=1", "fit.batch=32", "fit.log_every=2",
        "fit.monitor_points=50", "fit.test_points=200", "fit.model.width=8", "fit.progress=false"]
CHEAP = {  # coarse classical solutions: the test checks the plumbing, not the accuracy
    "burgers": ["+fit.reference={n: 128, dt: 0.002, n_save: 10, estimate: false}",
                "fit.test_grid=[17,6]", "fit.boundary_batch=8", "fit.qn_batch.points=64"],
    "allen_cahn": ["+fit.reference={n: 64, dt: 0.005, n_save: 10, estimate: false}",
                   "fit.test_grid=[17,6]", "fit.causal.segments=4"],
    "allen_cahn_marching": ["+fit.reference={n: 64, dt: 0.005, n_save: 10, estimate: false}",
                            "fit.test_grid=[17,6]", "fit.causal.segments=4"],
    "heat2d": ["fit.test_grid=[5,3]"],
    "wave": ["fit.test_grid=[9,5]"],
    "poisson_holes": ["problem.mesh_size=0.1", "fit.boundary_batch=16"],
}


def _compose(name, extra=()):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="config",
                       overrides=[f"+experiment={name}", *TINY, *CHEAP[name], *extra])


@pytest.mark.parametrize("name", sorted(set(CHEAP) - {"allen_cahn_marching"}))
def test_experiment_writes_the_run_folder_and_the_model_loads(tmp_path, name):
    record = run(_compose(name), tmp_path)
    assert record["kind"] == "fit" and record["steps"] == 4 and record["test_error"] is not None
    for out in ("result.json", "checkpoint.pt", "metrics.csv", "training.png", "summary.json"):
        assert (tmp_path / out).is_file(), out
    assert (tmp_path / "solution.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["relative_l2"] == pytest.approx(record["test_error"])
    model, problem = load_pinn(tmp_path)  # one call: the folder (or its checkpoint.pt)
    rng = np.random.default_rng(0)
    lo, hi = (np.asarray(v, dtype=float) for v in problem.domain.bounding_box)
    points = lo + (hi - lo) * rng.random((7, problem.dim))  # e.g. (x, t) pairs
    u = model.predict(points)
    assert u.shape == (7,) and np.isfinite(u).all()
    if name == "burgers":  # the hard initial condition holds exactly
        x = np.linspace(-1, 1, 5)
        u0 = model.predict(np.stack([x, np.zeros(5)], 1))
        np.testing.assert_allclose(u0, -np.sin(np.pi * x), atol=1e-15)


def test_time_marching_experiment_writes_its_windows_and_loads(tmp_path):
    extra = ["fit.marching.windows=2", "fit.marching.budget=null", "fit.log_every=1"]
    record = run(_compose("allen_cahn_marching", extra), tmp_path)
    assert record["kind"] == "fit" and record["steps"] == 8  # 2 windows x (3 + 1)
    for out in ("result.json", "marching.json", "metrics.csv", "training.png", "summary.json",
                "solution.png", "window_00/checkpoint.pt", "window_01/checkpoint.pt"):
        assert (tmp_path / out).is_file(), out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["relative_l2"] == pytest.approx(record["test_error"])
    assert [w["t_span"] for w in summary["windows"]] == [[0.0, 0.5], [0.5, 1.0]]
    model, problem = load_pinn(tmp_path)
    assert problem.name == "allen_cahn"
    x = np.linspace(-1, 1, 5)
    u0 = model.predict(np.stack([x, np.zeros(5)], 1))  # the hard initial condition holds
    np.testing.assert_allclose(u0, x**2 * np.cos(np.pi * x), atol=1e-15)
    assert model.predict(np.stack([x, np.full(5, 0.75)], 1)).shape == (5,)
    with pytest.raises(FileExistsError, match="already holds a time-marching run"):
        run(_compose("allen_cahn_marching", extra), tmp_path)
    resumed = run(_compose("allen_cahn_marching", [*extra, "fit.resume=true",
                                                   f"fit.output_dir={tmp_path}"]),
                  tmp_path / "again")  # fmt: skip
    assert resumed["test_error"] == pytest.approx(record["test_error"], rel=1e-12)


def test_used_run_folder_is_refused_or_resumed(tmp_path):
    run(_compose("wave"), tmp_path)
    with pytest.raises(FileExistsError, match="already holds a PINN run"):
        run(_compose("wave"), tmp_path)
    with pytest.raises(ValueError, match="differs in: batch"):
        run(_compose("wave", ["fit.resume=true", "fit.batch=16"]), tmp_path)
    # a new run folder (its own result.json) continuing the training kept in the first one
    again = tmp_path / "again"
    record = run(_compose("wave", ["fit.resume=true", "fit.bfgs_steps=3",
                                   f"fit.output_dir={tmp_path}"]), again)
    assert record["steps"] == 6 and (again / "result.json").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["step"] == 6
