"""FIRENET, Chambolle–Pock, ISTA/FISTA and the stability-study tools."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.linalg.proximal import project_l2_ball, soft_threshold
from pdesolve.problems.inverse_operators import MatrixOperator
from pdesolve.recovery.firenet import FIRENET, firenet
from pdesolve.recovery.ista import proximal_gradient
from pdesolve.recovery.lasso import sr_lasso_objective as sparse_objective
from pdesolve.recovery.primal_dual import chambolle_pock_block, primal_dual_gap

torch.set_num_threads(1)  # small tensors: one thread is fastest


def _sparse_problem(**kw):
    params = {"n": 32, "image": "sparse_phantom", "sparsity": 60, "rate": 0.5, "lam": 0.03}
    return pdesolve.get_problem("compressed_sensing", **{**params, **kw})


def _gaussian(m=40, N=100, s=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = MatrixOperator(torch.randn(m, N, generator=gen, dtype=torch.float64) / m**0.5)
    x = torch.zeros(N, dtype=torch.float64)
    idx = torch.randperm(N, generator=gen)[:s]
    x[idx] = torch.randn(s, generator=gen, dtype=torch.float64) + 2 * torch.sign(
        torch.randn(s, generator=gen, dtype=torch.float64)
    )
    return A, x, A.forward(x)


# ---------------------------------------------------------------------------- proximal maps ---
def test_soft_threshold_matches_closed_form_and_scalar_argmin():
    v = torch.linspace(-3, 3, 61, dtype=torch.float64)
    t = 0.7
    expected = torch.where(v.abs() > t, v - t * torch.sign(v), torch.zeros_like(v))
    assert torch.allclose(soft_threshold(v, t), expected, atol=0, rtol=0)
    # prox definition: argmin_u t|u| + (u - v)^2 / 2, by brute force on a fine grid
    grid = torch.linspace(-4, 4, 160001, dtype=torch.float64)
    for value in (-2.2, -0.3, 0.0, 0.69, 1.5):
        brute = grid[torch.argmin(t * grid.abs() + 0.5 * (grid - value) ** 2)]
        assert float(soft_threshold(torch.tensor(value, dtype=torch.float64), t)) == pytest.approx(
            float(brute), abs=1e-4
        )
    z = torch.tensor([3 + 4j, 0.3 - 0.4j, 0j], dtype=torch.complex128)
    out = soft_threshold(z, torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(out, torch.tensor([2.4 + 3.2j, 0, 0], dtype=torch.complex128))
    w = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)  # weighted thresholds
    assert soft_threshold(torch.full((3,), 1.5, dtype=torch.float64), w).tolist() == [1.5, 0.5, 0.0]


def test_l2_ball_projection_matches_closed_form():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)
    out = project_l2_ball(z, ndim=1)
    assert torch.allclose(
        out, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)
    )
    zc = torch.randn(4, 10, dtype=torch.complex128) * 5
    pc = project_l2_ball(zc, ndim=1)
    norms = torch.linalg.vector_norm(zc, dim=1, keepdim=True)
    assert torch.allclose(pc, zc / torch.clamp(norms, min=1.0))
    assert torch.allclose(
        project_l2_ball(z, radius=2.0, ndim=2), z * 2 / torch.linalg.vector_norm(z)
    )


# -------------------------------------------------------------------------- algorithm facts ---
def test_inner_block_decreases_primal_dual_gap():
    A, x, y = _gaussian(seed=1)
    lam, L = 0.1, A.norm_bound
    gaps = []
    for p in (4, 16, 64, 256, 1024):
        out = chambolle_pock_block(A, y, torch.zeros_like(x), lam=lam, tau=1 / L, sigma=1 / L, p=p)
        gaps.append(float(primal_dual_gap(A, out.x, out.z, y, lam)))
    assert all(g >= 0 for g in gaps)
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 0.05 * gaps[0]


def test_firenet_reaches_1e6_on_exactly_sparse_noiseless_problem():
    problem = _sparse_problem()
    errors = []

    def record(level, psi):
        err = torch.linalg.vector_norm(psi - problem.coefficients)
        errors.append(float(err / torch.linalg.vector_norm(problem.coefficients)))

    firenet(problem.operator, problem.measurements, lam=problem.lam, inner_iterations=5,
            restarts=30, delta=0.0, restart_callback=record)  # fmt: skip
    first = next(i for i, e in enumerate(errors) if e < 1e-6)
    assert (first + 1) * 5 <= 150, errors  # within 150 layers
    # exponential decay: from restart 5 to 25 the error falls by more than 1e-5
    assert errors[24] < 1e-5 * errors[4]
    # the same through pdesolve.recover, Walsh sampling and a Gaussian matrix
    result = pdesolve.recover(problem, method="firenet", inner_iterations=5, restarts=30)
    assert result.relative_error < 1e-6 and result.status.value == "not_checked"
    walsh = _sparse_problem(sampling="walsh")
    result = pdesolve.recover(walsh, method="firenet", inner_iterations=10, restarts=15)
    assert result.relative_error < 1e-6
    A, x, y = _gaussian(seed=2)
    out = firenet(A, y, lam=0.2, inner_iterations=20, restarts=20, delta=0.0)
    assert float(torch.linalg.vector_norm(out - x) / torch.linalg.vector_norm(x)) < 1e-6


def test_recovery_result_contents_and_restart_logs():
    problem = _sparse_problem()
    result = pdesolve.recover(problem, method="firenet", inner_iterations=5, restarts=12,
                              f_star=0.0)  # fmt: skip
    assert result.iterations == 60 and len(result.misfit_norms) == 13
    assert result.misfit_iterations.tolist() == list(range(0, 61, 5))
    assert result.misfit_norms[0] == pytest.approx(
        float(torch.linalg.vector_norm(problem.measurements))
    )
    assert result.misfit_norms[-1] < 1e-2 * result.misfit_norms[0]
    hist = result.info["objective_history"]
    assert len(hist) == 13 and hist[-1] < hist[0] and hist[-1] == result.objective
    assert np.allclose(result.info["objective_gap_history"], hist)
    assert result.objective_gap == result.objective  # f_star = 0
    assert result.reconstruction.shape == (32, 32) and np.allclose(
        result.info["eps"][1] * np.e, result.info["eps"][0] + 1e-9
    )


def test_scaling_homogeneity_where_theory_says_so():
    problem = _sparse_problem()
    A, y = problem.operator, problem.measurements
    base = firenet(A, y, lam=problem.lam, restarts=8, delta=1e-3)
    for alpha in (1e-3, 7.0, 1e4):
        scaled = firenet(A, alpha * y, lam=problem.lam, restarts=8, delta=alpha * 1e-3) / alpha
        assert (
            float(torch.linalg.vector_norm(scaled - base) / torch.linalg.vector_norm(base)) < 1e-11
        )
    base0 = firenet(A, y, lam=problem.lam, restarts=8, delta=0.0)
    scaled0 = firenet(A, 5.0 * y, lam=problem.lam, restarts=8, delta=0.0) / 5.0
    assert torch.allclose(scaled0, base0, rtol=1e-11, atol=1e-13)
    # with a fixed δ > 0 that does not scale with y, the network is not homogeneous
    big_delta = float(torch.linalg.vector_norm(y))
    a = firenet(A, y, lam=problem.lam, restarts=8, delta=big_delta)
    b = firenet(A, 100.0 * y, lam=problem.lam, restarts=8, delta=big_delta) / 100.0
    assert float(torch.linalg.vector_norm(a - b)) > 1e-6 * float(torch.linalg.vector_norm(a))


def test_batched_equals_one_by_one_and_is_differentiable():
    A, _, y = _gaussian(m=12, N=20, s=2)
    Y = torch.stack([y, 2.0 * y + 0.1, -y])
    out = firenet(A, Y, lam=0.2, inner_iterations=3, restarts=4)
    for i in range(3):
        assert torch.allclose(out[i], firenet(A, Y[i], lam=0.2, inner_iterations=3, restarts=4))
    net = FIRENET(A, lam=0.2, inner_iterations=2, restarts=2)
    y_var = (y + 0.01).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: net(v).square().sum(), (y_var,), eps=1e-7, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    problem = _sparse_problem()
    A, y = problem.operator, problem.measurements
    with pytest.raises(ValueError, match=r"tau\*sigma\*L_A\^2 <= 1"):
        firenet(A, y, lam=0.1, tau=1.0, sigma=1.5)
    with pytest.raises(ValueError, match=r"tau\*sigma\*L_A\^2 <= 1"):
        pdesolve.recover(problem, method="firenet", tau=2.0, sigma=1.0)
    with pytest.raises(ValueError, match=r"tau\*sigma\*L_A\^2 <= 1"):
        pdesolve.recover(problem, method="chambolle_pock", tau=1.0, sigma=1.0 + 1e-6)
    firenet(A, y, lam=0.1, tau=0.5, sigma=2.0, restarts=1)  # τσL_A² = 1 exactly is allowed
    with pytest.raises(ValueError, match="wrong length"):
        firenet(A, y[:-1], lam=0.1)
    with pytest.raises(ValueError, match="wrong length"):
        FIRENET(A, lam=0.1)(torch.cat([y, y[:1]]))
    with pytest.raises(ValueError, match="wrong length"):
        proximal_gradient(A, y[:-2], lam=0.1, iterations=3)
    zero = torch.zeros(32, 32, dtype=torch.float64)
    with pytest.raises(ValueError, match="wrong length"):
        chambolle_pock_block(A, y[:-1], zero, lam=0.1, tau=1.0, sigma=1.0, p=2)
    with pytest.raises(ValueError, match="x0 has shape"):
        chambolle_pock_block(A, y, zero[:5], lam=0.1, tau=1.0, sigma=1.0, p=2)
    bad = y.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        firenet(A, bad, lam=0.1)
    with pytest.raises(ValueError, match="NaN"):
        FIRENET(A, lam=0.1)(bad)
    with pytest.raises(ValueError, match="NaN"):
        proximal_gradient(A, bad, lam=0.1, iterations=3)
    problem_nan = problem.with_measurements(y)
    problem_nan.measurements = bad
    for method in ("firenet", "chambolle_pock", "fista"):
        with pytest.raises(ValueError, match="NaN"):
            pdesolve.recover(problem_nan, method=method)
    with pytest.raises(ValueError, match="NaN"):
        problem.with_measurements(bad)
    with pytest.raises(ValueError, match="L_A"):
        firenet(A, y, lam=0.1, norm_bound=0.5)
    with pytest.raises(ValueError, match="lam"):
        firenet(A, y, lam=-1.0)
    with pytest.raises(TypeError, match="not a LinearSystem"):
        pdesolve.recover(pdesolve.get_problem("poisson", dim=2, n=8).discretize(), method="firenet")
    with pytest.raises(ValueError, match="restarts must be >= 1"):
        pdesolve.recover(problem, method="firenet", restarts=0)


# ------------------------------------------------------------------------------- baselines ---
def test_chambolle_pock_and_fista_reach_the_minimiser():
    problem = _sparse_problem()
    cp = pdesolve.recover(problem, method="chambolle_pock", maxiter=1000, gap_tol=1e-10)
    assert cp.success and cp.relative_error < 1e-6
    fista = pdesolve.recover(problem, method="fista", maxiter=600, change_tol=1e-12)
    ista = pdesolve.recover(problem, method="ista", maxiter=600, change_tol=1e-12)
    assert fista.relative_error < 1e-3
    assert fista.relative_error < ista.relative_error
    # FISTA on A = I is soft thresholding, in closed form
    eye = MatrixOperator(torch.eye(4, dtype=torch.float64))
    y = torch.tensor([2.0, -0.2, 0.5, -3.0], dtype=torch.float64)
    out = proximal_gradient(eye, y, lam=0.4, iterations=20, accelerated=True)
    assert torch.allclose(out, soft_threshold(y, 0.4))


# ---------------------------------------------------------- schedule = docs/methods/firenet.md ---
def _transcription(A, y, lam, p, restarts, delta):
    """§4.2 (and the official cp_expo_sr_lasso / cp_ergodic_sr_lasso), literally, τ = σ = 1/L_A."""
    L = A.norm_bound
    tau = sigma = 1.0 / L
    psi, eps = torch.zeros(A.domain_shape, dtype=torch.float64), float(torch.linalg.norm(y))
    for _ in range(restarts):
        eps = np.exp(-1) * (delta + eps)
        al = 1.0 / (eps / (2 * L) * p)
        xp, zp, x_sum = al * psi, torch.zeros_like(y), torch.zeros_like(psi)
        for _ in range(p):
            v = xp - tau * A.adjoint(zp)
            xpp = torch.clamp(v.abs() - tau * lam, min=0.0) * torch.sign(v)
            w = zp + sigma * A.forward(2 * xpp - xp) - sigma * al * y
            zp = min(1.0, 1.0 / (float(torch.linalg.norm(w)) + 1e-43)) * w
            x_sum, xp = x_sum + xpp, xpp
        psi = x_sum / p / al
    return psi


@pytest.mark.parametrize("p", [5, 20])
def test_firenet_equals_a_literal_transcription_of_the_schedule(p):
    problem = _sparse_problem(n=64, sparsity=300, rate=0.4, lam=0.02)  # p = 5 stalls here
    A, y = problem.operator, problem.measurements
    ours = firenet(A, y, lam=0.02, inner_iterations=p, restarts=40 // p * 2, delta=1e-3)
    ref = _transcription(A, y, 0.02, p, 40 // p * 2, 1e-3)
    assert float((ours - ref).abs().max()) <= 1e-12 * float(ref.abs().max())
    G, _, yg = _gaussian(seed=4)  # L_A != 1
    ours = firenet(G, yg, lam=0.2, inner_iterations=p, restarts=6, delta=0.0)
    assert torch.allclose(ours, _transcription(G, yg, 0.2, p, 6, 0.0), rtol=1e-12, atol=1e-14)


def test_restart_invariant_holds_above_the_sharpness_threshold_and_fails_below():
    """F(ψ_l) − F* <= ε_l is kept for p = 20 and broken for p = 5 (then the gap freezes while
    ε_l keeps falling by e per restart: the stall), on a noiseless exactly sparse problem whose
    minimiser is the truth."""
    problem = _sparse_problem(n=64, sparsity=300, rate=0.4, lam=0.02)
    A, y, c = problem.operator, problem.measurements, problem.coefficients
    f_star = float(sparse_objective(A, c, y, 0.02))
    ratios = {}
    for p in (5, 20):
        gaps = []
        firenet(A, y, lam=0.02, inner_iterations=p, restarts=8, delta=0.0,
                restart_callback=lambda l, psi, g=gaps: g.append(
                    float(sparse_objective(A, psi, y, 0.02)) - f_star))  # fmt: skip
        eps = float(torch.linalg.norm(y)) * np.exp(-np.arange(1, 9))
        ratios[p] = np.asarray(gaps) / eps
    assert (ratios[20] < 0.5).all(), ratios[20]
    assert ratios[5][-1] > 20 and ratios[5][-1] > 2 * ratios[5][-2], ratios[5]


# ------------------------------------------------------------------- Poisson sparse source ---
def _source_error(problem, w):
    c = problem.synthesize(w).reshape(-1)
    return float(torch.linalg.vector_norm(c - problem.source_values)
                 / torch.linalg.vector_norm(problem.source_values))  # fmt: skip


def test_firenet_recovers_the_poisson_source_noiseless():
    """Default poisson_source (31² grid, 240 sensors, 4 sources, whitened): a 4000-layer FIRENET
    (p = 100) returns the source to 1e-10 (measured 2.4e-13); the truth is the SR-LASSO
    minimiser here and FIRENET's objective is not above it."""
    problem = pdesolve.get_problem("poisson_source")
    A, y, lam = problem.operator, problem.measurements, problem.lam
    result = pdesolve.recover(problem, method="firenet", inner_iterations=100, restarts=40,
                              delta=1e-12)  # fmt: skip
    w = torch.as_tensor(result.coefficients)
    assert _source_error(problem, w) < 1e-10
    assert result.relative_error < 1e-10
    f_true = float(sparse_objective(A, problem.coefficients, y, lam))
    assert result.objective <= f_true * (1 + 1e-12)
    assert np.allclose(result.reconstruction, problem.image, atol=1e-9)


