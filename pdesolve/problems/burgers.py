"""``burgers``: the viscous Burgers equation ``u_t + u u_x = ν u_xx`` on ``[-1, 1] × [0, 1]``.

``u(x, 0) = -sin(πx)``, ``u(±1, t) = 0``, ``ν = 0.01/π`` by default: the front that steepens at
``x = 0`` is the standard PINN benchmark. The reference is a Fourier pseudo-spectral method in
space with ETDRK4 in time (Kassam–Trefethen coefficients; diffusion treated exactly, the
nonlinearity explicitly). The initial data are odd and 2-periodic, so the periodic solution stays
odd and vanishes at ``x = ±1`` exactly: it *is* the solution of the Dirichlet problem. The
reference also records the steepest slope ``max_t |u_x(0, t)|``, which Basdevant et al. (1986)
give as 152.00516 at ``t = 1.6037/π``.

``ν`` is the unknown parameter of the inverse problem (``unknown_parameters``,
``observations(n, noise, seed)``).

>>> import pdesolve
>>> p = pdesolve.get_problem("burgers")
>>> ref = p.reference(n=256, dt=2e-3)
>>> ref.values.shape, ref.info["method"]
((257, 201), 'Fourier pseudo-spectral + ETDRK4')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.discretize.etdrk4 import etdrk4_coefficients, etdrk4_solve
from pdesolve.discretize.spectral import FourierSeries, fourier_grid
from pdesolve.problems import PROBLEMS
from pdesolve.problems.geometry import Interval
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    TimeDependentProblem,
    second_derivative,
    space_time_derivatives,
)

#: ``max_t |u_x(0, t)|`` for ``ν = 0.01/π`` (Basdevant et al. 1986)
BASDEVANT_MAX_SLOPE = 152.00516


def fourier_etdrk4_1d(
    u0: np.ndarray,
    linear: np.ndarray,
    nonlinear: Callable[[np.ndarray], np.ndarray],
    t_span: tuple[float, float],
    dt: float,
    n_save: int,
    monitor: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``v' = L v + N(v)`` (``v = rfft(u)``) with ETDRK4; ``(times, coefficients)`` at
    ``n_save + 1`` equispaced times (``dt`` is shrunk so that the saves fall on steps)."""
    t0, t1 = t_span
    steps_per_save = max(1, math.ceil((t1 - t0) / n_save / dt))
    n_steps = steps_per_save * n_save
    coeffs = etdrk4_coefficients(linear, (t1 - t0) / n_steps)
    saved = etdrk4_solve(np.fft.rfft(u0), coeffs, nonlinear, n_steps, steps_per_save, monitor)
    return np.linspace(t0, t1, n_save + 1), saved


def periodic_reference(
    times: np.ndarray, coefficients: np.ndarray, lo: float, hi: float, n: int,
    info: dict[str, Any],
) -> ReferenceSolution:  # fmt: skip
    """A ``ReferenceSolution`` on the nodes plus the periodic copy at ``hi``, evaluated by the
    Fourier series (trigonometric in ``x``, cubic in ``t``)."""
    x, _ = fourier_grid(n, lo, hi)
    values = np.fft.irfft(coefficients, n, axis=1).T  # (n, nt)
    values = np.concatenate([values, values[:1]], axis=0)
    series = FourierSeries(lo, hi, n, times, coefficients)
    return ReferenceSolution((np.append(x, hi), times), values, info, evaluator=series)


def record_halved_run_estimate(ref: ReferenceSolution, coarse: np.ndarray, n: int) -> None:
    """Store in ``ref.info`` the max difference between ``ref`` (``n`` modes) and the Fourier
    coefficients ``coarse`` of a run at ``n/2`` modes and twice the step, on the shared nodes."""
    coarse_values = np.fft.irfft(coarse, n // 2, axis=1).T
    ref.info["error_estimate"] = float(np.abs(coarse_values - ref.values[:-1:2]).max())
    ref.info["error_estimate_note"] = "max difference to the run at n/2 modes and 2 dt"


@PROBLEMS.register("burgers")
class BurgersProblem(TimeDependentProblem):
    """``u_t + u u_x - ν u_xx = 0``, ``u(x, 0) = -sin(πx)``, ``u(±1, t) = 0``."""

    name = "burgers"

    def __init__(self, nu: float = 0.01 / math.pi, t_end: float = 1.0) -> None:
        if not nu > 0:
            raise ValueError(f"nu must be positive, got {nu!r}")
        self.unknown_parameters = {"nu": float(nu)}
        super().__init__(Interval(-1.0, 1.0), (0.0, t_end), nu=float(nu), t_end=float(t_end))

    def initial_value(self, x: Tensor) -> Tensor:
        return -torch.sin(math.pi * x[:, 0])

    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        xt: Tensor,
        params: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        xt, values, ux, ut = space_time_derivatives(u, xt)
        uxx = second_derivative(ux[:, 0], xt, 0)
        return ut + values * ux[:, 0] - self.parameter("nu", params) * uxx

    def _run(self, n: int, dt: float, n_save: int, slope: list | None = None):
        x, k = fourier_grid(n, -1.0, 1.0)
        nu = self.unknown_parameters["nu"]
        ik = 1j * k
        ik[-1] = 0.0

        def nonlinear(v: np.ndarray) -> np.ndarray:
            return -0.5 * ik * np.fft.rfft(np.fft.irfft(v, n) ** 2)

        monitor = None
        if slope is not None:  # u_x(0, t): node n/2 is x = 0
            weights = np.full(len(k), 2.0 / n)
            weights[0] = weights[-1] = 1.0 / n
            phase = np.exp(1j * k * 1.0) * ik * weights  # x - lo = 1

            def monitor(step: int, v: np.ndarray) -> None:
                slope.append(float((phase * v).real.sum()))

        return fourier_etdrk4_1d(-np.sin(np.pi * x), -nu * k**2, nonlinear, self.t_span, dt,
                                 n_save, monitor)  # fmt: skip

    def _compute_reference(
        self, n: int = 2048, dt: float = 5e-4, n_save: int = 200, estimate: bool = True
    ) -> ReferenceSolution:
        """Fourier modes ``n`` (even), ETDRK4 step ``dt``, ``n_save + 1`` stored times; with
        ``estimate`` a run at ``n/2`` modes and ``2 dt`` gives the error estimate."""
        slope: list[float] = []
        times, coeffs = self._run(n, dt, n_save, slope)
        steps = (len(slope) - 1) / (self.t_span[1] - self.t_span[0])
        s = np.abs(np.array(slope))
        i = int(np.clip(np.argmax(s), 1, len(s) - 2))
        a, b, c = s[i - 1], s[i], s[i + 1]  # parabola through the peak
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        info: dict[str, Any] = {
            "method": "Fourier pseudo-spectral + ETDRK4",
            "resolution": {"modes": n, "dt": (self.t_span[1] - self.t_span[0]) / (len(s) - 1)},
            "max_slope": float(b - 0.25 * (a - c) * shift),
            "max_slope_time": float(self.t_span[0] + (i + shift) / steps),
        }
        ref = periodic_reference(times, coeffs, -1.0, 1.0, n, info)
        if estimate:
            record_halved_run_estimate(ref, self._run(n // 2, 2 * dt, n_save)[1], n)
        return ref
