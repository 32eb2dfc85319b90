"""``LinearSystem``: a validated ``A x = b`` with the grid or mesh it came from."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from pdesolve.linalg.grid import Grid


class InvalidSystemError(ValueError):
    """A linear system that a solver cannot accept (shape, NaN/Inf, symmetry)."""


@dataclass(eq=False)
class LinearSystem:
    """``A x = b`` with ``A`` a square scipy CSR matrix (any sparse or dense input is converted).

    Optional attributes tie the system to its origin: ``geometry`` (a ``StructuredGrid`` or
    ``MeshGeometry``, used to write ``solution.vtu``), ``stencil`` (the stencil array of a
    structured operator, ``grid_shape + (3,) * dim``), ``exact`` (the exact solution at the
    unknowns, when known), ``metadata`` and ``grid`` (a :class:`~pdesolve.linalg.grid.Grid`: the
    structured array the unknowns live on, for multigrid, DCDM and the hybrid correctors).
    A must be real: complex and integer matrices are refused rather than cast.

    >>> import numpy as np, scipy.sparse as sp
    >>> system = LinearSystem(sp.diags([2.0, 3.0]), np.array([2.0, 3.0]))
    >>> system.shape, system.residual_norm(np.ones(2))
    ((2, 2), 0.0)
    """

    A: sp.csr_matrix
    b: np.ndarray
    geometry: Any = None
    stencil: np.ndarray | None = None
    exact: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    grid: Grid | None = None

    def __post_init__(self) -> None:
        self._checks: dict[Any, Any] = {}
        A = self.A
        if isinstance(A, np.ndarray | list) and not sp.issparse(A):
            A = np.asarray(A)
            _check_real_float("A", A.dtype)
            if A.ndim != 2:
                raise InvalidSystemError(
                    f"A must be a 2-D matrix, got an array with shape {A.shape}"
                )
        elif not sp.issparse(A):
            raise InvalidSystemError(
                f"A must be a scipy sparse matrix or a 2-D array, got {type(A).__name__}"
            )
        _check_real_float("A", A.dtype)
        A = sp.csr_matrix(A, dtype=np.float64)
        if A.shape[0] != A.shape[1]:
            raise InvalidSystemError(f"A must be square, got shape {A.shape}")
        A.sum_duplicates()
        if not np.all(np.isfinite(A.data)):
            raise InvalidSystemError("A contains NaN or Inf entries")
        self.A = A
        b = np.asarray(self.b)
        if np.iscomplexobj(b):
            raise InvalidSystemError("b is complex; pdesolve solves real systems")
        b = b.astype(np.float64, copy=False)
        if b.ndim != 1:
            b = b.reshape(-1) if b.ndim == 2 and 1 in b.shape else b
        if b.ndim != 1:
            raise InvalidSystemError(f"b must be a vector, got shape {np.shape(self.b)}")
        if b.shape[0] != A.shape[0]:
            raise InvalidSystemError(
                f"b has length {b.shape[0]} but A has {A.shape[0]} rows (shape mismatch)"
            )
        if not np.all(np.isfinite(b)):
            raise InvalidSystemError("b contains NaN or Inf entries")
        self.b = b
        if self.exact is not None:
            self.exact = self.check_vector(self.exact, "exact")
        if self.grid is not None and self.grid.size != A.shape[0]:
            raise InvalidSystemError(
                f"the grid has {self.grid.size} unknowns but A has {A.shape[0]} rows"
            )

    def with_rhs(self, b: Any) -> LinearSystem:
        """The same system (A, grid, stencil, metadata shared, not copied) with right-hand side
        ``b``; ``exact`` is dropped, since it belonged to the old ``b``.

        >>> import numpy as np, scipy.sparse as sp
        >>> system = LinearSystem(sp.diags([2.0, 4.0]), np.ones(2))
        >>> other = system.with_rhs([2.0, 4.0])
        >>> other.A is system.A, other.b.tolist()
        (True, [2.0, 4.0])
        """
        out = copy.copy(self)
        out.b = self.check_vector(b, "b")
        out.exact = None
        out._checks = {k: v for k, v in self._checks.items() if k != "b_norm"}
        return out

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape

    @property
    def size(self) -> int:
        return self.A.shape[0]

    def check_vector(self, v: Any, name: str) -> np.ndarray:
        """``v`` as a float64 vector of the right length, or a clear error."""
        v = np.asarray(v)
        if np.iscomplexobj(v):
            raise InvalidSystemError(f"{name} is complex; pdesolve solves real systems")
        v = v.astype(np.float64, copy=False)
        if v.ndim != 1 or v.shape[0] != self.size:
            raise InvalidSystemError(
                f"{name} has shape {v.shape} but the system has {self.size} unknowns"
            )
        if not np.all(np.isfinite(v)):
            raise InvalidSystemError(f"{name} contains NaN or Inf entries")
        return v

    def is_symmetric(self, rtol: float = 1e-12) -> bool:
        """Whether ``max|A - A^T| <= rtol * max|A|`` (O(nnz), computed once per system)."""
        key = ("symmetric", rtol)
        if key not in self._checks:
            diff = self.A - self.A.T
            scale = abs(self.A).max() if self.A.nnz else 0.0
            self._checks[key] = bool(diff.nnz == 0 or abs(diff).max() <= rtol * scale)
        return self._checks[key]

    def validate(self, symmetric: bool = False) -> None:
        """Raise ``InvalidSystemError`` unless the system suits a solver (symmetry when asked)."""
        if symmetric and not self.is_symmetric():
            diff = abs(self.A - self.A.T).max()
            raise InvalidSystemError(
                f"A is not symmetric (max |A - A^T| = {diff:.3e}); CG needs a symmetric positive "
                "definite matrix"
            )

    def residual(self, x: np.ndarray) -> np.ndarray:
        return self.b - self.A @ x

    def residual_norm(self, x: np.ndarray) -> float:
        return float(np.linalg.norm(self.residual(x)))

    @property
    def b_norm(self) -> float:
        """``||b||`` (computed once: a system's A and b are not to be modified in place)."""
        if "b_norm" not in self._checks:
            self._checks["b_norm"] = float(np.linalg.norm(self.b))
        return self._checks["b_norm"]

    def error_norms(self, x: np.ndarray) -> dict[str, float] | None:
        """Max and grid-L2 norms of ``x - exact`` (None when no exact solution is known).

        The L2 norm is weighted by the geometry's ``node_weights`` (cell volume on grids, lumped
        mass on meshes), so it approximates the continuous L2 norm.
        """
        if self.exact is None:
            return None
        e = np.asarray(x) - self.exact
        weights = getattr(self.geometry, "node_weights", 1.0 / max(self.size, 1))
        return {
            "max": float(np.max(np.abs(e))) if e.size else 0.0,
            "l2": float(np.sqrt(np.sum(weights * e * e))),
            "relative_l2": float(np.linalg.norm(e) / max(np.linalg.norm(self.exact), 1e-300)),
        }


def check_real_float(name: str, dtype: Any) -> None:
    """Refuse complex and non-floating dtypes for the array called ``name``."""
    _check_real_float(name, dtype)


def _check_real_float(name: str, dtype: Any) -> None:
    if np.issubdtype(dtype, np.complexfloating):
        raise InvalidSystemError(
            f"{name} is complex ({dtype}); pdesolve solves real systems (casting would drop the "
            "imaginary part)"
        )
    if not np.issubdtype(dtype, np.floating):
        raise InvalidSystemError(
            f"{name} has dtype {dtype}; pdesolve solves in floating point: pass "
            f"{name}.astype(float)"
        )
