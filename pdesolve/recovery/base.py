"""What every recovery method returns and must provide: ``RecoveryResult`` and ``RecoveryMethod``.

A recovery method reconstructs the sparse unknown of an inverse problem ``y = A x + e``. Each one
names the quantity its stopping test uses (``stopping_quantity``): the relative change
``||x_k − x_{k−1}|| / ||x_k||`` (ISTA, FISTA), the primal–dual gap relative to ``||y||``
(Chambolle–Pock), or none for a fixed-depth network (FIRENET). The result carries that quantity's
history at every check, so a reader sees why the method stopped.

>>> import numpy as np
>>> from pdesolve.status import Criterion, CriterionStatus
>>> result = RecoveryResult(
...     method="demo", status=CriterionStatus.MET, stopping_quantity="relative_change",
...     tolerance=1e-6, stopping_checks=np.array([1, 2]), stopping_history=np.array([0.1, 1e-7]),
...     iterations=2, reconstruction=np.zeros(3), coefficients=np.zeros(3),
...     misfit_iterations=np.array([0, 1, 2]), misfit_norms=np.array([1.0, 0.5, 0.4]),
...     objective=0.4, objective_gap=None, relative_error=None, lam=0.1, setup_time=0.0,
...     run_time=0.0, wall_time=0.0)
>>> result.success, str(result.criterion)
(True, 'relative_change = 1e-07 <= 1e-06: met')
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.linalg.proximal import batched_norm
from pdesolve.nn.checkpoint import check_device
from pdesolve.recovery.lasso import check_measurements, sr_lasso_objective
from pdesolve.status import Criterion, CriterionStatus

__all__ = ["RecoveryMethod", "RecoveryResult", "RecoveryRun", "check_recovery_problem"]


@dataclass(frozen=True)
class RecoveryResult:
    """The outcome of ``pdesolve.recover``: the reconstruction and what was measured.

    Attributes
    ----------
    method : str
        The recovery method's registry name.
    status : CriterionStatus
        ``MET`` when the stopping test passed, ``NOT_MET`` when ``maxiter`` ran out first,
        ``NOT_CHECKED`` for a fixed-depth method (no tolerance tested), ``NONFINITE`` on NaN/Inf.
    stopping_quantity : str or None
        What the stopping test compares with ``tolerance`` (``relative_change``,
        ``relative_gap``), None when the method tests nothing (FIRENET's fixed restarts).
    tolerance : float or None
        The stopping test is ``stopping_quantity <= tolerance``.
    stopping_checks, stopping_history : ndarray
        The iterations at which the test was made and the quantity's value there (empty when
        ``stopping_quantity`` is None).
    iterations : int
        Iterations made (for FIRENET: layers, ``restarts · inner_iterations``); each applies
        ``A`` and ``A*`` once.
    reconstruction, coefficients : ndarray
        The recovered image (``problem.synthesize(coefficients)``) and the unknowns themselves.
    misfit_iterations, misfit_norms : ndarray
        ``||A x_k − y||`` at those iterations (0 = the start first).
    objective : float
        The objective the method minimises, at the output, with weight ``lam``: the square-root
        LASSO ``λ||x||_{ℓ¹_w} + ||A x − y||`` (FIRENET, Chambolle–Pock) or the LASSO
        ``λ||x||_{ℓ¹_w} + ½||A x − y||²`` (ISTA, FISTA).
    objective_gap : float or None
        ``objective − f_star`` when a reference optimum ``f_star`` of that objective was given.
    relative_error : float or None
        ``||x − x_true|| / ||x_true||`` of the coefficients when the problem knows the truth.
    lam : float
        The regularisation weight used (of the objective the method minimises).
    setup_time, run_time, wall_time : float
        Seconds preparing the tensors and checks, iterating, and in the whole call.
    info : mapping
        Method-specific entries (step sizes, restart schedule, objective history, ...).
    """

    method: str
    status: CriterionStatus
    stopping_quantity: str | None
    tolerance: float | None
    stopping_checks: np.ndarray
    stopping_history: np.ndarray
    iterations: int
    reconstruction: np.ndarray
    coefficients: np.ndarray
    misfit_iterations: np.ndarray
    misfit_norms: np.ndarray
    objective: float
    objective_gap: float | None
    relative_error: float | None
    lam: float
    setup_time: float
    run_time: float
    wall_time: float
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CriterionStatus(self.status))
        object.__setattr__(self, "stopping_checks", np.asarray(self.stopping_checks, dtype=int))
        object.__setattr__(self, "misfit_iterations", np.asarray(self.misfit_iterations, dtype=int))
        for name in ("stopping_history", "misfit_norms"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def success(self) -> bool:
        """True only when the stopping test was made and passed."""
        return self.status.success

    @property
    def criterion(self) -> Criterion | None:
        """The stopping test at its last check (None when the method tests nothing)."""
        if self.stopping_quantity is None or self.tolerance is None:
            return None
        value = float(self.stopping_history[-1]) if self.stopping_history.size else math.nan
        return Criterion(self.stopping_quantity, self.tolerance, value)


@dataclass
class RecoveryRun:
    """What a method's ``_run`` reports: the coefficients and its own logs."""

    coefficients: Tensor
    iterations: int
    misfit_iterations: list[int]
    misfit_norms: list[float]
    stopping_checks: list[int] = field(default_factory=list)
    stopping_history: list[float] = field(default_factory=list)
    stopped: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def check_recovery_problem(problem: Any) -> None:
    """Clear errors for inputs that are not inverse problems: a ``LinearSystem``, a PDE problem
    (solved with ``pdesolve.solve`` or fitted with ``pdesolve.fit``), anything else."""
    from pdesolve.linalg.system import LinearSystem
    from pdesolve.problems.base import Problem
    from pdesolve.problems.inverse import InverseProblem

    if isinstance(problem, InverseProblem):
        return
    if isinstance(problem, LinearSystem):
        raise TypeError(
            "recover() reconstructs the unknown of an inverse problem y = A x + e, not a "
            "LinearSystem: solve that with pdesolve.solve(system, method=...)"
        )
    if isinstance(problem, Problem):
        raise TypeError(
            f"problem {problem.name!r} is a PDE problem, not an inverse problem: solve its linear "
            f"system with pdesolve.solve(problem, method=...) or train a PINN with "
            f"pdesolve.fit(problem, method='pinn'); recover() takes 'compressed_sensing', "
            f"'inexact_lasso' or 'poisson_source'"
        )
    raise TypeError(
        "recover() takes an inverse problem from pdesolve.get_problem(...) (e.g. "
        f"'compressed_sensing'), got {type(problem).__name__}"
    )


