"""Block-Fourier analysis of two-grid cycles for block-periodic 9-point stencils (torch complex128).

A periodic fine grid of ``N = m·b`` nodes per dimension whose stencils repeat with period ``b``
(``b = 8`` in Greenfeld et al.) gives block-circulant ``A``, ``P``, smoother and two-grid operator
``M = S^post (I - P (PᵀAP)⁻¹ PᵀA) S^pre``. The unitary Fourier transform over block shifts
block-diagonalises all of them: one ``b² × b²`` block ``M_θ`` per block frequency
``θ = 2π (kx, ky) / m``. Hence ``ρ(M) = max_θ ρ(M_θ)`` and ``||M||_F² = Σ_θ ||M_θ||_F²``.

Conventions: a coupling from local node ``ℓ`` to the node ``d`` blocks further on contributes
``exp(i θ·d)`` to the symbol; coarse point ``c`` of a block is fine node ``2c + 1`` (odd indices,
as everywhere in pdesolve). Gauss–Seidel uses the lower triangle *in the order of local indices*
(lexicographic, or red-black); on the global grid this is exact Gauss–Seidel in the
"local index first, block second" ordering (nodes with equal local index never couple), which is
what the symbol of Greenfeld et al.'s block-level GS computes. It is not global lexicographic GS;
the multigrid solver itself uses true lexicographic GS.

Everything is vectorised over a batch of problems and all frequencies (no Python loop over stencil
entries); it runs on CPU or CUDA.

>>> import torch
>>> from pdesolve.discretize.prolongation import blackbox_pstencil
>>> gen = torch.Generator().manual_seed(0)
>>> g = torch.exp(torch.randn(2, 8, 8, dtype=torch.float64, generator=gen))
>>> s = periodic_fe_stencil(g)
>>> loss = two_grid_loss(s, blackbox_pstencil(s, periodic=True), n=16, reduction="max")
>>> loss.shape, bool((loss > 0).all())
(torch.Size([2]), True)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

REDUCTIONS = ("max", "mean", "sum")
SMOOTHERS = ("gauss_seidel", "red_black", "jacobi")


def periodic_fe_stencil(g: Tensor) -> Tensor:
    """Bilinear-FE 9-point stencils ``(..., b, b, 3, 3)`` on a periodic grid, cell coefficients
    ``g`` ``(..., b, b)`` (cell ``(i, j)`` has node ``(i, j)`` as its lower-left corner), unscaled
    (no ``1/h²``)."""
    sw = torch.roll(g, shifts=(1, 1), dims=(-2, -1))
    se = torch.roll(g, shifts=1, dims=-1)
    nw = torch.roll(g, shifts=1, dims=-2)
    ne = g
    zero = torch.zeros_like(g)
    rows = [
        [-sw / 3, -(sw + nw) / 6, -nw / 3],
        [-(sw + se) / 6, zero, -(nw + ne) / 6],
        [-se / 3, -(se + ne) / 6, -ne / 3],
    ]
    s = torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)
    centre = -s.sum(dim=(-2, -1))
    s = s.clone()
    s[..., 1, 1] = centre
    return s


def frequencies(n: int, block: int = 8, include_zero: bool = False) -> Tensor:
    """Block frequencies ``θ`` ``(T, 2)`` of an ``n × n`` periodic grid with ``block``-periodic
    stencils (``m = n / block`` per dimension; ``θ = 0`` left out unless ``include_zero``).

    >>> frequencies(16).shape, frequencies(32, include_zero=True).shape
    (torch.Size([3, 2]), torch.Size([16, 2]))
    """
    if n % block:
        raise ValueError(f"grid size {n} is not a multiple of the block size {block}")
    m = n // block
    k = torch.arange(m, dtype=torch.float64) * (2 * math.pi / m)
    theta = torch.cartesian_prod(k, k)
    return theta if include_zero else theta[1:]


def _plan(block: int, coarse: bool) -> tuple[Tensor, Tensor, Tensor]:
    """For each (node, 3×3 entry): row index, column index and block shift ``d`` (2 ints)."""
    size = block // 2 if coarse else block
    i, j, a, b = torch.meshgrid(*(torch.arange(s) for s in (size, size, 3, 3)), indexing="ij")
    if coarse:  # P: coarse point (i, j) -> fine node (2i + a, 2j + b); rows are fine nodes
        fine = torch.stack([2 * i + a, 2 * j + b], dim=-1)
        shift = torch.div(fine, block, rounding_mode="floor")
        local = fine - shift * block
        row = (local[..., 0] * block + local[..., 1]).reshape(-1)
        col = (i * size + j).reshape(-1)
        return row, col, -shift.reshape(-1, 2)  # column relative to the row's block
    nb = torch.stack([i + a - 1, j + b - 1], dim=-1)
    shift = torch.div(nb, block, rounding_mode="floor")
    local = nb - shift * block
    row = (i * block + j).reshape(-1)
    col = (local[..., 0] * block + local[..., 1]).reshape(-1)
    return row, col, shift.reshape(-1, 2)


def block_symbol(values: Tensor, thetas: Tensor, plan: tuple[Tensor, Tensor, Tensor],
                 shape: tuple[int, int]) -> Tensor:
    """The block symbols ``(B, T, rows, cols)`` of stencil ``values`` ``(B, ...)`` at the
    frequencies ``thetas`` ``(T, dim)``: entry ``e`` (flattened) adds ``values[e] e^{iθ·d_e}`` at
    ``(row_e, col_e)``, with ``plan = (row, col, d)`` giving, per entry, its place in the block and
    the block shift ``d`` of its column (any dimension: 2-D and 3-D plans use it alike)."""
    row, col, shift = (t.to(values.device) for t in plan)
    thetas = thetas.to(device=values.device, dtype=torch.float64)
    phase = torch.exp(1j * (thetas @ shift.to(torch.float64).T))  # (T, E)
    vals = values.reshape(values.shape[0], 1, -1).to(torch.complex128) * phase  # (B, T, E)
    flat = torch.zeros(vals.shape[:2] + (shape[0] * shape[1],), dtype=torch.complex128,
                       device=values.device)
    index = (row * shape[1] + col).expand_as(vals)
    return flat.scatter_add(-1, index, vals).reshape(vals.shape[:2] + shape)


def operator_symbol(stencil: Tensor, thetas: Tensor) -> Tensor:
    """``A_θ`` ``(B, T, b², b²)`` of block stencils ``(B, b, b, 3, 3)``."""
    block = stencil.shape[-3]
    return block_symbol(stencil, thetas, _plan(block, coarse=False), (block * block, block * block))


def prolongation_symbol(pstencil: Tensor, thetas: Tensor) -> Tensor:
    """``P_θ`` ``(B, T, b², (b/2)²)`` of P-stencils ``(B, b/2, b/2, 3, 3)``."""
    block = 2 * pstencil.shape[-3]
    plan = _plan(block, coarse=True)
    return block_symbol(pstencil, thetas, plan, (block * block, (block // 2) ** 2))


def smoother_order(block: int, smoother: str = "gauss_seidel") -> Tensor:
    """Rank of each local node in the sweep (lexicographic, or red before black)."""
    idx = torch.arange(block * block)
    if smoother == "red_black":
        i, j = idx // block, idx % block
        return ((i + j) % 2) * block * block + idx
    return idx


def smoother_symbol(A: Tensor, smoother: str = "gauss_seidel", omega: float = 2.0 / 3.0,
                    backward: bool = False) -> Tensor:
    """``S_θ = I - T_θ⁻¹ A_θ`` (GS: ``T`` the lower/upper triangle in sweep order; Jacobi:
    ``T = D / ω``)."""
    size = A.shape[-1]
    eye = torch.eye(size, dtype=A.dtype, device=A.device)
    if smoother == "jacobi":
        d = torch.diagonal(A, dim1=-2, dim2=-1)
        return eye - omega * A / d[..., :, None]
    if smoother not in SMOOTHERS:
        raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
    rank = smoother_order(round(math.sqrt(size)), smoother).to(A.device)
    mask = rank[None, :] >= rank[:, None] if backward else rank[None, :] <= rank[:, None]
    T = A * mask
    return eye - torch.linalg.solve(T, A)


def two_grid_symbol(A: Tensor, P: Tensor, pre: int = 2, post: int = 0,
                    smoother: str = "gauss_seidel", omega: float = 2.0 / 3.0) -> Tensor:
    """``M_θ = S^post C_θ S^pre`` with ``C_θ = I - P (Pᴴ A P)⁻¹ Pᴴ A``."""
    Ph = P.conj().transpose(-2, -1)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    C = eye - P @ torch.linalg.solve(Ph @ A @ P, Ph @ A)
    S = smoother_symbol(A, smoother, omega)
    M = C
    for _ in range(pre):
        M = M @ S
    for _ in range(post):
        M = S @ M
    return M


def two_grid_loss(
    stencil: Tensor,
    pstencil: Tensor,
    n: int,
    reduction: str = "max",
    pre: int = 2,
    post: int = 0,
    smoother: str = "gauss_seidel",
    include_zero: bool = False,
) -> Tensor:
    """Per-problem ``||M_θ||_F²`` reduced over frequencies: ``max`` (training loss of Greenfeld et
    al.), ``mean`` (their evaluation loss) or ``sum`` (``||M||_F²`` of the whole grid).

    ``stencil`` ``(B, b, b, 3, 3)`` and ``pstencil`` ``(B, b/2, b/2, 3, 3)`` describe one period;
    ``n`` is the periodic grid size. The defaults (2 pre-sweeps, lexicographic GS, ``θ = 0``
    left out since the periodic operator is singular) are the official training settings.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
    thetas = frequencies(n, stencil.shape[-3], include_zero)
    M = two_grid_symbol(operator_symbol(stencil, thetas), prolongation_symbol(pstencil, thetas),
                        pre, post, smoother)
    fro = (M.abs() ** 2).sum(dim=(-2, -1))
    if reduction == "max":
        return fro.max(dim=-1).values
    return fro.mean(dim=-1) if reduction == "mean" else fro.sum(dim=-1)


