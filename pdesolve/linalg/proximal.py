"""Proximal maps of the sparse-recovery methods, on torch tensors (real or complex).

>>> import torch
>>> soft_threshold(torch.tensor([-3.0, 0.5, 2.0]), 1.0).tolist()
[-2.0, 0.0, 1.0]
>>> project_l2_ball(torch.tensor([3.0, 4.0]), ndim=1).tolist()
[0.6, 0.8]
"""

from __future__ import annotations

import torch
from torch import Tensor

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


def batched_norm(v: Tensor, ndim: int) -> Tensor:
    """The 2-norm of each ``v`` over its last ``ndim`` axes."""
    return torch.linalg.vector_norm(v, dim=tuple(range(-ndim, 0)))
