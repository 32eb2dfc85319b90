"""PINN training features: refinement, causal and adaptive weights, quasi-Newton resume, hard
initial and periodic constraints, inverse runs, output folders (small test-only problems)."""

import itertools
import math

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.nn.checkpoint import load_checkpoint
from pdesolve.problems.geometry import Interval
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    TimeDependentProblem,
    second_derivative,
    space_time_derivatives,
)
from pdesolve.train.pinn import PINNTrainer
from pdesolve.train.pinn.data import causal_weights
from pdesolve.train.pinn.quasi_newton import BFGS

pytestmark = pytest.mark.usefixtures("one_thread")

MLP = {"name": "mlp", "width": 12, "depth": 2, "activation": "tanh"}
SMALL = {"model": MLP, "batch": 64, "log_every": 1, "progress": False, "test_grid": (11, 6),
         "monitor_points": 100, "optimizer": {"name": "adam", "lr": 1e-2}}  # fmt: skip


class Heat1D(TimeDependentProblem):
    """u_t = k u_xx on [0, 1] x [0, 1], u = 0 at x = 0, 1, u0 = sin(πx) (test only)."""

    name = "heat_test"

    def __init__(self, k=0.1):
        self.unknown_parameters = {"k": k}
        super().__init__(Interval(0, 1), (0.0, 1.0), k=k)

    def initial_value(self, x):
        return torch.sin(math.pi * x[:, 0])

    @property
    def has_exact_solution(self):
        return True

    def exact_solution(self, xt):
        k = self.unknown_parameters["k"]
        return torch.exp(-k * math.pi**2 * xt[:, 1]) * torch.sin(math.pi * xt[:, 0])

    def pde_residual(self, u, xt, params=None):
        xt, _, ux, ut = space_time_derivatives(u, xt)
        return ut - self.parameter("k", params) * second_derivative(ux[:, 0], xt, 0)

    def _compute_reference(self, n=33, nt=9):
        x, t = np.linspace(0, 1, n), np.linspace(0, 1, nt)
        k = self.unknown_parameters["k"]
        return ReferenceSolution((x, t), np.outer(np.sin(np.pi * x), np.exp(-k * np.pi**2 * t)))


class Advection(TimeDependentProblem):
    """u_t + c u_x = 0 on the periodic interval [-1, 1] (test only)."""

    name = "advection_test"

    def __init__(self, c=0.5):
        self.unknown_parameters = {"c": c}
        super().__init__(Interval(-1, 1), (0.0, 1.0), periodic=(True,), c=c)

    def initial_value(self, x):
        return torch.sin(math.pi * x[:, 0])

    @property
    def has_exact_solution(self):
        return True

    def exact_solution(self, xt):
        return torch.sin(math.pi * (xt[:, 0] - self.unknown_parameters["c"] * xt[:, 1]))

    def pde_residual(self, u, xt, params=None):
        _, _, ux, ut = space_time_derivatives(u, xt)
        return ut + self.parameter("c", params) * ux[:, 0]

    def _compute_reference(self, **options):
        raise NotImplementedError


def test_rar_adds_the_points_of_largest_residual():
    trainer = PINNTrainer(Heat1D(), steps=3, **SMALL, rar={"every": 2, "candidates": 300,
                                                             "points": 10})
    trainer.fit()  # one refinement at step 2
    assert trainer.points.added.shape == (10, 2) and trainer.history["points"][-1] == 74
    state = trainer.rar_generator.get_state()
    before = trainer.points.added.clone()
    added = trainer.refine()
    trainer.rar_generator.set_state(state)  # the same candidates again
    cand = trainer.problem.domain.sample_interior(300, trainer.rar_generator)
    r = trainer.residual(cand).detach().abs()
    chosen = (cand[:, None, :] == added[None, :, :]).all(-1).any(1)
    assert int(chosen.sum()) == 10
    assert float(r[chosen].min()) >= float(r[~chosen].max())  # the largest residuals, no others
    assert torch.equal(trainer.points.added, torch.cat([before, added]))
    assert trainer.points.interior().shape[0] == 64 + 20  # every later batch contains them


def test_causal_weights_are_monotone_in_time():
    gen = torch.Generator().manual_seed(0)
    r, t = torch.randn(500, generator=gen, dtype=torch.float64), torch.rand(500, generator=gen)
    w, _ = causal_weights(r, t.double(), (0.0, 1.0), segments=10, epsilon=5.0)
    assert w[0] == 1 and bool((w[1:] <= w[:-1]).all()) and float(w[-1]) < 1e-3
    trainer = PINNTrainer(Heat1D(), steps=4, **SMALL, causal={"segments": 8, "epsilon": 1.0})
    h = trainer.fit()
    assert all(0 < v <= 1 for v in h["causal_min_weight"][1:])
    with pytest.raises(ValueError, match="time-dependent"):
        PINNTrainer(pdesolve.get_problem("poisson", dim=1), steps=1, causal={"segments": 4})


