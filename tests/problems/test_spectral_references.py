"""Burgers and Allen–Cahn references: ETDRK4 order 4 in time, spectral in space, Burgers'
steepest slope against Basdevant et al."""

import itertools
import math

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.problems.burgers import BASDEVANT_MAX_SLOPE


def _final(problem, n, dt):
    ref = problem.reference(n=n, dt=dt, n_save=1, estimate=False)
    return ref.values[:, -1]


def _orders(errors):
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


def test_burgers_reaches_basdevants_steepest_slope():
    ref = pdesolve.get_problem("burgers").reference(n=1024, dt=2e-3, estimate=False)
    assert ref.info["max_slope"] == pytest.approx(BASDEVANT_MAX_SLOPE, abs=2e-3)
    assert ref.info["max_slope_time"] == pytest.approx(1.6037 / math.pi, abs=2e-4)
    # u(±1, t) = 0 and the odd symmetry hold to rounding
    assert np.abs(ref.values[[0, -1]]).max() < 1e-12
    np.testing.assert_allclose(ref.values, -ref.values[::-1], atol=1e-11)


def test_burgers_etdrk4_is_fourth_order_in_time():
    p = pdesolve.get_problem("burgers", t_end=0.25)
    exact = _final(p, 256, 1.25e-4)
    errors = [np.abs(_final(p, 256, dt) - exact).max() for dt in (2e-3, 1e-3, 5e-4)]
    assert min(_orders(errors)) > 3.5, errors


def test_allen_cahn_orders_in_time_and_space():
    p = pdesolve.get_problem("allen_cahn")
    exact = _final(p, 256, 5e-4)
    errors = [np.abs(_final(p, 256, dt) - exact).max() for dt in (1e-2, 5e-3, 2.5e-3)]
    assert min(_orders(errors)) > 3.5, errors
    fine = _final(p, 1024, 2.5e-3)
    space = [np.abs(_final(p, n, 2.5e-3) - fine[:: 1024 // n]).max() for n in (256, 512)]
    assert space[1] < 1e-2 * space[0] and space[1] < 1e-5, space  # spectral, not algebraic


def test_residual_of_the_reference_is_small():
    # the pde residual (autograd) of the spectral interpolant vanishes at interior points
    p = pdesolve.get_problem("allen_cahn")
    ref = p.reference(n=256, dt=2.5e-3, n_save=400, estimate=False)
    xt = torch.tensor([[0.3, 0.5], [-0.7, 0.8]], dtype=torch.float64)
    h = 1e-4
    pts = xt.numpy()
    u = lambda q: ref.evaluate(q)  # noqa: E731
    ut = (u(pts + [0, h]) - u(pts - [0, h])) / (2 * h)
    uxx = (u(pts + [h, 0]) - 2 * u(pts) + u(pts - [h, 0])) / h**2
    v = u(pts)
    np.testing.assert_allclose(ut, 1e-4 * uxx + 5 * (v - v**3), atol=2e-3)


def test_periodic_reference_grid_includes_both_ends():
    ref = pdesolve.get_problem("allen_cahn").reference(n=64, dt=1e-2, estimate=False)
    x, t = ref.grid
    assert x[0] == -1 and x[-1] == 1 and t[0] == 0 and t[-1] == 1
    np.testing.assert_allclose(ref.values[0], ref.values[-1])
    pts = np.array([[-1.0, 0.0], [0.5, 0.0]])
    np.testing.assert_allclose(ref.evaluate(pts), [-1.0, 0.25 * math.cos(math.pi / 2)],
                               atol=1e-12)
