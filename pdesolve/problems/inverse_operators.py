"""Linear operators for inverse problems ``y = A x + e``, in torch (batched, differentiable).

Every operator maps tensors of shape ``(*batch, *domain_shape)`` to ``(*batch, *range_shape)`` and
exposes ``forward``, ``adjoint`` and ``norm_bound`` (a number ``L_A >= ||A||``). Adjoints are
taken in the real inner product ``<u, v> = Re sum conj(u) v``, so a real-domain operator with
complex measurements (subsampled Fourier) has the adjoint ``Re(A^H y)``.

* ``SubsampledFourier``: ``x -> P_Ω F x`` with the unitary, centred 2D DFT.
* ``SubsampledWalshHadamard``: ``x -> P_Ω H x`` with the orthonormal 2D Walsh–Hadamard transform in
  sequency order (row ``k`` has ``k`` sign changes).
* ``HaarSynthesis``: orthonormal 2D Haar wavelet synthesis ``W^*`` (coefficients -> image).
* ``DaubechiesSynthesis``: orthonormal periodic 2D Daubechies synthesis (``db2`` ... ``db20``,
  through PyWavelets), same pyramid layout as ``HaarSynthesis``.
* ``MatrixOperator``: a dense matrix; ``Diagonal``: ``x -> d ⊙ x``; ``Composition``:
  ``outer ∘ inner``.
* ``PoissonPointSampling``: ``c -> P (-Δ_h)^{-1} c`` (a sparse LU factorisation).
* ``multilevel_mask``: variable-density multilevel sampling patterns on dyadic levels.

>>> import torch
>>> A = Composition(SubsampledFourier(multilevel_mask(32, 0.3, seed=0)), HaarSynthesis(32))
>>> x = torch.randn(2, 32, 32, dtype=torch.float64)
>>> A.forward(x).shape == (2, A.range_shape[0]), A.norm_bound
(True, 1.0)
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

__all__ = [
    "Composition",
    "DaubechiesSynthesis",
    "Diagonal",
    "HaarSynthesis",
    "LinearOperator",
    "MatrixOperator",
    "PoissonPointSampling",
    "SubsampledFourier",
    "SubsampledWalshHadamard",
    "haar_analysis",
    "haar_level_sizes",
    "haar_synthesis",
    "multilevel_mask",
    "walsh_hadamard2",
]


class LinearOperator(ABC):
    """A bounded linear map with an adjoint and a norm bound ``norm_bound >= ||A||``."""

    domain_shape: tuple[int, ...]
    range_shape: tuple[int, ...]
    norm_bound: float
    #: whether ``forward`` returns complex values for real input
    complex_range: bool = False

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """``A x`` for ``x`` of shape ``(*batch, *domain_shape)``."""

    @abstractmethod
    def adjoint(self, y: Tensor) -> Tensor:
        """``A^* y`` for ``y`` of shape ``(*batch, *range_shape)``."""

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def _placed(self, name: str, t: Tensor, like: Tensor, dtype: torch.dtype | None = None
                ) -> Tensor:  # fmt: skip
        """The operator's tensor ``t`` (attribute ``name``) on ``like``'s device (and ``dtype``),
        copied there once and kept: iterations on a GPU then copy nothing per application."""
        dtype = t.dtype if dtype is None else dtype
        if t.device == like.device and t.dtype == dtype:
            return t
        cache = self.__dict__.setdefault("_placed_tensors", {})
        key = (name, like.device, dtype)
        if key not in cache or cache[key][0] is not t:  # (re)placed when the attribute changes
            cache[key] = (t, t.to(device=like.device, dtype=dtype))
        return cache[key][1]

    def check_range(self, y: Tensor, name: str = "measurements") -> None:
        """Raise a clear ``ValueError`` if ``y`` does not end in ``range_shape``."""
        nd = len(self.range_shape)
        if tuple(y.shape[y.ndim - nd :]) != tuple(self.range_shape) or y.ndim < nd:
            raise ValueError(
                f"{name} have shape {tuple(y.shape)}, but the operator {type(self).__name__} "
                f"produces {self.range_shape} (plus leading batch dimensions): wrong length"
            )

    def check_domain(self, x: Tensor, name: str = "x") -> None:
        """Raise a clear ``ValueError`` if ``x`` does not end in ``domain_shape``."""
        nd = len(self.domain_shape)
        if tuple(x.shape[x.ndim - nd :]) != tuple(self.domain_shape) or x.ndim < nd:
            raise ValueError(
                f"{name} has shape {tuple(x.shape)}, but the operator {type(self).__name__} "
                f"acts on {self.domain_shape} (plus leading batch dimensions)"
            )

    def estimate_norm(self, iterations: int = 50, seed: int = 0) -> float:
        """A power-iteration estimate of ``||A||`` (a lower bound, float64, CPU)."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(self.domain_shape, generator=gen, dtype=torch.float64)
        x = x / torch.linalg.vector_norm(x)
        value = 0.0
        for _ in range(iterations):
            x = self.adjoint(self.forward(x))
            value = float(torch.linalg.vector_norm(x))
            if value == 0.0:
                return 0.0
            x = x / value
        return math.sqrt(value)


