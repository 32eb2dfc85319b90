"""Matrix-free operators in torch: a stencil array applied as a shifted-slice convolution, and CSR.

``StencilOperator`` applies ``(A x)[p] = Σ_o S[p, o] x[p + o - 1]`` for a stencil array ``S`` of
shape ``grid + (3,)*d`` (pdesolve's layout; links leaving the grid are dropped, as in
``stencil_to_csr``) to a batch of grid fields ``(B, *grid)``, on CPU or CUDA, in the stencil's
dtype. Only non-zero offsets are visited (5 in 2D, 7 in 3D for the Laplacian).

>>> import numpy as np
>>> from pdesolve.discretize.finite_difference import stencil_to_csr
>>> s = np.random.default_rng(0).normal(size=(4, 5, 3, 3))
>>> op = StencilOperator(s)
>>> x = np.random.default_rng(1).normal(size=(4, 5))
>>> y = op(torch.as_tensor(x)[None]).numpy().ravel()
>>> bool(np.allclose(y, stencil_to_csr(s) @ x.ravel(), rtol=1e-13, atol=1e-13))
True
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


class StencilOperator(torch.nn.Module):
    """A structured-grid operator from its stencil array, applied matrix-free to ``(B, *grid)``."""

    def __init__(
        self, stencil: np.ndarray, dtype: torch.dtype = torch.float64, device: str = "cpu"
    ) -> None:
        super().__init__()
        stencil = np.asarray(stencil)
        dim = stencil.ndim // 2
        if stencil.ndim != 2 * dim or stencil.shape[dim:] != (3,) * dim or dim < 1:
            raise ValueError(f"a stencil array has shape grid + (3,)*dim, got {stencil.shape}")
        self.dim = dim
        self.grid_shape = tuple(stencil.shape[:dim])
        offsets, coefs = [], []
        for off in itertools.product(range(3), repeat=dim):
            c = stencil[(...,) + off]
            if np.any(c != 0):
                offsets.append(off)
                coefs.append(c)
        self.offsets = offsets
        self.register_buffer("coefs", torch.as_tensor(np.stack(coefs), dtype=dtype, device=device))

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-self.dim :]) != self.grid_shape:
            raise ValueError(
                f"operator acts on grid {self.grid_shape}, got a field of shape {tuple(x.shape)}"
            )
        xp = torch.nn.functional.pad(x, (1, 1) * self.dim)
        out = torch.zeros_like(x)
        for c, off in zip(self.coefs, self.offsets, strict=True):
            sl = tuple(slice(o, o + n) for o, n in zip(off, self.grid_shape, strict=True))
            out = out + c * xp[(...,) + sl]
        return out


def csr_to_torch(
    A: sp.csr_matrix, dtype: torch.dtype = torch.float64, device: str = "cpu"
) -> Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (``A_t @ x`` for ``x`` of shape (n, B)).

    >>> A = sp.csr_matrix(np.array([[2.0, -1.0], [-1.0, 2.0]]))
    >>> (csr_to_torch(A) @ torch.ones(2, 1, dtype=torch.float64)).ravel().tolist()
    [1.0, 1.0]
    """
    A = sp.csr_matrix(A)
    A.sort_indices()
    with warnings.catch_warnings():  # torch: "sparse CSR support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(A.indptr, dtype=torch.int64),
            torch.as_tensor(A.indices, dtype=torch.int64),
            torch.as_tensor(A.data),
            size=A.shape,
            dtype=dtype,
            device=device,
            check_invariants=False,
        )


#: how :class:`DeviceMatrix` applies ``A``
MATVECS = ("auto", "stencil", "csr")


class DeviceMatrix:
    """``v -> A v`` on flat float64 torch vectors of one device, for iterations that keep their
    vectors there: a :class:`StencilOperator` (``kind="stencil"``) or a torch sparse CSR matrix
    (``"csr"``). ``"auto"`` takes the stencil when one is given and reproduces ``A`` (checked on
    one random vector; a stencil left over from other values of ``A`` is not used), else CSR.

    >>> import numpy as np
    >>> from pdesolve.discretize.finite_difference import stencil_to_csr
    >>> s = np.random.default_rng(0).normal(size=(4, 5, 3, 3))
    >>> op = DeviceMatrix(stencil_to_csr(s), s)
    >>> x = torch.ones(20, dtype=torch.float64)
    >>> op.kind, bool(torch.allclose(op(x), torch.as_tensor(stencil_to_csr(s) @ np.ones(20))))
    ('stencil', True)
    """

    def __init__(
        self, A: sp.spmatrix, stencil: np.ndarray | None = None, device: str = "cpu",
        kind: str = "auto",
    ) -> None:  # fmt: skip
        if kind not in MATVECS:
            raise ValueError(f"unknown matvec {kind!r}; known: {', '.join(MATVECS)}")
        A = sp.csr_matrix(A, dtype=np.float64)
        n = A.shape[0]
        fits = stencil is not None and _stencil_reproduces(A, np.asarray(stencil))
        if kind == "stencil" and not fits:
            raise ValueError(
                "matvec='stencil' needs the system's stencil array, and one that reproduces A "
                "(this system has none, or its stencil belongs to other values of A)"
            )
        self.kind = "stencil" if kind == "stencil" or (kind == "auto" and fits) else "csr"
        self.n, self.device = n, torch.device(device)
        if self.kind == "stencil":
            self._stencil = StencilOperator(stencil, dtype=torch.float64, device=device)
            self._shape = (1,) + self._stencil.grid_shape
        else:
            self._csr = csr_to_torch(A, device=device)

    def __call__(self, v: Tensor) -> Tensor:
        if self.kind == "stencil":
            return self._stencil(v.reshape(self._shape)).reshape(-1)
        return torch.mv(self._csr, v)


def _stencil_reproduces(A: sp.csr_matrix, stencil: np.ndarray) -> bool:
    """Whether ``stencil`` (grid + (3,)*d) applies as ``A`` to a random vector (rounding only)."""
    dim = stencil.ndim // 2
    if stencil.ndim != 2 * dim or dim < 1 or stencil.shape[dim:] != (3,) * dim:
        return False
    if int(np.prod(stencil.shape[:dim])) != A.shape[0]:
        return False
    x = np.random.default_rng(0).standard_normal(A.shape[0])
    ref = A @ x
    with torch.no_grad():
        got = StencilOperator(stencil)(torch.as_tensor(x).reshape((1,) + stencil.shape[:dim]))
    err = float(np.max(np.abs(got.numpy().ravel() - ref), initial=0.0))
    return err <= 1e-12 * max(float(np.max(np.abs(ref), initial=0.0)), 1e-300)
