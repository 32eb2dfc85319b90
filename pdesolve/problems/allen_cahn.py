"""``allen_cahn``: ``u_t = ε u_xx + ρ (u - u³)`` on the periodic interval ``[-1, 1]``.

Defaults ``ε = 1e-4``, ``ρ = 5``, ``t ∈ [0, 1]``, ``u(x, 0) = x² cos(πx)`` (the PINN benchmark;
the initial data are periodic, so no boundary data are needed). The reference is a Fourier
pseudo-spectral method with ETDRK4 (Kassam–Trefethen contour-integral coefficients), the linear
part ``ε ∂_xx + ρ`` treated exactly and ``-ρ u³`` explicitly.

>>> import pdesolve
>>> p = pdesolve.get_problem("allen_cahn")
>>> p.periodic, p.reference(n=128, dt=5e-3, estimate=False).values.shape
((True,), (129, 201))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.discretize.spectral import fourier_grid
from pdesolve.problems import PROBLEMS
from pdesolve.problems.burgers import (
    fourier_etdrk4_1d,
    periodic_reference,
    record_halved_run_estimate,
)
from pdesolve.problems.geometry import Interval
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    TimeDependentProblem,
    second_derivative,
    space_time_derivatives,
)


@PROBLEMS.register("allen_cahn")
class AllenCahnProblem(TimeDependentProblem):
    """``u_t - ε u_xx + ρ u³ - ρ u = 0``, periodic in ``x ∈ [-1, 1]``, ``u0 = x² cos(πx)``."""

    name = "allen_cahn"

    def __init__(self, epsilon: float = 1e-4, rho: float = 5.0, t_end: float = 1.0) -> None:
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        self.epsilon, self.rho = float(epsilon), float(rho)
        super().__init__(Interval(-1.0, 1.0), (0.0, t_end), periodic=(True,),
                         epsilon=self.epsilon, rho=self.rho, t_end=float(t_end))  # fmt: skip

    def initial_value(self, x: Tensor) -> Tensor:
        return x[:, 0] ** 2 * torch.cos(math.pi * x[:, 0])

    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        xt: Tensor,
        params: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        xt, values, ux, ut = space_time_derivatives(u, xt)
        uxx = second_derivative(ux[:, 0], xt, 0)
        return ut - self.epsilon * uxx + self.rho * (values**3 - values)

    def _run(self, n: int, dt: float, n_save: int) -> tuple[np.ndarray, np.ndarray]:
        x, k = fourier_grid(n, -1.0, 1.0)
        rho = self.rho

        def nonlinear(v: np.ndarray) -> np.ndarray:
            return -rho * np.fft.rfft(np.fft.irfft(v, n) ** 3)

        u0 = x**2 * np.cos(np.pi * x)
        return fourier_etdrk4_1d(u0, -self.epsilon * k**2 + rho, nonlinear, self.t_span, dt,
                                 n_save)  # fmt: skip

    def _compute_reference(
        self, n: int = 1024, dt: float = 1e-3, n_save: int = 200, estimate: bool = True
    ) -> ReferenceSolution:
        """Fourier modes ``n`` (even), ETDRK4 step ``dt``, ``n_save + 1`` stored times; with
        ``estimate`` a run at ``n/2`` modes and ``2 dt`` gives the error estimate."""
        times, coeffs = self._run(n, dt, n_save)
        info: dict[str, Any] = {
            "method": "Fourier pseudo-spectral + ETDRK4",
            "resolution": {"modes": n, "dt": float((times[-1] - times[0]) / n_save) /
                           max(1, math.ceil((times[-1] - times[0]) / n_save / dt))},
        }  # fmt: skip
        ref = periodic_reference(times, coeffs, -1.0, 1.0, n, info)
        if estimate:
            record_halved_run_estimate(ref, self._run(n // 2, 2 * dt, n_save)[1], n)
        return ref
