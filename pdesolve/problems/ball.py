"""The unit ball ``{|x| < 1}`` in ``R^d`` as a sampling domain (PINN collocation).

Uniform interior points: a uniform direction (normalised Gaussian) times radius ``U^{1/d}``;
boundary points: the direction alone. ``from_unit_cube`` maps points of ``[0, 1]^{d+1}`` (e.g. a
Sobol set) to the ball by the same construction, so quasi-random sets work too.

>>> import torch
>>> ball = UnitBall(3)
>>> gen = torch.Generator().manual_seed(0)
>>> bool((ball.sample_interior(1000, gen).norm(dim=1) < 1).all())
True
>>> r = ball.sample_boundary(5, gen).norm(dim=1)
>>> bool(torch.allclose(r, torch.ones(5, dtype=torch.float64)))
True
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import ndtri
from torch import Tensor

from pdesolve.problems.domains import Domain


class UnitBall(Domain):
    """The open unit ball in ``dim`` dimensions, centred at the origin."""

    def __init__(self, dim: int) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    #: dimension of the unit cube that :meth:`from_unit_cube` maps from
    @property
    def cube_dim(self) -> int:
        return self.dim + 1

    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        direction = self.sample_boundary(n, generator)
        radius = torch.rand(n, 1, generator=generator, dtype=torch.float64) ** (1.0 / self.dim)
        return direction * radius

    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return z / z.norm(dim=1, keepdim=True).clamp_min(1e-300)

    def from_unit_cube(self, u: np.ndarray) -> Tensor:
        """Map points of ``[0, 1]^{dim+1}`` into the ball (inverse-normal directions, radius
        ``u_{d+1}^{1/d}``); uniform points map to uniform points."""
        u = np.clip(np.asarray(u, dtype=np.float64), 1e-12, 1 - 1e-12)
        z = ndtri(u[:, : self.dim])
        direction = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-300)
        return torch.as_tensor(direction * u[:, self.dim :] ** (1.0 / self.dim))

    def distance(self, x: Tensor) -> Tensor:
        """``1 - |x|``: positive inside, zero exactly on the sphere."""
        return 1.0 - x.norm(dim=1)

    def contains(self, x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x, axis=1) <= 1.0
