"""Operator-dependent prolongation stencils for 2:1 coarsening of 2-D 9-point stencils.

One C-point convention for every boundary condition: coarse point ``(I, J)`` sits at fine node
``(2I + 1, 2J + 1)`` (odd fine indices). Dirichlet grids have ``n = 2^k - 1`` interior nodes and
``(n - 1) / 2`` coarse points per dimension; periodic grids have even ``n`` and ``n / 2``.

A *P-stencil* array ``p`` of shape ``(..., nc, nc, 3, 3)`` holds, at ``p[..., I, J, a, b]``, the
weight with which coarse point ``(I, J)`` contributes to fine node ``(2I + a, 2J + b)``: the
centre is 1 (injection), ``[2, 1]`` / ``[0, 1]`` the right / left edge points (x is axis 0),
``[1, 2]`` / ``[1, 0]`` up / down, the four others the cell-centre ("corner") points.

Rules here (all in torch, differentiable, batched over leading axes):

* ``bilinear_pstencil``: the bilinear weights ``[1/4 1/2 1/4; 1/2 1 1/2; 1/4 1/2 1/4]``;
* ``blackbox_pstencil``: the collapsed-stencil rule of Greenfeld et al.'s black-box baseline (edge
  weight = minus the collapsed coupling over the collapsed centre, e.g. the weight of the west
  coarse point at an x-edge point is ``-sum(s[0, :]) / sum(s[1, :])``), corners by the
  zero-local-residual rule (``corner_weights``);
* ``boxmg_pstencil``: Dendy's BoxMG operator-induced interpolation (symmetric, nine-point,
  non-periodic variant of the BoxMG code; see "BoxMG" below);
* ``constant_preserving_pstencil``: the collapsed rule with the collapsed off-diagonal couplings
  normalised to sum to one (denominator ``-(w + e)`` instead of the collapsed centre ``c``) at
  *every* point. It equals ``blackbox`` wherever the row sum vanishes (interior points of a
  diffusion operator) and differs next to Dirichlet boundaries, where it extrapolates constants
  (weight 1) instead of interpolating towards the zero boundary value; it converges much worse
  than ``blackbox`` on Dirichlet problems (V(1,1) factor about 0.6 vs 0.15 on log-normal
  n = 63). Kept as a documented ablation; it is *not* BoxMG (which switches per point, below).

BoxMG (Dendy 1982, "Black box multigrid", J. Comput. Phys. 48; the variant implemented is the
symmetric nine-point interpolation of the BoxMG code, as in its ``BMG2_SymStd_SETUP_interp_OI``
routine for non-periodic boundary conditions). For a fine point with stencil ``s`` write
``off = -(sum of its 8 off-diagonal entries)`` (>= 0 for an M-matrix), ``r = sum(s)`` (the row sum,
so ``s_C = off + r``). Edge points: with the stencil collapsed across the interpolation direction
into ``(w, c, e)`` (``w``: the column towards the coarse point being weighted), the weight is
``-w / D`` with

    D = -(w + e) + r · max(s_C - (1 + ε) off, 0) / (|s_C - (1 + ε) off| + eps),
    ε = min(|w|, |e|) / s_C,

i.e. ``D`` is the collapsed centre ``c = -(w + e) + r`` (the ``blackbox`` rule) where the row sum
is significant (``r > ε · off``), and the off-diagonal sum ``-(w + e)`` (weights summing to one:
constants interpolated exactly) where it is not. ``eps`` is the unit roundoff. Corner
(cell-centre) points use the zero-local-residual rule of ``corner_weights`` with the same switch
on the centre: ``s_C`` if ``r > ε · off``, else ``off``, with ``ε`` the smallest of the four
collapsed side sums (west/east columns, south/north rows) over ``s_C``.

What follows for our problems (proved by the rule, checked in tests): a Dirichlet diffusion
operator has zero row sums away from the boundary, where both rules give ``D = -(w + e)``; the
fine points with ``r > 0`` are the boundary-adjacent ones, and in our C-point convention (coarse
points at odd indices, ``n = 2^k - 1``) each of them has a whole eliminated (zero) side towards
the boundary, hence ``ε = 0`` and ``D = c``. Galerkin coarse levels inherit this structure. So on
Dirichlet problems in our convention BoxMG *coincides* with ``blackbox`` up to rounding; the two
differ where a row has a small positive row sum with both sides coupled (e.g. a weak absorption
term ``σu``, or BoxMG's own coarsening, whose coarse grid contains the boundary-adjacent points;
we keep one C-point convention for every rule). There BoxMG still interpolates constants exactly
and ``blackbox`` does not.

>>> import torch
>>> from pdesolve.discretize.finite_difference import bilinear_fe_stencil
>>> from pdesolve.discretize.grid import StructuredGrid
>>> s = torch.as_tensor(bilinear_fe_stencil(StructuredGrid(2, 7), torch.ones(8, 8).numpy()))
>>> p = blackbox_pstencil(s)
>>> p.shape
torch.Size([3, 3, 3, 3])
>>> bool(torch.allclose(p[1, 1], bilinear_pstencil((3, 3), dtype=s.dtype)[1, 1]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from pdesolve.discretize.grid import coarse_size

#: the order of the five fine stencils gathered at each coarse point
NEIGHBOURS = ("centre", "right", "left", "up", "down")
#: coarse rows per block when one large grid is processed block by block (operands in cache)
_ROWS = 16


def _fine_indices(nc: int, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Fine indices of coarse points, of their right (+1) and left (-1) neighbours (mod n)."""
    c = 2 * torch.arange(nc) + 1
    return c, (c + 1) % n, (c - 1) % n


