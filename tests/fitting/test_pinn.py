"""The PINN fit method: accuracy on small problems, determinism, resume, constraints, bad input."""

import csv
import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import pdesolve
from pdesolve.cli import CONFIG_DIR, run
from pdesolve.nn.checkpoint import load_checkpoint
from pdesolve.train.pinn import PINNTrainer, TrainingDivergedError, load_pinn

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = {"model": {"name": "mlp", "width": 16, "depth": 2, "activation": "tanh"},
         "batch": 64, "log_every": 10, "progress": False, "test_points": 2000}


def test_1d_poisson_reaches_1e_3():
    problem = pdesolve.get_problem("poisson", dim=1, n=63, solution="sine")
    result = pdesolve.fit(problem, method="pinn", model="mlp", width=16, depth=2,
                          activation="tanh", steps=300, lbfgs_steps=10, batch=64,
                          optimizer={"name": "adam", "lr": 1e-2}, log_every=50, progress=False)
    assert result.test_error < 1e-3 and result.discrete_errors["relative_l2"] < 1e-3  # test, grid
    assert result.status.value == "not_checked" and not result.success  # no criterion stated
    assert result.steps == 310 and result.discrete_values.shape == (63,)
    res = result.history["residual_rms"]
    assert res[-1] < 1e-2 * res[0] and result.residual_rms == res[-1]  # fell by two orders
    assert result.history_steps[0] == 0 and result.history_steps[-1] == 310


def test_2d_poisson_raf_resnet_small_error():
    problem = pdesolve.get_problem("poisson", dim=2, n=15, solution="polynomial")
    result = pdesolve.fit(problem, method="pinn", model="resnet", width=12, activation="raf",
                          activation_options={"gaussian_width": 0.5}, steps=200, batch=128,
                          optimizer={"name": "adam", "lr": 5e-3}, log_every=50, progress=False,
                          test_points=2000)
    assert result.test_error < 0.05
    assert result.history["relative_l2"][0] > 0.5  # it did learn


def test_same_seed_same_numbers_other_seed_differs():
    problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
    h1 = PINNTrainer(problem, steps=20, seed=3, **SMALL).fit()
    h2 = PINNTrainer(problem, steps=20, seed=3, **SMALL).fit()
    h3 = PINNTrainer(problem, steps=20, seed=4, **SMALL).fit()
    assert h1["train_loss"][1:] == h2["train_loss"][1:] and h1["relative_l2"] == h2["relative_l2"]
    assert h1["relative_l2"][-1] != h3["relative_l2"][-1]


@pytest.mark.parametrize("lbfgs_steps", [0, 4])
def test_resume_continues_identically(tmp_path, lbfgs_steps):
    problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
    opts = {**SMALL, "schedule": "step", "schedule_options": {"step_size": 5, "gamma": 0.5},
            "lbfgs_steps": lbfgs_steps, "log_every": 2}
    full = PINNTrainer(problem, steps=20, **opts)
    h_full = full.fit()
    first = PINNTrainer(problem, steps=20, output_dir=tmp_path, checkpoint_every=12, **opts)
    # interrupt after the checkpoint at step 12: run a trainer whose budget ends there
    first.config["steps"] = 12
    first.config["lbfgs_steps"] = 0
    first.fit()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 12
    resumed = PINNTrainer(problem, steps=20, resume=tmp_path / "checkpoint.pt", **opts)
    assert resumed.step == 12
    h_res = resumed.fit()
    assert h_res["step"] == h_full["step"]
    assert h_res["train_loss"][1:] == h_full["train_loss"][1:]
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_with_other_config_is_refused(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=1)
    PINNTrainer(problem, steps=5, output_dir=tmp_path, **SMALL).fit()
    with pytest.raises(ValueError, match="differs in: batch"):
        PINNTrainer(problem, steps=5, resume=tmp_path / "checkpoint.pt", **{**SMALL, "batch": 32})


def test_outputs_and_self_describing_checkpoint(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
    trainer = PINNTrainer(problem, steps=20, output_dir=tmp_path, **SMALL)
    trainer.fit()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 10, 20]
    assert float(rows[-1]["relative_l2"]) == pytest.approx(trainer.relative_l2())
    assert (tmp_path / "training.png").stat().st_size > 1000
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["versions"]["pdesolve"] == pdesolve.__version__ and ckpt["step"] == 20
    model, again = load_pinn(tmp_path / "checkpoint.pt")  # no user code needed
    x = trainer.test_x[:50]
    with torch.no_grad():
        # float64 weights restored exactly (not through float32 parameters)
        torch.testing.assert_close(model(x), trainer.model(x), rtol=1e-13, atol=1e-15)
    assert again.params == problem.params


