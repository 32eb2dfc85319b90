"""Troubled-cell data for 1D conservation laws: cell-average stencils labelled smooth / troubled.

A cell is *troubled* (label 1) when a discontinuity of the underlying function lies in its closed
interval (a discontinuity on a face marks both neighbours), *smooth* (label 0) otherwise; labels
come from where the discontinuity is, not from the data. Two sources, both generated here:

* ``piecewise``: random piecewise-smooth functions on ``[0, 1]`` (a few sines plus a linear
  term, sometimes a steep but smooth ``tanh`` front a few cells wide, plus 1-3 jumps of random
  size at random places), averaged exactly over the cells;
* ``burgers``: finite-volume snapshots (``pdesolve.discretize.finite_volume``, MUSCL-minmod,
  periodic ``[-1, 1]``) of Burgers' equation with ``u(x, 0) = c − A sin(π(x − x0))``, inviscid or
  with ``ν = 0.01/π``, at times before and after the shock forms (``t_b = 1/(Aπ)``); the shock lies
  at ``x0 + c t`` (Galilean invariance of the odd case ``−A sin(πx)``, whose shock sits at 0).

A sample is the stencil of ``width`` cell averages centred on a cell, shifted by the centre value
and scaled by the stencil's range (:func:`stencil_features`), so that the classifier sees shapes,
not magnitudes. With 100 cells, smooth cells outnumber troubled ones by about 50-70 to 1;
``ratio`` keeps all troubled cells and a random ``ratio`` smooth cells per troubled one.

>>> data = troubled_cell_dataset(n_piecewise=20, n_burgers_runs=4, ratio=20, seed=0)
>>> data.x.shape[1], round(float((data.y == 0).sum() / (data.y == 1).sum()))
(5, 20)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pdesolve.discretize.finite_volume import FVGrid, sine_shock_position, solve_burgers

__all__ = ["TroubledCellData", "burgers_snapshots", "detector_indicator",
           "piecewise_smooth_profile", "stencil_features", "troubled_cell_dataset"]  # fmt: skip

SOURCES = ("piecewise", "burgers")
VISCOSITY = 0.01 / np.pi


def stencil_features(u: np.ndarray, width: int = 5, periodic: bool = True) -> np.ndarray:
    """``(n, width)`` normalised stencils of the cell averages ``u`` (one per centre cell).

    Row ``i`` is ``(u[i-w..i+w] − u[i]) / (max − min)`` over the stencil (zeros where the stencil
    is flat to round-off). ``periodic=False`` returns only the ``n − width + 1`` interior cells.

    >>> stencil_features(np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]), width=3).tolist()[2]
    [0.0, 0.0, 1.0]
    """
    u = np.asarray(u, dtype=float)
    if width < 3 or width % 2 == 0:
        raise ValueError(f"stencil width must be odd and >= 3, got {width}")
    if u.ndim != 1 or u.size < width:
        raise ValueError(f"need a 1D array of at least {width} cell averages, got {u.shape}")
    r = width // 2
    if periodic:
        s = np.stack([np.roll(u, -k) for k in range(-r, r + 1)], axis=1)
    else:
        s = np.lib.stride_tricks.sliding_window_view(u, width).copy()
    span = s.max(axis=1) - s.min(axis=1)
    flat = span <= 1e-10 * (1.0 + np.abs(s).max(axis=1))
    out = (s - s[:, r : r + 1]) / np.where(flat, 1.0, span)[:, None]
    out[flat] = 0.0
    return out


def piecewise_smooth_profile(
    rng: np.random.Generator, n_cells: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Cell averages on ``[0, 1]`` of a random piecewise-smooth function and the troubled mask."""
    grid = FVGrid(0.0, 1.0, n_cells)
    h = grid.h
    k = int(rng.integers(1, 4))
    freq, amp, phase = rng.integers(1, 5, k), rng.uniform(-1, 1, k), rng.uniform(0, 2 * np.pi, k)
    slope = rng.uniform(-1, 1)
    steep = rng.random() < 0.4
    front, width, height = rng.uniform(0.1, 0.9), rng.uniform(1.0, 4.0) * h, rng.uniform(0.2, 1.5)

    def smooth(x: np.ndarray) -> np.ndarray:
        v = slope * x + sum(
            a * np.sin(np.pi * f * x + p) for f, a, p in zip(freq, amp, phase, strict=True)
        )
        if steep:
            v = v + height * np.tanh((x - front) / width)
        return v

    u = grid.averages(smooth)
    troubled = np.zeros(n_cells, dtype=bool)
    jumps = int(rng.integers(1, 4))
    positions = np.sort(rng.uniform(0.1, 0.9, jumps))
    sizes = rng.choice([-1.0, 1.0], jumps) * rng.uniform(0.1, 1.5, jumps)
    edges = grid.edges
    for d, jump in zip(positions, sizes, strict=True):
        # average over cell i of jump * H(x - d): the part of the cell right of d
        u += jump * np.clip((edges[1:] - d) / h, 0.0, 1.0)
        troubled[grid.cells_containing(d)] = True
    return u, troubled


