"""What every fit method returns and must provide: ``FitResult`` and ``FitMethod``.

A fit method trains a model of a problem's solution (a PINN on the strong-form residual). It runs a
training budget; it succeeds only when the caller stated a criterion (a target test error, a
target PDE residual) and the final model meets it. Without one, ``status`` is ``NOT_CHECKED``.

>>> import numpy as np
>>> result = FitResult(method="demo", status=CriterionStatus.NOT_CHECKED, criteria=(), steps=10,
...                    final_loss=0.1, best_loss=0.05, history_steps=np.array([0, 5, 10]),
...                    loss_history=np.array([np.nan, 0.05, 0.1]), test_error=0.5,
...                    residual_rms=1.0, discrete_values=None, discrete_errors=None,
...                    train_time=0.0, setup_time=0.0, wall_time=0.0)
>>> result.success, result.status.value
(False, 'not_checked')
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from pdesolve.status import Criterion, CriterionStatus

__all__ = ["FitMethod", "FitResult", "check_fit_problem"]


@dataclass(frozen=True)
class FitResult:
    """The outcome of ``pdesolve.fit``: what was trained and what was measured.

    Attributes
    ----------
    method : str
        The fit method's registry name.
    status : CriterionStatus
        ``MET`` / ``NOT_MET`` when ``criteria`` were stated and checked on the final model,
        ``NOT_CHECKED`` when none was stated (the budget ran out; nothing is claimed).
    criteria : tuple of Criterion
        Each stated criterion with its final value (e.g. ``test_error``, ``residual_rms``).
    steps : int
        Optimizer updates made (all phases).
    final_loss, best_loss : float
        The training loss at the last logged step, and the smallest logged one.
    history_steps, loss_history : ndarray
        The logged steps (step 0 first) and the training loss there (NaN at step 0: no update yet).
    test_error : float or None
        Relative L2 error against the exact solution on a fixed test set; None when no exact
        solution is known.
    residual_rms : float
        RMS of the PDE residual of the final model on a fixed monitor set.
    discrete_values : ndarray or None
        The model at the unknowns of ``problem.discretize()`` (comparable with a linear solve's
        ``x``); None when the problem has no discretization.
    discrete_errors : mapping or None
        Error norms of ``discrete_values`` against the exact solution (``max``, ``l2``,
        ``relative_l2``); None when unknown.
    train_time, setup_time, wall_time : float
        Seconds in optimizer steps; building the model, sampler and test set; the whole call.
    history : mapping
        Everything logged per logged step (method specific, e.g. ``relative_l2``, ``lr``).
    info : mapping
        Method-specific entries (configuration, parameter count, checkpoint path, ...).
    model, predict
        The trained model and ``predict(points) -> values`` (numpy in, numpy out).
    """

    method: str
    status: CriterionStatus
    criteria: tuple[Criterion, ...]
    steps: int
    final_loss: float
    best_loss: float
    history_steps: np.ndarray
    loss_history: np.ndarray
    test_error: float | None
    residual_rms: float
    discrete_values: np.ndarray | None
    discrete_errors: Mapping[str, float] | None
    train_time: float
    setup_time: float
    wall_time: float
    history: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False, compare=False)
    predict: Callable[[np.ndarray], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CriterionStatus(self.status))
        object.__setattr__(self, "criteria", tuple(self.criteria))
        for name in ("history_steps", "loss_history"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float))
        object.__setattr__(self, "history", MappingProxyType(dict(self.history)))
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def success(self) -> bool:
        """True only when stated criteria were checked on the final model and all hold."""
        return self.status.success


def check_fit_problem(problem: Any) -> None:
    """Clear errors for inputs a fit method cannot train on: a ``LinearSystem``, an inverse
    problem (recovered with ``pdesolve.recover``), or anything that is not a Problem."""
    from pdesolve.linalg.system import LinearSystem
    from pdesolve.problems.base import Problem
    from pdesolve.problems.inverse import InverseProblem

    if isinstance(problem, LinearSystem):
        raise TypeError(
            "fit() trains on a problem's continuous form: pass the problem from "
            "pdesolve.get_problem(...), not a LinearSystem (solve that with pdesolve.solve)"
        )
    if isinstance(problem, InverseProblem):
        raise TypeError(
            f"problem {problem.name!r} is a sparse-regularised inverse problem (y = A x + e), not "
            "a PDE to fit: recover it with pdesolve.recover(problem, method=...)"
        )
    if not isinstance(problem, Problem):
        raise TypeError(
            f"fit() takes a Problem from pdesolve.get_problem(...), got {type(problem).__name__}"
        )


class FitMethod(ABC):
    """A method of ``pdesolve.fit``. Subclasses store their options (and own their defaults) in
    ``__init__`` and implement ``_fit(problem) -> FitResult``."""

    registry_name: str = "fit"

    @property
    def name(self) -> str:
        return self.registry_name

    def fit(self, problem: Any) -> FitResult:
        """Train on ``problem`` (checked first); ``wall_time`` covers the whole call."""
        check_fit_problem(problem)
        start = time.perf_counter()
        result = self._fit(problem)
        return replace(result, method=self.name, wall_time=time.perf_counter() - start)

    @abstractmethod
    def _fit(self, problem: Any) -> FitResult:
        """Train on ``problem``; ``method`` and ``wall_time`` are filled in by ``fit``."""
