"""Heat (θ-scheme with a reused PETSc solver), wave (leapfrog) and the square-minus-disks P1 FEM:
observed orders against exact solutions; residuals and inverse-problem data."""

import itertools
import math

import numpy as np
import pytest
import torch

import pdesolve


def _orders(errors):
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


@pytest.mark.parametrize("dim", [1, 2])
def test_heat_crank_nicolson_is_second_order(dim):
    p = pdesolve.get_problem("heat", dim=dim)
    errors = []
    for n, nt in [(7, 8), (15, 16), (31, 32)][: 3 if dim == 1 else 2]:
        ref = p.reference(n=n, nt=nt, estimate=False)
        assert ref.info["linear_setups"] == 1  # one set-up reused for every step
        errors.append(ref.info["max_error"])
    assert min(_orders(errors)) > 1.85, errors
    assert errors[-1] < (2e-3 if dim == 1 else 1e-2)


def test_heat_backward_euler_is_first_order_and_estimates_its_error():
    p = pdesolve.get_problem("heat", dim=1, coefficient="constant", k_value=0.5)
    errors = [p.reference(n=63, nt=nt, scheme="backward_euler", estimate=False)
              .info["max_error"] for nt in (4, 8, 16)]  # fmt: skip
    assert all(0.85 < o < 1.15 for o in _orders(errors)), errors
    ref = p.reference(n=31, nt=32)  # Richardson estimate close to the true error
    assert ref.info["error_estimate"] == pytest.approx(ref.info["max_error"], rel=0.3)


def test_heat_residual_and_unknown_k():
    p = pdesolve.get_problem("heat", dim=2, coefficient="constant", k_value=0.5)
    xt = p.domain.sample_interior(50, torch.Generator().manual_seed(0))
    assert p.pde_residual(p.exact_solution, xt).abs().max() < 1e-12
    wrong = p.pde_residual(p.exact_solution, xt, params={"k": torch.tensor(0.7)})
    assert wrong.abs().max() > 0.1
    assert p.unknown_parameters == {"k": 0.5}
    pts, vals = p.observations(30, noise=0.0, seed=1)
    np.testing.assert_allclose(vals, p.solution_values(pts))
    smooth = pdesolve.get_problem("heat", dim=2)
    assert smooth.pde_residual(smooth.exact_solution, xt).abs().max() < 1e-11
    with pytest.raises(ValueError, match="not an inverse problem"):
        smooth.observations(5)


def test_heat_without_exact_solution_uses_the_reference():
    p = pdesolve.get_problem("heat", dim=1, solution="none")
    assert not p.has_exact_solution
    refs = [p.reference(n=n, nt=n + 1, estimate=False) for n in (15, 31, 63)]
    # u0 = sin³(πx), k smooth, zero data: decays and stays positive
    assert 0 < refs[-1].values[:, -1].max() < refs[-1].values[:, 0].max()
    # second order at the final time between successive runs (h and Δt halved)
    diffs = [np.abs(a.values[:, -1] - b.values[::2, -1]).max()
             for a, b in itertools.pairwise(refs)]  # fmt: skip
    assert diffs[1] < diffs[0] / 3.5, diffs
    pts = p.test_points(9, 3)
    np.testing.assert_allclose(p.solution_values(pts), p.reference().evaluate(pts))
    assert p.reference().info["error_estimate"] < 2e-2  # set by the fast initial transient


def test_wave_leapfrog_is_second_order():
    p = pdesolve.get_problem("wave")
    errors = [p.reference(n=n, estimate=False).info["max_error"] for n in (32, 64, 128)]
    assert min(_orders(errors)) > 1.9, errors
    assert errors[-1] < 5e-3
    xt = p.domain.sample_interior(50, torch.Generator().manual_seed(0))
    assert p.pde_residual(p.exact_solution, xt).abs().max() < 1e-9
    x = p.domain.sample_initial(10, torch.Generator().manual_seed(0))[:, :1]
    assert p.initial_velocity(x).abs().max() == 0
    with pytest.raises(ValueError, match="courant"):
        p.reference(courant=1.5)


def test_poisson_holes_p1_is_second_order_in_l2():
    errors = []
    for h in (0.1, 0.05):
        p = pdesolve.get_problem("poisson_holes", case="manufactured", mesh_size=h)
        errors.append(p.reference().info["errors"]["l2"])
    assert min(_orders(errors)) > 1.8, errors


def test_poisson_holes_laplace_case():
    p = pdesolve.get_problem("poisson_holes", mesh_size=0.05)
    ref = p.reference()
    pts = p.test_points(41)
    values = ref.evaluate(pts)
    assert values.min() >= -1e-12 and values.max() <= 1 + 1e-12  # maximum principle
    b = p.domain.sample_boundary(200, torch.Generator().manual_seed(0))
    on_holes = p.boundary_value(b) == 1
    assert 0 < int(on_holes.sum()) < 200
    # boundary data up to the polygonal approximation of the circles (O(h²))
    np.testing.assert_allclose(ref.evaluate(b.numpy()), p.boundary_value(b).numpy(), atol=0.06)
    with pytest.raises(ValueError, match="outside the domain"):
        ref.evaluate(np.array([[0.3, 0.3]]))  # a hole's centre


def test_diffusion_inverse_field():
    p = pdesolve.get_problem("diffusion_inverse")
    x = p.domain.sample_interior(40, torch.Generator().manual_seed(0))
    assert p.pde_residual(p.exact_solution, x).abs().max() < 1e-10
    assert p.pde_residual(p.exact_solution, x, params={"k": lambda y: 1 + 0 * y[:, 0]}
                          ).abs().max() > 0.1  # fmt: skip
    pts, vals = p.observations(100, noise=0.05, seed=2)
    clean = p.observe(pts)
    assert 0.01 < np.std(vals - clean) / np.std(clean) < 0.1
    with pytest.raises(ValueError, match="outside the unit square"):
        p.observe(np.array([[0.5, 1.5]]))
