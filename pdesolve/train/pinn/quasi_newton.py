"""A full-memory quasi-Newton finisher: BFGS and self-scaled BFGS on the flattened parameters.

Each :meth:`BFGS.step` is one iteration on a fixed loss (the closure returns the loss after
``backward()``, as for ``torch.optim.LBFGS``), computed in float64 on the flattened parameter
vector ``θ``:

* direction ``p = -H g`` (``H``: the dense inverse-Hessian approximation, ``g = ∇L(θ)``);
  ``H`` is reset to a scaled identity when ``p`` is not a descent direction;
* step length ``α`` by a line search satisfying the strong Wolfe conditions
  (``L(θ+αp) ≤ L + c₁ α gᵀp`` and ``|∇L(θ+αp)ᵀp| ≤ c₂ |gᵀp|``; bracketing, then zoom with
  safeguarded cubic interpolation, Nocedal & Wright, Alg. 3.5/3.6);
* with ``s = αp``, ``y = g₊ - g``, ``ρ = 1/(yᵀs)``, the update

  ``H₊ = (1/τ) [H - (Hy)(Hy)ᵀ/(yᵀHy) + v vᵀ] + s sᵀ ρ``,
  ``v = √(yᵀHy) (s ρ - Hy/(yᵀHy))``, applied in place as the rank-two update
  ``H - ρ (s Hyᵀ + Hy sᵀ) + ρ² yᵀHy s sᵀ`` (one pass over the dense ``H``),

  which is BFGS for ``τ = 1`` and self-scaled BFGS (``variant="ssbfgs"``) for the
  Oren–Luenberger factor ``τ = min(1, yᵀs / sᵀBs)``, ``sᵀBs = -α sᵀg`` (the curvature the
  current model predicts along the step, relative to the measured one). Before the first update
  ``H`` is scaled to ``(yᵀs/yᵀy) I``. Pairs with ``yᵀs ≤ 1e-12 |s||y|`` are skipped.

The state (``H``, the current loss and gradient, counters) is a plain ``state_dict`` so that a
run checkpointed between iterations resumes exactly.

>>> import torch
>>> w = torch.nn.Parameter(torch.tensor([3.0, -2.0], dtype=torch.float64))
>>> opt = BFGS([w])
>>> def closure():
...     opt.zero_grad()
...     loss = (w[0] - 1) ** 2 + 10 * (w[1] - w[0] ** 2) ** 2
...     loss.backward()
...     return loss
>>> for _ in range(60):
...     _ = opt.step(closure)
>>> [round(v, 6) for v in w.detach().tolist()]
[1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

__all__ = ["BFGS", "VARIANTS"]

VARIANTS = ("bfgs", "ssbfgs")


def _cubic_min(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float:
    """Minimiser of the cubic through ``(a, fa, da)`` and ``(b, fb, db)``, kept inside [a, b]
    away from the ends (bisection when the cubic has no interior minimum)."""
    lo, hi = min(a, b), max(a, b)
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if disc >= 0:
        d2 = math.copysign(math.sqrt(disc), b - a)
        denom = db - da + 2.0 * d2
        if denom != 0:
            t = b - (b - a) * (db + d2 - d1) / denom
            width = hi - lo
            if lo + 0.1 * width <= t <= hi - 0.1 * width:
                return t
    return 0.5 * (lo + hi)


class BFGS(torch.optim.Optimizer):
    """Dense (full-memory) BFGS or self-scaled BFGS; one iteration per :meth:`step`.

    Parameters
    ----------
    params : iterable
        The parameters (one group).
    variant : str
        ``bfgs`` or ``ssbfgs`` (self-scaled; see the module docstring).
    c1, c2 : float
        Strong Wolfe constants (``0 < c1 < c2 < 1``).
    max_evals : int
        Loss evaluations per line search at most.
    tolerance_grad : float
        No step is taken once ``max |g| ≤ tolerance_grad``.
    """

    def __init__(self, params: Iterable[Any], *, variant: str = "bfgs", c1: float = 1e-4,
                 c2: float = 0.9, max_evals: int = 25, tolerance_grad: float = 1e-12) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown quasi-Newton variant {variant!r}; known: "
                             f"{', '.join(VARIANTS)}")
        if not 0 < c1 < c2 < 1:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
        super().__init__(params, {"variant": variant, "c1": c1, "c2": c2,
                                  "max_evals": int(max_evals),
                                  "tolerance_grad": float(tolerance_grad)})
        if len(self.param_groups) != 1:
            raise ValueError("BFGS takes one parameter group")
        self._params = self.param_groups[0]["params"]
        self.qn: dict[str, Any] = {"H": None, "loss": None, "grad": None, "iterations": 0,
                                   "evaluations": 0, "skipped": 0, "resets": 0,
                                   "fresh": True}

    # state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["qn"] = {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in self.qn.items()}
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        qn = state_dict.pop("qn", None)
        super().load_state_dict(state_dict)
        if qn is not None:
            self.qn = {k: (v.clone() if isinstance(v, Tensor) else v) for k, v in qn.items()}

    def new_objective(self, reset: bool = False) -> None:
        """The loss has changed (e.g. a new batch): the next :meth:`step` evaluates it afresh at
        the current point; ``reset`` also restarts the inverse Hessian (and the first step's
        scaled length), else the curvature model is kept as the new loss's starting one."""
        self.qn["loss"], self.qn["grad"] = None, None
        if reset:
            self.qn["H"], self.qn["fresh"] = None, True
            self.qn["resets"] += 1

    # evaluation --------------------------------------------------------------------------------
    def _flat(self) -> Tensor:
        return parameters_to_vector(self._params).detach().to(torch.float64)

    def _set(self, theta: Tensor) -> None:
        p0 = self._params[0]
        vector_to_parameters(theta.to(dtype=p0.dtype, device=p0.device), self._params)

    def _evaluate(self, closure: Callable[[], Tensor], theta: Tensor) -> tuple[float, Tensor]:
        self._set(theta)
        with torch.enable_grad():
            loss = closure()
        self.qn["evaluations"] += 1
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params]
        g = torch.cat([v.reshape(-1) for v in grads]).detach().to(torch.float64)
        return float(loss.detach()), g

    # line search -------------------------------------------------------------------------------
    def _wolfe(self, closure: Callable[[], Tensor], theta: Tensor, f0: float, g0: Tensor,
               p: Tensor, alpha: float) -> tuple[float, float, Tensor]:
        group = self.param_groups[0]
        c1, c2, budget = group["c1"], group["c2"], group["max_evals"]
        d0 = float(g0 @ p)
        a_prev, f_prev, d_prev = 0.0, f0, d0
        best = (0.0, f0, g0)
        evals = 0
        while evals < budget:
            f, g = self._evaluate(closure, theta + alpha * p)
            evals += 1
            d = float(g @ p)
            if math.isfinite(f) and f < best[1]:
                best = (alpha, f, g)
            if not math.isfinite(f) or f > f0 + c1 * alpha * d0 or (evals > 1 and f >= f_prev):
                return self._zoom(closure, theta, f0, d0, p, (a_prev, f_prev, d_prev),
                                  (alpha, f, d), budget - evals, best)
            if abs(d) <= -c2 * d0:
                return alpha, f, g
            if d >= 0:
                return self._zoom(closure, theta, f0, d0, p, (alpha, f, d),
                                  (a_prev, f_prev, d_prev), budget - evals, best)
            a_prev, f_prev, d_prev = alpha, f, d
            alpha *= 2.0
        return best

    def _zoom(self, closure: Callable[[], Tensor], theta: Tensor, f0: float, d0: float,
              p: Tensor, lo: tuple[float, float, float], hi: tuple[float, float, float],
              budget: int, best: tuple[float, float, Tensor]) -> tuple[float, float, Tensor]:
        c1, c2 = self.param_groups[0]["c1"], self.param_groups[0]["c2"]
        for _ in range(max(budget, 0)):
            if not math.isfinite(hi[1]):
                alpha = 0.5 * (lo[0] + hi[0])
            else:
                alpha = _cubic_min(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
            f, g = self._evaluate(closure, theta + alpha * p)
            d = float(g @ p)
            if math.isfinite(f) and f < best[1]:
                best = (alpha, f, g)
            if not math.isfinite(f) or f > f0 + c1 * alpha * d0 or f >= lo[1]:
                hi = (alpha, f, d)
            else:
                if abs(d) <= -c2 * d0:
                    return alpha, f, g
                if d * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = (alpha, f, d)
            if abs(hi[0] - lo[0]) <= 1e-14 * max(abs(lo[0]), 1e-300):
                break
        return best

    # the iteration -----------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        """One quasi-Newton iteration; returns the loss at the new point."""
        group, qn = self.param_groups[0], self.qn
        theta = self._flat()
        if qn["grad"] is None:
            qn["loss"], qn["grad"] = self._evaluate(closure, theta)
        f, g = qn["loss"], qn["grad"]
        if float(g.abs().max()) <= group["tolerance_grad"]:
            self._set(theta)
            return torch.tensor(f, dtype=torch.float64)
        n = g.numel()
        first = qn["H"] is None  # the first iteration, or the first after a reset
        if first:
            qn["H"] = torch.eye(n, dtype=torch.float64, device=g.device)
        H = qn["H"]
        p = -(H @ g)
        if float(g @ p) >= 0:  # not a descent direction: restart from steepest descent
            H = torch.eye(n, dtype=torch.float64, device=g.device)
            qn["resets"] += 1
            qn["fresh"] = True
            p = -g
        alpha0 = min(1.0, 1.0 / float(g.abs().sum())) if first else 1.0
        alpha, f_new, g_new = self._wolfe(closure, theta, f, g, p, alpha0)
        if alpha == 0.0:  # no decrease found: keep θ, restart the curvature model
            self._set(theta)
            qn["H"] = torch.eye(n, dtype=torch.float64, device=g.device)
            qn["resets"] += 1
            qn["fresh"] = True
            qn["iterations"] += 1
            return torch.tensor(f, dtype=torch.float64)
        s = alpha * p
        y = g_new - g
        ys = float(y @ s)
        if ys > 1e-12 * float(s.norm() * y.norm()):
            if qn["fresh"]:
                H = H * (ys / float(y @ y))
                qn["fresh"] = False
            Hy = H @ y
            yHy = float(y @ Hy)
            rho = 1.0 / ys
            tau = 1.0
            if group["variant"] == "ssbfgs":
                sBs = -alpha * float(s @ g)
                tau = min(1.0, ys / sBs) if sBs > 0 else 1.0
            # H - (Hy)(Hy)ᵀ/yᵀHy + v vᵀ = H - ρ (s Hyᵀ + Hy sᵀ) + ρ² yᵀHy s sᵀ, in place, one pass
            left = torch.stack([s, Hy], 1)
            right = torch.stack([rho * rho * yHy * s - rho * Hy, -rho * s], 0)
            H.addmm_(left, right)
            if tau != 1.0:
                H.mul_(1.0 / tau)
            H.addr_(s, s, alpha=rho)
        else:
            qn["skipped"] += 1
        qn["H"] = H
        qn["loss"], qn["grad"] = f_new, g_new
        qn["iterations"] += 1
        self._set(theta + s)
        return torch.tensor(f_new, dtype=torch.float64)
