"""The solver layer: set up once and solve many, one preconditioner protocol, one history rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import pdesolve
from pdesolve import InvalidSystemError, LinearSystem, NotSetUpError


@pytest.fixture(scope="module")
def diffusion():
    return pdesolve.get_problem(
        "diffusion", dim=2, n=31, coefficient="lognormal", scheme="fe9", seed=3
    ).discretize()


@pytest.fixture(scope="module")
def pressure():
    return pdesolve.get_problem("pressure_poisson", dim=2, n=32, geometry="sphere").discretize()


def _rhs(system: LinearSystem, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(system.size) for _ in range(count)]


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("petsc_cg", {"pc": "icc"}),
        ("petsc_cg", {"pc": "gamg"}),
        ("scipy_cg", {"pc": "jacobi"}),
        ("fcg", {"pc": "jacobi"}),
        ("deflated_cg", {"deflation": 8, "lanczos_steps": 40}),
    ],
)
def test_twenty_solves_pay_one_setup_and_match_one_shot_solves(diffusion, method, options):
    rtol = 1e-12
    solver = pdesolve.get_solver(method, rtol=rtol, **options).setup(diffusion)
    with solver:
        for k, b in enumerate(_rhs(diffusion, 20)):
            result = solver.solve(b)
            assert result.info["setups"] == 1
            assert (result.info["setup_time"] > 0) == (k == 0)
            assert result.info["solver"] == method
            one_shot = pdesolve.solve(diffusion.with_rhs(b), method=method, rtol=rtol, **options)
            assert one_shot.info["setups"] == 1
            scale = np.linalg.norm(one_shot.x)
            assert np.linalg.norm(result.x - one_shot.x) <= 1e-10 * scale
            assert result.residual_norms[-1] <= rtol * np.linalg.norm(b)


def test_solve_with_a_system_sets_up_on_the_fly_and_reuses_it(diffusion):
    solver = pdesolve.get_solver("petsc_cg", pc="icc")
    first = solver.solve(diffusion)
    second = solver.solve(diffusion)
    again = solver.solve(diffusion.with_rhs(2 * diffusion.b))
    assert (first.info["setups"], second.info["setups"], again.info["setups"]) == (1, 1, 1)
    assert second.info["setup_time"] == 0.0
    assert np.allclose(again.x, 2 * first.x, rtol=1e-6)
    solver.close()
    with pytest.raises(NotSetUpError, match="setup"):
        solver.solve(diffusion.b)


@pytest.mark.parametrize("method", ["petsc_cg", "scipy_cg", "fcg"])
def test_update_rebuilds_or_keeps_the_preconditioner(diffusion, method):
    pc = "icc" if method == "petsc_cg" else "jacobi"
    solver = pdesolve.get_solver(method, pc=pc, rtol=1e-10).setup(diffusion)
    base = solver.solve(diffusion.b)
    A_new = diffusion.A + sp.diags(np.full(diffusion.size, 0.5))
    A_new = A_new.tocsr()
    A_new.data[A_new.data == 0] = 0.0  # same pattern: the diagonal already is a nonzero
    exact = spla.spsolve(A_new.tocsc(), diffusion.b)
    solver.update(A_new, reuse_preconditioner=True)
    kept = solver.solve(diffusion.b)
    assert kept.info["setups"] == 1
    assert np.linalg.norm(kept.x - exact) <= 1e-8 * np.linalg.norm(exact)
    solver.update(A_new, reuse_preconditioner=False)
    rebuilt = solver.solve(diffusion.b)
    assert rebuilt.info["setups"] == 2
    assert rebuilt.info["setup_time"] > 0 and kept.info["setup_time"] >= 0
    assert np.linalg.norm(rebuilt.x - exact) <= 1e-8 * np.linalg.norm(exact)
    # the preconditioner built for the shifted matrix suits it better than the kept one
    assert rebuilt.iterations <= kept.iterations
    assert base.converged
    solver.close()


@pytest.mark.parametrize(
    ("method", "options"),
    [("hybrid", {"pc": "coarse_grid"}), ("multigrid", {}), ("multigrid", {"krylov": "cg"}),
     ("multigrid", {"krylov": "petsc_cg"})],
)
def test_kept_preconditioner_solves_the_new_matrix(diffusion, method, options):
    """update(reuse_preconditioner=True): the iteration uses the new A, only the preconditioner
    (coarse correction, multigrid hierarchy) is the old one."""
    solver = pdesolve.get_solver(method, rtol=1e-10, **options).setup(diffusion)
    A_new = (1.3 * diffusion.A).tocsr()
    exact = spla.spsolve(A_new.tocsc(), diffusion.b)
    solver.update(A_new, reuse_preconditioner=True)
    kept = solver.solve(diffusion.b)
    assert kept.converged and kept.info["setups"] == 1
    assert np.linalg.norm(kept.x - exact) <= 1e-8 * np.linalg.norm(exact)
    solver.close()


def test_implicit_heat_equation_loop_through_the_public_api():
    """Backward Euler for u_t = div(k grad u), variable k, 50 steps, one set-up."""
    system = pdesolve.get_problem(
        "diffusion", dim=2, n=31, coefficient="lognormal", scheme="fd", seed=1
    ).discretize()
    h2 = system.grid.spacing[0] ** 2
    dt = 1e-3
    K = system.A / h2 if abs(system.A).max() > 10 else system.A  # the stencil scaled by 1/h^2
    step = (sp.identity(system.size, format="csr") + dt * K).tocsr()
    u = np.sin(np.pi * system.grid.points[:, 0]) * np.sin(np.pi * system.grid.points[:, 1])
    reference = u.copy()
    lu = spla.splu(step.tocsc())
    energies = []
    with pdesolve.get_solver("petsc_cg", pc="icc", rtol=1e-12) as solver:
        solver.setup(step)
        for _ in range(50):
            result = solver.solve(u, x0=u)
            assert result.converged
            u = result.x
            reference = lu.solve(reference)
            energies.append(float(u @ u))
        assert result.info["setups"] == 1
    assert np.linalg.norm(u - reference) <= 1e-9 * np.linalg.norm(reference)
    assert all(b < a for a, b in itertools.pairwise(energies))  # dissipation


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("none", {}),
        ("jacobi", {}),
        ("icc", {}),
        ("gamg", {}),
        ("deflation", {"deflation": 8, "lanczos_steps": 40}),
    ],
)
def test_linear_preconditioners_agree_between_scipy_and_petsc(diffusion, name, options):
    rtol = 1e-8
    pc = pdesolve.get_preconditioner(name, **options).setup(diffusion)
    assert pc.is_linear and pc.is_symmetric
    count = [0]
    x, info = spla.cg(
        diffusion.A, diffusion.b, M=pc.as_linear_operator(), rtol=rtol, atol=0.0,
        callback=lambda xk: count.__setitem__(0, count[0] + 1),
    )  # fmt: skip
    assert info == 0
    petsc = pdesolve.solve(
        diffusion, method="petsc_cg", pc=pdesolve.get_preconditioner(name, **options), rtol=rtol
    )
    ours = pdesolve.solve(
        diffusion, method="scipy_cg", pc=pdesolve.get_preconditioner(name, **options), rtol=rtol
    )
    assert petsc.converged and ours.converged
    assert abs(petsc.iterations - count[0]) <= 1
    assert abs(ours.iterations - count[0]) <= 1
    assert np.linalg.norm(petsc.x - x) <= 1e-6 * np.linalg.norm(x)


def test_deflated_cg_is_cg_with_the_deflation_preconditioner(pressure):
    """deflated_cg, PETSc CG and scipy CG with the same deflation space: same iterations."""
    W = pdesolve.get_preconditioner("deflation", deflation=8, lanczos_steps=60)
    W.setup(pressure)
    basis = W.W_
    ours = pdesolve.solve(pressure, method="deflated_cg", W=basis, rtol=1e-8)
    petsc = pdesolve.solve(
        pressure, method="petsc_cg", pc=pdesolve.get_preconditioner("deflation", W=basis),
        rtol=1e-8,
    )  # fmt: skip
    jacobi = pdesolve.solve(pressure, method="petsc_cg", pc="jacobi", rtol=1e-8)
    assert ours.converged and petsc.converged
    assert abs(ours.iterations - petsc.iterations) <= 1
    assert ours.iterations < jacobi.iterations  # deflation removes the low end of the spectrum
    assert len(ours.residual_norms) == ours.iterations + 1


def test_nonlinear_preconditioners_agree_between_fcg_and_petsc_fcg(pressure):
    pc = pdesolve.get_preconditioner("dcdm_network")  # the shipped 2D network
    assert not pc.is_linear
    ours = pdesolve.solve(pressure, method="fcg", pc=pc, memory=2, residual="true", rtol=1e-6)
    pc2 = pdesolve.get_preconditioner("dcdm_network")
    petsc = pdesolve.solve(pressure, method="petsc_cg", pc=pc2, memory=2, rtol=1e-6)
    assert petsc.info["krylov"] == "fcg" and petsc.info["solver"] == "petsc_cg"
    assert ours.converged and petsc.converged
    assert abs(ours.iterations - petsc.iterations) <= 1
    dcdm = pdesolve.solve(pressure, method="dcdm", rtol=1e-6)
    assert dcdm.iterations == ours.iterations  # dcdm is fcg with the network


def test_pinn_correction_gives_the_same_iterates_in_fcg_and_petsc_fcg(one_thread):
    """The PINN correction alone (no smoother) is a weak preconditioner that converges in
    neither; both flexible CGs run the same 30 iterations with the same residuals."""
    system = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial").discretize()
    options = {"name": "pinn_correction", "width": 16, "depth": 2, "steps": 5,
               "first_steps": 50, "batch": 256, "dtype": "float64"}  # fmt: skip
    ours = pdesolve.solve(system, method="fcg", pc=dict(options), memory=2, rtol=1e-6,
                          residual="true", maxiter=30)  # fmt: skip
    petsc = pdesolve.solve(system, method="petsc_cg", pc=dict(options), memory=2, rtol=1e-6,
                           maxiter=30, true_residual_history=True)  # fmt: skip
    assert ours.iterations == petsc.iterations == 30
    assert petsc.info["krylov"] == "fcg"
    assert ours.residual_norms[-1] < 0.2 * system.b_norm  # it does reduce the residual
    np.testing.assert_allclose(ours.residual_norms, petsc.residual_norms, rtol=1e-6)


LINEAR_SOLVERS = [
    ("petsc_cg", {"pc": "gamg"}),
    ("petsc_cg", {"pc": "jacobi", "true_residual_history": True}),
    ("scipy_cg", {"pc": "jacobi"}),
    ("scipy_cg", {"record_history": False}),
    ("fcg", {"pc": "jacobi"}),
    ("deflated_cg", {"deflation": 4}),
    ("hybrid", {"pc": "coarse_grid"}),
    ("multigrid", {"prolongation": "blackbox"}),
    ("multigrid", {"prolongation": "blackbox", "krylov": "cg"}),
]


@pytest.mark.parametrize(("method", "options"), LINEAR_SOLVERS)
def test_every_linear_solver_keeps_one_history_rule(method, options):
    system = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial").discretize()
    result = pdesolve.solve(system, method=method, rtol=1e-8, **options)
    assert result.converged
    assert len(result.residual_norms) == result.iterations + 1
    assert result.residual_norms[0] == pytest.approx(system.b_norm)
    assert result.residual_norms[-1] == pytest.approx(system.residual_norm(result.x), rel=1e-8)
    assert result.info["solver"] == method
    for key in ("setup_time", "solve_time", "setups"):
        assert key in result.info


def test_callback_sees_every_iteration():
    system = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial").discretize()
    for method in ("petsc_cg", "scipy_cg", "fcg"):
        seen: list[tuple[int, float]] = []
        solver = pdesolve.get_solver(method, pc="jacobi", rtol=1e-8).setup(system)
        result = solver.solve(system.b, callback=lambda k, x, r, seen=seen: seen.append((k, r)))
        assert [k for k, _ in seen] == list(range(1, result.iterations + 1))
        solver.close()


def test_dtol_stops_a_diverging_iteration():
    system = pdesolve.get_problem("poisson", dim=2, n=15, solution="polynomial").discretize()
    wild = pdesolve.get_preconditioner("none")
    bad = pdesolve.solve(system, method="hybrid", pc=wild, smoother="jacobi", omega=1.9, nu=1,
                         dtol=10.0, maxiter=500)  # fmt: skip
    assert bad.reason.name == "DIVERGED_DTOL"
    assert bad.residual_norms[-1] > 10.0 * system.b_norm


def test_bad_input_gets_clear_errors(diffusion):
    solver = pdesolve.get_solver("petsc_cg", pc="icc")
    with pytest.raises(NotSetUpError, match="setup"):
        solver.solve(diffusion.b)
    with pytest.raises(NotSetUpError, match="setup"):
        solver.update(diffusion.A)
    solver.setup(diffusion)
    with pytest.raises(InvalidSystemError, match="b has shape"):
        solver.solve(np.ones(diffusion.size + 1))
    with pytest.raises(InvalidSystemError, match="set-up size"):
        solver.update(sp.identity(4, format="csr"))
    with pytest.raises(InvalidSystemError, match="sparsity pattern"):
        solver.update(sp.identity(diffusion.size, format="csr"))
    solver.close()
    other = pdesolve.get_problem("poisson", dim=2, n=7).discretize()
    pc = pdesolve.get_preconditioner("jacobi").setup(other)
    with pytest.raises(InvalidSystemError, match="set up for another system"):
        pdesolve.get_solver("fcg", pc=pc).setup(diffusion)
    with pytest.raises(InvalidSystemError, match="set up for 49 unknowns"):
        pc.apply(diffusion.b)
    with pytest.raises(InvalidSystemError, match="complex"):
        LinearSystem(sp.identity(3, dtype=complex, format="csr"), np.ones(3))
    with pytest.raises(InvalidSystemError, match="dtype int"):
        LinearSystem(np.eye(3, dtype=int), np.ones(3))
    with pytest.raises(ValueError, match="not symmetric"):
        pdesolve.get_solver("petsc_cg", pc="ilu")
    with pytest.raises(ValueError, match="nonlinear"):
        pdesolve.get_solver("scipy_cg", pc="dcdm_network")
    with pytest.raises(pdesolve.UnknownNameError, match="known preconditioners"):
        pdesolve.get_solver("petsc_cg", pc="nosuch")


def test_solve_forwards_only_the_options_given():
    system = pdesolve.get_problem("poisson", dim=2, n=15).discretize()
    assert pdesolve.get_solver("dcdm").stopping.maxiter == 1000  # the solver's own default
    result = pdesolve.solve(system, method="scipy_cg")
    assert result.converged and result.info["solver"] == "scipy_cg"
