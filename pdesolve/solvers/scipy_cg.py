"""``scipy_cg``: scipy's conjugate gradients, the pure-Python reference solver."""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult
from pdesolve.solvers.preconditioner import (
    Preconditioner,
    check_pc_for_cg,
    resolve_preconditioner,
)

_MAX_RESTARTS = 5


@SOLVERS.register("scipy_cg")
class ScipyCG(Solver):
    """``scipy.sparse.linalg.cg`` under the pdesolve stopping rule, checked on the true residual.

    ``pc`` is a preconditioner name or a linear, symmetric ``Preconditioner`` (scipy's CG is not
    flexible: a nonlinear one is refused; use ``fcg``). The residual history is the true residual
    ``||b - A x_k||``, one extra product with ``A`` per iteration (``record_history=False`` skips
    it: the entries between the initial and the final norm are then NaN).

    >>> from pdesolve import get_problem
    >>> system = get_problem("poisson", dim=2, n=16).discretize()
    >>> result = ScipyCG(rtol=1e-10).solve(system)
    >>> result.converged, result.reason.name
    (True, 'CONVERGED_RTOL')
    >>> bool(result.residual_norms[-1] <= 1e-10 * system.b_norm)
    True
    """

    registry_name = "scipy_cg"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        dtol: float | None = None,
        pc: str | Preconditioner = "none",
        record_history: bool = True,
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)
        self.pc = pc
        self.preconditioner = resolve_preconditioner(pc)
        if not self.preconditioner.is_linear:
            raise ValueError(
                f"scipy_cg needs a linear preconditioner; {self.preconditioner.name!r} is "
                "nonlinear (use fcg or petsc_cg, which switch to flexible CG)"
            )
        check_pc_for_cg(self.preconditioner, "scipy_cg")
        self.record_history = record_history

    def _setup(self, system: LinearSystem) -> None:
        pc = self.preconditioner
        if pc.name == "none":
            self._M = None
            return
        self._prepare_preconditioner(pc, system)
        self._M = pc.as_linear_operator()

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        A, b, rule = system.A, system.b, self.stopping
        M = self._M
        b_norm = system.b_norm
        x = np.zeros_like(b) if x0 is None else x0.copy()
        norms = [system.residual_norm(x)]
        iterations, restarts = 0, 0
        reason = rule.reason_for(norms[0], b_norm)
        user_callback = self.callback
        while reason is None:
            budget = rule.maxiter - iterations
            if budget <= 0:
                reason = ConvergedReason.DIVERGED_ITS
                break
            count = [0]

            def callback(xk: np.ndarray, count: list[int] = count, done: int = iterations) -> None:
                count[0] += 1
                if not self.record_history and user_callback is None:
                    norms.append(np.nan)  # not recorded: iterations + 1 entries all the same
                else:
                    rnorm = float(np.linalg.norm(b - A @ xk))
                    norms.append(rnorm if self.record_history else np.nan)
                    if user_callback is not None:
                        user_callback(done + count[0], xk, rnorm)

            x, info = spla.cg(
                A, b, x0=x, rtol=rule.rtol, atol=rule.atol, maxiter=budget, M=M, callback=callback
            )
            iterations += count[0]
            true_norm = system.residual_norm(x)  # the rule is checked on the true residual
            norms[-1] = true_norm
            reason = rule.reason_for(true_norm, b_norm)
            if reason is None:
                if info > 0:
                    reason = ConvergedReason.DIVERGED_ITS
                elif info < 0 or restarts >= _MAX_RESTARTS:
                    reason = ConvergedReason.DIVERGED_BREAKDOWN
            restarts += 1
        return SolveResult(
            x=x,
            converged=reason.converged,
            reason=reason,
            iterations=iterations,
            residual_norms=np.asarray(norms),
            wall_time=0.0,
            info={"pc": self.preconditioner.name, "restarts": max(restarts - 1, 0)},
        )

    def _close(self) -> None:
        self._M = None
