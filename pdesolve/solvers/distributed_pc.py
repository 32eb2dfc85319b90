"""Preconditioners of ``petsc_cg`` for a ``DistributedSystem`` (each rank holds its rows only).

PETSc's own preconditioners (jacobi, icc, gamg, hypre; ICC and ILU as block Jacobi) and the
identity configure the KSP's PC as on one rank. The geometric ``multigrid`` preconditioner becomes
PETSc's PCMG over prolongations that every rank builds for its own rows: it reads the stencils of
the fine rows its P rows need (its rows plus a halo of two grid lines, fetched from the
distributed matrix), applies the same P-stencil rule as on one rank (``blackbox``, ``boxmg``,
``constant_preserving``, ``bilinear``, and ``learned``: the network evaluated on those stencils
only) and hands its rows of P to PETSc, which forms the coarse
operators by parallel Galerkin products (``MatPtAP``). Because SOR acts per process, several
ranks smooth with Chebyshev iterations on Jacobi (``sweeps`` iterations, PETSc's eigenvalue
estimate) and solve the coarsest level redundantly with LU on every rank; on one process the
serial configuration (SOR forward down, backward up, LU) is kept.

Preconditioners that run Python code on the whole vector (deflation, coarse_grid, DCDM's network)
need the whole matrix on every rank: use them with ``problem.discretize()`` (each rank assembles
everything) instead of ``discretize_distributed()``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from pdesolve.discretize.grid import coarse_size
from pdesolve.linalg.distributed import DistributedSystem, agree
from pdesolve.linalg.petsc import petsc, row_range
from pdesolve.linalg.system import InvalidSystemError
from pdesolve.solvers.basic_preconditioners import Identity, Jacobi, PetscPreconditioner
from pdesolve.solvers.preconditioner import Preconditioner

#: P-stencil rules that read only the fine stencils at and around each coarse point
LOCAL_RULES = ("bilinear", "blackbox", "boxmg", "constant_preserving", "learned")


def parallel_mg_options(sweeps: int, cycle: str) -> dict[str, Any]:
    """PCMG options for several ranks: Chebyshev/Jacobi smoothing, redundant LU coarsest."""
    return {
        "pc_type": "mg",
        "pc_mg_galerkin": "none",
        "mg_levels_ksp_type": "chebyshev",
        "mg_levels_ksp_max_it": sweeps,
        "mg_levels_pc_type": "jacobi",
        "mg_coarse_ksp_type": "preonly",
        "mg_coarse_pc_type": "redundant",
        "mg_coarse_redundant_pc_type": "lu",
        "pc_mg_cycle_type": cycle.lower(),
    }


def configure_distributed(pc: Preconditioner, ksp: Any, A: Any, system: DistributedSystem
                          ) -> tuple[list[Any], list[str], dict[str, Any]]:
    """Make ``ksp``'s PC apply ``pc`` for the distributed ``system`` (PETSc matrix ``A``).

    Returns the PETSc objects and option names to free with the KSP, and what to report.
    """
    if isinstance(pc, PetscPreconditioner):
        pc.check_available()
        pc.bind(system)
        pc.configure_petsc(ksp.getPC())
        return [], [], {}
    if isinstance(pc, Jacobi):
        d = system.diagonal()
        agree(lambda: _positive(d, system.row_start), "the jacobi preconditioner", system.comm)
        ksp.getPC().setType("jacobi")
        return [], [], {}
    if isinstance(pc, Identity):
        ksp.getPC().setType("none")
        return [], [], {}
    if pc.name == "multigrid":  # pdesolve.solvers.multigrid.MultigridPreconditioner
        learned = pc.options["prolongation"] == "learned"
        net = agree(lambda: pc.network(2), "loading the prolongation network",
                    system.comm) if learned else None
        return distributed_pcmg(ksp.getPC(), A, pc.options, net)
    raise ValueError(
        f"pc={pc.name!r} runs Python code on the whole vector and needs the whole matrix on every "
        "rank; a distributed system (discretize_distributed) takes PETSc's own preconditioners "
        "(none, jacobi, icc, gamg, hypre) or multigrid: assemble the whole system on every rank "
        "(problem.discretize()) to use this one"
    )


def _positive(d: np.ndarray, start: int) -> None:
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0])
        raise InvalidSystemError(f"jacobi needs a positive diagonal; A[{start + i},{start + i}] "
                                 f"= {d[i]:g}")


def stencil_rows(A: Any, n: int, first: int, last: int) -> np.ndarray:
    """The 3×3 stencils ``(last - first, n, 3, 3)`` of grid lines ``first .. last - 1`` of the
    distributed ``n² × n²`` PETSc matrix ``A`` (any rank's rows; collective)."""
    PETSc = petsc()
    rows = PETSc.IS().createStride((last - first) * n, first * n, 1, comm=PETSc.COMM_SELF)
    cols = PETSc.IS().createStride(n * n, 0, 1, comm=PETSc.COMM_SELF)
    (block,) = A.createSubMatrices(rows, cols)
    indptr, indices, data = block.getValuesCSR()
    for obj in (block, rows, cols):
        obj.destroy()
    row = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)) + first * n
    i, j = np.divmod(row, n)
    k, m = np.divmod(np.asarray(indices, dtype=np.int64), n)
    da, db = k - i + 1, m - j + 1
    if np.any((da < 0) | (da > 2) | (db < 0) | (db > 2)):
        raise ValueError("multigrid: the matrix couples nodes further apart than a 3x3 stencil")
    out = np.zeros((last - first, n, 3, 3))
    out.reshape(-1)[(((row - first * n) * 3 + da) * 3) + db] = data
    return out


