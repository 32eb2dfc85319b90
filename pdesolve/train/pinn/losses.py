"""PINN loss terms: weighted mean squares of residual vectors, and the Rayleigh quotient.

Every loss is computed from one stacked prediction vector (what CurveBall needs): the PDE
residual at the collocation points, then the boundary misfit, the initial-condition misfit and
the observation misfit, each term ``w_k mean(r_k²)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from pdesolve.problems.base import gradient

__all__ = ["rayleigh_loss", "stacked_loss"]


def stacked_loss(
    terms: Sequence[tuple[str, Tensor, float]],
    first: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """``(cat(r_k), Σ_k w_k mean(r_k²))`` for ``terms = [(name, r_k, w_k), ...]``.

    ``first`` replaces ``mean(r_0²)`` for the first term (the PDE residual), e.g. by the
    causally weighted mean; a single plain term gives ``mean(r²)``.
    """
    if len(terms) == 1 and first is None:
        r = terms[0][1]
        return r, torch.mean(r * r)
    preds = torch.cat([r for _, r, _ in terms])
    loss: Tensor | None = None
    start = 0
    for i, (_, r, weight) in enumerate(terms):
        part = preds[start : start + r.shape[0]]
        start += r.shape[0]
        if i == 0:
            value = first(part) if first is not None else torch.mean(part**2)
            loss = value if weight == 1.0 else weight * value
        else:
            loss = loss + weight * torch.mean(part**2)
    assert loss is not None
    return preds, loss


def rayleigh_loss(model: Callable[[Tensor], Tensor], x: Tensor,
                  normalization_weight: float) -> tuple[Tensor, Tensor]:
    """``∫|∇u|²/∫u² + w (∫u² - 1)²`` by Monte Carlo at ``x`` (eigenvalue problems)."""
    x = x.detach().requires_grad_(True)
    u = model(x)
    grad = gradient(u, x)
    preds = torch.cat([u, grad.reshape(-1)])
    n = u.shape[0]
    uu, gg = preds[:n], preds[n:].reshape(n, -1)
    mass = torch.mean(uu * uu)
    loss = torch.mean(torch.sum(gg * gg, dim=1)) / mass
    loss = loss + normalization_weight * (mass - 1.0) ** 2
    return preds, loss
