"""``ista`` / ``fista``: proximal gradient for the (squared) LASSO ``λ||x||_{ℓ¹_w} + ½||Ax − y||²``.

``x⁺ = soft_threshold(v − A*(A v − y)/L², λ w / L²)`` with ``v = x`` (ISTA) or the Nesterov
extrapolation ``v = x_k + (t_{k−1} − 1)/t_k (x_k − x_{k−1})`` (FISTA, Beck & Teboulle). The two
variants differ only in data (``accelerated``), so they are one class under two names.

The LASSO's ``λ`` is not the square-root LASSO's: at a minimiser ``λ_LASSO = λ_SR ||A x* − y||``.
Unless ``lam`` is given, ``λ_LASSO = problem.lam · max(||e||, 1e-3 ||y||)`` (``||e||`` = the
problem's noise norm), a documented heuristic.

>>> import torch
>>> from pdesolve.problems.inverse_operators import MatrixOperator
>>> A = MatrixOperator(torch.eye(3, dtype=torch.float64))
>>> y = torch.tensor([3.0, 0.5, -2.0], dtype=torch.float64)
>>> proximal_gradient(A, y, lam=1.0, iterations=5).tolist()  # closed form: soft_threshold(y, 1)
[2.0, 0.0, -1.0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason
from pdesolve.solvers.sparse_recovery import (
    InverseSolver,
    batched_norm,
    check_measurements,
    resolve_norm_bound,
    soft_threshold,
)

__all__ = ["ProximalGradient", "proximal_gradient"]


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


class ProximalGradient(InverseSolver):
    """ISTA/FISTA under ``solve``: ``maxiter`` iterations, or fewer when the relative change
    ``||x_k − x_{k−1}|| / ||x_k||`` falls below ``rtol``."""

    accelerated = False

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        lam: float | None = None,
        weights: Any = None,
        L_A: float | None = None,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, lam=lam, weights=weights,
                         device=device, f_star=f_star)  # fmt: skip
        self.L_A = L_A

    def solve_problem(self, problem: Any, x0: np.ndarray | None = None):  # type: ignore[override]
        y_norm = float(torch.linalg.vector_norm(problem.measurements))
        self._noise_floor = max(float(problem.noise_norm), 1e-3 * y_norm)
        self._sr_lam = float(problem.lam)
        return super().solve_problem(problem, x0)

    def _tensors(self, problem: Any, x0: np.ndarray | None):  # type: ignore[override]
        y, x0_t, lam, weights = super()._tensors(problem, x0)
        if self.lam is None:  # convert the SR-LASSO λ to a LASSO λ (module docstring)
            lam = lam * self._noise_floor
        return y, x0_t, lam, weights

    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> tuple[Tensor, dict[str, Any]]:
        L = resolve_norm_bound(operator, self.L_A)
        nd_r, nd_d = len(operator.range_shape), len(operator.domain_shape)
        x = (
            torch.zeros(operator.domain_shape, dtype=torch.float64, device=y.device)
            if x0 is None
            else x0
        )
        norms = [float(batched_norm(operator.forward(x) - y, nd_r))]
        reason, iterations = ConvergedReason.DIVERGED_ITS, 0
        with torch.no_grad():
            v, t = x, 1.0
            step = 1.0 / L**2
            threshold = step * lam if weights is None else step * lam * weights
            for iterations in range(1, self.stopping.maxiter + 1):  # noqa: B007
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
                if change <= max(self.stopping.rtol * scale, self.stopping.atol):
                    reason = ConvergedReason.CONVERGED_RTOL
                    break
        info = {"residual_norms": np.asarray(norms), "iterations": iterations, "reason": reason}
        return x, {**info, "lasso_lam": lam, "L_A": L}


@SOLVERS.register("ista")
class ISTA(ProximalGradient):
    """``method="ista"``: proximal gradient with step ``1/L_A²``."""

    registry_name = "ista"
    accelerated = False


@SOLVERS.register("fista")
class FISTA(ProximalGradient):
    """``method="fista"``: ISTA with Nesterov/Beck–Teboulle extrapolation."""

    registry_name = "fista"
    accelerated = True
