"""The PINN network wrapper: input features and hard constraints around a plain network.

``PINN(network, distance=None)`` is ``u(x) = D(x) N(x)`` (a hard zero Dirichlet condition through
the domain's distance function ``D``) or ``N(x)``; with ``lift`` (a smooth extension ``G`` of
non-zero Dirichlet data, :func:`pdesolve.problems.geometry.boundary_lift`) it is
``u = G(x) + D(x) N(x)``. For time-dependent problems it also takes

* ``features``: an input map applied before the network, e.g. :class:`PeriodicFeatures`, which
  replaces a periodic coordinate ``x`` of period ``L`` by ``cos(2πkx/L), sin(2πkx/L)``,
  ``k = 1..K``, so that every network output is exactly periodic in ``x`` (hard periodicity);
* ``initial``: a hard initial condition ``u = u0(x) + τ(t) D(x) N(x, t)`` with
  ``τ(t) = (t - t0) / (t1 - t0)`` (time is the last input column); for second-order equations
  in time with initial velocity ``v0``, ``u = u0(x) + (t - t0) v0(x) + τ(t)² D(x) N(x, t)``;
  with a lift ``G(x, t)`` of the boundary data, ``u = G(x, t) + u0(x) - G(x, t0) + τ D N``,
  which meets both the initial and the boundary data (when they agree at ``t0``).

>>> import torch
>>> net = torch.nn.Linear(2, 1).double()
>>> model = PINN(net, features=PeriodicFeatures(periodic=(True,), lengths=(2.0,), modes=2))
>>> x = torch.tensor([[-1.0, 0.3], [1.0, 0.3]], dtype=torch.float64)
>>> model.network = torch.nn.Linear(model.features.out_dim, 1).double()
>>> u = model(x)
>>> bool(torch.allclose(u[0], u[1]))  # x = -1 and x = 1 are the same point
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.problems.base import PointCache

__all__ = ["PINN", "HardInitial", "PeriodicFeatures", "distance_jet", "point_jet"]


def point_jet(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """``fn(x)``, ``∇fn`` and ``Δfn`` of a cheap, parameter-free point function by autograd
    (detached; ``∇fn`` is None when ``fn`` does not depend on ``x``)."""
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        value = fn(xx).reshape(-1)
        if not value.requires_grad:
            return value.detach(), None, torch.zeros_like(value)
        (grad,) = torch.autograd.grad(value.sum(), xx, create_graph=True)
        lap = torch.zeros_like(value)
        for i in range(x.shape[1]):
            if grad[:, i].requires_grad:
                (second,) = torch.autograd.grad(grad[:, i].sum(), xx, retain_graph=True)
                lap = lap + second[:, i]
    return value.detach(), grad.detach(), lap.detach()


def _box_distance_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``D = Π x_i(1-x_i)`` (``UnitBox.distance``) with ``∇D`` and ``ΔD`` in closed form."""
    p = x * (1.0 - x)
    n = x.shape[0]
    ones = torch.ones(n, 1, dtype=x.dtype, device=x.device)
    before = torch.cumprod(torch.cat([ones, p[:, :-1]], dim=1), dim=1)  # Π_{j<i} p_j
    after = torch.cumprod(torch.cat([ones, p.flip(1)[:, :-1]], dim=1), dim=1).flip(1)  # j>i
    others = before * after
    return before[:, -1] * p[:, -1], (1.0 - 2.0 * x) * others, -2.0 * others.sum(dim=1)