@pytest.mark.slow
def test_frozen_causal_weights_give_the_quasi_newton_phase_one_loss(tmp_path):
    causal = {"segments": 8, "epsilon": 20.0, "quasi_newton": "frozen"}
    opts = {**SMALL, "steps": 3, "bfgs_steps": 5, "causal": causal}
    full = PINNTrainer(Heat1D(), **opts)
    h = full.fit()
    qn = [i for i, p in enumerate(h["phase"]) if p == "bfgs"]
    weights = [h["causal_min_weight"][i] for i in qn]
    assert weights[0] < 1 and weights == [weights[0]] * len(qn)  # held for the whole phase
    losses = [h["train_loss"][i] for i in qn]
    # a line search on one fixed function: the loss never rises
    assert all(b <= a for a, b in itertools.pairwise(losses))
    # killed inside the phase and resumed: the held weights come back from the checkpoint
    cut = PINNTrainer(Heat1D(), **opts, output_dir=tmp_path, checkpoint_every=5, plots=False)
    cut.config["bfgs_steps"] = 2
    cut.fit()
    resumed = PINNTrainer(Heat1D(), **opts, resume=tmp_path / "checkpoint.pt")
    assert resumed.fit()["train_loss"][1:] == h["train_loss"][1:]
    with pytest.raises(ValueError, match="live or frozen"):
        PINNTrainer(Heat1D(), **SMALL, steps=1, causal={"quasi_newton": "held"})


def test_adaptive_weights_follow_the_gradient_ratio():
    trainer = PINNTrainer(Heat1D(), steps=4, constraint="soft", initial_constraint="soft",
                          adaptive_weights="annealing", adaptive_options={"every": 2},
                          **SMALL)  # fmt: skip
    h = trainer.fit()
    assert h["loss_weights"][0] == {"boundary": 1.0, "initial": 1.0, "data": 1.0}
    assert h["loss_weights"][-1]["boundary"] != 1.0 and h["loss_weights"][-1]["initial"] != 1.0
    assert np.isfinite(h["train_loss"][1:]).all()


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["lbfgs_steps", "bfgs_steps"])
def test_quasi_newton_run_killed_and_resumed_equals_the_uninterrupted_one(tmp_path, phase):
    problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
    opts = {"model": MLP, "batch": 32, "log_every": 1, "progress": False, "test_points": 100,
            "monitor_points": 50, "steps": 3, "lbfgs_options": {"max_iter": 4}}  # fmt: skip
    full = PINNTrainer(problem, **{phase: 6}, **opts)
    h_full = full.fit()
    # killed inside the quasi-Newton phase, after the checkpoint at step 5
    first = PINNTrainer(problem, **{phase: 6}, output_dir=tmp_path / "a", checkpoint_every=5,
                        **opts)  # fmt: skip
    first.config[phase] = 2
    first.fit()
    assert load_checkpoint(tmp_path / "a" / "checkpoint.pt")["step"] == 5
    resumed = PINNTrainer(problem, **{phase: 6}, resume=tmp_path / "a" / "checkpoint.pt", **opts)
    assert resumed.step == 5
    h_res = resumed.fit()
    assert h_res["step"] == h_full["step"] and h_res["train_loss"][1:] == h_full["train_loss"][1:]
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    # after the phase: a finished run continued with a larger budget
    done = PINNTrainer(problem, **{phase: 3}, output_dir=tmp_path / "b", **opts)
    done.fit()
    more = PINNTrainer(problem, **{phase: 6}, output_dir=tmp_path / "b", resume=True, **opts)
    h_more = more.fit()
    assert h_more["train_loss"][1:] == h_full["train_loss"][1:]
    assert h_full["phase"][-1] == ("lbfgs" if phase == "lbfgs_steps" else "bfgs")


QN_RESAMPLED = {"steps": 3, "rar": {"every": 2, "candidates": 200, "points": 5},
                "qn_batch": {"points": 40, "resample_every": 2}}


