"""The 27-point trilinear finite-element stencil of ``-∇·(k∇u)`` on a 3-D structured grid.

Cell ``(c0, c1, c2)`` (coefficient ``k_cells[c0, c1, c2]``) is the cube whose lowest corner is
full-grid node ``(c0, c1, c2)``. On a cube of side ``h`` the trilinear (Q1) element matrix of
``-∇·(k∇u)`` is ``k h`` times ``1/3`` on the diagonal, ``0`` between nodes sharing an edge of the
cube, ``-1/12`` between nodes on a face diagonal and ``-1/12`` between opposite corners. Summed
over the eight cells around a node and divided by the node volume ``h³`` (so that the operator
approximates ``-∇·(k∇u)`` pointwise, as the other schemes here), a node couples to

* its 6 face neighbours with weight 0,
* its 12 edge neighbours (offset with two non-zero entries) with ``-(k_a + k_b) / (12 h²)``
  (the two cells both nodes belong to),
* its 8 corner neighbours with ``-k_cell / (12 h²)`` (the one shared cell),

and the centre is minus the sum of the others (zero row sums away from the boundary). With
``k = 1`` this is the classical ``(8/3, -1/6, -1/12) / h²`` stencil.

>>> import numpy as np
>>> from pdesolve.discretize.grid import StructuredGrid
>>> s = trilinear_fe_stencil(StructuredGrid(3, 3), np.ones((4, 4, 4)))
>>> s.shape
(3, 3, 3, 3, 3, 3)
>>> [round(float(v) * 16 ** -1, 4) for v in (s[1, 1, 1, 1, 1, 1], s[1, 1, 1, 0, 0, 1],
...                                           s[1, 1, 1, 0, 0, 0], s[1, 1, 1, 0, 1, 1])]
[2.6667, -0.1667, -0.0833, 0.0]
"""

from __future__ import annotations

import itertools

import numpy as np

from pdesolve.discretize.grid import StructuredGrid


def trilinear_fe_stencil(grid: StructuredGrid, k_cells: np.ndarray, planes: int | None = None
                         ) -> np.ndarray:
    """Full (boundary links kept) 27-point stencil ``(n, n, n, 3, 3, 3)`` of trilinear FE for
    ``-∇·(k∇u)`` with cell-wise ``k`` of shape ``(n + 1, n + 1, n + 1)``, scaled by ``1/h²``.
    ``planes=m``: the stencil ``(m, n, n, 3, 3, 3)`` of ``m`` consecutive interior x-planes from
    the ``m + 1`` cell planes around them (``k_cells`` of shape ``(m + 1, n + 1, n + 1)``)."""
    if grid.dim != 3:
        raise ValueError(f"the 27-point trilinear FE stencil is 3-D only, got dim={grid.dim}")
    n = grid.n
    m = n if planes is None else planes
    k = np.asarray(k_cells, dtype=np.float64)
    if k.shape != (m + 1, n + 1, n + 1):
        raise ValueError(f"k_cells must have shape {(m + 1, n + 1, n + 1)}, got {k.shape}")
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("the diffusion coefficient must be finite and positive in every cell")
    s = np.zeros((m, n, n, 3, 3, 3))
    ends = (m, n, n)
    # interior node i (full index i + 1) lies in the cells with lowest corner i + 1 - e
    for e in itertools.product((0, 1), repeat=3):
        cell = k[tuple(slice(1 - ei, end + 1 - ei) for ei, end in zip(e, ends, strict=True))]
        for o in itertools.product((-1, 0, 1), repeat=3):
            nonzero = sum(1 for oi in o if oi)
            if nonzero < 2 or any(oi + ei not in (0, 1) for oi, ei in zip(o, e, strict=True)):
                continue  # face neighbours have no Q1 coupling; p + o must lie in the cell
            s[(..., *(oi + 1 for oi in o))] -= cell / 12.0
    s[..., 1, 1, 1] = -s.sum(axis=(3, 4, 5))
    return s / grid.h**2