def neighbour_stencils(stencil: Tensor, periodic: bool = False) -> list[Tensor]:
    """The five fine stencils at each coarse point (centre, right, left, up, down), each
    ``(..., nc, nc, 3, 3)``: strided views on Dirichlet grids, gathered copies when periodic.

    A block of whole grid rows (``(..., m, n, 3, 3)`` with odd ``m``, Dirichlet) gives the
    stencils of the coarse rows it contains.
    """
    n = stencil.shape[-3]
    nc = coarse_size(n, periodic)
    if not periodic:  # C lines at odd indices, their neighbours at even ones
        m = stencil.shape[-4]
        coarse_size(m)
        odd, hi, lo = slice(1, m, 2), slice(2, m, 2), slice(0, m - 1, 2)
        odd_y, hi_y, lo_y = slice(1, n, 2), slice(2, n, 2), slice(0, n - 1, 2)
        views = {"centre": (odd, odd_y), "right": (hi, odd_y), "left": (lo, odd_y),
                 "up": (odd, hi_y), "down": (odd, lo_y)}
        return [stencil[..., views[k][0], views[k][1], :, :] for k in NEIGHBOURS]
    c, r, l = _fine_indices(nc, n)
    rows = {"centre": c, "right": r, "left": l, "up": c, "down": c}
    cols = {"centre": c, "right": c, "left": c, "up": r, "down": l}
    return [stencil[..., rows[k][:, None], cols[k][None, :], :, :] for k in NEIGHBOURS]


def gather_neighbour_stencils(stencil: Tensor, periodic: bool = False) -> Tensor:
    """The five fine stencils at each coarse point: centre, right, left, up, down.

    ``stencil`` has shape ``(..., n, n, 3, 3)``; the result ``(..., nc, nc, 5, 3, 3)``.
    """
    return torch.stack(neighbour_stencils(stencil, periodic), dim=-3)


def _boxmg_switch(s: Tensor, eps_ratio: Tensor) -> Tensor:
    """BoxMG's factor ``max(s_C - (1 + ε) off, 0) / (|s_C - (1 + ε) off| + eps)``: about 1 where
    the row sum of stencil ``s`` exceeds ``ε · off``, else 0 (see the module docstring)."""
    centre = s[..., 1, 1]
    off = centre - s.sum(dim=(-2, -1))
    gap = centre - (1.0 + eps_ratio) * off
    return gap.clamp_min(0.0) / (gap.abs() + torch.finfo(s.dtype).eps / 2)


