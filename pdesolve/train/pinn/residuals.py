"""PDE residuals for PINN training from forward-mode derivatives (jets) of the network.

* Stationary diffusion-type equations: ``jet_residual(problem)`` returns the residual as a
  function of ``(x, u, ∇u, Δu)`` when one is known (the problem's own
  ``pde_residual_from_derivatives``, or the generic ``-∇·(k∇u) - f`` of
  :class:`pdesolve.problems.base.Problem`), else None.
* Time-dependent problems: :func:`space_time_residual` evaluates the problem's own
  ``pde_residual(u, xt)`` on the local quadratic model of the network,
  ``q(y) = u + ∇u·(y - x) + ½ Σ_i ∂²u/∂x_i² (y_i - x_i)²`` built point-wise from the fused jet
  (:meth:`pdesolve.train.pinn.network.PINN.diagonal_jet`). At ``y = x`` its value and its first
  and diagonal second derivatives are exactly those of the network, so any residual made of
  them is unchanged, while the nested autograd inside ``pde_residual`` now runs through a few
  element-wise operations instead of the network. Mixed second derivatives of ``q`` vanish:
  :func:`surrogate_agrees` checks a problem against nested autograd before the trainer uses it.
  :class:`SpaceTimeResidual` is what the trainer calls: when the residual is affine in the jet
  (heat, wave: ``r = a u + b·∇u + c·∂²u - f`` with parameter-free ``a, b, c, f``), it finds
  that once and keeps the coefficients at each fixed point set, so that a training step
  evaluates ``r`` in a few element-wise operations, without autograd through the problem's
  coefficient, source or the quadratic model.

Otherwise the trainer differentiates the network by nested autograd through
``problem.pde_residual``.

>>> import torch
>>> x = torch.tensor([[0.5, 0.25]], dtype=torch.float64)
>>> u, grad, second = torch.tensor([1.0]), torch.tensor([[2.0, 3.0]]), torch.tensor([[4.0, 5.0]])
>>> q = quadratic_model(x, u.double(), grad.double(), second.double())
>>> y = x.clone().requires_grad_(True)
>>> (g,) = torch.autograd.grad(q(y).sum(), y, create_graph=True)
>>> g.tolist(), torch.autograd.grad(g[:, 0].sum(), y)[0].tolist()
([[2.0, 3.0]], [[4.0, 0.0]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from pdesolve.problems.base import PointCache, Problem
from pdesolve.train.pinn.network import point_jet

__all__ = ["SpaceTimeResidual", "affine_coefficients", "diffusion_residual_from_jet",
           "jet_residual", "quadratic_model",
           "second_derivative_axes", "space_time_residual", "surrogate_agrees"]  # fmt: skip


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


def quadratic_model(
    x: Tensor, u: Tensor, grad: Tensor, second: Tensor
) -> Callable[[Tensor], Tensor]:
    """``q(y) = u + ∇u·(y - x) + ½ Σ_i ∂²u/∂x_i² (y_i - x_i)²`` row-wise (``y`` at the points
    ``x``): the same value, gradient and diagonal second derivatives as the network at ``x``."""
    x = x.detach()

    def q(y: Tensor) -> Tensor:
        dy = y - x
        return u + (grad * dy).sum(dim=1) + 0.5 * (second * dy * dy).sum(dim=1)

    return q


def space_time_residual(
    problem: Any, model: Any, x: Tensor, axes: Sequence[int] | None = None
) -> Tensor:
    """``problem.pde_residual`` at ``x`` from the fused jet of ``model`` (a
    :class:`pdesolve.train.pinn.network.PINN` with ``supports_diagonal_jet``), with second
    derivatives along ``axes`` only (default all); keeps the graph to the weights when grad
    is on."""
    q = quadratic_model(x, *model.diagonal_jet(x, axes))
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        return problem.pde_residual(q, y).reshape(-1)


def _residual_of_jet(problem: Any, x: Tensor, u: Tensor, grad: Tensor, second: Tensor) -> Tensor:
    with torch.enable_grad():
        y = x.detach().requires_grad_(True)
        return problem.pde_residual(quadratic_model(x, u, grad, second), y).reshape(-1)


def affine_coefficients(problem: Any, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(r0, a, b, c)`` (detached) with ``r = r0 + a u + Σ_i b_i ∂_i u + Σ_i c_i ∂²_i u`` the
    linearisation of ``problem.pde_residual`` at the zero jet, point by point at ``x``; the
    residual equals it exactly when it is affine in the jet (:class:`SpaceTimeResidual`
    checks that)."""
    n, d = x.shape
    x = x.detach()
    with torch.enable_grad():
        jet = (x.new_zeros(n, requires_grad=True), x.new_zeros(n, d, requires_grad=True),
               x.new_zeros(n, d, requires_grad=True))  # fmt: skip
        r = _residual_of_jet(problem, x, *jet)
        # the residual is point-wise, so the gradient of the sum holds each point's own row
        parts = torch.autograd.grad(r.sum(), jet, allow_unused=True) if r.requires_grad \
            else (None,) * 3
    a, b, c = (torch.zeros_like(z) if g is None else g for g, z in zip(parts, jet, strict=True))
    return r.detach(), a, b, c


