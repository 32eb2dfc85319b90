"""Block-Fourier analysis of two-grid cycles for block-periodic 3-D 27-point stencils.

The 3-D form of ``pdesolve.train.block_fourier``. A periodic fine grid of ``N = m·b`` nodes per
dimension whose stencils repeat with period ``b`` gives block-circulant ``A``, ``P`` and smoother;
the unitary Fourier transform over block shifts block-diagonalises them into one ``b³ × b³``
block per block frequency ``θ = 2π (k1, k2, k3) / m``, ``k_i = 0..m-1``:

    A_θ[ℓ, ℓ'] = Σ_{d ∈ Z³} A[ℓ, ℓ' + b d] · exp(i θ·d),

(``ℓ, ℓ'`` local node indices, ``d`` the block shift of the coupling), and the same for ``P``
with coarse local indices. The two-grid operator ``M = S_post C S_pre``,
``C = I - P (Pᵀ A P)⁻¹ Pᵀ A``, becomes ``M_θ = S_post,θ (I - P_θ (P_θᴴ A_θ P_θ)⁻¹ P_θᴴ A_θ)
S_pre,θ``, hence ``ρ(M) = max_θ ρ(M_θ)`` and ``||M||²_F = Σ_θ ||M_θ||²_F``. Smoothers:
Gauss–Seidel in local lexicographic order (forward before, backward after the correction: the
symmetric cycle of the CG preconditioner) or weighted Jacobi. ``θ = 0`` is left out by default
(the periodic operator is singular there).

Since the smoother does not depend on ``P``, ``M_θ = S_post S_pre - (S_post P_θ) X_θ`` with
``X_θ = (P_θᴴ A_θ P_θ)⁻¹ P_θᴴ A_θ S_pre``: the loss needs the ``b³ × b³`` smoother products
once per problem (no gradient), and only ``b³ × (b/2)³`` products per step.

>>> import torch
>>> from pdesolve.discretize.prolongation3d import blackbox_pstencil3d
>>> g = torch.exp(torch.randn(2, 4, 4, 4, dtype=torch.float64,
...                           generator=torch.Generator().manual_seed(0)))
>>> s = periodic_fe27_stencil(g)
>>> loss = two_grid_loss3d(s, blackbox_pstencil3d(s, periodic=True), n=8)
>>> loss.shape, bool((loss > 0).all())
(torch.Size([2]), True)
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from pdesolve.train.block_fourier import REDUCTIONS, block_symbol

SMOOTHERS = ("gauss_seidel", "jacobi")


def periodic_fe27_stencil(g: Tensor) -> Tensor:
    """Trilinear-FE 27-point stencils ``(..., b, b, b, 3, 3, 3)`` on a periodic grid with cell
    coefficients ``g`` ``(..., b, b, b)`` (cell ``c`` has node ``c`` as its lowest corner),
    unscaled (no ``1/h²``)."""
    s = torch.zeros(*g.shape, 3, 3, 3, dtype=g.dtype, device=g.device)
    for e in itertools.product((0, 1), repeat=3):
        cell = torch.roll(g, shifts=e, dims=(-3, -2, -1))  # the cell with lowest corner p - e
        for o in itertools.product((-1, 0, 1), repeat=3):
            if sum(1 for v in o if v) < 2 or any(
                v + w not in (0, 1) for v, w in zip(o, e, strict=True)):
                continue
            s[(..., *(v + 1 for v in o))] -= cell / 12.0
    s[..., 1, 1, 1] = -s.sum(dim=(-3, -2, -1))
    return s


def periodic_fd7_stencil(k: Tensor) -> Tensor:
    """7-point finite-difference stencils ``(..., b, b, b, 3, 3, 3)`` on a periodic grid with
    nodal coefficients ``k`` ``(..., b, b, b)``: face coefficients are harmonic means of the two
    nodes (the ``fd`` scheme of ``get_problem("diffusion")``), unscaled."""
    s = torch.zeros(*k.shape, 3, 3, 3, dtype=k.dtype, device=k.device)
    for axis in range(3):
        dim = -3 + axis
        up = torch.roll(k, shifts=-1, dims=dim)
        down = torch.roll(k, shifts=1, dims=dim)
        hi, lo = 2 * k * up / (k + up), 2 * k * down / (k + down)
        index_hi, index_lo = [1, 1, 1], [1, 1, 1]
        index_hi[axis], index_lo[axis] = 2, 0
        s[(..., *index_hi)] = -hi
        s[(..., *index_lo)] = -lo
        s[..., 1, 1, 1] += hi + lo
    return s


def frequencies3d(n: int, block: int = 4, include_zero: bool = False) -> Tensor:
    """Block frequencies ``θ`` ``(T, 3)`` of an ``n³`` periodic grid of ``block``-periodic
    stencils (``θ = 0`` left out unless ``include_zero``).

    >>> frequencies3d(8).shape, frequencies3d(16, include_zero=True).shape
    (torch.Size([7, 3]), torch.Size([64, 3]))
    """
    if n % block:
        raise ValueError(f"grid size {n} is not a multiple of the block size {block}")
    m = n // block
    k = torch.arange(m, dtype=torch.float64) * (2 * math.pi / m)
    theta = torch.cartesian_prod(k, k, k).reshape(-1, 3)
    return theta if include_zero else theta[1:]


def _plan(block: int, coarse: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Per (node, 27 entries): row, column and block shift ``d`` (3 ints) of the coupling."""
    size = block // 2 if coarse else block
    grids = torch.meshgrid(*(torch.arange(s) for s in (size,) * 3 + (3,) * 3), indexing="ij")
    node = torch.stack(grids[:3], dim=-1)
    entry = torch.stack(grids[3:], dim=-1)

    def flat(t: Tensor, width: int) -> Tensor:
        return (t[..., 0] * width + t[..., 1]) * width + t[..., 2]

    if coarse:  # P: coarse point c -> fine node 2c + entry; rows are fine nodes
        fine = 2 * node + entry
        shift = torch.div(fine, block, rounding_mode="floor")
        local = fine - shift * block
        return flat(local, block).reshape(-1), flat(node, size).reshape(-1), -shift.reshape(-1, 3)
    nb = node + entry - 1
    shift = torch.div(nb, block, rounding_mode="floor")
    local = nb - shift * block
    return flat(node, block).reshape(-1), flat(local, block).reshape(-1), shift.reshape(-1, 3)