@pytest.mark.parametrize("name,params", [("poisson", {"dim": 2, "solution": "sine"}),
                                         ("low_regularity", {"dim": 3})])  # zero boundary data
def test_hard_constraint_is_exact_on_the_boundary(name, params):
    problem = pdesolve.get_problem(name, **params)
    trainer = PINNTrainer(problem, steps=3, **SMALL)
    assert trainer.constraint == "hard"
    xb = problem.domain.sample_boundary(200, torch.Generator().manual_seed(0))
    assert np.max(np.abs(trainer.evaluate(xb))) < 1e-15


def test_soft_constraint_for_nonzero_boundary_data():
    problem = pdesolve.get_problem("poisson", dim=1, n=31, solution="exponential")
    with pytest.raises(ValueError, match="non-zero boundary values"):
        PINNTrainer(problem, steps=1, constraint="hard", **SMALL)
    trainer = PINNTrainer(problem, steps=300, optimizer={"name": "adam", "lr": 1e-2},
                          **{**SMALL, "log_every": 100})
    assert trainer.constraint == "soft"
    history = trainer.fit()
    assert history["relative_l2"][-1] < 1e-2 < history["relative_l2"][0]


@pytest.mark.parametrize("sampling", ["uniform", "lhs", "sobol", "halton"])
def test_fixed_collocation_sets(sampling):
    problem = pdesolve.get_problem("low_regularity", dim=2)
    trainer = PINNTrainer(problem, steps=2, sampling=sampling, **SMALL)
    a, b = trainer.sampler.interior(), trainer.sampler.interior()
    assert torch.equal(a, b) and a.shape == (64, 2) and float(a.norm(dim=1).max()) < 1
    trainer.fit()


def test_curveball_through_make_optimizer_lowers_the_loss():
    problem = pdesolve.get_problem("poisson", dim=1, solution="sine")
    trainer = PINNTrainer(problem, steps=30, optimizer={"name": "curveball"},
                          sampling="sobol", **{**SMALL, "log_every": 5})
    history = trainer.fit()
    assert history["phase"][-1] == "curveball"
    assert history["train_loss"][-1] < 0.05 * history["train_loss"][1]
    assert history["relative_l2"][-1] < 0.5 * history["relative_l2"][0]


def test_float32_and_eigenvalue_problem():
    problem = pdesolve.get_problem("laplace_eigen", dim=2)
    result = pdesolve.fit(problem, method="pinn", steps=150, dtype="float32", batch=256,
                          model={"name": "mlp", "width": 16, "depth": 2, "activation": "tanh"},
                          optimizer={"name": "adam", "lr": 1e-2}, log_every=50,
                          progress=False, test_points=2000)
    exact = 2 * np.pi**2
    assert result.info["config"]["dtype"] == "float32" and result.discrete_values is None
    assert result.predict(np.full((3, 2), 0.5)).dtype == np.float64
    assert abs(result.info["eigenvalue"] - exact) / exact < 0.05
    assert result.test_error < 0.1


