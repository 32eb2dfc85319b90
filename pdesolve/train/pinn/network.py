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
from torch.autograd.function import once_differentiable

from pdesolve.problems.base import PointCache

__all__ = ["PINN", "THIRD_ORDER", "HardInitial", "PeriodicFeatures", "distance_jet",
           "identity_jet", "mlp_diagonal_jet", "point_diagonal_jet", "point_jet",
           "supports_diagonal_jet"]


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


def point_diagonal_jet(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``fn(x)``, ``∇fn`` (N, d) and the diagonal second derivatives ``∂²fn/∂x_i²`` (N, d) of a
    parameter-free point function by autograd (detached)."""
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        value = fn(xx).reshape(-1)
        if not value.requires_grad:
            zero = torch.zeros_like(x)
            return value.detach().expand(x.shape[0]), zero, zero
        (grad,) = torch.autograd.grad(value.sum(), xx, create_graph=True)
        second = torch.zeros_like(x)
        for i in range(x.shape[1]):
            if grad[:, i].requires_grad:
                (row,) = torch.autograd.grad(grad[:, i].sum(), xx, retain_graph=True)
                second[:, i] = row[:, i]
    return value.detach(), grad.detach(), second.detach()


def identity_jet(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """The stacked diagonal jet of the input itself, shape ``(1 + d + k, N, d)``: channel 0 holds
    the values, channels ``1..d`` the derivatives ``∂/∂x_i``, the last ``k`` channels the second
    derivatives ``∂²/∂x_a²`` for the axes ``a`` in ``axes`` (default: all ``d``)."""
    n, d = x.shape
    axes = tuple(range(d)) if axes is None else tuple(axes)
    jet = x.new_zeros(1 + d + len(axes), n, d)
    jet[0] = x
    for i in range(d):
        jet[1 + i, :, i] = 1.0
    return jet


def _tanh_third(z: Tensor, out: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    t = torch.tanh(z, out=out)
    t2 = t * t
    d1 = 1.0 - t2
    return t, d1, (t * d1).mul_(-2.0), t2.mul_(6.0).sub_(2.0).mul_(d1)  # σ''' = σ'(6σ² - 2)


def _sin_third(z: Tensor, out: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    s, c = torch.sin(z, out=out), torch.cos(z)
    return s, c, -s, -c


#: the activations of the fused MLP jet: ``(σ, σ', σ'', σ''')`` in closed form (``σ``
#: written into ``out`` when given)
THIRD_ORDER: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]]] = {
    "tanh": _tanh_third,
    "sin": _sin_third,
}


def _pick(g: Tensor, axes: tuple[int, ...]) -> Tensor:
    """``g[:, axes]`` (the channel dimension), a view when the axes are consecutive."""
    if axes and axes == tuple(range(axes[0], axes[0] + len(axes))):
        return g[:, axes[0] : axes[0] + len(axes)]
    return g[:, list(axes)]


class _MLPJet(torch.autograd.Function):
    """The diagonal jet through an MLP, with a hand-written backward pass.

    Per hidden layer ``z = W h + b`` acts on every channel (the bias on the values only) and
    ``σ`` maps ``(z, ∂_i z, ∂²_a z)`` to ``(σ(z), σ' ∂_i z, σ' ∂²_a z + σ'' (∂_a z)²)``; the
    backward pass applies the adjoint of these formulas (it needs ``σ'''``) with one matrix
    product per layer for all channels, and only the second derivatives asked for are carried.
    With ``identity`` the input is the points themselves and the first layer's derivative
    channels are its weight columns (no product). First derivatives with respect to the
    weights only (no double backward).

    Inside, every layer's jet is stored feature-major, ``(width, channels, N)``, so that each
    layer is one product ``W @ H`` of a small square matrix with a long one (the layout in which
    BLAS runs these skinny products fastest); the input and the output keep the public
    ``(channels, N, features)`` layout.
    """

    @staticmethod
    def forward(ctx: Any, inp: Tensor, identity: bool, axes: tuple[int, ...],
                activations: tuple, *params: Tensor) -> Tensor:  # fmt: skip
        weights, biases = params[0::2], params[1::2]
        if identity:
            n, d = inp.shape
            h = inp.t()  # (d, N)
        else:
            d, n = inp.shape[0] - 1 - len(axes), inp.shape[1]
            h = inp.permute(2, 0, 1).contiguous()  # (features, C, N)
        c, k = 1 + d + len(axes), len(axes)
        saved: list[Tensor] = []
        for layer, (w, b, act) in enumerate(zip(weights[:-1], biases[:-1], activations,
                                                strict=True)):  # fmt: skip
            first = identity and layer == 0
            width = w.shape[0]
            nxt = h.new_empty(width, c, n)
            if first:  # z = W x + b: ∂_i z = W[:, i], ∂²z = 0
                z = torch.addmm(b[:, None], w, h)
                _, d1, d2, d3 = act(z, out=nxt[:, 0])
                g = w[:, :, None]
            else:
                z = (w @ h.reshape(h.shape[0], -1)).reshape(width, c, n)
                z[:, 0] += b[:, None]
                _, d1, d2, d3 = act(z[:, 0], out=nxt[:, 0])
                g = z[:, 1 : 1 + d]
            ga = _pick(g, axes)
            torch.mul(g, d1[:, None], out=nxt[:, 1 : 1 + d])
            if k:
                second = nxt[:, 1 + d :]
                torch.mul(ga * ga, d2[:, None], out=second)
                if not first:
                    second.addcmul_(z[:, 1 + d :], d1[:, None])
            saved += [h, z, d1, d2, d3]
            h = nxt
        w = weights[-1]
        out = (w @ h.reshape(h.shape[0], -1)).reshape(w.shape[0], c, n)
        out[:, 0] += biases[-1][:, None]
        ctx.save_for_backward(h, *weights, *saved)
        ctx.d, ctx.layers, ctx.axes, ctx.identity = d, len(weights), axes, identity
        return out.permute(1, 2, 0)  # (C, N, out)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        d, layers, axes = ctx.d, ctx.layers, ctx.axes
        k = len(axes)
        tensors = ctx.saved_tensors
        h, weights, saved = tensors[0], tensors[1 : 1 + layers], tensors[1 + layers :]
        grads: list[Tensor | None] = [None] * (2 * layers)
        c, n = grad_out.shape[0], grad_out.shape[1]
        gz = grad_out.permute(2, 0, 1).contiguous()  # (out, C, N)
        flat = gz.reshape(gz.shape[0], -1)
        grads[-2] = flat @ h.reshape(h.shape[0], -1).t()
        grads[-1] = gz[:, 0].sum(1)
        gh = (weights[-1].t() @ flat).reshape(h.shape[0], c, n)
        consecutive = bool(axes) and axes == tuple(range(axes[0], axes[0] + k))
        for layer in reversed(range(layers - 1)):
            h, z, d1, d2, d3 = saved[5 * layer : 5 * layer + 5]
            first = ctx.identity and layer == 0
            w = weights[layer]
            g = w[:, :, None] if first else z[:, 1 : 1 + d]
            ga = _pick(g, axes)
            gv, gg, gs = gh[:, 0], gh[:, 1 : 1 + d], gh[:, 1 + d :]
            if first:
                through_d1 = (gg * g).sum(1)
            else:  # Σ_i ∂_i-gradient · ∂_i z + Σ_a ∂²_a-gradient · ∂²_a z in one pass
                through_d1 = (gh[:, 1:] * z[:, 1:]).sum(1)
            gz = gh.new_empty(w.shape[0], c, n)
            dz = torch.mul(gv, d1, out=gz[:, 0])
            dz.addcmul_(through_d1, d2)
            dg = gz[:, 1 : 1 + d]
            torch.mul(gg, d1[:, None], out=dg)
            if k:
                gsg = gs * ga
                dz.addcmul_((gsg * ga).sum(1) if k > 1 else gsg[:, 0] * ga[:, 0], d3)
                if consecutive:
                    dg[:, axes[0] : axes[0] + k].addcmul_(gsg, d2[:, None], value=2.0)
                else:
                    dg.index_add_(1, torch.tensor(axes, device=dg.device),
                                  2.0 * d2[:, None] * gsg)  # fmt: skip
            if first:
                grads[0] = dz @ h.t() + dg.sum(2)
                grads[1] = dz.sum(1)
                gh = None
                break
            if k:
                torch.mul(gs, d1[:, None], out=gz[:, 1 + d :])
            flat = gz.reshape(gz.shape[0], -1)
            grads[2 * layer] = flat @ h.reshape(h.shape[0], -1).t()
            grads[2 * layer + 1] = dz.sum(1)
            if layer > 0 or ctx.needs_input_grad[0]:
                gh = (w.t() @ flat).reshape(w.shape[1], c, n)
            else:
                gh = None
        if gh is not None:
            gh = gh.permute(1, 2, 0)  # back to the input's (C, N, features)
        return (gh, None, None, None, *grads)


def mlp_diagonal_jet(network: nn.Module, inp: Tensor, axes: Sequence[int] | None = None,
                     identity: bool = False) -> Tensor:  # fmt: skip
    """The stacked diagonal jet ``(1 + d + k, N, out)`` of an MLP's output (channels as in
    :func:`identity_jet`, second derivatives along ``axes``) for the input jet ``inp``, or for
    the points ``inp`` (N, d) themselves when ``identity``; differentiable in the weights
    (fused backward)."""
    d = inp.shape[1] if identity else None
    if axes is None:
        axes = range(d if d is not None else (inp.shape[0] - 1) // 2)
    linears = [m for m in network.layers if isinstance(m, nn.Linear)]
    activations = tuple(THIRD_ORDER[m.name] for m in network.layers
                        if not isinstance(m, nn.Linear))  # fmt: skip
    params = [p for lin in linears for p in (lin.weight, lin.bias)]
    return _MLPJet.apply(inp, identity, tuple(int(a) for a in axes), activations, *params)


def supports_diagonal_jet(network: nn.Module) -> bool:
    """Whether :func:`mlp_diagonal_jet` works: an MLP of biased linear layers alternating with
    element-wise activations whose third derivative is known (``tanh``, ``sin``)."""
    from pdesolve.nn.mlp import MLP

    if not isinstance(network, MLP):
        return False
    layers = list(network.layers)
    if [isinstance(m, nn.Linear) for m in layers] != [i % 2 == 0 for i in range(len(layers))]:
        return False
    return all(m.bias is not None for m in layers if isinstance(m, nn.Linear)) and all(
        type(m).__name__ == "_Elementwise" and getattr(m, "name", None) in THIRD_ORDER
        for m in layers if not isinstance(m, nn.Linear))  # fmt: skip


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

    def jet(self, x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
        """The stacked diagonal jet ``(1 + d + k, N, out_dim)`` of the features (channels as in
        :func:`identity_jet`), in closed form."""
        n, d = x.shape
        axes = list(range(d)) if axes is None else [int(a) for a in axes]
        jet = x.new_zeros(1 + d + len(axes), n, self.out_dim)
        jet[0] = self(x)
        k = torch.arange(1, self.modes + 1, dtype=x.dtype, device=x.device)
        col = 0
        for i in range(d):
            if i < len(self.periodic) and self.periodic[i]:
                cols = slice(col, col + 2 * self.modes)
                rate = (2.0 * math.pi / self.lengths[i]) * k
                cos = jet[0, :, col : col + self.modes]
                sin = jet[0, :, col + self.modes : cols.stop]
                jet[1 + i, :, cols] = torch.cat([-rate * sin, rate * cos], 1)
                if i in axes:
                    jet[1 + d + axes.index(i), :, cols] = -(rate * rate).repeat(2) * jet[0, :, cols]
                col += 2 * self.modes
            else:
                jet[1 + i, :, col] = 1.0
                col += 1
        return jet


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

    def parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(base, factor)`` of ``u = base + factor · N`` at points ``x`` (parameter-free)."""
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
        return base, factor

    def forward(self, x: Tensor, out: Tensor) -> Tensor:
        base, factor = self.parts(x)
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
        return predict_points(self, points, chunk)

    @property
    def supports_diagonal_jet(self) -> bool:
        """Whether :meth:`diagonal_jet` works: an MLP with ``tanh``/``sin`` activations (see
        :func:`supports_diagonal_jet`) and no input map other than :class:`PeriodicFeatures`."""
        features_ok = self.features is None or isinstance(self.features, PeriodicFeatures)
        return features_ok and supports_diagonal_jet(self.network)

    def _input_parts(self, x: Tensor, axes: tuple[int, ...]) -> tuple:
        """The parameter-free parts of the jet at ``x``: the input (feature) jet and the jets of
        ``base`` and ``factor`` in ``u = base + factor · N``; kept for the last few ``x`` seen,
        so that a fixed collocation set computes them once."""
        # the same memory, unchanged (a detached copy of the batch counts as the same); the
        # cache holds the tensor, so its memory cannot be reused by another one meanwhile
        key = (x.data_ptr(), x._version, tuple(x.shape), x.stride(), x.dtype, x.device, axes)
        cache = self.__dict__.setdefault("_jet_cache", [])
        for _, seen_key, parts in cache:
            if seen_key == key:
                return parts
        given, x = x, x.detach()
        jet = None if self.features is None else self.features.jet(x, axes)
        base = factor = None
        if self.initial is not None:
            initial = self.initial
            base = point_diagonal_jet(lambda y: initial.parts(y)[0], x)
            factor = point_diagonal_jet(lambda y: initial.parts(y)[1], x)
        elif self.distance is not None:
            factor = point_diagonal_jet(self.distance, x)
            if self.lift is not None:
                base = point_diagonal_jet(self.lift, x)
        parts = (jet, base, factor)
        cache.insert(0, (given, key, parts))
        del cache[3:]  # the training batch, the monitor set and one more
        return parts

    def diagonal_jet(
        self, x: Tensor, axes: Sequence[int] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``u`` (N,), ``∇u`` (N, d) and the diagonal second derivatives ``∂²u/∂x_a²`` (N, d;
        zero for axes not in ``axes``, default all) in one fused forward pass
        (:func:`mlp_diagonal_jet`); the hard-constraint factors enter by the product rule,
        ``∂²(fN) = f ∂²N + 2 ∂f ∂N + N ∂²f``."""
        d = x.shape[1]
        axes = tuple(range(d)) if axes is None else tuple(int(a) for a in axes)
        jet, base, factor = self._input_parts(x, axes)
        if jet is None:
            out = mlp_diagonal_jet(self.network, x.detach(), axes, identity=True)[..., 0]
        else:
            out = mlp_diagonal_jet(self.network, jet, axes)[..., 0]
        value, grad, second = out[0], out[1 : 1 + d].t(), out[1 + d :].t()
        every = axes == tuple(range(d))
        pick = slice(None) if every else list(axes)
        if factor is not None:
            fv, fg, fs = factor
            value, grad, second = (
                fv * value, fv[:, None] * grad + fg * value[:, None],
                fv[:, None] * second + 2.0 * fg[:, pick] * grad[:, pick]
                + fs[:, pick] * value[:, None],
            )  # fmt: skip
        if base is not None:
            value, grad, second = value + base[0], grad + base[1], second + base[2][:, pick]
        if not every:
            index = torch.tensor(axes, device=x.device, dtype=torch.long)
            second = x.new_zeros(x.shape[0], d).index_copy(1, index, second)
        return value, grad, second

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


def predict_points(model: nn.Module, points: Any, chunk: int = 65_536) -> np.ndarray:
    """``model`` evaluated without gradients at user points (array-like ``(N, dim)``), in
    chunks of ``chunk`` rows, on the model's device and dtype: float64 numpy of shape (N,)."""
    p = next(model.parameters())
    x = torch.as_tensor(np.asarray(points, dtype=np.float64))
    if x.ndim != 2:
        raise ValueError(f"points must have shape (N, dim), got {tuple(x.shape)}")
    x = x.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        out = [model(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)
