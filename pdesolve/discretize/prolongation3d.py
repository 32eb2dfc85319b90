"""Operator-dependent prolongation for 2:1 coarsening of 3-D 27-point (and 7-point) stencils.

Conventions are those of the 2-D module ``pdesolve.discretize.prolongation``, one dimension up.
A stencil array has shape ``(..., n, n, n, 3, 3, 3)`` (entry ``[i, j, k, a, b, c]`` couples node
``(i, j, k)`` with ``(i + a - 1, j + b - 1, k + c - 1)``; x is axis 0 and varies slowest); the flat
form ``(..., n, n, n, 27)`` is accepted by ``as_stencil3d``. Coarse point ``(I, J, K)`` is fine
node ``(2I + 1, 2J + 1, 2K + 1)``: Dirichlet grids have ``n = 2^k - 1`` interior nodes and
``(n - 1) / 2`` coarse points per dimension, periodic grids even ``n`` and ``n / 2``. A P-stencil
array ``p`` ``(..., nc, nc, nc, 3, 3, 3)`` holds at ``p[..., I, J, K, a, b, c]`` the weight of
coarse point ``(I, J, K)`` at fine node ``(2I + a, 2J + b, 2K + c)``; the centre is 1.

The fine nodes around a coarse point ``C`` are of three kinds, by the number of coordinates in
which they differ from ``C`` (one, two or three), and the black-box rule (``blackbox_pstencil3d``;
the 3-D collapsed-stencil rule of Behie & Forsyth and Dendy's 3-D black-box multigrid, in the
variant without BoxMG's row-sum switch, which on Dirichlet diffusion problems in this C-point
convention makes no difference, as in 2-D) treats them in that order:

* **edge points** ``C ± e_x`` (on a coarse line): the fine stencil summed over the two
  directions across the line gives a 1-D stencil ``(w, c, e)`` along it, with ``w`` towards
  ``C``; the weight is ``-w / c``;
* **face points** ``C ± e_y ± e_z`` (in a coarse plane, between four coarse points): the fine
  stencil summed over the plane's normal direction gives a 9-point stencil ``t`` in the plane,
  and the weight follows from a zero local residual given the edge weights,
  ``-(t[C] + t[C + e_z'] P(C ± e_y) + t[C + e_y'] P(C ± e_z)) / t[centre]`` (``t[X]``: the entry
  of ``t`` pointing at fine node ``X``);
* **cell points** ``C + (±1, ±1, ±1)`` (between eight coarse points): zero local residual of the
  full 27-point stencil, ``-Σ_X s[X] P(X) / s[centre]`` over the seven neighbours ``X`` in the
  cube spanned by ``C`` and the point (``C`` itself, three edge and three face points).

Where the row sums vanish (interior rows of a diffusion operator) the weights of the coarse
points sharing a fine point sum to one, so constants are interpolated exactly away from the
Dirichlet boundary. ``trilinear_pstencil`` gives the operator-independent trilinear weights; the
learned rule (``pdesolve.nn.prolongation3d``) replaces the edge weights and keeps the face and
cell rules (``complete_pstencil3d``). Everything is torch, differentiable and batched over
leading axes; on Dirichlet grids all gathers are strided views.

>>> import numpy as np, torch
>>> from pdesolve.discretize.grid import StructuredGrid
>>> from pdesolve.discretize.trilinear import trilinear_fe_stencil
>>> s = torch.as_tensor(trilinear_fe_stencil(StructuredGrid(3, 7), np.ones((8, 8, 8))))
>>> p = blackbox_pstencil3d(s)
>>> p.shape
torch.Size([3, 3, 3, 3, 3, 3])
>>> bool(torch.allclose(p[1, 1, 1], trilinear_pstencil((1, 1, 1), dtype=s.dtype)[0, 0, 0]))
True
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from pdesolve.discretize.prolongation import coarse_size

#: the order of the six edge directions (axis, side) of a coarse point: +x, -x, +y, -y, +z, -z
EDGES = ((0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1))
#: the seven fine stencils a learned edge rule reads at each coarse point: the coarse point's
#: own, then its six edge points in ``EDGES`` order
NEIGHBOURS3D = ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))
#: the twelve face points of a coarse point: (normal axis, side along the first in-plane axis,
#: side along the second), in-plane axes in increasing order
FACES = tuple((normal, du, dv) for normal in range(3) for du in (-1, 1) for dv in (-1, 1))


def as_stencil3d(stencil: np.ndarray | Tensor, what: str = "stencil") -> Tensor:
    """A 3-D stencil as a float64 tensor ``(..., n, n, n, 3, 3, 3)``; ``(..., n, n, n, 27)``
    (offsets in C order) is reshaped. Anything else is refused with the shape it has.

    >>> as_stencil3d(np.zeros((3, 3, 3, 27))).shape
    torch.Size([3, 3, 3, 3, 3, 3])
    """
    s = torch.as_tensor(stencil)
    if s.ndim >= 4 and s.shape[-1] == 27 and s.shape[-4] == s.shape[-3] == s.shape[-2]:
        s = s.reshape(*s.shape[:-1], 3, 3, 3)
    if s.ndim < 6 or s.shape[-3:] != (3, 3, 3) or not (s.shape[-6] == s.shape[-5] == s.shape[-4]):
        raise ValueError(f"a 3-D {what} must have shape (n, n, n, 3, 3, 3) or (n, n, n, 27) "
                         f"(a 27-point stencil per node of an n x n x n grid), got "
                         f"{tuple(s.shape)}")
    if not s.is_floating_point():
        s = s.to(torch.float64)
    return s


def _index(nc: int, n: int, periodic: bool, side: int) -> slice | Tensor:
    """Fine indices ``2I + 1 + side`` of the coarse points (mod n when periodic)."""
    if not periodic:
        return slice(1 + side, 2 * nc + 1 + side, 2)
    return (2 * torch.arange(nc) + 1 + side) % n


def fine_stencils_at(stencil: Tensor, offset: tuple[int, int, int], periodic: bool = False,
                     tail: int = 3) -> Tensor:
    """The fine stencils at ``C + offset`` for every coarse point ``C``:
    ``(..., nc, nc, nc, 3, 3, 3)`` (a strided view on Dirichlet grids). ``tail``: the number of
    trailing per-node axes of ``stencil`` (3 for a stencil, 2 for a plane, 1 for a line)."""
    n = stencil.shape[-1 - tail]  # the z axis (a block of x-planes may be passed)
    nc = coarse_size(n, periodic)
    ix, iy, iz = (_index(nc, n, periodic, o) for o in offset)
    rest = (slice(None),) * tail
    if not periodic:
        return stencil[(..., ix, iy, iz, *rest)]
    return stencil[(..., ix[:, None, None], iy[None, :, None], iz[None, None, :], *rest)]


def _collapse_matrix(dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(27, 36)`` 0/1 matrix: a flat stencil times it gives the three planes (summed over the
    offset axis x, y, z; 9 entries each) and the three lines (summed over the other two; 3 each)."""
    W = torch.zeros(27, 36, dtype=dtype, device=device)
    for flat, o in enumerate(itertools.product(range(3), repeat=3)):
        for normal in range(3):
            u, v = (o[a] for a in range(3) if a != normal)
            W[flat, 9 * normal + 3 * u + v] = 1.0
            W[flat, 27 + 3 * normal + o[normal]] = 1.0
    return W