def collapsed_edge_weights(
    stencils5: Tensor | Sequence[Tensor], constant_preserving: bool = False, boxmg: bool = False
) -> Tensor:
    """Collapsed-stencil edge weights ``(..., 4)``: right, left, up, down, from the 5 stencils
    (stacked ``(..., 5, 3, 3)`` or the five tensors of ``neighbour_stencils``).

    Entry 0 is the weight of the coarse point at the fine point to its right: with the right
    point's stencil ``s`` collapsed along y, ``w = sum(s[0, :])``, ``c = sum(s[1, :])``,
    ``e = sum(s[2, :])``, the weight is ``-w / c`` (or ``w / (w + e)`` when
    ``constant_preserving``; BoxMG's switched denominator when ``boxmg``). The others follow by
    symmetry.
    """
    if constant_preserving and boxmg:
        raise ValueError("choose one of constant_preserving and boxmg")
    if isinstance(stencils5, Tensor):
        stencils5 = [stencils5[..., k, :, :] for k in range(5)]
    if stencils5[0].ndim == 4 and stencils5[0].shape[0] > _ROWS:  # one grid: by row blocks
        return torch.cat([
            collapsed_edge_weights([t[i0 : i0 + _ROWS] for t in stencils5],
                                   constant_preserving, boxmg)
            for i0 in range(0, stencils5[0].shape[0], _ROWS)])
    right, left, up, down = stencils5[1:]

    def collapse(s: Tensor, axis: int, k: int) -> Tensor:  # sum across the interpolation axis
        if axis == 0:
            return s[..., k, 0] + s[..., k, 1] + s[..., k, 2]
        return s[..., 0, k] + s[..., 1, k] + s[..., 2, k]

    def rule(s: Tensor, axis: int, near: int) -> Tensor:
        towards, centre, away = (collapse(s, axis, k) for k in (near, 1, 2 - near))
        if constant_preserving:
            return towards / (towards + away)
        if boxmg:
            ratio = torch.minimum(towards.abs(), away.abs()) / s[..., 1, 1]
            row_sum = s.sum(dim=(-2, -1))
            return -towards / (-(towards + away) + row_sum * _boxmg_switch(s, ratio))
        return -towards / centre

    return torch.stack(
        [rule(right, 0, 0), rule(left, 0, 2), rule(up, 1, 0), rule(down, 1, 2)], dim=-1
    )


def corner_weights(stencil: Tensor, edge: Tensor, boxmg: bool = False) -> Tensor:
    """Assemble full P-stencils from edge weights; corners by the zero-local-residual rule.

    ``edge`` has shape ``(..., nc, nc, 4)`` (right, left, up, down weights of each coarse point).
    For the corner ``F = (2I + 1 + da, 2J + 1 + db)`` with fine stencil ``s``, the weight is
    ``-(s[1-da, 1-db] + s[1, 1-db] * P_x + s[1-da, 1] * P_y) / s[1, 1]`` where ``P_x``, ``P_y``
    are the coarse point's weights at its edge points on the ``da`` and ``db`` sides. With
    ``boxmg`` the centre ``s[1, 1]`` is replaced by BoxMG's switched denominator.
    """
    n, m = stencil.shape[-3], stencil.shape[-4]
    nc = edge.shape[-2]
    if n == 2 * nc + 1:  # Dirichlet: strided views instead of gathered copies
        if stencil.ndim == 4 and edge.shape[0] > _ROWS:  # one grid: by blocks of coarse rows
            return torch.cat([
                corner_weights(stencil[2 * i0 : 2 * i0 + 2 * _ROWS + 1], edge[i0 : i0 + _ROWS],
                               boxmg)
                for i0 in range(0, edge.shape[0], _ROWS)])
        side: dict = {1: slice(2, n, 2), -1: slice(0, n - 1, 2)}
        side_x: dict = {1: slice(2, m, 2), -1: slice(0, m - 1, 2)}
    else:
        _, r, l = _fine_indices(nc, n)
        side = {1: r[:, None], -1: l[:, None]}
        side_x = side
    ex = {1: edge[..., 0], -1: edge[..., 1]}
    ey = {1: edge[..., 2], -1: edge[..., 3]}
    one = torch.ones_like(edge[..., 0])
    entries = {(1, 1): one, (2, 1): ex[1], (0, 1): ex[-1], (1, 2): ey[1], (1, 0): ey[-1]}
    for da in (-1, 1):
        for db in (-1, 1):
            cols = side[db] if isinstance(side[db], slice) else side[db].T
            s = stencil[..., side_x[da], cols, :, :]
            num = s[..., 1 - da, 1 - db] + s[..., 1, 1 - db] * ex[da] + s[..., 1 - da, 1] * ey[db]
            entries[(1 + da, 1 + db)] = -num / (_boxmg_corner_centre(s) if boxmg else s[..., 1, 1])
    rows = [torch.stack([entries[(a, b)] for b in range(3)], dim=-1) for a in range(3)]
    return torch.stack(rows, dim=-2)


