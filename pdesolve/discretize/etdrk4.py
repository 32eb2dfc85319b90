"""ETDRK4: the fourth-order exponential time-differencing Runge–Kutta scheme of Cox and Matthews,
with the contour-integral coefficients of Kassam and Trefethen (2005).

For ``v' = L v + N(v)`` with a *diagonal* linear part ``L`` (e.g. a Fourier-space diffusion
operator), one step of size ``dt`` uses ``e^{L dt}``, ``e^{L dt/2}`` and the ``φ``-function
combinations ``Q, f1, f2, f3``, which are evaluated by averaging over ``M`` points on a circle
of radius 1 around each ``L dt`` (no cancellation error for small ``|L dt|``).

>>> import numpy as np
>>> L = np.array([-1.0, -100.0])
>>> c = etdrk4_coefficients(L, 0.1)
>>> v = etdrk4_solve(np.array([1.0, 1.0]), c, lambda v: 0 * v, 10)[-1]  # linear: exact
>>> np.allclose(v, np.exp(L * 1.0))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ETDRK4Coefficients:
    """``E = e^{L dt}``, ``E2 = e^{L dt/2}`` and the contour-averaged ``Q, f1, f2, f3``."""

    dt: float
    E: np.ndarray
    E2: np.ndarray
    Q: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    f3: np.ndarray


def etdrk4_coefficients(L: np.ndarray, dt: float, contour_points: int = 32) -> ETDRK4Coefficients:
    """The coefficients for the diagonal linear part ``L`` (real or complex) and step ``dt``."""
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt!r}")
    L = np.asarray(L)
    r = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    LR = dt * L.reshape(-1, 1) + r.reshape(1, -1)
    shape = L.shape

    def mean(values: np.ndarray) -> np.ndarray:
        out = values.mean(axis=1).reshape(shape)
        return out.real if np.isrealobj(L) else out

    Q = dt * mean((np.exp(LR / 2) - 1) / LR)
    f1 = dt * mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3)
    f2 = dt * mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3)
    f3 = dt * mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3)
    return ETDRK4Coefficients(float(dt), np.exp(dt * L), np.exp(dt * L / 2), Q, f1, f2, f3)


def etdrk4_step(
    v: np.ndarray, c: ETDRK4Coefficients, nonlinear: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """One ETDRK4 step of ``v' = L v + N(v)``."""
    Nv = nonlinear(v)
    a = c.E2 * v + c.Q * Nv
    Na = nonlinear(a)
    b = c.E2 * v + c.Q * Na
    Nb = nonlinear(b)
    cc = c.E2 * a + c.Q * (2 * Nb - Nv)
    Nc = nonlinear(cc)
    return c.E * v + Nv * c.f1 + 2 * (Na + Nb) * c.f2 + Nc * c.f3


def etdrk4_solve(
    v0: np.ndarray,
    c: ETDRK4Coefficients,
    nonlinear: Callable[[np.ndarray], np.ndarray],
    n_steps: int,
    save_every: int = 1,
    monitor: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """``n_steps`` steps from ``v0``; returns the states at steps ``0, save_every, …`` (stacked).

    ``monitor(step, v)``, when given, sees every state (e.g. to record a derivative in time)."""
    if n_steps < 1 or save_every < 1 or n_steps % save_every:
        raise ValueError(f"n_steps ({n_steps}) must be a positive multiple of save_every "
                         f"({save_every})")  # fmt: skip
    v = np.array(v0)
    saved = [v.copy()]
    if monitor is not None:
        monitor(0, v)
    for step in range(1, n_steps + 1):
        v = etdrk4_step(v, c, nonlinear)
        if not np.all(np.isfinite(v)):
            raise FloatingPointError(f"ETDRK4 blew up at step {step} (dt = {c.dt}): refine dt")
        if monitor is not None:
            monitor(step, v)
        if step % save_every == 0:
            saved.append(v.copy())
    return np.stack(saved)
