"""Time windows of a time-marching PINN: a problem restricted to one window, and the composite.

Time-marching trains one network per window ``[t_k, t_{k+1}]`` of ``[t0, T]``; window ``k`` has
the hard initial condition ``u_k(x, t) = u_{k-1}(x, t_k) + (t - t_k)/(t_{k+1} - t_k) D(x)
N_k(x, t)`` (window 0: the problem's initial data), so ``u_k(x, t_k) = u_{k-1}(x, t_k)``
exactly. :class:`WindowProblem` is the problem seen by window ``k``'s trainer (its space-time
domain is the window, its initial value the previous window's end state, :class:`WindowStart`);
:class:`MarchingPINN` evaluates ``u`` at any points by picking each point's window by ``t``.

>>> import torch, pdesolve
>>> base = pdesolve.get_problem("allen_cahn")
>>> w = WindowProblem(base, (0.25, 0.5), index=1)
>>> w.t_span, w.params["window"], w.name, w.periodic
((0.25, 0.5), [0.25, 0.5], 'allen_cahn', (True,))
>>> w.test_points(3, 2)[:, 1].tolist()
[0.25, 0.5, 0.25, 0.5, 0.25, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.problems.time_dependent import SpaceTimeDomain
from pdesolve.train.pinn.network import predict_points

__all__ = ["STATE_FILE", "MarchingPINN", "WindowProblem", "WindowStart", "window_edges"]

#: the run state of a time-marching run folder (its windows in ``window_<k>/``)
STATE_FILE = "marching.json"


def window_edges(windows: int | Sequence[float], t_span: Sequence[float]) -> list[float]:
    """The ``K + 1`` window edges from ``t0`` to ``T``: ``K`` equal windows for an int, or the
    given increasing edges (which must start at ``t0`` and end at ``T``).

    >>> window_edges(4, (0.0, 1.0))
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> window_edges([0.0, 0.1, 1.0], (0.0, 1.0))
    [0.0, 0.1, 1.0]
    """
    t0, t1 = float(t_span[0]), float(t_span[1])
    if isinstance(windows, bool) or not isinstance(windows, int | Sequence | np.ndarray):
        raise ValueError(f"windows must be a count K >= 1 or a list of edges, got {windows!r}")
    if isinstance(windows, int):
        if windows < 1:
            raise ValueError(f"time-marching needs windows >= 1, got {windows}")
        edges = [t0 + (t1 - t0) * k / windows for k in range(windows + 1)]
        edges[-1] = t1
        return edges
    edges = [float(v) for v in windows]
    if len(edges) < 2:
        raise ValueError(f"window edges need at least two times (t0 and T), got {edges}")
    tol = 1e-12 * max(1.0, abs(t0), abs(t1))
    if abs(edges[0] - t0) > tol or abs(edges[-1] - t1) > tol:
        raise ValueError(f"window edges must run from t0={t0} to T={t1}, got {edges[0]} to "
                         f"{edges[-1]}")
    if any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"window edges must increase strictly, got {edges}")
    edges[0], edges[-1] = t0, t1
    return edges


class WindowStart:
    """``x ↦ u_prev(x, t)``: the previous window's (frozen) network at its end time ``t``, the
    initial value of the next window (spatial points in, shape (N,) out, in ``x``'s dtype)."""

    def __init__(self, model: nn.Module, t: float) -> None:
        self.model, self.t = model, float(t)

    def __call__(self, x: Tensor) -> Tensor:
        p = next(self.model.parameters())
        xt = torch.cat([x, torch.full((x.shape[0], 1), self.t, dtype=x.dtype,
                                      device=x.device)], dim=1)  # fmt: skip
        return self.model(xt.to(p.dtype)).reshape(-1).to(x.dtype)


class WindowProblem:
    """``problem`` on the time window ``t_span``, with initial data ``start`` (a callable of the
    spatial points; None: the problem's own, for the first window).

    Everything else (residual, boundary data, exact or reference solution, periodicity) is the
    base problem's; ``params`` add ``window: [t_a, t_b]``, so that checkpoints of different
    windows never pass for one another.
    """

    def __init__(self, problem: Any, t_span: Sequence[float], start: WindowStart | None = None,
                 index: int = 0) -> None:  # fmt: skip
        self.base = problem
        self.domain = SpaceTimeDomain(problem.domain.space, t_span)
        self.t_span = self.domain.t_span
        self.start = start
        self.index = int(index)
        self.params = {**dict(problem.params), "window": [self.t_span[0], self.t_span[1]]}

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not yet set (copying, unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return f"WindowProblem({self.base!r}, t_span={self.t_span}, index={self.index})"

    def initial_value(self, x: Tensor) -> Tensor:
        """``u(x, t_a)``: the base problem's initial data (first window) or the previous
        window's end state."""
        return self.base.initial_value(x) if self.start is None else self.start(x)

    def test_points(self, n_space: int, n_time: int) -> np.ndarray:
        """The base problem's spatial test grid at ``n_time`` times from ``t_a`` to ``t_b``."""
        space = self.base.test_points(n_space, 1)[:, :-1]
        times = np.linspace(*self.t_span, int(n_time))
        pts = np.concatenate([np.repeat(space, len(times), axis=0),
                              np.tile(times, len(space))[:, None]], axis=1)  # fmt: skip
        return pts


class MarchingPINN(nn.Module):
    """The composite of the window networks: ``u(x, t) = u_k(x, t)`` for ``t ∈ (t_k, t_{k+1}]``
    (``t ≤ t_1``: the first window, ``t > t_{K-1}``: the last); output shape (N,).

    Continuity at the joints is exact by construction (each window starts from the previous
    one's value there). ``predict(points)`` takes any array-like ``(N, dim)`` of ``(x..., t)``.
    """

    def __init__(self, edges: Sequence[float], windows: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(edges) != len(windows) + 1:
            raise ValueError(f"{len(windows)} windows need {len(windows) + 1} edges, got "
                             f"{len(edges)}")
        self.edges = [float(t) for t in edges]
        self.windows = nn.ModuleList(windows)

    def window_of(self, t: Tensor) -> Tensor:
        """The window index of each time (long tensor)."""
        inner = torch.tensor(self.edges[1:-1], dtype=t.dtype, device=t.device)
        return torch.bucketize(t.detach().contiguous(), inner, right=False)

    def forward(self, x: Tensor) -> Tensor:
        index = self.window_of(x[:, -1])
        out = x.new_zeros(x.shape[0])
        for k, window in enumerate(self.windows):
            rows = torch.nonzero(index == k).reshape(-1)
            if rows.numel():
                out = out.index_put((rows,), window(x[rows]).reshape(-1).to(x.dtype))
        return out

    def predict(self, points: Any, chunk: int = 65_536) -> np.ndarray:
        """``u`` at user points (array-like ``(N, dim)``, time last) as float64 numpy (N,)."""
        return predict_points(self, points, chunk)
