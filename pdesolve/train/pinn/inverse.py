"""Unknown parameters of an inverse PINN run: constants and coefficient fields.

A problem declares ``unknown_parameters`` (name -> true constant), ``unknown_fields`` (name ->
true field, a callable of points) and ``observations(n, noise, seed)``; its residual reads the
parameters from the mapping passed as ``pde_residual(u, x, params=...)``.
:class:`UnknownParameters` makes them trainable:

* a constant (a float true value) is ``θ = exp(φ)`` when its initial guess is positive (scale-free
  steps for small constants such as ν = 0.01/π), else ``θ = φ``; the guess is
  ``parameter_init[name]``, default 1.0;
* a coefficient field (a callable true value ``k(x)`` of the spatial coordinates) is a small tanh
  network with a softplus output (``k > 0``), ``k(x) = softplus(N_φ(x))``.

Errors against the truth: ``|θ - θ*| / |θ*|`` for constants, the relative L2 error on a fixed set
of spatial points for fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pdesolve.nn.mlp import make_model

__all__ = ["UnknownParameters"]


class UnknownParameters(nn.Module):
    """The trainable unknowns of ``problem`` (see the module docstring)."""

    def __init__(self, problem: Any, init: Mapping[str, Any] | None = None, *, seed: int = 0,
                 field_points: int = 2000) -> None:
        super().__init__()
        truth: dict[str, Any] = dict(getattr(problem, "unknown_parameters", {}) or {})
        truth.update(getattr(problem, "unknown_fields", {}) or {})
        init = dict(init or {})
        unknown = set(init) - set(truth)
        if unknown:
            raise ValueError(f"parameter_init names {sorted(unknown)}, not unknowns of problem "
                             f"{problem.name!r} (its unknowns: {sorted(truth)})")
        self._truth = truth
        self.log_scale: dict[str, bool] = {}
        self.constants = nn.ParameterDict()
        self.fields = nn.ModuleDict()
        space = getattr(problem.domain, "space", problem.domain)
        self.space_dim = int(space.dim)
        gen = torch.Generator().manual_seed(seed + 30_011)
        self.field_x = space.sample_interior(field_points, gen)
        for name, value in truth.items():
            if callable(value):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed + 40_009)
                    self.fields[name] = make_model("mlp", self.space_dim, 1, width=20, depth=2,
                                                   activation="tanh")
                continue
            guess = float(init.get(name, 1.0))
            if not math.isfinite(guess):
                raise ValueError(f"parameter_init[{name!r}] must be finite, got {guess}")
            self.log_scale[name] = guess > 0
            raw = math.log(guess) if guess > 0 else guess
            self.constants[name] = nn.Parameter(torch.tensor(raw, dtype=torch.float64))

    def constant(self, name: str) -> Tensor:
        raw = self.constants[name]
        return torch.exp(raw) if self.log_scale[name] else raw

    def field(self, name: str) -> Callable[[Tensor], Tensor]:
        net = self.fields[name]

        def k(x: Tensor) -> Tensor:
            return nn.functional.softplus(net(x[:, : self.space_dim])).reshape(-1)

        return k

    def values(self) -> dict[str, Any]:
        """The mapping handed to ``pde_residual(..., params=...)``."""
        out: dict[str, Any] = {name: self.constant(name) for name in self.constants}
        out.update({name: self.field(name) for name in self.fields})
        return out

    def identified(self) -> dict[str, float | None]:
        """The identified constants (fields: None, see :meth:`errors`)."""
        out: dict[str, float | None] = {n: float(self.constant(n).detach()) for n in self.constants}
        out.update({name: None for name in self.fields})
        return out

    def truth(self) -> dict[str, float | None]:
        return {n: (None if callable(v) else float(v)) for n, v in self._truth.items()}

    def errors(self) -> dict[str, float]:
        """Relative errors against the true values (fields: relative L2 on fixed points)."""
        out = {}
        with torch.no_grad():
            for name in self.constants:
                true = float(self._truth[name])
                out[name] = abs(float(self.constant(name)) - true) / max(abs(true), 1e-300)
            for name in self.fields:
                p = next(self.fields[name].parameters())
                x = self.field_x.to(device=p.device, dtype=p.dtype)
                k = self.field(name)(x)
                k_true = self._truth[name](x).reshape(-1).to(k)
                out[name] = float(torch.linalg.norm(k - k_true) / torch.linalg.norm(k_true))
        return out
