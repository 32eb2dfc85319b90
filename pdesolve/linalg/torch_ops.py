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
    return torch.sparse_csr_tensor(
        torch.as_tensor(A.indptr, dtype=torch.int64),
        torch.as_tensor(A.indices, dtype=torch.int64),
        torch.as_tensor(A.data),
        size=A.shape,
        dtype=dtype,
        device=device,
    )