def collapsed_planes_and_lines(stencil: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """The stencil summed over each offset axis, ``[(..., n, n, n, 3, 3)] * 3`` (normal x, y,
    z), and over the two offset axes other than each axis, ``[(..., n, n, n, 3)] * 3``, on the
    whole grid at once (one matrix product: much faster than reductions over strided axes)."""
    flat = stencil.reshape(-1, 27)
    out = (flat @ _collapse_matrix(stencil.dtype, stencil.device)).reshape(
        *stencil.shape[:-3], 36)
    planes = [out[..., 9 * k : 9 * k + 9].unflatten(-1, (3, 3)) for k in range(3)]
    lines = [out[..., 27 + 3 * k : 30 + 3 * k] for k in range(3)]
    return planes, lines


def gather_neighbour_stencils3d(stencil: Tensor, periodic: bool = False) -> Tensor:
    """The seven fine stencils of ``NEIGHBOURS3D`` at each coarse point:
    ``(..., nc, nc, nc, 7, 3, 3, 3)``."""
    return torch.stack([fine_stencils_at(stencil, o, periodic) for o in NEIGHBOURS3D], dim=-4)


def _collapse_to_line(s: Tensor, axis: int) -> Tensor:
    """Sum a stencil ``(..., 3, 3, 3)`` over the offset axes other than ``axis``: ``(..., 3)``."""
    return s.sum(dim=tuple(-3 + a for a in range(3) if a != axis))


def collapsed_edge_weights3d(stencils7: Tensor) -> Tensor:
    """Black-box edge weights ``(..., 6)`` (``EDGES`` order) from the seven stencils
    ``(..., 7, 3, 3, 3)`` of ``gather_neighbour_stencils3d``: ``-w / c`` of the stencil of each
    edge point collapsed onto its coarse line (``w`` the entry towards the coarse point)."""
    out = []
    for k, (axis, side) in enumerate(EDGES):
        line = _collapse_to_line(stencils7[..., k + 1, :, :, :], axis)
        out.append(-line[..., 1 - side] / line[..., 1])
    return torch.stack(out, dim=-1)


def blackbox_edge_weights3d(stencil: Tensor, periodic: bool = False,
                            lines: list[Tensor] | None = None) -> Tensor:
    """``collapsed_edge_weights3d`` on the grid's own stencils, ``(..., nc, nc, nc, 6)``, without
    stacking the seven gathers (``lines``: ``collapsed_lines`` of the stencil, if computed)."""
    if lines is None:
        lines = collapsed_planes_and_lines(stencil)[1]
    out = []
    for axis, side in EDGES:
        offset = tuple(side if a == axis else 0 for a in range(3))
        line = fine_stencils_at(lines[axis], offset, periodic, tail=1)
        out.append(-line[..., 1 - side] / line[..., 1])
    return torch.stack(out, dim=-1)


def face_weights3d(stencil: Tensor, edge: Tensor, periodic: bool = False,
                   planes: list[Tensor] | None = None) -> Tensor:
    """Face weights ``(..., nc, nc, nc, 12)`` (``FACES`` order) of the collapsed-plane rule from
    edge weights ``(..., nc, nc, nc, 6)`` (see the module docstring)."""
    if planes is None:
        planes = collapsed_planes_and_lines(stencil)[0]
    e = {d: edge[..., k] for k, d in enumerate(EDGES)}
    out = []
    for normal, du, dv in FACES:
        u, v = (a for a in range(3) if a != normal)
        offset = [0, 0, 0]
        offset[u], offset[v] = du, dv
        t = fine_stencils_at(planes[normal], tuple(offset), periodic, tail=2)
        # t is (..., 3, 3) over the in-plane axes (u, v) in increasing axis order
        num = (t[..., 1 - du, 1 - dv] + t[..., 1, 1 - dv] * e[(u, du)]
               + t[..., 1 - du, 1] * e[(v, dv)])
        out.append(-num / t[..., 1, 1])
    return torch.stack(out, dim=-1)


def complete_pstencil3d(stencil: Tensor, edge: Tensor, periodic: bool = False,
                        planes: list[Tensor] | None = None, faces: Tensor | None = None
                        ) -> Tensor:
    """Full P-stencils ``(..., nc, nc, nc, 3, 3, 3)`` from edge weights ``(..., nc, nc, nc, 6)``
    (``EDGES`` order): face points by the collapsed-plane rule (or ``faces``
    ``(..., nc, nc, nc, 12)``, ``FACES`` order, when given), cell points by the 27-point
    zero-local-residual rule (see the module docstring). ``planes``: ``collapsed_planes_and_lines``
    of the stencil, if computed."""
    if faces is None:
        faces = face_weights3d(stencil, edge, periodic, planes)
    one = torch.ones_like(edge[..., 0])
    p: dict[tuple[int, ...], Tensor] = {(0, 0, 0): one}
    for k, (axis, side) in enumerate(EDGES):
        p[tuple(side if a == axis else 0 for a in range(3))] = edge[..., k]
    for k, (normal, du, dv) in enumerate(FACES):
        u, v = (a for a in range(3) if a != normal)
        offset = [0, 0, 0]
        offset[u], offset[v] = du, dv
        p[tuple(offset)] = faces[..., k]
    # cell points: the seven neighbours towards the coarse point are known by now
    for d in itertools.product((-1, 1), repeat=3):
        s = fine_stencils_at(stencil, d, periodic)
        num = torch.zeros_like(one)
        for mask in itertools.product((0, 1), repeat=3):
            if not any(mask):
                continue
            towards = tuple(1 - m * di for m, di in zip(mask, d, strict=True))  # entry index
            target = tuple((1 - m) * di for m, di in zip(mask, d, strict=True))  # offset from C
            num = num + s[(..., *towards)] * p[target]
        p[d] = -num / s[..., 1, 1, 1]
    rows = []
    for a in (-1, 0, 1):
        plane = [torch.stack([p[(a, b, c)] for c in (-1, 0, 1)], dim=-1) for b in (-1, 0, 1)]
        rows.append(torch.stack(plane, dim=-2))
    return torch.stack(rows, dim=-3)


def _shifted(x: Tensor, shifts: dict[int, int], periodic: bool) -> Tensor:
    """``x[..., C + shift]`` over the coarse axes (``shifts``: axis -> ±1) of ``(..., nc, nc,
    nc)`` fields; zero where ``C + shift`` leaves a Dirichlet grid."""
    for axis, s in shifts.items():
        x = torch.roll(x, shifts=-s, dims=-3 + axis)
        if not periodic:
            index: list = [slice(None)] * 3
            index[axis] = -1 if s > 0 else 0
            x = x.clone()
            x[(..., *index)] = 0.0
    return x


def share_face_weights3d(base: Tensor, factor: Tensor, periodic: bool = False) -> Tensor:
    """Face weights ``base · factor`` rescaled so that, at every face point, the weights of the
    (up to four) coarse points sharing it keep ``base``'s sum: ``w_C = y_C Σ b / Σ y`` with
    ``y = max(b, 1e-6) · factor``. ``base`` and ``factor`` (positive) are
    ``(..., nc, nc, nc, 12)`` in ``FACES`` order; ``factor = 1`` returns ``base``."""
    y = base.clamp_min(1e-6) * factor
    index = {f: k for k, f in enumerate(FACES)}
    out = []
    for k, (normal, du, dv) in enumerate(FACES):
        u, v = (a for a in range(3) if a != normal)
        total_y, total_b = y[..., k], base[..., k]
        for su, sv in ((1, 0), (0, 1), (1, 1)):  # the partners across u, across v, diagonal
            j = index[(normal, -du if su else du, -dv if sv else dv)]
            shifts = {a: s for a, s in ((u, du * su), (v, dv * sv)) if s}
            total_y = total_y + _shifted(y[..., j], shifts, periodic)
            total_b = total_b + _shifted(base[..., j], shifts, periodic)
        out.append(y[..., k] * total_b / total_y)
    return torch.stack(out, dim=-1)


def boundary_edge_mask3d(nc: int, device: torch.device | None = None) -> Tensor:
    """Dirichlet: the edge points ``(nc, nc, nc, 6)`` with a single coarse neighbour (beyond the
    first and last coarse point of each line, next to the boundary)."""
    mask = torch.zeros(nc, nc, nc, 6, dtype=torch.bool, device=device)
    for k, (axis, side) in enumerate(EDGES):
        index: list = [slice(None)] * 3
        index[axis] = -1 if side > 0 else 0
        mask[(*index, k)] = True
    return mask


def pair_normalise3d(x: Tensor, periodic: bool = False, fallback: Tensor | None = None) -> Tensor:
    """Edge weights from positive per-coarse-point scores ``x`` ``(..., nc, nc, nc, 6)``.

    The two coarse points sharing a fine edge point get ``x_A / (x_A + x_B)`` and
    ``x_B / (x_A + x_B)``. On Dirichlet grids the edge points next to the boundary have one
    coarse neighbour; they take ``fallback`` (required then).

    >>> w = pair_normalise3d(torch.rand(2, 2, 2, 6) + 0.1, periodic=True)
    >>> bool(torch.allclose(w[..., 0] + torch.roll(w[..., 1], -1, dims=0), torch.ones(2, 2, 2)))
    True
    """
    partners = []
    for k, (axis, side) in enumerate(EDGES):
        other = k + 1 if side > 0 else k - 1  # the opposite side's score of the neighbour
        partners.append(torch.roll(x[..., other], shifts=-side, dims=-3 + axis))
    w = x / (x + torch.stack(partners, dim=-1))
    if not periodic:
        if fallback is None:
            raise ValueError("Dirichlet pair normalisation needs fallback weights at the boundary")
        w = torch.where(boundary_edge_mask3d(x.shape[-2], x.device), fallback, w)
    return w


def trilinear_pstencil(shape: tuple[int, int, int], dtype: torch.dtype = torch.float64,
                       device: str | None = None) -> Tensor:
    """Trilinear P-stencils ``(*shape, 3, 3, 3)``.

    >>> trilinear_pstencil((1, 1, 1))[0, 0, 0, :, 1, 1].tolist()
    [0.5, 1.0, 0.5]
    """
    w = torch.tensor([0.5, 1.0, 0.5], dtype=dtype, device=device)
    cube = w[:, None, None] * w[None, :, None] * w[None, None, :]
    return cube.expand(*shape, 3, 3, 3).clone()


def blackbox_pstencil3d(stencil: Tensor, periodic: bool = False) -> Tensor:
    """The 3-D black-box P-stencils of a fine stencil ``(..., n, n, n, 3, 3, 3)``."""
    stencil = as_stencil3d(stencil)
    planes, lines = collapsed_planes_and_lines(stencil)
    edge = blackbox_edge_weights3d(stencil, periodic, lines)
    return complete_pstencil3d(stencil, edge, periodic, planes)


def prolongation_matrix3d(pstencil: np.ndarray | Tensor, n: int) -> sp.csr_matrix:
    """The ``n³ × nc³`` CSR prolongation of Dirichlet P-stencils ``(nc, nc, nc, 3, 3, 3)``
    (rows fine nodes, columns coarse points, both lexicographic with x slowest).

    >>> P = prolongation_matrix3d(trilinear_pstencil((1, 1, 1)), 3)
    >>> P.shape, float(P.sum())
    ((27, 1), 8.0)
    """
    p = np.asarray(pstencil, dtype=np.float64)
    nc = p.shape[0]
    if p.shape != (nc,) * 3 + (3, 3, 3) or nc != coarse_size(n):
        raise ValueError(f"P-stencils of shape {p.shape} do not fit a Dirichlet grid of n={n} "
                         f"(need {((n - 1) // 2,) * 3 + (3, 3, 3)})")
    k, c3 = np.arange(nc, dtype=np.int64), np.arange(3, dtype=np.int64)
    base = (2 * n * n * k[:, None, None] + 2 * n * k[None, :, None] + 2 * k[None, None, :])
    local = n * n * c3[:, None, None] + n * c3[None, :, None] + c3[None, None, :]
    rows = (base[:, :, :, None, None, None] + local).ravel()
    cols = np.broadcast_to(np.arange(nc**3).reshape(nc, nc, nc, 1, 1, 1), p.shape).ravel()
    data = p.ravel()
    keep = data != 0
    P = sp.csr_matrix((data[keep], (rows[keep], cols[keep])), shape=(n**3, nc**3))
    P.indices = P.indices.astype(np.int32)
    P.indptr = P.indptr.astype(np.int32)
    return P


def stencil_from_csr3d(A: sp.spmatrix, n: int) -> np.ndarray:
    """The ``(n, n, n, 3, 3, 3)`` stencil array of a matrix on an ``n³`` grid (x slowest).

    >>> from pdesolve.discretize.finite_difference import stencil_to_csr
    >>> s = np.random.default_rng(0).random((3, 3, 3, 3, 3, 3))
    >>> bool(np.allclose(stencil_to_csr(stencil_from_csr3d(stencil_to_csr(s), 3)).toarray(),
    ...                  stencil_to_csr(s).toarray()))
    True
    """
    A = sp.csr_matrix(A)
    if A.shape != (n**3, n**3):
        raise ValueError(f"matrix shape {A.shape} does not match an {n}x{n}x{n} grid")
    # a column offset col - row = da n² + db n + dc with da, db, dc in {-1, 0, 1} determines
    # (da, db, dc) (balanced base-n digits); a table maps it to the flat entry, -1 elsewhere
    reach = n * n + n + 1
    table = np.full(2 * reach + 1, -1, dtype=np.int8)
    for da, db, dc in itertools.product((-1, 0, 1), repeat=3):
        table[reach + da * n * n + db * n + dc] = (da + 1) * 9 + (db + 1) * 3 + dc + 1
    itype = np.int32 if 27 * n**3 < 2**31 else np.int64
    row = np.repeat(np.arange(n**3, dtype=itype), np.diff(A.indptr))
    delta = A.indices.astype(itype, copy=False) - row
    far = "the matrix couples nodes further apart than a 3x3x3 stencil"
    if delta.size and (delta.min() < -reach or delta.max() > reach):
        raise ValueError(far)
    delta += reach
    entry = table[delta]
    if entry.size and entry.min() < 0:
        raise ValueError(far)
    row *= 27
    row += entry
    # duplicates (a non-canonical matrix) are summed, as the matrix means
    out = np.bincount(row, weights=A.data, minlength=27 * n**3).reshape(n, n, n, 3, 3, 3)
    # an offset that wraps from the end of a grid line to the next line's start decodes to an
    # entry pointing off the grid in y or z, which no true coupling fills
    if (out[:, 0, :, :, 0].any() or out[:, -1, :, :, 2].any() or out[:, :, 0, :, :, 0].any()
            or out[:, :, -1, :, :, 2].any()):
        raise ValueError(far)
    return out