@pytest.mark.slow
def test_resampled_quasi_newton_batch_is_new_and_keeps_the_refinement_points():
    trainer = PINNTrainer(Heat1D(), bfgs_steps=5, **{**SMALL, **QN_RESAMPLED})
    h = trainer.fit()  # refinement before Adam step 3, then before BFGS iterations 3 and 5
    assert h["points"] == [64, 64, 64, 69, 45, 45, 50, 50, 55]  # Adam's 64, then BFGS's 40
    first, second = trainer._fixed_batch(0)[0], trainer._fixed_batch(1)[0]
    assert first.shape == second.shape == (40 + 15, 2)
    assert torch.equal(first[40:], trainer.points.added)  # the refinement points, in both
    assert torch.equal(second[40:], trainer.points.added)
    assert float((first[:40] - second[:40]).abs().min()) > 0  # a fresh draw, no point kept
    # the same run on a fixed batch agrees up to the first resample, not after it
    fixed = PINNTrainer(Heat1D(), bfgs_steps=3, **{**SMALL, **QN_RESAMPLED,
                                                   "qn_batch": {"points": 40}}).fit()
    assert fixed["train_loss"][1:6] == h["train_loss"][1:6]
    assert fixed["train_loss"][6] != h["train_loss"][6]
    # the quasi-Newton batch of the unresampled default is the 64-point set of seed + 1
    plain_run = PINNTrainer(Heat1D(), bfgs_steps=1, **SMALL, rar=QN_RESAMPLED["rar"])
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(plain_run._fixed_batch()[0],
                       plain_run.problem.domain.sample_interior(64, gen))
    # the Hessian is kept across a resample or reset to the scaled identity
    bfgs = trainer.bfgs
    H = bfgs.qn["H"].clone()
    bfgs.new_objective()
    assert bfgs.qn["grad"] is None and torch.equal(bfgs.qn["H"], H)
    bfgs.new_objective(reset=True)
    assert bfgs.qn["H"] is None and bfgs.qn["fresh"]


@pytest.mark.slow
@pytest.mark.parametrize("hessian", ["keep", "reset"])
def test_resampled_quasi_newton_run_killed_and_resumed_equals_the_uninterrupted_one(
        tmp_path, hessian):
    opts = {**SMALL, **QN_RESAMPLED,
            "qn_batch": {**QN_RESAMPLED["qn_batch"], "hessian": hessian}}
    full = PINNTrainer(Heat1D(), bfgs_steps=7, **opts)
    h_full = full.fit()
    # killed at the checkpoint of step 5, just before the first step on the second batch
    first = PINNTrainer(Heat1D(), bfgs_steps=7, output_dir=tmp_path, checkpoint_every=5, **opts)
    first.config["bfgs_steps"] = 2
    first.fit()
    resumed = PINNTrainer(Heat1D(), bfgs_steps=7, resume=True, output_dir=tmp_path, **opts)
    assert resumed.step == 5
    h_res = resumed.fit()
    assert h_res["train_loss"][1:] == h_full["train_loss"][1:]
    assert h_res["points"] == h_full["points"] and h_full["points"][-1] == 40 + 20
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_bfgs_minimises_a_quadratic_to_rounding_in_n_steps():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    a, b = q @ q.T + 6 * torch.eye(6, dtype=torch.float64), torch.randn(6, generator=gen,
                                                                        dtype=torch.float64)
    for variant in ("bfgs", "ssbfgs"):
        w = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
        opt = BFGS([w], variant=variant, c2=0.1)

        def closure(opt=opt, w=w):
            opt.zero_grad()
            loss = 0.5 * w @ a @ w - b @ w
            loss.backward()
            return loss

        for _ in range(12):
            opt.step(closure)
        torch.testing.assert_close(w.detach(), torch.linalg.solve(a, b), rtol=1e-9, atol=1e-9)


def test_hard_initial_and_periodic_constraints_are_exact():
    trainer = PINNTrainer(Advection(), steps=2, **SMALL)
    assert trainer.constraint == "hard" and trainer.initial_constraint == "hard"
    trainer.fit()
    x = torch.linspace(-1, 1, 9, dtype=torch.float64)
    t = torch.rand(9, dtype=torch.float64)
    u0 = trainer.evaluate(torch.stack([x, torch.zeros(9, dtype=torch.float64)], 1))
    np.testing.assert_allclose(u0, np.sin(np.pi * x.numpy()), atol=1e-14)
    left = trainer.evaluate(torch.stack([-torch.ones(9, dtype=torch.float64), t], 1))
    right = trainer.evaluate(torch.stack([torch.ones(9, dtype=torch.float64), t], 1))
    np.testing.assert_allclose(left, right, atol=1e-13)
    heat = PINNTrainer(Heat1D(), steps=1, **SMALL)
    xb = heat.problem.domain.sample_boundary(50, torch.Generator().manual_seed(0))
    assert np.abs(heat.evaluate(xb)).max() < 1e-15  # hard Dirichlet data in space-time