def _ball_distance_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``D = 1 - |x|`` (``UnitBall.distance``): ``∇D = -x/|x|``, ``ΔD = -(d-1)/|x|``."""
    r = x.norm(dim=1)
    return 1.0 - r, -x / r[:, None], -(x.shape[1] - 1) / r


def distance_jet(
    fn: Callable[[Tensor], Tensor], x: Tensor
) -> tuple[Tensor, Tensor | None, Tensor]:
    """The jet of a distance function: closed form for the unit box and ball, else autograd."""
    from pdesolve.problems.ball import UnitBall
    from pdesolve.problems.domains import UnitBox

    owner = getattr(fn, "__func__", None)
    if owner is UnitBox.distance:
        return _box_distance_jet(x)
    if owner is UnitBall.distance:
        return _ball_distance_jet(x)
    return point_jet(fn, x)


class PeriodicFeatures(nn.Module):
    """Inputs with the periodic axes replaced by ``K`` Fourier modes (hard periodicity).

    ``periodic[i]`` says whether input column ``i`` is periodic with period ``lengths[i]``; the
    other columns (time included) pass through unchanged.
    """

    def __init__(self, periodic: Sequence[bool], lengths: Sequence[float], modes: int = 1):
        super().__init__()
        if modes < 1:
            raise ValueError(f"periodic features need modes >= 1, got {modes}")
        if len(periodic) != len(lengths):
            raise ValueError("periodic and lengths must have one entry per spatial axis")
        self.periodic = tuple(bool(p) for p in periodic)
        self.lengths = tuple(float(v) for v in lengths)
        self.modes = int(modes)
        self.in_dim = len(self.periodic) + 1  # time last
        self.out_dim = self.in_dim + sum(self.periodic) * (2 * self.modes - 1)

    def forward(self, x: Tensor) -> Tensor:
        cols: list[Tensor] = []
        k = torch.arange(1, self.modes + 1, dtype=x.dtype, device=x.device)
        for i in range(x.shape[1]):
            if i < len(self.periodic) and self.periodic[i]:
                phase = (2.0 * math.pi / self.lengths[i]) * x[:, i : i + 1] * k
                cols += [torch.cos(phase), torch.sin(phase)]
            else:
                cols.append(x[:, i : i + 1])
        return torch.cat(cols, dim=1)


class HardInitial(nn.Module):
    """``u = u0(x) + τ(t) · D(x) · N`` with ``τ = (t - t0)/(t1 - t0)``; ``D = 1`` without a
    spatial distance (soft or periodic boundaries). With ``initial_velocity`` ``v0`` (equations
    of second order in time) ``u = u0 + (t - t0) v0 + τ² D N``, so that ``u_t(x, t0) = v0``.
    Time is the last input column."""

    def __init__(
        self,
        initial_value: Callable[[Tensor], Tensor],
        t_span: Sequence[float],
        space_distance: Callable[[Tensor], Tensor] | None = None,
        initial_velocity: Callable[[Tensor], Tensor] | None = None,
        lift: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.lift = lift
        self.initial_value = initial_value
        self.initial_velocity = initial_velocity
        self.t0, self.t1 = float(t_span[0]), float(t_span[1])
        self.space_distance = space_distance

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        space, t = x[:, :-1], x[:, -1]
        factor = (t - self.t0) / (self.t1 - self.t0)
        base = self.initial_value(space).reshape(-1)
        if self.initial_velocity is not None:
            factor = factor * factor
            base = base + (t - self.t0) * self.initial_velocity(space).reshape(-1)
        if self.space_distance is not None:
            factor = factor * self.space_distance(space).reshape(-1)
        if self.lift is not None:
            start = x.clone()
            start[:, -1] = self.t0
            base = base + self.lift(x).reshape(-1) - self.lift(start).reshape(-1)
        return base + factor * out


class PINN(nn.Module):
    """``u(x) = G(x) + D(x) N(x)`` (hard constraint: ``distance`` ``D`` and, for non-zero data,
    ``lift`` ``G`` given) or ``N(x)``; output shape (N,).

    ``features`` (an input map such as :class:`PeriodicFeatures`) and ``initial`` (a
    :class:`HardInitial`) are the time-dependent options; see the module docstring.
    """

    def __init__(
        self,
        network: nn.Module,
        distance: Callable[[Tensor], Tensor] | None = None,
        *,
        features: nn.Module | None = None,
        initial: HardInitial | None = None,
        lift: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if lift is not None and distance is None:
            raise ValueError("a boundary lift needs the distance function of the same domain")
        self.network = network
        self.distance = distance
        self.features = features
        self.initial = initial
        self.lift = lift
        self._distance_jets, self._lift_jets = PointCache(8), PointCache(8)

    def forward(self, x: Tensor) -> Tensor:
        z = x if self.features is None else self.features(x)
        out = self.network(z).reshape(-1)
        if self.initial is not None:
            return self.initial(x, out)
        if self.distance is None:
            return out
        u = self.distance(x) * out
        return u if self.lift is None else u + self.lift(x).reshape(-1)

    def predict(self, points: Any, chunk: int = 65_536) -> np.ndarray:
        """``u`` at user points (array-like of shape (N, dim); for time-dependent problems the
        columns are ``(x_1, ..., x_d, t)``), as a float64 numpy array of shape (N,)."""
        p = next(self.network.parameters())
        x = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if x.ndim != 2:
            raise ValueError(f"points must have shape (N, dim), got {tuple(x.shape)}")
        x = x.to(device=p.device, dtype=p.dtype)
        with torch.no_grad():
            out = [self(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
        return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)

    @property
    def supports_jet(self) -> bool:
        """Whether :meth:`jet` works (MLP/ResNet with closed-form activation derivatives, no
        input features, no hard initial condition)."""
        plain = self.features is None and self.initial is None
        return plain and bool(getattr(self.network, "supports_jet", False))

    def jet(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``u``, ``∇u`` (N, d) and ``Δu`` (N,) in one forward pass (forward Laplacian); the
        distance factor enters by the product rule ``Δ(DN) = DΔN + 2∇D·∇N + NΔD``."""
        value, grad, lap = self.network.jet(x)
        value, grad, lap = value[:, 0], grad[:, :, 0], lap[:, 0]
        if self.distance is None:
            return value, grad, lap
        d, dgrad, dlap = self._fixed_jet("distance", x)
        if dgrad is None:
            value, grad, lap = d * value, d[:, None] * grad, d * lap
        else:
            value, grad, lap = (d * value, d[:, None] * grad + value[:, None] * dgrad,
                                d * lap + 2.0 * (dgrad * grad).sum(dim=1) + value * dlap)
        if self.lift is not None:
            g, ggrad, glap = self._fixed_jet("lift", x)
            value, lap = value + g, lap + glap
            grad = grad if ggrad is None else grad + ggrad
        return value, grad, lap

    def _fixed_jet(self, which: str, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """The jet of the (parameter-free) distance or lift at ``x``, reused while the same
        unmodified points come back (fixed collocation sets)."""
        if which == "distance":
            assert self.distance is not None
            return self._distance_jets(lambda p: distance_jet(self.distance, p), x)
        assert self.lift is not None
        return self._lift_jets(lambda p: point_jet(self.lift, p), x)
