"""The 3-D P-stencil rules evaluated for a multigrid set-up: numpy, Dirichlet grids, no autograd.

``pdesolve.discretize.prolongation3d`` writes the black-box rule (and the face / cell
completion the learned rule shares) as differentiable, batched torch code for training, which
evaluates the collapsed planes and lines of *every* fine stencil and gathers through strided
views. A set-up needs each only where it is used: on a Dirichlet grid ``n = 2nc + 1`` the fine
nodes fall into the coarse points and three kinds of neighbours, and each kind reads one thing:

* edge points (one even coordinate) their stencil collapsed onto the line along that axis,
* face points (two even coordinates) their stencil collapsed onto the plane normal to the
  odd one,
* cell points (three even coordinates) their full stencil.

``SetupStencils`` gathers each kind once (every fine stencil is read once, with one small matrix
product per kind) into contiguous arrays with the entry axis first, and the rules below are
then whole-array slices: the same formulas as the torch module, in the same order, so results
agree to rounding (the tests hold them to 1e-12). ``prolongation_pair3d`` assembles the
prolongation and its transpose in canonical CSR form without a sort.

>>> import numpy as np, torch
>>> from pdesolve import get_problem
>>> from pdesolve.discretize.prolongation3d import blackbox_pstencil3d
>>> s = get_problem("diffusion", dim=3, n=7, coefficient="lognormal", seed=0).discretize().stencil
>>> p = blackbox_pstencil3d_setup(s)
>>> ref = blackbox_pstencil3d(torch.as_tensor(s)).numpy()
>>> p.shape, bool(np.abs(p - ref).max() < 1e-13)
((3, 3, 3, 3, 3, 3), True)
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import scipy.sparse as sp

from pdesolve.discretize.prolongation import coarse_size
from pdesolve.discretize.prolongation3d import EDGES, FACES, NEIGHBOURS3D

_MIN_WEIGHT = 1e-6


def _edge(axis: int, side: int) -> int:
    """Index of ``(axis, side)`` in ``EDGES``."""
    return 2 * axis + (0 if side > 0 else 1)


def _collapse(view: np.ndarray, keep: tuple[int, ...]) -> np.ndarray:
    """``view`` ``(m1, m2, m3, 3, 3, 3)`` summed over the offset axes not in ``keep``, entry axes
    first: ``(3^len(keep), m1, m2, m3)`` (one matrix product over a contiguous copy)."""
    shape = view.shape[:3]
    flat = np.ascontiguousarray(view).reshape(-1, 27)
    if len(keep) == 3:
        out = flat
    else:
        kept = list(itertools.product(range(3), repeat=len(keep)))
        W = np.zeros((27, len(kept)))
        for k, o in enumerate(itertools.product(range(3), repeat=3)):
            W[k, kept.index(tuple(o[a] for a in keep))] = 1.0
        out = flat @ W
    return np.ascontiguousarray(out.T).reshape(-1, *shape)


class SetupStencils:
    """The fine stencil of a Dirichlet grid split by node kind (see the module docstring).

    Attributes: ``nc``; ``lines[axis]`` ``(3, ...)`` at the edge points along ``axis`` (that
    axis even: ``nc + 1`` entries there, ``nc`` in the others); ``planes[normal]`` ``(3, 3,
    ...)`` over the in-plane axes in increasing order at the face points with odd coordinate
    ``normal``; ``cells`` ``(3, 3, 3, nc + 1, nc + 1, nc + 1)`` at the cell points.
    """

    def __init__(self, stencil: np.ndarray) -> None:
        s = np.asarray(stencil, dtype=np.float64)
        n = s.shape[0]
        if s.shape != (n, n, n, 3, 3, 3):
            raise ValueError(f"need a 3-D stencil array (n, n, n, 3, 3, 3), got {s.shape}")
        self.nc = nc = coarse_size(n)
        self.stencil = s
        odd, even = slice(1, 2 * nc, 2), slice(0, 2 * nc + 1, 2)
        self.lines = []
        for axis in range(3):
            index = tuple(even if a == axis else odd for a in range(3))
            self.lines.append(_collapse(s[index], (axis,)))
        self.planes = []
        for normal in range(3):
            index = tuple(odd if a == normal else even for a in range(3))
            inplane = tuple(a for a in range(3) if a != normal)
            view = s[index]
            self.planes.append(_collapse(view, inplane).reshape(3, 3, *view.shape[:3]))
        self.cells = _collapse(s[even, even, even], (0, 1, 2)).reshape(3, 3, 3, nc + 1, nc + 1,
                                                                       nc + 1)

    def window(self, axes_even: tuple[int, ...], shifts: dict[int, int]) -> tuple[slice, ...]:
        """Slices of a gathered array (even along ``axes_even``) at ``C + shifts``."""
        nc = self.nc
        return tuple(slice((1 + shifts.get(a, 0)) // 2, (1 + shifts.get(a, 0)) // 2 + nc)
                     if a in axes_even else slice(None) for a in range(3))

    def neighbour_inputs(self, start: int, stop: int, dtype: Any = np.float64
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The seven fine stencils of ``NEIGHBOURS3D`` at the coarse points of coarse x-planes
        ``start .. stop - 1`` (the learned rule's input before normalisation), ``(m, 189)``, and
        the centre entries of the coarse points' own stencils, ``(m, 1)``, both as ``dtype``
        (numpy or torch); ``m = (stop - start) nc²`` in C order."""
        s, nc = self.stencil, self.nc
        dtype = np.dtype(str(dtype).removeprefix("torch."))
        planes = stop - start
        out = np.empty((planes, nc, nc, 7, 27), dtype=dtype)
        for k, o in enumerate(NEIGHBOURS3D):
            index = tuple(slice(2 * a + 1 + d, 2 * b + d, 2) for (a, b), d in
                          zip(((start, stop), (0, nc), (0, nc)), o, strict=True))
            out[:, :, :, k] = s[index].reshape(planes, nc, nc, 27)
        centre = s[2 * start + 1 : 2 * stop : 2, 1::2, 1::2, 1, 1, 1].reshape(-1, 1)
        if np.any(centre <= 0):
            raise ValueError("the prolongation network needs positive stencil centres")
        return out.reshape(-1, 189), centre.astype(dtype)