def test_nonfinite_loss_names_the_step_and_keeps_the_checkpoint(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=1)
    trainer = PINNTrainer(problem, steps=20, output_dir=tmp_path, checkpoint_every=5, **SMALL)
    draw, calls = trainer.sampler.interior, [0]

    def poisoned():
        calls[0] += 1
        x = draw()
        return x * float("nan") if calls[0] > 7 else x

    trainer.sampler.interior = poisoned
    with pytest.raises(TrainingDivergedError, match="step 7.*kept at .*checkpoint.pt"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


class NoPDE(pdesolve.get_problem("poisson", dim=1).__class__):
    """A problem whose continuous form is missing (like the inverse problems)."""

    name = "no_pde"

    def source(self, x):
        raise NotImplementedError("no PDE source")


def test_bad_input():
    with pytest.raises(ValueError, match="no continuous PDE form.*no PDE source"):
        pdesolve.fit(NoPDE(dim=1), method="pinn", steps=1)
    with pytest.raises(ValueError, match="no continuous form"):
        PINNTrainer(object(), steps=1)
    problem = pdesolve.get_problem("poisson", dim=1)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        pdesolve.fit(problem, method="pinn", activation="swish", steps=1)
    with pytest.raises(ValueError, match="unknown collocation method"):
        PINNTrainer(problem, steps=1, sampling="grid")
    with pytest.raises(TypeError, match="not a LinearSystem"):
        pdesolve.fit(problem.discretize(), method="pinn")
    with pytest.raises(ValueError, match="lbfgs_steps"):
        PINNTrainer(problem, steps=1, optimizer="lbfgs")


def test_cli_runs_the_pinn(tmp_path):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "problem=poisson1d", "problem.n=31", "fit=pinn", "fit.steps=100",
            "fit.batch=64", "fit.log_every=50", "fit.test_points=1000",
            "model@fit.model=raf_resnet", "fit.model.width=12",
            "fit.model.activation_options.gaussian_width=0.5", "fit.progress=false",
            f"fit.output_dir={tmp_path}/t",
        ])  # fmt: skip
    record = run(cfg, tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["kind"] == "fit" and data["status"] == "not_checked" and not data["success"]
    assert data["steps"] == 100 and data["history_steps"] == [0, 50, 100]
    assert data["sizes"]["unknowns"] == 31 and data["errors"]["max"] < 0.5
    assert record["test_error"] < 0.5 and data["loss_history"][0] is None  # no loss at step 0
    assert "converged" not in data and "solver" not in data
    assert (tmp_path / "t" / "metrics.csv").exists()


JET_PROBLEMS = [
    ("poisson", {"dim": 2, "solution": "polynomial"}),
    ("poisson", {"dim": 1, "solution": "exponential"}),
    ("diffusion", {"dim": 2, "coefficient": "smooth"}), ("low_regularity", {"dim": 5}),
    ("oscillatory", {"dim": 2, "frequency": 2}), ("laplace_eigen", {"dim": 3}),
]  # fmt: skip


@pytest.mark.parametrize("name,params", JET_PROBLEMS)
@pytest.mark.parametrize("activation", ["raf", "tanh"])
def test_forward_laplacian_residual_equals_autograd(name, params, activation):
    problem = pdesolve.get_problem(name, **params)
    model = {"name": "resnet", "width": 12, "activation": activation,
             "activation_options": {"gaussian_width": 0.3} if activation == "raf" else {}}
    fast = PINNTrainer(problem, model=model, steps=1, progress=False, derivatives="auto")
    slow = PINNTrainer(problem, model=model, steps=1, progress=False, derivatives="autograd")
    assert fast.derivatives == "forward" and slow.derivatives == "autograd"
    x = fast.test_x[:300]
    r_fast, r_slow = fast.residual(x), slow.residual(x)
    torch.testing.assert_close(r_fast, r_slow, rtol=1e-10, atol=1e-10 * float(r_slow.abs().max()))
    assert fast.residual_rms() == pytest.approx(slow.residual_rms(), rel=1e-12)


def test_forward_and_autograd_training_agree_to_rounding():
    problem = pdesolve.get_problem("oscillatory", dim=2, frequency=1)
    opts = {**SMALL, "model": {"name": "resnet", "width": 12, "activation": "raf",
                               "activation_options": {"gaussian_width": 0.5}}}
    h_fast = PINNTrainer(problem, steps=20, derivatives="forward", **opts).fit()
    h_slow = PINNTrainer(problem, steps=20, derivatives="autograd", **opts).fit()
    np.testing.assert_allclose(h_fast["train_loss"][1:], h_slow["train_loss"][1:], rtol=1e-8)
    np.testing.assert_allclose(h_fast["relative_l2"], h_slow["relative_l2"], rtol=1e-8)


class OwnResidual(pdesolve.get_problem("poisson", dim=1).__class__):
    """A problem with its own autograd residual and no jet form: forward mode is unavailable."""

    name = "own_residual"

    def pde_residual(self, u, x):
        return super().pde_residual(u, x)


def test_forward_derivatives_unavailable_falls_back_or_says_why():
    problem = OwnResidual(dim=1)
    assert PINNTrainer(problem, steps=1, **SMALL).derivatives == "autograd"
    with pytest.raises(ValueError, match="defines its own pde_residual"):
        PINNTrainer(problem, steps=1, derivatives="forward", **SMALL)
    with pytest.raises(ValueError, match="derivatives must be one of"):
        PINNTrainer(pdesolve.get_problem("poisson", dim=1), steps=1, derivatives="jax")


def test_device_is_a_parameter_not_hard_coded():
    problem = pdesolve.get_problem("poisson", dim=1)
    trainer = PINNTrainer(problem, steps=2, device="cpu", **SMALL)
    assert {p.device.type for p in trainer.model.parameters()} == {"cpu"}
    assert trainer.test_x.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            PINNTrainer(problem, steps=1, device="cuda", **SMALL)
    else:  # pragma: no cover - only on a GPU machine
        trainer = PINNTrainer(problem, steps=5, device="cuda", **SMALL)
        trainer.fit()
        assert {p.device.type for p in trainer.model.parameters()} == {"cuda"}


def test_progress_bar_shows_loss_and_error(capsys):
    problem = pdesolve.get_problem("poisson", dim=1)
    PINNTrainer(problem, steps=20, **{**SMALL, "progress": True}).fit()
    err = capsys.readouterr().err
    assert "pinn" in err and "loss=" in err and "err=" in err


@pytest.mark.parametrize("experiment", ["raf_smooth2d", "raf_low_regularity", "raf_oscillatory",
                                        "raf_eigen"])  # fmt: skip
def test_raf_experiment_configs_compose_and_run(tmp_path, experiment):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[
            f"+experiment={experiment}", "fit.steps=3", "fit.batch=32",
            "fit.log_every=1", "fit.test_points=200", "fit.progress=false",
            "fit.model.width=12", "write_solution=false",
        ])  # fmt: skip
    assert cfg.fit.name == "pinn" and cfg.fit.model.activation == "raf"
    if experiment == "raf_oscillatory":
        cfg.fit.model.activation_options.sizes = [3, 3, 3, 3]  # width 12
    record = run(cfg, tmp_path)
    assert record["steps"] == 3 and np.isfinite(record["test_error"])


