"""Galerkin coarsening of 2-D 9-point stencils in closed form, and prolongations in CSR form.

For full 2:1 coarsening on a Dirichlet grid (``n = 2nc + 1`` fine nodes per dimension, coarse
point ``(I, J)`` at fine node ``(2I + 1, 2J + 1)``; see ``pdesolve.discretize.prolongation``) a
prolongation with 3×3 P-stencils ``p[I, J, a, b]`` (weight of coarse point ``(I, J)`` at fine node
``(2I + a, 2J + b)``) maps a 9-point fine operator to a 9-point coarse one: ``Pᵀ A P`` couples a
coarse point only with its eight neighbours. ``galerkin_stencil`` forms that coarse stencil
directly from the two stencil arrays with strided array slices (about 160 vectorised
multiply-adds per coarse point, no sparse matrix product):

    (A P e_IJ)(2I + u, 2J + v) = Σ_ab s[2I + u, 2J + v, a - u + 1, b - v + 1] · p[I, J, a, b],
    (Pᵀ A P)[IJ, (I + dI)(J + dJ)] = Σ_ab p[I + dI, J + dJ, a, b] · (A P e_IJ)(2I + 2dI + a, …),

with ``u, v ∈ {-1, …, 3}`` and everything outside the grid zero. ``prolongation_csr`` writes the
``n² × nc²`` prolongation as canonical CSR arrays (rows in order, sorted columns, explicit zeros
dropped), ready for ``scipy.sparse.csr_matrix`` or ``PETSc.Mat().createAIJ(csr=...)``.

>>> import numpy as np
>>> import scipy.sparse as sp
>>> from pdesolve.discretize.finite_difference import stencil_to_csr
>>> rng = np.random.default_rng(0)
>>> s = rng.random((7, 7, 3, 3))
>>> p = rng.random((3, 3, 3, 3))
>>> indptr, indices, data = prolongation_csr(p, 7)
>>> P = sp.csr_matrix((data, indices, indptr), shape=(49, 9))
>>> A = stencil_to_csr(s)
>>> bool(np.allclose(stencil_to_csr(galerkin_stencil(s, p)).toarray(), (P.T @ A @ P).toarray()))
True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _check(stencil: np.ndarray, pstencil: np.ndarray) -> tuple[int, int]:
    n, nc = stencil.shape[0], pstencil.shape[0]
    if stencil.shape != (n, n, 3, 3):
        raise ValueError(f"need a 2-D 9-point stencil array (n, n, 3, 3), got {stencil.shape}")
    if pstencil.shape != (nc, nc, 3, 3) or n != 2 * nc + 1:
        raise ValueError(
            f"P-stencils of shape {pstencil.shape} do not fit a Dirichlet grid of n={n} "
            f"(need ({(n - 1) // 2}, {(n - 1) // 2}, 3, 3) and odd n)"
        )
    return n, nc


def _window(u: int) -> range:
    """Local P-stencil offsets ``a`` whose node ``2K + a`` is a neighbour of fine ``2K + u``."""
    return range(max(0, u - 1), min(2, u + 1) + 1)


def galerkin_stencil(stencil: np.ndarray, pstencil: np.ndarray, rows: int = 16) -> np.ndarray:
    """The coarse stencil ``(nc, nc, 3, 3)`` of ``Pᵀ A P`` (see the module docstring).

    ``stencil`` is the fine stencil ``(n, n, 3, 3)``, ``pstencil`` the P-stencils
    ``(nc, nc, 3, 3)``; entries pointing out of either grid do not contribute. The work is done
    ``rows`` coarse rows at a time, so that the operands stay in cache.
    """
    s = np.asarray(stencil, dtype=np.float64)
    p = np.asarray(pstencil, dtype=np.float64)
    n, nc = _check(s, p)
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    sp_ = np.zeros((n + 2, n + 2, 3, 3))
    sp_[1:-1, 1:-1] = s
    # ap[u + 1, v + 1, K + 1, L + 1] = (A P e_KL) at fine node (2K + u, 2L + v), u, v in -1..3
    ap = np.zeros((5, 5, nc + 2, nc + 2))
    for k0 in range(0, nc, rows):
        k1 = min(k0 + rows, nc)
        pk = p[k0:k1]
        for u in range(-1, 4):
            fine = sp_[2 * k0 + u + 1 : 2 * k1 + u + 1 : 2]
            for v in range(-1, 4):
                block = fine[:, v + 1 : v + 1 + 2 * nc : 2]
                acc = ap[u + 1, v + 1, k0 + 1 : k1 + 1, 1:-1]
                for a in _window(u):
                    for b in _window(v):
                        acc += block[:, :, a - u + 1, b - v + 1] * pk[:, :, a, b]
    # out[I, J, dI + 1, dJ + 1] = sum_ab p[I, J, a, b] (A P e_(I+dI, J+dJ))(2I + a, 2J + b)
    out = np.zeros((nc, nc, 3, 3))
    for i0 in range(0, nc, rows):
        i1 = min(i0 + rows, nc)
        pi = p[i0:i1]
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                acc = out[i0:i1, :, di + 1, dj + 1]
                for a in range(3):
                    u = a - 2 * di
                    if not -1 <= u <= 3:
                        continue
                    nb = ap[u + 1, :, i0 + 1 + di : i1 + 1 + di]
                    for b in range(3):
                        v = b - 2 * dj
                        if -1 <= v <= 3:
                            acc += pi[:, :, a, b] * nb[v + 1, :, 1 + dj : 1 + dj + nc]
    return out


def prolongation_csr(
    pstencil: np.ndarray, n: int, index_dtype: type = np.int32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of the ``n² × nc²`` prolongation of Dirichlet P-stencils.

    Rows are fine nodes (lexicographic, x slow), columns coarse points; each row holds its
    (one, two or four) coarse contributions in increasing column order, exact zeros dropped.
    """
    p = np.asarray(pstencil, dtype=np.float64)
    nc = p.shape[0]
    if p.shape != (nc, nc, 3, 3) or n != 2 * nc + 1:
        raise ValueError(f"P-stencils of shape {p.shape} do not fit a Dirichlet grid of n={n}")
    # entry (I, J, a, b) sits at fine row (2I + a) n + 2J + b, column I nc + J; listed in that
    # order, each row's entries come in increasing column order (a counting sort by row keeps
    # it), and no (row, column) pair repeats
    k, c3 = np.arange(nc, dtype=index_dtype), np.arange(3, dtype=index_dtype)
    base = (2 * n) * k[:, None] + 2 * k
    local = n * c3[:, None] + c3
    rows = (base[:, :, None, None] + local).ravel()
    cols = np.broadcast_to(np.arange(nc * nc, dtype=index_dtype).reshape(nc, nc, 1, 1),
                           p.shape).ravel()
    data = p.ravel()
    keep = data != 0
    if not keep.all():
        rows, cols, data = rows[keep], cols[keep], data[keep]
    P = sp.coo_matrix((data, (rows, cols)), shape=(n * n, nc * nc)).tocsr()
    return (P.indptr.astype(index_dtype, copy=False), P.indices.astype(index_dtype, copy=False),
            P.data)
