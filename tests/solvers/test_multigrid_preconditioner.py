"""Multigrid as a registered preconditioner: the same cycle in Python and as PETSc PCMG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

import pdesolve
from pdesolve.linalg.petsc import petsc
from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers.petsc_pcmg import aij_from_csr


@pytest.fixture(scope="module")
def system():
    return pdesolve.get_problem("diffusion", dim=2, n=127, coefficient="lognormal",
                                scheme="fe9", seed=4).discretize()


@pytest.mark.parametrize("prolongation", ["bilinear", "blackbox", "boxmg", "learned"])
def test_scipy_cg_and_petsc_cg_take_the_same_iterations(system, prolongation):
    pc = pdesolve.get_preconditioner("multigrid", prolongation=prolongation).setup(system)
    assert pc.hierarchy is not None and not any(lv.factorised for lv in pc.hierarchy.levels)
    scipy = pdesolve.get_solver("scipy_cg", pc=pc, rtol=1e-8).solve(system)
    petsc = pdesolve.get_solver("petsc_cg", pc=pc, rtol=1e-8).solve(system)
    assert pc.setup_count == 1  # both solvers reused the one set-up
    for res in (scipy, petsc):
        assert res.converged
        assert res.residual_norms[-1] <= 1e-8 * system.b_norm
    assert abs(scipy.iterations - petsc.iterations) <= 1, (scipy.iterations, petsc.iterations)
    assert petsc.info["pc"] == "multigrid" and "pc_time" not in petsc.info  # PCMG, no python PC
    np.testing.assert_allclose(scipy.x, petsc.x, atol=1e-7 * np.abs(petsc.x).max())
    pc.close()


def test_python_cycle_is_the_pcmg_cycle(system):
    pc = pdesolve.get_preconditioner("multigrid", prolongation="learned", cycle="W",
                                     presmooth=2, postsmooth=2).setup(system)
    solver = pdesolve.get_solver("petsc_cg", pc=pc).setup(system)
    ksp_pc = solver._petsc["ksp"].getPC()
    assert ksp_pc.getType() == "mg"
    r = np.random.default_rng(0).standard_normal(system.size)
    x, y = solver._petsc["A"].createVecs()
    x.setArray(r)
    ksp_pc.apply(x, y)
    z = pc.apply(r)
    assert np.linalg.norm(y.getArray() - z) <= 1e-12 * np.linalg.norm(z)
    solver.close()
    pc.close()


def test_pcmg_matrices_from_unsorted_csr_give_the_same_gauss_seidel_sweep():
    PETSc = petsc()
    A = pdesolve.get_problem("diffusion", dim=2, n=7, coefficient="lognormal", scheme="fe9",
                             seed=0).discretize().A.tocsr()
    indices, data = A.indices.copy(), A.data.copy()
    for i in range(A.shape[0]):  # reverse each row's column order (same matrix)
        row = slice(A.indptr[i], A.indptr[i + 1])
        indices[row], data[row] = indices[row][::-1], data[row][::-1]
    unsorted = sp.csr_matrix((data, indices, A.indptr.copy()), shape=A.shape)
    assert not unsorted.has_sorted_indices and abs(unsorted - A).max() == 0
    rhs = np.linspace(-1.0, 2.0, A.shape[0])
    sweeps = []
    for M in (A, unsorted):
        aij = aij_from_csr(M)
        b, x = aij.createVecs()[::-1]
        b.setArray(rhs)
        aij.SOR(b, x, omega=1.0, sortype=PETSc.Mat.SORType.FORWARD_SWEEP
                | PETSc.Mat.SORType.ZERO_INITIAL_GUESS)
        sweeps.append(x.getArray().copy())
        for obj in (aij, b, x):
            obj.destroy()
    lower = sp.tril(A, format="csr")  # forward Gauss-Seidel from zero: (D + L) x = b
    expected = spsolve_triangular(lower, rhs, lower=True)
    np.testing.assert_allclose(sweeps[0], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sweeps[1], expected, rtol=1e-12, atol=1e-14)
    assert not unsorted.has_sorted_indices  # the caller's matrix is left as it was


def test_3d_hierarchy_found_when_the_2d_module_is_imported_first():
    import subprocess
    import sys

    code = ("from pdesolve.solvers.multigrid import MultigridPreconditioner\n"
            "import pdesolve\n"
            "s = pdesolve.get_problem('poisson', dim=3, n=7).discretize()\n"
            "print(MultigridPreconditioner().setup(s).hierarchy.levels[0].n)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "7"


def test_f_cycle_and_other_smoothers_run_as_a_python_pc(system):
    for opts in ({"cycle": "F"}, {"smoother": "red_black"}):
        pc = pdesolve.get_preconditioner("multigrid", **opts)
        assert not pc.petsc_native
        petsc = pdesolve.solve(system, method="petsc_cg", pc=pc, rtol=1e-8)
        scipy = pdesolve.solve(system, method="scipy_cg", pc=pc, rtol=1e-8)
        assert petsc.converged and "pc_time" in petsc.info
        assert abs(petsc.iterations - scipy.iterations) <= 1


def test_solver_object_sets_up_once_for_repeated_solves(system):
    rng = np.random.default_rng(1)
    for krylov in ("none", "cg", "petsc_cg"):
        solver = pdesolve.get_solver("multigrid", krylov=krylov, rtol=1e-9).setup(system)
        for k in range(3):
            b = rng.standard_normal(system.size)
            res = solver.solve(b)
            assert res.converged and res.info["setups"] == 1
            assert (res.info["setup_time"] > 0) == (k == 0)
            assert np.linalg.norm(b - system.A @ res.x) <= 1e-9 * np.linalg.norm(b)
            assert len(res.residual_norms) == res.iterations + 1
        assert res.info["solver"] == "multigrid"
        solver.close()


def test_bad_systems_get_clear_errors(system):
    pc = pdesolve.get_preconditioner("multigrid")
    even = pdesolve.get_problem("diffusion", dim=2, n=64, scheme="fe9").discretize()
    with pytest.raises(ValueError, match="2\\^k - 1"):
        pc.setup(even)
    odd = pdesolve.get_problem("diffusion", dim=2, n=45, scheme="fe9").discretize()
    with pytest.raises(ValueError, match="n = 45 is not 2\\^k - 1"):
        pc.setup(odd)
    with pytest.raises(ValueError, match="no stencil"):
        pc.setup(LinearSystem(system.A, system.b))
    with pytest.raises(ValueError, match="2-D and 3-D structured grids, got a 1-D"):
        pc.setup(pdesolve.get_problem("poisson", dim=1, n=7).discretize())
    assert pc.setup(pdesolve.get_problem("poisson", dim=3, n=7).discretize()).hierarchy.levels[
        0].n == 7  # 3-D systems get the 3-D hierarchy (tests/solvers/test_multigrid3d.py)
    with pytest.raises(ValueError, match="presmooth == postsmooth"):
        pdesolve.get_preconditioner("multigrid", presmooth=1, postsmooth=2)
    with pytest.raises(ValueError, match="unknown prolongation"):
        pdesolve.get_preconditioner("multigrid", prolongation="cubic")
    with pytest.raises(ValueError, match="2\\^k - 1"):
        pdesolve.get_solver("multigrid").setup(even)


def test_update_without_a_stencil_reads_it_from_the_matrix(system):
    solver = pdesolve.get_solver("petsc_cg", pc="multigrid", rtol=1e-8).setup(system)
    first = solver.solve(system.b)
    solver.update(system.A * 2.0)  # a bare matrix: no stencil, the grid says n x n
    second = solver.solve(system.b)
    assert second.info["setups"] == 2 and second.converged
    assert second.iterations == first.iterations
    np.testing.assert_allclose(2.0 * second.x, first.x, rtol=0, atol=1e-6 * np.abs(first.x).max())
    solver.close()
