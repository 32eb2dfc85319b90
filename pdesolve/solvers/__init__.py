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
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int = 10_000,
    x0: np.ndarray | None = None,
    raise_on_divergence: bool = False,
    **options: Any,
) -> SolveResult:
    """Solve a ``LinearSystem`` (or a problem, discretized first) with the solver ``method``.

    Stops when ``||b - A x|| <= max(rtol ||b||, atol)`` on the true residual. ``options`` go to the
    solver (e.g. ``pc="gamg"`` for ``petsc_cg``). When the system knows its exact solution,
    ``result.info["error"]`` holds the error norms of ``x``.

    >>> import pdesolve
    >>> result = pdesolve.solve(pdesolve.get_problem("poisson", dim=2, n=16), method="scipy_cg")
    >>> result.converged, result.info["error"]["max"] < 1e-2
    (True, True)
    """
    from pdesolve.problems.base import Problem

    solver = get_solver(method, rtol=rtol, atol=atol, maxiter=maxiter, **options)
    if isinstance(system_or_problem, Problem):
        system = system_or_problem.discretize()
    elif isinstance(system_or_problem, LinearSystem):
        system = system_or_problem
    else:
        raise TypeError(
            "solve() takes a pdesolve.LinearSystem or a Problem from get_problem(), got "
            f"{type(system_or_problem).__name__}"
        )
    result = solver.solve(system, x0=x0)
    errors = system.error_norms(result.x)
    if errors is not None:
        result = SolveResult(**{**result.__dict__, "info": {**result.info, "error": errors}})
    if raise_on_divergence and not result.converged:
        raise SolverDivergedError(result)
    return result


# register the solvers
from pdesolve.solvers import (  # noqa: E402, F401
    dcdm,
    deflated_cg,
    fcg,
    hybrid,
    multigrid,
    petsc_cg,
    scipy_cg,
)

__all__ = [
    "SOLVERS",
    "ConvergedReason",
    "SolveResult",
    "Solver",
    "SolverDivergedError",
    "StoppingRule",
    "get_solver",
    "list_solvers",
    "solve",
]
