"""The 1D finite-volume Burgers solver against the exact sine solution."""

import numpy as np
import pytest
from _support import measured_orders

from pdesolve.discretize.finite_volume import (
    FVGrid,
    burgers_sine_exact,
    godunov_flux,
    sine_shock_position,
    solve_burgers,
    tvb_indicator,
)


def _error(n, t, indicator="all"):
    grid = FVGrid(-1.0, 1.0, n)
    u0 = grid.averages(lambda x: 0.3 - 1.2 * np.sin(np.pi * (x - 0.4)))
    res = solve_burgers(u0, grid, t, indicator=indicator)
    exact = grid.averages(lambda x: burgers_sine_exact(x, t, 1.2, 0.4, 0.3), points=16)
    return float(np.abs(res.u - exact).mean()), res


def test_second_order_on_smooth_solutions():
    errors = [_error(n, 0.15)[0] for n in (50, 100, 200)]  # before the shock (t_b = 0.265)
    assert measured_orders(errors, [2 / 50, 2 / 100, 2 / 200]).min() > 1.8


def test_converges_through_the_shock_without_new_extrema():
    errors = []
    for n in (100, 200, 400):
        err, res = _error(n, 0.8)
        errors.append(err)
        # MUSCL-minmod is TVD: no value beyond the initial range 0.3 ± 1.2
        assert res.u.max() <= 1.5 + 1e-12 and res.u.min() >= -0.9 - 1e-12
    assert errors[2] < errors[0] / 3  # L1 error ~ h through a shock (measured order ~1.1)


def test_unlimited_scheme_oscillates_and_tvb_flags_few_cells():
    grid = FVGrid(-1.0, 1.0, 200)
    u0 = grid.averages(lambda x: -np.sin(np.pi * x))
    free = solve_burgers(u0, grid, 0.6, indicator="none")
    assert free.u.max() > 1.2  # overshoot at the shock without limiting
    tvb = solve_burgers(u0, grid, 0.6, indicator="tvb")
    assert tvb.u.max() <= 1.0 + 1e-12 and tvb.limited_fraction < 0.1
    smooth = grid.averages(lambda x: np.sin(np.pi * x))
    assert tvb_indicator(smooth, grid.h, M=50.0).sum() == 0  # TVB: extrema of smooth data pass
    assert tvb_indicator(smooth, grid.h, M=0.0).sum() > 0  # plain minmod flags the extrema


def test_exact_solution_and_shock_position():
    x = np.linspace(-0.99, 0.99, 199)
    assert np.allclose(burgers_sine_exact(x, 0.0), -np.sin(np.pi * x))
    t = 0.2  # before breaking the solution satisfies u = u0(x − u t)
    u = burgers_sine_exact(x, t)
    assert np.allclose(u, -np.sin(np.pi * (x - u * t)), atol=1e-12)
    assert sine_shock_position(0.3) is None and sine_shock_position(0.33) == 0.0
    assert sine_shock_position(1.0, 1.0, 0.5, 0.25) == pytest.approx(0.75)
    v = burgers_sine_exact(np.array([-1e-9, 1e-9]), 0.6)
    assert v[0] > 0.9 and v[1] < -0.9  # the jump at the shock


def test_godunov_flux_cases():
    ul = np.array([1.0, -1.0, 1.0, -1.0, 2.0])
    ur = np.array([2.0, -2.0, -2.0, 1.0, 0.0])
    # right-moving, left-moving, shock (faster side wins), transonic rarefaction, right shock
    assert godunov_flux(ul, ur).tolist() == [0.5, 2.0, 2.0, 0.0, 2.0]


def test_bad_input():
    grid = FVGrid(0.0, 1.0, 10)
    with pytest.raises(ValueError, match="10 cells"):
        solve_burgers(np.zeros(9), grid, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        solve_burgers(np.full(10, np.nan), grid, 1.0)
    with pytest.raises(ValueError, match="unknown indicator"):
        solve_burgers(np.zeros(10), grid, 1.0, indicator="weno")
    with pytest.raises(ValueError, match="b > a"):
        FVGrid(1.0, 0.0, 10)