def _pstencil(rule: str, block: np.ndarray, net: Any = None,
              precision: str | None = "float32") -> np.ndarray:
    """The P-stencils of the coarse lines inside a block of whole fine grid lines."""
    import torch

    from pdesolve.discretize import prolongation

    s = torch.as_tensor(np.ascontiguousarray(block), dtype=torch.float64)
    if rule == "learned":
        from pdesolve.nn.prolongation import learned_pstencil

        p = learned_pstencil(net, s, precision=precision).cpu()
        return p.numpy().astype(np.float64, copy=False)
    rules = {"blackbox": prolongation.blackbox_pstencil, "boxmg": prolongation.boxmg_pstencil,
             "constant_preserving": prolongation.constant_preserving_pstencil}
    with torch.no_grad():
        p = rules[rule](s)
    return p.numpy().astype(np.float64, copy=False)


def prolongation_rows(A: Any, n: int, rule: str, lo: int, hi: int, net: Any = None,
                      precision: str | None = "float32") -> tuple[sp.csr_matrix, int]:
    """This rank's rows ``[lo, hi)`` of the prolongation of ``rule`` on the ``n × n`` grid of
    ``A`` (coarse point ``(I, J)`` at fine node ``(2I + 1, 2J + 1)``), and the coarse grid size.

    Only the stencils of the fine lines ``2 I_lo .. 2 I_hi + 2`` around the coarse lines whose
    P-stencils reach the rows are read (those lines hold both coarse neighbours of every fine
    line of the rows, whose learned edge weights are normalised against each other; ``net`` in
    ``precision`` is the ``learned`` rule's network); the values equal the whole grid's P rows.
    """
    nc = coarse_size(n)
    if hi <= lo:
        stencil_rows(A, n, 0, 0)  # collective: take part in the sub-matrix extraction
        return sp.csr_matrix((0, nc * nc)), nc
    ia, ib = lo // n, (hi - 1) // n  # fine lines of the rows
    c_lo, c_hi = max(0, (ia - 1) // 2), min(nc - 1, ib // 2)  # coarse lines reaching them
    if rule == "bilinear":
        stencil_rows(A, n, 0, 0)
        w = np.array([0.5, 1.0, 0.5])
        p = np.broadcast_to(np.multiply.outer(w, w), (c_hi - c_lo + 1, nc, 3, 3))
    else:
        block = stencil_rows(A, n, 2 * c_lo, 2 * c_hi + 3)
        p = _pstencil(rule, block, net, precision)
    I = np.arange(c_lo, c_hi + 1)[:, None, None, None]
    J = np.arange(nc)[None, :, None, None]
    a = np.arange(3)[None, None, :, None]
    b = np.arange(3)[None, None, None, :]
    rows = np.broadcast_to((2 * I + a) * n + 2 * J + b, p.shape).ravel()
    cols = np.broadcast_to(I * nc + J, p.shape).ravel()
    data = np.asarray(p).ravel()
    keep = (rows >= lo) & (rows < hi) & (data != 0)
    P = sp.csr_matrix((data[keep], (rows[keep] - lo, cols[keep])), shape=(hi - lo, nc * nc))
    P.sort_indices()
    return P, nc


def distributed_pcmg(pc: Any, A: Any, options: dict[str, Any], net: Any = None
                     ) -> tuple[list[Any], list[str], dict[str, Any]]:
    """Make ``pc`` PETSc's PCMG on rank-local prolongation rows of ``options["prolongation"]``
    for the distributed 2-D grid matrix ``A`` (``n² × n²``, ``n = 2^k - 1``); ``net`` is the
    network of the ``learned`` rule."""
    PETSc = petsc()
    comm = A.getComm()
    rule, cycle = options["prolongation"], options["cycle"]
    if rule not in LOCAL_RULES:
        raise ValueError(
            f"multigrid prolongation={rule!r} is not distributed: under MPI the P rows are built "
            f"per rank from local stencils, for the rules {', '.join(LOCAL_RULES)}; run "
            f"{rule!r} without mpiexec"
        )
    if options["smoother"] != "gauss_seidel" or cycle not in ("V", "W"):
        raise ValueError("a distributed multigrid preconditioner runs V or W cycles with PETSc's "
                         "smoothers (smoother=gauss_seidel: SOR on one rank, Chebyshev/Jacobi on "
                         f"several), got smoother={options['smoother']!r}, cycle={cycle!r}")
    N = A.getSize()[0]
    n = math.isqrt(N)
    if n * n != N:
        raise ValueError(f"multigrid needs a 2-D grid matrix (n² rows), got {N} rows")
    coarse_size(n)  # n = 2^k - 1
    mats: list[Any] = []
    interpolations, operators = [], []
    level_A, level_n = A, n
    while level_n > options["coarsest"] and level_n >= 3:
        lo, hi = level_A.getOwnershipRange()
        P_local, nc = prolongation_rows(level_A, level_n, rule, lo, hi, net,
                                        options.get("precision", "float32"))
        c_lo, c_hi = row_range(nc * nc, comm)
        P = PETSc.Mat().createAIJ(
            size=((hi - lo, level_n**2), (c_hi - c_lo, nc * nc)),
            csr=(P_local.indptr.astype(PETSc.IntType), P_local.indices.astype(PETSc.IntType),
                 P_local.data), comm=comm)  # fmt: skip
        P.assemble()
        Ac = level_A.ptap(P)
        mats += [P, Ac]
        interpolations.append(P)
        operators.append(Ac)
        level_A, level_n = Ac, nc
    if not interpolations:
        raise ValueError(f"multigrid needs n > coarsest={options['coarsest']}, got n={n}")
    sweeps = int(options["presmooth"])
    if comm.getSize() == 1:
        from pdesolve.solvers.petsc_pcmg import configure_pcmg

        names = configure_pcmg(pc, interpolations, operators, cycle, sweeps)
        smoother = "sor"
    else:
        prefix = pc.getOptionsPrefix() or ""
        database = PETSc.Options()
        names = []
        for key, value in parallel_mg_options(sweeps, cycle).items():
            database.setValue(prefix + key, value)
            names.append(prefix + key)
        nlev = len(interpolations) + 1
        pc.setType("mg")
        pc.setMGLevels(nlev)
        for k, P in enumerate(interpolations):
            pc.setMGInterpolation(nlev - 1 - k, P)
        for k, Ac in enumerate(operators):
            pc.getMGSmoother(nlev - 2 - k).setOperators(Ac)
        pc.setFromOptions()
        smoother = "chebyshev+jacobi"
    return mats, names, {"levels": len(interpolations) + 1, "mg_smoother": smoother,
                         "prolongation": rule}
