"""Shared pieces of the sparse-recovery solvers (FIRENET, Chambolle–Pock, ISTA/FISTA).

The weighted square-root LASSO ``F(x) = λ ||x||_{ℓ¹_w} + ||A x − y||₂``, its two proximal maps
(soft thresholding and the projection onto the unit ℓ²-ball), input checks, and the base class that
turns an :class:`~pdesolve.problems.inverse.InverseProblem` into tensors and a ``SolveResult``.

>>> import torch
>>> soft_threshold(torch.tensor([-3.0, 0.5, 2.0]), 1.0).tolist()
[-2.0, 0.0, 1.0]
>>> project_l2_ball(torch.tensor([3.0, 4.0]), ndim=1).tolist()
[0.6, 0.8]
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.linalg.proximal import batched_norm, project_l2_ball, soft_threshold
from pdesolve.linalg.system import LinearSystem
from pdesolve.nn.checkpoint import check_device
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult

__all__ = [
    "InverseSolver",
    "check_measurements",
    "check_step_sizes",
    "project_l2_ball",
    "soft_threshold",
    "sr_lasso_objective",
]

def sr_lasso_objective(
    operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """``λ ||x||_{ℓ¹_w} + ||A x − y||₂`` per batch element."""
    nd = len(operator.domain_shape)
    absx = x.abs() if weights is None else weights * x.abs()
    return lam * absx.sum(dim=tuple(range(-nd, 0))) + batched_norm(
        operator.forward(x) - y, len(operator.range_shape)
    )


def check_measurements(operator: Any, y: Tensor) -> None:
    """Clear errors for measurements of the wrong length or with NaN/Inf entries."""
    operator.check_range(y)
    if not torch.isfinite(y).all():
        raise ValueError("measurements contain NaN or Inf entries")


def check_step_sizes(tau: float, sigma: float, norm_bound: float) -> None:
    """Assert the Chambolle–Pock condition ``τ σ L_A² <= 1`` (with ``L_A >= ||A||``)."""
    for name, value in (("tau", tau), ("sigma", sigma), ("L_A", norm_bound)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    product = tau * sigma * norm_bound**2
    if product > 1.0 + 1e-12:
        raise ValueError(
            f"step sizes violate the primal-dual condition tau*sigma*L_A^2 <= 1: "
            f"tau={tau:g}, sigma={sigma:g}, L_A={norm_bound:g} give {product:g}; "
            f"use e.g. tau = sigma = 1/L_A = {1.0 / norm_bound:g}"
        )


def resolve_norm_bound(operator: Any, norm_bound: float | None) -> float:
    """The ``L_A`` to use: the operator's bound, or a user value checked against a power-iteration
    estimate of ``||A||`` (a value below the estimate is an error)."""
    if norm_bound is None:
        return float(operator.norm_bound)
    estimate = operator.estimate_norm()
    if norm_bound < estimate * (1.0 - 1e-6):
        raise ValueError(
            f"L_A = {norm_bound:g} is smaller than ||A|| >= {estimate:g} (power iteration): "
            "L_A must bound the operator norm"
        )
    return float(norm_bound)


class InverseSolver(Solver):
    """Base for the solvers of ``InverseProblem`` s (``solves_problems = True``).

    Subclasses implement ``_run(operator, y, x0, lam, weights) -> (coefficients, info)`` where
    ``info`` holds ``residual_norms`` (initial first) and ``iterations``. The stopping options
    ``rtol``/``atol``/``maxiter`` are accepted for a uniform interface; fixed-depth methods
    (FIRENET) ignore ``rtol``/``atol`` and say so in ``reason`` (``CONVERGED_ITS``).
    """

    solves_problems = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        lam: float | None = None,
        weights: Any = None,
        device: str = "cpu",
        f_star: float | None = None,
    ) -> None:
        check_device(device)
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
        self.lam = lam
        self.weights = weights
        self.device = device
        self.f_star = f_star

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        raise TypeError(
            f"{self.name} solves sparse-regularised inverse problems, not linear systems: pass a "
            "problem from get_problem('compressed_sensing' | 'inexact_lasso' | 'poisson_source')"
        )

    def _tensors(
        self, problem: Any, x0: np.ndarray | None
    ) -> tuple[Tensor, Tensor | None, float, Tensor | None]:
        dev = torch.device(self.device)
        y = problem.measurements.to(dev)
        check_measurements(problem.operator, y)
        lam = float(problem.lam if self.lam is None else self.lam)
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"lam must be a finite positive number, got {lam!r}")
        weights = problem.weights if self.weights is None else self.weights
        if weights is not None:
            weights = torch.as_tensor(np.asarray(weights), dtype=torch.float64, device=dev)
            weights = weights.reshape(problem.operator.domain_shape)
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("weights must be finite and non-negative")
        if x0 is not None:
            x0 = torch.as_tensor(np.asarray(x0), dtype=torch.float64, device=dev)
            x0 = x0.reshape(problem.operator.domain_shape)
            if not torch.isfinite(x0).all():
                raise ValueError("x0 contains NaN or Inf entries")
        return y, x0, lam, weights

    def solve_problem(self, problem: Any, x0: np.ndarray | None = None) -> SolveResult:
        y, x0_t, lam, weights = self._tensors(problem, x0)
        start = time.perf_counter()
        coeffs, info = self._run(problem.operator, y, x0_t, lam, weights)
        wall = time.perf_counter() - start
        with torch.no_grad():
            objective = float(sr_lasso_objective(problem.operator, coeffs, y, lam, weights))
            image = problem.synthesize(coeffs)
        norms = np.asarray(info.pop("residual_norms"), dtype=float)
        reason = info.pop("reason", ConvergedReason.CONVERGED_ITS)
        if not np.all(np.isfinite(norms)):
            reason = ConvergedReason.DIVERGED_NANORINF
        extra: dict[str, Any] = {"solver": self.name, "lam": lam, "objective": objective}
        if self.f_star is not None:
            extra["objective_gap"] = objective - self.f_star
        if problem.coefficients is not None:
            truth = problem.coefficients.to(coeffs.device)
            extra["relative_error"] = float(
                batched_norm(coeffs - truth, coeffs.ndim) / batched_norm(truth, truth.ndim)
            )
        extra["coefficients"] = coeffs.detach().cpu().numpy()
        return SolveResult(
            x=image.detach().cpu().numpy(),
            converged=reason.converged,
            reason=reason,
            iterations=int(info.pop("iterations")),
            residual_norms=norms,
            wall_time=wall,
            info={**extra, **info, "setup_time": 0.0, "solve_time": wall},
        )

    def _run(
        self, operator: Any, y: Tensor, x0: Tensor | None, lam: float, weights: Tensor | None
    ) -> tuple[Tensor, dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError
