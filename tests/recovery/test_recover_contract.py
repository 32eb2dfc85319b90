"""What ``pdesolve.recover`` reports: the stopping quantity is named, its history agrees with the
stop, FIRENET tests no tolerance, the iterates are those of the algorithms, bad input is refused."""

import inspect
import itertools

import numpy as np
import pytest
import torch
import yaml

import pdesolve
from pdesolve.cli import CONFIG_DIR
from pdesolve.recovery import RECOVERY_METHODS
from pdesolve.recovery.firenet import firenet
from pdesolve.recovery.ista import proximal_gradient
from pdesolve.recovery.primal_dual import cp_step, primal_dual_gap

torch.set_num_threads(1)


def _problem():
    return pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom", sparsity=60,
                                rate=0.5, lam=0.03)  # fmt: skip


@pytest.mark.parametrize("method,tol", [("ista", 1e-3), ("fista", 1e-4)])
def test_proximal_gradient_history_is_the_relative_change_of_its_iterates(method, tol):
    problem = _problem()
    result = pdesolve.recover(problem, method=method, maxiter=400, change_tol=tol)
    assert result.stopping_quantity == "relative_change" and result.tolerance == tol
    k = result.iterations
    assert result.status.value == "met" and result.success and k < 400
    assert result.stopping_checks.tolist() == list(range(1, k + 1))  # tested every iteration
    hist = result.stopping_history
    assert hist[-1] <= tol and (hist[:-1] > tol).all()  # it stopped at the first pass
    assert result.criterion.met and result.criterion.value == hist[-1]
    # the same iterates by the plain algorithm, and their relative changes recomputed
    iterates = []
    y = problem.measurements
    out = proximal_gradient(problem.operator, y, lam=result.lam, iterations=k,
                            accelerated=method == "fista", history=iterates)  # fmt: skip
    np.testing.assert_array_equal(result.coefficients, out.numpy())
    xs = [torch.zeros_like(out), *iterates]
    changes = [float(torch.linalg.norm(b - a) / torch.linalg.norm(b))
               for a, b in itertools.pairwise(xs)]  # fmt: skip
    np.testing.assert_allclose(hist, changes, rtol=1e-12)
    assert len(result.misfit_norms) == k + 1
    # a budget that runs out says so
    short = pdesolve.recover(problem, method=method, maxiter=5, change_tol=tol)
    assert short.status.value == "not_met" and not short.success and short.iterations == 5
    assert (short.stopping_history > tol).all()


def test_chambolle_pock_history_is_the_relative_gap_at_its_checks():
    problem = _problem()
    result = pdesolve.recover(problem, method="chambolle_pock", maxiter=1000, gap_tol=1e-10,
                              check_every=25)  # fmt: skip
    assert result.stopping_quantity == "relative_gap" and result.success
    k = result.iterations
    assert result.stopping_checks.tolist() == list(range(25, k + 1, 25))
    hist = result.stopping_history
    assert hist[-1] <= 1e-10 < hist[:-1].min()
    assert len(result.misfit_norms) == k + 1
    # recompute the last check's gap from plain CP steps
    A, y, lam = problem.operator, problem.measurements, problem.lam
    L = A.norm_bound
    x, z = torch.zeros(A.domain_shape, dtype=torch.float64), torch.zeros_like(y)
    for _ in range(k):
        x, z = cp_step(A, x, z, y, (1 / L) * lam, 1 / L, 1 / L)
    np.testing.assert_array_equal(result.coefficients, x.numpy())
    gap = float(primal_dual_gap(A, x, z, y, lam)) / float(torch.linalg.norm(y))
    assert hist[-1] == pytest.approx(gap, rel=1e-12)
    short = pdesolve.recover(problem, method="chambolle_pock", maxiter=60, gap_tol=1e-12)
    assert short.status.value == "not_met" and short.stopping_checks.tolist() == [50, 60]


def test_firenet_says_it_tested_no_tolerance():
    problem = _problem()
    result = pdesolve.recover(problem, method="firenet", inner_iterations=5, restarts=30)
    assert result.relative_error < 1e-6  # accurate, yet nothing was tested:
    assert result.status is pdesolve.CriterionStatus.NOT_CHECKED and not result.success
    assert result.stopping_quantity is None and result.tolerance is None
    assert result.criterion is None and result.stopping_history.size == 0
    direct = firenet(problem.operator, problem.measurements, lam=problem.lam, inner_iterations=5,
                     restarts=30)  # fmt: skip
    np.testing.assert_array_equal(result.coefficients, direct.numpy())
    for option in ("rtol", "gap_tol", "maxiter"):
        with pytest.raises(TypeError, match=f"no parameter {option!r}.*restarts"):
            pdesolve.recover(problem, method="firenet", **{option: 1e-6})


def test_configs_hold_each_methods_defaults():
    for name in pdesolve.list_recovery_methods():
        cfg = yaml.safe_load((CONFIG_DIR / "recover" / f"{name}.yaml").read_text())
        assert cfg.pop("name") == name
        params = inspect.signature(RECOVERY_METHODS.get(name)).parameters
        assert cfg == {k: p.default for k, p in params.items()}, name


def test_bad_input_is_refused_before_any_iteration():
    problem = _problem()
    known = "chambolle_pock, firenet, fista, ista"
    with pytest.raises(pdesolve.UnknownNameError, match=f"unknown recovery method 'fist'.*{known}"):
        pdesolve.recover(problem, method="fist")
    with pytest.raises(pdesolve.UnknownNameError, match=r"is a fit method.*pdesolve\.fit"):
        pdesolve.recover(problem, method="pinn")
    with pytest.raises(pdesolve.UnknownNameError, match=r"recovery method.*pdesolve\.recover"):
        pdesolve.solve(problem, method="firenet")
    with pytest.raises(NotImplementedError, match=r"pdesolve\.recover"):
        pdesolve.solve(problem, method="petsc_cg")
    poisson = pdesolve.get_problem("poisson", dim=2, n=8)
    with pytest.raises(TypeError, match=r"PDE problem, not an inverse problem.*pdesolve\.solve"):
        pdesolve.recover(poisson, method="ista")
    with pytest.raises(TypeError, match="not a LinearSystem"):
        pdesolve.recover(poisson.discretize(), method="ista")
    with pytest.raises(ValueError, match="change_tol must be"):
        pdesolve.recover(problem, method="ista", change_tol=-1.0)
    with pytest.raises(ValueError, match="maxiter must be"):
        pdesolve.recover(problem, method="chambolle_pock", maxiter=0)