def _as_real(x: Tensor) -> Tensor:
    return x.real if x.is_complex() else x


# -------------------------------------------------------------------------- Haar wavelets ---
def _check_levels(n: int, levels: int) -> None:
    if n < 2 or n & (n - 1):
        raise ValueError(f"Haar wavelets need a power-of-two image side, got {n}")
    if not 0 <= levels <= int(math.log2(n)):
        raise ValueError(
            f"levels must lie in [0, log2({n})] = [0, {int(math.log2(n))}], got {levels}"
        )


def haar_analysis(x: Tensor, levels: int) -> Tensor:
    """Orthonormal 2D Haar analysis of ``(..., n, n)`` images, pyramid layout.

    The coarsest approximation sits in the top-left ``n/2^levels`` square; each level's
    detail bands (horizontal, vertical, diagonal) fill the three remaining quadrants.
    """
    if levels == 0:
        return x
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    low = haar_analysis((a + b + c + d) / 2, levels - 1)
    horizontal, vertical, diagonal = (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2
    top = torch.cat([low, horizontal], dim=-1)
    bottom = torch.cat([vertical, diagonal], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def haar_synthesis(c: Tensor, levels: int) -> Tensor:
    """Inverse (= adjoint) of :func:`haar_analysis`."""
    if levels == 0:
        return c
    h = c.shape[-1] // 2
    low = haar_synthesis(c[..., :h, :h], levels - 1)
    hor, ver, dia = c[..., :h, h:], c[..., h:, :h], c[..., h:, h:]
    a, b = (low + hor + ver + dia) / 2, (low - hor + ver - dia) / 2
    cc, d = (low + hor - ver - dia) / 2, (low - hor - ver + dia) / 2
    even = torch.stack([a, b], dim=-1).flatten(-2)  # rows 0::2
    odd = torch.stack([cc, d], dim=-1).flatten(-2)  # rows 1::2
    return torch.stack([even, odd], dim=-2).flatten(-3, -2)


def haar_level_sizes(n: int, levels: int) -> np.ndarray:
    """Integer map ``(n, n)``: 0 on the coarse approximation, ``j`` on the ``j``-th detail level
    counted from the coarsest (``1 .. levels``)."""
    _check_levels(n, levels)
    out = np.zeros((n, n), dtype=np.int64)
    size = n
    for j in range(levels, 0, -1):
        half = size // 2
        out[:size, :size][np.add.outer(np.arange(size) >= half, np.arange(size) >= half)] = j
        size = half
    return out


class HaarSynthesis(LinearOperator):
    """Orthonormal 2D Haar synthesis ``W^*`` (coefficients -> image); ``||W^*|| = 1``.

    ``levels`` defaults to ``log2(n) - 3`` (coarsest scale 8×8).

    >>> import torch
    >>> W = HaarSynthesis(16)
    >>> x = torch.randn(16, 16, dtype=torch.float64)
    >>> bool(torch.allclose(W.forward(W.adjoint(x)), x))
    True
    """

    def __init__(self, n: int, levels: int | None = None) -> None:
        levels = max(int(math.log2(n)) - 3, 1) if levels is None else int(levels)
        _check_levels(n, levels)
        self.n, self.levels = n, levels
        self.domain_shape = self.range_shape = (n, n)
        self.norm_bound = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return haar_synthesis(x, self.levels)

    def adjoint(self, y: Tensor) -> Tensor:
        return haar_analysis(y, self.levels)


class _OrthogonalWaveletFunction(torch.autograd.Function):
    """Differentiable orthonormal wavelet synthesis (``inverse=False``) or analysis; the backward
    of either is the other (the transform is orthogonal, so its adjoint is its inverse)."""

    @staticmethod
    def forward(ctx, x: Tensor, op: DaubechiesSynthesis, inverse: bool) -> Tensor:  # type: ignore[override]
        ctx.op, ctx.inverse = op, inverse
        return op._analysis_numpy(x) if inverse else op._synthesis_numpy(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        op = ctx.op
        return (op._synthesis_numpy(grad) if ctx.inverse else op._analysis_numpy(grad)), None, None


class DaubechiesSynthesis(LinearOperator):
    """Orthonormal periodic 2D Daubechies synthesis ``W^*`` (coefficients -> image), norm 1.

    PyWavelets' ``wavedec2``/``waverec2`` in ``periodization`` mode, which is an orthogonal
    transform of ``n × n`` images (``n`` a power of two); coefficients in the pyramid layout of
    :class:`HaarSynthesis` (coarsest approximation top-left, so :func:`haar_level_sizes` gives the
    levels). ``levels`` defaults to ``log2(n) - 3``. Differentiable (the adjoint is the analysis).

    >>> import torch
    >>> W = DaubechiesSynthesis(32, "db4")
    >>> x = torch.randn(2, 32, 32, dtype=torch.float64)
    >>> bool(torch.allclose(W.forward(W.adjoint(x)), x)), W.levels
    (True, 2)
    """

    def __init__(self, n: int, wavelet: str = "db4", levels: int | None = None) -> None:
        import pywt

        if not (isinstance(wavelet, str) and wavelet.startswith("db")
                and wavelet in pywt.wavelist("db")):  # fmt: skip
            raise ValueError(f"wavelet must be a Daubechies name db1 ... db38, got {wavelet!r}")
        levels = max(int(math.log2(n)) - 3, 1) if levels is None else int(levels)
        _check_levels(n, levels)
        self.n, self.levels, self.wavelet = n, levels, wavelet
        self.domain_shape = self.range_shape = (n, n)
        self.norm_bound = 1.0
        with warnings.catch_warnings():  # "level too high": periodization stays orthogonal
            warnings.simplefilter("ignore", UserWarning)
            template = pywt.wavedec2(np.zeros((n, n)), wavelet, mode="periodization", level=levels)
        _, slices = pywt.coeffs_to_array(template)
        # the same slices on the last two axes, so that batches of coefficient arrays work
        self._slices = [(Ellipsis, *slices[0])] + [
            {key: (Ellipsis, *value) for key, value in level.items()} for level in slices[1:]
        ]

    def _synthesis_numpy(self, c: Tensor) -> Tensor:
        import pywt

        arr = c.detach().cpu().numpy()
        coeffs = pywt.array_to_coeffs(arr, self._slices, output_format="wavedec2")
        out = pywt.waverec2(coeffs, self.wavelet, mode="periodization", axes=(-2, -1))
        return torch.as_tensor(out, dtype=c.dtype, device=c.device)

    def _analysis_numpy(self, x: Tensor) -> Tensor:
        import pywt

        arr = x.detach().cpu().numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            coeffs = pywt.wavedec2(arr, self.wavelet, mode="periodization", level=self.levels,
                                   axes=(-2, -1))  # fmt: skip
        out, _ = pywt.coeffs_to_array(coeffs, axes=(-2, -1))
        return torch.as_tensor(out, dtype=x.dtype, device=x.device)

    def forward(self, x: Tensor) -> Tensor:
        self.check_domain(x, "coefficients")
        return _OrthogonalWaveletFunction.apply(x, self, False)

    def adjoint(self, y: Tensor) -> Tensor:
        self.check_domain(y, "image")
        return _OrthogonalWaveletFunction.apply(y, self, True)


# --------------------------------------------------------------------- sampling patterns ---
def _frequency_radius(n: int, kind: str) -> np.ndarray:
    """Per-index 'frequency' ``(n, n)``: centred ``|k|_∞`` (Fourier) or sequency max (Walsh)."""
    if kind == "fourier":
        k = np.abs(np.arange(n) - n // 2)
    elif kind == "walsh":
        k = np.arange(n)
    else:
        raise ValueError(f"kind must be 'fourier' or 'walsh', got {kind!r}")
    return np.maximum.outer(k, k)


def multilevel_mask(
    n: int,
    rate: float,
    *,
    kind: str = "fourier",
    full_levels: int = 2,
    decay: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """A variable-density multilevel sampling pattern (boolean ``(n, n)``), seeded.

    The frequency plane is split into dyadic levels by ``r = |k|_∞`` (centred for
    ``kind="fourier"``, sequency for ``"walsh"``): level 0 is ``r < 2^full_levels`` and is sampled
    fully, level ``l`` is ``2^(full_levels+l-1) <= r < 2^(full_levels+l)``. Level ``l`` is sampled
    uniformly at random with density ``min(1, c 2^(-decay l))``, ``c`` chosen so that
    ``round(rate n²)`` samples are taken in all. These dyadic levels match the Haar
    scales, as in multilevel compressed sensing.

    >>> mask = multilevel_mask(64, 0.25, seed=1)
    >>> mask.shape, int(mask.sum()) == round(0.25 * 64 * 64), bool(mask[32, 32])
    ((64, 64), True, True)
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sampling rate must lie in (0, 1], got {rate}")
    if n < 4 or n & (n - 1):
        raise ValueError(f"sampling patterns need a power-of-two side >= 4, got {n}")
    radius = _frequency_radius(n, kind)
    bounds = [0, 2**full_levels]
    while bounds[-1] < radius.max() + 1:
        bounds.append(2 * bounds[-1])
    level = np.searchsorted(np.asarray(bounds[1:]), radius, side="right")
    sizes = np.bincount(level.ravel(), minlength=len(bounds) - 1)
    target = round(rate * n * n)
    if target < sizes[0]:
        raise ValueError(
            f"rate {rate} gives {target} samples, fewer than the {sizes[0]} of the fully sampled "
            f"centre (full_levels={full_levels}); raise the rate or lower full_levels"
        )

    def counts(c: float) -> np.ndarray:
        dens = np.minimum(1.0, c * 2.0 ** (-decay * np.arange(len(sizes))))
        dens[0] = 1.0
        return np.floor(dens * sizes).astype(np.int64)

    lo, hi = 0.0, 2.0 ** (decay * len(sizes)) + 1.0
    for _ in range(200):  # bisection on the density constant
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if counts(mid).sum() < target else (lo, mid)
    per_level = counts(lo)
    short = target - per_level.sum()  # top up the finest-first levels that still have room
    for lev in range(1, len(sizes)):
        add = min(short, sizes[lev] - per_level[lev])
        per_level[lev] += add
        short -= add
    rng = np.random.default_rng(seed)
    mask = np.zeros(n * n, dtype=bool)
    flat_level = level.ravel()
    for lev, count in enumerate(per_level):
        idx = np.flatnonzero(flat_level == lev)
        mask[rng.choice(idx, size=int(count), replace=False)] = True
    return mask.reshape(n, n)


class _Subsampled(LinearOperator):
    """``P_Ω T`` for a unitary 2D transform ``T`` and a boolean pattern ``mask``."""

    def __init__(self, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
            raise ValueError(f"the sampling mask must be a square 2-D array, got {mask.shape}")
        if not mask.any():
            raise ValueError("the sampling mask selects no samples")
        self.mask = mask
        self.n = mask.shape[0]
        self._index = torch.as_tensor(np.flatnonzero(mask.ravel()))
        self.domain_shape = (self.n, self.n)
        self.range_shape = (int(mask.sum()),)
        self.norm_bound = 1.0

    def _select(self, full: Tensor) -> Tensor:
        return full.flatten(-2).index_select(-1, self._placed("_index", self._index, full))

    def _zero_fill(self, y: Tensor) -> Tensor:
        out = y.new_zeros((*y.shape[:-1], self.n * self.n))
        out = out.index_add(-1, self._placed("_index", self._index, y), y)
        return out.unflatten(-1, (self.n, self.n))


class SubsampledFourier(_Subsampled):
    """``x -> P_Ω F x``: the unitary 2D DFT, zero frequency at the centre ``(n/2, n/2)``.

    Real images, complex measurements; ``adjoint`` returns ``Re(F^H P_Ω^T y)`` (set
    ``real_domain=False`` for complex images).
    """

    complex_range = True

    def __init__(self, mask: np.ndarray, real_domain: bool = True) -> None:
        super().__init__(mask)
        self.real_domain = real_domain

    def forward(self, x: Tensor) -> Tensor:
        spectrum = torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))
        return self._select(spectrum)

    def adjoint(self, y: Tensor) -> Tensor:
        full = torch.fft.ifftshift(self._zero_fill(y), dim=(-2, -1))
        x = torch.fft.ifft2(full, norm="ortho")
        return x.real if self.real_domain else x


def _sequency_permutation(n: int) -> np.ndarray:
    """``perm[s]`` = natural (Hadamard) row index of the row with ``s`` sign changes."""
    bits = int(math.log2(n))
    s = np.arange(n)
    gray = s ^ (s >> 1)
    rev = np.zeros(n, dtype=np.int64)
    for b in range(bits):
        rev |= ((gray >> b) & 1) << (bits - 1 - b)
    return rev


def _wht_last(x: Tensor) -> Tensor:
    """Orthonormal Walsh–Hadamard transform (natural order) along the last axis."""
    n = x.shape[-1]
    bits = int(math.log2(n))
    shape = x.shape[:-1]
    x = x.reshape(*shape, *([2] * bits))
    for axis in range(len(shape), len(shape) + bits):
        a, b = x.select(axis, 0), x.select(axis, 1)
        x = torch.stack([a + b, a - b], dim=axis) / math.sqrt(2.0)
    return x.reshape(*shape, n)


def walsh_hadamard2(x: Tensor) -> Tensor:
    """Orthonormal, symmetric 2D Walsh–Hadamard transform (natural order) of ``(..., n, n)``."""
    return _wht_last(_wht_last(x).transpose(-1, -2)).transpose(-1, -2)


class SubsampledWalshHadamard(_Subsampled):
    """``x -> P_Ω H x``: the orthonormal 2D Walsh–Hadamard transform in sequency order.

    The mask is indexed in sequency order (``mask[0, 0]`` = constant function), so
    ``multilevel_mask(n, rate, kind="walsh")`` gives the variable-density pattern.
    """

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__(mask)
        if self.n & (self.n - 1):
            raise ValueError(f"Walsh–Hadamard needs a power-of-two side, got {self.n}")
        perm = _sequency_permutation(self.n)
        nat = (perm[:, None] * self.n + perm[None, :]).ravel()  # sequency (s1, s2) -> natural
        self._index = torch.as_tensor(nat[np.flatnonzero(self.mask.ravel())])

    def forward(self, x: Tensor) -> Tensor:
        return self._select(walsh_hadamard2(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return walsh_hadamard2(self._zero_fill(y))


# ------------------------------------------------------------------ generic operators ---
class MatrixOperator(LinearOperator):
    """A dense matrix ``M`` (``m × N``) acting on the last axis; ``norm_bound`` = ``||M||_2``
    (computed, times ``1 + 1e-12``) unless given.

    >>> import torch
    >>> A = MatrixOperator(torch.eye(3, dtype=torch.float64))
    >>> A.forward(torch.ones(3)).tolist(), A.norm_bound >= 1.0
    ([1.0, 1.0, 1.0], True)
    """

    def __init__(self, matrix: Tensor | np.ndarray, norm_bound: float | None = None) -> None:
        matrix = torch.as_tensor(matrix)
        if matrix.ndim != 2:
            raise ValueError(f"MatrixOperator needs a 2-D matrix, got shape {tuple(matrix.shape)}")
        if not torch.isfinite(matrix).all():
            raise ValueError("the matrix contains NaN or Inf entries")
        self.matrix = matrix.to(torch.complex128 if matrix.is_complex() else torch.float64)
        self.complex_range = matrix.is_complex()
        self.range_shape, self.domain_shape = (matrix.shape[0],), (matrix.shape[1],)
        exact = float(torch.linalg.matrix_norm(self.matrix, ord=2))
        if norm_bound is None:
            norm_bound = exact * (1.0 + 1e-12)
        elif norm_bound < exact * (1.0 - 1e-12):
            raise ValueError(f"norm_bound {norm_bound} is below ||M||_2 = {exact}")
        self.norm_bound = float(norm_bound)

    def _mat(self, like: Tensor) -> Tensor:
        dtype = self.matrix.dtype if self.complex_range else like.dtype
        return self._placed("matrix", self.matrix, like, dtype)

    def forward(self, x: Tensor) -> Tensor:
        M = self._mat(x)
        return x.to(M.dtype) @ M.T

    def adjoint(self, y: Tensor) -> Tensor:
        out = y @ self._mat(y).conj()
        return _as_real(out) if self.complex_range else out


class Diagonal(LinearOperator):
    """``x -> d ⊙ x`` for a real vector/array ``d`` (self-adjoint); ``norm_bound = max |d|``.

    >>> import torch
    >>> Diagonal(torch.tensor([2.0, -3.0])).forward(torch.ones(2, dtype=torch.float64)).tolist()
    [2.0, -3.0]
    """

    def __init__(self, d: Tensor | np.ndarray) -> None:
        d = torch.as_tensor(np.asarray(d, dtype=np.float64))
        if d.ndim < 1 or not torch.isfinite(d).all():
            raise ValueError("the diagonal must be a finite, at least 1-D real array")
        self.d = d
        self.domain_shape = self.range_shape = tuple(d.shape)
        self.norm_bound = float(d.abs().max())

    def forward(self, x: Tensor) -> Tensor:
        return x * self._placed("d", self.d, x, _as_real(x).dtype)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.forward(y)


class Composition(LinearOperator):
    """``outer ∘ inner``; ``norm_bound`` is the product of the two bounds unless a tighter
    ``norm_bound`` is given (it is checked against a power-iteration estimate of ``||A||``)."""

    def __init__(
        self, outer: LinearOperator, inner: LinearOperator, norm_bound: float | None = None
    ) -> None:
        if tuple(inner.range_shape) != tuple(outer.domain_shape):
            raise ValueError(
                f"cannot compose: inner range {inner.range_shape} != "
                f"outer domain {outer.domain_shape}"
            )
        self.outer, self.inner = outer, inner
        self.domain_shape, self.range_shape = inner.domain_shape, outer.range_shape
        self.norm_bound = outer.norm_bound * inner.norm_bound
        self.complex_range = outer.complex_range or inner.complex_range
        if norm_bound is not None:
            estimate = self.estimate_norm(iterations=100)
            if not (math.isfinite(norm_bound) and norm_bound >= estimate * (1.0 - 1e-9)):
                raise ValueError(
                    f"norm_bound {norm_bound} is below ||A|| >= {estimate} (power iteration)"
                )
            self.norm_bound = float(norm_bound)

    def forward(self, x: Tensor) -> Tensor:
        return self.outer.forward(self.inner.forward(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))


class _SparseSolve(torch.autograd.Function):
    """``x -> S P A^{-1} x`` (mode 'forward') or its adjoint, through a scipy LU factorisation."""

    @staticmethod
    def forward(ctx, x: Tensor, op: PoissonPointSampling, mode: str) -> Tensor:  # type: ignore[override]
        ctx.op, ctx.mode = op, mode
        return op._apply(x, mode)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        other = "adjoint" if ctx.mode == "forward" else "forward"
        return ctx.op._apply(grad, other), None, None


class PoissonPointSampling(LinearOperator):
    """``c -> P K^{-1} c``: the discrete Poisson solution for the source ``c`` (nodal values on
    the grid, ``K`` SPD, e.g. ``-Δ_h``), sampled at the nodes ``points`` (flat indices).

    ``norm_bound`` = ``1 / λ_min(K)`` (``||P|| = 1``), ``λ_min`` from a shift-invert Lanczos
    solve, reduced by ``1e-9`` relative so the bound is safe. Differentiable in torch.
    """

    def __init__(self, K: sp.spmatrix, points: np.ndarray) -> None:
        K = sp.csc_matrix(K, dtype=np.float64)
        if K.shape[0] != K.shape[1]:
            raise ValueError(f"K must be square, got {K.shape}")
        points = np.asarray(points, dtype=np.int64).ravel()
        if points.size == 0 or points.min() < 0 or points.max() >= K.shape[0]:
            raise ValueError("measurement points must be valid, non-empty node indices")
        self.points = points
        self._lu = spla.splu(K)
        self._lu_t = spla.splu(sp.csc_matrix(K.T))
        self.domain_shape, self.range_shape = (K.shape[0],), (points.size,)
        lam_min = spla.eigsh(K, k=1, sigma=0.0, which="LM", return_eigenvectors=False)[0]
        self.norm_bound = float(1.0 / (lam_min * (1.0 - 1e-9)))

    def _apply(self, v: Tensor, mode: str) -> Tensor:
        arr = v.detach().cpu().numpy().astype(np.float64).reshape(-1, v.shape[-1]).T
        if mode == "forward":
            out = self._lu.solve(np.ascontiguousarray(arr))[self.points]
        else:
            full = np.zeros((self.domain_shape[0], arr.shape[1]))
            full[self.points] = arr
            out = self._lu_t.solve(full)
        return torch.as_tensor(out.T.reshape(*v.shape[:-1], -1), dtype=v.dtype, device=v.device)

    def forward(self, x: Tensor) -> Tensor:
        return _SparseSolve.apply(x, self, "forward")

    def adjoint(self, y: Tensor) -> Tensor:
        return _SparseSolve.apply(y, self, "adjoint")
