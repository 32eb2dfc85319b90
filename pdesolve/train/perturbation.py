"""Worst-case perturbation search for a reconstruction map (Antun et al. 2020).

For a map ``Φ`` (measurements -> image), a measurement operator ``M`` (image -> measurements) and
an image ``x``, maximise ``½||Φ(M(x + r)) − x||² − (λ/2)||r||²`` over image-domain perturbations
``r`` by gradient ascent with Nesterov momentum (autograd through ``Φ``, e.g. an unrolled
FIRENET or a U-Net). Stops after ``steps`` iterations or once ``||r|| > max_norm``. Every iterate
is recorded, so the path gives ``||Φ(y + e) − Φ(y)||`` against ``||e||`` with ``e = M r``.

>>> import torch
>>> from pdesolve.problems.inverse_operators import MatrixOperator
>>> M = MatrixOperator(torch.eye(2, dtype=torch.float64))
>>> out = worst_case_perturbation(lambda y: 3 * y, M, torch.ones(2, dtype=torch.float64), steps=5)
>>> len(out.history), out.history[-1]["output_change"] > out.history[0]["output_change"]
(5, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["PerturbationResult", "worst_case_perturbation"]


@dataclass
class PerturbationResult:
    """The final perturbation ``r`` (image domain), ``e = M r`` and the per-step history."""

    r: Tensor
    e: Tensor
    history: list[dict[str, float]] = field(default_factory=list)


def worst_case_perturbation(
    recon: Callable[[Tensor], Tensor],
    measure: Any,
    x: Tensor,
    *,
    steps: int = 150,
    lr: float = 0.01,
    momentum: float = 0.9,
    lam: float = 0.01,
    max_norm: float = 8.0,
    init_scale: float = 1e-3,
    seed: int = 0,
) -> PerturbationResult:
    """Gradient ascent on ``r`` (real, shape of ``x``) with ``torch.optim.SGD(nesterov=True)``.

    ``history[k]`` holds ``r_norm``, ``e_norm`` (``||M r||``), ``output_change``
    (``||Φ(y + e) − Φ(y)||``), ``error`` (``||Φ(y + e) − x||``) and the objective, for the
    perturbation used in step ``k``.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    r = (init_scale * torch.rand(x.shape, generator=gen, dtype=x.dtype)).to(x.device)
    r.requires_grad_(True)
    opt = torch.optim.SGD([r], lr=lr, momentum=momentum, nesterov=True, maximize=True)
    y = measure.forward(x)
    with torch.no_grad():
        clean = recon(y)
    history: list[dict[str, float]] = []
    for _ in range(int(steps)):
        opt.zero_grad()
        e = measure.forward(r)
        out = recon(y + e)
        objective = 0.5 * (out - x).square().sum() - 0.5 * lam * r.square().sum()
        objective.backward()
        with torch.no_grad():
            history.append(
                {
                    "r_norm": float(torch.linalg.vector_norm(r)),
                    "e_norm": float(torch.linalg.vector_norm(e)),
                    "output_change": float(torch.linalg.vector_norm(out - clean)),
                    "error": float(torch.linalg.vector_norm(out - x)),
                    "objective": float(objective),
                }
            )
        if history[-1]["r_norm"] > max_norm:
            break
        opt.step()
    r = r.detach()
    return PerturbationResult(r=r, e=measure.forward(r), history=history)
