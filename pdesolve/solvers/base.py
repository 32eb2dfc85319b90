"""What every solver returns and must provide: ``SolveResult``, ``ConvergedReason``, ``Solver``."""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from pdesolve.linalg.system import LinearSystem


class ConvergedReason(enum.IntEnum):
    """Why an iteration stopped; the values are PETSc's ``KSPConvergedReason``."""

    CONVERGED_RTOL_NORMAL = 1
    CONVERGED_ATOL_NORMAL = 9
    CONVERGED_RTOL = 2
    CONVERGED_ATOL = 3
    CONVERGED_ITS = 4
    CONVERGED_STEP_LENGTH = 6
    CONVERGED_HAPPY_BREAKDOWN = 7
    CONVERGED_ITERATING = 0
    DIVERGED_NULL = -2
    DIVERGED_ITS = -3
    DIVERGED_DTOL = -4
    DIVERGED_BREAKDOWN = -5
    DIVERGED_BREAKDOWN_BICG = -6
    DIVERGED_NONSYMMETRIC = -7
    DIVERGED_INDEFINITE_PC = -8
    DIVERGED_NANORINF = -9
    DIVERGED_INDEFINITE_MAT = -10
    DIVERGED_PC_FAILED = -11

    @property
    def converged(self) -> bool:
        return self.value > 0

    @property
    def message(self) -> str:
        return _MESSAGES.get(self, self.name.lower().replace("_", " "))


_MESSAGES = {
    ConvergedReason.CONVERGED_RTOL: "residual norm fell below rtol * ||b||",
    ConvergedReason.CONVERGED_ATOL: "residual norm fell below atol",
    ConvergedReason.CONVERGED_ITS: "ran the requested number of iterations",
    ConvergedReason.CONVERGED_HAPPY_BREAKDOWN: "exact solution found (happy breakdown)",
    ConvergedReason.DIVERGED_ITS: "reached maxiter before the tolerance",
    ConvergedReason.DIVERGED_DTOL: "residual grew past dtol * ||b||",
    ConvergedReason.DIVERGED_BREAKDOWN: "breakdown in the iteration",
    ConvergedReason.DIVERGED_INDEFINITE_PC: "preconditioner is not positive definite",
    ConvergedReason.DIVERGED_INDEFINITE_MAT: "matrix is not positive definite",
    ConvergedReason.DIVERGED_NANORINF: "residual norm became NaN or Inf",
    ConvergedReason.DIVERGED_PC_FAILED: "preconditioner set-up failed",
}


class SolverDivergedError(RuntimeError):
    """Raised by ``solve(..., raise_on_divergence=True)`` when a solver does not converge."""

    def __init__(self, result: SolveResult) -> None:
        self.result = result
        super().__init__(
            f"{result.info.get('solver', 'solver')} did not converge: {result.reason.name} "
            f"({result.reason.message}) after {result.iterations} iterations, "
            f"final residual {result.final_residual:.3e}"
        )


@dataclass(frozen=True)
class SolveResult:
    """The outcome of any pdesolve solver.

    ``residual_norms`` holds unpreconditioned 2-norms of ``b - A x_k``, the initial one first and
    the final, explicitly computed true residual last. Times are seconds; ``info`` holds
    solver-specific entries (``setup_time`` and ``solve_time`` for every solver).
    """

    x: np.ndarray
    converged: bool
    reason: ConvergedReason
    iterations: int
    residual_norms: np.ndarray
    wall_time: float
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", ConvergedReason(self.reason))
        object.__setattr__(self, "residual_norms", np.asarray(self.residual_norms, dtype=float))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def final_residual(self) -> float:
        return float(self.residual_norms[-1]) if len(self.residual_norms) else float("nan")


@dataclass(frozen=True)
class StoppingRule:
    """The one stopping rule of pdesolve: ``||b - A x|| <= max(rtol * ||b||, atol)``."""

    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int = 10_000

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol and atol are both 0: the iteration could never stop")
        if int(self.maxiter) != self.maxiter or self.maxiter < 0:
            raise ValueError(f"maxiter must be a non-negative integer, got {self.maxiter!r}")

    def threshold(self, b_norm: float) -> float:
        return max(self.rtol * b_norm, self.atol)

    def reason_for(self, residual_norm: float, b_norm: float) -> ConvergedReason | None:
        """The converged reason if ``residual_norm`` meets the rule, else None."""
        if not np.isfinite(residual_norm):
            return ConvergedReason.DIVERGED_NANORINF
        if residual_norm <= self.rtol * b_norm:
            return ConvergedReason.CONVERGED_RTOL
        if residual_norm <= self.atol:
            return ConvergedReason.CONVERGED_ATOL
        return None


class Solver(ABC):
    """A linear solver. Subclasses store options in ``__init__`` and implement ``_solve``.

    Every solver honours the shared ``StoppingRule`` on the true residual, accepts ``x0`` and
    returns a ``SolveResult``.
    """

    #: whether the solver needs a symmetric positive definite matrix
    requires_spd: bool = False

    def __init__(self, rtol: float = 1e-8, atol: float = 0.0, maxiter: int = 10_000) -> None:
        self.stopping = StoppingRule(rtol=rtol, atol=atol, maxiter=maxiter)

    def solve(self, system: LinearSystem, x0: np.ndarray | None = None) -> SolveResult:
        system.validate(symmetric=self.requires_spd)
        x0 = system.check_vector(x0, "x0") if x0 is not None else None
        start = time.perf_counter()
        result = self._solve(system, x0)
        wall = time.perf_counter() - start
        info = {"solver": self.name, **result.info}
        return SolveResult(
            x=result.x,
            converged=result.converged,
            reason=result.reason,
            iterations=result.iterations,
            residual_norms=result.residual_norms,
            wall_time=wall,
            info=info,
        )

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__)

    @abstractmethod
    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        """Solve ``system``; ``wall_time`` of the returned result is filled in by ``solve``."""