def edge_weights_setup(g: SetupStencils) -> np.ndarray:
    """Black-box edge weights ``(6, nc, nc, nc)`` (``EDGES`` order)."""
    nc = g.nc
    out = np.empty((6, nc, nc, nc))
    for axis, side in EDGES:
        line = g.lines[axis][(slice(None), *g.window((axis,), {axis: side}))]
        out[_edge(axis, side)] = -line[1 - side] / line[1]
    return out


def face_weights_setup(g: SetupStencils, edge: np.ndarray) -> np.ndarray:
    """Face weights ``(12, nc, nc, nc)`` (``FACES`` order) of the collapsed-plane rule from edge
    weights ``(6, nc, nc, nc)``."""
    out = np.empty((12, *edge.shape[1:]))
    for k, (normal, du, dv) in enumerate(FACES):
        u, v = (a for a in range(3) if a != normal)
        t = g.planes[normal][(slice(None), slice(None), *g.window((u, v), {u: du, v: dv}))]
        num = t[1 - du, 1 - dv] + t[1, 1 - dv] * edge[_edge(u, du)] + t[1 - du, 1] * edge[
            _edge(v, dv)]
        out[k] = -num / t[1, 1]
    return out


def complete_pstencil3d_setup(g: SetupStencils, edge: np.ndarray, faces: np.ndarray
                              ) -> np.ndarray:
    """P-stencils ``(nc, nc, nc, 3, 3, 3)`` from edge ``(6, ...)`` and face ``(12, ...)``
    weights, cell points by the zero-local-residual rule."""
    nc = g.nc
    p = np.empty((3, 3, 3, nc, nc, nc))
    p[1, 1, 1] = 1.0
    for axis, side in EDGES:
        o = [1, 1, 1]
        o[axis] += side
        p[tuple(o)] = edge[_edge(axis, side)]
    for k, (normal, du, dv) in enumerate(FACES):
        u, v = (a for a in range(3) if a != normal)
        o = [1, 1, 1]
        o[u], o[v] = 1 + du, 1 + dv
        p[tuple(o)] = faces[k]
    for d in itertools.product((-1, 1), repeat=3):
        s = g.cells[(slice(None),) * 3 + g.window((0, 1, 2), dict(enumerate(d)))]
        num = np.zeros((nc, nc, nc))
        for mask in itertools.product((0, 1), repeat=3):
            if not any(mask):
                continue
            towards = tuple(1 - m * di for m, di in zip(mask, d, strict=True))
            target = tuple(1 + (1 - m) * di for m, di in zip(mask, d, strict=True))
            num += s[towards] * p[target]
        p[tuple(1 + di for di in d)] = -num / s[1, 1, 1]
    return np.ascontiguousarray(p.transpose(3, 4, 5, 0, 1, 2))


