"""Structured-grid discretizations of ``-∇·(k ∇u) = f`` with Dirichlet data, fully vectorised.

Both schemes return the stencil array (``grid.shape + (3,) * dim``; entry ``[p..., o...]`` couples
interior node ``p`` with node ``p + o - 1``) and the CSR matrix assembled from it. Couplings to
boundary nodes are moved into ``b`` and zeroed in the stencil. Operators are scaled to approximate
``-∇·(k∇u)`` pointwise, so ``b`` is ``f`` at the nodes plus boundary terms.

>>> from pdesolve.discretize.grid import StructuredGrid
>>> grid = StructuredGrid(dim=2, n=3)
>>> k = np.ones(grid.full_shape)
>>> stencil = fd_stencil(grid, k)
>>> stencil[1, 1] * grid.h**2  # the 5-point Laplacian at the centre node
array([[ 0., -1.,  0.],
       [-1.,  4., -1.],
       [ 0., -1.,  0.]])
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from pdesolve.discretize.grid import StructuredGrid

_CENTRE = 1


def _interior(dim: int) -> tuple[slice, ...]:
    return (slice(1, -1),) * dim


def harmonic_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``2ab / (a + b)``, the face coefficient between two nodal values."""
    return 2.0 * a * b / (a + b)


def fd_stencil(grid: StructuredGrid, k_nodes: np.ndarray, planes: int | None = None) -> np.ndarray:
    """Full (boundary links kept) 3/5/7-point stencil of ``-∇·(k∇u)`` from ``k`` at all grid nodes.

    Face coefficients are harmonic means of the two nodal values; the result is scaled by ``1/h²``.
    ``planes=m`` builds the stencil of ``m`` consecutive interior planes along x only (a rank's
    slab): ``k_nodes`` then holds those planes and one ghost plane on each side,
    ``(m + 2, n + 2, ...)``, and the stencil has shape ``(m, n, ...) + (3,) * dim`` with values
    equal to the same rows of the whole grid's stencil.
    """
    dim, h2 = grid.dim, grid.h**2
    k_nodes = np.asarray(k_nodes, dtype=np.float64)
    expected = grid.full_shape if planes is None else (planes + 2, *grid.full_shape[1:])
    if k_nodes.shape != expected:
        raise ValueError(f"k_nodes must have shape {expected}, got {k_nodes.shape}")
    if not np.all(np.isfinite(k_nodes)) or np.any(k_nodes <= 0):
        raise ValueError("the diffusion coefficient must be finite and positive at every node")
    inner = tuple(s - 2 for s in k_nodes.shape)
    stencil = np.zeros(inner + (3,) * dim)
    centre = (_CENTRE,) * dim
    for axis in range(dim):
        lo = [slice(None)] * dim
        hi = [slice(None)] * dim
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        faces = harmonic_mean(k_nodes[tuple(lo)], k_nodes[tuple(hi)]) / h2  # face i: nodes i, i+1
        plus = [slice(1, -1)] * dim
        minus = [slice(1, -1)] * dim
        plus[axis], minus[axis] = slice(1, inner[axis] + 1), slice(0, inner[axis])
        forward, backward = faces[tuple(plus)], faces[tuple(minus)]
        off_plus = list(centre)
        off_minus = list(centre)
        off_plus[axis], off_minus[axis] = 2, 0
        stencil[(...,) + tuple(off_plus)] = -forward
        stencil[(...,) + tuple(off_minus)] = -backward
        stencil[(...,) + centre] += forward + backward
    return stencil


