"""``DistributedSystem``: one MPI rank's rows of ``A x = b``, and the collective helpers around it.

Under ``mpiexec -n p`` each rank holds the rows ``[row_start, row_start + local_size)`` of the
global system in PETSc's default layout (:func:`pdesolve.linalg.petsc.row_range`): ``A`` is that
rank's ``local_size × global_size`` CSR block (global column indices), ``b`` and ``exact`` the
matching parts of the vectors. Norms, errors and the symmetry check are reduced over the ranks,
so every rank sees the same numbers. Problems build it with ``discretize_distributed()``.

On one process a distributed system holds all rows:

>>> import numpy as np, scipy.sparse as sp
>>> system = DistributedSystem(sp.diags([2.0, 4.0]).tocsr(), np.array([2.0, 4.0]),
...                            global_size=2, row_start=0)
>>> system.local_rows, system.b_norm == float(np.hypot(2, 4)), system.world_size
((0, 2), True, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from pdesolve.linalg.petsc import petsc, row_range
from pdesolve.linalg.system import InvalidSystemError, LinearSystem, check_real_float

T = TypeVar("T")


class DistributedError(RuntimeError):
    """A step failed on some ranks; raised on every rank with each failed rank's message."""


def world() -> Any:
    """PETSc's ``COMM_WORLD`` (initialising PETSc)."""
    return petsc().COMM_WORLD


def world_size(comm: Any = None) -> int:
    """Processes in ``comm`` (default ``COMM_WORLD``): 1 without mpiexec."""
    return (comm or world()).getSize()


def _mpi(comm: Any = None) -> Any:
    return (comm or world()).tompi4py()


def agree(step: Callable[[], T], what: str, comm: Any = None) -> T:
    """Run ``step()`` on every rank; if it raised on any rank, raise ``DistributedError`` on all.

    The collective check that turns one rank's failure (a missing file, NaN data) into a clear
    error everywhere instead of a hang of the others in the next collective call. On one
    process the exception propagates unchanged.

    >>> agree(lambda: 1 + 1, "adding")
    2
    """
    comm = comm or world()
    if comm.getSize() == 1:
        return step()
    error: BaseException | None = None
    try:
        out = step()
    except Exception as exc:
        error, out = exc, None
    messages = _mpi(comm).allgather(None if error is None else f"{type(error).__name__}: {error}")
    failed = [(rank, msg) for rank, msg in enumerate(messages) if msg is not None]
    if failed:
        text = "; ".join(f"rank {rank}: {msg}" for rank, msg in failed)
        raise DistributedError(
            f"{what} failed on {len(failed)} of {comm.getSize()} ranks ({text})"
        ) from error
    return out


