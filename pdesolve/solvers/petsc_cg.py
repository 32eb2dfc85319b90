"""``petsc_cg``: PETSc's conjugate gradients through petsc4py, the classical baseline of pdesolve.

With a nonlinear preconditioner (a network, a PINN corrector) it runs PETSc's flexible CG
(``KSPFCG``) or GCR instead, named in ``info["krylov"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pdesolve.linalg.distributed import DistributedSystem
from pdesolve.linalg.petsc import (
    csr_to_petsc,
    gather_vector,
    ksp_with_options,
    petsc,
    remove_options,
)
from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult, StoppingRule
from pdesolve.solvers.basic_preconditioners import PetscPreconditioner
from pdesolve.solvers.preconditioner import (
    PetscShell,
    Preconditioner,
    check_pc_for_cg,
    resolve_preconditioner,
)

FLEXIBLE_KRYLOV = ("fcg", "gcr")
_MAX_RESTARTS = 5


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
    pc : a preconditioner name (``pdesolve.list_preconditioners()``) or a ``Preconditioner``
        PETSc's own (jacobi, icc, ilu, gamg, hypre) configure the KSP's PC directly; any other
        runs as a python-type PC. A nonlinear one switches the Krylov method to ``flexible``;
        a non-symmetric linear one is refused (CG needs a symmetric preconditioner).
    options : dict
        Further PETSc options without the leading dash, e.g. ``{"pc_gamg_threshold": 0.02}``,
        set under the solver's private options prefix and removed on ``close()``.
    true_residual_history : bool
        Record ``||b - A x_k||`` at every iteration (one extra product per iteration) instead of
        CG's recursively updated residual. The final entry is always the true residual.
    flexible : {"fcg", "gcr"}
        The Krylov method for a nonlinear preconditioner (KSPFCG or KSPGCR).
    memory : int
        Directions kept by the flexible method (KSPFCG's ``mmax``, KSPGCR's restart).

    Notes
    -----
    The PETSc test ``||r_k|| <= max(rtol ||b||, atol)`` runs on the recursive residual; the result
    is then checked on the true residual and CG restarted from the current iterate if they disagree.
    Under ``mpiexec`` a ``LinearSystem`` (the whole system on every rank) is split by rows; a
    ``DistributedSystem`` (``problem.discretize_distributed()``: each rank assembled its rows only)
    is used as it is, with the PETSc preconditioners or ``multigrid``
    (``pdesolve.solvers.distributed_pc``), and ``result.x`` is then this rank's part.

    Examples
    --------
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
        dtol: float | None = None,
        pc: str | Preconditioner = "none",
        options: Mapping[str, Any] | None = None,
        true_residual_history: bool = False,
        flexible: str = "fcg",
        memory: int = 2,
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)
        self.pc = pc
        self.preconditioner = resolve_preconditioner(pc)  # unknown names fail here, early
        self.options = dict(options or {})
        for key in self.options:
            if not isinstance(key, str) or key.startswith("-"):
                raise ValueError(
                    f"PETSc option names are given without a leading dash, got {key!r}"
                )
        if flexible not in FLEXIBLE_KRYLOV:
            raise ValueError(f"flexible must be one of {FLEXIBLE_KRYLOV}, got {flexible!r}")
        if int(memory) != memory or memory < 1:
            raise ValueError(f"memory must be a positive integer, got {memory!r}")
        self.true_residual_history = true_residual_history
        self.flexible, self.memory = flexible, int(memory)
        if self.preconditioner.is_linear:
            check_pc_for_cg(self.preconditioner, "petsc_cg")
        self._petsc: dict[str, Any] | None = None

    @property
    def krylov(self) -> str:
        """The PETSc KSP type this solver runs: cg, or the flexible method for a nonlinear PC."""
        return "cg" if self.preconditioner.is_linear else self.flexible

    def petsc_options(self, comm_size: int = 1) -> dict[str, Any]:
        """The PETSc options (without prefix) this solver sets."""
        opts: dict[str, Any] = {
            "ksp_type": self.krylov,
            "ksp_norm_type": "unpreconditioned",
            "ksp_rtol": self.stopping.rtol,
            "ksp_atol": self.stopping.atol,
            "ksp_max_it": self.stopping.maxiter,
        }
        if self.stopping.dtol is not None:
            opts["ksp_divtol"] = self.stopping.dtol
        if self.krylov == "fcg":
            opts.update({"ksp_fcg_mmax": self.memory, "ksp_fcg_truncation_type": "standard"})
        elif self.krylov == "gcr":
            opts["ksp_gcr_restart"] = self.memory
        pc = self.preconditioner
        if isinstance(pc, PetscPreconditioner):
            opts.update(pc.petsc_options(comm_size))
        opts.update(self.options)
        return opts

    def _setup(self, system: LinearSystem) -> None:
        PETSc = petsc()
        pc = self.preconditioner
        if not self._updating:  # before the conversion: a clear error before any work
            pc.check_usable_for(system)
        if isinstance(pc, PetscPreconditioner):
            pc.check_available()
        distributed = isinstance(system, DistributedSystem)
        comm = (system.comm or PETSc.COMM_WORLD) if distributed else PETSc.COMM_WORLD
        A = system.to_petsc() if distributed else csr_to_petsc(system.A, comm)
        ksp, names = ksp_with_options(comm, self.petsc_options(comm.getSize()))
        state: dict[str, Any] = {"ksp": ksp, "A": A, "P": None, "names": names, "shell": None,
                                 "owned": [], "pc_info": {}}
        self._petsc = state
        ksp.setOperators(A)
        ksp.setFromOptions()
        if distributed:
            from pdesolve.solvers.distributed_pc import configure_distributed

            owned, option_names, state["pc_info"] = configure_distributed(pc, ksp, A, system)
            state["owned"] += owned
            state["names"] += option_names
        elif isinstance(pc, PetscPreconditioner):
            pc.bind(system)
        else:
            self._prepare_preconditioner(pc, system)
            pc.configure_petsc(ksp.getPC())
            context = ksp.getPC().getPythonContext() if ksp.getPC().getType() == "python" else None
            state["shell"] = context if isinstance(context, PetscShell) else None
        self._monitor_norms: list[float] = []
        if self.true_residual_history:
            ksp.setMonitor(self._true_residual_monitor)
        else:  # no Python call per iteration unless a solve asks for a callback
            ksp.setConvergenceHistory(length=self.stopping.maxiter + 1, reset=True)
        try:
            ksp.setUp()
        except PETSc.Error as exc:
            raise RuntimeError(f"PETSc could not set up pc={pc.name!r}: {exc}") from exc
        state["b"], state["x"] = A.createVecs()[::-1]

    def _true_residual_monitor(self, ksp: Any, its: int, rnorm: float) -> None:
        res = ksp.buildResidual()
        self._monitor_norms.append(res.norm())
        res.destroy()
        self._call_back(ksp, its, rnorm)

    def _call_back(self, ksp: Any, its: int, rnorm: float) -> None:
        if self.callback is not None and its > 0:
            x = ksp.buildSolution()
            self.callback(its, gather_vector(x), float(rnorm))

    def _recorded(self) -> list[float]:
        if self.true_residual_history:
            out = list(self._monitor_norms)
            self._monitor_norms.clear()
            return out
        return list(self._petsc["ksp"].getConvergenceHistory())

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        state = self._petsc
        ksp, A, b, x = state["ksp"], state["A"], state["b"], state["x"]
        distributed = isinstance(system, DistributedSystem)
        lo, hi = (0, system.size) if distributed else b.getOwnershipRange()
        b.setArray(system.b[lo:hi])
        x.setArray(0.0 if x0 is None else x0[lo:hi])
        ksp.setInitialGuessNonzero(x0 is not None)
        shell: PetscShell | None = state["shell"]
        if shell is not None:
            shell.error, shell.time = None, 0.0
        callback_monitor = self.callback is not None and not self.true_residual_history
        if callback_monitor:
            ksp.setMonitor(self._call_back)
        try:
            norms, iterations, restarts, reason = solve_to_true_residual(
                ksp, A, b, x, self.stopping, system.b_norm, self._recorded
            )
        except petsc().Error as exc:
            if shell is not None and shell.error is not None:
                raise shell.error from exc
            raise
        finally:
            if callback_monitor:
                ksp.monitorCancel()
        if shell is not None and shell.error is not None:
            raise shell.error
        comm_size = A.getComm().getSize()
        info: dict[str, Any] = {
            "pc": self.preconditioner.name,
            "krylov": self.krylov,
            "petsc_options": self.petsc_options(comm_size),
            "world_size": comm_size,
            "restarts": restarts,
            **state["pc_info"],
        }
        if distributed:
            info["local_rows"] = system.local_rows
        if shell is not None:
            info["pc_time"] = shell.time
        return SolveResult(
            x=x.getArray().copy() if distributed else gather_vector(x),
            converged=reason.converged,
            reason=reason,
            iterations=iterations,
            residual_norms=np.asarray(norms),
            wall_time=0.0,
            info=info,
        )

    def _swap_operator(self, system: LinearSystem) -> None:
        state = self._petsc
        new = (system.to_petsc() if isinstance(system, DistributedSystem)
               else csr_to_petsc(system.A, state["A"].getComm()))
        if state["P"] is None:  # keep the matrix the preconditioner was built from
            state["P"] = state["A"]
        else:
            state["A"].destroy()
        state["A"] = new
        state["ksp"].setOperators(new, state["P"])
        state["ksp"].getPC().setReusePreconditioner(True)

    def _check_system(self, system: LinearSystem) -> None:
        if system.size == 0:
            raise InvalidSystemError("the system has no unknowns")

    def _close(self) -> None:
        state, self._petsc = self._petsc, None
        if state is None:
            return
        remove_options(state["names"])
        for key in ("ksp", "A", "P", "b", "x"):
            if state.get(key) is not None:
                state[key].destroy()
        for obj in state["owned"]:
            obj.destroy()
