"""``chambolle_pock``: primal–dual (Chambolle–Pock) iterations for the weighted square-root LASSO.

Saddle form: ``min_x max_{||z||₂<=1} λ||x||_{ℓ¹_w} + <A x − y, z>``. One iteration::

    x⁺ = soft_threshold(x − τ A* z, τ λ w)
    z⁺ = Proj_{||·||₂<=1}(z + σ A(2x⁺ − x) − σ y)

``chambolle_pock_block`` runs ``p`` iterations from ``(x0, z0 = 0)`` and returns the ergodic
averages ``(1/p) Σ_{k=1..p} x_k`` (``x0`` not included), the building block of FIRENET. The
registered recovery method is plain, non-restarted CP (last iterate), the baseline FIRENET is
compared to.

Examples
--------
>>> import torch
>>> from pdesolve.problems.inverse_operators import MatrixOperator
>>> A = MatrixOperator(torch.eye(4, dtype=torch.float64))
>>> y = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
>>> out = chambolle_pock_block(A, y, torch.zeros(4, dtype=torch.float64), lam=0.1, tau=1.0,
...                            sigma=1.0, p=200)
>>> [round(v, 2) for v in out.x.tolist()]
[1.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from pdesolve.linalg.proximal import batched_norm, project_l2_ball, soft_threshold
from pdesolve.recovery import RECOVERY_METHODS
from pdesolve.recovery.base import RecoveryMethod, RecoveryRun
from pdesolve.recovery.lasso import (
    check_measurements,
    check_step_sizes,
    resolve_norm_bound,
    sr_lasso_objective,
)

__all__ = ["BlockResult", "ChambollePock", "chambolle_pock_block", "cp_step", "primal_dual_gap"]


class BlockResult(NamedTuple):
    """Ergodic averages ``x``, ``z`` and the last iterates ``x_last``, ``z_last`` of a CP block."""

    x: Tensor
    z: Tensor
    x_last: Tensor
    z_last: Tensor


def cp_step(
    operator: Any, x: Tensor, z: Tensor, y: Tensor, threshold: Tensor | float, tau: float,
    sigma: float,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """One Chambolle–Pock iteration; ``threshold`` = ``τ λ w``."""
    x_new = soft_threshold(x - tau * operator.adjoint(z), threshold)
    z_new = project_l2_ball(
        z + sigma * operator.forward(2 * x_new - x) - sigma * y, ndim=len(operator.range_shape)
    )
    return x_new, z_new


def chambolle_pock_block(
    operator: Any,
    y: Tensor,
    x0: Tensor,
    *,
    lam: float,
    tau: float,
    sigma: float,
    p: int,
    weights: Tensor | None = None,
    z0: Tensor | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> BlockResult:
    """``p`` CP iterations from ``(x0, z0)`` (``z0 = 0`` by default) with ergodic averaging.

    ``callback(k, x_avg_k)`` (if given) sees the running average after iteration ``k``.
    Shapes are checked; step sizes are not (callers check ``τ σ L_A² <= 1``).
    """
    if p < 1:
        raise ValueError(f"the block needs p >= 1 iterations, got {p}")
    operator.check_range(y)
    operator.check_domain(x0, "x0")
    threshold = tau * lam if weights is None else tau * lam * weights
    x = x0
    z = torch.zeros_like(operator.forward(x0)) if z0 is None else z0
    x_sum, z_sum = torch.zeros_like(x0), torch.zeros_like(z)
    for k in range(1, p + 1):
        x, z = cp_step(operator, x, z, y, threshold, tau, sigma)
        x_sum, z_sum = x_sum + x, z_sum + z
        if callback is not None:
            callback(k, x_sum / k)
    return BlockResult(x_sum / p, z_sum / p, x, z)


def primal_dual_gap(
    operator: Any, x: Tensor, z: Tensor, y: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """``F(x) − D(ẑ)`` with ``ẑ`` the dual ``z`` scaled into the dual-feasible set
    ``{||z|| <= 1, |A* z| <= λ w}``; ``D(ẑ) = −Re<y, ẑ>``. Non-negative, zero at a saddle point."""
    nd_r, nd_d = len(operator.range_shape), len(operator.domain_shape)
    z = project_l2_ball(z, ndim=nd_r)
    bound = lam * (torch.ones_like(x) if weights is None else weights.expand_as(x))
    ratio = operator.adjoint(z).abs() / bound.clamp_min(1e-300)
    worst = ratio.amax(dim=tuple(range(-nd_d, 0)))
    scale = 1.0 / torch.clamp(worst, min=1.0)
    z_hat = z * scale.reshape(scale.shape + (1,) * nd_r)
    dual = -(y.conj() * z_hat).real.sum(dim=tuple(range(-nd_r, 0)))
    return sr_lasso_objective(operator, x, y, lam, weights) - dual


@RECOVERY_METHODS.register("chambolle_pock")
class ChambollePock(RecoveryMethod):
    """Plain (non-restarted) Chambolle–Pock for the square-root LASSO, at most ``maxiter``
    iterations.

    Stops when the primal–dual gap (:func:`primal_dual_gap`) relative to ``||y||``
    (``stopping_quantity = "relative_gap"``) is ``<= gap_tol``, tested every ``check_every``
    iterations and at ``maxiter``; otherwise reports ``NOT_MET``. ``ergodic=True`` returns the
    running average instead of the last iterate. ``misfit_norms`` holds ``||A x_k − y||`` for
    every iteration, the initial one first.

    >>> import pdesolve
    >>> problem = pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom",
    ...                                sparsity=60, rate=0.5, lam=0.03)
    >>> r = pdesolve.recover(problem, method="chambolle_pock", maxiter=1000, gap_tol=1e-10)
    >>> r.status.value, r.stopping_quantity, bool(r.stopping_history[-1] <= 1e-10)
    ('met', 'relative_gap', True)
    >>> r.relative_error < 1e-6, r.stopping_checks[:3].tolist()
    (True, [50, 100, 150])
    """

    registry_name = "chambolle_pock"
    stopping_quantity = "relative_gap"

    def __init__(
        self,
        maxiter: int = 10_000,
        gap_tol: float = 1e-8,
        check_every: int = 50,
        lam: float | None = None,
        weights: Any = None,
        tau: float | None = None,
        sigma: float | None = None,
        L_A: float | None = None,
        ergodic: bool = False,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        super().__init__(lam=lam, weights=weights, device=device, f_star=f_star)
        if int(maxiter) != maxiter or maxiter < 1:
            raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")
        if not (math.isfinite(gap_tol) and gap_tol >= 0):
            raise ValueError(f"gap_tol must be a finite number >= 0, got {gap_tol!r}")
        if int(check_every) != check_every or check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {check_every!r}")
        self.maxiter, self.gap_tol = int(maxiter), float(gap_tol)
        self.check_every = int(check_every)
        self.tau, self.sigma, self.L_A = tau, sigma, L_A
        self.ergodic = ergodic

    @property
    def tolerance(self) -> float:
        return self.gap_tol

    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> RecoveryRun:
        L = resolve_norm_bound(operator, self.L_A)
        tau = 1.0 / L if self.tau is None else float(self.tau)
        sigma = 1.0 / L if self.sigma is None else float(self.sigma)
        check_step_sizes(tau, sigma, L)
        check_measurements(operator, y)
        nd_r = len(operator.range_shape)
        x = (
            torch.zeros(operator.domain_shape, dtype=torch.float64, device=y.device)
            if x0 is None
            else x0
        )
        z = torch.zeros_like(operator.forward(x))
        threshold = tau * lam if weights is None else tau * lam * weights
        x_sum, z_sum = torch.zeros_like(x), torch.zeros_like(z)
        norms = [float(batched_norm(operator.forward(x) - y, nd_r))]
        y_norm = float(batched_norm(y, nd_r))
        checks: list[int] = []
        gaps: list[float] = []
        stopped, k = False, 0
        with torch.no_grad():
            for k in range(1, self.maxiter + 1):
                x, z = cp_step(operator, x, z, y, threshold, tau, sigma)
                x_sum, z_sum = x_sum + x, z_sum + z
                xk = x_sum / k if self.ergodic else x
                norms.append(float(batched_norm(operator.forward(xk) - y, nd_r)))
                if k % self.check_every == 0 or k == self.maxiter:
                    zk = z_sum / k if self.ergodic else z
                    gap = float(primal_dual_gap(operator, xk, zk, y, lam, weights))
                    relative = gap / y_norm if y_norm > 0 else (0.0 if gap == 0 else math.inf)
                    checks.append(k)
                    gaps.append(relative)
                    if relative <= self.gap_tol:
                        stopped = True
                        break
        out = x_sum / k if self.ergodic else x
        return RecoveryRun(
            coefficients=out, iterations=k, misfit_iterations=list(range(len(norms))),
            misfit_norms=norms, stopping_checks=checks, stopping_history=gaps, stopped=stopped,
            info={"tau": tau, "sigma": sigma, "L_A": L},
        )  # fmt: skip
