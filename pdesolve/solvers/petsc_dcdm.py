"""``petsc_dcdm``: DCDM through PETSc, the network as a nonlinear (shell) preconditioner.

DCDM is flexible CG with truncated A-orthogonalisation, FCG(k), whose preconditioner is the map
``r -> f(r / ||r||)`` of the network (docs/methods/dcdm.md). That map is handed to PETSc as a shell
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
It is ``petsc_cg`` with the ``dcdm_network`` preconditioner (a nonlinear one, so petsc_cg runs
the flexible method); for a user's own KSP, ``DCDMNetwork(...).setup(system)`` and then
``configure_petsc(ksp.getPC())`` make the network its preconditioner.

>>> from pdesolve import get_problem
>>> system = get_problem("pressure_poisson", dim=2, n=16).discretize()
>>> r = PetscDCDM(rtol=1e-8, model="identity", ksp_type="fcg", memory=50).solve(system)
>>> r.converged, bool(r.residual_norms[-1] <= 1e-8 * system.b_norm)
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pdesolve.linalg.petsc import petsc
from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import SolveResult
from pdesolve.solvers.dcdm_network import DCDMNetwork, check_definite_diagonal
from pdesolve.solvers.petsc_cg import FLEXIBLE_KRYLOV, PetscCG

KSP_TYPES = FLEXIBLE_KRYLOV


@SOLVERS.register("petsc_dcdm")
class PetscDCDM(PetscCG):
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
        dtol: float | None = None,
        model: Any = None,
        ksp_type: str = "fcg",
        memory: int = 2,
        options: dict[str, Any] | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if ksp_type not in KSP_TYPES:
            raise ValueError(f"unknown ksp_type {ksp_type!r}; known: {', '.join(KSP_TYPES)}")
        if int(memory) != memory or memory < 1:
            raise ValueError(f"memory must be an integer >= 1, got {memory!r}")
        super().__init__(
            rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol,
            pc=DCDMNetwork(model=model, device=device, dtype=dtype), options=options,
            flexible=ksp_type, memory=memory,
        )  # fmt: skip
        self.model, self.ksp_type, self.device, self.dtype = model, ksp_type, device, dtype

    def _check_system(self, system: LinearSystem) -> None:
        check_definite_diagonal(system.A)
        if petsc().COMM_WORLD.getSize() > 1:
            raise ValueError(
                "petsc_dcdm runs on one rank: the network sees the whole grid, and a rank-local "
                "network would need a halo as wide as its receptive field (the whole grid for "
                "the shipped models); run it without mpiexec"
            )

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        before = self.preconditioner.applications
        result = super()._solve(system, x0)
        timings = self.preconditioner.take_timings()
        info = {**result.info, **timings, "ksp_type": self.ksp_type, "memory": self.memory,
                "pc_applications": self.preconditioner.applications - before}  # fmt: skip
        return SolveResult(**{**result.__dict__, "info": info})