def burgers_snapshots(
    rng: np.random.Generator,
    runs: int,
    per_run: int = 4,
    n_cells: int = 100,
    viscous_fraction: float = 0.5,
) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """``(cell averages, troubled mask, info)`` for ``per_run`` times of each of ``runs``
    random Burgers runs (see the module docstring); ``info`` holds the run's parameters."""
    grid = FVGrid(-1.0, 1.0, n_cells)
    out = []
    for _ in range(runs):
        amp, offset, shift = rng.uniform(0.5, 1.5), rng.uniform(-0.5, 0.5), rng.uniform(-1, 1)
        nu = VISCOSITY if rng.random() < viscous_fraction else 0.0
        t_break = 1.0 / (amp * np.pi)
        times = tuple(np.sort(rng.uniform(0.3, 3.0, per_run) * t_break))
        u0 = grid.averages(lambda x, a=amp, c=offset, s=shift: c - a * np.sin(np.pi * (x - s)))
        res = solve_burgers(u0, grid, times[-1], nu=nu, snapshots=times)
        for t in times:
            mask = np.zeros(n_cells, dtype=bool)
            xs = sine_shock_position(t, amp, shift, offset)
            if xs is not None:
                mask[grid.cells_containing(xs)] = True
            info = {"amplitude": amp, "offset": offset, "shift": shift, "nu": nu, "t": t,
                    "shock": xs}  # fmt: skip
            out.append((res.snapshots[t], mask, info))
    return out


@dataclass
class TroubledCellData:
    """Stencils ``x`` ``(N, width)``, labels ``y`` (1 = troubled) and ``source`` per sample."""

    x: np.ndarray
    y: np.ndarray
    source: np.ndarray

    @property
    def imbalance(self) -> float:
        """Smooth samples per troubled sample."""
        return float((self.y == 0).sum() / max((self.y == 1).sum(), 1))


def troubled_cell_dataset(
    n_piecewise: int = 300,
    n_burgers_runs: int = 40,
    per_run: int = 4,
    n_cells: int = 100,
    width: int = 5,
    ratio: float | None = 20.0,
    seed: int = 0,
) -> TroubledCellData:
    """Labelled stencils from ``n_piecewise`` profiles and ``n_burgers_runs · per_run``
    Burgers snapshots (seeded); ``ratio`` smooth cells kept per troubled cell (``None``: all)."""
    if n_piecewise < 0 or n_burgers_runs < 0 or n_piecewise + n_burgers_runs == 0:
        raise ValueError(f"need some profiles, got n_piecewise={n_piecewise}, "
                         f"n_burgers_runs={n_burgers_runs}")  # fmt: skip
    if ratio is not None and ratio <= 0:
        raise ValueError(f"ratio must be positive or None, got {ratio}")
    rng = np.random.default_rng(seed)
    xs, ys, src = [], [], []
    r = width // 2
    for _ in range(n_piecewise):
        u, mask = piecewise_smooth_profile(rng, n_cells)
        xs.append(stencil_features(u, width, periodic=False))
        ys.append(mask[r : n_cells - r])
        src += ["piecewise"] * (n_cells - 2 * r)
    for u, mask, _ in burgers_snapshots(rng, n_burgers_runs, per_run, n_cells):
        xs.append(stencil_features(u, width, periodic=True))
        ys.append(mask)
        src += ["burgers"] * n_cells
    x, y, source = np.concatenate(xs), np.concatenate(ys).astype(np.int64), np.array(src)
    if ratio is not None:
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        keep_neg = rng.choice(neg, min(len(neg), round(ratio * len(pos))), replace=False)
        keep = np.sort(np.concatenate([pos, keep_neg]))
        x, y, source = x[keep], y[keep], source[keep]
    return TroubledCellData(x.astype(np.float32), y, source)


def detector_indicator(
    model, width: int = 5, threshold: float = 0.5
) -> Callable[[np.ndarray], np.ndarray]:
    """An ``indicator(u) -> mask`` for :func:`~pdesolve.discretize.finite_volume.solve_burgers`
    that flags the cells where a trained troubled-cell classifier (logits for classes 0/1) gives
    probability of "troubled" above ``threshold`` (periodic stencils)."""
    import torch

    def indicator(u: np.ndarray) -> np.ndarray:
        feats = torch.as_tensor(stencil_features(u, width, periodic=True), dtype=torch.float32)
        with torch.no_grad():
            prob = torch.softmax(model(feats), dim=1)[:, 1].numpy()
        return prob > threshold

    return indicator
