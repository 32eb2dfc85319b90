"""``heat``: ``u_t = ∇·(k∇u) + f`` on ``[0, 1]^dim × [0, t_end]`` (``dim`` 1 or 2), Dirichlet data.

Coefficients (``coefficient=``): ``constant`` (``k = k_value``, the unknown parameter ``k`` of the
inverse problem) or ``smooth`` (``k = k_value (1 + 0.5 Π_i sin(2π x_i))``). Solutions
(``solution=``): ``manufactured``, the exact
``u = e^{-t} (Π_i sin(π x_i) + 0.25 Σ_i x_i)`` (time-dependent boundary data, ``f`` by
autograd), or ``none``: ``u0 = Π_i sin³(π x_i)``, ``f = 0``, ``g = 0`` (no closed form; the
cube makes the initial data compatible with the boundary data, ``∇·(k∇u0) = 0`` there).

The reference is the θ-scheme on the 3/5-point finite-difference operator
(``pdesolve.discretize.finite_difference``): backward Euler (``scheme="backward_euler"``,
order 1 in time) or Crank–Nicolson (order 2); every step solves ``(I + θ Δt A) u = r`` with one
solver object (``petsc_cg`` by default) set up once and reused for all steps.

>>> import pdesolve
>>> p = pdesolve.get_problem("heat", dim=1)
>>> ref = p.reference(n=31, nt=32, estimate=False)
>>> ref.values.shape, ref.info["linear_setups"]
((33, 33), 1)
>>> bool(ref.info["max_error"] < 2e-3)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from pdesolve.discretize.finite_difference import eliminate_boundary, fd_stencil, stencil_to_csr
from pdesolve.discretize.grid import StructuredGrid
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import PointCache, to_numpy_fn
from pdesolve.problems.geometry import Rectangle
from pdesolve.problems.time_dependent import (
    ReferenceSolution,
    TimeDependentProblem,
    linear_solver,
    space_time_derivatives,
)

SCHEMES = {"backward_euler": 1.0, "crank_nicolson": 0.5}


@PROBLEMS.register("heat")
class HeatProblem(TimeDependentProblem):
    """``u_t - ∇·(k∇u) - f = 0`` on the unit square/interval with Dirichlet data."""

    name = "heat"

    def __init__(
        self,
        dim: int = 1,
        coefficient: str = "smooth",
        k_value: float = 1.0,
        solution: str = "manufactured",
        t_end: float = 1.0,
    ) -> None:
        if dim not in (1, 2):
            raise ValueError(f"heat: dim must be 1 or 2, got {dim!r}")
        if coefficient not in ("constant", "smooth"):
            raise ValueError(f"heat: coefficient must be 'constant' or 'smooth', got "
                             f"{coefficient!r}")  # fmt: skip
        if solution not in ("manufactured", "none"):
            raise ValueError(f"heat: solution must be 'manufactured' or 'none', got {solution!r}")
        if not k_value > 0:
            raise ValueError(f"heat: k_value must be positive, got {k_value!r}")
        self.family, self.k_value, self.solution = coefficient, float(k_value), solution
        self._sources = PointCache()  # f at fixed collocation sets, computed once
        if coefficient == "constant":
            self.unknown_parameters = {"k": float(k_value)}
        super().__init__(Rectangle((0.0,) * dim, (1.0,) * dim), (0.0, t_end), dim=dim,
                         coefficient=coefficient, k_value=float(k_value), solution=solution,
                         t_end=float(t_end))  # fmt: skip

    # continuous form --------------------------------------------------------------------------
    def coefficient(self, x: Tensor, params: Mapping[str, Any] | None = None) -> Tensor:
        """``k`` at spatial points ``x`` (N, dim) (the ``k`` of ``params`` when constant)."""
        if self.family == "constant":
            k = self.parameter("k", params)
            return k * torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        return self.k_value * (1 + 0.5 * torch.prod(torch.sin(2 * math.pi * x), dim=1))

    @property
    def has_exact_solution(self) -> bool:
        return self.solution == "manufactured"

    def exact_solution(self, xt: Tensor) -> Tensor:
        if not self.has_exact_solution:
            return super().exact_solution(xt)
        x, t = xt[:, :-1], xt[:, -1]
        return torch.exp(-t) * (torch.prod(torch.sin(math.pi * x), dim=1) + 0.25 * x.sum(dim=1))

    def initial_value(self, x: Tensor) -> Tensor:
        if self.has_exact_solution:
            return self.exact_solution(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1))
        return torch.prod(torch.sin(math.pi * x) ** 3, dim=1)

    def _operator(self, u: Callable[[Tensor], Tensor], xt: Tensor, params=None):
        xt, _, ux, ut = space_time_derivatives(u, xt)
        flux = self.coefficient(xt[:, :-1], params)[:, None] * ux
        div = 0
        for i in range(self.space_dim):
            (g,) = torch.autograd.grad(flux[:, i].sum(), xt, create_graph=True)
            div = div + g[:, i]
        return xt, ut - div

    def source(self, xt: Tensor) -> Tensor:
        if not self.has_exact_solution:
            return torch.zeros(xt.shape[0], dtype=xt.dtype, device=xt.device)
        return self._sources(self._manufactured_source, xt)

    def _manufactured_source(self, xt: Tensor) -> Tensor:
        with torch.enable_grad():
            _, value = self._operator(self.exact_solution, xt.detach())
        return value.detach()

    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        xt: Tensor,
        params: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        xt, value = self._operator(u, xt, params)
        return value - self.source(xt)

    # reference --------------------------------------------------------------------------------
    def _solve(
        self, n: int, nt: int, scheme: str, solver: Any, solver_options: dict, n_save: int,
        startup: int = 2,
    ) -> tuple[StructuredGrid, np.ndarray, np.ndarray, dict]:  # fmt: skip
        if scheme not in SCHEMES:
            raise ValueError(f"heat: scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
        if nt < 1 or n_save < 1 or nt % n_save:
            raise ValueError(f"heat: nt ({nt}) must be a positive multiple of n_save ({n_save})")
        theta, grid = SCHEMES[scheme], StructuredGrid(dim=self.space_dim, n=int(n))
        t0, t1 = self.t_span
        dt = (t1 - t0) / nt
        k_nodes = to_numpy_fn(self.coefficient, grid.full_points).reshape(grid.full_shape)
        full = fd_stencil(grid, k_nodes)
        stencil, _ = eliminate_boundary(grid, full.copy(), np.zeros(grid.full_shape))
        A = stencil_to_csr(stencil)
        bnd = grid.boundary_mask
        inner = ~bnd

        times = t0 + dt * np.arange(nt + 1)
        # boundary data and sources at every step, each in one batched evaluation
        space = np.repeat(grid.full_points[None], nt + 1, axis=0)
        with_t = np.concatenate([space, np.broadcast_to(times[:, None, None], space.shape[:2]
                                                        + (1,))], axis=2)  # fmt: skip
        g_all = np.zeros(space.shape[:2])
        g_all[:, bnd] = to_numpy_fn(self.boundary_value, with_t[:, bnd].reshape(-1, self.dim)
                                    ).reshape(nt + 1, -1)  # fmt: skip
        f_all = to_numpy_fn(self.source, with_t[:, inner].reshape(-1, self.dim)).reshape(
            nt + 1, -1)

        def data(step: int) -> tuple[np.ndarray, np.ndarray]:
            """Boundary values on the full grid and ``r + f`` at the unknowns at a step."""
            _, r = eliminate_boundary(grid, full.copy(), g_all[step])
            return g_all[step], r + f_all[step]

        def data_at(t: float) -> np.ndarray:
            """``r + f`` at the unknowns at any time ``t`` (the start-up half steps)."""
            pts = np.column_stack([grid.full_points, np.full(len(grid.full_points), t)])
            g = np.zeros(len(pts))
            g[bnd] = to_numpy_fn(self.boundary_value, pts[bnd])
            _, r = eliminate_boundary(grid, full.copy(), g)
            return r + to_numpy_fn(self.source, pts[inner])

        x0 = grid.points
        u = to_numpy_fn(self.initial_value, x0)
        g, s = data(0)
        frames = [np.where(bnd, g, 0.0)]
        frames[0][inner] = u
        M = (sp.identity(grid.size, format="csr") + theta * dt * A).tocsr()
        explicit = (sp.identity(grid.size, format="csr") - (1 - theta) * dt * A).tocsr()
        options = {"rtol": 1e-12, "atol": 1e-14, **(solver_options or {})}
        iterations = 0
        with linear_solver(solver, **options) as step_solver:
            step_solver.setup(M)
            for step in range(1, nt + 1):
                g_new, s_new = data(step)
                if theta == 0.5 and step <= startup:
                    # Rannacher start: two backward-Euler half steps, whose matrix
                    # I + (Δt/2) A is Crank–Nicolson's: the same set-up serves both
                    half = step_solver.solve(u + 0.5 * dt * data_at(t0 + (step - 0.5) * dt), x0=u)
                    iterations += half.iterations
                    rhs = half.x + 0.5 * dt * s_new
                    u = half.x
                else:
                    rhs = explicit @ u + dt * (theta * s_new + (1 - theta) * s)
                result = step_solver.solve(rhs, x0=u)
                if not result.converged:
                    raise RuntimeError(f"heat: the step solve failed at step {step}: "
                                       f"{result.reason!r}")  # fmt: skip
                iterations += result.iterations
                u, s = result.x, s_new
                if step % (nt // n_save) == 0:
                    frame = g_new.copy()
                    frame[inner] = u
                    frames.append(frame)
            setups = result.info.get("setups", 1)
        values = np.stack(frames, axis=-1).reshape(grid.full_shape + (len(frames),))
        times = np.linspace(t0, t1, len(frames))
        info = {"linear_setups": setups, "linear_iterations": iterations, "dt": dt}
        return grid, times, values, info

    def _compute_reference(
        self,
        n: int = 63,
        nt: int = 64,
        scheme: str = "crank_nicolson",
        solver: Any = "petsc_cg",
        solver_options: dict | None = None,
        n_save: int | None = None,
        estimate: bool = True,
        startup: int = 2,
    ) -> ReferenceSolution:
        """``n`` interior nodes per axis (``h = 1/(n+1)``), ``nt`` steps, ``n_save`` stored
        frames (default: every step up to 200); with ``estimate`` a run at ``h·2`` and ``Δt·2``
        gives the error estimate (``n`` odd and ``nt`` even for that). Crank–Nicolson starts with
        ``startup`` steps made of two backward-Euler half steps each (Rannacher), which damps
        the stiff modes excited by initial data incompatible with the boundary data."""
        n_save = n_save or max(d for d in range(1, min(nt, 200) + 1) if nt % d == 0)
        grid, times, values, info = self._solve(n, nt, scheme, solver, solver_options or {},
                                                n_save, startup)  # fmt: skip
        axis = np.arange(grid.n + 2) * grid.h
        info = {"method": f"finite differences + {scheme.replace('_', '-')}",
                "resolution": {"n": n, "nt": nt}, **info}  # fmt: skip
        ref = ReferenceSolution((axis,) * self.space_dim + (times,), values, info)
        pts = np.stack(np.meshgrid(*ref.grid, indexing="ij"), -1).reshape(-1, self.dim)
        if self.has_exact_solution:
            info["max_error"] = float(np.abs(to_numpy_fn(self.exact_solution, pts)
                                             - values.ravel()).max())  # fmt: skip
        if estimate and n % 2 == 1 and nt % 2 == 0 and n_save % 2 == 0:
            _, _, coarse, _ = self._solve((n - 1) // 2, nt // 2, scheme, solver,
                                          solver_options or {}, n_save // 2, startup)  # fmt: skip
            fine = values[(slice(None, None, 2),) * self.space_dim + (slice(None, None, 2),)]
            order = 2 if scheme == "crank_nicolson" else 1
            diff = float(np.abs(coarse - fine).max())
            info["error_estimate"] = diff / (2**order - 1)
            info["error_estimate_note"] = (f"Richardson: max difference to the run at 2h, 2Δt "
                                           f"over 2^{order} - 1")  # fmt: skip
        return ref