def operator_symbol3d(stencil: Tensor, thetas: Tensor) -> Tensor:
    """``A_θ`` ``(B, T, b³, b³)`` of block stencils ``(B, b, b, b, 3, 3, 3)``."""
    b = stencil.shape[-4]
    return block_symbol(stencil, thetas, _plan(b, coarse=False), (b**3, b**3))


def prolongation_symbol3d(pstencil: Tensor, thetas: Tensor) -> Tensor:
    """``P_θ`` ``(B, T, b³, (b/2)³)`` of P-stencils ``(B, b/2, b/2, b/2, 3, 3, 3)``."""
    b = 2 * pstencil.shape[-4]
    return block_symbol(pstencil, thetas, _plan(b, coarse=True), (b**3, (b // 2) ** 3))


def smoother_symbol3d(A: Tensor, smoother: str = "gauss_seidel", backward: bool = False,
                      omega: float = 2.0 / 3.0) -> Tensor:
    """``S_θ = I - T_θ⁻¹ A_θ``: ``T`` the lower (forward) or upper (backward) triangle in local
    lexicographic order, or ``D / ω`` (Jacobi)."""
    if smoother not in SMOOTHERS:
        raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    if smoother == "jacobi":
        return eye - omega * A / torch.diagonal(A, dim1=-2, dim2=-1)[..., :, None]
    T = torch.triu(A) if backward else torch.tril(A)
    return eye - torch.linalg.solve_triangular(T, A, upper=backward)


class TwoGridProblems:
    """Block-periodic problems prepared for the two-grid loss: ``A_θ`` and the smoother
    products (which do not depend on ``P``) computed once, without gradients.

    ``stencil`` ``(B, b, b, b, 3, 3, 3)``; ``n`` the periodic grid size; ``pre``/``post``
    Gauss–Seidel sweeps (forward before, backward after the coarse-grid correction).
    """

    def __init__(self, stencil: Tensor, n: int, pre: int = 1, post: int = 1,
                 smoother: str = "gauss_seidel", include_zero: bool = False) -> None:
        if pre < 0 or post < 0:
            raise ValueError(f"pre and post must be >= 0, got {pre}, {post}")
        self.stencil, self.n = stencil, n
        self.thetas = frequencies3d(n, stencil.shape[-4], include_zero)
        with torch.no_grad():
            self.A = operator_symbol3d(stencil, self.thetas)
            eye = torch.eye(self.A.shape[-1], dtype=self.A.dtype, device=self.A.device)
            s_pre, s_post = eye, eye
            if pre:
                S = smoother_symbol3d(self.A, smoother)
                s_pre = torch.linalg.matrix_power(S, pre)
            if post:
                S = smoother_symbol3d(self.A, smoother, backward=smoother == "gauss_seidel")
                s_post = torch.linalg.matrix_power(S, post)
            self.s_post = s_post
            self.a_s_pre = self.A @ s_pre  # A S_pre
            self.s_both = s_post @ s_pre

    def error_symbol(self, pstencil: Tensor) -> Tensor:
        """``M_θ`` ``(B, T, b³, b³)`` for P-stencils ``(B, b/2, b/2, b/2, 3, 3, 3)``."""
        P = prolongation_symbol3d(pstencil, self.thetas)
        Ph = P.conj().transpose(-2, -1)
        X = torch.linalg.solve(Ph @ self.A @ P, Ph @ self.a_s_pre)
        return self.s_both - (self.s_post @ P) @ X

    def loss(self, pstencil: Tensor, reduction: str = "max") -> Tensor:
        """Per-problem ``||M_θ||²_F`` reduced over θ: ``max`` (training), ``mean`` or ``sum``."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
        fro = (self.error_symbol(pstencil).abs() ** 2).sum(dim=(-2, -1))
        if reduction == "max":
            return fro.max(dim=-1).values
        return fro.mean(dim=-1) if reduction == "mean" else fro.sum(dim=-1)

    def spectral_radius(self, pstencil: Tensor) -> Tensor:
        """``ρ(M) = max_θ ρ(M_θ)`` per problem ``(B,)``."""
        with torch.no_grad():
            return torch.linalg.eigvals(self.error_symbol(pstencil)).abs().amax(dim=(-2, -1))


def two_grid_loss3d(stencil: Tensor, pstencil: Tensor, n: int, reduction: str = "max",
                    pre: int = 1, post: int = 1, smoother: str = "gauss_seidel") -> Tensor:
    """``TwoGridProblems(stencil, n, pre, post, smoother).loss(pstencil, reduction)``."""
    return TwoGridProblems(stencil, n, pre, post, smoother).loss(pstencil, reduction)


def periodic_matrix3d(stencil: Tensor) -> Tensor:
    """The real ``b³ × b³`` matrices ``(B, b³, b³)`` of periodic stencil fields (θ = 0)."""
    return operator_symbol3d(stencil, torch.zeros(1, 3, dtype=torch.float64))[:, 0].real


def stencil_from_periodic_matrix3d(A: Tensor) -> Tensor:
    """Inverse of ``periodic_matrix3d``: stencils ``(B, b, b, b, 3, 3, 3)`` (needs ``b >= 3``)."""
    b = round(A.shape[-1] ** (1 / 3))
    if b < 3 or b**3 != A.shape[-1]:
        raise ValueError(f"need a b^3 x b^3 periodic matrix with b >= 3, got {tuple(A.shape)}")
    row, col, _ = _plan(b, coarse=False)
    vals = A.reshape(A.shape[0], -1)[:, row.to(A.device) * b**3 + col.to(A.device)]
    return vals.reshape(A.shape[0], b, b, b, 3, 3, 3)


def galerkin_coarse_stencil3d(stencil: Tensor, pstencil: Tensor) -> Tensor:
    """Galerkin coarse stencils ``(B, b/2, b/2, b/2, 3, 3, 3)`` of periodic ``b³`` problems."""
    A = periodic_matrix3d(stencil)
    zero = torch.zeros(1, 3, dtype=torch.float64)
    P = prolongation_symbol3d(pstencil, zero)[:, 0].real
    return stencil_from_periodic_matrix3d(P.transpose(-2, -1) @ A @ P)