def blackbox_pstencil3d_setup(stencil: np.ndarray | SetupStencils) -> np.ndarray:
    """The black-box P-stencils ``(nc, nc, nc, 3, 3, 3)`` of a Dirichlet fine stencil (equal to
    ``prolongation3d.blackbox_pstencil3d`` up to rounding)."""
    g = stencil if isinstance(stencil, SetupStencils) else SetupStencils(stencil)
    edge = edge_weights_setup(g)
    return complete_pstencil3d_setup(g, edge, face_weights_setup(g, edge))


def _shift(x: np.ndarray, shifts: dict[int, int]) -> np.ndarray:
    """``x[C + shift]`` over the three axes of ``(nc, nc, nc)`` fields, zero off the grid."""
    out = np.zeros_like(x)
    dst, src = [slice(None)] * 3, [slice(None)] * 3
    for axis, s in shifts.items():
        dst[axis], src[axis] = (slice(None, -1), slice(1, None)) if s > 0 else (
            slice(1, None), slice(None, -1))
    out[tuple(dst)] = x[tuple(src)]
    return out


def pair_normalise_setup(scores: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Edge weights ``(6, nc, nc, nc)`` from positive scores ``(6, ...)``: ``x_A / (x_A + x_B)``
    for the two coarse points sharing an edge point, ``fallback`` next to the boundary (as
    ``prolongation3d.pair_normalise3d``)."""
    w = fallback.copy()
    for axis in range(3):
        plus, minus = scores[_edge(axis, 1)], scores[_edge(axis, -1)]
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
        w[_edge(axis, 1)][lo] = plus[lo] / (plus[lo] + minus[hi])
        w[_edge(axis, -1)][hi] = minus[hi] / (minus[hi] + plus[lo])
    return w


def share_face_weights_setup(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``prolongation3d.share_face_weights3d`` on ``(12, nc, nc, nc)`` arrays."""
    y = np.maximum(base, _MIN_WEIGHT) * factor
    index = {f: k for k, f in enumerate(FACES)}
    out = np.empty_like(base)
    for k, (normal, du, dv) in enumerate(FACES):
        u, v = (a for a in range(3) if a != normal)
        total_y, total_b = y[k].copy(), base[k].copy()
        for su, sv in ((1, 0), (0, 1), (1, 1)):
            j = index[(normal, -du if su else du, -dv if sv else dv)]
            shifts = {a: s for a, s in ((u, du * su), (v, dv * sv)) if s}
            total_y += _shift(y[j], shifts)
            total_b += _shift(base[j], shifts)
        out[k] = y[k] * total_b / total_y
    return out


def prolongation_pair3d(pstencil: np.ndarray, n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(P, Pᵀ)``, both canonical CSR with int32 indices and exact zeros dropped, of Dirichlet
    P-stencils ``(nc, nc, nc, 3, 3, 3)`` (the matrix of ``prolongation3d.prolongation_matrix3d``).

    ``Pᵀ`` is written directly (row = coarse point, its 27 fine nodes in increasing order) and
    ``P`` is its transpose (a linear-time pass, no sort).

    >>> from pdesolve.discretize.prolongation3d import trilinear_pstencil, prolongation_matrix3d
    >>> p = trilinear_pstencil((3, 3, 3)).numpy()
    >>> P, R = prolongation_pair3d(p, 7)
    >>> bool((P != prolongation_matrix3d(p, 7)).nnz == 0 and (R != P.T).nnz == 0)
    True
    """
    p = np.asarray(pstencil, dtype=np.float64)
    nc = p.shape[0]
    if p.shape != (nc,) * 3 + (3, 3, 3) or nc != coarse_size(n):
        raise ValueError(f"P-stencils of shape {p.shape} do not fit a Dirichlet grid of n={n} "
                         f"(need {((n - 1) // 2,) * 3 + (3, 3, 3)})")
    if n**3 >= 2**31:
        raise ValueError(f"n = {n}: {n**3} fine nodes exceed 32-bit indices")
    k, c3 = np.arange(nc, dtype=np.int32), np.arange(3, dtype=np.int32)
    base = (2 * n * n * k[:, None, None] + 2 * n * k[None, :, None] + 2 * k[None, None, :])
    local = (n * n * c3[:, None, None] + n * c3[None, :, None] + c3[None, None, :]).ravel()
    indices = (base.reshape(-1, 1) + local).ravel()
    R = sp.csr_matrix((p.reshape(-1).copy(), indices, np.arange(0, 27 * nc**3 + 1, 27,
                                                                 dtype=np.int32)),
                      shape=(nc**3, n**3))
    R.eliminate_zeros()
    R.has_sorted_indices = True
    P = R.T.tocsr()  # csr_tocsc of R's arrays: sorted, no duplicates
    P.indices = P.indices.astype(np.int32, copy=False)
    P.indptr = P.indptr.astype(np.int32, copy=False)
    return P, R
