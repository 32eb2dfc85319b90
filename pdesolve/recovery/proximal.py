"""Shared pieces of the recovery methods (FIRENET, Chambolle–Pock, ISTA/FISTA).

The weighted square-root LASSO ``F(x) = λ ||x||_{ℓ¹_w} + ||A x − y||₂``, its two proximal maps
(soft thresholding and the projection onto the unit ℓ²-ball), batched norms and input checks.

>>> import torch
>>> soft_threshold(torch.tensor([-3.0, 0.5, 2.0]), 1.0).tolist()
[-2.0, 0.0, 1.0]
>>> project_l2_ball(torch.tensor([3.0, 4.0]), ndim=1).tolist()
[0.6, 0.8]
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_measurements",
    "check_step_sizes",
    "lasso_objective",
    "project_l2_ball",
    "resolve_norm_bound",
    "soft_threshold",
    "sr_lasso_objective",
    "vector_norm",
]

_TINY = 1e-300


def soft_threshold(v: Tensor, threshold: Tensor | float) -> Tensor:
    """The prox of ``t ||·||₁`` elementwise: ``v · max(1 − t/|v|, 0)`` (real or complex ``v``)."""
    if v.is_complex():
        mag = v.abs()
        return v * (torch.relu(mag - threshold) / mag.clamp_min(_TINY))
    return torch.sign(v) * torch.relu(v.abs() - threshold)


def project_l2_ball(z: Tensor, radius: float = 1.0, ndim: int = 1) -> Tensor:
    """Project each ``z`` (norm over the last ``ndim`` axes) onto ``{||z||₂ <= radius}``."""
    dims = tuple(range(-ndim, 0))
    norm = torch.linalg.vector_norm(z, dim=dims, keepdim=True)
    return z * torch.clamp(radius / norm.clamp_min(_TINY), max=1.0)


def vector_norm(v: Tensor, ndim: int) -> Tensor:
    """The 2-norm over the last ``ndim`` axes (one value per batch element)."""
    return torch.linalg.vector_norm(v, dim=tuple(range(-ndim, 0)))


def sr_lasso_objective(
    operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """``λ ||x||_{ℓ¹_w} + ||A x − y||₂`` per batch element."""
    nd = len(operator.domain_shape)
    absx = x.abs() if weights is None else weights * x.abs()
    return lam * absx.sum(dim=tuple(range(-nd, 0))) + vector_norm(
        operator.forward(x) - y, len(operator.range_shape)
    )


def lasso_objective(
    operator: Any, x: Tensor, y: Tensor, lam: float, weights: Tensor | None = None
) -> Tensor:
    """``λ ||x||_{ℓ¹_w} + ½ ||A x − y||₂²`` per batch element (what ISTA/FISTA minimise)."""
    nd = len(operator.domain_shape)
    absx = x.abs() if weights is None else weights * x.abs()
    misfit = vector_norm(operator.forward(x) - y, len(operator.range_shape))
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
