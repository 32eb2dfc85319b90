"""``Grid``: the structured array a system's unknowns live on, for methods that need one.

Multigrid, DCDM's network and the hybrid correctors work on arrays, not on flat vectors. A
structured problem attaches a ``Grid`` to its ``LinearSystem`` (``system.grid``) that says how:
the array ``shape``, the ``spacing`` per axis, which cells are unknowns (``mask``) and where the
unknowns sit (``points``). With ``mask`` None every cell of the array is an unknown, in C order;
otherwise the unknowns are the cells where ``mask`` is True, in C order.

>>> import numpy as np
>>> grid = Grid.uniform((3, 3), spacing=0.25)
>>> grid.dim, grid.size, grid.points[:2].tolist()
(2, 9, [[0.25, 0.25], [0.25, 0.5]])
>>> field = grid.to_array(np.arange(9.0))
>>> field.shape, grid.to_vector(field).tolist() == list(range(9))
((3, 3), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Grid:
    """A structured array of cells (or nodes) holding the unknowns of a system.

    Parameters
    ----------
    shape : cells per axis of the array (x first: axis 0 varies slowest in flat vectors)
    spacing : grid spacing per axis
    mask : boolean array of ``shape``, True where a cell is an unknown; None when all are
    points : ``(size, dim)`` coordinates of the unknowns, in the order of the system's vectors
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    mask: np.ndarray | None
    points: np.ndarray

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"grid shape must be positive integers, got {self.shape!r}")
        spacing = tuple(float(h) for h in np.broadcast_to(self.spacing, (len(shape),)))
        if any(not np.isfinite(h) or h <= 0 for h in spacing):
            raise ValueError(f"grid spacing must be positive, got {self.spacing!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", spacing)
        mask = self.mask
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != shape:
                raise ValueError(f"grid mask has shape {mask.shape}, the grid {shape}")
            if mask.all():
                mask = None
        object.__setattr__(self, "mask", mask)
        points = np.asarray(self.points, dtype=np.float64)
        if points.shape != (self.size, len(shape)):
            raise ValueError(
                f"grid points have shape {points.shape}, expected ({self.size}, {len(shape)})"
            )
        object.__setattr__(self, "points", points)

    @classmethod
    def uniform(
        cls, shape: tuple[int, ...], spacing: float | tuple[float, ...],
        mask: np.ndarray | None = None, origin: float | tuple[float, ...] | None = None,
    ) -> Grid:
        """A grid whose cell ``i`` (per axis) sits at ``origin + i h``; ``origin`` defaults to h
        (the interior nodes of a vertex-centred grid on the unit box)."""
        shape = tuple(int(s) for s in shape)
        h = np.broadcast_to(np.asarray(spacing, dtype=float), (len(shape),))
        o = h if origin is None else np.broadcast_to(np.asarray(origin, dtype=float), h.shape)
        axes = [o[d] + h[d] * np.arange(shape[d]) for d in range(len(shape))]
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=1)
        if mask is not None:
            points = points[np.asarray(mask, dtype=bool).ravel()]
        return cls(shape=shape, spacing=tuple(h), mask=mask, points=points)

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of unknowns."""
        return int(np.prod(self.shape)) if self.mask is None else int(self.mask.sum())

    @property
    def cells(self) -> int:
        """The number of cells of the array (unknowns or not)."""
        return int(np.prod(self.shape))

    def to_array(self, v: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The vector ``v`` of unknowns as an array of ``shape`` (``fill`` where inactive)."""
        v = np.asarray(v)
        if v.shape != (self.size,):
            raise ValueError(f"vector has shape {v.shape}, the grid has {self.size} unknowns")
        if self.mask is None:
            return v.reshape(self.shape)
        out = np.full(self.shape, fill, dtype=v.dtype)
        out[self.mask] = v
        return out

    def to_vector(self, field: np.ndarray) -> np.ndarray:
        """The unknowns of an array of ``shape``, as a flat vector."""
        field = np.asarray(field)
        if field.shape != self.shape:
            raise ValueError(f"array has shape {field.shape}, the grid {self.shape}")
        return field.reshape(-1) if self.mask is None else field[self.mask]