def bilinear_fe_stencil(
    grid: StructuredGrid, k_cells: np.ndarray, planes: int | None = None
) -> np.ndarray:
    """Full 9-point stencil of bilinear finite elements for ``-∇·(k∇u)`` with cell-wise ``k``.

    ``k_cells[c0, c1]`` is the coefficient of the cell whose lower-left node is full-grid node
    ``(c0, c1)``, shape ``(n + 1, n + 1)``. Edge neighbours get ``-(k_a + k_b)/6``, corners
    ``-k_cell/3``, the centre minus the sum of the others, all over ``h²``. ``planes=m``: the
    stencil of ``m`` consecutive interior x-planes from the ``m + 1`` cell planes around them.
    """
    if grid.dim != 2:
        raise ValueError(f"the 9-point bilinear FE stencil is 2-D only, got dim={grid.dim}")
    n = grid.n
    m = n if planes is None else planes
    k = np.asarray(k_cells, dtype=np.float64)
    if k.shape != (m + 1, n + 1):
        raise ValueError(f"k_cells must have shape {(m + 1, n + 1)}, got {k.shape}")
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("the diffusion coefficient must be finite and positive in every cell")
    # the four cells around interior node (i, j), full indices 1..n: SW, SE, NW, NE
    sw, se = k[0:m, 0:n], k[1 : m + 1, 0:n]
    nw, ne = k[0:m, 1 : n + 1], k[1 : m + 1, 1 : n + 1]
    s = np.zeros((m, n, 3, 3))
    s[:, :, 0, 0] = -sw / 3
    s[:, :, 2, 0] = -se / 3
    s[:, :, 0, 2] = -nw / 3
    s[:, :, 2, 2] = -ne / 3
    s[:, :, 2, 1] = -(se + ne) / 6  # east edge
    s[:, :, 0, 1] = -(sw + nw) / 6  # west edge
    s[:, :, 1, 2] = -(nw + ne) / 6  # north edge
    s[:, :, 1, 0] = -(sw + se) / 6  # south edge
    s[:, :, 1, 1] = -s.sum(axis=(2, 3))
    return s / grid.h**2


def anisotropic_fe_stencil(
    grid: StructuredGrid, k_cells: np.ndarray, anisotropy: float, planes: int | None = None
) -> np.ndarray:
    """Full 9-point bilinear FE stencil for ``-∇·(K∇u)``, ``K = k diag(anisotropy, 1)`` per cell.

    Per cell, the x-part ``k_x ∫∂xφ_i ∂xφ_j`` gives ``-k_x/3`` to the x-neighbours, ``+k_x/6`` to
    the y-neighbours and ``-k_x/6`` to the corners (the y-part likewise with the axes swapped);
    ``anisotropy = 1`` is ``bilinear_fe_stencil``. For ``anisotropy < 1/2`` the x-links are
    positive: the matrix stays SPD but is not an M-matrix. ``planes``: as for
    ``bilinear_fe_stencil``.

    >>> grid = StructuredGrid(dim=2, n=3)
    >>> k = np.ones((4, 4))
    >>> bool(np.allclose(anisotropic_fe_stencil(grid, k, 1.0), bilinear_fe_stencil(grid, k)))
    True
    >>> anisotropic_fe_stencil(grid, k, 0.01)[1, 1] * grid.h**2 * 3
    array([[-0.505,  0.98 , -0.505],
           [-1.99 ,  4.04 , -1.99 ],
           [-0.505,  0.98 , -0.505]])
    """
    if not np.isfinite(anisotropy) or anisotropy <= 0:
        raise ValueError(f"anisotropy must be finite and positive, got {anisotropy!r}")
    bilinear_fe_stencil(grid, k_cells, planes)  # validates the grid and k
    n = grid.n
    m = n if planes is None else planes
    k = np.asarray(k_cells, dtype=np.float64)
    sw, se = k[0:m, 0:n], k[1 : m + 1, 0:n]
    nw, ne = k[0:m, 1 : n + 1], k[1 : m + 1, 1 : n + 1]
    east, west, north, south = se + ne, sw + nw, nw + ne, sw + se  # the two cells of each link
    s = np.zeros((m, n, 3, 3))
    for a, b, cell in ((0, 0, sw), (2, 0, se), (0, 2, nw), (2, 2, ne)):
        s[:, :, a, b] = -(anisotropy + 1.0) * cell / 6
    s[:, :, 2, 1] = -anisotropy * east / 3 + east / 6
    s[:, :, 0, 1] = -anisotropy * west / 3 + west / 6
    s[:, :, 1, 2] = anisotropy * north / 6 - north / 3
    s[:, :, 1, 0] = anisotropy * south / 6 - south / 3
    s[:, :, 1, 1] = -s.sum(axis=(2, 3))
    return s / grid.h**2


