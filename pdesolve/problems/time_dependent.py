"""Time-dependent problems: space-time domains, initial and boundary data, reference solutions.

A time-dependent problem lives on a :class:`SpaceTimeDomain`, whose points are
``(x_1, …, x_d, t)`` with **time in the last column**. Its continuous form is the initial value
``u(x, t0)``, Dirichlet data on the non-periodic sides of the spatial boundary, and a torch PDE
residual for PINNs; its classical solution comes from :meth:`TimeDependentProblem.reference`,
computed in-process by the problem's own solver (cached per options), instead of a linear system.

>>> import torch
>>> from pdesolve.problems.geometry import Interval
>>> st = SpaceTimeDomain(Interval(-1, 1), (0.0, 1.0))
>>> gen = torch.Generator().manual_seed(0)
>>> st.dim, st.sample_initial(3, gen)[:, 1].tolist()
(2, [0.0, 0.0, 0.0])
>>> bool(st.contains(st.sample_interior(100, gen).numpy()).all())
True
>>> SpaceTimeDomain(Interval(-1, 1), (1.0, 0.0))
Traceback (most recent call last):
    ...
ValueError: t_span must be (t0, t1) with t0 < t1, got (1.0, 0.0)
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems.base import Problem, linear_solver, to_numpy_fn, use_linear_solvers
from pdesolve.problems.domains import Domain


def _check_t_span(t_span: Sequence[float]) -> tuple[float, float]:
    try:
        t0, t1 = (float(t) for t in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"t_span must be a pair (t0, t1), got {t_span!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1)) or t1 <= t0:
        raise ValueError(f"t_span must be (t0, t1) with t0 < t1, got {tuple(t_span)!r}")
    return t0, t1


class SpaceTimeDomain(Domain):
    """``space × [t0, t1]``: a domain of dimension ``space.dim + 1``, time last."""

    def __init__(self, space: Domain, t_span: Sequence[float]) -> None:
        if not isinstance(space, Domain):
            raise TypeError(f"space must be a Domain, got {type(space).__name__}")
        self.space = space
        self.t_span = _check_t_span(t_span)
        self.dim = space.dim + 1

    def __repr__(self) -> str:
        return f"SpaceTimeDomain({self.space!r}, {self.t_span})"

    def _times(self, n: int, generator: torch.Generator | None) -> Tensor:
        t0, t1 = self.t_span
        return t0 + (t1 - t0) * torch.rand(n, 1, generator=generator, dtype=torch.float64)

    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Points uniform in space × time."""
        return torch.cat([self.space.sample_interior(n, generator), self._times(n, generator)], 1)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The lateral boundary: the spatial boundary × uniform ``t``."""
        return torch.cat([self.space.sample_boundary(n, generator), self._times(n, generator)], 1)

    def sample_initial(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``x`` uniform in space, ``t = t0``."""
        x = self.space.sample_interior(n, generator)
        return torch.cat([x, torch.full((n, 1), self.t_span[0], dtype=torch.float64)], 1)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Whether each row ``(x, t)`` lies in the closed space-time cylinder."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"points must have shape (N, {self.dim}) with t last, got {x.shape}")
        if not hasattr(self.space, "contains"):
            raise TypeError(f"{type(self.space).__name__} cannot test membership (no contains)")
        t0, t1 = self.t_span
        tol = 1e-12 * max(1.0, abs(t0), abs(t1))
        t = x[:, -1]
        return self.space.contains(x[:, :-1]) & (t >= t0 - tol) & (t <= t1 + tol)

    @property
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of the spatial bounding box with ``t0``/``t1`` appended."""
        lo, hi = self.space.bounding_box  # type: ignore[attr-defined]
        return np.append(lo, self.t_span[0]), np.append(hi, self.t_span[1])


@dataclass
class ReferenceSolution:
    """A classical solution on a grid: ``values[i_1, …, i_d, i_t]`` at ``grid`` (time last).

    ``evaluate(points)`` interpolates at any ``(N, dim)`` points inside the grid's box (cubic in
    every direction unless the solver supplies its own, e.g. spectral, interpolant); ``info``
    says how it was computed: ``method``, ``resolution`` and ``error_estimate`` (the
    difference to a coarser run of the refinement study). For mesh-based (stationary)
    references ``grid`` holds the mesh points and ``values`` the nodal values.

    >>> import numpy as np
    >>> x, t = np.linspace(0, 1, 11), np.linspace(0, 1, 6)
    >>> ref = ReferenceSolution((x, t), np.add.outer(x**2, t), {"method": "demo"})
    >>> float(ref.evaluate(np.array([[0.55, 0.3]]))[0])
    0.6025
    """

    grid: tuple[np.ndarray, ...]
    values: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    evaluator: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.grid = tuple(np.asarray(g, dtype=np.float64) for g in self.grid)
        self.values = np.asarray(self.values, dtype=np.float64)
        self._interpolant = None

    @property
    def dim(self) -> int:
        return len(self.grid) if self.evaluator is None else self.values.ndim

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """The reference at ``points`` of shape ``(N, dim)`` (time last), shape ``(N,)``."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2:
            raise ValueError(f"points must have shape (N, dim), got {points.shape}")
        if self.evaluator is not None:
            return np.asarray(self.evaluator(points), dtype=np.float64)
        if points.shape[1] != len(self.grid):
            raise ValueError(f"points must have {len(self.grid)} columns, got {points.shape[1]}")
        lo = np.array([g[0] for g in self.grid])
        hi = np.array([g[-1] for g in self.grid])
        tol = 1e-9 * np.maximum(1.0, hi - lo)
        bad = np.any((points < lo - tol) | (points > hi + tol), axis=1)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} points lie outside the reference grid's box "
                f"[{lo.tolist()}, {hi.tolist()}], e.g. {points[bad][0].tolist()}"
            )
        if self._interpolant is None:
            from scipy.interpolate import RegularGridInterpolator

            cubic = all(len(g) >= 4 for g in self.grid)
            self._interpolant = RegularGridInterpolator(
                self.grid, self.values, method="cubic" if cubic else "linear",
                bounds_error=False, fill_value=None,
            )  # fmt: skip
        return self._interpolant(np.clip(points, lo, hi))


