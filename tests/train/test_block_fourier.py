"""The block-Fourier two-grid analysis against explicitly assembled periodic operators."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pdesolve.discretize.prolongation import bilinear_pstencil, blackbox_pstencil
from pdesolve.nn.prolongation import ProlongationNet, learned_pstencil
from pdesolve.train.block_fourier import (
    frequencies,
    galerkin_coarse_stencil,
    periodic_fe_stencil,
    smoother_order,
    two_grid_loss,
    two_grid_spectral_radius,
)
from pdesolve.train.prolongation_training import TrainConfig, train


def _dense_periodic(stencil: np.ndarray, pst: np.ndarray, m: int):
    """Global A (N² × N²) and P of block fields tiled m × m, assembled entry by entry."""
    b = stencil.shape[0]
    N, nc = b * m, b * m // 2
    A = np.zeros((N * N, N * N))
    for i, j, a, c in itertools.product(range(N), range(N), range(3), range(3)):
        A[i * N + j, ((i + a - 1) % N) * N + (j + c - 1) % N] += stencil[i % b, j % b, a, c]
    P = np.zeros((N * N, nc * nc))
    for I, J, a, c in itertools.product(range(nc), range(nc), range(3), range(3)):
        fine = ((2 * I + a) % N) * N + (2 * J + c) % N
        P[fine, I * nc + J] += pst[I % (b // 2), J % (b // 2), a, c]
    return A, P


@pytest.mark.parametrize("smoother", ["gauss_seidel", "red_black", "jacobi"])
def test_block_fourier_equals_dense_two_grid(smoother: str) -> None:
    gen = torch.Generator().manual_seed(0)
    b, m = 8, 2
    g = torch.exp(torch.randn(1, b, b, dtype=torch.float64, generator=gen))
    s = periodic_fe_stencil(g)
    s[..., 1, 1] += 0.05  # a small shift makes the periodic operator (and θ = 0) non-singular
    p = blackbox_pstencil(s, periodic=True)
    A, P = _dense_periodic(s[0].numpy(), p[0].numpy(), m)
    N = b * m
    size = N * N
    local = np.array([(i % b) * b + (j % b) for i in range(N) for j in range(N)])
    if smoother == "jacobi":
        S = np.eye(size) - (2 / 3) * A / np.diag(A)[:, None]
    else:
        rank = smoother_order(b, smoother).numpy()[local]
        S = np.eye(size) - np.linalg.solve(A * (rank[None, :] <= rank[:, None]), A)
    C = np.eye(size) - P @ np.linalg.solve(P.T @ A @ P, P.T @ A)
    for pre, post in [(1, 1), (2, 0)]:
        M = np.linalg.matrix_power(S, post) @ C @ np.linalg.matrix_power(S, pre)
        rho = np.abs(np.linalg.eigvals(M)).max()
        fro = (M**2).sum()
        kw = {"pre": pre, "post": post, "smoother": smoother, "include_zero": True}
        got_rho = two_grid_spectral_radius(s, p, N, **kw).item()
        got_fro = two_grid_loss(s, p, N, reduction="sum", **kw).item()
        assert got_rho == pytest.approx(rho, abs=1e-10)
        assert got_fro == pytest.approx(fro, rel=1e-10)
        assert two_grid_loss(s, p, N, reduction="mean", **kw).item() == pytest.approx(fro / m**2)


def test_lexicographic_block_gs_is_exact_gs_on_one_block() -> None:
    # with m = 1 (the whole periodic grid is one block) block GS is global lexicographic GS
    g = torch.exp(torch.randn(1, 8, 8, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(3)))
    s = periodic_fe_stencil(g)
    s[..., 1, 1] += 0.1
    p = bilinear_pstencil((1, 4, 4))
    A, P = _dense_periodic(s[0].numpy(), p[0].numpy(), 1)
    S = np.eye(64) - np.linalg.solve(np.tril(A), A)
    C = np.eye(64) - P @ np.linalg.solve(P.T @ A @ P, P.T @ A)
    rho = np.abs(np.linalg.eigvals(S @ C @ S)).max()
    got = two_grid_spectral_radius(s, p, 8, include_zero=True).item()
    assert got == pytest.approx(rho, abs=1e-10)


def test_max_and_mean_reductions_and_frequencies() -> None:
    assert frequencies(16).shape == (3, 2) and frequencies(32).shape == (15, 2)
    g = torch.exp(torch.randn(3, 8, 8, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(1)))
    s = periodic_fe_stencil(g)
    p = blackbox_pstencil(s, periodic=True)
    mx = two_grid_loss(s, p, 32, reduction="max")
    mean = two_grid_loss(s, p, 32, reduction="mean")
    assert torch.all(mx >= mean) and torch.all(mean > 0)
    # bilinear is worse than black-box on log-normal blocks
    bil = two_grid_loss(s, bilinear_pstencil((3, 4, 4)), 32, reduction="mean")
    assert torch.all(bil > mean)


def test_galerkin_coarse_stencil_matches_dense_and_loss_has_gradients() -> None:
    g = torch.exp(torch.randn(2, 16, 16, dtype=torch.float64,
                              generator=torch.Generator().manual_seed(2)))
    s = periodic_fe_stencil(g)
    p = blackbox_pstencil(s, periodic=True)
    coarse = galerkin_coarse_stencil(s, p)
    A, P = _dense_periodic(s[0].numpy(), p[0].numpy(), 1)
    Ac_dense = P.T @ A @ P
    Ac, _ = _dense_periodic(coarse[0].numpy(), np.zeros((4, 4, 3, 3)), 1)
    np.testing.assert_allclose(Ac, Ac_dense, atol=1e-12)
    net = ProlongationNet(width=8, blocks=1)
    s8 = s[:, :8, :8]  # any 8x8 stencil block is a valid periodic training problem shape-wise
    s8 = periodic_fe_stencil(g[:, :8, :8])
    loss = two_grid_loss(s8, learned_pstencil(net, s8, periodic=True), 16).mean()
    loss.backward()
    assert net.out.weight.grad is not None and net.out.weight.grad.abs().sum() > 0


def test_training_reduces_the_loss_below_blackbox() -> None:
    cfg = TrainConfig(samples=256, test_samples=32, batch=32, curriculum=(16, 16), width=16,
                      blocks=2, lr=3e-3, epochs_per_stage=2, seed=0)
    _, log = train(cfg)
    assert log[-1]["test_loss"] < log[-1]["blackbox_test_loss"]
    assert log[-1]["problems"] == 256  # half the fine problems kept, coarse problems added