def _boxmg_corner_centre(s: Tensor) -> Tensor:
    """BoxMG's corner denominator: ``s_C`` where the row sum is significant, else ``off``."""
    sides = torch.stack(
        [s[..., 0, :].sum(-1), s[..., 2, :].sum(-1), s[..., :, 0].sum(-1), s[..., :, 2].sum(-1)],
        dim=-1,
    )
    ratio = sides.abs().amin(dim=-1) / s[..., 1, 1]
    off = s[..., 1, 1] - s.sum(dim=(-2, -1))
    return off + (s[..., 1, 1] - off) * _boxmg_switch(s, ratio)


def _boundary_edges(edge: Tensor, fallback: Tensor, periodic: bool) -> Tensor:
    """Dirichlet: edge points whose second coarse neighbour would lie on the boundary keep
    ``fallback``'s weight (left of the first and right of the last coarse point per line)."""
    if periodic:
        return edge
    mask = torch.zeros(edge.shape[-3:], dtype=torch.bool, device=edge.device)
    mask[-1, :, 0] = True  # right of the last coarse column
    mask[0, :, 1] = True  # left of the first
    mask[:, -1, 2] = True  # up of the last row
    mask[:, 0, 3] = True  # down of the first
    return torch.where(mask, fallback, edge)


def pair_normalise(x: Tensor, periodic: bool = False, fallback: Tensor | None = None) -> Tensor:
    """Edge weights from positive per-coarse-point scores ``x`` ``(..., nc, nc, 4)``.

    The two coarse points sharing a fine edge point get ``x_A / (x_A + x_B)`` and
    ``x_B / (x_A + x_B)``, so their weights sum to one there. On Dirichlet grids the edge points
    next to the boundary have one coarse neighbour; they take ``fallback`` (required then).

    >>> import torch
    >>> w = pair_normalise(torch.rand(4, 4, 4) + 0.1, periodic=True)
    >>> bool(torch.allclose(w[:, :, 0] + torch.roll(w[:, :, 1], -1, dims=0), torch.ones(4, 4)))
    True
    """
    # partner of "right" of (I, J) is "left" of (I + 1, J); of "up" is "down" of (I, J + 1)
    right_partner = torch.roll(x[..., 1], shifts=-1, dims=-2)
    left_partner = torch.roll(x[..., 0], shifts=1, dims=-2)
    up_partner = torch.roll(x[..., 3], shifts=-1, dims=-1)
    down_partner = torch.roll(x[..., 2], shifts=1, dims=-1)
    partner = torch.stack([right_partner, left_partner, up_partner, down_partner], dim=-1)
    w = x / (x + partner)
    if not periodic:
        if fallback is None:
            raise ValueError("Dirichlet pair normalisation needs fallback weights at the boundary")
        w = _boundary_edges(w, fallback, periodic)
    return w


def bilinear_pstencil(
    shape: tuple[int, int], dtype: torch.dtype = torch.float64, device: str | None = None
) -> Tensor:
    """Bilinear P-stencils ``(*shape, 3, 3)``.

    >>> bilinear_pstencil((1, 1))[0, 0, :, 1].tolist()
    [0.5, 1.0, 0.5]
    """
    w = torch.tensor([0.5, 1.0, 0.5], dtype=dtype, device=device)
    return torch.outer(w, w).expand(*shape, 3, 3).clone()


def blackbox_pstencil(stencil: Tensor, periodic: bool = False) -> Tensor:
    """Greenfeld et al.'s black-box P-stencils: collapsed edge rule, zero-residual corners."""
    edge = collapsed_edge_weights(neighbour_stencils(stencil, periodic))
    return corner_weights(stencil, edge)


def boxmg_pstencil(stencil: Tensor, periodic: bool = False) -> Tensor:
    """Dendy's BoxMG P-stencils (switched collapsed rule; see the module docstring).

    >>> import torch
    >>> from pdesolve.discretize.finite_difference import bilinear_fe_stencil
    >>> from pdesolve.discretize.grid import StructuredGrid
    >>> s = torch.as_tensor(bilinear_fe_stencil(StructuredGrid(2, 7), torch.ones(8, 8).numpy()))
    >>> bool(torch.allclose(boxmg_pstencil(s), bilinear_pstencil((3, 3), dtype=s.dtype)))
    True
    """
    edge = collapsed_edge_weights(neighbour_stencils(stencil, periodic), boxmg=True)
    return corner_weights(stencil, edge, boxmg=True)


def constant_preserving_pstencil(stencil: Tensor, periodic: bool = False) -> Tensor:
    """Constant-preserving collapsed edge rule (an ablation), zero-residual corners."""
    edge = collapsed_edge_weights(
        neighbour_stencils(stencil, periodic), constant_preserving=True
    )
    return corner_weights(stencil, edge)
