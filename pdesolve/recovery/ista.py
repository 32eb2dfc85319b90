"""``ista`` / ``fista``: proximal gradient for the (squared) LASSO ``λ||x||_{ℓ¹_w} + ½||Ax − y||²``.

``x⁺ = soft_threshold(v − A*(A v − y)/L², λ w / L²)`` with ``v = x`` (ISTA) or the Nesterov
extrapolation ``v = x_k + (t_{k−1} − 1)/t_k (x_k − x_{k−1})`` (FISTA, Beck & Teboulle). The two
variants differ only in data (``accelerated``), so they are one class under two names.

The LASSO's ``λ`` is not the square-root LASSO's: at a minimiser ``λ_LASSO = λ_SR ||A x* − y||``.
Unless ``lam`` is given, ``λ_LASSO = problem.lam · max(||e||, 1e-3 ||y||)`` (``||e||`` = the
problem's noise norm), a documented heuristic.

Under ``pdesolve.recover`` the iteration stops when the relative change
``||x_k − x_{k−1}|| / ||x_k||`` (``stopping_quantity = "relative_change"``, tested every
iteration) is ``<= change_tol``, or after ``maxiter`` iterations (``status`` ``NOT_MET``).

>>> import torch
>>> from pdesolve.problems.inverse_operators import MatrixOperator
>>> A = MatrixOperator(torch.eye(3, dtype=torch.float64))
>>> y = torch.tensor([3.0, 0.5, -2.0], dtype=torch.float64)
>>> proximal_gradient(A, y, lam=1.0, iterations=5).tolist()  # closed form: soft_threshold(y, 1)
[2.0, 0.0, -1.0]
>>> import pdesolve
>>> problem = pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom",
...                                sparsity=60, rate=0.5, lam=0.03)
>>> r = pdesolve.recover(problem, method="fista", maxiter=600, change_tol=1e-12)
>>> r.stopping_quantity, r.status.value, r.iterations, len(r.stopping_history)
('relative_change', 'met', 260, 260)
>>> r.relative_error < 1e-3  # a small change is not a small error: FISTA is not monotone
True
>>> slow = pdesolve.recover(problem, method="ista", maxiter=600, change_tol=1e-12)
>>> slow.status.value, slow.iterations, bool(slow.stopping_history[-1] > 1e-12)
('not_met', 600, True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.linalg.proximal import batched_norm, soft_threshold
from pdesolve.recovery import RECOVERY_METHODS
from pdesolve.recovery.base import RecoveryMethod, RecoveryRun
from pdesolve.recovery.lasso import check_measurements, lasso_objective, resolve_norm_bound

__all__ = ["FISTA", "ISTA", "ProximalGradient", "proximal_gradient"]


def proximal_gradient(
    operator: Any,
    y: Tensor,
    *,
    lam: float,
    iterations: int,
    accelerated: bool = False,
    weights: Tensor | None = None,
    x0: Tensor | None = None,
    norm_bound: float | None = None,
    history: list[Tensor] | None = None,
) -> Tensor:
    """``iterations`` steps of ISTA (or FISTA if ``accelerated``); batched, differentiable.

    ``history`` (a list, if given) receives every iterate.
    """
    check_measurements(operator, y)
    L = resolve_norm_bound(operator, norm_bound)
    step = 1.0 / L**2
    threshold = step * lam if weights is None else step * lam * weights
    nd_r = len(operator.range_shape)
    batch = y.shape[: y.ndim - nd_r]
    real = torch.float64 if y.dtype in (torch.float64, torch.complex128) else torch.float32
    x = (
        torch.zeros((*batch, *operator.domain_shape), dtype=real, device=y.device)
        if x0 is None
        else x0
    )
    v, t = x, 1.0
    for _ in range(int(iterations)):
        x_new = soft_threshold(v - step * operator.adjoint(operator.forward(v) - y), threshold)
        if accelerated:
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            v = x_new + ((t - 1.0) / t_new) * (x_new - x)
            t = t_new
        else:
            v = x_new
        x = x_new
        if history is not None:
            history.append(x)
    return x


class ProximalGradient(RecoveryMethod):
    """ISTA/FISTA under ``recover``: ``maxiter`` iterations, or fewer when the relative change
    ``||x_k − x_{k−1}|| / ||x_k||`` falls to ``change_tol`` or below (tested every iteration;
    a zero iterate counts as change 0 when it did not move, else infinite)."""

    accelerated = False
    stopping_quantity = "relative_change"

    def __init__(
        self,
        maxiter: int = 10_000,
        change_tol: float = 1e-8,
        lam: float | None = None,
        weights: Any = None,
        L_A: float | None = None,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        super().__init__(lam=lam, weights=weights, device=device, f_star=f_star)
        if int(maxiter) != maxiter or maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        if not (math.isfinite(change_tol) and change_tol >= 0):
            raise ValueError(f"change_tol must be a finite number >= 0, got {change_tol!r}")
        self.maxiter, self.change_tol = int(maxiter), float(change_tol)
        self.L_A = L_A

    @property
    def tolerance(self) -> float:
        return self.change_tol

    def objective(
        self, operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None
    ) -> Tensor:
        return lasso_objective(operator, x, y, lam, weights)

    def _tensors(self, problem: Any, x0: np.ndarray | None):  # type: ignore[override]
        y, x0_t, lam, weights = super()._tensors(problem, x0)
        if self.lam is None:  # convert the SR-LASSO λ to a LASSO λ (module docstring)
            y_norm = float(torch.linalg.vector_norm(problem.measurements))
            lam = lam * max(float(problem.noise_norm), 1e-3 * y_norm)
        return y, x0_t, lam, weights

    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> RecoveryRun:
        L = resolve_norm_bound(operator, self.L_A)
        nd_r, nd_d = len(operator.range_shape), len(operator.domain_shape)
        x = (
            torch.zeros(operator.domain_shape, dtype=torch.float64, device=y.device)
            if x0 is None
            else x0
        )
        norms = [float(batched_norm(operator.forward(x) - y, nd_r))]
        changes: list[float] = []
        stopped, iterations = False, 0
        with torch.no_grad():
            v, t = x, 1.0
            step = 1.0 / L**2
            threshold = step * lam if weights is None else step * lam * weights
            for iterations in range(1, self.maxiter + 1):  # noqa: B007
                x_new = soft_threshold(
                    v - step * operator.adjoint(operator.forward(v) - y), threshold
                )
                if self.accelerated:
                    t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
                    v = x_new + ((t - 1.0) / t_new) * (x_new - x)
                    t = t_new
                else:
                    v = x_new
                change = float(batched_norm(x_new - x, nd_d))
                x = x_new
                norms.append(float(batched_norm(operator.forward(x) - y, nd_r)))
                scale = float(batched_norm(x, nd_d))
                relative = change / scale if scale > 0 else (0.0 if change == 0 else math.inf)
                changes.append(relative)
                if relative <= self.change_tol:
                    stopped = True
                    break
        return RecoveryRun(
            coefficients=x, iterations=iterations, misfit_iterations=list(range(len(norms))),
            misfit_norms=norms, stopping_checks=list(range(1, iterations + 1)),
            stopping_history=changes, stopped=stopped, info={"lasso_lam": lam, "L_A": L},
        )  # fmt: skip


@RECOVERY_METHODS.register("ista")
class ISTA(ProximalGradient):
    """``method="ista"``: proximal gradient with step ``1/L_A²``."""

    registry_name = "ista"
    accelerated = False


@RECOVERY_METHODS.register("fista")
class FISTA(ProximalGradient):
    """``method="fista"``: ISTA with Nesterov/Beck–Teboulle extrapolation."""

    registry_name = "fista"
    accelerated = True
