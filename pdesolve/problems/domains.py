"""Domains that know how to sample themselves (for PINN collocation) and test membership."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor


class Domain(ABC):
    dim: int

    @abstractmethod
    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` points uniformly distributed in the domain, shape ``(n, dim)``, float64."""

    @abstractmethod
    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` points uniformly distributed on the boundary, shape ``(n, dim)``, float64."""


class UnitBox(Domain):
    """The unit box ``[0, 1]^dim``.

    >>> import torch
    >>> box = UnitBox(2)
    >>> pts = box.sample_boundary(8, torch.Generator().manual_seed(0))
    >>> on_face = ((pts == 0) | (pts == 1)).sum(dim=1)  # exactly one coordinate on a face
    >>> bool((on_face == 1).all())
    True
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        import torch

        return torch.rand(n, self.dim, generator=generator, dtype=torch.float64)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        import torch

        x = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        if self.dim == 1:
            return torch.randint(0, 2, (n, 1), generator=generator).to(torch.float64)
        face = torch.randint(0, 2 * self.dim, (n,), generator=generator)
        axis, side = face // 2, (face % 2).to(torch.float64)
        x[torch.arange(n), axis] = side
        return x

    def distance(self, x: Tensor) -> Tensor:
        """A smooth function vanishing exactly on the boundary: ``Π_i x_i (1 - x_i)``."""
        return (x * (1 - x)).prod(1)

    def contains(self, x: np.ndarray) -> np.ndarray:
        return np.all((x >= 0) & (x <= 1), axis=1)
