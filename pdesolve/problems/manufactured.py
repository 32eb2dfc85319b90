"""Manufactured solutions on ``[0, 1]^d`` with closed-form Laplacians, written once for torch
and numpy.

Every function takes points ``x`` of shape ``(N, d)`` (a torch tensor, or a numpy array: then no
torch is needed) and returns shape ``(N,)`` of the same kind.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from pdesolve.problems.base import rows_full

if TYPE_CHECKING:
    from torch import Tensor


def _ns(x: Any) -> Any:
    """The array module of ``x``: numpy for numpy arrays, else torch."""
    if isinstance(x, np.ndarray):
        return np
    import torch

    return torch


def _prod_except(factors: Any, i: int) -> Any:
    """``Π_{j≠i} factors[:, j]`` row-wise."""
    out = rows_full(factors, 1.0)
    for j in range(factors.shape[1]):
        if j != i:
            out = out * factors[:, j]
    return out


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
        return _ns(x).sin(self.frequency * math.pi * x).prod(1)

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
        s, c = _ns(t).sin(k * t), _ns(t).cos(k * t)
        return w * s, -8.0 * s + 2 * dw * k * c - w * k * k * s

    def __call__(self, x: Tensor) -> Tensor:
        return sum(self._factor(x, m)[0].prod(1) for m in self.modes)

    def laplacian(self, x: Tensor) -> Tensor:
        total = rows_full(x, 0.0)
        for m in self.modes:
            g, g2 = self._factor(x, m)
            for i in range(x.shape[1]):
                total = total + g2[:, i] * _prod_except(g, i)
        return total


class PolynomialBubble(ManufacturedSolution):
    """``u = Π_i x_i² (1 - x_i)`` (in 2D the RAF paper's ``x²(1-x) y²(1-y)``)."""

    def __call__(self, x: Tensor) -> Tensor:
        return (x**2 * (1 - x)).prod(1)

    def laplacian(self, x: Tensor) -> Tensor:
        factors = x**2 * (1 - x)
        second = 2 - 6 * x
        total = rows_full(x, 0.0)
        for i in range(x.shape[1]):
            total = total + second[:, i] * _prod_except(factors, i)
        return total


class Exponential(ManufacturedSolution):
    """``u = exp(Σ_i x_i / √d)``: non-zero Dirichlet data, ``Δu = u``."""

    def __call__(self, x: Tensor) -> Tensor:
        return _ns(x).exp(x.sum(1) / math.sqrt(x.shape[1]))

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
