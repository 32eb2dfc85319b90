"""CurveBall: a second-order optimizer with one Newton-step estimate updated per iteration.

Henriques, Ehrhardt, Albanie & Vedaldi, "Small steps and giant leaps: Minimal Newton solvers for
deep learning" (ICCV 2019). One vector ``z`` (the size of the parameters) estimates the damped
Newton step ``-(H + λI)⁻¹ g``. Each iteration takes one gradient step on the quadratic model
``q(z) = ½ zᵀ(H + λI)z + gᵀz`` with momentum::

    Δz = (H + λI) z + g          # H = Jᵀ H_L J (GGN, default) or the full Hessian
    z  ← ρ z − β Δz              # ρ, β minimise q(ρ z − β Δz): a 2×2 linear system
    w  ← w + lr · z              # lr = 1 in the paper

J·v products use true forward-mode AD through :func:`torch.func.functional_call`; the damping λ
follows a Levenberg–Marquardt trust-region rule every ``lambda_interval`` steps.

Example
-------
>>> import torch
>>> from pdesolve.nn.curveball import CurveBall
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Linear(3, 1).double()
>>> x = torch.randn(32, 3, dtype=torch.float64)
>>> y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
>>> opt = CurveBall(model.parameters(), model=model, loss="mse")
>>> def closure():
...     pred = model(x)
...     return pred, torch.mean((pred - y) ** 2)
>>> for _ in range(30):
...     loss = opt.step(closure)
>>> float(loss) < 1e-12
True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.func import functional_call

__all__ = [
    "CurveBall",
    "NonFiniteLossError",
    "ggn_vector_product",
    "jacobian_vector_product",
    "loss_hessian_vector_product",
]

Closure = Callable[[], tuple[Tensor, Tensor]]
LossKind = Literal["mse", "cross_entropy", "autograd"]
ForwardMode = Literal["dual", "func"]

# hyper-parameters that must be the same in every parameter group (ρ, β and λ are global)
_GLOBAL_KEYS = (
    "lr", "rho", "beta", "lambd", "auto_lambda", "lambda_factor", "lambda_low", "lambda_high",
    "lambda_interval",
)


class NonFiniteLossError(FloatingPointError):
    """The closure returned a NaN or infinite loss; the optimizer changed nothing."""


# --------------------------------------------------------------------------------------------
# products
# --------------------------------------------------------------------------------------------
class _ClosureCaller(nn.Module):
    """Wraps ``model`` so that ``functional_call`` can swap its parameters around any closure."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, closure: Closure) -> tuple[Tensor, Tensor]:
        out = closure()
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError("CurveBall closure must return (predictions, loss)")
        preds, loss = out
        if not isinstance(preds, Tensor) or not isinstance(loss, Tensor) or loss.numel() != 1:
            raise TypeError("CurveBall closure must return (predictions, scalar loss) tensors")
        return preds, loss.reshape(())


