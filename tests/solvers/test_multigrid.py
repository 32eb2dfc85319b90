"""Numerical facts about the geometric multigrid and its prolongations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import pdesolve
from pdesolve.discretize.prolongation import bilinear_pstencil, blackbox_pstencil, boxmg_pstencil
from pdesolve.nn.prolongation import ProlongationNet, learned_pstencil
from pdesolve.solvers.multigrid import (
    DEFAULT_CHECKPOINT,
    MultigridHierarchy,
    load_network,
    prolongation_matrix,
    stencil_from_csr,
)


def _system(n: int, coefficient: str = "lognormal", seed: int = 0, scheme: str = "fe9"):
    if coefficient == "poisson":
        return pdesolve.get_problem("poisson", dim=2, n=n, scheme=scheme).discretize()
    return pdesolve.get_problem(
        "diffusion", dim=2, n=n, coefficient=coefficient, scheme=scheme, seed=seed
    ).discretize()


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        # 5-point Laplacian, bilinear P, R = P^T: the known Galerkin stencil
        # (1/H^2)[-1/4 -1/2 -1/4; -1/2 3 -1/2; -1/4 -1/2 -1/4] of full weighting (R_FW = P^T/4,
        # H = 2h) times 4, i.e. the same matrix in units of 1/h^2
        ("fd", np.array([[-0.25, -0.5, -0.25], [-0.5, 3.0, -0.5], [-0.25, -0.5, -0.25]])),
        # 9-point bilinear FE: Galerkin reproduces the FE stencil (1/3)[-1 ... 8 ...] (1/h^2 units)
        ("fe9", np.array([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]) / 3),
    ],
)
def test_galerkin_coarse_stencil_of_bilinear_p(scheme: str, expected: np.ndarray) -> None:
    system = _system(15, "poisson", scheme=scheme)
    h2 = system.geometry.h ** 2
    mg = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear", coarsest=7)
    coarse = stencil_from_csr(mg.levels[1].A, 7) * h2
    np.testing.assert_allclose(coarse[3, 3], expected, atol=1e-12)  # an interior coarse node
    assert abs(mg.levels[1].A - mg.levels[1].A.T).max() < 1e-10


def test_prolongation_has_bilinear_sparsity_and_galerkin_is_symmetric() -> None:
    system = _system(31)
    mg = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
    bil = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear")
    for lv, lb in zip(mg.levels[:-1], bil.levels[:-1], strict=True):
        assert (abs(lv.P) > 0).astype(int).nnz == lb.P.nnz
        assert ((abs(lv.P) > 0) != (abs(lb.P) > 0)).nnz == 0
    for lv in mg.levels:
        assert abs(lv.A - lv.A.T).max() <= 1e-12 * abs(lv.A).max()


def test_stencil_csr_round_trip_and_prolongation_matrix() -> None:
    system = _system(15)
    np.testing.assert_allclose(stencil_from_csr(system.A, 15), system.stencil, atol=0)
    P = prolongation_matrix(bilinear_pstencil((7, 7)).numpy(), 15)
    x = np.arange(7.0)
    coarse = np.add.outer(x, 2 * x).ravel()  # linear function on coarse points (odd fine idx)
    fine_pos = (np.arange(15) - 1) / 2  # fine index i sits at coarse coordinate (i - 1) / 2
    fine = np.add.outer(fine_pos, 2 * fine_pos)
    inner = slice(1, 14)  # bilinear P reproduces linear functions away from the boundary
    np.testing.assert_allclose((P @ coarse).reshape(15, 15)[inner, inner], fine[inner, inner])


@pytest.mark.parametrize("scheme", ["fd", "fe9"])
def test_v_cycle_factor_is_small_and_h_independent(scheme: str) -> None:
    factors = []
    for n in (31, 63, 127):
        system = _system(n, "poisson", scheme=scheme)
        mg = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear")
        factors.append(mg.convergence_factor(cycles=25))
    assert max(factors) < 0.2, factors
    assert max(factors) - min(factors) < 0.08, factors


def test_blackbox_reproduces_bilinear_for_constant_coefficients() -> None:
    for scheme in ("fd", "fe9"):
        s = torch.as_tensor(_system(15, "poisson", scheme=scheme).stencil)
        p = blackbox_pstencil(s)
        np.testing.assert_allclose(p.numpy(), bilinear_pstencil((7, 7)).numpy(), atol=1e-14)


def test_boxmg_reduces_to_bilinear_for_constant_coefficients() -> None:
    for scheme in ("fd", "fe9"):
        s = torch.as_tensor(_system(15, "poisson", scheme=scheme).stencil)
        np.testing.assert_allclose(boxmg_pstencil(s).numpy(), bilinear_pstencil((7, 7)).numpy(),
                                   atol=1e-14)


@pytest.mark.parametrize("coefficient", ["lognormal", "uniform", "checkerboard"])
def test_boxmg_coincides_with_blackbox_on_dirichlet_diffusion(coefficient: str) -> None:
    # zero row sums in the interior; at boundary-adjacent points (r > 0) one collapsed side is
    # the eliminated boundary, so BoxMG's switch picks the collapsed centre: every level agrees
    system = _system(63, coefficient, seed=7)
    bb = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
    box = MultigridHierarchy(system.A, system.stencil, prolongation="boxmg")
    assert len(bb.levels) == len(box.levels) == 5
    for lb, lx in zip(bb.levels[:-1], box.levels[:-1], strict=True):
        assert abs(lb.P - lx.P).max() <= 1e-13 * abs(lb.P).max()


def test_boxmg_interpolates_constants_with_a_weak_absorption_term() -> None:
    # a small positive row sum (sigma u, sigma = 1e-4 of the diagonal) switches BoxMG to the
    # constant-preserving denominator: P 1 = 1 at every fine point whose coarse neighbours are
    # interior; black-box's collapsed centre then loses constants at the O(sigma) level
    n = 31
    s = _system(n, seed=2).stencil.copy()
    s[..., 1, 1] *= 1 + 1e-4
    st = torch.as_tensor(s)
    ones = {}
    for name, rule in (("boxmg", boxmg_pstencil), ("blackbox", blackbox_pstencil)):
        P = prolongation_matrix(rule(st).numpy(), n)
        ones[name] = (P @ np.ones(P.shape[1])).reshape(n, n)[1:-1, 1:-1]
    assert np.abs(ones["boxmg"] - 1).max() < 1e-13
    assert np.abs(ones["blackbox"] - 1).max() > 1e-6
    # next to the Dirichlet boundary both rules interpolate towards zero (weights below one)
    P = prolongation_matrix(boxmg_pstencil(st).numpy(), n)
    edge = (P @ np.ones(P.shape[1])).reshape(n, n)[0, 1::2]
    assert np.all(edge < 0.99)


def test_blackbox_beats_bilinear_on_lognormal() -> None:
    for seed in (0, 1):
        system = _system(63, seed=seed)
        bb = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
        bil = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear")
        assert bb.convergence_factor(30) < 0.25 < 0.45 < bil.convergence_factor(30)


@pytest.mark.parametrize("smoother", ["gauss_seidel", "red_black", "jacobi"])
@pytest.mark.parametrize("cycle", ["V", "W", "F"])
def test_solver_converges_with_every_smoother_and_cycle(smoother: str, cycle: str) -> None:
    system = _system(31, seed=3)
    result = pdesolve.solve(system, method="multigrid", smoother=smoother, cycle=cycle,
                            rtol=1e-8, maxiter=200, omega=0.8)
    assert result.converged and result.reason.name == "CONVERGED_RTOL"
    assert np.linalg.norm(system.b - system.A @ result.x) <= 1e-8 * system.b_norm
    assert result.residual_norms[-1] == pytest.approx(system.residual_norm(result.x))
    # W and F do at least as well per cycle as V
    assert result.iterations <= (60 if smoother == "jacobi" else 25)


def test_red_black_is_gauss_seidel_in_red_black_order_on_5_point() -> None:
    # on a 5-point stencil, red-black GS = a Jacobi update of all red then all black points
    system = _system(15, "poisson", scheme="fd")
    mg = MultigridHierarchy(system.A, system.stencil, smoother="red_black", coarsest=15)
    level = mg.levels[0]
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal(225), rng.standard_normal(225)
    got = level.smooth(x, b, 1, backward=False)
    i, j = np.divmod(np.arange(225), 15)
    red = (i + j) % 2 == 0
    d = system.A.diagonal()
    y = x.copy()
    for mask in (red, ~red):
        r = b - system.A @ y
        y[mask] += r[mask] / d[mask]
    np.testing.assert_allclose(got, y, rtol=1e-12, atol=1e-12)


def test_mg_preconditioned_cg_agrees_with_petsc_cg() -> None:
    system = _system(127, seed=5)
    mg_cg = pdesolve.solve(system, method="multigrid", krylov="cg", rtol=1e-10)
    petsc = pdesolve.solve(system, method="petsc_cg", pc="icc", rtol=1e-12)
    assert mg_cg.converged and mg_cg.iterations <= 15
    np.testing.assert_allclose(mg_cg.x, petsc.x, rtol=0, atol=1e-8 * np.abs(petsc.x).max())
    pcmg = pdesolve.solve(system, method="multigrid", krylov="petsc_cg", rtol=1e-10)
    assert pcmg.converged and pcmg.iterations <= 15
    np.testing.assert_allclose(pcmg.x, petsc.x, rtol=0, atol=1e-8 * np.abs(petsc.x).max())


def test_preconditioner_is_symmetric() -> None:
    system = _system(15, seed=2)
    mg = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
    M = mg.aspreconditioner()
    dense = M @ np.eye(225)
    np.testing.assert_allclose(dense, dense.T, atol=1e-12 * np.abs(dense).max())
    assert np.linalg.eigvalsh((dense + dense.T) / 2).min() > 0


def test_two_grid_error_matrix_has_the_expected_spectrum() -> None:
    # exact two-grid for 5-point Poisson with bilinear P and GS(1,1): rho well below 0.2
    system = _system(15, "poisson", scheme="fd")
    mg = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear", max_levels=2)
    rho = np.abs(np.linalg.eigvals(mg.error_matrix())).max()
    assert 0.02 < rho < 0.15


def test_learned_constraints_hold_exactly() -> None:
    torch.manual_seed(0)
    net = ProlongationNet(width=16, blocks=2, blackbox_skip=False)
    for param in net.out.parameters():
        torch.nn.init.normal_(param, std=0.5)  # make the outputs non-trivial
    s = torch.as_tensor(_system(31, seed=1).stencil)
    with torch.no_grad():
        p = learned_pstencil(net, s)
    # pairwise normalisation: the two coarse weights at each interior edge point sum to 1
    np.testing.assert_allclose((p[:-1, :, 2, 1] + p[1:, :, 0, 1]).numpy(), 1.0, atol=1e-14)
    np.testing.assert_allclose((p[:, :-1, 1, 2] + p[:, 1:, 1, 0]).numpy(), 1.0, atol=1e-14)
    assert torch.all(p[..., 1, 1] == 1)
    # zero local residual at every corner (cell-centre) fine point for the coarse point's own
    # prolongated basis function: (A P e_c) vanishes at its 4 corner points
    P = prolongation_matrix(p.numpy(), 31)
    AP = (sp.csr_matrix(_system(31, seed=1).A) @ P).toarray()
    for I, J in [(0, 0), (7, 4), (14, 14)]:
        col = AP[:, I * 15 + J].reshape(31, 31)
        for da in (-1, 1):
            for db in (-1, 1):
                assert abs(col[2 * I + 1 + da, 2 * J + 1 + db]) < 1e-9 * np.abs(col).max()


def test_untrained_network_with_skip_is_blackbox_in_the_interior() -> None:
    net = ProlongationNet(width=8, blocks=1)
    s = torch.as_tensor(_system(31, seed=4).stencil)
    with torch.no_grad():
        np.testing.assert_allclose(learned_pstencil(net, s).numpy(),
                                   blackbox_pstencil(s).numpy(), rtol=1e-12, atol=1e-14)


def test_shipped_learned_prolongation_against_blackbox() -> None:
    # The acceptance criterion: learned V(1,1) factor below black-box's on >= 80% of 20 seeded
    # log-normal problems at n = 63. Measured with the shipped checkpoint (fine-tuned with the
    # S C S loss; see its README.md beside it) on seed sets never used for model choice:
    # 90/100 on seeds 4000-4099 (every set of 20 at >= 17), 91/100 on these seeds 2000-2099
    # (36/40 here, 18/20 on the first 20), mean ratio 0.91, worst 1.09. The first checkpoint
    # (stage 1 alone) had 83-84/100 with sets of 20 down to 14/20, so the thresholds below are
    # a few problems under the measured counts, not at them.
    assert DEFAULT_CHECKPOINT.exists()
    net = load_network(None)
    wins, ratios = [], []
    for seed in range(2000, 2040):
        system = _system(63, seed=seed)
        kw = {"cycles": 40, "seed": seed}
        ours = MultigridHierarchy(system.A, system.stencil, prolongation="learned", net=net)
        bb = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
        f_ours, f_bb = ours.convergence_factor(**kw), bb.convergence_factor(**kw)
        wins.append(f_ours < f_bb)
        ratios.append(f_ours / f_bb)
    assert sum(wins[:20]) >= 16, sum(wins[:20])  # 80% of 20
    assert sum(wins) >= 32, sum(wins)
    assert np.mean(ratios) < 0.95, np.mean(ratios)
    assert max(ratios) < 1.2, max(ratios)
