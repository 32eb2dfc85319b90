"""What a PINN run writes while and after it trains: metrics CSV, loss-curve plot, progress bar.

Checkpoints themselves are written by :meth:`pdesolve.train.pinn.PINNTrainer.save` through
:func:`pdesolve.nn.checkpoint.save_checkpoint` (weights, optimizer and quasi-Newton states, RNG
states, collocation set, history); everything here is atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pdesolve.io import write_csv
from pdesolve.plotting import save_figure, subplots

__all__ = ["plot_history", "plot_solution", "progress_bar", "write_metrics"]


def write_metrics(history: Mapping[str, list[Any]], keys: Sequence[str],
                  path: str | os.PathLike) -> None:
    """The history's ``keys`` as CSV columns, one row per logged step."""
    rows = [dict(zip(keys, values, strict=True))
            for values in zip(*(history[k] for k in keys), strict=True)]
    write_csv(path, rows, columns=keys)  # the umask's mode, not mkstemp's 0600


def plot_history(
    history: Mapping[str, list[Any]], path: str | os.PathLike, title: str = ""
) -> None:
    """Loss, residual RMS and relative L2 error against the step, log scale, to a PNG."""
    fig, ax = subplots(figsize=(6, 4))
    steps = np.asarray(history["step"])
    for key, label in (("train_loss", "training loss"), ("residual_rms", "residual RMS"),
                       ("relative_l2", "relative L2 error"),
                       ("parameter_error", "parameter error")):
        if key not in history:
            continue
        values = np.asarray(history[key], dtype=float)
        ok = np.isfinite(values) & (values > 0)
        if ok.any():
            ax.semilogy(steps[ok], values[ok], label=label)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path, dpi=100)  # atomic, the umask's mode


def progress_bar(total: int, initial: int, enabled: bool | None) -> Any:
    """A tqdm bar (``enabled=None``: only on a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="pinn", leave=False,
                disable=None if enabled is None else not enabled)


def triangulation(points: np.ndarray,
                  inside: Callable[[np.ndarray], np.ndarray] | None = None) -> Any:
    """The Delaunay triangulation of 2-D ``points`` (a ``matplotlib.tri.Triangulation``), with
    the triangles whose centroid is not ``inside`` the domain masked."""
    from pdesolve.plotting import pyplot

    pyplot()  # the Agg backend, before matplotlib.tri loads
    from matplotlib.tri import Triangulation

    mesh = Triangulation(points[:, 0], points[:, 1])
    if inside is not None:
        mesh.set_mask(~np.asarray(inside(points[mesh.triangles].mean(axis=1)), dtype=bool))
    return mesh


def plot_solution(points: np.ndarray, values: np.ndarray, reference: np.ndarray | None,
                  path: str | os.PathLike, title: str = "", time_last: bool = False,
                  inside: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """The network's values, the exact/reference solution and the error on the test points.

    Points are ``(x, y)`` or ``(x, t)`` pairs; with three columns and ``time_last`` the slice at
    the final time is shown. ``inside`` (the domain's ``contains`` for the two plotted
    coordinates) blanks the triangles of the points' triangulation whose centroid lies outside
    the domain, so that holes and re-entrant corners are not painted over.
    """
    pts, vals = np.asarray(points), np.asarray(values)
    ref = None if reference is None else np.asarray(reference)
    if pts.shape[1] == 3:
        keep = np.isclose(pts[:, 2], pts[:, 2].max()) if time_last else np.ones(len(pts), bool)
        pts, vals = pts[keep][:, :2], vals[keep]
        ref = None if ref is None else ref[keep]
        title = f"{title} (t = {points[:, 2].max():.3g})" if time_last else title
    panels = [("PINN u", vals)]
    if ref is not None:
        panels += [("exact / reference", ref), ("|error|", np.abs(vals - ref))]
    fig, axes = subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    mesh = triangulation(pts, inside)
    for ax, (name, v) in zip(axes[0], panels, strict=True):
        im = ax.tricontourf(mesh, v, levels=50)
        fig.colorbar(im, ax=ax)
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.set_ylabel("t" if time_last and points.shape[1] == 2 else "y")
    fig.suptitle(title)
    save_figure(fig, path, dpi=90)  # atomic, the umask's mode
