"""The problem registry, the continuous forms, and SPD discrete forms for every family."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pdesolve


def test_registry_lists_the_families():
    assert {"poisson", "diffusion", "mesh_poisson"} <= set(pdesolve.list_problems())


def test_unknown_problem_lists_known_names():
    with pytest.raises(pdesolve.UnknownNameError, match="known problems: .*poisson"):
        pdesolve.get_problem("poison")


def assert_spd(A):
    dense = A.toarray()
    np.testing.assert_allclose(dense, dense.T, rtol=0, atol=1e-12 * np.abs(dense).max())
    assert np.linalg.eigvalsh(dense).min() > 0


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(1, 3), n=st.integers(1, 7), scheme=st.sampled_from(["fd", "fe9"]))
def test_poisson_matrices_are_spd(dim, n, scheme):
    if scheme == "fe9" and dim != 2:
        scheme = "fd"
    assert_spd(pdesolve.get_problem("poisson", dim=dim, n=n, scheme=scheme).discretize().A)


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(2, 3),
    n=st.integers(2, 8),
    family=st.sampled_from(["constant", "smooth", "checkerboard", "lognormal"]),
    scheme=st.sampled_from(["fd", "fe9"]),
    seed=st.integers(0, 10_000),
)
def test_diffusion_matrices_are_spd(dim, n, family, scheme, seed):
    if dim == 3:
        scheme = "fd"
    p = pdesolve.get_problem(
        "diffusion", dim=dim, n=n, coefficient=family, scheme=scheme, seed=seed, contrast=1e4
    )
    assert_spd(p.discretize().A)


@settings(max_examples=4, deadline=None)
@given(refine=st.integers(0, 1), boundary=st.sampled_from([None, "boundary", "west"]))
def test_mesh_matrices_are_spd(refine, boundary):
    assert_spd(
        pdesolve.get_problem("mesh_poisson", refine=refine, boundary=boundary).discretize().A
    )


@pytest.mark.parametrize("solution", ["sine", "multifrequency", "polynomial", "exponential"])
def test_pde_residual_of_exact_solution_vanishes(solution):
    problem = pdesolve.get_problem("poisson", dim=2, solution=solution)
    x = problem.domain.sample_interior(64, torch.Generator().manual_seed(0))
    residual = problem.pde_residual(problem.exact_solution, x)
    assert residual.abs().max() < 1e-8 * (1 + problem.source(x).abs().max())


def test_pde_residual_with_variable_coefficient():
    problem = pdesolve.get_problem("diffusion", dim=3, coefficient="smooth", solution="sine")
    x = problem.domain.sample_interior(64, torch.Generator().manual_seed(0))
    residual = problem.pde_residual(problem.exact_solution, x)
    assert residual.abs().max() < 1e-9
    # a wrong function gives a non-zero residual
    assert problem.pde_residual(lambda y: 2 * problem.exact_solution(y), x).abs().max() > 1.0


def test_boundary_sampling_lies_on_the_boundary():
    gen = torch.Generator().manual_seed(0)
    for dim in (1, 2, 3):
        x = pdesolve.get_problem("poisson", dim=dim).domain.sample_boundary(100, gen)
        on_face = ((x == 0) | (x == 1)).any(dim=1)
        assert bool(on_face.all())
    mesh = pdesolve.get_problem("mesh_poisson")
    radius = (mesh.domain.sample_boundary(100, gen) - 0.5).norm(dim=1)
    assert float(radius.max()) <= 0.5 + 1e-12 and float(radius.min()) > 0.49
    inside = (mesh.domain.sample_interior(100, gen) - 0.5).norm(dim=1)
    assert float(inside.max()) <= 0.5
