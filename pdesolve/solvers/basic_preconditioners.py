"""The classical preconditioners: identity, Jacobi, and PETSc's own ICC, ILU, GAMG and hypre.

Under ``petsc_cg`` each configures PETSc's PC directly (no Python in the loop). Used from scipy or
pdesolve's FCG, the PETSc ones build a sequential PETSc PC on the system's matrix in ``setup`` and
apply it through petsc4py; identity and Jacobi are plain numpy there.

>>> import numpy as np, scipy.sparse.linalg as spla, pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=16).discretize()
>>> icc = pdesolve.get_preconditioner("icc").setup(system)
>>> x, info = spla.cg(system.A, system.b, M=icc.as_linear_operator(), rtol=1e-10)
>>> info, bool(np.linalg.norm(system.b - system.A @ x) <= 1e-10 * system.b_norm)
(0, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.solvers.preconditioner import PRECONDITIONERS, Preconditioner


@PRECONDITIONERS.register("none")
class Identity(Preconditioner):
    """No preconditioning: ``z = r``."""

    registry_name = "none"

    def _setup(self, system: LinearSystem) -> None:
        pass

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return r.copy()

    def configure_petsc(self, pc: Any) -> None:
        pc.setType("none")


@PRECONDITIONERS.register("jacobi")
class Jacobi(Preconditioner):
    """Point Jacobi, ``z = D^{-1} r`` (the diagonal must be positive)."""

    registry_name = "jacobi"

    def _setup(self, system: LinearSystem) -> None:
        d = system.A.diagonal()
        if np.any(d <= 0):
            i = int(np.flatnonzero(d <= 0)[0])
            raise InvalidSystemError(
                f"jacobi needs a positive diagonal; A[{i},{i}] = {d[i]:g}"
            )
        self.inverse_diagonal_ = 1.0 / d

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return self.inverse_diagonal_ * r

    def configure_petsc(self, pc: Any) -> None:
        pc.setType("jacobi")


class PetscPreconditioner(Preconditioner):
    """A preconditioner that is PETSc's own ``pc_type`` with ``options`` (names without dash).

    Under ``petsc_cg`` it is configured on the solver's PC (its set-up then happens inside
    PETSc's KSPSetUp, timed as the solver's set-up); elsewhere ``setup`` builds a sequential
    PETSc PC on the matrix and ``apply`` runs it.
    """

    petsc_type: str = "none"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        for key in self.options:
            if not isinstance(key, str) or key.startswith("-"):
                raise ValueError(
                    f"PETSc option names are given without a leading dash, got {key!r}"
                )
        self._petsc: tuple[Any, ...] | None = None

    def petsc_options(self, comm_size: int = 1) -> dict[str, Any]:
        """The PETSc options (without prefix) that make a PC this preconditioner."""
        return {"pc_type": self.petsc_type, **self.options}

    def check_available(self) -> None:
        """Raise a clear error when this PETSc build lacks the preconditioner."""

    def configure_petsc(self, pc: Any) -> None:
        from pdesolve.linalg.petsc import petsc

        self.check_available()
        prefix = pc.getOptionsPrefix() or ""
        database = petsc().Options()
        for key, value in self.petsc_options(pc.getComm().getSize()).items():
            database.setValue(prefix + key, value)
        pc.setFromOptions()

    def bind(self, system: LinearSystem) -> None:
        """Record ``system`` as set up without building the standalone PC (``petsc_cg`` does
        the set-up inside its own KSP)."""
        if self.system_ is not None and not self.is_set_up_for(system):
            self._close()
        if not self.is_set_up_for(system):
            self.system_ = system
            self.setup_count += 1

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "petsc_options": self.petsc_options()}

    def _setup(self, system: LinearSystem) -> None:
        from pdesolve.linalg.petsc import csr_to_petsc, ksp_with_options, petsc, remove_options

        self.check_available()
        PETSc = petsc()
        comm = PETSc.COMM_SELF
        A = csr_to_petsc(system.A, comm)
        ksp, names = ksp_with_options(comm, {"ksp_type": "preonly", **self.petsc_options()})
        try:
            ksp.setOperators(A)
            ksp.setFromOptions()
            pc = ksp.getPC()
            pc.setUp()
        except PETSc.Error as exc:
            ksp.destroy()
            A.destroy()
            raise RuntimeError(f"PETSc could not set up pc={self.name!r}: {exc}") from exc
        finally:
            remove_options(names)
        x, y = A.createVecs()
        self._petsc = (ksp, pc, A, x, y)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        _, pc, _, x, y = self._petsc
        x.setArray(r)
        pc.apply(x, y)
        return y.getArray().copy()

    def _close(self) -> None:
        if self._petsc is not None:
            for obj in self._petsc[::-1]:
                obj.destroy()
            self._petsc = None


@PRECONDITIONERS.register("icc")
class ICC(PetscPreconditioner):
    """PETSc's incomplete Cholesky, ICC(0) (block Jacobi with ICC blocks on several ranks)."""

    registry_name = "icc"
    petsc_type = "icc"

    def petsc_options(self, comm_size: int = 1) -> dict[str, Any]:
        if comm_size > 1:
            return {"pc_type": "bjacobi", "sub_pc_type": "icc", **self.options}
        return super().petsc_options(comm_size)


@PRECONDITIONERS.register("ilu")
class ILU(PetscPreconditioner):
    """PETSc's incomplete LU, ILU(0): not symmetric, so not for CG (use it with a flexible or
    non-symmetric Krylov method); block Jacobi with ILU blocks on several ranks."""

    registry_name = "ilu"
    petsc_type = "ilu"
    is_symmetric = False

    def petsc_options(self, comm_size: int = 1) -> dict[str, Any]:
        if comm_size > 1:
            return {"pc_type": "bjacobi", "sub_pc_type": "ilu", **self.options}
        return super().petsc_options(comm_size)


@PRECONDITIONERS.register("gamg")
class GAMG(PetscPreconditioner):
    """PETSc's smoothed-aggregation algebraic multigrid with its default options."""

    registry_name = "gamg"
    petsc_type = "gamg"


@PRECONDITIONERS.register("hypre")
class Hypre(PetscPreconditioner):
    """hypre's BoomerAMG through PETSc (``scripts/setup.sh`` builds PETSc with hypre; a PETSc
    without it gives a clear error)."""

    registry_name = "hypre"
    petsc_type = "hypre"

    def check_available(self) -> None:
        from pdesolve.linalg.petsc import petsc

        if not petsc().Sys.hasExternalPackage("hypre"):
            raise ValueError(
                "pc='hypre' needs a PETSc built with hypre; this PETSc build has none "
                "(use pc='gamg' for algebraic multigrid)"
            )
