"""``oscillatory``: ``-Δu - (u-1)³ + (u+2)² = f`` on ``[0, 1]^d`` (RAF paper §4.2.4).

Exact solution ``u = Π_i sin(2kπ x_i)`` (``frequency=k``), zero on the boundary, so
``f = d (2kπ)² u - (u-1)³ + (u+2)²``. The equation is nonlinear: ``pde_residual`` includes the
nonlinear terms and ``discretize()`` raises ``NotImplementedError`` (no linear system).

>>> import torch, pdesolve
>>> p = pdesolve.get_problem("oscillatory", dim=2, frequency=1)
>>> x = torch.rand(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> r = p.pde_residual(p.exact_solution, x)  # the exact solution satisfies the PDE
>>> bool(r.abs().max() < 1e-9)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem, laplacian
from pdesolve.problems.domains import UnitBox


@PROBLEMS.register("oscillatory")
class OscillatoryProblem(Problem):
    """``-Δu - (u-1)³ + (u+2)² = f`` on the unit box, ``u = Π sin(2kπ x_i)``."""

    name = "oscillatory"

    def __init__(self, dim: int = 2, frequency: int = 1) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not frequency > 0:
            raise ValueError(f"frequency must be positive, got {frequency!r}")
        super().__init__(dim=int(dim), frequency=frequency)
        self.dim = int(dim)
        self.frequency = frequency
        self.domain = UnitBox(self.dim)

    @staticmethod
    def nonlinearity(u: Tensor) -> Tensor:
        """``-(u-1)³ + (u+2)²``, the non-Laplacian part of the operator."""
        return -((u - 1) ** 3) + (u + 2) ** 2

    @property
    def has_exact_solution(self) -> bool:
        return True

    def exact_solution(self, x: Tensor) -> Tensor:
        return torch.prod(torch.sin(2 * self.frequency * math.pi * x), dim=1)

    def source(self, x: Tensor) -> Tensor:
        u = self.exact_solution(x)
        return self.dim * (2 * self.frequency * math.pi) ** 2 * u + self.nonlinearity(u)

    def pde_residual(self, u: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``-Δu - (u-1)³ + (u+2)² - f`` at ``x`` via autograd."""
        if not x.requires_grad:
            x = x.clone().requires_grad_(True)
        values = u(x).reshape(-1)
        return -laplacian(values, x) + self.nonlinearity(values) - self.source(x)

    def pde_residual_from_derivatives(
        self, x: Tensor, u: Tensor, grad: Tensor, lap: Tensor
    ) -> Tensor:
        """The same residual from ``u``, ``∇u``, ``Δu`` at ``x`` (PINN forward Laplacian)."""
        return -lap + self.nonlinearity(u) - self.source(x)

    def discretize(self, **overrides: Any) -> LinearSystem:
        raise NotImplementedError(
            "oscillatory is a nonlinear PDE and has no linear system; fit it with "
            "pdesolve.fit(problem, method='pinn')"
        )
