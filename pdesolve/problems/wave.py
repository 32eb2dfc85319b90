"""``wave``: ``u_tt = c² u_xx`` on ``[0, 1] × [0, t_end]``, ``u(0, t) = u(1, t) = 0``.

The exact solution ``u = sin(πx) cos(cπt) + a sin(4πx) cos(4cπt)`` (defaults ``c = 2``,
``a = 0.5``) gives the initial data ``u(x, 0)`` and ``u_t(x, 0) = 0`` (``initial_velocity``;
``time_order = 2``). The reference is the explicit leapfrog scheme (central differences in space
and time, second order, Courant number ``c Δt / h`` at most 1), checked at order 2 by its
refinement study.

>>> import pdesolve
>>> p = pdesolve.get_problem("wave")
>>> p.time_order, p.reference(n=32, estimate=False).info["courant"]
(2, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import to_numpy_fn
from pdesolve.problems.geometry import Interval
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    TimeDependentProblem,
    second_derivative,
    space_time_derivatives,
)


@PROBLEMS.register("wave")
class WaveProblem(TimeDependentProblem):
    """``u_tt - c² u_xx = 0`` with the exact two-mode standing wave."""

    name = "wave"
    time_order = 2

    def __init__(self, c: float = 2.0, amplitude: float = 0.5, t_end: float = 1.0) -> None:
        if not c > 0:
            raise ValueError(f"wave: c must be positive, got {c!r}")
        self.c, self.amplitude = float(c), float(amplitude)
        super().__init__(Interval(0.0, 1.0), (0.0, t_end), c=self.c, amplitude=self.amplitude,
                         t_end=float(t_end))  # fmt: skip

    @property
    def has_exact_solution(self) -> bool:
        return True

    def exact_solution(self, xt: Tensor) -> Tensor:
        x, t, c = xt[:, 0], xt[:, 1], self.c
        return (torch.sin(math.pi * x) * torch.cos(c * math.pi * t)
                + self.amplitude * torch.sin(4 * math.pi * x) * torch.cos(4 * c * math.pi * t))

    def initial_value(self, x: Tensor) -> Tensor:
        return torch.sin(math.pi * x[:, 0]) + self.amplitude * torch.sin(4 * math.pi * x[:, 0])

    def initial_velocity(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        xt: Tensor,
        params: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        xt, _, ux, ut = space_time_derivatives(u, xt)
        return second_derivative(ut, xt, 1) - self.c**2 * second_derivative(ux[:, 0], xt, 0)

    def _leapfrog(self, n: int, courant: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t0, t1 = self.t_span
        h = 1.0 / n
        nt = math.ceil((t1 - t0) * self.c / (courant * h))
        dt = (t1 - t0) / nt
        lam2 = (self.c * dt / h) ** 2
        x = np.linspace(0.0, 1.0, n + 1)
        u_prev = to_numpy_fn(self.initial_value, x[:, None])
        v0 = to_numpy_fn(self.initial_velocity, x[:, None])
        u_prev[[0, -1]] = 0.0

        def lap(u: np.ndarray) -> np.ndarray:
            out = np.zeros_like(u)
            out[1:-1] = u[2:] - 2 * u[1:-1] + u[:-2]
            return out

        u = u_prev + dt * v0 + 0.5 * lam2 * lap(u_prev)  # Taylor start, second order
        u[[0, -1]] = 0.0
        frames = [u_prev, u]
        for _ in range(2, nt + 1):
            u_prev, u = u, 2 * u - u_prev + lam2 * lap(u)
            frames.append(u)
        return x, np.linspace(t0, t1, nt + 1), np.stack(frames, axis=1)

    def _compute_reference(
        self, n: int = 256, courant: float = 0.5, estimate: bool = True
    ) -> ReferenceSolution:
        """``n`` cells in space, Courant number ``courant`` (at most 1); with ``estimate`` the
        run at ``n/2`` (same Courant number) gives the error estimate."""
        if not 0 < courant <= 1:
            raise ValueError(f"wave: the leapfrog scheme is stable for 0 < courant <= 1, got "
                             f"{courant!r}")  # fmt: skip
        x, t, values = self._leapfrog(int(n), courant)
        pts = np.stack(np.meshgrid(x, t, indexing="ij"), -1).reshape(-1, 2)
        info: dict[str, Any] = {
            "method": "finite differences + leapfrog", "resolution": {"n": n, "nt": len(t) - 1},
            "courant": courant,
            "max_error": float(np.abs(to_numpy_fn(self.exact_solution, pts)
                                      - values.ravel()).max()),
        }  # fmt: skip
        if estimate and n % 2 == 0:
            _, tc, coarse = self._leapfrog(n // 2, courant)
            if len(tc) == (len(t) + 1) // 2:
                info["error_estimate"] = float(np.abs(coarse - values[::2, ::2]).max()) / 3
        return ReferenceSolution((x, t), values, info)
