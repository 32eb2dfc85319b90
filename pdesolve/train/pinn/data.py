"""Training points of a PINN run: collocation sets, residual-based refinement, causal weights.

* :class:`TrainingPoints`: the interior / boundary / initial collocation points of one run
  (fresh random batches or a fixed set, :class:`pdesolve.train.collocation.CollocationSampler`)
  plus the points added by refinement, which every later batch contains.
* :func:`largest_residuals`: residual-based adaptive refinement (RAR, Lu et al. 2021): among
  ``candidates`` points, the ``k`` with the largest ``|r|``.
* :func:`causal_weights`: causal training (Wang, Sankaran & Perdikaris 2022): the time interval
  is cut into ``M`` slabs with mean squared residuals ``L_i``; slab ``i`` gets the weight
  ``w_i = exp(-ε Σ_{j<i} L_j)`` (no gradient through ``w``), so later times count only once
  earlier ones are resolved. The weights are non-increasing in time by construction.

>>> import torch
>>> r = torch.tensor([1.0, 0.1, 3.0, 0.2])
>>> largest_residuals(r, 2).tolist()
[2, 0]
>>> t = torch.tensor([0.1, 0.4, 0.6, 0.9])
>>> w, _ = causal_weights(torch.ones(4), t, (0.0, 1.0), segments=2, epsilon=1.0)
>>> [round(float(v), 4) for v in w]
[1.0, 0.3679]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from pdesolve.train.collocation import CollocationSampler

__all__ = ["TrainingPoints", "causal_weights", "largest_residuals"]


def largest_residuals(residual: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` entries of largest ``|residual|``, largest first."""
    k = min(int(k), residual.shape[0])
    return torch.topk(residual.detach().abs().reshape(-1), k).indices


def causal_weights(
    residual: Tensor, t: Tensor, t_span: tuple[float, float], segments: int, epsilon: float,
    total: Callable[[Tensor], Tensor] | None = None, world: int = 1,
) -> tuple[Tensor, Tensor]:
    """``(w, L)``: slab weights ``w_i = exp(-ε Σ_{j<i} L_j)`` (detached) and the slab mean squared
    residuals ``L_i`` (differentiable) for residuals ``r`` at times ``t``; empty slabs have
    ``L_i = 0``. The causal loss is ``mean_i(w_i L_i)``.

    Data-parallel (``total`` sums a tensor over the ``world`` processes, each holding its part
    of the batch): the weights come from the whole batch's slab means, and ``L_i`` is this
    process's share ``world · Σ_local r² / count_i`` (count over the whole batch), so that the
    mean over the processes of the causal loss and of its gradient are the whole batch's.
    """
    t0, t1 = float(t_span[0]), float(t_span[1])
    idx = ((t.detach() - t0) / (t1 - t0) * segments).floor().long().clamp_(0, segments - 1)
    sq = residual.reshape(-1) ** 2
    sums = torch.zeros(segments, dtype=sq.dtype, device=sq.device).index_add(0, idx, sq)
    counts = torch.zeros(segments, dtype=sq.dtype, device=sq.device).index_add(
        0, idx, torch.ones_like(sq))
    if total is None:
        slab = sums / counts.clamp_min(1.0)
        whole = slab.detach()
    else:
        counts = total(counts).clamp_min(1.0)
        whole = total(sums.detach()) / counts
        slab = world * sums / counts
    before = torch.cumsum(whole, 0) - whole
    return torch.exp(-epsilon * before), slab


class TrainingPoints:
    """The collocation points of one run: a sampler per kind plus refinement points.

    ``kinds`` maps ``interior``/``boundary``/``initial`` to ``(domain_sampler, n)`` where
    ``domain_sampler(n, generator)`` draws ``n`` points; interior points use a
    :class:`CollocationSampler` so that fixed quasi-random sets work as before.
    """

    def __init__(self, sampler: CollocationSampler, initial: Any = None,
                 n_initial: int = 0) -> None:
        self.sampler = sampler
        self.initial_sampler, self.n_initial = initial, int(n_initial)
        self._initial_fixed: Tensor | None = None
        if initial is not None and sampler.method != "random" and self.n_initial:
            self._initial_fixed = initial(self.n_initial, sampler.generator)
        self.added: Tensor | None = None

    def interior(self) -> Tensor:
        x = self.sampler.interior()
        if self.added is None:
            return x
        # the same tensor while neither part changes, so that what the network caches for a
        # fixed point set (hard-constraint factors, input features) is reused after refinement
        last = self.__dict__.get("_joined")
        if last is not None and last[0] is x and last[1] is self.added and last[2] == (
                x._version, self.added._version, last[3]._version):  # fmt: skip
            return last[3]
        joined = torch.cat([x, self.added])
        self._joined = (x, self.added, (x._version, self.added._version, joined._version),
                        joined)  # fmt: skip
        return joined

    def boundary(self) -> Tensor | None:
        return self.sampler.boundary() if self.sampler.n_boundary else None

    def initial(self) -> Tensor | None:
        if self.initial_sampler is None or not self.n_initial:
            return None
        if self._initial_fixed is not None:
            return self._initial_fixed
        return self.initial_sampler(self.n_initial, self.sampler.generator)

    def add(self, points: Tensor) -> None:
        """Add refinement points to every later interior batch."""
        points = points.detach().to(torch.float64).cpu()
        self.added = points if self.added is None else torch.cat([self.added, points])

    def state_dict(self) -> dict[str, Any]:
        return {"added": self.added}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.added = state.get("added")
