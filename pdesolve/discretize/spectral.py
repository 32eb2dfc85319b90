"""Fourier pseudo-spectral tools on a periodic interval ``[lo, hi)``: grid, wavenumbers,
derivatives, and a space-time interpolant of stored Fourier coefficients.

>>> import numpy as np
>>> x, k = fourier_grid(16, -1.0, 1.0)
>>> v = np.fft.rfft(np.sin(np.pi * x))
>>> np.allclose(np.fft.irfft(1j * k * v, 16), np.pi * np.cos(np.pi * x))
True
>>> series = FourierSeries(-1.0, 1.0, 16, np.array([0.0, 1.0]), np.stack([v, 2 * v]))
>>> round(float(series(np.array([[0.25, 0.5]]))[0]), 12)  # 1.5 sin(π/4)
1.06066017178
"""

from __future__ import annotations

import numpy as np


def fourier_grid(n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` equispaced nodes ``lo + j (hi - lo)/n`` and the ``rfft`` wavenumbers
    ``2πm/(hi - lo)``."""
    if int(n) != n or n < 4 or n % 2:
        raise ValueError(f"the number of Fourier nodes must be an even integer >= 4, got {n!r}")
    n = int(n)
    length = hi - lo
    x = lo + length * np.arange(n) / n
    k = 2 * np.pi / length * np.arange(n // 2 + 1)
    return x, k


def fourier_derivative(v: np.ndarray, k: np.ndarray, n: int, order: int = 1) -> np.ndarray:
    """Nodal values of the ``order``-th derivative from the ``rfft`` coefficients ``v``."""
    d = (1j * k) ** order
    if order % 2:
        d[-1] = 0.0  # the Nyquist mode has no odd derivative on the grid
    return np.fft.irfft(d * v, n)


class FourierSeries:
    """``u(x, t)`` from ``rfft`` coefficients stored at ``times``: trigonometric interpolation
    in ``x`` (spectrally accurate), a cubic spline in ``t``; evaluated at ``(N, 2)`` points."""

    def __init__(
        self, lo: float, hi: float, n: int, times: np.ndarray, coefficients: np.ndarray
    ) -> None:
        from scipy.interpolate import CubicSpline

        self.lo, self.hi, self.n = float(lo), float(hi), int(n)
        _, self.k = fourier_grid(n, lo, hi)
        coefficients = np.asarray(coefficients)
        self.weights = np.full(len(self.k), 2.0) / n
        self.weights[0] = self.weights[-1] = 1.0 / n
        if len(times) >= 4:
            self._spline = CubicSpline(times, coefficients, axis=0)
        else:
            from scipy.interpolate import interp1d

            self._spline = interp1d(times, coefficients, axis=0)

    def __call__(self, points: np.ndarray, chunk: int = 2048) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        out = np.empty(len(points))
        for start in range(0, len(points), chunk):
            p = points[start : start + chunk]
            c = self._spline(p[:, 1])  # (m, modes)
            phase = np.exp(1j * np.outer(p[:, 0] - self.lo, self.k))
            out[start : start + chunk] = (c * phase).real @ self.weights
        return out
