"""3-D multigrid: 27-point FE and 7-point FD diffusion, black-box 3-D prolongation, Galerkin
hierarchy, PCMG / preconditioner use, the 3-D block-Fourier symbol, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import pdesolve
from pdesolve.discretize.grid import StructuredGrid
from pdesolve.discretize.prolongation3d import (
    as_stencil3d,
    blackbox_pstencil3d,
    prolongation_matrix3d,
    stencil_from_csr3d,
    trilinear_pstencil,
)
from pdesolve.discretize.trilinear import trilinear_fe_stencil
from pdesolve.solvers.multigrid3d import MultigridHierarchy3D
from pdesolve.train.block_fourier3d import (
    TwoGridProblems,
    galerkin_coarse_stencil3d,
    periodic_fe27_stencil,
)


def _system(n: int, scheme: str = "fe27", coefficient: str = "lognormal", seed: int = 0):
    return pdesolve.get_problem("diffusion", dim=3, n=n, coefficient=coefficient, scheme=scheme,
                                seed=seed, solution=None).discretize()


def test_trilinear_stencil_is_the_q1_laplacian_and_spd():
    s = trilinear_fe_stencil(StructuredGrid(3, 5), np.ones((6, 6, 6))) / 36.0  # times h²
    centre = s[2, 2, 2]
    assert centre[1, 1, 1] == pytest.approx(8 / 3)
    for o in itertools.product(range(3), repeat=3):
        nonzero = sum(1 for v in o if v != 1)
        expect = {0: 8 / 3, 1: 0.0, 2: -1 / 6, 3: -1 / 12}[nonzero]
        assert centre[o] == pytest.approx(expect)
    system = _system(7)
    A = system.A.toarray()
    assert np.allclose(A, A.T) and np.linalg.eigvalsh(A).min() > 0
    assert system.stencil.shape == (7, 7, 7, 3, 3, 3)


@pytest.mark.parametrize("scheme", ["fd", "fe27"])
def test_blackbox_reproduces_constants_away_from_the_boundary(scheme):
    n = 15
    system = _system(n, scheme)
    p = blackbox_pstencil3d(torch.as_tensor(system.stencil)).numpy()
    P = prolongation_matrix3d(p, n)
    ones = (P @ np.ones(P.shape[1])).reshape(n, n, n)
    inner = ones[1:-1, 1:-1, 1:-1]  # rows whose stencils (and neighbours') have zero row sums
    assert np.abs(inner - 1).max() < 1e-12
    assert np.abs(ones[0] - 1).max() > 1e-3  # next to the boundary it interpolates towards 0
    # the learned rule's input: the trilinear weights on constant coefficients
    const = blackbox_pstencil3d(torch.as_tensor(_system(7, scheme, "constant").stencil))
    assert torch.allclose(const, trilinear_pstencil((3, 3, 3)))


def test_galerkin_operators_are_spd_and_27_point():
    system = _system(15, "fd")
    mg = MultigridHierarchy3D(system.A, system.stencil, prolongation="blackbox")
    assert [lv.n for lv in mg.levels] == [15, 7, 3]
    for level in mg.levels[1:]:
        A = level.A.toarray()
        assert np.abs(A - A.T).max() <= 1e-12 * np.abs(A).max()
        assert np.linalg.eigvalsh(A).min() > 0
        stencil = stencil_from_csr3d(level.A, level.n)  # couples within 3x3x3 only
        assert np.count_nonzero(stencil[1, 1, 1]) == 27


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "bound"), [("fd", 0.30), ("fe27", 0.18)])
def test_constant_coefficient_factors_are_grid_independent(scheme, bound):
    # measured: V(1,1) factors 0.278 / 0.279 (fd), 0.161 / 0.165 (fe27) at n = 15 / 31; the
    # two-grid factors equal them to 3 digits
    factors = {}
    for n in (15, 31):
        system = _system(n, scheme, "constant")
        for levels in (None, 2):
            mg = MultigridHierarchy3D(system.A, system.stencil, prolongation="blackbox",
                                      symmetric=True, max_levels=levels)
            factors[n, levels] = mg.convergence_factor(cycles=20)
    assert max(factors.values()) < bound
    assert abs(factors[31, None] - factors[15, None]) < 0.01
    assert abs(factors[31, 2] - factors[15, 2]) < 0.01


@pytest.mark.slow
def test_pcmg_and_python_cycles_agree_and_beat_trilinear_on_lognormal():
    system = _system(15, "fe27")
    its = {}
    for method in ("petsc_cg", "scipy_cg"):
        result = pdesolve.solve(system, method=method, rtol=1e-8,
                                pc={"name": "multigrid", "prolongation": "blackbox"})
        assert result.converged
        assert np.linalg.norm(system.b - system.A @ result.x) <= 1e-8 * system.b_norm
        its[method] = result.iterations
    assert abs(its["petsc_cg"] - its["scipy_cg"]) <= 1
    mg = pdesolve.get_preconditioner("multigrid", prolongation="blackbox")
    with pdesolve.get_solver("petsc_cg", pc=mg, rtol=1e-8) as solver:
        solver.setup(system)
        first, again = solver.solve(system.b), solver.solve(2 * system.b)
    assert first.converged and again.converged and again.info["setups"] == 1
    assert mg.describe()["levels"] == 3
    bb = MultigridHierarchy3D(system.A, system.stencil, prolongation="blackbox", symmetric=True)
    tri = MultigridHierarchy3D(system.A, system.stencil, prolongation="trilinear",
                               symmetric=True)
    assert bb.convergence_factor(cycles=20) < 0.8 * tri.convergence_factor(cycles=20)


@pytest.mark.slow
def test_block_symbol_equals_the_dense_two_grid_operator():
    gen = torch.Generator().manual_seed(0)
    s = periodic_fe27_stencil(torch.exp(torch.randn(1, 4, 4, 4, dtype=torch.float64,
                                                    generator=gen)))
    s[..., 1, 1, 1] += 0.5  # non-singular at theta = 0
    big = s[0].repeat(2, 2, 2, 1, 1, 1)  # the 8^3 periodic grid
    p = blackbox_pstencil3d(big, periodic=True)
    assert torch.allclose(p, blackbox_pstencil3d(s, periodic=True)[0].repeat(2, 2, 2, 1, 1, 1))
    n, nc = 8, 4
    big_np, p_np = big.numpy(), p.numpy()

    def flat(i, j, k, m):
        return ((i % m) * m + j % m) * m + k % m

    A, P = np.zeros((n**3, n**3)), np.zeros((n**3, nc**3))
    for i, j, k, a, b, c in itertools.product(range(n), range(n), range(n), *[range(3)] * 3):
        A[flat(i, j, k, n), flat(i + a - 1, j + b - 1, k + c - 1, n)] += big_np[i, j, k, a, b, c]
    for i, j, k, a, b, c in itertools.product(range(nc), range(nc), range(nc), *[range(3)] * 3):
        P[flat(2 * i + a, 2 * j + b, 2 * k + c, n), flat(i, j, k, nc)] += p_np[i, j, k, a, b, c]
    S = np.eye(n**3) - (2 / 3) * A / np.diag(A)[:, None]
    M = S @ (np.eye(n**3) - P @ np.linalg.solve(P.T @ A @ P, P.T @ A)) @ S
    problems = TwoGridProblems(s, n, smoother="jacobi", include_zero=True)
    pb = blackbox_pstencil3d(s, periodic=True)
    assert problems.loss(pb, "sum").item() == pytest.approx((M**2).sum(), rel=1e-10)
    assert problems.spectral_radius(pb).item() == pytest.approx(
        np.abs(np.linalg.eigvals(M)).max(), rel=1e-8)
    coarse = galerkin_coarse_stencil3d(big[None], p[None])[0]
    Ac = sp.csr_matrix(P.T @ A @ P)
    assert coarse[1, 2, 3, 0, 2, 1].item() == pytest.approx(
        Ac[flat(1, 2, 3, nc), flat(0, 3, 3, nc)])


def test_bad_input_is_refused_clearly(tmp_path):
    system = _system(7)
    with pytest.raises(ValueError, match=r"\(n, n, n, 3, 3, 3\) or \(n, n, n, 27\)"):
        as_stencil3d(np.zeros((7, 7, 7, 3, 3)))
    with pytest.raises(ValueError, match="odd n"):
        MultigridHierarchy3D(None, np.zeros((8, 8, 8, 27)))
    flat = system.stencil.reshape(7, 7, 7, 27)  # the flat form is accepted
    assert MultigridHierarchy3D(None, flat).levels[1].n == 3
    with pytest.raises(ValueError, match="unknown 3-D prolongation 'boxmg'"):
        MultigridHierarchy3D(system.A, system.stencil, prolongation="boxmg")
    bare = pdesolve.LinearSystem(A=system.A, b=system.b, stencil=np.zeros((7, 7, 7, 3, 3)),
                                 grid=system.grid)
    with pytest.raises(ValueError, match="3-D multigrid needs"):
        pdesolve.solve(bare, method="petsc_cg", pc="multigrid")
    even = _system(8)
    with pytest.raises(ValueError, match="not 2\\^k - 1"):
        pdesolve.solve(even, method="petsc_cg", pc="multigrid")


def test_checkpoints_of_the_other_dimension_are_refused(tmp_path):
    from pdesolve.nn.prolongation import ProlongationNet, load_prolongation_net
    from pdesolve.nn.prolongation3d import learned_pstencil3d, load_prolongation_net3d
    from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT
    from pdesolve.solvers.multigrid3d import DEFAULT_CHECKPOINT3D

    with pytest.raises(ValueError, match="2-D prolongation network; a 3-D grid needs a 3-D"):
        load_prolongation_net3d(str(DEFAULT_CHECKPOINT))
    with pytest.raises(ValueError, match="3-D prolongation network; a 2-D grid needs a 2-D"):
        load_prolongation_net(str(DEFAULT_CHECKPOINT3D))
    system = _system(7)
    with pytest.raises(ValueError, match="2-D prolongation network"):
        pdesolve.solve(system, method="petsc_cg", pc={"name": "multigrid",
                       "prolongation": "learned", "checkpoint": str(DEFAULT_CHECKPOINT)})
    with pytest.raises(TypeError, match="needs a ProlongationNet3D"):
        learned_pstencil3d(ProlongationNet(width=4, blocks=1), torch.as_tensor(system.stencil))


def test_learned_inference_paths_agree_and_preserve_constants(one_thread):
    from pdesolve.discretize.prolongation3d import FACES
    from pdesolve.nn.prolongation3d import ProlongationNet3D, learned_pstencil3d

    torch.manual_seed(0)
    net = ProlongationNet3D(width=8, blocks=1)
    s = torch.as_tensor(_system(15, "fd", seed=3).stencil)
    assert torch.allclose(learned_pstencil3d(net, s), blackbox_pstencil3d(s), atol=1e-14)
    torch.nn.init.normal_(net.out.weight, std=0.3)  # an arbitrary (trained-like) network
    ref = learned_pstencil3d(net, s).detach()
    assert (learned_pstencil3d(net, s, precision="float64") - ref).abs().max() < 1e-12
    rel = (learned_pstencil3d(net, s, precision="float32") - ref).abs().max() / ref.abs().max()
    assert rel < 1e-6
    ones = (prolongation_matrix3d(ref.numpy(), 15) @ np.ones(7**3)).reshape(15, 15, 15)
    assert np.abs(ones[1:-1, 1:-1, 1:-1] - 1).max() < 1e-12
    assert len(FACES) == 12 and net.outputs == 18


@pytest.mark.slow
def test_shipped_learned_prolongation_beats_blackbox_on_trilinear_fe(one_thread):
    # measured on seeds 100-107 (n = 15): 8/8 wins, mean factor ratio 0.947, worst 0.998; on the
    # 7-point FD family the shipped network is at parity with black-box (3/8, mean 1.006)
    net = MultigridHierarchy3D.load_network(None)
    ratios = []
    for seed in range(100, 104):
        system = _system(15, "fe27", seed=seed)
        factors = [MultigridHierarchy3D(system.A, system.stencil, prolongation=rule, net=net,
                                        symmetric=True).convergence_factor(cycles=25)
                   for rule in ("learned", "blackbox")]
        ratios.append(factors[0] / factors[1])
    assert max(ratios) < 1.0 and np.mean(ratios) < 0.97


def test_shipped_3d_prolongation_loads_with_its_config_and_log():
    from pdesolve.nn.prolongation3d import load_prolongation_net3d
    from pdesolve.resources import data_dir
    from pdesolve.solvers.multigrid3d import DEFAULT_CHECKPOINT3D

    assert DEFAULT_CHECKPOINT3D.is_relative_to(data_dir())
    for name in ("config3d.json", "training_log3d.json", "training_stdout3d.txt", "README.md"):
        assert (DEFAULT_CHECKPOINT3D.parent / name).is_file(), name
    net = load_prolongation_net3d(str(DEFAULT_CHECKPOINT3D))
    state = torch.load(DEFAULT_CHECKPOINT3D, map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert net.config == {"width": 32, "blocks": 2, "blackbox_skip": True, "dim": 3,
                          "learn_faces": True}


@pytest.mark.parametrize("scheme", ["fd", "fe27"])
def test_setup_route_gives_the_reference_prolongations(scheme, one_thread):
    from pdesolve.discretize.pstencil3d_setup import (
        blackbox_pstencil3d_setup,
        prolongation_pair3d,
    )
    from pdesolve.nn.prolongation3d import ProlongationNet3D, learned_pstencil3d

    torch.manual_seed(1)
    net = ProlongationNet3D(width=8, blocks=1)
    torch.nn.init.normal_(net.out.weight, std=0.3)  # far from black-box, as a trained net
    system = _system(15, scheme, seed=5)
    s = torch.as_tensor(system.stencil)
    ref_bb = blackbox_pstencil3d(s).numpy()
    assert np.abs(blackbox_pstencil3d_setup(system.stencil) - ref_bb).max() < 1e-12 * np.abs(
        ref_bb).max()
    ref = learned_pstencil3d(net, s).detach().numpy()
    assert np.abs(ref - ref_bb).max() > 1e-2  # the network changes P
    levels = {}
    for precision in (None, "float64", "float32"):
        mg = MultigridHierarchy3D(system.A, system.stencil, prolongation="learned", net=net,
                                  precision=precision)
        levels[precision] = mg
    for precision, tol in (("float64", 1e-12), ("float32", 1e-6)):
        for P, Pref in zip(levels[precision].prolongations(), levels[None].prolongations(),
                           strict=True):
            assert abs(P - Pref).max() <= tol * abs(Pref).max()
        A1, Aref = levels[precision].coarse_operators()[0], levels[None].coarse_operators()[0]
        assert abs(A1 - Aref).max() <= 10 * tol * abs(Aref).max()
    P, R = prolongation_pair3d(ref, 15)
    assert P.has_canonical_format and R.has_canonical_format and (R != P.T).nnz == 0
    assert abs(P - prolongation_matrix3d(ref, 15)).max() == 0.0
    assert abs(levels[None].prolongations()[0] - P).max() == 0.0
    its = {precision: pdesolve.solve(system, method="petsc_cg", rtol=1e-10, pc=pdesolve.
                                     get_preconditioner("multigrid", prolongation="learned",
                                                        precision=precision)).iterations
           for precision in ("float32", "float64")}
    assert its["float32"] == its["float64"]


def test_stencil_readback_sums_duplicates_and_refuses_wrapping_couplings():
    system = _system(7, "fe27", seed=2)
    A = system.A.tocoo()
    # the same matrix as unsorted COO entries with every value split in two halves
    order = np.random.default_rng(0).permutation(A.nnz)
    rows, cols, vals = A.row[order], A.col[order], A.data[order]
    B = sp.csr_matrix((np.r_[vals / 2, vals / 2], (np.r_[rows, rows], np.r_[cols, cols])),
                      shape=A.shape)
    B.has_sorted_indices = False
    assert np.allclose(stencil_from_csr3d(B, 7), system.stencil, rtol=1e-14, atol=0)
    wrap = sp.csr_matrix(([1.0], ([6], [7])), shape=A.shape)  # (0, 0, 6) with (0, 1, 0)
    with pytest.raises(ValueError, match="further apart"):
        stencil_from_csr3d(wrap, 7)
