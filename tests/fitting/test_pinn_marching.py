"""Time-marching PINNs: accuracy on the manufactured heat case, exact continuity at the window
joints, the composite saved and loaded with load_pinn, resume after a kill, bad input."""

import json

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.train.pinn import load_pinn
from pdesolve.train.pinn.marching import MarchingTrainer
from pdesolve.train.pinn.windows import MarchingPINN, window_edges

pytestmark = pytest.mark.usefixtures("one_thread")

HEAT = dict(model={"name": "mlp", "width": 12, "depth": 2}, steps=200, bfgs_steps=40,
            bfgs_options={"variant": "ssbfgs"}, batch=64, sampling="uniform",
            optimizer={"name": "adam", "lr": 1e-2}, log_every=50, test_grid=[21, 11],
            progress=False, plots=False)  # fmt: skip
TINY = dict(model={"name": "mlp", "width": 6, "depth": 2}, steps=6, bfgs_steps=3, batch=16,
            sampling="uniform", optimizer={"name": "adam", "lr": 1e-2}, log_every=2,
            monitor_points=20, test_grid=[9, 7], progress=False, plots=False)  # fmt: skip


@pytest.fixture(scope="module")
def heat():
    return pdesolve.get_problem("heat", dim=1)


@pytest.mark.slow
def test_two_windows_reach_the_measured_bound_on_manufactured_heat(tmp_path, heat):
    marching = MarchingTrainer(heat, windows=2, output_dir=tmp_path, **HEAT)
    summary = marching.fit()
    # measured 6.5e-3 (window errors 5.0e-3 and 1.1e-2) with these 2 x 240 steps
    assert summary["relative_l2"] < 1.3e-2
    assert [w["t_span"] for w in summary["windows"]] == [[0.0, 0.5], [0.5, 1.0]]
    assert all(w["relative_l2"] < 2.5e-2 for w in summary["windows"])
    # the composite's own error against the exact solution, recomputed here
    pts = heat.test_points(21, 11)
    exact = heat.exact_solution(torch.as_tensor(pts)).numpy()
    u = marching.model.predict(pts)
    assert np.linalg.norm(u - exact) / np.linalg.norm(exact) == pytest.approx(
        summary["relative_l2"], rel=1e-12)
    # the run folder: per-window rows, the summary, and one loading call for the composite
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3
    assert json.loads((tmp_path / "summary.json").read_text())["relative_l2"] == pytest.approx(
        summary["relative_l2"])
    model, problem = load_pinn(tmp_path)
    assert isinstance(model, MarchingPINN) and problem.name == "heat"
    np.testing.assert_allclose(model.predict(pts), u, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="one window of a time-marching run"):
        load_pinn(tmp_path / "window_01")


def test_continuity_at_the_joints_is_exact(heat):
    marching = MarchingTrainer(heat, windows=[0.0, 0.3, 0.55, 1.0], **TINY)
    marching.fit()
    x = np.linspace(0.0, 1.0, 33)[:, None]
    for k, t in ((1, 0.3), (2, 0.55)):
        xt = torch.as_tensor(np.hstack([x, np.full_like(x, t)]))
        with torch.no_grad():
            left, right = marching.models[k - 1](xt), marching.models[k](xt)
        assert float((left - right).abs().max()) <= 1e-12
        below, above = marching.model.predict(np.hstack([x, np.full_like(x, t - 1e-9)])), \
            marching.model.predict(np.hstack([x, np.full_like(x, t + 1e-9)]))
        assert np.abs(below - above).max() < 1e-6  # and the composite is continuous across it
    # the first window starts from the problem's own initial data
    u0 = marching.model.predict(np.hstack([x, np.zeros_like(x)]))
    np.testing.assert_allclose(u0, heat.initial_value(torch.as_tensor(x)).numpy(), atol=1e-14)
    # each point is evaluated by the window its time falls in
    t = torch.tensor([0.0, 0.3, 0.31, 0.55, 0.9, 1.0], dtype=torch.float64)
    assert marching.model.window_of(t).tolist() == [0, 0, 1, 1, 2, 2]


class Killed(RuntimeError):
    pass