def allreduce(value: Any, op: str = "sum", comm: Any = None) -> Any:
    """``value`` reduced over the ranks (``op``: sum, max, min)."""
    from mpi4py import MPI

    comm = comm or world()
    if comm.getSize() == 1:
        return value
    return _mpi(comm).allreduce(value, op={"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op])


def gather_rows(local: np.ndarray, root: int | None = 0, comm: Any = None) -> np.ndarray | None:
    """The ranks' consecutive pieces of a vector joined in rank order: on ``root`` only
    (None elsewhere), or on every rank with ``root=None``."""
    comm = comm or world()
    local = np.ascontiguousarray(local, dtype=np.float64)
    if comm.getSize() == 1:
        return local.copy()
    mpi = _mpi(comm)
    counts = mpi.allgather(local.size)
    if root is None:
        out = np.empty(sum(counts))
        mpi.Allgatherv(local, [out, counts])
        return out
    out = np.empty(sum(counts)) if mpi.Get_rank() == root else None
    mpi.Gatherv(local, [out, counts] if out is not None else None, root=root)
    return out


def fetch_rows(system: DistributedSystem, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The entries ``rows`` (global indices, any rank's) of the distributed vector whose part on
    this rank is ``x``: a ghost update by two MPI all-to-all exchanges (collective).

    >>> import numpy as np, scipy.sparse as sp
    >>> system = DistributedSystem(sp.eye(3).tocsr(), np.ones(3), global_size=3)
    >>> fetch_rows(system, np.array([1.0, 2.0, 3.0]), [2, 0]).tolist()
    [3.0, 1.0]
    """
    x = system.check_vector(x, "x")
    rows = np.asarray(rows, dtype=np.int64).ravel()
    comm = system.comm or world()
    if comm.getSize() == 1:
        return x[rows - system.row_start].copy()
    mpi = _mpi(comm)
    starts = np.asarray(mpi.allgather(system.row_start), dtype=np.int64)
    owner = np.searchsorted(starts, rows, side="right") - 1
    order = np.argsort(owner, kind="stable")
    wanted = np.ascontiguousarray(rows[order])
    send_counts = np.bincount(owner, minlength=comm.getSize()).astype(np.int64)
    recv_counts = np.asarray(mpi.alltoall(send_counts.tolist()), dtype=np.int64)
    asked = np.empty(int(recv_counts.sum()), dtype=np.int64)
    mpi.Alltoallv([wanted, send_counts], [asked, recv_counts])
    answers = np.ascontiguousarray(x[asked - system.row_start])
    got = np.empty(len(rows))
    mpi.Alltoallv([answers, recv_counts], [got, send_counts])
    out = np.empty(len(rows))
    out[order] = got
    return out


@dataclass(eq=False)
class DistributedSystem(LinearSystem):
    """This rank's rows of a globally ``global_size × global_size`` system ``A x = b``.

    ``A`` is the ``local_size × global_size`` CSR block of the rows ``local_rows``; ``b``,
    ``exact`` and vectors passed to its methods are this rank's parts. ``geometry`` is the
    rank's piece of the grid or mesh (for ``.pvtu`` output), ``weights`` the quadrature weights
    of its unknowns (grid-L2 norms). ``comm`` is a PETSc communicator (``COMM_WORLD`` if None).
    """

    global_size: int = 0
    row_start: int = 0
    comm: Any = None
    weights: Any = None

    def __post_init__(self) -> None:
        self._checks: dict[Any, Any] = {}
        if not sp.issparse(self.A):
            raise InvalidSystemError(
                f"A must be a scipy sparse block of rows, got {type(self.A).__name__}"
            )
        check_real_float("A", self.A.dtype)
        A = sp.csr_matrix(self.A, dtype=np.float64)
        A.sum_duplicates()
        if A.shape[1] != self.global_size:
            raise InvalidSystemError(
                f"this rank's rows have {A.shape[1]} columns but the system has "
                f"{self.global_size} unknowns"
            )
        if not np.all(np.isfinite(A.data)):
            raise InvalidSystemError(
                f"A contains NaN or Inf entries in the rows {self.local_rows} of this rank"
            )
        self.A = A
        self.b = self.check_vector(self.b, "b")
        if self.exact is not None:
            self.exact = self.check_vector(self.exact, "exact")

    @property
    def local_rows(self) -> tuple[int, int]:
        """This rank's rows ``[start, end)`` of the global system."""
        return self.row_start, self.row_start + self.A.shape[0]

    @property
    def world_size(self) -> int:
        return world_size(self.comm)

    def check_vector(self, v: Any, name: str) -> np.ndarray:
        """``v`` as this rank's float64 part (length ``local_size``), or a clear error."""
        v = np.asarray(v)
        if np.iscomplexobj(v):
            raise InvalidSystemError(f"{name} is complex; pdesolve solves real systems")
        v = v.astype(np.float64, copy=False)
        if v.ndim != 1 or v.shape[0] != self.A.shape[0]:
            raise InvalidSystemError(
                f"{name} has shape {v.shape} but this rank holds {self.A.shape[0]} rows "
                f"({self.local_rows} of {self.global_size})"
            )
        if not np.all(np.isfinite(v)):
            raise InvalidSystemError(
                f"{name} contains NaN or Inf entries in the rows {self.local_rows} of this rank"
            )
        return v

    # -- PETSc objects -------------------------------------------------------------------------
    def to_petsc(self) -> Any:
        """A new PETSc AIJ matrix over the ranks from every rank's block (collective)."""
        PETSc = petsc()
        comm = self.comm or PETSc.COMM_WORLD
        lo, hi = self.local_rows
        if row_range(self.global_size, comm) != (lo, hi):
            raise InvalidSystemError(
                f"this rank holds rows {(lo, hi)}, not PETSc's layout "
                f"{row_range(self.global_size, comm)}"
            )
        A = self.A
        M = PETSc.Mat().createAIJ(
            size=((hi - lo, self.global_size), (hi - lo, self.global_size)),
            csr=(A.indptr.astype(PETSc.IntType, copy=False),
                 A.indices.astype(PETSc.IntType, copy=False), A.data),
            comm=comm,
        )  # fmt: skip
        M.assemble()
        return M

    def _matrix(self) -> Any:
        if "petsc" not in self._checks:
            self._checks["petsc"] = self.to_petsc()
        return self._checks["petsc"]

    def release(self) -> None:
        """Destroy the PETSc matrix cached for norms and residuals (collective: call it on every
        rank, e.g. before the end of a run, so that no rank's garbage collector frees a parallel
        object the others still hold)."""
        matrix = self._checks.pop("petsc", None)
        if matrix is not None:
            matrix.destroy()

    def _vector(self, local: np.ndarray) -> Any:
        PETSc = petsc()
        v = PETSc.Vec().createMPI((len(local), self.global_size), comm=self.comm or world())
        v.setArray(local)
        return v

    # -- reduced quantities --------------------------------------------------------------------
    @property
    def b_norm(self) -> float:
        """``||b||`` over all ranks."""
        if "b_norm" not in self._checks:
            self._checks["b_norm"] = float(
                np.sqrt(allreduce(float(self.b @ self.b), comm=self.comm))
            )
        return self._checks["b_norm"]

    def residual(self, x: np.ndarray) -> np.ndarray:
        """This rank's part of ``b - A x`` for this rank's part ``x`` (collective)."""
        x = self.check_vector(x, "x")
        A, vx = self._matrix(), self._vector(x)
        y = A.createVecLeft()
        A.mult(vx, y)
        out = self.b - y.getArray()
        vx.destroy()
        y.destroy()
        return out

    def residual_norm(self, x: np.ndarray) -> float:
        r = self.residual(x)
        return float(np.sqrt(allreduce(float(r @ r), comm=self.comm)))

    def is_symmetric(self, rtol: float = 1e-12) -> bool:
        """Whether ``max|A - A^T| <= rtol * max|A|`` over all ranks (collective)."""
        key = ("symmetric", rtol)
        if key not in self._checks:
            A = self._matrix()
            At = A.transpose()
            At.axpy(-1.0, A)
            scale = allreduce(float(abs(self.A.data).max()) if self.A.nnz else 0.0, "max",
                              self.comm)
            diff = At.norm(petsc().NormType.INFINITY) if self.global_size else 0.0
            self._checks[key] = bool(diff <= rtol * scale * max(self._max_row_length(), 1))
            self._checks[("asymmetry", rtol)] = diff
            At.destroy()
        return self._checks[key]

    def _max_row_length(self) -> int:
        lengths = np.diff(self.A.indptr)
        return int(allreduce(int(lengths.max()) if lengths.size else 0, "max", self.comm))

    def validate(self, symmetric: bool = False) -> None:
        if symmetric and not self.is_symmetric():
            raise InvalidSystemError(
                "A is not symmetric (row-sum norm of A - A^T is "
                f"{self._checks[('asymmetry', 1e-12)]:.3e}); CG needs a symmetric positive "
                "definite matrix"
            )

    def diagonal(self) -> np.ndarray:
        """This rank's part of the diagonal of ``A``."""
        lo, hi = self.local_rows
        return np.asarray(self.A[:, lo:hi].diagonal()).ravel()

    def error_norms(self, x: np.ndarray) -> dict[str, float] | None:
        """Max, weighted L2 and relative norms of ``x - exact`` over all ranks (``x``: this
        rank's part); the same numbers as ``LinearSystem.error_norms`` of the whole system."""
        if self.exact is None:
            return None
        e = np.asarray(x) - self.exact
        w = self.weights if self.weights is not None else 1.0 / max(self.global_size, 1)
        sums = allreduce(np.array([float(np.sum(w * e * e)), float(e @ e),
                                   float(self.exact @ self.exact)]), comm=self.comm)
        emax = allreduce(float(np.max(np.abs(e))) if e.size else 0.0, "max", self.comm)
        return {"max": float(emax), "l2": float(np.sqrt(sums[0])),
                "relative_l2": float(np.sqrt(sums[1]) / max(np.sqrt(sums[2]), 1e-300))}

    def gather(self, x: np.ndarray, root: int | None = 0) -> np.ndarray | None:
        """The whole vector from every rank's part ``x`` (on ``root``; on all with None)."""
        return gather_rows(self.check_vector(x, "x"), root, self.comm)
