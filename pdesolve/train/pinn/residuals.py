"""PDE residuals for PINN training: the forward-mode (jet) form of diffusion-type equations.

``jet_residual(problem)`` returns the residual as a function of ``(x, u, ∇u, Δu)`` when one is
known (the problem's own ``pde_residual_from_derivatives``, or the generic ``-∇·(k∇u) - f`` of
:class:`pdesolve.problems.base.Problem`), else None: the trainer then differentiates the
network by nested autograd through ``problem.pde_residual``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from pdesolve.problems.base import Problem
from pdesolve.train.pinn.network import point_jet

__all__ = ["diffusion_residual_from_jet", "jet_residual"]


def diffusion_residual_from_jet(
    problem: Any, x: Tensor, u: Tensor, grad: Tensor, lap: Tensor
) -> Tensor:
    """``-∇·(k∇u) - f = -(kΔu + ∇k·∇u) - f`` from the jet of ``u`` (``Problem.pde_residual``'s
    equation; ``k`` and ``∇k`` by autograd on the coefficient alone)."""
    k, kgrad, _ = point_jet(problem.coefficient, x)
    r = -k * lap - problem.source(x)
    if kgrad is not None:
        r = r - (kgrad * grad).sum(dim=1)
    return r


def jet_residual(problem: Any) -> Callable[..., Tensor] | None:
    """The problem's residual as a function of ``(x, u, ∇u, Δu)``, or None when it has none (the
    residual is then computed by nested autograd through ``problem.pde_residual``)."""
    own = getattr(problem, "pde_residual_from_derivatives", None)
    if own is not None:
        return own
    if getattr(type(problem), "pde_residual", None) is Problem.pde_residual:
        return lambda x, u, grad, lap: diffusion_residual_from_jet(problem, x, u, grad, lap)
    return None
