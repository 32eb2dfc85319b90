"""Shared pieces of the recovery methods (FIRENET, Chambolle–Pock, ISTA/FISTA).

The weighted square-root LASSO ``F(x) = λ ||x||_{ℓ¹_w} + ||A x − y||₂`` and the LASSO
``λ ||x||_{ℓ¹_w} + ½ ||A x − y||₂²``, and the input checks; the proximal maps are in
:mod:`pdesolve.linalg.proximal`.

>>> import torch
>>> from pdesolve.problems.inverse_operators import MatrixOperator
>>> A = MatrixOperator(torch.eye(2, dtype=torch.float64))
>>> x = torch.tensor([1.0, 0.0], dtype=torch.float64)
>>> y = torch.tensor([1.0, 2.0], dtype=torch.float64)
>>> float(sr_lasso_objective(A, x, y, lam=0.5)), float(lasso_objective(A, x, y, lam=0.5))
(2.5, 2.5)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from pdesolve.linalg.proximal import batched_norm

__all__ = [
    "check_measurements",
    "check_step_sizes",
    "lasso_objective",
    "resolve_norm_bound",
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


def lasso_objective(
    operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """``λ ||x||_{ℓ¹_w} + ½ ||A x − y||₂²`` per batch element (what ISTA/FISTA minimise)."""
    nd = len(operator.domain_shape)
    absx = x.abs() if weights is None else weights * x.abs()
    misfit = batched_norm(operator.forward(x) - y, len(operator.range_shape))
    return lam * absx.sum(dim=tuple(range(-nd, 0))) + 0.5 * misfit**2


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
