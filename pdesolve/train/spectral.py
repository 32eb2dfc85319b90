"""Frequency-principle analysis: the error of a PINN on a grid, split into frequency bands.

``band_errors(error)`` takes the 2D DFT of an error field on the ``n × n`` interior nodes of a
Dirichlet grid — the DFT of its odd extension, i.e. the orthonormal sine transform (DST-I), so
that the grid mode ``sin(kx π x) sin(ky π y)`` is the single coefficient ``(kx, ky)`` with no
leakage — and returns, per band of radial wavenumber ``|k| = sqrt(kx² + ky²)``, the 2-norm of the
error's part in that band (Parseval: the band norms' squares sum to the squared error norm).

``SpectralMonitor`` is a ``PINNTrainer`` callback that records the band norms at every logged
step; ``write_csv`` and ``plot_bands`` save them.

>>> import numpy as np
>>> x = np.arange(1, 32) / 32
>>> low = np.outer(np.sin(np.pi * x), np.sin(np.pi * x))
>>> high = np.outer(np.sin(12 * np.pi * x), np.sin(12 * np.pi * x))
>>> bands = band_errors(low + 0.1 * high, edges=(0, 4, 8, 32))
>>> int(np.argmax(bands)), bool(bands[2] > bands[1])
(0, True)
>>> bool(np.isclose(np.sum(bands ** 2), np.sum((low + 0.1 * high) ** 2)))
True
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pdesolve.io import write_csv as write_table_csv

__all__ = ["DEFAULT_EDGES", "SpectralMonitor", "band_errors", "band_labels", "plot_bands",
           "write_csv"]  # fmt: skip

#: band edges in radial wavenumber |k| (mode sin(mπx)sin(mπy) has |k| = m√2)
DEFAULT_EDGES = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, np.inf)


def band_labels(edges: Sequence[float]) -> list[str]:
    """Readable names of the bands, e.g. ``k[0,2)``.

    >>> band_labels((0, 2, np.inf))
    ['k[0,2)', 'k[2,inf)']
    """
    def fmt(v: float) -> str:
        return "inf" if np.isinf(v) else f"{v:g}"

    return [f"k[{fmt(a)},{fmt(b)})" for a, b in itertools.pairwise(edges)]


def band_errors(error: np.ndarray, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """2-norms of the parts of a 2D ``error`` field in radial-wavenumber bands ``edges``."""
    error = np.asarray(error, dtype=np.float64)
    if error.ndim != 2:
        raise ValueError(f"band_errors needs a 2-D field, got shape {error.shape}")
    from scipy.fft import dstn

    power = dstn(error, type=1, norm="ortho") ** 2  # orthonormal: sum(power) = sum(error²)
    kx = np.arange(1, error.shape[0] + 1)
    ky = np.arange(1, error.shape[1] + 1)
    k = np.sqrt(kx[:, None] ** 2 + ky[None, :] ** 2)
    edges = np.asarray(edges, dtype=float)
    return np.array([np.sqrt(power[(k >= a) & (k < b)].sum())
                     for a, b in itertools.pairwise(edges)])


class SpectralMonitor:
    """A ``PINNTrainer`` callback: band norms of ``u_θ - u_exact`` on the grid at each log.

    Parameters
    ----------
    points : ndarray, shape (n², 2)
        Grid nodes (``system.geometry.points``), C order of ``(i, j)``.
    exact : ndarray, shape (n²,)
        The exact solution there.
    edges : band edges in radial DFT wavenumber.
    """

    def __init__(self, points: np.ndarray, exact: np.ndarray,
                 edges: Sequence[float] = DEFAULT_EDGES) -> None:  # fmt: skip
        self.points = np.asarray(points, dtype=np.float64)
        self.exact = np.asarray(exact, dtype=np.float64)
        n = math.isqrt(self.exact.size)
        if n * n != self.exact.size:
            raise ValueError("SpectralMonitor needs an n x n grid")
        self.n, self.edges = n, tuple(edges)
        self.steps: list[int] = []
        self.bands: list[np.ndarray] = []

    def __call__(self, trainer: Any) -> None:
        err = trainer.evaluate(self.points) - self.exact
        self.steps.append(int(trainer.step))
        self.bands.append(band_errors(err.reshape(self.n, self.n), self.edges))

    def relative(self) -> np.ndarray:
        """Band norms of the error relative to the same bands of the exact solution
        (steps × bands); NaN for bands holding less than 1e-6 of the solution's norm."""
        ref = band_errors(self.exact.reshape(self.n, self.n), self.edges)
        keep = ref > 1e-6 * np.linalg.norm(self.exact)
        return np.asarray(self.bands) / np.where(keep, ref, np.nan)


def write_csv(monitor: SpectralMonitor, path: str | os.PathLike) -> None:
    """``step, <band>…, <band>_relative…`` rows, written atomically."""
    labels = band_labels(monitor.edges)
    columns = ["step", *labels, *(f"{b}_relative" for b in labels)]
    rows = [dict(zip(columns, [s, *(f"{v:.6e}" for v in (*bands, *r))], strict=True))
            for s, bands, r in zip(monitor.steps, monitor.bands, monitor.relative(), strict=True)]
    write_table_csv(path, rows, columns=columns)


def plot_bands(monitor: SpectralMonitor, path: str | os.PathLike, title: str = "") -> None:
    """Error norm per frequency band against the training step (log scale) to a PNG."""
    from pdesolve.plotting import save_figure, subplots

    bands = np.asarray(monitor.bands)
    fig, ax = subplots(figsize=(6, 4))
    for j, label in enumerate(band_labels(monitor.edges)):
        ok = bands[:, j] > 0
        ax.semilogy(np.asarray(monitor.steps)[ok], bands[ok, j], label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("error 2-norm in band (grid DFT)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path, dpi=100)
