"""Structured grids on the unit box ``[0, 1]^d`` with Dirichlet boundary nodes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pdesolve.linalg.grid import Grid


@dataclass(frozen=True)
class StructuredGrid:
    """A vertex-centred grid with ``n`` interior nodes per dimension, spacing ``h = 1/(n+1)``.

    Node ``(i, j[, k])`` sits at ``(i h, j h[, k h])`` with ``i`` along x; index 0 and ``n + 1`` are
    boundary nodes. Unknowns are the interior nodes in C order of ``(i, j, k)`` (so x varies
    slowest), the ordering of every CSR matrix, vector and stencil array in pdesolve.

    >>> grid = StructuredGrid(dim=2, n=3)
    >>> grid.h, grid.shape, grid.points.shape
    (0.25, (3, 3), (9, 2))
    """

    dim: int
    n: int

    def __post_init__(self) -> None:
        if self.dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {self.dim!r}")
        if int(self.n) != self.n or self.n < 1:
            raise ValueError(
                f"n (interior nodes per dimension) must be a positive integer, got {self.n!r}"
            )

    @property
    def h(self) -> float:
        return 1.0 / (self.n + 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,) * self.dim

    @property
    def full_shape(self) -> tuple[int, ...]:
        return (self.n + 2,) * self.dim

    @property
    def size(self) -> int:
        return self.n**self.dim

    @property
    def cell_volume(self) -> float:
        return self.h**self.dim

    @property
    def node_weights(self) -> float:
        """Quadrature weight of every node (grid-L2 norms)."""
        return self.cell_volume

    @cached_property
    def points(self) -> np.ndarray:
        """Coordinates of the interior nodes, shape ``(n**dim, dim)``."""
        axis = np.arange(1, self.n + 1) * self.h
        return _meshgrid_points([axis] * self.dim)

    @cached_property
    def full_points(self) -> np.ndarray:
        """Coordinates of all nodes including the boundary, shape ``((n+2)**dim, dim)``."""
        axis = np.arange(self.n + 2) * self.h
        return _meshgrid_points([axis] * self.dim)

    @cached_property
    def boundary_mask(self) -> np.ndarray:
        """Boolean mask over ``full_points`` marking boundary nodes."""
        idx = np.indices(self.full_shape).reshape(self.dim, -1)
        return np.any((idx == 0) | (idx == self.n + 1), axis=0)

    def as_grid(self, mask: np.ndarray | None = None) -> Grid:
        """The typed ``Grid`` of the interior nodes (only those where ``mask`` is True, if given).

        >>> StructuredGrid(dim=2, n=3).as_grid().shape
        (3, 3)
        """
        points = self.points if mask is None else self.points[np.asarray(mask, bool).ravel()]
        return Grid(shape=self.shape, spacing=(self.h,) * self.dim, mask=mask, points=points)

    def embed(self, u_interior: np.ndarray, boundary_values: np.ndarray) -> np.ndarray:
        """Nodal field on the full grid from interior unknowns and values at all boundary nodes."""
        full = np.empty(self.boundary_mask.shape, dtype=np.float64)
        full[~self.boundary_mask] = u_interior
        full[self.boundary_mask] = boundary_values
        return full

    def cells(self) -> tuple[str, np.ndarray]:
        """meshio cell type and connectivity of the full grid: lines, quads or hexahedra."""
        m = self.n + 2
        ids = np.arange(m**self.dim).reshape(self.full_shape)
        if self.dim == 1:
            return "line", np.stack([ids[:-1], ids[1:]], axis=1)
        if self.dim == 2:
            quad = [ids[:-1, :-1], ids[1:, :-1], ids[1:, 1:], ids[:-1, 1:]]
            return "quad", np.stack([q.ravel() for q in quad], axis=1)
        corners = [
            ids[:-1, :-1, :-1], ids[1:, :-1, :-1], ids[1:, 1:, :-1], ids[:-1, 1:, :-1],
            ids[:-1, :-1, 1:], ids[1:, :-1, 1:], ids[1:, 1:, 1:], ids[:-1, 1:, 1:],
        ]  # fmt: skip
        return "hexahedron", np.stack([c.ravel() for c in corners], axis=1)


@dataclass(frozen=True)
class GridSlab:
    """The interior x-planes ``first .. first + planes - 1`` of a ``StructuredGrid``, with one
    ghost plane of the full grid on each side: what one MPI rank assembles.

    ``points`` are the slab's interior nodes (in the grid's order, starting at unknown
    ``row_offset``), ``full_points`` the full-grid nodes of planes ``first .. first + planes + 1``
    (full-grid plane ``i + 1`` is interior plane ``i``), ``boundary_mask`` marks the boundary
    nodes among them.

    >>> slab = GridSlab.covering(StructuredGrid(dim=2, n=4), 5, 11)  # rows 5..10: planes 1, 2
    >>> slab.first, slab.planes, slab.row_offset, slab.full_points.shape
    (1, 2, 4, (24, 2))
    """

    grid: StructuredGrid
    first: int
    planes: int

    @classmethod
    def covering(cls, grid: StructuredGrid, lo: int, hi: int) -> GridSlab:
        """The smallest slab holding the unknowns ``[lo, hi)``."""
        plane = grid.n ** (grid.dim - 1)
        first = lo // plane
        return cls(grid, first, (hi - 1) // plane - first + 1)

    @property
    def row_offset(self) -> int:
        return self.first * self.grid.n ** (self.grid.dim - 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.planes, *self.grid.shape[1:])

    @property
    def full_shape(self) -> tuple[int, ...]:
        return (self.planes + 2, *self.grid.full_shape[1:])

    @cached_property
    def points(self) -> np.ndarray:
        h, n = self.grid.h, self.grid.n
        axes = [np.arange(self.first + 1, self.first + self.planes + 1) * h]
        return _meshgrid_points(axes + [np.arange(1, n + 1) * h] * (self.grid.dim - 1))

    @cached_property
    def full_points(self) -> np.ndarray:
        h, n = self.grid.h, self.grid.n
        axes = [np.arange(self.first, self.first + self.planes + 2) * h]
        return _meshgrid_points(axes + [np.arange(n + 2) * h] * (self.grid.dim - 1))

    @cached_property
    def boundary_mask(self) -> np.ndarray:
        idx = np.indices(self.full_shape).reshape(self.grid.dim, -1)
        idx[0] += self.first
        return np.any((idx == 0) | (idx == self.grid.n + 1), axis=0)


def _meshgrid_points(axes: list[np.ndarray]) -> np.ndarray:
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def stencil_offsets(dim: int, full: bool) -> list[tuple[int, ...]]:
    """Offsets of a ``3**dim`` stencil (``full``) or of the ``2 dim + 1`` star stencil."""
    offsets = list(itertools.product((-1, 0, 1), repeat=dim))
    if full:
        return offsets
    return [o for o in offsets if sum(abs(v) for v in o) <= 1]


def coarse_size(n: int, periodic: bool = False) -> int:
    """Coarse points per dimension for ``n`` fine nodes (``n = 2^k - 1`` Dirichlet, even periodic).

    >>> coarse_size(63), coarse_size(16, periodic=True)
    (31, 8)
    """
    if periodic:
        if n % 2 or n < 2:
            raise ValueError(f"a periodic grid needs an even number of nodes, got n={n}")
        return n // 2
    if n < 3 or n % 2 == 0:
        raise ValueError(f"Dirichlet 2:1 coarsening needs odd n >= 3 (n = 2^k - 1), got n={n}")
    return (n - 1) // 2
