"""Deflation by Ritz vectors as a preconditioner, and ``deflated_cg``: CG with it.

With ``W`` (n × m) spanning approximate eigenvectors of the low end of the spectrum (Ritz vectors
from ``pdesolve.train.ritz``), ``E = Wᵀ A W`` and ``Q = W E⁻¹ Wᵀ``, deflated PCG (Saad, Yeung,
Erhel, Guyomarc'h 2000) keeps its directions A-orthogonal to ``range(W)``. The same iterates come
from plain PCG with the symmetric positive definite *balancing* preconditioner
``M_d = Pᵀ M P + Q`` with ``P = I − A Q`` and ``M`` the inner preconditioner (Jacobi by default,
the DCDM paper's baseline): in exact arithmetic it coincides with deflated PCG from the
deflated start ``x0 + Q r0`` (Tang, Nabben, Vuik, Erlangga 2009) and, being SPD, runs under any CG
— pdesolve's, scipy's and PETSc's. Ritz vectors are computed in the set-up (``deflation`` of
them from ``lanczos_steps`` Lanczos steps), which is timed as the set-up.

>>> from pdesolve import get_problem
>>> system = get_problem("pressure_poisson", dim=2, n=16, geometry="sphere").discretize()
>>> result = DeflatedCG(rtol=1e-8, deflation=8, lanczos_steps=40).solve(system)
>>> result.converged, bool(result.residual_norms[-1] <= 1e-8 * system.b_norm)
(True, True)
>>> len(result.residual_norms) == result.iterations + 1
True
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import SolveResult
from pdesolve.solvers.fcg import FCG
from pdesolve.solvers.preconditioner import (
    PRECONDITIONERS,
    Preconditioner,
    check_pc_for_cg,
    resolve_preconditioner,
)


@PRECONDITIONERS.register("deflation")
class Deflation(Preconditioner):
    """The balancing deflation preconditioner ``Pᵀ M P + Q`` (see the module docstring).

    Parameters
    ----------
    deflation : number of Ritz vectors (lowest Ritz values) to deflate (16 in the DCDM paper)
    lanczos_steps : Lanczos steps used to compute them (default ``max(4 * deflation, 50)``)
    W : deflation vectors given explicitly (n × m); then no Lanczos is run
    pc : the inner preconditioner ``M`` (a linear symmetric one; "jacobi" by default)
    seed : Lanczos start vector seed
    """

    registry_name = "deflation"

    def __init__(
        self, deflation: int = 16, lanczos_steps: int | None = None,
        W: np.ndarray | None = None, pc: str | Preconditioner = "jacobi", seed: int = 0,
    ) -> None:
        if int(deflation) != deflation or deflation < 0:
            raise ValueError(f"deflation must be an integer >= 0, got {deflation!r}")
        self.deflation, self.seed, self.W = int(deflation), seed, W
        self.lanczos_steps = lanczos_steps or max(4 * self.deflation, 50)
        self.inner = resolve_preconditioner(pc)
        if not self.inner.is_linear:
            raise ValueError("the inner preconditioner of deflation must be linear")
        check_pc_for_cg(self.inner, "deflation")

    def deflation_space(self, system: LinearSystem) -> np.ndarray:
        """The ``n × m`` deflation basis (Ritz vectors of the lowest Ritz values)."""
        from pdesolve.train.ritz import ritz_pairs

        if self.W is not None:
            W = np.asarray(self.W, dtype=np.float64)
            if W.ndim != 2 or W.shape[0] != system.size:
                raise InvalidSystemError(f"W must be ({system.size}, m), got {W.shape}")
            return W
        if self.deflation == 0:
            return np.zeros((system.size, 0))
        steps = min(self.lanczos_steps, system.size)
        theta, V, _ = ritz_pairs(system.A, steps, seed=self.seed)
        keep = theta > 1e-8 * theta.max()
        return V[:, keep][:, : self.deflation]

    def _setup(self, system: LinearSystem) -> None:
        W = self.deflation_space(system)
        AW = np.asarray(system.A @ W)
        self.W_, self.AW_ = W, AW
        self._cho = sla.cho_factor(W.T @ AW) if W.shape[1] else None
        self.inner.setup(system)

    def _coarse(self, v: np.ndarray) -> np.ndarray:
        """``E⁻¹ v``."""
        return sla.cho_solve(self._cho, v)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        if self._cho is None:
            return self.inner.apply(r)
        W, AW = self.W_, self.AW_
        qr = self._coarse(W.T @ r)
        z = self.inner.apply(r - AW @ qr)  # M P r
        return z - W @ self._coarse(AW.T @ z) + W @ qr  # Pᵀ (M P r) + Q r

    def _close(self) -> None:
        self.inner.close()

    def describe(self) -> dict:
        return {**super().describe(), "deflation": self.deflation, "inner": self.inner.name}


@SOLVERS.register("deflated_cg")
class DeflatedCG(FCG):
    """Deflated PCG: CG (pdesolve's loop, one stored direction) with the deflation preconditioner.

    Parameters are those of :class:`Deflation`; ``info["deflation_vectors"]`` says how many
    vectors were deflated.
    """

    registry_name = "deflated_cg"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        dtol: float | None = None,
        deflation: int = 16,
        lanczos_steps: int | None = None,
        W: np.ndarray | None = None,
        pc: str | Preconditioner = "jacobi",
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__(
            rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol,
            pc=Deflation(deflation=deflation, lanczos_steps=lanczos_steps, W=W, pc=pc, seed=seed),
            memory=1, residual="recursive", progress=progress,
        )  # fmt: skip
        self.deflation, self.lanczos_steps, self.W, self.seed = deflation, lanczos_steps, W, seed

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        result = super()._solve(system, x0)
        info = {**result.info, "deflation_vectors": int(self.preconditioner.W_.shape[1])}
        return SolveResult(**{**result.__dict__, "info": info})