def two_grid_spectral_radius(stencil: Tensor, pstencil: Tensor, n: int, pre: int = 1,
                             post: int = 1, smoother: str = "gauss_seidel",
                             include_zero: bool = False) -> Tensor:
    """``ρ(M) = max_θ ρ(M_θ)`` per problem ``(B,)`` (eigenvalues of every block)."""
    thetas = frequencies(n, stencil.shape[-3], include_zero)
    M = two_grid_symbol(operator_symbol(stencil, thetas), prolongation_symbol(pstencil, thetas),
                        pre, post, smoother)
    return torch.linalg.eigvals(M).abs().amax(dim=(-2, -1))


def periodic_matrix(stencil: Tensor) -> Tensor:
    """The real ``b² × b²`` matrices ``(B, b², b²)`` of periodic stencil fields (θ = 0 symbol)."""
    zero = torch.zeros(1, 2, dtype=torch.float64)
    return operator_symbol(stencil, zero)[:, 0].real


def stencil_from_periodic_matrix(A: Tensor) -> Tensor:
    """Inverse of ``periodic_matrix``: stencils ``(B, b, b, 3, 3)`` (needs ``b >= 3``)."""
    block = round(math.sqrt(A.shape[-1]))
    if block < 3:
        raise ValueError("a 3x3 stencil is ambiguous on a periodic grid smaller than 3")
    row, col, _ = _plan(block, coarse=False)
    vals = A.reshape(A.shape[0], -1)[:, row.to(A.device) * block * block + col.to(A.device)]
    return vals.reshape(A.shape[0], block, block, 3, 3)


def galerkin_coarse_stencil(stencil: Tensor, pstencil: Tensor) -> Tensor:
    """The Galerkin coarse stencils ``(B, b/2, b/2, 3, 3)`` of a periodic ``b × b`` problem."""
    A = periodic_matrix(stencil)
    P = prolongation_symbol(pstencil, torch.zeros(1, 2, dtype=torch.float64))[:, 0].real
    return stencil_from_periodic_matrix(P.transpose(-2, -1) @ A @ P)