class SpaceTimeResidual:
    """:func:`space_time_residual` for one problem, with affine residuals evaluated from cached
    coefficients.

    On first use it tests whether the residual is affine in the jet ``(u, ∇u, ∂²u)`` (two
    seeded random jets at the first points seen must match the linearisation of
    :func:`affine_coefficients` to ``rtol``). If so, the coefficients at each point set are
    computed once (kept for the last few unmodified point sets, like
    :class:`pdesolve.problems.base.PointCache`; new or changed points get new ones) and the
    residual is ``r0 + a u + b·∇u + c·∂²u`` of the network's jet; otherwise every call is
    :func:`space_time_residual`. Either way the value is that of ``problem.pde_residual`` on the
    network's jet (to rounding).
    """

    def __init__(self, problem: Any, axes: Sequence[int] | None = None,
                 rtol: float = 1e-9) -> None:  # fmt: skip
        self.problem = problem
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.rtol = float(rtol)
        self.affine: bool | None = None  # unknown until the first call
        self._coefficients = PointCache(4)

    def _is_affine(self, x: Tensor) -> bool:
        r0, a, b, c = affine_coefficients(self.problem, x)
        gen = torch.Generator().manual_seed(0)
        n, d = x.shape
        for _ in range(2):
            u, g, s = (torch.randn(shape, generator=gen, dtype=torch.float64).to(x)
                       for shape in ((n,), (n, d), (n, d)))  # fmt: skip
            with torch.no_grad():
                exact = _residual_of_jet(self.problem, x, u, g, s).detach()
            linear = r0 + a * u + (b * g).sum(dim=1) + (c * s).sum(dim=1)
            scale = max(float(exact.abs().max()), float(r0.abs().max()), 1.0)
            if not bool((exact - linear).abs().max() <= self.rtol * scale):
                return False
        return True

    def __call__(self, model: Any, x: Tensor) -> Tensor:
        """The residual of ``model`` (a :class:`pdesolve.train.pinn.network.PINN`) at ``x``;
        keeps the graph to the weights when grad is on."""
        if self.affine is None:
            self.affine = self._is_affine(x)
        if not self.affine:
            return space_time_residual(self.problem, model, x, self.axes)
        r0, a, b, c = self._coefficients(lambda p: affine_coefficients(self.problem, p), x)
        u, grad, second = model.diagonal_jet(x, self.axes)
        return r0 + a * u + (b * grad).sum(dim=1) + (c * second).sum(dim=1)


def second_derivative_axes(problem: Any, model: Any, x: Tensor) -> tuple[int, ...]:
    """The axes whose second derivative ``problem.pde_residual`` uses, found at the points ``x``
    (the residual's sensitivity to each ``∂²u/∂x_a²`` of the quadratic model)."""
    with torch.enable_grad():
        u, grad, second = (t.detach() for t in model.diagonal_jet(x))
        second.requires_grad_(True)
        y = x.detach().requires_grad_(True)
        r = problem.pde_residual(quadratic_model(x, u, grad, second), y).reshape(-1)
        (sens,) = torch.autograd.grad(r.square().sum(), second, allow_unused=True)
    if sens is None:
        return ()
    return tuple(int(a) for a in torch.nonzero(sens.abs().amax(dim=0) > 0).reshape(-1))


def surrogate_agrees(problem: Any, model: Any, x: Tensor, axes: Sequence[int] | None = None,
                     rtol: float = 1e-9) -> bool:  # fmt: skip
    """Whether :func:`space_time_residual` equals nested autograd through ``model`` at ``x``
    (False for a residual with mixed second derivatives, which the quadratic model lacks, or
    with second derivatives outside ``axes``)."""
    fast = space_time_residual(problem, model, x, axes).detach()
    with torch.enable_grad():
        slow = problem.pde_residual(model, x.detach().clone().requires_grad_(True)).detach()
    scale = max(float(slow.abs().max()), 1.0)
    return bool((fast - slow).abs().max() <= rtol * scale)
