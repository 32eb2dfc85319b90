"""``petsc_cg``: PETSc KSPCG through petsc4py, the classical baseline of pdesolve."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pdesolve.linalg.petsc import (
    csr_to_petsc,
    gather_vector,
    ksp_with_options,
    petsc,
    remove_options,
    vector_to_petsc,
)
from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult, StoppingRule

PRECONDITIONERS = ("none", "jacobi", "icc", "gamg", "hypre")
_MAX_RESTARTS = 5


def available_preconditioners() -> list[str]:
    """The ``pc`` values this PETSc build supports (hypre only when PETSc was built with it)."""
    PETSc = petsc()
    return [pc for pc in PRECONDITIONERS if pc != "hypre" or PETSc.Sys.hasExternalPackage("hypre")]


def solve_to_true_residual(
    ksp: Any, A: Any, b: Any, x: Any, stopping: StoppingRule, b_norm: float,
    history: Callable[[], list[float]],
) -> tuple[list[float], int, int, ConvergedReason]:
    """Run ``ksp.solve(b, x)`` until the *true* residual ``||b - A x||`` meets ``stopping``.

    PETSc stops on its recursive residual; when that says converged but the true residual does
    not meet the rule, the solve is restarted from ``x`` (at most ``_MAX_RESTARTS`` times).
    ``history()`` returns (and forgets) the residual norms PETSc recorded during the last solve.
    Returns the residual norms (the last one the true residual), iterations, restarts, reason.
    """
    r = b.duplicate()
    norms: list[float] = []
    iterations, restarts = 0, 0
    try:
        while True:
            ksp.setTolerances(max_it=stopping.maxiter - iterations)
            ksp.solve(b, x)
            recorded = [float(v) for v in history()]
            norms.extend(recorded[1:] if norms else recorded)  # a restart repeats the last norm
            iterations += ksp.getIterationNumber()
            reason = ConvergedReason(int(ksp.getConvergedReason()))
            A.mult(x, r)
            r.aypx(-1.0, b)
            true_norm = r.norm()
            if norms:
                norms[-1] = true_norm
            else:
                norms.append(true_norm)
            if not reason.converged:
                break
            checked = stopping.reason_for(true_norm, b_norm)
            if checked is not None:
                reason = checked
                break
            if restarts >= _MAX_RESTARTS or iterations >= stopping.maxiter:
                reason = (
                    ConvergedReason.DIVERGED_ITS
                    if iterations >= stopping.maxiter
                    else ConvergedReason.DIVERGED_BREAKDOWN
                )
                break
            restarts += 1  # recursive residual met the rule but the true one did not
            ksp.setInitialGuessNonzero(True)
    finally:
        r.destroy()
    return norms, iterations, restarts, reason


@SOLVERS.register("petsc_cg")
class PetscCG(Solver):
    """PETSc's conjugate gradients (``KSPCG``) with the unpreconditioned residual norm.

    Parameters
    ----------
    pc : {"none", "jacobi", "icc", "gamg", "hypre"}
        The preconditioner; ``icc`` becomes block Jacobi with ICC blocks on more than one rank.
    options : dict
        Further PETSc options without the leading dash, e.g. ``{"pc_gamg_threshold": 0.02}``.
        They are set under a private options prefix and removed after the solve.
    true_residual_history : bool
        Record ``||b - A x_k||`` at every iteration (one extra product per iteration) instead of
        CG's recursively updated residual. The final entry is always the true residual.

    The PETSc test ``||r_k|| <= max(rtol ||b||, atol)`` runs on the recursive residual; the result
    is then checked on the true residual and CG restarted from the current iterate if they disagree.

    >>> from pdesolve import get_problem
    >>> system = get_problem("poisson", dim=2, n=32).discretize()
    >>> result = PetscCG(rtol=1e-10, pc="icc").solve(system)
    >>> result.converged, bool(result.residual_norms[-1] <= 1e-10 * system.b_norm)
    (True, True)
    """

    registry_name = "petsc_cg"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        pc: str = "none",
        options: Mapping[str, Any] | None = None,
        true_residual_history: bool = False,
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
        if pc not in PRECONDITIONERS:
            raise ValueError(f"unknown pc {pc!r} for petsc_cg; known: {', '.join(PRECONDITIONERS)}")
        self.pc = pc
        self.options = dict(options or {})
        for key in self.options:
            if not isinstance(key, str) or key.startswith("-"):
                raise ValueError(
                    f"PETSc option names are given without a leading dash, got {key!r}"
                )
        self.true_residual_history = true_residual_history

    def petsc_options(self, comm_size: int = 1) -> dict[str, Any]:
        """The PETSc options (without prefix) this solver sets."""
        opts: dict[str, Any] = {
            "ksp_type": "cg",
            "ksp_norm_type": "unpreconditioned",
            "ksp_rtol": self.stopping.rtol,
            "ksp_atol": self.stopping.atol,
            "ksp_max_it": self.stopping.maxiter,
        }
        if self.pc == "icc" and comm_size > 1:
            opts.update({"pc_type": "bjacobi", "sub_pc_type": "icc"})
        else:
            opts["pc_type"] = self.pc
        opts.update(self.options)
        return opts

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        PETSc = petsc()
        if self.pc == "hypre" and not PETSc.Sys.hasExternalPackage("hypre"):
            raise ValueError(
                "pc='hypre' needs a PETSc built with hypre; this build supports: "
                + ", ".join(available_preconditioners())
            )
        comm = PETSc.COMM_WORLD
        t0 = time.perf_counter()
        A = csr_to_petsc(system.A, comm)
        b = vector_to_petsc(system.b, comm)
        x = vector_to_petsc(np.zeros_like(system.b) if x0 is None else x0, comm)
        ksp, names = ksp_with_options(comm, self.petsc_options(comm.getSize()))
        try:
            ksp.setOperators(A)
            ksp.setFromOptions()
            ksp.setInitialGuessNonzero(x0 is not None)
            monitor_norms: list[float] = []
            if self.true_residual_history:

                def monitor(k: PETSc.KSP, its: int, rnorm: float) -> None:
                    res = k.buildResidual()
                    monitor_norms.append(res.norm())
                    res.destroy()

                ksp.setMonitor(monitor)
            else:
                ksp.setConvergenceHistory(length=self.stopping.maxiter + 1, reset=True)
            try:
                ksp.setUp()
            except PETSc.Error as exc:
                raise RuntimeError(f"PETSc could not set up pc={self.pc!r}: {exc}") from exc
            setup_time = time.perf_counter() - t0
            t1 = time.perf_counter()

            def recorded() -> list[float]:
                if self.true_residual_history:
                    out = list(monitor_norms)
                    monitor_norms.clear()
                    return out
                return list(ksp.getConvergenceHistory())

            norms, iterations, restarts, reason = solve_to_true_residual(
                ksp, A, b, x, self.stopping, system.b_norm, recorded
            )
            solve_time = time.perf_counter() - t1
            solution = gather_vector(x)
            info = {
                "setup_time": setup_time,
                "solve_time": solve_time,
                "pc": self.pc,
                "petsc_options": self.petsc_options(comm.getSize()),
                "ranks": comm.getSize(),
                "restarts": restarts,
            }
        finally:
            remove_options(names)
            for obj in (ksp, A, b, x):
                obj.destroy()
        return SolveResult(
            x=solution,
            converged=reason.converged,
            reason=reason,
            iterations=iterations,
            residual_norms=np.asarray(norms),
            wall_time=setup_time + solve_time,
            info=info,
        )
