"""The RAF paper's problems: exact solutions satisfy the PDEs; the ball domain samples correctly."""

import math

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.problems.ball import UnitBall


def points(n, dim, seed=0):
    return torch.rand(n, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dim", [2, 3, 5, 10])
def test_low_regularity_exact_solution_has_zero_residual(dim):
    p = pdesolve.get_problem("low_regularity", dim=dim)
    x = p.domain.sample_interior(400, torch.Generator().manual_seed(dim))
    x = x[x.norm(dim=1) > 1e-3]
    r = p.pde_residual(p.exact_solution, x)
    scale = p.source(x).abs().max()
    assert float(r.detach().abs().max()) < 1e-10 * float(scale)
    # a wrong candidate (u with the opposite sign of f) does not satisfy it
    assert float(p.pde_residual(lambda y: -p.exact_solution(y), x).detach().abs().max()) > 1.0
    xb = p.domain.sample_boundary(50, torch.Generator().manual_seed(1))
    assert float(p.boundary_value(xb).abs().max()) < 1e-12


@pytest.mark.parametrize(("dim", "k"), [(1, 1), (2, 1), (2, 3), (3, 2)])
def test_oscillatory_exact_solution_has_zero_residual(dim, k):
    p = pdesolve.get_problem("oscillatory", dim=dim, frequency=k)
    x = points(300, dim)
    u = p.exact_solution
    assert float(p.pde_residual(u, x).abs().max()) < 1e-9 * float(p.source(x).abs().max())
    # the nonlinear terms matter: the linear residual -Δu - f alone is far from zero
    linear = super(type(p), p).pde_residual(u, x)
    assert float(linear.abs().max()) > 1.0


def test_oscillatory_source_matches_the_official_formula_in_2d():
    k, p = 2, pdesolve.get_problem("oscillatory", dim=2, frequency=2)
    x = points(50, 2)
    u = torch.prod(torch.sin(2 * k * math.pi * x), dim=1)
    f = 2 * (2 * k) ** 2 * math.pi**2 * u - (u - 1) ** 3 + (u + 2) ** 2
    torch.testing.assert_close(p.source(x), f)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_laplace_eigenfunction_residual_norm_and_rayleigh(dim):
    p = pdesolve.get_problem("laplace_eigen", dim=dim)
    assert p.exact_eigenvalue == pytest.approx(dim * math.pi**2)
    x = points(200, dim)
    assert float(p.pde_residual(p.exact_solution, x).abs().max()) < 1e-9
    # ∫u² = 1 and the Rayleigh quotient is λ₁: midpoint rule on a tensor grid
    m = 60 if dim < 3 else 24
    c = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    grid = torch.stack(torch.meshgrid(*([c] * dim), indexing="ij"), -1).reshape(-1, dim)
    grid.requires_grad_(True)
    u = p.exact_solution(grid)
    (g,) = torch.autograd.grad(u.sum(), grid)
    mass = float(torch.mean(u.detach() ** 2))
    assert mass == pytest.approx(1.0, rel=1e-2)
    assert float(torch.mean((g**2).sum(1))) / mass == pytest.approx(p.exact_eigenvalue, rel=1e-3)
    assert p.eigenvalues(1)[0] == pytest.approx(p.exact_eigenvalue)


def test_laplace_eigenvalue_list_2d():
    p = pdesolve.get_problem("laplace_eigen", dim=2)
    ratios = [v / math.pi**2 for v in p.eigenvalues(6)]
    assert ratios == pytest.approx([2, 5, 5, 8, 10, 10])


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_ball_sampling(dim):
    ball = UnitBall(dim)
    gen = torch.Generator().manual_seed(0)
    inside = ball.sample_interior(20_000, gen)
    r = inside.norm(dim=1)
    assert inside.shape == (20_000, dim) and float(r.max()) < 1.0
    # uniform in volume: P(|x| < 1/2) = 2^-d (binomial standard error ~0.0035)
    assert float((r < 0.5).double().mean()) == pytest.approx(0.5**dim, abs=0.015)
    # directions uniform: the mean is near zero
    assert float(inside.mean(0).abs().max()) < 0.03
    on = ball.sample_boundary(500, gen)
    torch.testing.assert_close(on.norm(dim=1), torch.ones(500, dtype=torch.float64))
    assert float(ball.distance(on).abs().max()) < 1e-14
    assert bool((ball.distance(inside) > 0).all())
    u = np.random.default_rng(0).random((4000, dim + 1))
    mapped = ball.from_unit_cube(u)
    assert float(mapped.norm(dim=1).max()) < 1.0
    assert float((mapped.norm(dim=1) < 0.5).double().mean()) == pytest.approx(0.5**dim, abs=0.03)


def test_new_problems_have_no_linear_system_and_check_input():
    for name in ("low_regularity", "oscillatory", "laplace_eigen"):
        with pytest.raises(NotImplementedError, match="pinn"):
            pdesolve.get_problem(name).discretize()
    with pytest.raises(ValueError, match=r"dim in 2\.\.10"):
        pdesolve.get_problem("low_regularity", dim=11)
    with pytest.raises(ValueError, match="frequency"):
        pdesolve.get_problem("oscillatory", frequency=0)
    assert {"low_regularity", "oscillatory", "laplace_eigen"} <= set(pdesolve.list_problems())
