"""The hybrid smoother + corrector solver (Markidis), and PINN transfer learning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import pdesolve
from pdesolve.solvers.hybrid import CoarseGridCorrection, linear_interpolation
from pdesolve.train.pinn import PINNTrainer
from pdesolve.train.spectral import band_errors


@pytest.fixture(scope="module")
def system64():
    return pdesolve.get_problem("poisson", dim=2, n=64, solution="polynomial").discretize()


def _monotone_after(norms: np.ndarray, skip: int) -> bool:
    tail = np.asarray(norms)[skip:]
    return bool(np.all(np.diff(tail) < 0))


def test_coarse_grid_hybrid_converges_to_1e8_monotonically(system64):
    result = pdesolve.solve(system64, method="hybrid", pc="coarse_grid", rtol=1e-8,
                            maxiter=100)
    assert result.converged and result.reason.name == "CONVERGED_RTOL"
    true_res = np.linalg.norm(system64.b - system64.A @ result.x)
    assert true_res <= 1e-8 * system64.b_norm
    assert result.residual_norms[-1] == pytest.approx(true_res, rel=1e-10)
    assert _monotone_after(result.residual_norms, 0)
    # a two-grid method: a grid-independent handful of iterations
    assert result.iterations <= 15
    # Galerkin coarse correction is the A-orthogonal projection: the line search gives α = 1
    assert np.allclose(result.info["alphas"], 1.0)
    assert result.info["error"]["max"] < 1e-4  # discretization error of the 64² grid




def test_pinn_hybrid_converges_to_1e8(system64, one_thread):
    options = {"width": 32, "depth": 3, "steps": 10, "first_steps": 200, "batch": 512,
               "lr": 5e-3, "seed": 0}
    result = pdesolve.solve(system64, method="hybrid", pc={"name": "pinn_correction", **options},
                            nu=4, rtol=1e-8, maxiter=150)
    norms = result.residual_norms
    assert result.converged, (result.iterations, norms[-1] / system64.b_norm)
    assert norms[-1] <= 1e-8 * system64.b_norm
    # energy line search: every outer iteration reduces the true residual after the first few
    assert _monotone_after(norms, 3)
    # ... and the PINN correction does real work: the smoother alone is nowhere near after as
    # many outer iterations
    plain = pdesolve.solve(system64, method="hybrid", pc="none", nu=4, rtol=1e-8,
                           maxiter=result.iterations)
    assert plain.residual_norms[-1] > 1e4 * norms[-1]


@pytest.mark.parametrize("smoother", ["gauss_seidel", "red_black", "jacobi"])
def test_no_corrector_reproduces_plain_smoother(system64, smoother):
    A, b = system64.A.tocsr(), system64.b
    nu, outer = 3, 6
    result = pdesolve.solve(system64, method="hybrid", pc="none", smoother=smoother, nu=nu,
                            maxiter=outer, rtol=1e-12)
    assert result.iterations == outer and not result.converged
    # an independent smoother: scipy triangular solves in the given ordering
    n = 64
    if smoother == "red_black":
        i, j = np.divmod(np.arange(n * n), n)
        perm = np.concatenate([np.flatnonzero((i + j) % 2 == 0), np.flatnonzero((i + j) % 2)])
    else:
        perm = np.arange(n * n)
    Ap = A[perm][:, perm]
    lower = sp.tril(Ap, format="csr")
    x = np.zeros_like(b)
    history = [np.linalg.norm(b)]
    for _ in range(outer):
        for _ in range(nu):
            r = b - A @ x
            if smoother == "jacobi":
                x = x + (2.0 / 3.0) * r / A.diagonal()
            else:
                d = np.empty_like(r)
                d[perm] = spla.spsolve_triangular(lower, r[perm], lower=True)
                x = x + d
        history.append(np.linalg.norm(b - A @ x))
    np.testing.assert_allclose(result.residual_norms, history, rtol=1e-10)
    np.testing.assert_allclose(result.x, x, rtol=1e-9, atol=1e-14)


def test_linear_interpolation_reproduces_linear_functions():
    P = linear_interpolation(9, 4)
    xc, xf = np.arange(1, 5) / 5, np.arange(1, 10) / 10
    # a function vanishing at both ends and linear on each coarse cell, e.g. a hat
    hat = np.minimum(xc, 1 - xc)
    np.testing.assert_allclose(P @ hat, np.interp(xf, np.r_[0, xc, 1], np.r_[0, hat, 0]))
    corrector = CoarseGridCorrection(coarse_n=3)
    corrector.setup(pdesolve.get_problem("poisson", dim=2, n=7).discretize())
    assert corrector.P_.shape == (49, 9)


def test_hybrid_rejects_bad_input(system64):
    with pytest.raises(pdesolve.UnknownNameError, match="unknown preconditioner 'deeponet'"):
        pdesolve.get_solver("hybrid", pc="deeponet")
    with pytest.raises(ValueError, match="unknown smoother"):
        pdesolve.get_solver("hybrid", smoother="sor")
    one_d = pdesolve.get_problem("poisson", dim=1, n=15).discretize()
    with pytest.raises(ValueError, match="2-D n x n"):
        pdesolve.solve(one_d, method="hybrid")


def _steps_to(history: dict, tol: float) -> float:
    for step, err in zip(history["step"], history["relative_l2"], strict=True):
        if err <= tol:
            return step
    return np.inf


def test_transfer_learning_beats_cold_start(tmp_path, one_thread):
    """Warm start from sin(πx)sin(πy) on the target sin(πx)sin(πy) + sin(2πx)sin(2πy)."""
    options = {"model": {"name": "mlp", "width": 32, "depth": 3, "activation": "tanh"},
               "batch": 256, "log_every": 25, "optimizer": {"name": "adam", "lr": 1e-2},
               "schedule": "none", "test_points": 2000, "progress": False}
    source = pdesolve.get_problem("poisson", dim=2, n=16, solution="sine", frequency=1)
    target = pdesolve.get_problem("poisson", dim=2, n=16, solution="multifrequency", modes=(1, 2))
    pre = PINNTrainer(source, steps=200, seed=0, output_dir=tmp_path, **options)
    pre.fit()
    ckpt = tmp_path / "checkpoint.pt"
    cold = PINNTrainer(target, steps=400, seed=1, **options).fit()
    warm_trainer = PINNTrainer(target, steps=400, seed=1, init_from=ckpt, **options)
    # the warm start really starts from the source network (its error is the mode-2 part, 1/√2)
    assert warm_trainer.history["step"] == [] and warm_trainer.relative_l2() < 0.75
    warm = warm_trainer.fit()
    cold_steps, warm_steps = _steps_to(cold, 0.1), _steps_to(warm, 0.1)
    assert np.isfinite(warm_steps)
    # measured: warm 175 steps, cold 300 (seed 1); margin of at least 75 steps
    assert warm_steps + 75 <= cold_steps, (warm_steps, cold_steps)


def test_init_from_rejects_other_model(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=1, solution="sine")
    PINNTrainer(problem, model={"name": "mlp", "width": 8, "depth": 2}, steps=1, batch=8,
                output_dir=tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match="different model"):
        PINNTrainer(problem, model={"name": "mlp", "width": 16, "depth": 2}, steps=1,
                    init_from=tmp_path / "checkpoint.pt", progress=False)


def test_band_errors_separates_frequencies():
    x = np.arange(1, 64) / 64
    s = np.sin(20 * np.pi * x)
    bands = band_errors(np.outer(s, s), edges=(0, 4, 8, 16, np.inf))
    assert np.argmax(bands) == 3  # the grid mode (20, 20): |k| = 20·√2 ≈ 28
    # no leakage: a grid sine mode is one coefficient
    assert bands[3] ** 2 == pytest.approx(np.sum(np.outer(s, s) ** 2), rel=1e-12)


def test_no_corrector_matches_the_multigrid_smoother(system64):
    """The same history as the library's smoother (multigrid's ``Level.smooth``) run alone."""
    from pdesolve.solvers.multigrid import Level

    A, b = system64.A.tocsr(), system64.b
    level = Level(A, 64, "red_black", 2.0 / 3.0)
    x, history = np.zeros_like(b), [np.linalg.norm(b)]
    for _ in range(5):
        x = level.smooth(x, b, 2, backward=False)
        history.append(np.linalg.norm(b - A @ x))
    result = pdesolve.solve(system64, method="hybrid", pc="none", smoother="red_black",
                            nu=2, maxiter=5, rtol=1e-12)
    np.testing.assert_array_equal(result.residual_norms, history)
    np.testing.assert_array_equal(result.x, x)
    assert result.info["alphas"] == []


def test_max_time_caps_the_outer_loop(system64):
    result = pdesolve.solve(system64, method="hybrid", pc="none", nu=1, rtol=1e-12,
                            maxiter=10**6, max_time=0.05)
    assert not result.converged and result.reason.name == "DIVERGED_ITS"
    assert result.info["time_limit"] and 0 < result.iterations < 10**6
    assert result.info["solve_time"] < 5.0
    uncapped = pdesolve.solve(system64, method="hybrid", pc="none", nu=1, maxiter=3)
    assert not uncapped.info["time_limit"]
    cpu = pdesolve.solve(system64, method="hybrid", pc="none", nu=1, rtol=1e-12,
                         maxiter=10**6, max_time=0.05, max_time_clock="process")
    assert cpu.info["time_limit"] and not cpu.converged
    with pytest.raises(ValueError, match="max_time"):
        pdesolve.get_solver("hybrid", max_time=0)
    with pytest.raises(ValueError, match="max_time_clock"):
        pdesolve.get_solver("hybrid", max_time=1, max_time_clock="gpu")


def test_pinn_corrector_fixed_collocation_and_model_spec(system64, one_thread):
    """A fixed Sobol set of collocation points and a network given as a make_model spec."""
    from pdesolve.solvers.hybrid import PINNCorrection

    options = {"model": {"name": "mlp", "width": 16, "depth": 2, "activation": "sigmoid"},
               "sampling": "sobol", "batch": 256, "steps": 5, "first_steps": 50, "lr": 1e-2}
    corrector = PINNCorrection(**options)
    corrector.setup(system64)
    assert corrector.fixed_points_.shape == (256, 2)
    assert corrector.net_.layers[1].extra_repr() == "sigmoid"
    first = corrector.fixed_points_.clone()
    corrector.apply(system64.b)
    assert torch.equal(corrector.fixed_points_, first)  # the same set at every step
    result = pdesolve.solve(system64, method="hybrid", nu=4, rtol=1e-12,
                            pc={"name": "pinn_correction", **options}, maxiter=30)
    plain = pdesolve.solve(system64, method="hybrid", pc="none", nu=4, maxiter=30)
    # the correction does real work (measured: 0.20 of the plain smoother's residual)
    assert result.residual_norms[-1] < 0.35 * plain.residual_norms[-1]
    with pytest.raises(ValueError, match="unknown sampling"):
        PINNCorrection(sampling="grid")
    with pytest.raises(ValueError, match="'name'"):
        PINNCorrection(model={"width": 8})


def test_initial_checkpoint_is_the_networks_values_at_the_nodes(tmp_path):
    problem = pdesolve.get_problem("poisson", dim=2, n=15, solution="polynomial")
    trainer = PINNTrainer(problem, model={"name": "mlp", "width": 8, "depth": 2}, steps=20,
                          batch=64, seed=0, output_dir=tmp_path, progress=False)
    trainer.fit()
    system = problem.discretize()
    grid = torch.as_tensor(np.asarray(system.grid.points), dtype=torch.float64)
    with torch.no_grad():
        expected = trainer.model(grid).double().numpy().ravel()
    solver = pdesolve.solvers.get_solver("hybrid", pc="coarse_grid",
                                         initial_checkpoint=str(tmp_path / "checkpoint.pt"),
                                         maxiter=0)
    result = solver.solve(system)
    # maxiter = 0: the result is the initial guess itself, the network at the grid nodes
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(np.asarray(result.x).ravel(), expected, rtol=1e-12, atol=1e-14)