@pytest.mark.slow
def test_time_dependent_training_and_inverse_constant(tmp_path):
    trainer = PINNTrainer(Heat1D(), steps=300, bfgs_steps=20, output_dir=tmp_path,
                          **{**SMALL, "batch": 128, "log_every": 320})  # fmt: skip
    h = trainer.fit()
    assert h["relative_l2"][-1] < 1e-2 < h["relative_l2"][0]
    assert (tmp_path / "solution.png").stat().st_size > 1000
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["initial_constraint"] == "hard"
    # inverse: k from 100 noisy (1 %) observations, starting at 5x the truth
    inverse = PINNTrainer(Heat1D(k=0.1), steps=400, bfgs_steps=20, inverse=True,
                          observations={"n": 100, "noise": 0.01, "seed": 1},
                          parameter_init={"k": 0.5}, **{**SMALL, "batch": 128,
                                                         "log_every": 420})  # fmt: skip
    hi = inverse.fit()
    assert hi["parameter_error"][0] == pytest.approx(4.0)
    assert inverse.parameter_errors()["k"] < 0.03  # measured 0.9 %
    assert inverse.summary()["identified"]["k"] == pytest.approx(0.1, rel=0.03)


@pytest.mark.parametrize("activation", ["tanh", "sin", "raf"])
def test_every_activation_trains_on_a_time_dependent_problem(activation):
    model = {"name": "resnet", "width": 12, "activation": activation}
    trainer = PINNTrainer(Advection(), steps=10, **{**SMALL, "model": model, "log_every": 5,
                                                    "optimizer": {"name": "adam", "lr": 3e-3}})
    h = trainer.fit()
    assert np.isfinite(h["train_loss"][1:]).all() and h["train_loss"][-1] < h["train_loss"][1]


def test_output_folder_is_resumed_explicitly_or_refused(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=1)
    opts = {"model": MLP, "batch": 16, "log_every": 2, "progress": False, "test_points": 100,
            "monitor_points": 50}
    PINNTrainer(problem, steps=2, output_dir=tmp_path, **opts).fit()
    with pytest.raises(FileExistsError, match="already holds a PINN run.*resume"):
        PINNTrainer(problem, steps=4, output_dir=tmp_path, **opts)
    with pytest.raises(ValueError, match="differs in: batch"):
        PINNTrainer(problem, steps=4, output_dir=tmp_path, resume=True, **{**opts, "batch": 8})
    again = PINNTrainer(problem, steps=4, output_dir=tmp_path, resume=True, **opts)
    assert again.step == 2 and again.fit()["step"][-1] == 4
    with pytest.raises(ValueError, match="resume=True.*output_dir"):
        PINNTrainer(problem, steps=1, resume=True, **opts)


def test_bad_training_options():
    heat = Heat1D()
    with pytest.raises(ValueError, match="rar takes every, candidates and points"):
        PINNTrainer(heat, steps=1, rar={"each": 3}, **SMALL)
    with pytest.raises(ValueError, match="qn_batch takes points, sampling"):
        PINNTrainer(heat, steps=1, qn_batch={"every": 3}, **SMALL)
    with pytest.raises(ValueError, match="hessian must be keep or reset"):
        PINNTrainer(heat, steps=1, qn_batch={"hessian": "drop"}, **SMALL)
    with pytest.raises(ValueError, match="sampling must be uniform, lhs"):
        PINNTrainer(heat, steps=1, qn_batch={"sampling": "random"}, **SMALL)
    with pytest.raises(ValueError, match="refine=True refines with the rar sizes"):
        PINNTrainer(heat, steps=1, qn_batch={"resample_every": 5, "refine": True}, **SMALL)
    with pytest.raises(ValueError, match="needs a problem with unknown_parameters"):
        PINNTrainer(pdesolve.get_problem("poisson", dim=1), steps=1, inverse=True)
    with pytest.raises(ValueError, match="parameter_init names.*'nu'"):
        PINNTrainer(heat, steps=1, inverse=True, parameter_init={"nu": 1.0}, **SMALL)
    with pytest.raises(ValueError, match="periodic on every axis"):
        PINNTrainer(Advection(), steps=1, constraint="soft", **SMALL)
    with pytest.raises(ValueError, match="forward' is not available: inverse problems"):
        PINNTrainer(heat, steps=1, derivatives="forward", inverse=True, **SMALL)
    with pytest.raises(ValueError, match="adaptive_weights must be"):
        PINNTrainer(heat, steps=1, adaptive_weights="ntk2", **SMALL)
