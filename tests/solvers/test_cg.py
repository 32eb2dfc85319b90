"""PETSc CG and scipy CG: agreement, convergence reasons, residual histories, options."""

import numpy as np
import pytest
import scipy.sparse as sp

import pdesolve
from pdesolve import ConvergedReason
from pdesolve.linalg.petsc import petsc


@pytest.fixture(scope="module")
def system():
    return pdesolve.get_problem(
        "diffusion", dim=2, n=31, coefficient="lognormal", seed=0
    ).discretize()


@pytest.mark.parametrize("pc", ["none", "jacobi", "icc", "gamg"])
def test_petsc_and_scipy_agree(system, pc):
    petsc_result = pdesolve.solve(system, method="petsc_cg", rtol=1e-12, pc=pc)
    scipy_result = pdesolve.solve(system, method="scipy_cg", rtol=1e-12)
    assert petsc_result.converged and scipy_result.converged
    diff = np.linalg.norm(petsc_result.x - scipy_result.x) / np.linalg.norm(scipy_result.x)
    assert diff < 1e-8
    assert petsc_result.residual_norms[-1] <= 1e-12 * system.b_norm
    assert petsc_result.residual_norms[-1] == pytest.approx(system.residual_norm(petsc_result.x))


def test_unpreconditioned_iterations_match_between_backends(system):
    a = pdesolve.solve(system, method="petsc_cg", rtol=1e-8)
    b = pdesolve.solve(system, method="scipy_cg", rtol=1e-8)
    assert abs(a.iterations - b.iterations) <= 1
    assert len(a.residual_norms) == a.iterations + 1
    assert len(b.residual_norms) == b.iterations + 1
    assert a.residual_norms[0] == pytest.approx(system.b_norm)
    np.testing.assert_allclose(a.residual_norms[:5], b.residual_norms[:5], rtol=1e-8)


def test_preconditioning_reduces_iterations(system):
    iterations = {
        pc: pdesolve.solve(system, method="petsc_cg", rtol=1e-8, pc=pc).iterations
        for pc in ("none", "icc", "gamg")
    }
    assert iterations["gamg"] < iterations["icc"] < iterations["none"]


@pytest.mark.parametrize("method", ["petsc_cg", "scipy_cg"])
def test_maxiter_gives_diverged_its(system, method):
    result = pdesolve.solve(system, method=method, rtol=1e-12, maxiter=5)
    assert not result.converged
    assert result.reason == ConvergedReason.DIVERGED_ITS
    assert result.iterations == 5
    assert result.residual_norms[-1] == pytest.approx(system.residual_norm(result.x))
    with pytest.raises(pdesolve.SolverDivergedError, match="DIVERGED_ITS"):
        pdesolve.solve(system, method=method, rtol=1e-12, maxiter=5, raise_on_divergence=True)


@pytest.mark.parametrize("method", ["petsc_cg", "scipy_cg"])
def test_atol_and_initial_guess(system, method):
    exact = pdesolve.solve(system, method="scipy_cg", rtol=1e-13).x
    x0 = exact + 1e-6
    result = pdesolve.solve(system, method=method, rtol=1e-30, atol=1e-9, x0=x0)
    assert result.reason == ConvergedReason.CONVERGED_ATOL
    assert result.residual_norms[0] == pytest.approx(system.residual_norm(x0))
    assert result.residual_norms[-1] <= 1e-9
    # a guess that already meets the rule takes no iteration
    again = pdesolve.solve(system, method=method, rtol=1e-6, x0=exact)
    assert again.converged and again.iterations == 0


def test_true_residual_history_option(system):
    result = pdesolve.solve(
        system, method="petsc_cg", rtol=1e-8, pc="icc", true_residual_history=True
    )
    assert len(result.residual_norms) == result.iterations + 1
    assert result.residual_norms[0] == pytest.approx(system.b_norm)


def test_petsc_options_do_not_leak(system):
    PETSc = petsc()
    before = set(PETSc.Options().getAll())
    result = pdesolve.solve(
        system, method="petsc_cg", pc="gamg", options={"pc_gamg_threshold": 0.05}
    )
    assert result.converged
    assert result.info["petsc_options"]["pc_gamg_threshold"] == 0.05
    assert set(PETSc.Options().getAll()) == before


def test_zero_rhs_converges_immediately():
    system = pdesolve.LinearSystem(sp.identity(4, format="csr") * 2.0, np.zeros(4))
    for method in ("petsc_cg", "scipy_cg"):
        result = pdesolve.solve(system, method=method)
        assert result.converged and result.iterations == 0 and np.all(result.x == 0)


def test_boomeramg_reaches_the_tolerance_and_agrees_with_gamg(system):
    # the default set-up builds PETSc with hypre (scripts/setup.sh): no skip for want of it
    assert petsc().Sys.hasExternalPackage("hypre")
    assert "hypre" in pdesolve.list_preconditioners()
    hypre = pdesolve.solve(system, method="petsc_cg", pc="hypre", rtol=1e-12)
    gamg = pdesolve.solve(system, method="petsc_cg", pc="gamg", rtol=1e-12)
    assert hypre.converged and gamg.converged
    assert system.residual_norm(hypre.x) <= 1e-12 * system.b_norm * 1.01
    assert np.linalg.norm(hypre.x - gamg.x) <= 1e-7 * np.linalg.norm(gamg.x)
    # BoomerAMG is a real multigrid preconditioner here: far fewer iterations than Jacobi
    jacobi = pdesolve.solve(system, method="petsc_cg", pc="jacobi", rtol=1e-12)
    assert hypre.iterations < jacobi.iterations / 4


def test_hypre_on_a_petsc_without_it_is_a_clear_error(system, monkeypatch):
    import pdesolve.linalg.petsc as petsc_module

    real = petsc_module.petsc()

    class _NoHypre:
        class Sys:
            @staticmethod
            def hasExternalPackage(name):
                return name != "hypre" and real.Sys.hasExternalPackage(name)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(petsc_module, "petsc", lambda: _NoHypre())
    with pytest.raises(ValueError, match="PETSc built with hypre"):
        pdesolve.solve(system, method="petsc_cg", pc="hypre")


def test_solve_accepts_a_problem_and_reports_errors():
    result = pdesolve.solve(
        pdesolve.get_problem("poisson", dim=2, n=31), method="petsc_cg", pc="icc"
    )
    assert result.converged
    assert result.info["error"]["max"] < 2e-3  # O(h²) discretization error, h = 1/32
    assert result.info["setup_time"] >= 0 and result.info["solve_time"] > 0
    assert result.wall_time >= result.info["solve_time"]


def test_eigenvector_right_hand_side_takes_one_iteration():
    # sin(πx) sin(πy) is an eigenvector of the 5-point Laplacian: CG is exact after one step,
    # while the polynomial source excites the whole spectrum
    sine = pdesolve.get_problem("poisson", dim=2, n=63, solution="sine").discretize()
    poly = pdesolve.get_problem("poisson", dim=2, n=63, solution="polynomial").discretize()
    assert pdesolve.solve(sine, method="petsc_cg", rtol=1e-10).iterations == 1
    assert pdesolve.solve(poly, method="petsc_cg", rtol=1e-10).iterations > 50
