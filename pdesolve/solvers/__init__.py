"""The solver registry and the one entry point, ``solve``."""

from __future__ import annotations

from typing import Any

import numpy as np

from pdesolve.linalg.system import LinearSystem
from pdesolve.registry import Registry
from pdesolve.solvers.base import (
    ConvergedReason,
    Solver,
    SolverDivergedError,
    SolveResult,
    StoppingRule,
)
from pdesolve.solvers.preconditioner import (
    PRECONDITIONERS,
    Preconditioner,
    get_preconditioner,
    list_preconditioners,
)

SOLVERS: Registry[Solver] = Registry("solver")


def get_solver(name: str, /, **options: Any) -> Solver:
    """The registered solver ``name`` configured with ``options``.

    >>> get_solver("scipy_cg", rtol=1e-6).stopping.rtol
    1e-06
    """
    return SOLVERS.create(name, **options)


def list_solvers() -> list[str]:
    """Names of all registered solvers."""
    return SOLVERS.names()


def solve(
    system_or_problem: Any,
    method: str = "petsc_cg",
    *,
    x0: np.ndarray | None = None,
    raise_on_divergence: bool = False,
    **options: Any,
) -> SolveResult:
    """Solve a ``LinearSystem`` (or a problem, discretized first) with the solver ``method``.

    The one-shot convenience over the solver object: ``get_solver(method, **options)``, set up,
    solve, close. Only the options given are forwarded (``rtol``, ``atol``, ``maxiter``, ``pc``,
    ...), so each solver's own defaults apply otherwise; every solver stops when
    ``||b - A x|| <= max(rtol ||b||, atol)`` on the true residual. When the system knows its exact
    solution, the entry ``error`` of ``result.info`` holds the error norms of ``x``.

    Examples
    --------
    >>> import pdesolve
    >>> result = pdesolve.solve(pdesolve.get_problem("poisson", dim=2, n=16), method="scipy_cg")
    >>> result.converged, result.info["error"]["max"] < 1e-2
    (True, True)
    """
    from pdesolve.problems.base import Problem

    solver = get_solver(method, **options)
    if isinstance(system_or_problem, Problem):
        system = system_or_problem.discretize()
    elif isinstance(system_or_problem, LinearSystem):
        system = system_or_problem
    else:
        raise TypeError(
            "solve() takes a pdesolve.LinearSystem or a Problem from get_problem(), got "
            f"{type(system_or_problem).__name__}"
        )
    with solver:
        result = solver.solve(system, x0=x0)
    errors = system.error_norms(result.x)
    if errors is not None:
        result = SolveResult(**{**result.__dict__, "info": {**result.info, "error": errors}})
    if raise_on_divergence and not result.converged:
        raise SolverDivergedError(result)
    return result


# register the solvers: the classical ones now, the learned ones (torch) on first use
from pdesolve.solvers import basic_preconditioners, petsc_cg, scipy_cg  # noqa: E402, F401

for _module, _solvers, _preconditioners in (
    ("dcdm", ("dcdm",), ()),
    ("dcdm_network", (), ("dcdm_network",)),
    ("deflated_cg", ("deflated_cg",), ("deflation",)),
    ("fcg", ("fcg",), ()),
    ("hybrid", ("hybrid",), ("coarse_grid", "pinn_correction")),
    ("multigrid3d", ("multigrid",), ("multigrid",)),  # imports multigrid: both dimensions
    ("petsc_dcdm", ("petsc_dcdm",), ()),
):
    SOLVERS.declare(f"pdesolve.solvers.{_module}", *_solvers)
    PRECONDITIONERS.declare(f"pdesolve.solvers.{_module}", *_preconditioners)


def _install_for_references() -> None:
    """The problems' reference solvers (heat steps, FEM solves) use these solver objects."""
    from pdesolve.problems.base import use_linear_solvers

    use_linear_solvers(get_solver)


_install_for_references()

__all__ = [
    "PRECONDITIONERS",
    "SOLVERS",
    "ConvergedReason",
    "Preconditioner",
    "SolveResult",
    "Solver",
    "SolverDivergedError",
    "StoppingRule",
    "get_preconditioner",
    "get_solver",
    "list_preconditioners",
    "list_solvers",
    "solve",
]
