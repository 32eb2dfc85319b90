"""pdesolve: one registry of PDE problems for classical (PETSc) and learned solvers.

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=2, n=32)
>>> result = pdesolve.solve(problem, method="petsc_cg", rtol=1e-10)
>>> result.converged, result.reason.name
(True, 'CONVERGED_RTOL')
"""

__version__ = "0.1.0"

from pdesolve.linalg.grid import Grid
from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.problems import get_problem, list_problems
from pdesolve.registry import UnknownNameError
from pdesolve.solvers import (
    ConvergedReason,
    Preconditioner,
    SolverDivergedError,
    SolveResult,
    StoppingRule,
    get_preconditioner,
    get_solver,
    list_preconditioners,
    list_solvers,
    solve,
)
from pdesolve.solvers.base import NotSetUpError, Solver

__all__ = [
    "ConvergedReason",
    "Grid",
    "InvalidSystemError",
    "LinearSystem",
    "NotSetUpError",
    "Preconditioner",
    "SolveResult",
    "Solver",
    "SolverDivergedError",
    "StoppingRule",
    "UnknownNameError",
    "__version__",
    "get_preconditioner",
    "get_problem",
    "get_solver",
    "list_preconditioners",
    "list_problems",
    "list_solvers",
    "solve",
]