@pytest.mark.slow
def test_a_killed_run_resumed_equals_the_uninterrupted_one(tmp_path, heat):
    whole = MarchingTrainer(heat, windows=3, output_dir=tmp_path / "whole", checkpoint_every=2,
                            **TINY)  # fmt: skip
    whole.fit()

    def kill(window, trainer):
        if window == 1 and trainer.step == 6:  # after its checkpoint at step 6
            raise Killed

    with pytest.raises(Killed):
        MarchingTrainer(heat, windows=3, output_dir=tmp_path / "cut", checkpoint_every=2,
                        callback=kill, **TINY).fit()  # fmt: skip
    first = (tmp_path / "cut" / "window_00" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="unfinished"):
        load_pinn(tmp_path / "cut")
    with pytest.raises(FileExistsError, match="already holds a time-marching run"):
        MarchingTrainer(heat, windows=3, output_dir=tmp_path / "cut", **TINY)
    with pytest.raises(ValueError, match="differs in: options"):
        MarchingTrainer(heat, windows=3, output_dir=tmp_path / "cut", resume=True,
                        **{**TINY, "batch": 8})  # fmt: skip
    seen = []
    resumed = MarchingTrainer(heat, windows=3, output_dir=tmp_path / "cut", checkpoint_every=2,
                              resume=True, callback=lambda k, tr: seen.append((k, tr.step)),
                              **TINY)  # fmt: skip
    resumed.fit()
    assert min(seen) == (1, 6)  # window 0 is not retrained, window 1 goes on from step 6
    assert (tmp_path / "cut" / "window_00" / "checkpoint.pt").read_bytes() == first
    pts = heat.test_points(9, 7)
    np.testing.assert_array_equal(resumed.model.predict(pts), whole.model.predict(pts))
    a = json.loads((tmp_path / "whole" / "summary.json").read_text())
    b = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert a["relative_l2"] == b["relative_l2"]


def test_budget_is_split_over_the_windows(heat):
    marching = MarchingTrainer(heat, windows=2, budget=0.4, shares=[1, 3], adam_fraction=0.5,
                               **{**TINY, "steps": 10**6, "bfgs_steps": 10**6})  # fmt: skip
    summary = marching.fit()
    first, second = summary["windows"]
    for w, share in ((first, 0.1), (second, 0.3)):
        assert w["reason"] == "time" and share <= w["train_cpu_time"] < share + 0.5
        assert 0 < w["first_phase_steps"] < w["steps"]  # Adam, then the quasi-Newton phase
    assert summary["train_cpu_time"] == pytest.approx(first["train_cpu_time"]
                                                      + second["train_cpu_time"])


def test_bad_input_is_refused_before_training(tmp_path, heat):
    with pytest.raises(ValueError, match="windows >= 1"):
        MarchingTrainer(heat, windows=0, **TINY)
    with pytest.raises(ValueError, match="stationary"):
        MarchingTrainer(pdesolve.get_problem("poisson", dim=1), windows=2, **TINY)
    with pytest.raises(ValueError, match="first order in time"):
        MarchingTrainer(pdesolve.get_problem("wave"), windows=2, **TINY)
    with pytest.raises(ValueError, match="run from t0=0.0 to T=1.0"):
        MarchingTrainer(heat, windows=[0.0, 0.5, 0.9], **TINY)
    with pytest.raises(ValueError, match="increase strictly"):
        MarchingTrainer(heat, windows=[0.0, 0.6, 0.4, 1.0], **TINY)
    with pytest.raises(ValueError, match="2 positive numbers"):
        MarchingTrainer(heat, windows=2, budget=10, shares=[1, 2, 3], **TINY)
    with pytest.raises(ValueError, match="positive number of CPU seconds"):
        MarchingTrainer(heat, windows=2, budget=-1, **TINY)
    with pytest.raises(ValueError, match="give output_dir"):
        MarchingTrainer(heat, windows=2, resume=True, **TINY)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        MarchingTrainer(heat, windows=2, output_dir=tmp_path, resume=True, **TINY)
    with pytest.raises(ValueError, match="inverse"):
        MarchingTrainer(pdesolve.get_problem("heat", coefficient="constant"), windows=2,
                        inverse=True, **TINY)  # fmt: skip
    with pytest.raises(TypeError, match="unknown options \\['widht'\\]"):
        MarchingTrainer(heat, windows=2, widht=3, **TINY)
    with pytest.raises(ValueError, match="set per window"):
        MarchingTrainer(heat, windows=2, init_from="x.pt", **TINY)
    assert window_edges(3, (0.0, 1.0))[-1] == 1.0
