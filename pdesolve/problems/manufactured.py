"""Manufactured solutions on ``[0, 1]^d`` with closed-form Laplacians, written once in torch.

Every function takes points ``x`` of shape ``(N, d)`` (torch, float64) and returns shape ``(N,)``.

>>> import torch
>>> u = SineProduct(frequency=1)
>>> x = torch.full((1, 2), 0.5, dtype=torch.float64)
>>> float(u(x)), round(float(-u.laplacian(x)), 6)  # -Δu = 2π² u at the centre
(1.0, 19.739209)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor


class ManufacturedSolution(ABC):
    """A smooth exact solution ``u`` with its Laplacian in closed form."""

    @abstractmethod
    def __call__(self, x: Tensor) -> Tensor: ...

    @abstractmethod
    def laplacian(self, x: Tensor) -> Tensor: ...


class SineProduct(ManufacturedSolution):
    """``u = Π_i sin(m π x_i)``; zero on the boundary of the unit box."""

    def __init__(self, frequency: int = 1) -> None:
        self.frequency = frequency

    def __call__(self, x: Tensor) -> Tensor:
        return torch.prod(torch.sin(self.frequency * math.pi * x), dim=1)

    def laplacian(self, x: Tensor) -> Tensor:
        return -x.shape[1] * (self.frequency * math.pi) ** 2 * self(x)


class MultiFrequency(ManufacturedSolution):
    """``u = Σ_m Π_i sin(m π x_i)`` over ``modes`` (low and high frequencies, equal amplitude)."""

    def __init__(self, modes: Sequence[int] = (1, 4, 16)) -> None:
        self.modes = tuple(int(m) for m in modes)
        if not self.modes:
            raise ValueError("modes must name at least one frequency")
        self._terms = [SineProduct(m) for m in self.modes]

    def __call__(self, x: Tensor) -> Tensor:
        return sum(term(x) for term in self._terms)

    def laplacian(self, x: Tensor) -> Tensor:
        return sum(term.laplacian(x) for term in self._terms)


class ModulatedMultiFrequency(ManufacturedSolution):
    """``u = Σ_m Π_i w(x_i) sin(m π x_i)``, ``w(t) = 4t(1-t)``, over ``modes`` (default 1, 4, 16).

    :class:`MultiFrequency` is a sum of exact eigenvectors of the 5-point Laplacian, so CG solves
    its discrete system in as many iterations as it has modes; the bubble ``w`` spreads each mode
    over a band of grid frequencies, which gives a multi-frequency right-hand side with real work
    for an iterative solver.

    >>> import torch
    >>> u = ModulatedMultiFrequency()
    >>> x = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    >>> from pdesolve.problems.base import laplacian
    >>> bool(torch.allclose(laplacian(u(x), x), u.laplacian(x)))
    True
    """

    def __init__(self, modes: Sequence[int] = (1, 4, 16)) -> None:
        self.modes = tuple(int(m) for m in modes)
        if not self.modes:
            raise ValueError("modes must name at least one frequency")

    @staticmethod
    def _factor(t: Tensor, m: int) -> tuple[Tensor, Tensor]:
        """``g = w sin(mπt)`` and ``g''`` in closed form."""
        k = m * math.pi
        w, dw = 4 * t * (1 - t), 4 - 8 * t
        s, c = torch.sin(k * t), torch.cos(k * t)
        return w * s, -8.0 * s + 2 * dw * k * c - w * k * k * s

    def __call__(self, x: Tensor) -> Tensor:
        return sum(torch.prod(self._factor(x, m)[0], dim=1) for m in self.modes)

    def laplacian(self, x: Tensor) -> Tensor:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for m in self.modes:
            g, g2 = self._factor(x, m)
            for i in range(x.shape[1]):
                others = torch.cat([g[:, :i], g[:, i + 1 :]], dim=1)
                total = total + g2[:, i] * torch.prod(others, dim=1)
        return total


class PolynomialBubble(ManufacturedSolution):
    """``u = Π_i x_i² (1 - x_i)`` (in 2D the RAF paper's ``x²(1-x) y²(1-y)``)."""

    def __call__(self, x: Tensor) -> Tensor:
        return torch.prod(x**2 * (1 - x), dim=1)

    def laplacian(self, x: Tensor) -> Tensor:
        factors = x**2 * (1 - x)
        second = 2 - 6 * x
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for i in range(x.shape[1]):
            others = torch.cat([factors[:, :i], factors[:, i + 1 :]], dim=1)
            total = total + second[:, i] * torch.prod(others, dim=1)
        return total


class Exponential(ManufacturedSolution):
    """``u = exp(Σ_i x_i / √d)``: non-zero Dirichlet data, ``Δu = u``."""

    def __call__(self, x: Tensor) -> Tensor:
        return torch.exp(x.sum(dim=1) / math.sqrt(x.shape[1]))

    def laplacian(self, x: Tensor) -> Tensor:
        return self(x)


MANUFACTURED = {
    "sine": SineProduct,
    "multifrequency": MultiFrequency,
    "multifrequency_modulated": ModulatedMultiFrequency,
    "polynomial": PolynomialBubble,
    "exponential": Exponential,
}


def make_solution(name: str, **params) -> ManufacturedSolution:
    if name not in MANUFACTURED:
        raise ValueError(
            f"unknown manufactured solution {name!r}; known: {', '.join(sorted(MANUFACTURED))}"
        )
    return MANUFACTURED[name](**params)
