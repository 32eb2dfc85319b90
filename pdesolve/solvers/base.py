"""What every linear solver returns and must provide: ``SolveResult``, ``ConvergedReason``,
``StoppingRule`` and the ``Solver`` object (set up once, solve many).

The solver object follows PETSc's KSPSetOperators/KSPSolve split: ``setup(system)`` pays for
everything that depends only on ``A`` (conversion, preconditioner, network loading) once;
``solve(b)`` reuses it for every new right-hand side; ``update(A_new)`` swaps in new values of the
same sparsity and rebuilds (or keeps) the preconditioner; ``close()`` frees what the set-up holds.
These interfaces are frozen: solvers added later implement the ``_setup``/``_solve`` hooks.

>>> import numpy as np, pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=16).discretize()
>>> with pdesolve.get_solver("petsc_cg", pc="icc", rtol=1e-10) as solver:
...     first = solver.setup(system).solve(system.b)
...     second = solver.solve(2 * system.b)
>>> second.info["setups"], second.info["setup_time"], bool(np.allclose(second.x, 2 * first.x))
(1, 0.0, True)
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from pdesolve.linalg.system import InvalidSystemError, LinearSystem


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
    """The one stopping rule of pdesolve: ``||b - A x|| <= max(rtol * ||b||, atol)``.

    ``maxiter`` bounds the iterations; ``dtol`` (None: off) declares divergence when the residual
    grows past ``dtol * ||b||`` (PETSc's divergence test, relative to ``||b||``).

    >>> rule = StoppingRule(rtol=1e-6, dtol=1e3)
    >>> rule.reason_for(1e-7, 1.0).name, rule.reason_for(1e4, 1.0).name, rule.reason_for(1.0, 1.0)
    ('CONVERGED_RTOL', 'DIVERGED_DTOL', None)
    """

    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int = 10_000
    dtol: float | None = None

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol and atol are both 0: the iteration could never stop")
        if (
            isinstance(self.maxiter, bool)
            or not isinstance(self.maxiter, int | np.integer | float)
            or int(self.maxiter) != self.maxiter
            or self.maxiter < 0
        ):
            raise ValueError(f"maxiter must be a non-negative integer, got {self.maxiter!r}")
        object.__setattr__(self, "maxiter", int(self.maxiter))
        if self.dtol is not None and (not np.isfinite(self.dtol) or self.dtol <= 1):
            raise ValueError(f"dtol must be a number > 1 or None, got {self.dtol!r}")

    def threshold(self, b_norm: float) -> float:
        return max(self.rtol * b_norm, self.atol)

    def reason_for(self, residual_norm: float, b_norm: float) -> ConvergedReason | None:
        """The reason to stop if ``residual_norm`` meets the rule (or diverged), else None."""
        if not np.isfinite(residual_norm):
            return ConvergedReason.DIVERGED_NANORINF
        if residual_norm <= self.rtol * b_norm:
            return ConvergedReason.CONVERGED_RTOL
        if residual_norm <= self.atol:
            return ConvergedReason.CONVERGED_ATOL
        if self.dtol is not None and residual_norm > self.dtol * b_norm:
            return ConvergedReason.DIVERGED_DTOL
        return None


#: ``callback(iteration, x, residual_norm)``, called after every iteration of a solve
Callback = Callable[[int, np.ndarray, float], None]


class NotSetUpError(RuntimeError):
    """A solver or preconditioner used before ``setup()``."""


def as_system(system_or_matrix: Any) -> LinearSystem:
    """A ``LinearSystem`` from a system, or from a bare matrix (with a zero right-hand side)."""
    if isinstance(system_or_matrix, LinearSystem):
        return system_or_matrix
    import scipy.sparse as sp

    if sp.issparse(system_or_matrix) or isinstance(system_or_matrix, np.ndarray):
        return LinearSystem(system_or_matrix, np.zeros(system_or_matrix.shape[0]))
    raise TypeError(
        "setup() takes a pdesolve.LinearSystem or a square matrix (scipy sparse or numpy), got "
        f"{type(system_or_matrix).__name__}"
    )


def check_same_pattern(old: Any, new: Any) -> None:
    """Raise ``InvalidSystemError`` unless ``new`` has the size and sparsity pattern of ``old``."""
    if new.shape != old.shape:
        raise InvalidSystemError(
            f"update() needs a matrix of the set-up size {old.shape}, got {new.shape}; "
            "call setup() for a system of another size"
        )
    a, b = old.tocsr(), new.tocsr()
    a.sort_indices()
    b.sort_indices()
    if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)):
        raise InvalidSystemError(
            "update() needs the sparsity pattern of the set-up matrix (same nonzero positions); "
            "call setup() for a matrix with another pattern"
        )


class Solver(ABC):
    """A linear solver object: ``setup(system)`` once, ``solve(b)`` many times.

    Subclasses store options in ``__init__`` (calling ``super().__init__`` with the stopping
    parameters) and implement the hooks ``_setup(system)`` (everything that depends on ``A`` only)
    and ``_solve(system, x0)`` (one solve with ``system.b``; must honour ``self.stopping`` on the
    true residual and return ``residual_norms`` with ``iterations + 1`` entries); they may override
    ``_update`` (new values of ``A``) and ``_close``. ``self.callback`` holds the callback of the
    running solve (or None).

    ``result.info`` always holds ``solver`` (this solver's name), ``setup_time`` (the set-up paid
    since the previous solve: the first solve after ``setup``/``update`` reports it, later ones 0),
    ``solve_time`` and ``setups`` (set-ups paid by this object so far).
    """

    #: whether the solver needs a symmetric positive definite matrix
    requires_spd: bool = False

    system_: LinearSystem | None = None
    setup_count: int = 0
    callback: Callback | None = None
    _unreported_setup_time: float = 0.0
    _updating: bool = False  # inside update(): the solver rebuilds its own preconditioner

    def __init__(
        self, rtol: float = 1e-8, atol: float = 0.0, maxiter: int = 10_000,
        dtol: float | None = None,
    ) -> None:
        self.stopping = StoppingRule(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__)

    # -- the public object protocol ---------------------------------------------------------
    def setup(self, system: Any) -> Solver:
        """Set up for ``system`` (a ``LinearSystem`` or a square matrix); returns ``self``."""
        system = as_system(system)
        system.validate(symmetric=self.requires_spd)
        self._check_system(system)
        if self.system_ is not None:
            self._close()
            self.system_ = None
        start = time.perf_counter()
        self._setup(system)
        self._unreported_setup_time += time.perf_counter() - start
        self.system_ = system
        self.setup_count += 1
        return self

    def solve(
        self, b: Any = None, x0: np.ndarray | None = None, *, callback: Callback | None = None
    ) -> SolveResult:
        """Solve with right-hand side ``b`` (a vector, or a ``LinearSystem``: set up on the fly
        when its ``A`` is not the set-up one), starting from ``x0`` (zero by default).

        ``callback(iteration, x, residual_norm)`` runs after each iteration.
        """
        if isinstance(b, LinearSystem):
            if self.system_ is None or b.A is not self.system_.A:
                self.setup(b)
            system = b if b is self.system_ else self.system_.with_rhs(b.b)
            if b is not self.system_:
                system.exact = b.exact
        else:
            if self.system_ is None:
                raise NotSetUpError(
                    f"{self.name}: solve(b) with a vector needs setup(system) first (or pass a "
                    "LinearSystem)"
                )
            system = self.system_ if b is None else self.system_.with_rhs(b)
        x0 = system.check_vector(x0, "x0") if x0 is not None else None
        setup_time, self._unreported_setup_time = self._unreported_setup_time, 0.0
        self.callback = callback
        start = time.perf_counter()
        try:
            result = self._solve(system, x0)
        finally:
            self.callback = None
        elapsed = time.perf_counter() - start
        info = dict(result.info)
        # a solver that still builds part of its set-up inside _solve reports it there: count it
        inner_setup = float(info.pop("setup_time", 0.0))
        solve_time = float(info.pop("solve_time", elapsed - inner_setup))
        wall_time = setup_time + elapsed
        setup_time += inner_setup
        info = {**info, "solver": self.name, "setup_time": setup_time, "solve_time": solve_time,
                "setups": self.setup_count}  # fmt: skip
        return SolveResult(
            x=result.x,
            converged=result.converged,
            reason=result.reason,
            iterations=result.iterations,
            residual_norms=result.residual_norms,
            wall_time=wall_time,
            info=info,
        )

    def update(self, A_new: Any, reuse_preconditioner: bool = False) -> None:
        """New values of the set-up matrix (same size and sparsity pattern).

        ``reuse_preconditioner=False`` rebuilds everything (counted as a set-up);
        ``True`` keeps the preconditioner built for the old values and only swaps the operator.
        ``A_new`` may be a matrix or a ``LinearSystem`` (whose grid and stencil then replace the
        old ones).
        """
        if self.system_ is None:
            raise NotSetUpError(f"{self.name}: update() needs setup(system) first")
        shape = getattr(A_new, "A", A_new).shape
        if shape != self.system_.A.shape:
            raise InvalidSystemError(
                f"update() needs a matrix of the set-up size {self.system_.A.shape}, got "
                f"{shape}; call setup() for a system of another size"
            )
        if isinstance(A_new, LinearSystem):
            new = A_new
        else:
            new = LinearSystem(
                A_new, self.system_.b, geometry=self.system_.geometry, grid=self.system_.grid,
                metadata=dict(self.system_.metadata),
                stencil=self.system_.stencil if reuse_preconditioner else None,
            )
        check_same_pattern(self.system_.A, new.A)
        new.validate(symmetric=self.requires_spd)
        start = time.perf_counter()
        self._updating = True
        try:
            self._update(new, reuse_preconditioner)
        finally:
            self._updating = False
        self._unreported_setup_time += time.perf_counter() - start
        self.system_ = new
        if not reuse_preconditioner:
            self.setup_count += 1

    def close(self) -> None:
        """Free what the set-up holds (PETSc objects, networks); the solver can be set up again."""
        if self.system_ is not None:
            self._close()
            self.system_ = None

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: PETSc may be gone already
            pass

    def _prepare_preconditioner(self, pc: Any, system: LinearSystem) -> None:
        """Set ``pc`` up for ``system`` unless it already is; a preconditioner the user set up
        for another system is refused (``update()`` rebuilds the solver's own)."""
        if pc.is_set_up_for(system):
            return
        if not self._updating:
            pc.check_usable_for(system)
        pc.setup(system)

    # -- hooks -------------------------------------------------------------------------------
    def _check_system(self, system: LinearSystem) -> None:  # noqa: B027 - optional hook
        """Raise a clear error when ``system`` does not suit this solver (before any set-up)."""

    def _setup(self, system: LinearSystem) -> None:  # noqa: B027 - optional hook
        """Everything that depends on ``A`` only (default: nothing)."""

    @abstractmethod
    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        """Solve ``system`` (its current ``b``); ``wall_time`` is filled in by ``solve``."""

    def _update(self, system: LinearSystem, reuse_preconditioner: bool) -> None:
        """New values of A (default: close and set up again, or just take the new A)."""
        if reuse_preconditioner:
            self._swap_operator(system)
        else:
            self._close()
            self._setup(system)

    def _swap_operator(self, system: LinearSystem) -> None:  # noqa: B027 - optional hook
        """Take ``system.A`` as the operator, keeping the preconditioner (default: nothing)."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Free what ``_setup`` made (default: nothing)."""