class TimeDependentProblem(Problem):
    """A PDE ``u_t = F(u, x, t)`` on ``space × [t0, t1]`` with initial and boundary data.

    Subclasses set their own attributes, then call ``super().__init__(space, t_span, periodic,
    **params)``, which checks the data: the initial value must return shape ``(N,)`` and be
    periodic along every periodic axis (whose sides carry no Dirichlet data; the period is the
    box length along that axis, so the space must be a ``Rectangle``/``Interval`` there).
    They implement :meth:`initial_value`, :meth:`pde_residual` and :meth:`_compute_reference`.

    Inverse problems list ``unknown_parameters`` (name -> true value); their residual reads each
    one from the ``params`` mapping it is given (see :meth:`parameter`).
    """

    kind = "time_dependent"
    #: order of the highest time derivative; problems of order 2 also give ``initial_velocity``
    time_order: int = 1

    def __init__(
        self,
        space: Domain,
        t_span: Sequence[float],
        periodic: Sequence[bool] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.domain = SpaceTimeDomain(space, t_span)
        self.space = space
        self.space_dim = space.dim
        self.dim = space.dim + 1
        self.t_span = self.domain.t_span
        periodic = (False,) * space.dim if periodic is None else tuple(bool(p) for p in periodic)
        if len(periodic) != space.dim:
            raise ValueError(f"periodic needs one flag per spatial axis ({space.dim}), got "
                             f"{periodic!r}")  # fmt: skip
        if any(periodic) and not hasattr(space, "lo"):
            raise ValueError("periodic axes need a box (Rectangle/Interval) space to define the "
                             f"period, got {space!r}")  # fmt: skip
        self.periodic = periodic
        if not hasattr(self, "unknown_parameters"):
            self.unknown_parameters: dict[str, float] = {}
        self._references: dict[str, ReferenceSolution] = {}
        self._check_initial_data()

    # checks -----------------------------------------------------------------------------------
    def _check_initial_data(self) -> None:
        gen = torch.Generator().manual_seed(1234)
        x = self.space.sample_interior(64, gen)
        u0 = self.initial_value(x)
        if not isinstance(u0, Tensor) or tuple(u0.shape) != (64,):
            shape = tuple(u0.shape) if hasattr(u0, "shape") else type(u0).__name__
            raise ValueError(
                f"{self.name}: initial_value must return one value per point, shape (N,) = "
                f"(64,) for 64 points of shape (64, {self.space_dim}); got {shape}"
            )
        if not torch.isfinite(u0).all():
            raise ValueError(f"{self.name}: the initial value is not finite everywhere")
        scale = 1.0 + float(u0.abs().max())
        for axis in np.flatnonzero(self.periodic):
            lo, hi = float(self.space.lo[axis]), float(self.space.hi[axis])  # type: ignore[attr-defined]
            xl, xh = x.clone(), x.clone()
            xl[:, axis], xh[:, axis] = lo, hi
            gap = float((self.initial_value(xl) - self.initial_value(xh)).abs().max())
            if gap > 1e-8 * scale:
                raise ValueError(
                    f"{self.name}: axis {axis} is periodic but the initial condition is not: "
                    f"u(x_{axis}={lo}) and u(x_{axis}={hi}) differ by up to {gap:.3g}"
                )

    def check_points(self, points: np.ndarray, what: str = "points") -> np.ndarray:
        """``points`` as a float64 ``(N, dim)`` array, or a ValueError if any lies outside."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise ValueError(f"{what} must have shape (N, {self.dim}) (x..., t), got "
                             f"{points.shape}")  # fmt: skip
        outside = ~self.domain.contains(points)
        if outside.any():
            raise ValueError(
                f"{what}: {int(outside.sum())} of {len(points)} lie outside the domain "
                f"{self.domain!r}, e.g. {points[outside][0].tolist()}"
            )
        return points

    # continuous form --------------------------------------------------------------------------
    @abstractmethod
    def initial_value(self, x: Tensor) -> Tensor:
        """``u(x, t0)`` at spatial points ``x`` of shape ``(N, space_dim)``, shape ``(N,)``."""

    def initial_velocity(self, x: Tensor) -> Tensor:
        """``u_t(x, t0)`` for second-order-in-time problems (``time_order == 2``)."""
        raise NotImplementedError(f"{self.name} is first order in time: no initial velocity")

    @abstractmethod
    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        xt: Tensor,
        params: Mapping[str, Tensor | float] | None = None,
    ) -> Tensor:
        """The strong-form residual at ``xt`` (N, dim) for a differentiable ``u``, shape (N,)."""

    def source(self, xt: Tensor) -> Tensor:
        """The forcing ``f(x, t)`` (0 unless a problem says otherwise)."""
        return torch.zeros(xt.shape[0], dtype=xt.dtype, device=xt.device)

    def parameter(self, name: str, params: Mapping[str, Tensor | float] | None) -> Tensor | float:
        """``params[name]`` when given (a trainable tensor), else the true value."""
        if params is not None and name in params:
            return params[name]
        return self.unknown_parameters[name]

    def dirichlet_mask(self, xt: Tensor) -> Tensor:
        """Which boundary points carry Dirichlet data (not on a side of a periodic axis)."""
        mask = torch.ones(xt.shape[0], dtype=torch.bool, device=xt.device)
        for axis in np.flatnonzero(self.periodic):
            lo, hi = float(self.space.lo[axis]), float(self.space.hi[axis])  # type: ignore[attr-defined]
            tol = 1e-12 * (hi - lo)
            on_side = ((xt[:, axis] - lo).abs() <= tol) | ((xt[:, axis] - hi).abs() <= tol)
            mask &= ~on_side
        return mask

    # classical solution -----------------------------------------------------------------------
    def discretize(self, **overrides: Any) -> LinearSystem:
        raise NotImplementedError(
            f"{self.name} is time-dependent and has no single linear system: call "
            "problem.reference(...) for its classical solution"
        )

    @abstractmethod
    def _compute_reference(self, **options: Any) -> ReferenceSolution:
        """Run the problem's classical solver with ``options``."""

    def reference(self, **options: Any) -> ReferenceSolution:
        """The classical solution computed in-process (cached per ``options``)."""
        key = repr(sorted(options.items()))
        if key not in self._references:
            self._references[key] = self._compute_reference(**options)
        return self._references[key]

    def solution_values(self, points: np.ndarray) -> np.ndarray:
        """The exact solution at ``points`` when known, else the reference's interpolant."""
        points = np.asarray(points, dtype=np.float64)
        if self.has_exact_solution:
            return to_numpy_fn(self.exact_solution, points)
        return self.reference().evaluate(points)

    def test_points(self, n_space: int, n_time: int) -> np.ndarray:
        """A fixed tensor grid (``n_space`` per spatial axis over the bounding box, ``n_time``
        times from ``t0`` to ``t1``), points outside the domain dropped; time last."""
        if n_space < 2 or n_time < 1:
            raise ValueError(f"need n_space >= 2 and n_time >= 1, got {n_space}, {n_time}")
        lo, hi = self.space.bounding_box  # type: ignore[attr-defined]
        axes = [np.linspace(a, b, int(n_space)) for a, b in zip(lo, hi, strict=True)]
        axes.append(np.linspace(*self.t_span, int(n_time)))
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)
        return pts[self.space.contains(pts[:, :-1])]  # type: ignore[attr-defined]

    # inverse problems -------------------------------------------------------------------------
    def observe(self, points: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
        """The solution at ``points`` (inside the domain), plus Gaussian noise of standard
        deviation ``noise`` times the clean values' standard deviation."""
        points = self.check_points(points, "observation points")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        values = self.solution_values(points)
        if noise > 0:
            rng = np.random.default_rng(seed)
            values = values + noise * values.std() * rng.standard_normal(values.shape)
        return values

    def observations(
        self, n: int, noise: float = 0.0, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` seeded random interior points of the space-time domain and noisy values there."""
        if not self.unknown_parameters:
            raise ValueError(f"{self.name} declares no unknown parameters (not an inverse problem)")
        gen = torch.Generator().manual_seed(int(seed))
        points = self.domain.sample_interior(int(n), gen).numpy()
        return points, self.observe(points, noise, seed)


def space_time_derivatives(
    u: Callable[[Tensor], Tensor], xt: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(xt, u, ∇_x u, u_t)`` at ``xt`` (made to require grad), keeping the graph.

    >>> import torch
    >>> xt = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    >>> _, u, ux, ut = space_time_derivatives(lambda p: p[:, 0] ** 2 * p[:, 1], xt)
    >>> ux.tolist(), ut.tolist()
    ([[2.0]], [0.25])
    """
    if not xt.requires_grad:
        xt = xt.clone().requires_grad_(True)
    values = u(xt).reshape(-1)
    (grad,) = torch.autograd.grad(values.sum(), xt, create_graph=True)
    return xt, values, grad[:, :-1], grad[:, -1]


def second_derivative(first: Tensor, xt: Tensor, axis: int) -> Tensor:
    """``∂ first / ∂ xt[:, axis]`` for a first derivative column, keeping the graph."""
    (grad,) = torch.autograd.grad(first.sum(), xt, create_graph=True)
    return grad[:, axis]


__all__ = [
    "ReferenceSolution",
    "SpaceTimeDomain",
    "TimeDependentProblem",
    "linear_solver",
    "second_derivative",
    "space_time_derivatives",
    "use_linear_solvers",
]
