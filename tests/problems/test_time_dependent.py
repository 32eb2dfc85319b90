"""The time-dependent problem interface: space-time sampling, data checks, references."""

import math

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.problems.geometry import Disk, Interval, Rectangle
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    SpaceTimeDomain,
    TimeDependentProblem,
    space_time_derivatives,
)


class Advection(TimeDependentProblem):
    """u_t + c u_x = 0 on a periodic interval (a test-only problem)."""

    name = "advection_test"

    def __init__(self, initial=None, periodic=True, t_span=(0.0, 1.0), c=1.0):
        self._initial = initial or (lambda x: torch.sin(math.pi * x[:, 0]))
        self.unknown_parameters = {"c": c}
        super().__init__(Interval(-1, 1), t_span, periodic=(periodic,), c=c)

    def initial_value(self, x):
        return self._initial(x)

    @property
    def has_exact_solution(self):
        return True

    def exact_solution(self, xt):
        return torch.sin(math.pi * (xt[:, 0] - self.unknown_parameters["c"] * xt[:, 1]))

    def pde_residual(self, u, xt, params=None):
        _, _, ux, ut = space_time_derivatives(u, xt)
        return ut + self.parameter("c", params) * ux[:, 0]

    def _compute_reference(self, n=64, nt=11):
        x, t = np.linspace(-1, 1, n), np.linspace(*self.t_span, nt)
        values = np.sin(math.pi * (x[:, None] - t[None, :]))
        return ReferenceSolution((x, t), values, {"method": "exact on a grid", "resolution": n})


def test_space_time_sampling():
    st = SpaceTimeDomain(Rectangle((0, 0), (1, 2)) - Disk((0.5, 1), 0.2), (0.5, 2.0))
    gen = torch.Generator().manual_seed(0)
    x = st.sample_interior(500, gen)
    assert x.shape == (500, 3) and x.dtype == torch.float64
    assert bool(((x[:, 2] >= 0.5) & (x[:, 2] <= 2.0)).all())
    assert st.contains(x.numpy()).all()
    b = st.sample_boundary(300, gen)
    assert st.space.signed_distance(b[:, :2]).abs().max() < 1e-12
    i = st.sample_initial(200, gen)
    assert bool((i[:, 2] == 0.5).all()) and st.space.contains(i[:, :2].numpy()).all()
    lo, hi = st.bounding_box
    assert lo.tolist() == [0, 0, 0.5] and hi.tolist() == [1, 2, 2.0]
    assert not st.contains(np.array([[0.5, 1.0, 1.0], [0.1, 0.1, 2.5]])).any()


def test_problem_interface_and_residual():
    p = Advection()
    assert p.kind == "time_dependent" and pdesolve.get_problem("poisson").kind == "stationary"
    assert (p.space_dim, p.dim, p.t_span, p.periodic) == (1, 2, (0.0, 1.0), (True,))
    xt = p.domain.sample_interior(100, torch.Generator().manual_seed(0))
    assert p.pde_residual(p.exact_solution, xt).abs().max() < 1e-12
    wrong = p.pde_residual(p.exact_solution, xt, params={"c": torch.tensor(2.0)})
    assert wrong.abs().max() > 0.5
    with pytest.raises(NotImplementedError, match="reference"):
        p.discretize()
    pts = p.test_points(11, 5)
    assert pts.shape == (55, 2) and pts[:, -1].max() == 1.0
    ref = p.reference(n=64)
    assert p.reference(n=64) is ref  # cached per options
    err = np.abs(ref.evaluate(pts) - p.solution_values(pts)).max()
    assert err < 1e-4
    b = p.domain.sample_boundary(10, torch.Generator().manual_seed(0))
    assert not bool(p.dirichlet_mask(b).any())


def test_observations_are_seeded_noisy_and_checked():
    p = Advection()
    pts, vals = p.observations(50, noise=0.0, seed=3)
    np.testing.assert_allclose(vals, p.solution_values(pts))
    pts2, noisy = p.observations(50, noise=0.1, seed=3)
    np.testing.assert_array_equal(pts, pts2)
    assert 0.02 < np.std(noisy - vals) / np.std(vals) < 0.2
    with pytest.raises(ValueError, match="observation points: 1 of 2 lie outside"):
        p.observe(np.array([[0.0, 0.5], [0.0, 1.5]]))


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="t_span"):
        Advection(t_span=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"shape \(N,\).*got \(64, 1\)"):
        Advection(initial=lambda x: torch.sin(x))
    with pytest.raises(ValueError, match="periodic but the initial condition is not"):
        Advection(initial=lambda x: x[:, 0] ** 3)
    Advection(initial=lambda x: x[:, 0] ** 3, periodic=False)  # fine when not periodic
    ref = Advection().reference()
    with pytest.raises(ValueError, match="outside the reference grid"):
        ref.evaluate(np.array([[2.0, 0.5]]))
