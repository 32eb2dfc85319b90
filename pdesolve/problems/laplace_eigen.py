"""``laplace_eigen``: the smallest Dirichlet eigenpair of ``-Δ`` on the unit box ``[0, 1]^d``.

``-Δu = λu`` in the box, ``u = 0`` on its boundary. The eigenpairs are known exactly:
``λ = π² Σ_i m_i²`` with ``u = 2^{d/2} Π_i sin(m_i π x_i)`` (``∫u² = 1``), ``m_i ≥ 1``; the
smallest is ``λ₁ = dπ²``. A PINN trains on the Rayleigh quotient ``∫|∇u|² / ∫u²``
(``pinn_loss = "rayleigh"``, hard boundary constraint) and is compared with the normalised ``u₁``
up to sign. ``pde_residual(u, x)`` is ``-Δu - λ₁u`` with the exact ``λ₁`` (a monitor, not the loss).

>>> import pdesolve
>>> p = pdesolve.get_problem("laplace_eigen", dim=2)
>>> [round(v / 9.8696044, 4) for v in p.eigenvalues(4)]  # π²·(2, 5, 5, 8)
[2.0, 5.0, 5.0, 8.0]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem, laplacian
from pdesolve.problems.domains import UnitBox


@PROBLEMS.register("laplace_eigen")
class LaplaceEigenProblem(Problem):
    """Smallest eigenpair of the Dirichlet Laplacian on ``[0, 1]^dim``."""

    name = "laplace_eigen"
    pinn_loss = "rayleigh"

    def __init__(self, dim: int = 2) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        super().__init__(dim=int(dim))
        self.dim = int(dim)
        self.domain = UnitBox(self.dim)

    def eigenvalues(self, count: int) -> list[float]:
        """The ``count`` smallest eigenvalues, with multiplicity."""
        top = math.isqrt(count * self.dim) + 2
        values = sorted(math.pi**2 * sum(m * m for m in ms)
                        for ms in itertools.product(range(1, top + 1), repeat=self.dim))
        return values[:count]

    @property
    def exact_eigenvalue(self) -> float:
        return self.dim * math.pi**2

    @property
    def has_exact_solution(self) -> bool:
        return True

    def exact_solution(self, x: Tensor) -> Tensor:
        """The first eigenfunction normalised to ``∫u² = 1`` (sign: positive inside)."""
        return 2 ** (self.dim / 2) * torch.prod(torch.sin(math.pi * x), dim=1)

    def source(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def pde_residual(self, u: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``-Δu - λ₁ u`` with the exact smallest eigenvalue ``λ₁``."""
        if not x.requires_grad:
            x = x.clone().requires_grad_(True)
        values = u(x).reshape(-1)
        return -laplacian(values, x) - self.exact_eigenvalue * values

    def pde_residual_from_derivatives(
        self, x: Tensor, u: Tensor, grad: Tensor, lap: Tensor
    ) -> Tensor:
        """The same residual from ``u``, ``∇u``, ``Δu`` at ``x`` (PINN forward Laplacian)."""
        return -lap - self.exact_eigenvalue * u

    def discretize(self, **overrides: Any) -> LinearSystem:
        raise NotImplementedError(
            "laplace_eigen is an eigenvalue problem, not a linear system; fit it with "
            "pdesolve.fit(problem, method='pinn') (Rayleigh-quotient loss)"
        )