def _forward(
    caller: _ClosureCaller,
    closure: Closure,
    names: Sequence[str],
    primals: Sequence[Tensor],
    tangents: Sequence[Tensor] | None,
    mode: ForwardMode,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Run ``closure`` with ``model``'s named parameters replaced by ``primals``.

    Returns ``(predictions, loss, J·t, dloss·t)``; the last two are ``None`` without tangents.
    The returned predictions and loss keep the autograd graph to ``primals``.
    """
    keys = ["model." + n for n in names]
    if tangents is None:
        preds, loss = functional_call(caller, dict(zip(keys, primals, strict=True)), (closure,))
        return preds, loss, None, None
    if mode == "func":
        def f(prim: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            return functional_call(caller, prim, (closure,))

        (preds, loss), (jp, jl) = torch.func.jvp(
            f, (dict(zip(keys, primals, strict=True)),), (dict(zip(keys, tangents, strict=True)),)
        )
        return preds, loss, jp, jl
    with fwAD.dual_level():
        duals = {k: fwAD.make_dual(p, t) for k, p, t in zip(keys, primals, tangents, strict=True)}
        preds, loss = functional_call(caller, duals, (closure,))
        jp = fwAD.unpack_dual(preds).tangent
        jl = fwAD.unpack_dual(loss).tangent
    jp = torch.zeros_like(preds) if jp is None else jp
    jl = torch.zeros_like(loss) if jl is None else jl
    return preds, loss, jp, jl


def loss_hessian_vector_product(
    kind: LossKind, preds: Tensor, v: Tensor, dloss: Tensor | None = None
) -> Tensor:
    """``H_L v`` with ``H_L = ∂²L/∂ŷ²``, the Hessian of the loss with respect to the predictions.

    ``"mse"``: ``L = mean((ŷ − y)²)`` over all elements, ``H_L = 2/N · I``.
    ``"cross_entropy"``: ``L = F.cross_entropy(ŷ, y)`` (logits on dim 1, mean over the batch),
    ``H_L v = (p ⊙ v − p (pᵀv)) / B`` per sample with ``p = softmax(ŷ)``.
    ``"autograd"``: exact, by differentiating ``dloss = ∂L/∂ŷ`` (built with ``create_graph``) again.

    >>> import torch
    >>> p, v = torch.zeros(2, 3), torch.ones(2, 3)
    >>> round(loss_hessian_vector_product("mse", p, v)[0, 0].item(), 6)
    0.333333
    """
    if kind == "mse":
        return v * (2.0 / preds.numel())
    if kind == "cross_entropy":
        if preds.dim() < 2:
            raise ValueError("cross_entropy loss Hessian needs logits of shape (B, C, ...)")
        p = torch.softmax(preds.detach(), dim=1)
        batch = preds.numel() // preds.shape[1]
        return (p * v - p * (p * v).sum(dim=1, keepdim=True)) / batch
    if kind == "autograd":
        if dloss is None or not dloss.requires_grad:
            raise ValueError("autograd loss Hessian needs dL/dŷ computed with create_graph=True")
        (hv,) = torch.autograd.grad(dloss, preds, grad_outputs=v, retain_graph=True)
        return hv
    raise ValueError(f"unknown loss kind {kind!r}; known: 'mse', 'cross_entropy', 'autograd'")


def _loss_gradient(loss: Tensor, preds: Tensor) -> Tensor:
    """``∂L/∂ŷ`` with its graph (for the autograd loss Hessian)."""
    (dloss,) = torch.autograd.grad(loss, preds, create_graph=True, allow_unused=True)
    if dloss is None:
        raise ValueError(
            "CurveBall: the closure's loss does not depend on the predictions it returned; "
            "compute the loss from that same tensor (call the model once)"
        )
    return dloss


def _named(model: nn.Module, params: Sequence[Tensor]) -> list[str]:
    lookup = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    missing = [i for i, p in enumerate(params) if id(p) not in lookup]
    if missing:
        raise ValueError(f"CurveBall: parameters {missing} are not parameters of `model`")
    return [lookup[id(p)] for p in params]


def jacobian_vector_product(
    model: nn.Module,
    closure: Closure,
    tangents: Sequence[Tensor],
    params: Sequence[Tensor] | None = None,
    mode: ForwardMode = "dual",
) -> Tensor:
    """``J v``: forward-mode derivative of the closure's predictions along ``tangents``.

    >>> import torch
    >>> m = torch.nn.Linear(2, 1, bias=False)
    >>> x = torch.ones(1, 2)
    >>> jv = jacobian_vector_product(m, lambda: (m(x), m(x).sum()), [torch.ones(1, 2)])
    >>> jv.item()
    2.0
    """
    params = list(model.parameters()) if params is None else list(params)
    _, _, jv, _ = _forward(
        _ClosureCaller(model), closure, _named(model, params), [p.detach() for p in params],
        [t.detach() for t in tangents], mode,
    )
    assert jv is not None
    return jv


def ggn_vector_product(
    model: nn.Module,
    closure: Closure,
    vector: Sequence[Tensor],
    params: Sequence[Tensor] | None = None,
    loss: LossKind = "autograd",
    mode: ForwardMode = "dual",
) -> list[Tensor]:
    """``Jᵀ H_L J v``, the generalised Gauss–Newton matrix times ``vector``.

    >>> import torch
    >>> m = torch.nn.Linear(2, 1, bias=False)
    >>> x = torch.ones(1, 2)
    >>> def closure():
    ...     out = m(x)
    ...     return out, (out ** 2).sum()
    >>> gv = ggn_vector_product(m, closure, [torch.ones(1, 2)])
    >>> gv[0].tolist()  # J = [1, 1], H_L = 2: GGN v = 2 Jᵀ J v
    [[4.0, 4.0]]
    """
    params = list(model.parameters()) if params is None else list(params)
    preds, lval, jv, _ = _forward(
        _ClosureCaller(model), closure, _named(model, params), params,
        [t.detach() for t in vector], mode,
    )
    assert jv is not None
    dloss = _loss_gradient(lval, preds) if loss == "autograd" else None
    hjv = loss_hessian_vector_product(loss, preds, jv, dloss)
    out = torch.autograd.grad(preds, params, grad_outputs=hjv.detach(), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, out, strict=True)]


# --------------------------------------------------------------------------------------------
# state helpers: the extra forward passes must not change BatchNorm statistics or dropout masks
# --------------------------------------------------------------------------------------------
class _RNGState:
    def __init__(self, devices: Iterable[torch.device]) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = {d: torch.cuda.get_rng_state(d) for d in devices if d.type == "cuda"}

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        for d, s in self.cuda.items():
            torch.cuda.set_rng_state(s, d)


def _snapshot_buffers(model: nn.Module | None) -> list[tuple[Tensor, Tensor]]:
    if model is None:
        return []
    return [(b, b.detach().clone()) for b in model.buffers()]


@torch.no_grad()
def _restore_buffers(saved: list[tuple[Tensor, Tensor]]) -> None:
    for b, saved_value in saved:
        b.copy_(saved_value)


def _dot(xs: Sequence[Tensor], ys: Sequence[Tensor]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(xs, ys, strict=True))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# the optimizer
# --------------------------------------------------------------------------------------------
class CurveBall(torch.optim.Optimizer):
    """CurveBall second-order optimizer (Henriques et al., ICCV 2019), ``torch.optim`` style.

    Parameters
    ----------
    params
        Parameters or parameter groups (or an ``nn.Module``, then ``model`` defaults to it).
        Groups may differ only in ``weight_decay``: ρ, β and λ are global.
    model
        The module whose forward pass the closure calls. Needed for the GGN (forward-mode J·v
        through ``torch.func.functional_call``) and to protect its buffers.
    lr
        Outer step scale, ``w ← w + lr·z`` (1 in the paper).
    rho, beta
        Fixed momentum ρ and step β; ``None`` (default) solves the 2×2 system every step.
    lambd
        Initial damping λ (the MATLAB code's default, 1).
    auto_lambda, lambda_interval, lambda_factor, lambda_low, lambda_high
        Every ``lambda_interval`` steps (from step 0) the loss is re-evaluated on the same batch
        at the new parameters; with ``ratio = actual change / predicted change`` and
        ``ω = lambda_factor ** lambda_interval``: ratio < low → λ /= ω, ratio > high → λ *= ω.
    weight_decay
        Adds ``½ wd ‖w‖²`` to the objective (in its gradient and its curvature).
    curvature
        ``"ggn"`` (default, PSD): ``Jᵀ H_L J``; ``"hessian"``: the full Hessian (Pearlmutter
        products by double back-propagation); it may be indefinite.
    loss
        Loss Hessian ``H_L``: ``"mse"`` (``mean((ŷ−y)²)``), ``"cross_entropy"`` (logits, mean over
        the batch) in closed form, or ``"autograd"`` (exact, any twice-differentiable loss).
    forward_mode
        ``"dual"`` (default): ``torch.autograd.forward_ad`` dual tensors; works with closures that
        call ``torch.autograd.grad`` themselves (PINN residuals) and with BatchNorm in train mode.
        ``"func"``: ``torch.func.jvp``; pure closures only, closed-form ``loss`` only.

    Notes
    -----
    ``step(closure)``: ``closure()`` takes no argument and returns ``(predictions, loss)``, where
    the predictions come from calling ``model`` and ``loss`` is a scalar computed from them. It is
    called up to three times per step (forward with ``J z``, forward with ``J Δz``, and every
    ``lambda_interval`` steps the loss at the new point); the second and third calls replay the
    random-number state of the first (same dropout masks) and restore the model's buffers
    afterwards, so BatchNorm running statistics advance exactly once per step. The closure must
    not call ``backward()``. For a PINN, the predictions are the stacked residual vector (PDE and
    boundary) and ``loss = mean(residual²)``.

    Every step appends ``{step, loss, rho, beta, lambd, ratio, predicted, actual, guard}`` to
    ``history`` and stores it as ``state["curveball"]["last"]``.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    >>> x, y = torch.randn(64, 2), torch.randint(0, 3, (64,))
    >>> opt = CurveBall(net, loss="cross_entropy")
    >>> closure = lambda: (lambda out: (out, torch.nn.functional.cross_entropy(out, y)))(net(x))
    >>> first = float(opt.step(closure))
    >>> for _ in range(20):
    ...     last = float(opt.step(closure))
    >>> last < first
    True
    """

    def __init__(
        self,
        params: Iterable[Any] | nn.Module,
        model: nn.Module | None = None,
        *,
        lr: float = 1.0,
        rho: float | None = None,
        beta: float | None = None,
        lambd: float = 1.0,
        auto_lambda: bool = True,
        lambda_interval: int = 5,
        lambda_factor: float = 0.999,
        lambda_low: float = 0.5,
        lambda_high: float = 1.5,
        weight_decay: float = 0.0,
        curvature: Literal["ggn", "hessian"] = "ggn",
        loss: LossKind = "autograd",
        forward_mode: ForwardMode = "dual",
    ) -> None:
        if isinstance(params, nn.Module):
            model = params if model is None else model
            params = params.parameters()
        if curvature not in ("ggn", "hessian"):
            raise ValueError(f"curvature must be 'ggn' or 'hessian', got {curvature!r}")
        if loss not in ("mse", "cross_entropy", "autograd"):
            raise ValueError(f"loss must be 'mse', 'cross_entropy' or 'autograd', got {loss!r}")
        if forward_mode not in ("dual", "func"):
            raise ValueError(f"forward_mode must be 'dual' or 'func', got {forward_mode!r}")
        if forward_mode == "func" and loss == "autograd":
            raise ValueError("forward_mode='func' needs a closed-form loss ('mse'/'cross_entropy')")
        if curvature == "ggn" and model is None:
            raise ValueError("CurveBall with the GGN needs `model` (the module the closure calls)")
        if not lambd > 0 or lambda_interval < 1 or not 0 < lambda_factor <= 1:
            raise ValueError("need lambd > 0, lambda_interval >= 1 and 0 < lambda_factor <= 1")
        if auto_lambda and not lambda_factor**lambda_interval > 0:
            raise ValueError("lambda_factor ** lambda_interval underflows to 0; use auto_lambda="
                             "False to keep λ fixed")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(
            lr=lr, rho=rho, beta=beta, lambd=lambd, auto_lambda=auto_lambda,
            lambda_interval=lambda_interval, lambda_factor=lambda_factor, lambda_low=lambda_low,
            lambda_high=lambda_high, weight_decay=weight_decay,
        )
        super().__init__(params, defaults)
        for g in self.param_groups:
            for k in _GLOBAL_KEYS:
                if g[k] != defaults[k]:
                    raise ValueError(
                        f"CurveBall: parameter groups may only differ in weight_decay, not {k!r}"
                    )
        self.model = model
        self.curvature = curvature
        self.loss_kind: LossKind = loss
        self.forward_mode: ForwardMode = forward_mode
        self._caller = _ClosureCaller(model) if model is not None else None
        self._params = [p for g in self.param_groups for p in g["params"] if p.requires_grad]
        self._names = _named(model, self._params) if model is not None else []
        self.history: list[dict[str, float]] = []
        self.state["curveball"] = {"step": 0, "lambd": float(lambd), "last": None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict (copied: z and λ are never shared with the optimizer it came from)."""
        super().load_state_dict(copy.deepcopy(state_dict))

    # -- helpers ------------------------------------------------------------------------------
    def _decay(self) -> list[float]:
        groups = self.param_groups
        return [g["weight_decay"] for g in groups for p in g["params"] if p.requires_grad]

    def _replay(self, rng: _RNGState, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with the step's initial RNG state; keep buffers and the RNG stream as is."""
        after = _RNGState(self._devices)
        saved = _snapshot_buffers(self.model)
        rng.restore()
        try:
            return fn()
        finally:
            _restore_buffers(saved)
            after.restore()

    def _loss_at(self, closure: Closure, values: Sequence[Tensor]) -> float:
        if self._caller is None:
            with torch.enable_grad():
                return float(closure()[1].detach())
        with torch.enable_grad():
            _, loss, _, _ = _forward(self._caller, closure, self._names, values, None, "dual")
        return float(loss.detach())

    # -- the step -----------------------------------------------------------------------------
    def step(self, closure: Closure | None = None) -> Tensor:  # type: ignore[override]
        """One CurveBall iteration; returns the loss before the update (detached)."""
        if closure is None:
            raise ValueError("CurveBall.step needs a closure returning (predictions, loss)")
        gstate = self.state["curveball"]
        group0 = self.param_groups[0]
        params = self._params
        self._devices = {p.device for p in params}
        lam = gstate["lambd"]
        wds = self._decay()
        zs = [self.state[p].setdefault("z", torch.zeros_like(p)) for p in params]
        rng = _RNGState(self._devices)
        buffers0 = _snapshot_buffers(self.model)

        with torch.enable_grad():
            if self.curvature == "ggn":
                assert self._caller is not None
                preds, loss, jz, lz = _forward(
                    self._caller, closure, self._names, params, zs, self.forward_mode
                )
                self._check_finite(loss, buffers0, rng)
                dloss = _loss_gradient(loss, preds) if self.loss_kind == "autograd" else None
                hjz = loss_hessian_vector_product(self.loss_kind, preds, jz, dloss)
                # one backward pass: Jᵀ(H_L J z) + ∇_w L
                grads = torch.autograd.grad(
                    (preds, loss), params, grad_outputs=(hjz.detach(), torch.ones_like(loss)),
                    allow_unused=True, retain_graph=dloss is not None,
                )
                curv_z = [torch.zeros_like(p) if g is None else g
                          for p, g in zip(params, grads, strict=True)]
                dzs = [cz + (lam + wd) * z + wd * p.detach()
                       for cz, z, p, wd in zip(curv_z, zs, params, wds, strict=True)]
                # forward pass with J Δz on the same batch (same dropout masks, buffers kept)
                detached = [p.detach() for p in params]
                _, _, jdz, ldz = self._replay(rng, lambda: _forward(
                    self._caller, closure, self._names, detached, dzs, self.forward_mode))
                hjdz = loss_hessian_vector_product(self.loss_kind, preds, jdz, dloss)
                quad = [(jdz * hjdz).sum(), (jz * hjdz).sum(), (jz * hjz).sum()]
                b1_data, b2_data = ldz, lz          # ∇Lᵀ Δz and ∇Lᵀ z from the loss tangents
                del preds, dloss
            else:
                preds, loss = closure()
                loss = loss.reshape(())
                self._check_finite(loss, buffers0, rng)
                grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
                live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
                gvec = [torch.zeros_like(p) if g is None else g.detach()
                        for p, g in zip(params, grads, strict=True)]

                def hvp(vs: Sequence[Tensor], keep: bool) -> list[Tensor]:
                    out = [torch.zeros_like(p) for p in params]
                    if live:
                        hv = torch.autograd.grad(
                            [grads[i] for i in live], [params[i] for i in live],
                            grad_outputs=[vs[i] for i in live], retain_graph=keep,
                            allow_unused=True,
                        )
                        for i, h in zip(live, hv, strict=True):
                            if h is not None:
                                out[i] = h
                    return out

                hz = hvp(zs, True)
                dzs = [h + g + (lam + wd) * z + wd * p.detach()
                       for h, g, z, p, wd in zip(hz, gvec, zs, params, wds, strict=True)]
                hdz = hvp(dzs, False)
                quad = [_dot(dzs, hdz), _dot(zs, hdz), _dot(zs, hz)]
                b1_data, b2_data = _dot(gvec, dzs), _dot(gvec, zs)
                del grads

        # quadratic-model coefficients (damping and weight decay added in parameter space)
        lam_wd = [lam + wd for wd in wds]
        a11 = quad[0] + sum(c * (d * d).sum() for c, d in zip(lam_wd, dzs, strict=True))
        a12 = quad[1] + sum(c * (d * z).sum() for c, d, z in zip(lam_wd, dzs, zs, strict=True))
        a22 = quad[2] + sum(c * (z * z).sum() for c, z in zip(lam_wd, zs, strict=True))
        wdp = [wd * p.detach() for p, wd in zip(params, wds, strict=True)]
        b1 = b1_data + _dot(wdp, dzs)
        b2 = b2_data + _dot(wdp, zs)
        coeffs = torch.stack([torch.as_tensor(c).reshape(()).to(torch.float64).cpu()
                              for c in (a11, a12, a22, b1, b2)]).tolist()
        a11, a12, a22, b1, b2 = coeffs
        rho, beta, guard = self._solve(a11, a12, a22, b1, b2, group0["rho"], group0["beta"])

        # z ← ρ z − β Δz ; w ← w + lr z
        lr = group0["lr"]
        with torch.no_grad():
            for p, z, dz in zip(params, zs, dzs, strict=True):
                if guard and beta == 0.0:  # nothing usable this step: reset z, keep w
                    z.zero_()
                    continue
                z.mul_(rho).add_(dz, alpha=-beta)
                p.add_(z, alpha=lr)
        # predicted change of the damped model q at the step actually taken
        quad_z = rho * rho * a22 - 2.0 * rho * beta * a12 + beta * beta * a11
        predicted = 0.5 * lr * lr * quad_z + lr * (rho * b2 - beta * b1)

        ratio = actual = math.nan
        k = gstate["step"]
        if group0["auto_lambda"] and k % group0["lambda_interval"] == 0:
            omega = group0["lambda_factor"] ** group0["lambda_interval"]
            if guard:
                lam = lam / omega
            else:
                now = [p.detach() for p in params]
                new = self._replay(rng, lambda: self._loss_at(closure, now))
                actual = new - float(loss.detach())
                ratio = actual / predicted if predicted != 0 else math.nan
                if math.isfinite(ratio):
                    if ratio < group0["lambda_low"]:
                        lam = lam / omega
                    elif ratio > group0["lambda_high"]:
                        lam = lam * omega
                elif not math.isfinite(actual):
                    lam = lam / omega
        record = dict(step=k, loss=float(loss.detach()), rho=rho, beta=beta, lambd=lam,
                      ratio=ratio, predicted=predicted, actual=actual, guard=float(guard))
        gstate.update(step=k + 1, lambd=lam, last=record)
        self.history.append(record)
        return loss.detach()

    def _check_finite(self, loss: Tensor, buffers: list[tuple[Tensor, Tensor]],
                      rng: _RNGState) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            _restore_buffers(buffers)
            rng.restore()
            raise NonFiniteLossError(
                f"CurveBall: the closure returned a non-finite loss ({float(loss.detach())}); "
                "parameters, state and buffers are unchanged"
            )

    @staticmethod
    def _solve(a11: float, a12: float, a22: float, b1: float, b2: float,
               rho_fixed: float | None, beta_fixed: float | None) -> tuple[float, float, bool]:
        """ρ, β minimising the quadratic model along span{z, Δz}; guarded against non-finite."""
        if rho_fixed is not None and beta_fixed is not None:
            return float(rho_fixed), float(beta_fixed), False
        if all(math.isfinite(c) for c in (a11, a12, a22, b1, b2)):
            if rho_fixed is None and beta_fixed is None:
                # [a11 a12; a12 a22] [β; m] = [b1; b2], ρ = −m (minimum-norm if singular)
                sol = np.linalg.pinv(np.array([[a11, a12], [a12, a22]])) @ np.array([b1, b2])
                beta, rho = float(sol[0]), -float(sol[1])
            elif rho_fixed is None:  # β fixed: minimise over ρ only
                beta = float(beta_fixed)
                rho = (beta * a12 - b2) / a22 if a22 > 0 else 0.0
            else:  # ρ fixed: minimise over β only
                rho = float(rho_fixed)
                beta = (b1 + rho * a12) / a11 if a11 > 0 else 0.0
            if math.isfinite(rho) and math.isfinite(beta):
                return rho, beta, False
            if a11 > 0 and math.isfinite(b1 / a11):  # fall back to a plain step along −Δz
                return 0.0, b1 / a11, True
        return 0.0, 0.0, True
