"""PETSc KSPCG preconditioned by PCMG with user-supplied prolongations (``PCMGSetInterpolation``).

Any hierarchy of prolongation matrices (e.g. the learned ones of ``MultigridHierarchy``) is handed
to PETSc level by level; PETSc forms the Galerkin coarse operators itself
(``-pc_mg_galerkin both``), smooths with one forward Gauss–Seidel sweep down and one backward sweep
up (``richardson`` + ``sor``, distinct up smoothers: the cycle is symmetric, as CG needs) and
solves the coarsest level with LU. The stopping rule is pdesolve's, on the true residual
(``-ksp_norm_type unpreconditioned``).

>>> import pdesolve
>>> from pdesolve.solvers.multigrid import MultigridHierarchy
>>> from pdesolve.solvers.base import StoppingRule
>>> system = pdesolve.get_problem("poisson", dim=2, n=31, scheme="fe9").discretize()
>>> mg = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear")
>>> result = solve_petsc_cg_pcmg(system, mg.prolongations(), StoppingRule(rtol=1e-10))
>>> result.converged, result.iterations <= 10
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from pdesolve.linalg.petsc import (
    gather_vector,
    ksp_with_options,
    petsc,
    remove_options,
    vector_to_petsc,
)
from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers.base import ConvergedReason, SolveResult, StoppingRule


def aij_from_csr(A: sp.spmatrix, comm=None):
    """A sequential PETSc AIJ matrix on the CSR arrays of ``A`` themselves (one rank; no copy
    when ``A`` is in canonical CSR form with PETSc's index type: the matrix holds the arrays,
    so later in-place changes to ``A``'s values show in it).

    PETSc's SOR reads a row's entries before its diagonal as the lower triangle, so a matrix
    with unsorted column indices or duplicate entries is first copied into canonical form
    (sorted, duplicates summed); otherwise a Gauss–Seidel sweep would silently be wrong.
    """
    PETSc = petsc()
    A = sp.csr_matrix(A)
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()
    csr = (A.indptr.astype(PETSc.IntType, copy=False),
           A.indices.astype(PETSc.IntType, copy=False), A.data)
    M = PETSc.Mat().createAIJWithArrays(A.shape, csr, comm=comm or PETSc.COMM_SELF)
    M.setAttr("pdesolve_csr", csr)  # the arrays live as long as the matrix
    M.assemble()
    return M


def pc_options(cycle: str = "V", galerkin: bool = True, sweeps: int = 1) -> dict[str, object]:
    """PETSc options (without prefix) that make a PC the PCMG used here.

    ``galerkin``: PETSc forms the coarse operators from the interpolations
    (``-pc_mg_galerkin both``); otherwise the caller sets each level's operator. ``sweeps``:
    Gauss–Seidel sweeps down and up per level.
    """
    if cycle not in ("V", "W"):
        raise ValueError(f"PETSc PCMG runs V or W cycles here, got {cycle!r}")
    if sweeps < 1:
        raise ValueError(f"sweeps must be >= 1, got {sweeps}")
    return {
        "pc_type": "mg",
        "pc_mg_galerkin": "both" if galerkin else "none",
        "pc_mg_distinct_smoothup": None,
        "mg_levels_ksp_type": "richardson",
        "mg_levels_ksp_max_it": sweeps,
        "mg_levels_pc_type": "sor",
        "mg_levels_pc_sor_forward": None,
        "mg_levels_up_ksp_type": "richardson",
        "mg_levels_up_ksp_max_it": sweeps,
        "mg_levels_up_pc_type": "sor",
        "mg_levels_up_pc_sor_backward": None,
        "mg_coarse_ksp_type": "preonly",
        "mg_coarse_pc_type": "lu",
        "pc_mg_cycle_type": cycle.lower(),
    }


def pcmg_options(cycle: str = "V", galerkin: bool = True) -> dict[str, object]:
    """PETSc options (without prefix) of KSPCG + the PCMG used here."""
    return {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned",
            **pc_options(cycle, galerkin)}


def configure_pcmg(pc, interpolations: Sequence, operators: Sequence | None = None,
                   cycle: str = "V", sweeps: int = 1) -> list[str]:
    """Make ``pc`` (of a KSP whose operators are set) the PCMG over PETSc ``interpolations``
    (finest first), ``sweeps`` Gauss–Seidel sweeps down and up per level.

    ``operators`` are the coarse operators, finest first (one per interpolation); None lets
    PETSc form them by Galerkin products. The options go under the PC's own prefix; returns
    their names (pass them to ``remove_options`` once the KSP is destroyed).
    """
    if operators is not None and len(operators) != len(interpolations):
        raise ValueError(f"{len(interpolations)} interpolations need as many coarse operators, "
                         f"got {len(operators)}")
    PETSc = petsc()
    prefix = pc.getOptionsPrefix() or ""
    database = PETSc.Options()
    names = []
    for key, value in pc_options(cycle, galerkin=operators is None, sweeps=sweeps).items():
        database.setValue(prefix + key, value)
        names.append(prefix + key)
    nlev = len(interpolations) + 1
    pc.setType("mg")
    pc.setMGLevels(nlev)
    for k, P in enumerate(interpolations):  # PETSc level nlev-1 is the finest
        pc.setMGInterpolation(nlev - 1 - k, P)
    for k, Ac in enumerate(operators or ()):
        pc.getMGSmoother(nlev - 2 - k).setOperators(Ac)
    pc.setFromOptions()
    return names


class PCMGKSP:
    """A set-up PETSc KSPCG + PCMG over user prolongations (finest first); one rank only.

    ``ksp``, ``pc`` and the PETSc matrix ``A`` are attributes; ``pc.apply(r, z)`` is one cycle
    (``z = M⁻¹ r``). ``operators`` (coarse operators, finest first, scipy sparse) skip PETSc's
    Galerkin products. Call ``destroy()`` when done (it also removes the prefixed options).

    >>> import numpy as np, pdesolve
    >>> from pdesolve.solvers.multigrid import MultigridHierarchy
    >>> system = pdesolve.get_problem("poisson", dim=2, n=15, scheme="fe9").discretize()
    >>> mg = MultigridHierarchy(system.A, system.stencil, prolongation="bilinear")
    >>> pcmg = PCMGKSP(system.A, mg.prolongations())
    >>> r = pcmg.A.createVecLeft(); z = pcmg.A.createVecRight(); r.set(1.0)
    >>> pcmg.pc.apply(r, z)
    >>> bool(z.norm() > 0); pcmg.destroy()
    True
    """

    def __init__(self, A: sp.spmatrix, prolongations: Sequence[sp.csr_matrix],
                 cycle: str = "V", operators: Sequence[sp.spmatrix] | None = None) -> None:
        PETSc = petsc()
        comm = PETSc.COMM_SELF
        if PETSc.COMM_WORLD.getSize() > 1:
            raise ValueError("PCMG with user prolongations runs on one rank in pdesolve")
        self.options = pcmg_options(cycle, galerkin=operators is None)
        self.A = aij_from_csr(A, comm)
        self._mats = [aij_from_csr(P, comm) for P in prolongations]
        self._ops = [aij_from_csr(Ac, comm) for Ac in operators or ()]
        self.levels = len(self._mats) + 1
        self.ksp, self._names = ksp_with_options(
            comm, {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}, tag="pdesolve_pcmg")
        self.ksp.setOperators(self.A)
        self.pc = self.ksp.getPC()
        self._names += configure_pcmg(self.pc, self._mats, self._ops or None, cycle)
        self.ksp.setFromOptions()
        self.ksp.setUp()

    def destroy(self) -> None:
        """Free the PETSc objects and remove this solver's options."""
        remove_options(self._names)
        self._names = []
        for obj in (self.ksp, self.A, *self._mats, *self._ops):
            obj.destroy()


def solve_petsc_cg_pcmg(
    system: LinearSystem,
    prolongations: Sequence[sp.csr_matrix],
    stopping: StoppingRule,
    x0: np.ndarray | None = None,
    cycle: str = "V",
    operators: Sequence[sp.spmatrix] | None = None,
) -> SolveResult:
    """KSPCG + PCMG over ``prolongations`` (finest first) for ``system``; one rank only.

    ``operators``: the coarse operators (finest first) instead of PETSc's Galerkin products.
    """
    PETSc = petsc()
    comm = PETSc.COMM_SELF
    t0 = time.perf_counter()
    solver = PCMGKSP(system.A, prolongations, cycle, operators)
    ksp, A = solver.ksp, solver.A
    b = vector_to_petsc(system.b, comm)
    x = vector_to_petsc(np.zeros_like(system.b) if x0 is None else x0, comm)
    r = b.duplicate()
    try:
        ksp.setTolerances(rtol=stopping.rtol, atol=stopping.atol, max_it=stopping.maxiter)
        ksp.setInitialGuessNonzero(x0 is not None)
        ksp.setConvergenceHistory(length=stopping.maxiter + 1, reset=True)
        setup_time = time.perf_counter() - t0
        t1 = time.perf_counter()
        ksp.solve(b, x)
        solve_time = time.perf_counter() - t1
        norms = [float(v) for v in ksp.getConvergenceHistory()]
        A.mult(x, r)
        r.aypx(-1.0, b)
        true_norm = r.norm()
        norms = norms[:-1] + [true_norm] if norms else [true_norm]
        reason = ConvergedReason(int(ksp.getConvergedReason()))
        if reason.converged:
            reason = stopping.reason_for(true_norm, system.b_norm) or ConvergedReason.DIVERGED_ITS
        iterations = ksp.getIterationNumber()
        solution = gather_vector(x)
        opts, nlev = solver.options, solver.levels
    finally:
        solver.destroy()
        for obj in (b, x, r):
            obj.destroy()
    return SolveResult(
        x=solution, converged=reason.converged, reason=reason, iterations=iterations,
        residual_norms=np.asarray(norms), wall_time=setup_time + solve_time,
        info={"setup_time": setup_time, "solve_time": solve_time, "petsc_options": opts,
              "levels": nlev},
    )