def stencil_to_csr(
    stencil: np.ndarray, global_shape: tuple[int, ...] | None = None, first_plane: int = 0
) -> sp.csr_matrix:
    """The CSR matrix of a stencil array over an interior grid (links leaving the grid dropped).

    Built directly in CSR form: offsets in lexicographic order give sorted column indices.
    With ``global_shape``, ``stencil`` holds the x-planes ``first_plane, first_plane + 1, ...``
    of that grid (a rank's slab): the result has the slab's rows and the whole grid's columns.
    """
    dim = stencil.ndim // 2
    shape = stencil.shape[:dim]
    full = tuple(global_shape) if global_shape is not None else shape
    if len(full) != dim or full[1:] != shape[1:] or first_plane + shape[0] > full[0]:
        raise ValueError(f"a stencil slab of shape {shape} at plane {first_plane} does not fit "
                         f"a grid of shape {full}")
    size = int(np.prod(shape))
    strides = [int(np.prod(full[a + 1 :])) for a in range(dim)]
    values, columns = [], []
    rows = np.arange(size, dtype=np.int64) + first_plane * strides[0]
    for offset in itertools.product((-1, 0, 1), repeat=dim):
        coef = stencil[(...,) + tuple(o + 1 for o in offset)]
        inside = np.ones(shape, dtype=bool)
        for axis, o in enumerate(offset):
            if o:
                line = np.arange(shape[axis]) + o + (first_plane if axis == 0 else 0)
                ok = (line >= 0) & (line < full[axis])
                inside &= ok.reshape([-1 if a == axis else 1 for a in range(dim)])
        coef = np.where(inside, coef, 0.0)
        if not coef.any():
            continue
        values.append(coef.ravel())
        columns.append(rows + sum(o * st for o, st in zip(offset, strides, strict=True)))
    if not values:  # an all-zero slab
        return sp.csr_matrix((size, int(np.prod(full))))
    vals = np.stack(values, axis=1)
    cols = np.stack(columns, axis=1)
    keep = vals != 0
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    index_dtype = np.int32 if max(cols.size, int(np.prod(full))) < 2**31 else np.int64
    return sp.csr_matrix(
        (vals[keep], cols[keep].astype(index_dtype), indptr.astype(index_dtype)),
        shape=(size, int(np.prod(full))),
    )


def eliminate_boundary(
    grid: StructuredGrid, full_stencil: np.ndarray, boundary_full: np.ndarray,
    first_plane: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Move couplings to boundary nodes into a right-hand-side term (in place).

    ``boundary_full`` holds the Dirichlet values on the full grid (interior entries ignored).
    ``full_stencil`` has its boundary links zeroed in place and is returned with the vector
    ``-Σ_o s_o g(p + o)`` to add to b. With ``first_plane``, ``full_stencil`` is the slab of
    interior x-planes from that one on and ``boundary_full`` the full-grid planes around it
    (one more on each side), as ``fd_stencil(..., planes=m)`` takes them.
    """
    dim, n = grid.dim, grid.n
    m = n if first_plane is None else full_stencil.shape[0]
    start = 0 if first_plane is None else first_plane
    g = np.array(boundary_full, dtype=np.float64).reshape((m + 2, *grid.full_shape[1:]))
    interior = [slice(1, -1)] * dim
    interior[0] = slice(max(1 - start, 0), min(n + 1 - start, m + 2))  # slab rows of full 1..n
    g[tuple(interior)] = 0.0
    stencil = full_stencil
    rhs = np.zeros(stencil.shape[:dim])
    for offset in itertools.product((-1, 0, 1), repeat=dim):
        if not any(offset):
            continue
        entry = (...,) + tuple(o + 1 for o in offset)
        if np.any(g):
            window = [slice(1 + o, n + 1 + o) for o in offset]
            window[0] = slice(1 + offset[0], m + 1 + offset[0])
            rhs -= stencil[entry] * g[tuple(window)]
        for axis, o in enumerate(offset):  # zero the links that leave the interior
            if not o:
                continue
            face = [slice(None)] * dim
            last = n - 1 - (start if axis == 0 else 0)  # the grid's last plane, slab-local
            first = -start if axis == 0 else 0
            at = last if o > 0 else first
            if 0 <= at < stencil.shape[axis]:
                face[axis] = at
                stencil[tuple(face) + entry[1:]] = 0.0
    return stencil, rhs.ravel()
