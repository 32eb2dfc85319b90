"""Sparse-regularised linear inverse problems ``y = A x + e`` (docs/methods/firenet.md).

Registered families:

* ``compressed_sensing``: ``A = P_Ω T W*`` with ``T`` the 2D Fourier or Walsh–Hadamard transform,
  ``Ω`` a variable-density multilevel pattern and ``W*`` orthonormal wavelet synthesis (Haar by
  default, ``wavelet="db2"`` ... Daubechies through PyWavelets); the unknowns are the wavelet
  coefficients. Images: the (modified) Shepp–Logan ``phantom``, random ``ellipses``, or a
  ``sparse_phantom`` (the phantom's ``sparsity`` largest wavelet coefficients, exactly sparse).
* ``inexact_lasso``: the 22-dimensional problem class ``Ω_K`` of the paper's Table 1.
* ``poisson_source``: a sparse source ``c`` of ``-Δ_h u = c`` on the unit square, observed through
  the values of ``u`` at a few grid nodes (built on ``get_problem("poisson")``); by default in a
  whitened, column-normalised formulation that FIRENET can solve (see the class docstring).

All of them are ``InverseProblem`` s: ``operator`` (``A`` on the unknowns, with ``forward``,
``adjoint``, ``norm_bound``), ``measurements`` ``y``, the true ``coefficients`` and ``image``,
a suggested ``lam`` and ``weights``. They are recovered with ``pdesolve.recover(problem,
method="firenet" | "chambolle_pock" | "fista" | "ista")``, not discretized.

>>> import pdesolve
>>> p = pdesolve.get_problem("compressed_sensing", n=64, rate=0.25, sampling="walsh")
>>> p.operator.range_shape, p.image.shape
((1024,), (64, 64))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem
from pdesolve.problems.inverse_operators import (
    Composition,
    DaubechiesSynthesis,
    Diagonal,
    HaarSynthesis,
    LinearOperator,
    MatrixOperator,
    PoissonPointSampling,
    SubsampledFourier,
    SubsampledWalshHadamard,
    haar_level_sizes,
    multilevel_mask,
)

__all__ = [
    "CompressedSensingProblem",
    "InexactLassoProblem",
    "InverseProblem",
    "PoissonSourceProblem",
    "ellipse_images",
    "level_weights",
    "random_ellipses",
    "shepp_logan",
]

# ---------------------------------------------------------------------------- test images ---
# modified Shepp–Logan (Toft): intensity, semi-axes a, b, centre x0, y0, angle (degrees)
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _draw_ellipses(n: int, ellipses: Any) -> np.ndarray:
    coords = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    X, Y = np.meshgrid(coords, -coords)  # row 0 at the top (y = +1)
    image = np.zeros((n, n))
    for value, a, b, x0, y0, angle in ellipses:
        t = math.radians(angle)
        xr = (X - x0) * math.cos(t) + (Y - y0) * math.sin(t)
        yr = -(X - x0) * math.sin(t) + (Y - y0) * math.cos(t)
        image[(xr / a) ** 2 + (yr / b) ** 2 <= 1.0] += value
    return image


def shepp_logan(n: int) -> np.ndarray:
    """The modified Shepp–Logan phantom on an ``n × n`` grid, values in ``[0, 1]``.

    >>> img = shepp_logan(64)
    >>> img.shape, float(img.min()), float(img.max())
    ((64, 64), 0.0, 1.0)
    """
    return np.clip(_draw_ellipses(n, _SHEPP_LOGAN), 0.0, 1.0)


def random_ellipses(
    n: int, rng: np.random.Generator, count: tuple[int, int] = (3, 10)
) -> np.ndarray:
    """A random-ellipse image in ``[0, 1]``: a body ellipse plus ``count`` smaller ellipses of
    random size, position, angle and intensity (added or removed)."""
    body_a, body_b = rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.9)
    ellipses = [(rng.uniform(0.4, 0.8), body_a, body_b, 0.0, 0.0, rng.uniform(0, 180))]
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        a, b = rng.uniform(0.03, 0.3), rng.uniform(0.03, 0.3)
        x0, y0 = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
        ellipses.append((rng.uniform(-0.4, 0.5), a, b, x0, y0, rng.uniform(0, 180)))
    return np.clip(_draw_ellipses(n, ellipses), 0.0, 1.0)


def ellipse_images(count: int, n: int, seed: int = 0) -> np.ndarray:
    """``count`` random-ellipse images ``(count, n, n)`` (float64), seeded."""
    rng = np.random.default_rng(seed)
    return np.stack([random_ellipses(n, rng) for _ in range(count)])


def level_weights(n: int, levels: int, sparsities: Any) -> np.ndarray:
    """Weights ``sqrt(s / s_j)`` on Haar level ``j`` (level 0 = approximation), ``s = Σ s_j``,
    in the pyramid layout of :func:`~pdesolve.problems.inverse_operators.haar_analysis`."""
    s = np.asarray(sparsities, dtype=float)
    if s.shape != (levels + 1,) or np.any(s <= 0):
        raise ValueError(f"need {levels + 1} positive local sparsities, got {sparsities!r}")
    return np.sqrt(s.sum() / s)[haar_level_sizes(n, levels)]


# ------------------------------------------------------------------------- the base class ---
class InverseProblem(Problem):
    """A linear inverse problem ``y = A x + e`` with a sparse unknown ``x``.

    Attributes: ``operator`` (``A``), ``measurements`` (``y``, a tensor), ``coefficients``
    (true ``x``), ``image`` (true image, numpy), ``synthesis`` (coefficients -> image operator or
    None for identity), ``sampler`` (image -> measurements operator), ``noise_norm`` (``||e||``),
    ``lam`` and ``weights`` (suggested SR-LASSO parameters).
    """

    name = "inverse"
    dim = 2
    operator: LinearOperator
    sampler: LinearOperator
    synthesis: LinearOperator | None = None
    measurements: Tensor
    coefficients: Tensor | None = None
    image: np.ndarray | None = None
    noise_norm: float = 0.0
    lam: float = 1e-3
    weights: np.ndarray | None = None

    def synthesize(self, coefficients: Tensor) -> Tensor:
        """The image of ``coefficients`` (identity when there is no sparsifying transform)."""
        return coefficients if self.synthesis is None else self.synthesis.forward(coefficients)

    def with_measurements(self, y: Tensor) -> InverseProblem:
        """A shallow copy of this problem with measurements ``y`` (checked)."""
        y = torch.as_tensor(y)
        self.operator.check_range(y)
        if not torch.isfinite(y).all():
            raise ValueError("measurements contain NaN or Inf entries")
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.measurements = y
        return other

    def source(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{self.name!r} is an inverse problem; it has no PDE source")

    def discretize(self, **overrides: Any) -> LinearSystem:
        raise NotImplementedError(
            f"{self.name!r} is a sparse-regularised inverse problem, not a linear system: recover "
            "it with pdesolve.recover(problem, method='firenet' | 'chambolle_pock' | 'fista' | "
            "'ista')"
        )


def _add_noise(clean: Tensor, level: float, rng: np.random.Generator) -> tuple[Tensor, float]:
    """``clean + e`` with Gaussian ``e`` (complex if ``clean`` is), ``||e|| = level ||clean||``."""
    if level < 0 or not math.isfinite(level):
        raise ValueError(f"noise must be a finite number >= 0, got {level!r}")
    if level == 0:
        return clean, 0.0
    e = rng.standard_normal(clean.shape)
    if clean.is_complex():
        e = e + 1j * rng.standard_normal(clean.shape)
    e = torch.as_tensor(e, dtype=clean.dtype)
    e = e * (level * torch.linalg.vector_norm(clean) / torch.linalg.vector_norm(e))
    return clean + e, float(torch.linalg.vector_norm(e))


# -------------------------------------------------------------------- compressed sensing ---
class CompressedSensingProblem(InverseProblem):
    """Compressed-sensing imaging: ``y = P_Ω T W* c + e`` (``T`` Fourier or Walsh–Hadamard)."""

    name = "compressed_sensing"

    def __init__(
        self,
        n: int = 128,
        sampling: str = "fourier",
        rate: float = 0.25,
        image: str = "phantom",
        levels: int | None = None,
        sparsity: int = 500,
        noise: float = 0.0,
        lam: float = 2.5e-4,
        weights: Any = None,
        full_levels: int = 2,
        decay: float = 1.0,
        wavelet: str = "haar",
        seed: int = 0,
    ) -> None:
        super().__init__(n=n, sampling=sampling, rate=rate, image=image, levels=levels,
                         sparsity=sparsity, noise=noise, lam=lam, weights=weights,
                         full_levels=full_levels, decay=decay, wavelet=wavelet,
                         seed=seed)  # fmt: skip
        rng = np.random.default_rng(seed)
        self.synthesis = (
            HaarSynthesis(n, levels)
            if wavelet == "haar"
            else DaubechiesSynthesis(n, wavelet, levels)
        )
        mask = multilevel_mask(n, rate, kind=sampling, full_levels=full_levels, decay=decay,
                               seed=seed)  # fmt: skip
        self.mask = mask
        self.sampler = (
            SubsampledFourier(mask) if sampling == "fourier" else SubsampledWalshHadamard(mask)
        )
        self.operator = Composition(self.sampler, self.synthesis)
        if image == "phantom":
            img = shepp_logan(n)
        elif image == "ellipses":
            img = random_ellipses(n, rng)
        elif image == "sparse_phantom":
            img = shepp_logan(n)
        else:
            raise ValueError(
                f"image must be 'phantom', 'ellipses' or 'sparse_phantom', got {image!r}"
            )
        coeffs = self.synthesis.adjoint(torch.as_tensor(img, dtype=torch.float64))
        if image == "sparse_phantom":
            if not 0 < sparsity <= n * n:
                raise ValueError(f"sparsity must lie in [1, {n * n}], got {sparsity}")
            keep = coeffs.abs().flatten().argsort(descending=True)[:sparsity]
            sparse = torch.zeros(n * n, dtype=torch.float64)
            sparse[keep] = coeffs.flatten()[keep]
            coeffs = sparse.reshape(n, n)
        self.coefficients = coeffs
        self.image = self.synthesis.forward(coeffs).numpy()
        self.clean_measurements = self.operator.forward(coeffs)
        self.measurements, self.noise_norm = _add_noise(self.clean_measurements, noise, rng)
        self.lam = float(lam)
        if isinstance(weights, str):
            if weights != "levels":
                raise ValueError(f"weights must be None, 'levels' or an array, got {weights!r}")
            lev = haar_level_sizes(n, self.synthesis.levels)
            nz = np.abs(coeffs.numpy()) > 1e-3 * float(coeffs.abs().max())
            local = np.array(
                [max(int(nz[lev == j].sum()), 1) for j in range(self.synthesis.levels + 1)]
            )
            self.weights = level_weights(n, self.synthesis.levels, local)
        else:
            self.weights = None if weights is None else np.asarray(weights, dtype=float)


@PROBLEMS.register("compressed_sensing")
def compressed_sensing(**params: Any) -> CompressedSensingProblem:
    return CompressedSensingProblem(**params)


# ------------------------------------------------------------------ Table 1 problem class ---
class InexactLassoProblem(InverseProblem):
    """The problem class ``Ω_K`` of the paper's Table 1 (``x ∈ R^{N1+N2}``, ``y ∈ R^{N2+1}``).

    ``A = D [[a^T, 0], [0, ||a|| I_{N2}]]`` with ``D`` the orthonormal DCT (``dct=True``) and
    ``a = γλ/(1−δ) (1, …, 1)`` except ``a_j = γλ/ρ`` (``ρ = 1 − δ − t``, a perturbation of size
    ``~2^{-n-1}`` that makes ``j`` the winning index), ``γ = √2 (1−δ) 10^K / (3λ)``; ``y = D e_1``.
    The unique SR-LASSO minimiser is ``x = e_j / a_j`` (``coefficients``). Two members with
    ``j = 1`` and ``j = 2`` (same ``n``) differ by less than ``2^{-n}`` in ``A`` while their
    minimisers are ``≈ 3·10^{-K}`` apart: the inexact-input barrier. ``j`` is 1-based.
    """

    name = "inexact_lasso"
    dim = 1

    def __init__(
        self, K: int = 1, n: int = 10, j: int = 1, N1: int = 2, N2: int = 20, delta: float = 1 / 6,
        lam: float = 1.0, dct: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(K=K, n=n, j=j, N1=N1, N2=N2, delta=delta, lam=lam, dct=dct)
        if not 1 <= j <= N1 or N1 < 2 or N2 < 1:
            raise ValueError(f"need N1 >= 2, N2 >= 1 and 1 <= j <= N1, got j={j}, N1={N1}, N2={N2}")
        if not 0 < delta < 0.25 or not 0 < lam <= 1:
            raise ValueError(f"need 0 < delta < 1/4 and 0 < lam <= 1, got {delta}, {lam}")
        gamma = math.sqrt(2) * (1 - delta) * 10.0**K / (3 * lam)
        a = np.full(N1, gamma * lam / (1 - delta))
        eps, rho = 2.0 ** (-n - 1), 1 - delta
        t = (eps / (gamma * lam)) * rho * rho / (1 + (eps / (gamma * lam)) * rho)
        a[j - 1] = gamma * lam / (rho - t)
        norm_a = float(np.linalg.norm(a))
        M = np.zeros((N2 + 1, N1 + N2))
        M[0, :N1] = a
        M[1:, N1:] = norm_a * np.eye(N2)
        y = np.zeros(N2 + 1)
        y[0] = 1.0
        self.dct_matrix = (
            scipy.fft.dct(np.eye(N2 + 1), axis=0, norm="ortho") if dct else np.eye(N2 + 1)
        )
        self.matrix = self.dct_matrix @ M
        self.operator = self.sampler = MatrixOperator(self.matrix)
        self.row, self.norm_a = a, norm_a
        x = np.zeros(N1 + N2)
        x[j - 1] = 1.0 / a[j - 1]
        self.coefficients = torch.as_tensor(x)
        self.image = x
        self.measurements = torch.as_tensor(self.dct_matrix @ y)
        self.lam, self.K, self.n, self.j, self.N1, self.N2 = float(lam), K, n, j, N1, N2
        self.f_star = float(lam / a[j - 1])  # F at the minimiser: λ/a_j + 0

    def training_set(self, count: int, sparsity: int = 5, seed: int = 0) -> tuple[Tensor, Tensor]:
        """``count`` pairs ``(y, x)`` from ``Ω_K`` with this ``A``: ``x_j = 1/a_j`` plus
        ``sparsity`` Gaussian entries ``/||a||`` in the last ``N2`` positions, ``y = A x``."""
        if not 0 <= sparsity <= self.N2:
            raise ValueError(f"sparsity must lie in [0, N2={self.N2}], got {sparsity}")
        rng = np.random.default_rng(seed)
        X = np.zeros((count, self.N1 + self.N2))
        X[:, self.j - 1] = 1.0 / self.row[self.j - 1]
        for i in range(count):
            idx = self.N1 + rng.permutation(self.N2)[:sparsity]
            X[i, idx] = rng.standard_normal(sparsity) / self.norm_a
        Y = X @ self.matrix.T
        return torch.as_tensor(Y), torch.as_tensor(X)


@PROBLEMS.register("inexact_lasso")
def inexact_lasso(**params: Any) -> InexactLassoProblem:
    return InexactLassoProblem(**params)


# ------------------------------------------------------------------ Poisson sparse source ---
class PoissonSourceProblem(InverseProblem):
    """Sparse source identification: ``-Δ_h u = c`` (``get_problem("poisson", dim=2, n=n)``'s
    5-point matrix ``K``), ``y = u[points] + e`` at ``measurements`` random grid nodes; ``c`` has
    ``sources`` non-zero nodal values in ``[1, 2]`` at random nodes. The raw forward map is
    ``A = P K^{-1}`` (``P`` the point sampling, applied through a sparse LU factorisation).

    ``A`` is badly scaled and very coherent: ``||A|| = 1/λ_min(K) ≈ 0.05`` while its columns
    (the discrete Green's functions seen by the sensors) have norms ``~1e-3`` and neighbouring
    columns a correlation up to 0.999. Noiseless, the SR-LASSO minimiser (with column weights) is
    still the true source, but the restart schedule is only guaranteed to keep its rate for
    ``p >= 2e·C·L_A`` inner iterations, ``C`` the sharpness constant
    ``||x − x*|| <= C (F(x) − F*)``; estimated from below, ``2e·C·L_A`` is ~18000 for the raw and
    ~650 for the column-normalised ``A``, and FIRENET stalls on both at practical depths.
    ``formulation`` chooses the unknowns and data:

    * ``"whitened"`` (default): ``Ã = M A S``, ``y' = M y`` with ``M = (A A^T)^{-1/2}`` (the
      sensors' data whitened, so ``M A`` has orthonormal rows; the "puffer" preconditioner of
      Jia & Rohe) and ``S = diag(1/||M A e_j||)`` (unit columns). Unknowns ``w = S^{-1} c``; the
      unweighted ℓ¹ norm of ``w`` is the ℓ¹ norm of ``c`` weighted by ``||M A e_j||``. Noiseless,
      the SR-LASSO minimiser is unchanged in the sense that ``{A c = y} = {Ã w = y'}``; noise
      is amplified by ``||M|| = 1/σ_min(A)`` (``noise_norm`` is ``||M e||``).
    * ``"normalized"``: ``Ã = A D``, ``D = diag(1/||A e_j||)``, ``y`` unchanged, ``w = D^{-1} c``
      (column normalisation = ℓ¹ weights ``||A e_j||`` on ``c``).
    * ``"raw"``: ``A`` on ``c`` itself, with ``weights="columns"`` (``||A e_j||``) or ``None``.

    With the defaults (31² grid, 240 sensors, 4 sources, ``lam = 0.1``) the whitened problem has
    ``L_A ≈ 4.4`` and FIRENET recovers the source with ``p = 100`` for 4 of our 5 seeds and with
    ``p = 400`` (10000 layers) for all of them (noiseless: source error <= 1e-11; 1% raw noise:
    error 0.03–0.10, median 0.065, within 0.5% of the SR-LASSO minimiser, whose own error it is),
    where the raw and column-normalised formulations stall at errors 0.87–0.95 with the same
    network (``experiments/firenet/README.md``).

    ``coefficients`` are the true unknowns of the chosen formulation, ``synthesize`` maps them to
    the source grid ``c`` (``image``). ``L_A`` of the rescaled operators is ``||Ã||₂`` from a dense
    SVD (``m`` sparse solves build ``A``), times ``1 + 1e-9``.
    """

    name = "poisson_source"

    def __init__(
        self, n: int = 31, measurements: int | float = 0.25, sources: int = 4, noise: float = 0.0,
        lam: float = 0.1, formulation: str = "whitened", weights: Any = "columns", seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(n=n, measurements=measurements, sources=sources, noise=noise, lam=lam,
                         formulation=formulation, weights=weights, seed=seed)  # fmt: skip
        from pdesolve.problems import get_problem

        if formulation not in ("whitened", "normalized", "raw"):
            raise ValueError(
                f"formulation must be 'whitened', 'normalized' or 'raw', got {formulation!r}"
            )
        if formulation != "raw" and not (weights is None or isinstance(weights, str)):
            raise ValueError(
                "explicit weights apply to formulation='raw' only: the rescaled formulations "
                "normalise the columns, which is the column weighting"
            )
        system = get_problem("poisson", dim=2, n=n).discretize()
        N = system.size
        m = round(measurements * N) if isinstance(measurements, float) else int(measurements)
        if not 1 <= m <= N or not 1 <= sources <= N:
            raise ValueError(f"need 1 <= measurements, sources <= {N}, got {m} and {sources}")
        rng = np.random.default_rng(seed)
        points = np.sort(rng.choice(N, size=m, replace=False))
        self.formulation = formulation
        self.poisson = PoissonPointSampling(system.A, points)
        self.points, self.grid_shape = points, (n, n)
        c = np.zeros(N)
        c[rng.choice(N, size=sources, replace=False)] = rng.uniform(1.0, 2.0, size=sources)
        self.source_values = torch.as_tensor(c)
        self.image = c.reshape(n, n)
        clean = self.poisson.forward(self.source_values)
        noisy, raw_noise = _add_noise(clean, noise, rng)
        self.raw_measurements, self.raw_noise_norm = noisy, raw_noise
        # the dense m × N matrix A = P K^{-1} (rows = K^{-T} P^T, m sparse solves)
        full = np.zeros((N, m))
        full[points, np.arange(m)] = 1.0
        dense = spla.splu(system.A.tocsc().T.tocsc()).solve(full).T
        self.lam = float(lam)
        self.weights = None
        if formulation == "raw":
            self.operator = self.sampler = self.poisson
            self.scale = np.ones(N)
            if isinstance(weights, str):
                if weights != "columns":
                    raise ValueError(
                        f"weights must be None, 'columns' or an array, got {weights!r}"
                    )
                self.weights = np.linalg.norm(dense, axis=0)
            else:
                self.weights = None if weights is None else np.asarray(weights, dtype=float)
            self.measurements, self.noise_norm = noisy, raw_noise
            self.clean_measurements = clean
            self.whitening = None
        else:
            if formulation == "whitened":
                evals, evecs = np.linalg.eigh(dense @ dense.T)
                if evals.min() <= 1e-14 * evals.max():
                    raise ValueError("A A^T is singular: the sensors do not give independent data")
                whitening = (evecs / np.sqrt(evals)) @ evecs.T  # (A A^T)^{-1/2}
                self.whitening = MatrixOperator(whitening)
                rows = whitening @ dense
            else:
                self.whitening, rows = None, dense
            self.scale = 1.0 / np.linalg.norm(rows, axis=0)
            bound = float(np.linalg.norm(rows * self.scale, 2)) * (1.0 + 1e-9)
            inner = Composition(self.poisson, Diagonal(self.scale))
            op = inner if self.whitening is None else Composition(self.whitening, inner)
            self.operator = self.sampler = Composition(op.outer, op.inner, norm_bound=bound)
            self.clean_measurements = self.whiten(clean)
            self.measurements = self.whiten(noisy)
            self.noise_norm = float(
                torch.linalg.vector_norm(self.measurements - self.clean_measurements)
            )
        self.synthesis = Diagonal(self.scale)
        self.coefficients = torch.as_tensor(c / self.scale)

    def whiten(self, y: Tensor) -> Tensor:
        """Raw sensor values -> this formulation's measurements (``M y``, or ``y`` itself)."""
        return y if self.whitening is None else self.whitening.forward(y)

    def synthesize(self, coefficients: Tensor) -> Tensor:
        c = self.synthesis.forward(coefficients)
        return c.reshape(*c.shape[:-1], *self.grid_shape)


@PROBLEMS.register("poisson_source")
def poisson_source(**params: Any) -> PoissonSourceProblem:
    return PoissonSourceProblem(**params)
