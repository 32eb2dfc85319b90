"""``IterationDriver``: the bookkeeping every iteration written in Python shares.

One place for the stopping rule on the true residual, the residual history (``iterations + 1``
entries: the initial norm first, the final true residual last), the ``maxiter`` and divergence
checks, the confirmation of a recursively updated residual, restarts, the user's
``callback(iteration, x, residual_norm)`` and a progress bar (tqdm) for long solves.

>>> import numpy as np
>>> from pdesolve.solvers.base import StoppingRule
>>> driver = IterationDriver(StoppingRule(rtol=1e-3, maxiter=10), b_norm=1.0)
>>> driver.start(1.0) is None
True
>>> reasons = [driver.step(np.zeros(1), norm) for norm in (0.1, 0.01, 1e-4)]
>>> reasons[-1].name, driver.iterations, driver.norms
('CONVERGED_RTOL', 3, [1.0, 0.1, 0.01, 0.0001])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pdesolve.solvers.base import Callback, ConvergedReason, StoppingRule


class IterationDriver:
    """Stopping rule, history, callback and progress of one solve.

    Parameters
    ----------
    stopping : the solver's ``StoppingRule``
    b_norm : ``||b||`` of the system being solved
    callback : ``callback(iteration, x, residual_norm)`` after every iteration (or None)
    progress : show a tqdm progress bar (iterations, residual relative to ``||b||``)
    description : the progress bar's label
    """

    def __init__(
        self, stopping: StoppingRule, b_norm: float, callback: Callback | None = None,
        progress: bool = False, description: str = "solve",
    ) -> None:
        self.stopping, self.b_norm, self.callback = stopping, float(b_norm), callback
        self.norms: list[float] = []
        self.iterations = 0
        self.restarts = 0
        self.reason: ConvergedReason | None = None
        self._bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=stopping.maxiter, desc=description, leave=False)

    def start(self, residual_norm: float) -> ConvergedReason | None:
        """Record the initial residual norm; the reason to stop at once, or None."""
        self.norms = [float(residual_norm)]
        self.reason = self.stopping.reason_for(self.norms[0], self.b_norm)
        if self.reason is None and self.stopping.maxiter == 0:
            self.reason = ConvergedReason.DIVERGED_ITS
        return self.reason

    def step(self, x: np.ndarray, residual_norm: float) -> ConvergedReason | None:
        """Record one iteration; the reason to stop (converged, diverged, maxiter) or None."""
        self.iterations += 1
        self.norms.append(float(residual_norm))
        if self.callback is not None:
            self.callback(self.iterations, x, float(residual_norm))
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(relres=f"{residual_norm / max(self.b_norm, 1e-300):.2e}")
        self.reason = self.stopping.reason_for(float(residual_norm), self.b_norm)
        if self.reason is None and self.iterations >= self.stopping.maxiter:
            self.reason = ConvergedReason.DIVERGED_ITS
        return self.reason

    def confirm(self, true_norm: Callable[[], float]) -> ConvergedReason | None:
        """After a step judged converged on a recursive residual: replace the last norm by the
        true one (``true_norm()``) and judge again; None (and a restart counted) if it fails."""
        if self.reason is None or not self.reason.converged:
            return self.reason
        self.norms[-1] = float(true_norm())
        self.reason = self.stopping.reason_for(self.norms[-1], self.b_norm)
        if self.reason is None:
            if self.iterations >= self.stopping.maxiter:
                self.reason = ConvergedReason.DIVERGED_ITS
            else:
                self.restarts += 1
        return self.reason

    def stop(self, reason: ConvergedReason) -> ConvergedReason:
        """End the iteration for ``reason`` (a breakdown, a failed preconditioner)."""
        self.reason = reason
        return reason

    def finish(self) -> tuple[ConvergedReason, int, np.ndarray]:
        """Close the progress bar; ``(reason, iterations, residual norms)``."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        reason = self.reason if self.reason is not None else ConvergedReason.DIVERGED_ITS
        if len(self.norms) != self.iterations + 1:
            raise AssertionError(
                f"residual history has {len(self.norms)} entries for {self.iterations} iterations"
            )
        return reason, self.iterations, np.asarray(self.norms)
