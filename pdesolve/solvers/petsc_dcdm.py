"""``petsc_dcdm``: DCDM through PETSc, the network as a nonlinear (shell) preconditioner.

DCDM is flexible CG with truncated A-orthogonalisation, FCG(k), whose preconditioner is the map
``r -> f(r / ||r||)`` of the network (METHODS.md §3.1). That map is handed to PETSc as a shell
preconditioner (petsc4py's ``PC`` of type ``python``, PETSc's PCSHELL mechanism for Python
objects: its ``apply`` runs the network) inside a flexible Krylov method:

* ``ksp_type="fcg"``: ``KSPFCG`` with ``-ksp_fcg_mmax memory`` and standard truncation, i.e. the
  DCDM iteration itself (memory 2 in the paper);
* ``ksp_type="gcr"``: ``KSPGCR`` restarted every ``memory`` directions (it minimises the residual
  2-norm over the stored directions, so it also accepts a preconditioner that changes between
  iterations).

Both run with ``-ksp_norm_type unpreconditioned``, so PETSc's test ``||r|| <= max(rtol ||b||,
atol)`` is pdesolve's rule; as for ``petsc_cg``, the final iterate is checked on the true residual
and the solve restarted from it if the recursively updated residual had drifted.
:func:`dcdm_pc` builds the preconditioner for a user's own KSP.

>>> from pdesolve import get_problem
>>> system = get_problem("pressure_poisson", dim=2, n=16).discretize()
>>> r = PetscDCDM(rtol=1e-8, model="identity", ksp_type="fcg", memory=50).solve(system)
>>> r.converged, bool(r.residual_norms[-1] <= 1e-8 * system.b_norm)
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

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
from pdesolve.solvers.base import Solver, SolveResult
from pdesolve.solvers.petsc_cg import solve_to_true_residual

KSP_TYPES = ("fcg", "gcr")


class ShellDirection:
    """petsc4py python-PC context: ``y = direction(x)`` on the (sequential) PETSc vectors."""

    def __init__(self, direction: Callable[[np.ndarray], np.ndarray]) -> None:
        self.direction = direction
        self.calls = 0
        self.time = 0.0
        self.error: BaseException | None = None  # what the direction raised inside PETSc

    def apply(self, pc: Any, x: Any, y: Any) -> None:
        t = time.perf_counter()
        try:
            z = np.asarray(self.direction(x.getArray(readonly=True).copy()), dtype=np.float64)
            if z.size != x.getSize():
                raise ValueError(
                    f"the DCDM direction map returned {z.size} values for {x.getSize()} unknowns"
                )
        except Exception as exc:
            self.error = exc
            raise
        y.setArray(z.reshape(-1))  # non-finite values make PETSc stop with DIVERGED_NANORINF
        self.calls += 1
        self.time += time.perf_counter() - t


def dcdm_pc(ksp: Any, direction: Callable[[np.ndarray], np.ndarray]) -> ShellDirection:
    """Make ``ksp``'s preconditioner the shell ``r -> direction(r)``; returns its context.

    ``direction`` is e.g. ``pdesolve.solvers.dcdm.NetworkDirection`` (the network on the
    normalised residual). Use a flexible KSP (``fcg``, ``gcr``, ``fgmres``): the map is
    nonlinear.
    """
    PETSc = petsc()
    ctx = ShellDirection(direction)
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.PYTHON)
    pc.setPythonContext(ctx)
    return ctx


@SOLVERS.register("petsc_dcdm")
class PetscDCDM(Solver):
    """DCDM as a PETSc flexible Krylov method with the network as shell preconditioner.

    Parameters
    ----------
    model : as for ``dcdm`` (network, checkpoint path, "identity", callable, None: shipped)
    ksp_type : "fcg" (``KSPFCG``, = DCDM(k)) or "gcr" (``KSPGCR``)
    memory : FCG: directions kept (``-ksp_fcg_mmax``; 2 in the paper); GCR: restart length
    options : further PETSc options without the leading dash
    device, dtype : where and in which precision the network runs
    """

    registry_name = "petsc_dcdm"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 1000,
        model: Any = None,
        ksp_type: str = "fcg",
        memory: int = 2,
        options: dict[str, Any] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
        if ksp_type not in KSP_TYPES:
            raise ValueError(f"unknown ksp_type {ksp_type!r}; known: {', '.join(KSP_TYPES)}")
        if int(memory) != memory or memory < 1:
            raise ValueError(f"memory must be an integer >= 1, got {memory!r}")
        self.model, self.ksp_type, self.memory = model, ksp_type, int(memory)
        self.options = dict(options or {})
        self.device, self.dtype = device, dtype

    def petsc_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "ksp_type": self.ksp_type,
            "ksp_norm_type": "unpreconditioned",
            "ksp_rtol": self.stopping.rtol,
            "ksp_atol": self.stopping.atol,
            "ksp_max_it": self.stopping.maxiter,
        }
        if self.ksp_type == "fcg":
            opts.update({"ksp_fcg_mmax": self.memory, "ksp_fcg_truncation_type": "standard"})
        else:
            opts["ksp_gcr_restart"] = self.memory
        opts.update(self.options)
        return opts

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        from pdesolve.solvers.dcdm import check_definite_diagonal, search_direction

        check_definite_diagonal(system.A)
        PETSc = petsc()
        comm = PETSc.COMM_SELF
        if PETSc.COMM_WORLD.getSize() > 1:
            raise ValueError("petsc_dcdm runs on one rank (the network sees the whole grid)")
        t0 = time.perf_counter()
        direction, net = search_direction(self.model, system, getattr(torch, self.dtype),
                                          self.device)
        A = csr_to_petsc(system.A, comm)
        b = vector_to_petsc(system.b, comm)
        x = vector_to_petsc(np.zeros_like(system.b) if x0 is None else x0, comm)
        ksp, names = ksp_with_options(comm, self.petsc_options(), tag="pdesolve_dcdm")
        try:
            ksp.setOperators(A)
            ctx = dcdm_pc(ksp, direction)
            ksp.setFromOptions()
            ksp.setInitialGuessNonzero(x0 is not None)
            ksp.setConvergenceHistory(length=self.stopping.maxiter + 1, reset=True)
            ksp.setUp()
            setup_time = time.perf_counter() - t0
            t1 = time.perf_counter()
            try:
                norms, iterations, restarts, reason = solve_to_true_residual(
                    ksp, A, b, x, self.stopping, system.b_norm,
                    lambda: list(ksp.getConvergenceHistory()),
                )  # fmt: skip
            except PETSc.Error as exc:
                if ctx.error is not None:  # the network's own error, not PETSc's
                    raise ctx.error from exc
                raise
            solve_time = time.perf_counter() - t1
            solution = gather_vector(x)
        finally:
            remove_options(names)
            for obj in (ksp, A, b, x):
                obj.destroy()
        info = {
            "setup_time": setup_time, "solve_time": solve_time, "ksp_type": self.ksp_type,
            "memory": self.memory, "petsc_options": self.petsc_options(), "restarts": restarts,
            "pc_applications": ctx.calls, "pc_time": ctx.time,
        }  # fmt: skip
        if net is not None:
            info["inference_time"] = net.inference_time
            info["inference_cpu_time"] = net.inference_cpu_time
        return SolveResult(
            x=solution, converged=reason.converged, reason=reason, iterations=iterations,
            residual_norms=np.asarray(norms), wall_time=setup_time + solve_time, info=info,
        )  # fmt: skip
