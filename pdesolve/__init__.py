"""pdesolve: one registry of PDE problems for classical (PETSc) and learned solvers.

Three entry points, one per kind of work: ``solve`` (a linear system, or a problem discretized
first), ``fit`` (train a model of the solution, e.g. a PINN) and ``recover`` (the sparse unknown
of an inverse problem).

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=2, n=32)
>>> result = pdesolve.solve(problem, method="petsc_cg", rtol=1e-10)
>>> result.converged, result.reason.name
(True, 'CONVERGED_RTOL')
"""

__version__ = "0.1.0"

from pdesolve.fitting import FIT_METHODS as _FIT_METHODS
from pdesolve.fitting import FitResult, fit, list_fit_methods
from pdesolve.linalg.grid import Grid
from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.problems import get_problem, list_problems
from pdesolve.recovery import RECOVERY_METHODS as _RECOVERY_METHODS
from pdesolve.recovery import list_recovery_methods, recover
from pdesolve.registry import UnknownNameError
from pdesolve.solvers import SOLVERS as _SOLVERS
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
from pdesolve.status import Criterion, CriterionStatus

# each entry point names the right one for the others' methods (e.g. solve(method="pinn"))


def __getattr__(name: str) -> object:
    if name == "RecoveryResult":  # from pdesolve.recovery.base, which imports torch
        from pdesolve.recovery.base import RecoveryResult

        return RecoveryResult
    raise AttributeError(f"module 'pdesolve' has no attribute {name!r}")


_SOLVERS.refer(_FIT_METHODS, "train it with pdesolve.fit(problem, method={name!r})")
_SOLVERS.refer(_RECOVERY_METHODS, "use pdesolve.recover(problem, method={name!r})")
_FIT_METHODS.refer(_SOLVERS, "solve the linear system: pdesolve.solve(problem, method={name!r})")
_FIT_METHODS.refer(_RECOVERY_METHODS, "use pdesolve.recover(problem, method={name!r})")
_RECOVERY_METHODS.refer(_SOLVERS, "use pdesolve.solve(problem, method={name!r})")
_RECOVERY_METHODS.refer(_FIT_METHODS, "use pdesolve.fit(problem, method={name!r})")

__all__ = [
    "ConvergedReason",
    "Criterion",
    "CriterionStatus",
    "FitResult",
    "Grid",
    "InvalidSystemError",
    "LinearSystem",
    "NotSetUpError",
    "Preconditioner",
    "RecoveryResult",
    "SolveResult",
    "Solver",
    "SolverDivergedError",
    "StoppingRule",
    "UnknownNameError",
    "__version__",
    "fit",
    "get_preconditioner",
    "get_problem",
    "get_solver",
    "list_fit_methods",
    "list_preconditioners",
    "list_problems",
    "list_recovery_methods",
    "list_solvers",
    "recover",
    "solve",
]