def test_firenet_recovers_the_poisson_source_to_the_noise_level():
    """1% noise on the sensor values (11% after whitening: ||M|| = 1/σ_min(A)): FIRENET's source
    error is 0.056 (below the whitened noise level, 5.6× the raw one), and FIRENET is 3.3e-3 from
    the SR-LASSO minimiser (plain CP, 2000 iterations: converged to ~1e-11 by then)."""
    from pdesolve.recovery.primal_dual import cp_step

    problem = pdesolve.get_problem("poisson_source", noise=0.01, seed=0)
    A, y, lam = problem.operator, problem.measurements, problem.lam
    whitened_noise = problem.noise_norm / float(torch.linalg.norm(problem.clean_measurements))
    assert 0.1 < whitened_noise < 0.13
    w = firenet(A, y, lam=lam, inner_iterations=100, restarts=40, delta=1e-12)
    assert _source_error(problem, w) < 0.07
    assert _source_error(problem, w) < 0.7 * whitened_noise
    L = A.norm_bound
    x, z = torch.zeros_like(w), torch.zeros_like(y)
    for _ in range(2000):
        x, z = cp_step(A, x, z, y, lam / L, 1 / L, 1 / L)
    assert float(torch.linalg.norm(w - x) / torch.linalg.norm(x)) < 1e-2
    f_w, f_x = (float(sparse_objective(A, v, y, lam)) for v in (w, x))
    assert f_w - f_x < 3e-4 * f_x
    # the raw operator with the same depth does not get anywhere (tiny, coherent columns)
    raw = pdesolve.get_problem("poisson_source", noise=0.01, seed=0, formulation="raw")
    out = firenet(raw.operator, raw.measurements, lam=lam, inner_iterations=100, restarts=10,
                  weights=torch.as_tensor(raw.weights))  # fmt: skip
    assert _source_error(raw, out) > 0.5


def test_firenet_is_differentiable_through_the_poisson_operator():
    """Autograd through the sparse-LU Poisson solves inside the whitened operator (gradcheck)."""
    problem = pdesolve.get_problem("poisson_source", n=7, measurements=12, sources=2, seed=3)
    net = FIRENET(problem.operator, lam=problem.lam, inner_iterations=3, restarts=2)
    y = (problem.measurements + 0.01).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: net(v).square().sum(), (y,), eps=1e-7, atol=1e-5)
