"""``diffusion_inverse``: identify the coefficient field ``k(x)`` of ``-∇·(k∇u) = f`` on the unit
square from sparse, noisy observations of ``u``.

The truth is ``k(x, y) = 1 + 0.5 sin(2πx) sin(2πy)`` (the ``smooth`` family of ``diffusion``)
with ``u = sin(πx) sin(πy)``; ``f`` follows from both. The problem declares
``unknown_fields = {"k": true k}``; its residual takes the trained field as
``pde_residual(u, x, params={"k": k_net})`` (a callable of points, or a tensor of values at
``x``). ``observations(n, noise, seed)`` gives seeded interior points and values of ``u``;
``discretize()`` is the forward problem with the true ``k`` (for a classical check).

>>> import pdesolve, torch
>>> p = pdesolve.get_problem("diffusion_inverse")
>>> pts, vals = p.observations(20, noise=0.01, seed=0)
>>> pts.shape, vals.shape, sorted(p.unknown_fields)
((20, 2), (20,), ['k'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import gradient, to_numpy_fn
from pdesolve.problems.diffusion import GridDiffusionProblem


@PROBLEMS.register("diffusion_inverse")
class DiffusionInverseProblem(GridDiffusionProblem):
    """``-∇·(k∇u) = f`` with ``k`` unknown: the truth, observations and a parametrised residual."""

    name = "diffusion_inverse"

    def __init__(self, n: int = 31) -> None:
        super().__init__(dim=2, n=n, coefficient="smooth", solution="sine")
        self.params = {"n": n}
        self.unknown_parameters: dict[str, float] = {}
        self.unknown_fields: dict[str, Callable[[Tensor], Tensor]] = {"k": self.coefficient}

    def pde_residual(
        self,
        u: Callable[[Tensor], Tensor],
        x: Tensor,
        params: Mapping[str, Any] | None = None,
    ) -> Tensor:
        """``-∇·(k∇u) - f`` with ``k = params["k"]`` (callable or values) when given."""
        if not x.requires_grad:
            x = x.clone().requires_grad_(True)
        k = params.get("k") if params is not None else None
        if k is None:
            k = self.coefficient(x)
        elif callable(k):
            k = k(x).reshape(-1)
        flux = k[:, None] * gradient(u(x).reshape(-1), x)
        divergence = sum(gradient(flux[:, i], x)[:, i] for i in range(x.shape[1]))
        return -divergence - self.source(x)

    def check_points(self, points: np.ndarray, what: str = "points") -> np.ndarray:
        """``points`` as ``(N, 2)`` float64, or a ValueError if any lies outside the square."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"{what} must have shape (N, 2), got {points.shape}")
        outside = ~self.domain.contains(points)
        if outside.any():
            raise ValueError(f"{what}: {int(outside.sum())} of {len(points)} lie outside the "
                             f"unit square, e.g. {points[outside][0].tolist()}")  # fmt: skip
        return points

    def observe(self, points: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
        """``u`` at ``points`` plus Gaussian noise of ``noise`` × the values' standard deviation."""
        points = self.check_points(points, "observation points")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        values = to_numpy_fn(self.exact_solution, points)
        if noise > 0:
            rng = np.random.default_rng(seed)
            values = values + noise * values.std() * rng.standard_normal(values.shape)
        return values

    def observations(
        self, n: int, noise: float = 0.0, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` seeded uniform interior points and (noisy) values of ``u`` there."""
        gen = torch.Generator().manual_seed(int(seed))
        points = self.domain.sample_interior(int(n), gen).numpy()
        return points, self.observe(points, noise, seed)
