"""The fast multigrid set-up gives the reference path's prolongations and iteration counts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import pdesolve
from pdesolve.discretize.finite_difference import stencil_to_csr
from pdesolve.discretize.galerkin import galerkin_stencil, prolongation_csr
from pdesolve.nn.prolongation import ProlongationNet, learned_pstencil
from pdesolve.solvers.base import StoppingRule
from pdesolve.solvers.fcg import FunctionPreconditioner
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network
from pdesolve.solvers.petsc_pcmg import solve_petsc_cg_pcmg


def _system(n: int, seed: int = 0):
    return pdesolve.get_problem("diffusion", dim=2, n=n, coefficient="lognormal", scheme="fe9",
                                seed=seed).discretize()


@pytest.fixture(scope="module")
def net():
    return load_network(None)


def test_closed_form_galerkin_is_the_matrix_product_for_any_stencils() -> None:
    # non-symmetric random stencils (links leaving the grid included) and random P-stencils
    rng = np.random.default_rng(1)
    for n in (3, 7, 15):
        nc = (n - 1) // 2
        s, p = rng.standard_normal((n, n, 3, 3)), rng.standard_normal((nc, nc, 3, 3))
        p[0, 0, 1, 0] = 0.0  # an exact zero is dropped from P
        indptr, indices, data = prolongation_csr(p, n)
        P = sp.csr_matrix((data, indices, indptr), shape=(n * n, nc * nc))
        assert P.has_canonical_format and P.nnz == p.size - 1
        I, J, a, b = np.meshgrid(*(np.arange(k) for k in p.shape), indexing="ij")
        ref = sp.csr_matrix((p.ravel(), (((2 * I + a) * n + 2 * J + b).ravel(),
                                         (I * nc + J).ravel())), shape=P.shape)
        assert abs(P - ref).max() == 0.0
        dense = (P.T @ stencil_to_csr(s) @ P).toarray()
        coarse = stencil_to_csr(galerkin_stencil(s, p)).toarray()
        np.testing.assert_allclose(coarse, dense, rtol=0, atol=1e-13 * np.abs(dense).max())
    with pytest.raises(ValueError, match="do not fit"):
        galerkin_stencil(np.zeros((7, 7, 3, 3)), np.zeros((4, 4, 3, 3)))


def test_batched_inference_matches_the_network_module() -> None:
    torch.manual_seed(0)
    net = ProlongationNet(width=16, blocks=3)
    for param in net.parameters():  # non-trivial weights everywhere (Fixup starts at zero)
        torch.nn.init.normal_(param, std=0.3)
    s = torch.as_tensor(_system(31, seed=3).stencil)
    with torch.no_grad():
        ref = learned_pstencil(net, s)
    fast64 = learned_pstencil(net, s, precision="float64")
    fast32 = learned_pstencil(net, s, precision="float32")
    assert fast64.dtype == fast32.dtype == torch.float64
    scale = ref.abs().max()
    assert (fast64 - ref).abs().max() <= 1e-12 * scale
    err32 = (fast32 - ref).abs().max() / scale
    assert 0 < err32 <= 1e-6, err32  # float32 rounding, not zero and not more
    with pytest.raises(ValueError, match="precision"):
        learned_pstencil(net, s, precision="float16")


@pytest.mark.parametrize("rule", ["blackbox", "boxmg", "learned"])
def test_fast_setup_gives_the_reference_prolongations(rule: str, net) -> None:
    system = _system(63, seed=11)
    kw = {"prolongation": rule, "net": net if rule == "learned" else None}
    ref = MultigridHierarchy(system.A, system.stencil, galerkin="matrix", precision=None, **kw)
    runs = [("float64", "matrix", 1e-12), ("float64", "stencil", 1e-12)]
    if rule == "learned":
        runs += [("float32", "matrix", 1e-6)]
    for precision, galerkin, tol in runs:
        fast = MultigridHierarchy(system.A, system.stencil, precision=precision,
                                  galerkin=galerkin, **kw)
        assert len(fast.levels) == len(ref.levels) == 5
        for lf, lr in zip(fast.levels, ref.levels, strict=True):
            if lr.P is not None:
                assert abs(lf.P - lr.P).max() <= tol * abs(lr.P).max(), (precision, lr.n)
            assert abs(lf.A - lr.A).max() <= max(tol, 1e-12) * abs(lr.A).max()


def test_setup_builds_no_smoother_factorisation_until_a_cycle_needs_it() -> None:
    system = _system(31, seed=2)
    mg = MultigridHierarchy(system.A, system.stencil, prolongation="blackbox")
    assert not any(level.factorised for level in mg.levels) and mg._coarse is None
    mg.cycle(system.b)
    assert all(level.factorised for level in mg.levels[:-1]) and mg._coarse is not None


def test_fast_setup_keeps_the_iteration_counts(net) -> None:
    # CG + PETSc PCMG: reference P with PETSc's Galerkin products against the fast set-up's P
    # and closed-form coarse operators handed to PCMG; and scipy CG + the Python cycle
    rule_ = StoppingRule(rtol=1e-8, maxiter=200)
    for seed in (0, 1):
        system = _system(127, seed=seed)
        for rule in ("blackbox", "learned"):
            kw = {"prolongation": rule, "net": net if rule == "learned" else None,
                  "symmetric": True}
            ref = MultigridHierarchy(system.A, system.stencil, galerkin="matrix", precision=None,
                                     **kw)
            fast = MultigridHierarchy(system.A, system.stencil, **kw)
            its_ref = solve_petsc_cg_pcmg(system, ref.prolongations(), rule_).iterations
            res = solve_petsc_cg_pcmg(system, fast.prolongations(), rule_,
                                      operators=fast.coarse_operators())
            assert res.converged and res.iterations == its_ref, (seed, rule)
            scipy_its = [pdesolve.get_solver("scipy_cg", rtol=1e-8, pc=FunctionPreconditioner(
                mg.precondition, is_linear=True, is_symmetric=True)).solve(system).iterations
                for mg in (ref, fast)]
            assert scipy_its[0] == scipy_its[1] == its_ref, (seed, rule, scipy_its)