def test_throughput_benchmark_names_the_deepxde_install_when_missing(monkeypatch, tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "experiments" / "raf" / "throughput.py"
    spec = importlib.util.spec_from_file_location("raf_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BENCH_SITE", tmp_path / "nothing")
    monkeypatch.setitem(sys.modules, "deepxde", None)  # import deepxde -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install --no-deps --target .*deepxde"):
        module.import_deepxde()


@pytest.mark.parametrize("case,constraint", [("laplace", "hard"), ("manufactured", "hard"),
                                             ("laplace", "auto")])  # auto: hard where a lift exists
def test_hard_constraint_with_a_lift_meets_nonzero_data_on_a_shape_domain(case, constraint):
    problem = pdesolve.get_problem("poisson_holes", case=case, mesh_size=0.1)
    trainer = PINNTrainer(problem, steps=2, constraint=constraint,
                          **{**SMALL, "test_points": 200})
    assert trainer.constraint == "hard" and trainer.derivatives == "forward"
    trainer.fit()
    xb = problem.domain.sample_boundary(300, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(trainer.evaluate(xb), problem.boundary_value(xb).numpy(),
                               atol=1e-12)  # fmt: skip
    # the forward-mode Laplacian of lift + D N equals the nested-autograd one
    x = problem.domain.sample_interior(20, torch.Generator().manual_seed(2))
    u, _, lap = trainer.model.jet(x)
    torch.testing.assert_close(u, trainer.model(x))
    xg = x.clone().requires_grad_(True)
    with torch.enable_grad():
        nested = pdesolve.problems.base.laplacian(trainer.model(xg), xg)
    torch.testing.assert_close(lap, nested.detach(), rtol=1e-9, atol=1e-9)
    assert trainer.cpu_elapsed > 0 and trainer.summary()["train_cpu_time"] == trainer.cpu_elapsed


def test_hard_boundary_and_initial_data_of_the_2d_heat_problem_are_exact():
    problem = pdesolve.get_problem("heat", dim=2)
    trainer = PINNTrainer(problem, steps=2, constraint="hard", test_grid=(5, 3),
                          **{k: v for k, v in SMALL.items() if k != "test_points"})  # fmt: skip
    trainer.fit()
    gen = torch.Generator().manual_seed(0)
    xb = problem.domain.sample_boundary(200, gen)
    np.testing.assert_allclose(trainer.evaluate(xb), problem.boundary_value(xb).numpy(),
                               atol=1e-12)  # fmt: skip
    x0 = problem.domain.sample_initial(200, gen)
    np.testing.assert_allclose(trainer.evaluate(x0), problem.initial_value(x0[:, :-1]).numpy(),
                               atol=1e-12)  # fmt: skip


def test_solution_plot_leaves_the_holes_of_a_shape_domain_blank():
    from pdesolve.train.pinn.callbacks import triangulation

    plate = pdesolve.problems.geometry.Rectangle((0, 0), (1, 1)) - \
        pdesolve.problems.geometry.Disk((0.5, 0.5), 0.25)
    pts = plate.sample_interior(400, torch.Generator().manual_seed(0)).numpy()
    in_hole = lambda c: np.hypot(c[:, 0] - 0.5, c[:, 1] - 0.5) < 0.25  # noqa: E731
    whole = triangulation(pts)  # Delaunay fills the convex hull, the hole too
    assert in_hole(pts[whole.triangles].mean(axis=1)).any()
    mesh = triangulation(pts, plate.contains)
    kept = mesh.triangles[~mesh.mask]
    assert not in_hole(pts[kept].mean(axis=1)).any() and len(kept) > 0.8 * len(mesh.triangles)
