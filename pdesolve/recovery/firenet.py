"""``firenet``: Fast Iterative REstarted NETworks (Colbrook, Antun & Hansen, PNAS 2022).

A FIRENET is the unrolled computation of restarted, rescaled Chambolle–Pock iterations for the
weighted square-root LASSO ``min_x λ||x||_{ℓ¹_w} + ||A x − y||₂``; it needs no training. With
``ε_0 = ||y||``, ``ψ_0 = x0`` (0 by default) and ``n`` restarts of ``p`` inner iterations::

    ε_l = e⁻¹ (δ + ε_{l−1}),   β_l = ε_l / (2 L_A),   α_l = 1 / (β_l p)
    ψ_l = CP_block_p(y ← α_l y, x0 ← α_l ψ_{l−1}, z0 = 0) / α_l

``CP_block_p`` is :func:`~pdesolve.recovery.primal_dual.chambolle_pock_block` (ergodic average of
``x_1 .. x_p``). The network has ``n·p`` layers, each one application of ``A`` and one of ``A*``.
Step sizes must satisfy ``τ σ L_A² <= 1`` with ``L_A >= ||A||`` (checked; the official code swaps
``τ`` and ``σ`` and, in its inexact-input demo, violates the condition: docs/methods/firenet.md).

Scaling: the minimiser map of the SR-LASSO is positively homogeneous, and so is this network when
``δ`` scales with ``y``: ``firenet(αy, δ=αδ) = α firenet(y, δ)`` for ``α > 0`` (exactly for
``δ = 0``).

>>> import pdesolve
>>> problem = pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom",
...                                sparsity=60, rate=0.5, lam=0.03)
>>> result = pdesolve.recover(problem, method="firenet", inner_iterations=5, restarts=40)
>>> result.iterations, result.relative_error < 1e-6
(200, True)
>>> result.status.value, result.stopping_quantity, result.tolerance  # fixed depth: no test
('not_checked', None, None)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.linalg.proximal import batched_norm
from pdesolve.recovery import RECOVERY_METHODS
from pdesolve.recovery.base import RecoveryMethod, RecoveryRun
from pdesolve.recovery.lasso import (
    check_measurements,
    check_step_sizes,
    resolve_norm_bound,
    sr_lasso_objective,
)
from pdesolve.recovery.primal_dual import chambolle_pock_block

__all__ = ["FIRENET", "FirenetRecovery", "firenet"]


def firenet(
    operator: Any,
    y: Tensor,
    *,
    lam: float,
    inner_iterations: int = 5,
    restarts: int = 16,
    delta: float = 1e-9,
    tau: float | None = None,
    sigma: float | None = None,
    weights: Tensor | None = None,
    norm_bound: float | None = None,
    eps0: Tensor | float | None = None,
    x0: Tensor | None = None,
    restart_callback: Callable[[int, Tensor], None] | None = None,
    inner_callback: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Run the FIRENET on measurements ``y`` (``(*batch, *range_shape)``); returns ``ψ_n``.

    Differentiable in ``y`` (and ``x0``) through torch autograd; batched (``ε_0 = ||y||`` per
    batch element); runs on ``y``'s device. ``τ = σ = 1/L_A`` by default, ``L_A`` =
    ``operator.norm_bound``. ``restart_callback(l, ψ_l)`` is called after restart ``l``;
    ``inner_callback(k, x)`` after every inner iteration (``k`` counts all of them, ``x`` is the
    current running average rescaled to ``y``'s scale).

    >>> import torch
    >>> from pdesolve.problems.inverse_operators import MatrixOperator
    >>> A = MatrixOperator(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    >>> y = torch.tensor([2.0, 2.0], dtype=torch.float64)
    >>> x = firenet(A, y, lam=0.5, inner_iterations=10, restarts=30)
    >>> [round(v, 6) for v in x.tolist()]  # the sparsest solution of A x = y
    [0.0, 0.0, 2.0]
    """
    p, n = int(inner_iterations), int(restarts)
    if p < 1 or n < 1:
        raise ValueError(f"inner_iterations and restarts must be >= 1, got {p} and {n}")
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be a finite positive number, got {lam!r}")
    if not (math.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    check_measurements(operator, y)
    L = resolve_norm_bound(operator, norm_bound)
    tau = 1.0 / L if tau is None else float(tau)
    sigma = 1.0 / L if sigma is None else float(sigma)
    check_step_sizes(tau, sigma, L)

    nd_r, nd_d = len(operator.range_shape), len(operator.domain_shape)
    batch = y.shape[: y.ndim - nd_r]
    real = torch.float64 if y.dtype in (torch.float64, torch.complex128) else torch.float32
    if eps0 is None:
        eps = batched_norm(y, nd_r)
    else:
        eps = torch.as_tensor(eps0, dtype=real, device=y.device)
    eps = eps.expand(batch) if eps.ndim == 0 else eps
    if x0 is None:
        psi = torch.zeros((*batch, *operator.domain_shape), dtype=real, device=y.device)
    else:
        operator.check_domain(x0, "x0")
        psi = x0.expand(*batch, *operator.domain_shape)

    def shape_to(t: Tensor, nd: int) -> Tensor:
        return t.reshape(t.shape + (1,) * nd)

    for level in range(1, n + 1):
        eps = (delta + eps) / math.e
        beta = eps / (2.0 * L)
        # y = 0 with δ = 0: nothing to rescale (the minimiser is 0); keep α = 1 there
        alpha = torch.where(beta > 0, 1.0 / (beta * p).clamp_min(1e-300), torch.ones_like(beta))
        a_r, a_d = shape_to(alpha, nd_r), shape_to(alpha, nd_d)
        cb = None
        if inner_callback is not None:
            offset = (level - 1) * p

            def cb(k: int, x_avg: Tensor, offset: int = offset, a_d: Tensor = a_d) -> None:
                inner_callback(offset + k, x_avg / a_d)

        block = chambolle_pock_block(operator, a_r * y, a_d * psi, lam=lam, tau=tau, sigma=sigma,
                                     p=p, weights=weights, callback=cb)  # fmt: skip
        psi = block.x / a_d
        if restart_callback is not None:
            restart_callback(level, psi)
    return psi


class FIRENET(nn.Module):
    """The FIRENET as a ``torch.nn.Module`` ``y -> ψ_n`` (no trainable parameters).

    ``synthesis`` (optional ``LinearOperator``, e.g. ``HaarSynthesis``) maps the coefficients to
    the image, so that ``FIRENET(...)(y)`` returns images. All keyword arguments go to
    :func:`firenet`.
    """

    def __init__(self, operator: Any, synthesis: Any = None, **options: Any) -> None:
        super().__init__()
        self.operator, self.synthesis, self.options = operator, synthesis, options

    def forward(self, y: Tensor) -> Tensor:
        coeffs = firenet(self.operator, y, **self.options)
        return coeffs if self.synthesis is None else self.synthesis.forward(coeffs)


@RECOVERY_METHODS.register("firenet")
class FirenetRecovery(RecoveryMethod):
    """``method="firenet"``: ``restarts`` × ``inner_iterations`` layers, a fixed depth.

    FIRENET tests no tolerance: ``stopping_quantity`` and ``tolerance`` are None and ``status``
    is ``NOT_CHECKED``. Logged per restart ``l = 0..n``: ``misfit_norms`` ``||A ψ_l − y||`` (at
    iterations ``l·p``), and in ``info`` the objective ``F(ψ_l)`` (``objective_history``), the
    gap ``F(ψ_l) − f_star`` when ``f_star`` is given (``objective_gap_history``) and ``ε_l``
    (``eps``).
    """

    registry_name = "firenet"
    stopping_quantity = None

    def __init__(
        self,
        inner_iterations: int = 5,
        restarts: int = 16,
        delta: float = 1e-9,
        lam: float | None = None,
        weights: Any = None,
        tau: float | None = None,
        sigma: float | None = None,
        L_A: float | None = None,
        eps0: float | None = None,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        super().__init__(lam=lam, weights=weights, device=device, f_star=f_star)
        if int(inner_iterations) != inner_iterations or int(restarts) != restarts:
            raise ValueError(f"inner_iterations and restarts must be integers, got "
                             f"{inner_iterations!r} and {restarts!r}")  # fmt: skip
        if inner_iterations < 1 or restarts < 1:
            raise ValueError(f"inner_iterations and restarts must be >= 1, got "
                             f"{inner_iterations} and {restarts}")  # fmt: skip
        if not (math.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
        self.inner_iterations, self.restarts = int(inner_iterations), int(restarts)
        self.delta, self.tau, self.sigma, self.L_A, self.eps0 = float(delta), tau, sigma, L_A, eps0

    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> RecoveryRun:
        nd_r = len(operator.range_shape)
        start = torch.zeros(operator.domain_shape, dtype=torch.float64, device=y.device)
        start = start if x0 is None else x0
        # the per-restart log stays on the device until the network has run (no read-back
        # inside the loop); ``[misfit, objective]`` per restart
        logged: list[Tensor] = []

        def log(level: int, psi: Tensor) -> None:
            misfit = batched_norm(operator.forward(psi) - y, nd_r)
            logged.append(torch.stack([misfit.double(), sr_lasso_objective(
                operator, psi, y, lam, weights).double()]))  # fmt: skip

        with torch.no_grad():
            log(0, start)
            psi = firenet(operator, y, lam=lam, inner_iterations=self.inner_iterations,
                          restarts=self.restarts, delta=self.delta, tau=self.tau,
                          sigma=self.sigma, weights=weights, norm_bound=self.L_A, eps0=self.eps0,
                          x0=x0, restart_callback=log)  # fmt: skip
            norms, objective = (list(v) for v in zip(*torch.stack(logged).tolist(), strict=True))
        eps, e = [], float(batched_norm(y, nd_r)) if self.eps0 is None else float(self.eps0)
        for _ in range(self.restarts):
            e = (self.delta + e) / math.e
            eps.append(e)
        info: dict[str, Any] = {
            "objective_history": np.asarray(objective),
            "eps": np.asarray(eps),
            "inner_iterations": self.inner_iterations,
            "restarts": self.restarts,
            "delta": self.delta,
        }
        if self.f_star is not None:
            info["objective_gap_history"] = np.asarray(objective) - self.f_star
        p = self.inner_iterations
        return RecoveryRun(
            coefficients=psi, iterations=self.restarts * p,
            misfit_iterations=[level * p for level in range(self.restarts + 1)],
            misfit_norms=norms, info=info,
        )  # fmt: skip