class RecoveryMethod(ABC):
    """A method of ``pdesolve.recover``. Subclasses store their options (and own their defaults)
    in ``__init__``, set ``stopping_quantity`` and implement ``_run``.

    ``lam`` and ``weights`` default to the problem's suggested values; ``f_star`` (a reference
    optimum of the objective) adds ``objective_gap``.
    """

    registry_name: str = "recovery"
    #: what the stopping test compares with ``tolerance`` (None: no test, fixed depth)
    stopping_quantity: str | None = None

    def __init__(
        self,
        lam: float | None = None,
        weights: Any = None,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        check_device(device)
        self.lam = lam
        self.weights = weights
        self.device = device
        self.f_star = f_star

    @property
    def name(self) -> str:
        return self.registry_name

    @property
    def tolerance(self) -> float | None:
        """The tolerance of the stopping test (None when there is none)."""
        return None

    def objective(
        self, operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None
    ) -> Tensor:
        """The objective this method minimises (default: the square-root LASSO)."""
        return sr_lasso_objective(operator, x, y, lam, weights)

    def _tensors(
        self, problem: Any, x0: np.ndarray | None
    ) -> tuple[Tensor, Tensor | None, float, Tensor | None]:
        dev = torch.device(self.device)
        y = problem.measurements.to(dev)
        check_measurements(problem.operator, y)
        lam = float(problem.lam if self.lam is None else self.lam)
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"lam must be a finite positive number, got {lam!r}")
        weights = problem.weights if self.weights is None else self.weights
        if weights is not None:
            weights = torch.as_tensor(np.asarray(weights), dtype=torch.float64, device=dev)
            weights = weights.reshape(problem.operator.domain_shape)
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("weights must be finite and non-negative")
        if x0 is not None:
            x0 = torch.as_tensor(np.asarray(x0), dtype=torch.float64, device=dev)
            x0 = x0.reshape(problem.operator.domain_shape)
            if not torch.isfinite(x0).all():
                raise ValueError("x0 contains NaN or Inf entries")
        return y, x0, lam, weights

    def recover(self, problem: Any, x0: np.ndarray | None = None) -> RecoveryResult:
        """Reconstruct the unknown of ``problem`` (an ``InverseProblem``), from ``x0`` if given."""
        check_recovery_problem(problem)
        start = time.perf_counter()
        y, x0_t, lam, weights = self._tensors(problem, x0)
        setup_time = time.perf_counter() - start
        run = self._run(problem.operator, y, x0_t, lam, weights)
        run_time = time.perf_counter() - start - setup_time
        coeffs = run.coefficients
        with torch.no_grad():
            objective = float(self.objective(problem.operator, coeffs, y, lam, weights))
            image = problem.synthesize(coeffs)
        relative_error = None
        if problem.coefficients is not None:
            truth = problem.coefficients.to(coeffs.device)
            relative_error = float(
                batched_norm(coeffs - truth, coeffs.ndim) / batched_norm(truth, truth.ndim)
            )
        misfit = np.asarray(run.misfit_norms, dtype=float)
        quantity, tolerance = self.stopping_quantity, self.tolerance
        if not np.all(np.isfinite(misfit)):
            status = CriterionStatus.NONFINITE
        elif quantity is None:
            status = CriterionStatus.NOT_CHECKED
        else:
            status = CriterionStatus.MET if run.stopped else CriterionStatus.NOT_MET
        return RecoveryResult(
            method=self.name, status=status, stopping_quantity=quantity, tolerance=tolerance,
            stopping_checks=np.asarray(run.stopping_checks, dtype=int),
            stopping_history=np.asarray(run.stopping_history, dtype=float),
            iterations=int(run.iterations), reconstruction=image.detach().cpu().numpy(),
            coefficients=coeffs.detach().cpu().numpy(),
            misfit_iterations=np.asarray(run.misfit_iterations, dtype=int), misfit_norms=misfit,
            objective=objective,
            objective_gap=None if self.f_star is None else objective - float(self.f_star),
            relative_error=relative_error, lam=lam, setup_time=setup_time, run_time=run_time,
            wall_time=time.perf_counter() - start, info=run.info,
        )  # fmt: skip

    @abstractmethod
    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> RecoveryRun:
        """Iterate on measurements ``y``; ``x0`` is None for the default start (zero)."""
