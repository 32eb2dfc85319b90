"""``multigrid``: geometric multigrid for 2-D 9-point stencil operators, with learned prolongation.

Full 2:1 coarsening on Dirichlet grids with ``n = 2^k - 1`` interior nodes per dimension; coarse
point ``(I, J)`` is fine node ``(2I + 1, 2J + 1)`` (odd fine indices, the one C-point convention
of ``pdesolve.discretize.prolongation``). Prolongations are built from 3×3 P-stencils per coarse
point: ``bilinear``, ``blackbox`` (collapsed-stencil rule of Greenfeld et al.'s baseline),
``boxmg`` (Dendy's BoxMG rule: collapsed stencil with a row-sum-switched denominator; it
coincides with ``blackbox`` on Dirichlet diffusion problems in this C-point convention, see
``pdesolve.discretize.prolongation``), ``constant_preserving`` (an ablation), ``learned`` (a
``ProlongationNet``). Coarse
operators are Galerkin ``Pᵀ A P`` (scipy sparse); operator-dependent rules read the coarse stencil
back from the Galerkin matrix on every level. Smoothers: lexicographic and red-black Gauss–Seidel
(exact triangular solves in the given ordering, through a natural-order sparse LU of the
triangle, i.e. compiled forward substitution) and weighted Jacobi. V, W and F cycles; exact
coarsest solve.

``MultigridHierarchy`` is the reusable object (``cycle``, ``aspreconditioner``,
``error_matrix``); the registered solver ``Multigrid`` runs it as a stationary iteration
(``krylov="none"``), as the preconditioner of scipy CG (``"cg"``) or hands its prolongations to
PETSc PCMG inside KSPCG (``"petsc_cg"``, see ``pdesolve.solvers.petsc_pcmg``).

>>> import pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=31, scheme="fe9").discretize()
>>> result = pdesolve.solve(system, method="multigrid", prolongation="bilinear", rtol=1e-8)
>>> result.converged, result.iterations <= 10
(True, True)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pdesolve.discretize.finite_difference import stencil_to_csr
from pdesolve.discretize.galerkin import galerkin_stencil, prolongation_csr
from pdesolve.discretize.prolongation import (
    bilinear_pstencil,
    blackbox_pstencil,
    boxmg_pstencil,
    coarse_size,
    constant_preserving_pstencil,
)
from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult

PROLONGATIONS = ("bilinear", "blackbox", "boxmg", "constant_preserving", "learned")
SMOOTHERS = ("gauss_seidel", "red_black", "jacobi")
CYCLES = ("V", "W", "F")
KRYLOV = ("none", "cg", "petsc_cg")
GALERKIN = ("matrix", "stencil")
PRECISIONS = ("float32", "float64")
#: the shipped learned prolongation (see data/learned_multigrid/README.md)
DEFAULT_CHECKPOINT = (
    Path(__file__).resolve().parents[2] / "data" / "learned_multigrid" / "prolongation.pt"
)
_DTOL = 1e5


def stencil_from_csr(A: sp.spmatrix, n: int) -> np.ndarray:
    """The ``(n, n, 3, 3)`` stencil array of a matrix on an ``n × n`` grid (lexicographic, x slow).

    >>> from pdesolve.discretize.finite_difference import stencil_to_csr
    >>> s = np.random.default_rng(0).random((5, 5, 3, 3))
    >>> s[0, :, 0, :] = s[-1, :, 2, :] = s[:, 0, :, 0] = s[:, -1, :, 2] = 0
    >>> bool(np.allclose(stencil_from_csr(stencil_to_csr(s), 5), s))
    True
    """
    A = sp.csr_matrix(A)
    if A.shape != (n * n, n * n):
        raise ValueError(f"matrix shape {A.shape} does not match an {n}x{n} grid")
    if not A.has_canonical_format:
        A = A.copy()
        A.sum_duplicates()
    row = np.repeat(np.arange(n * n), np.diff(A.indptr))
    i, j = np.divmod(row, n)
    k, m = np.divmod(A.indices, n)
    da, db = k - i + 1, m - j + 1
    if np.any((da < 0) | (da > 2) | (db < 0) | (db > 2)):
        raise ValueError("the matrix couples nodes further apart than a 3x3 stencil")
    out = np.zeros((n, n, 3, 3))
    out.reshape(-1)[((row * 3 + da) * 3) + db] = A.data  # one entry per (row, column)
    return out


def prolongation_matrix(pstencil: np.ndarray, n: int) -> sp.csr_matrix:
    """The ``n² × nc²`` prolongation of Dirichlet P-stencils ``(nc, nc, 3, 3)`` (C at odd indices).

    >>> P = prolongation_matrix(bilinear_pstencil((3, 3)).numpy(), 7)
    >>> P.shape, float(P.sum())
    ((49, 9), 36.0)
    """
    nc = pstencil.shape[0]
    if pstencil.shape != (nc, nc, 3, 3) or nc != coarse_size(n):
        raise ValueError(f"P-stencils of shape {pstencil.shape} do not fit a grid of n={n}")
    indptr, indices, data = prolongation_csr(pstencil, n)
    return sp.csr_matrix((data, indices, indptr), shape=(n * n, nc * nc))


def pstencil_for(
    rule: str, stencil: np.ndarray, net: Any = None, precision: str | None = "float32"
) -> np.ndarray:
    """P-stencils ``(nc, nc, 3, 3)`` of ``rule`` for a Dirichlet fine stencil ``(n, n, 3, 3)``.

    ``precision`` is the learned network's: ``"float32"`` (default) or ``"float64"`` run its
    batched inference (``ProlongationNet.infer``), None the module itself (the reference).
    """
    s = torch.as_tensor(np.ascontiguousarray(stencil), dtype=torch.float64)
    nc = coarse_size(s.shape[0])
    with torch.no_grad():
        if rule == "bilinear":
            p = bilinear_pstencil((nc, nc))
        elif rule == "blackbox":
            p = blackbox_pstencil(s)
        elif rule == "boxmg":
            p = boxmg_pstencil(s)
        elif rule == "constant_preserving":
            p = constant_preserving_pstencil(s)
        elif rule == "learned":
            from pdesolve.nn.prolongation import learned_pstencil

            if net is None:
                raise ValueError("prolongation='learned' needs a network (net= or checkpoint=)")
            p = learned_pstencil(net, s, precision=precision).cpu()
        else:
            raise ValueError(f"unknown prolongation {rule!r}; known: {', '.join(PROLONGATIONS)}")
    return p.numpy().astype(np.float64, copy=False)


class _TriangularSweep:
    """Gauss–Seidel sweeps ``x += T⁻¹ (b - A x)`` with ``T`` the lower (forward) or upper
    (backward) triangle of ``A`` in the ordering ``perm`` (None: lexicographic)."""

    def __init__(self, A: sp.csr_matrix, perm: np.ndarray | None) -> None:
        self.perm = perm
        Ap = A if perm is None else A[perm][:, perm]
        opts = {"permc_spec": "NATURAL", "diag_pivot_thresh": 0.0,
                "options": {"SymmetricMode": True}}
        self.lower = spla.splu(sp.tril(Ap, format="csc"), **opts)
        self.upper = spla.splu(sp.triu(Ap, format="csc"), **opts)

    def apply(self, r: np.ndarray, backward: bool) -> np.ndarray:
        factor = self.upper if backward else self.lower
        if self.perm is None:
            return factor.solve(r)
        out = np.empty_like(r)
        out[self.perm] = factor.solve(r[self.perm])
        return out


class MultigridLevel:
    """One grid level: its operator ``A`` (CSR), size ``n``, stencil (when known), prolongation
    ``P`` to it from the next coarser level, and a smoother whose factorisations are built on
    its first sweep (a path that never smooths in Python, e.g. PETSc PCMG, never pays them)."""

    def __init__(
        self,
        A: sp.csr_matrix,
        n: int,
        smoother: str,
        omega: float,
        stencil: np.ndarray | None = None,
    ) -> None:
        if smoother not in SMOOTHERS:
            raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
        self.A, self.n, self.stencil = A, n, stencil
        self.P: sp.csr_matrix | None = None
        self.smoother, self.omega = smoother, omega
        self._sweep: _TriangularSweep | None = None
        self._dinv: np.ndarray | None = None
        if smoother == "jacobi":
            diag = A.diagonal()
            if np.any(diag <= 0):
                raise ValueError("weighted Jacobi needs a positive diagonal")
            self._dinv = omega / diag

    @property
    def R(self) -> sp.spmatrix | None:
        """The restriction ``Pᵀ`` (a transposed view, no copy)."""
        return None if self.P is None else self.P.T

    @property
    def sweep(self) -> _TriangularSweep:
        """The Gauss–Seidel triangular solves (factorised on first use)."""
        if self._sweep is None:
            if self.smoother == "gauss_seidel":
                self._sweep = _TriangularSweep(self.A, None)
            elif self.smoother == "red_black":  # red ((i + j) even) first
                i, j = np.divmod(np.arange(self.n * self.n), self.n)
                red = (i + j) % 2 == 0
                perm = np.concatenate([np.flatnonzero(red), np.flatnonzero(~red)])
                self._sweep = _TriangularSweep(self.A, perm)
            else:
                raise ValueError("a Jacobi level has no triangular sweep")
        return self._sweep

    @property
    def factorised(self) -> bool:
        """Whether the smoother's factorisations have been built."""
        return self._sweep is not None

    def smooth(self, x: np.ndarray, b: np.ndarray, sweeps: int, backward: bool) -> np.ndarray:
        for _ in range(sweeps):
            r = b - self.A @ x
            x = x + (self._dinv * r if self.smoother == "jacobi"
                     else self.sweep.apply(r, backward))
        return x


#: the level class under its former name
_Level = MultigridLevel


class MultigridHierarchy:
    """A geometric multigrid hierarchy for a Dirichlet 9-point stencil operator.

    Parameters
    ----------
    A : sparse matrix, shape (n², n²), or None
        The fine operator (``stencil_to_csr(stencil)``; built from ``stencil`` when None).
    stencil : ndarray, shape (n, n, 3, 3)
        Its stencil, ``n = 2^k - 1``.
    prolongation : {"bilinear", "blackbox", "boxmg", "constant_preserving", "learned"}
    smoother : {"gauss_seidel", "red_black", "jacobi"}
    presmooth, postsmooth : int
        Sweeps before and after the coarse-grid correction.
    cycle : {"V", "W", "F"}
    coarsest : int
        Stop coarsening once ``n <= coarsest``; the coarsest system is solved exactly (sparse LU).
    max_levels : int, optional
    omega : float
        Jacobi weight.
    symmetric : bool
        Post-smoothing runs the adjoint sweep (backward Gauss–Seidel, reversed colour order) so
        that a cycle is a symmetric operator, as CG needs. Otherwise (the Greenfeld et al. test
        setting) pre- and post-smoothing are both forward sweeps.
    net : ProlongationNet, optional
        The network for ``prolongation="learned"``.
    galerkin : {"matrix", "stencil"}
        How the coarse operators ``Pᵀ A P`` are formed: ``"matrix"`` (default) by scipy sparse
        products, the coarse stencils read back from the matrices; ``"stencil"`` by the
        closed-form stencil product (``pdesolve.discretize.galerkin``). Equal up to rounding;
        the sparse product measures faster on one core (about 0.15 s against 0.2–0.3 s for
        the finest level at 1023², PETSc's MatPtAP about 0.2 s).
    precision : {"float32", "float64"} or None
        The learned network's arithmetic (``pdesolve.nn.prolongation.learned_pstencil``):
        batched inference in float32 (default) or float64, or None for the network module
        itself (the reference). P is float64 in every case.

    Set-up computes the prolongations and coarse operators only; smoother factorisations and
    the coarsest LU are built by the first cycle.

    Examples
    --------
    >>> import pdesolve
    >>> sys_ = pdesolve.get_problem("poisson", dim=2, n=31, scheme="fe9").discretize()
    >>> mg = MultigridHierarchy(sys_.A, sys_.stencil, prolongation="blackbox")
    >>> [level.n for level in mg.levels]
    [31, 15, 7, 3]
    >>> x = np.zeros_like(sys_.b)
    >>> for _ in range(8):
    ...     x = mg.cycle(sys_.b, x)
    >>> bool(np.linalg.norm(sys_.b - sys_.A @ x) < 1e-6 * np.linalg.norm(sys_.b))
    True
    """

    def __init__(
        self,
        A: sp.spmatrix | None,
        stencil: np.ndarray,
        prolongation: str = "blackbox",
        smoother: str = "gauss_seidel",
        presmooth: int = 1,
        postsmooth: int = 1,
        cycle: str = "V",
        coarsest: int = 3,
        max_levels: int | None = None,
        omega: float = 2.0 / 3.0,
        symmetric: bool = False,
        net: Any = None,
        galerkin: str = "matrix",
        precision: str | None = "float32",
    ) -> None:
        if prolongation not in PROLONGATIONS:
            raise ValueError(f"unknown prolongation {prolongation!r}; known: {PROLONGATIONS}")
        if smoother not in SMOOTHERS:
            raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
        if cycle not in CYCLES:
            raise ValueError(f"unknown cycle {cycle!r}; known: {', '.join(CYCLES)}")
        if galerkin not in GALERKIN:
            raise ValueError(f"unknown galerkin {galerkin!r}; known: {', '.join(GALERKIN)}")
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        if presmooth < 0 or postsmooth < 0 or presmooth + postsmooth == 0:
            raise ValueError("need presmooth, postsmooth >= 0 with at least one sweep")
        if prolongation == "learned" and net is None:
            raise ValueError("prolongation='learned' needs a network (net= or checkpoint=)")
        stencil = np.asarray(stencil, dtype=np.float64)
        n = stencil.shape[0]
        if stencil.ndim != 4 or stencil.shape != (n, n, 3, 3):
            raise ValueError(f"multigrid needs a 2-D stencil (n, n, 3, 3), got {stencil.shape}")
        coarse_size(n)  # validates n
        A = stencil_to_csr(stencil) if A is None else sp.csr_matrix(A, dtype=np.float64)
        if A.shape != (n * n, n * n):
            raise ValueError(f"A has shape {A.shape} but the stencil is {n}x{n}")
        self.prolongation, self.smoother, self.cycle_type = prolongation, smoother, cycle
        self.presmooth, self.postsmooth = int(presmooth), int(postsmooth)
        self.symmetric, self.galerkin, self.precision = symmetric, galerkin, precision
        self.levels: list[MultigridLevel] = [MultigridLevel(A, n, smoother, omega, stencil)]
        while True:
            level = self.levels[-1]
            if level.n <= coarsest or level.n < 3 or (
                max_levels is not None and len(self.levels) >= max_levels
            ):
                break
            nc = coarse_size(level.n)
            if prolongation == "bilinear":  # the one rule that does not read the operator
                p = bilinear_pstencil((nc, nc)).numpy()
            else:
                if level.stencil is None:
                    level.stencil = stencil_from_csr(level.A, level.n)
                p = pstencil_for(prolongation, level.stencil, net, precision)
            level.P = prolongation_matrix(p, level.n)
            if galerkin == "stencil":
                if level.stencil is None:
                    level.stencil = stencil_from_csr(level.A, level.n)
                coarse = galerkin_stencil(level.stencil, p)
                Ac = stencil_to_csr(coarse)
            else:
                coarse, Ac = None, (level.P.T.tocsr() @ level.A @ level.P).tocsr()
            self.levels.append(MultigridLevel(Ac, nc, smoother, omega, coarse))
        self._coarse: Any = None

    # -- cycling -------------------------------------------------------------------------------
    def _coarse_solve(self, b: np.ndarray) -> np.ndarray:
        if self._coarse is None:  # factorised on first use
            self._coarse = spla.splu(self.levels[-1].A.tocsc())
        return self._coarse.solve(b)

    def _cycle(self, k: int, b: np.ndarray, x: np.ndarray, kind: str, sym: bool) -> np.ndarray:
        level = self.levels[k]
        if k == len(self.levels) - 1:
            return self._coarse_solve(b)
        x = level.smooth(x, b, self.presmooth, backward=False)
        rc = level.R @ (b - level.A @ x)
        ec = np.zeros(rc.shape)
        if kind == "V":
            ec = self._cycle(k + 1, rc, ec, "V", sym)
        elif kind == "W":
            ec = self._cycle(k + 1, rc, ec, "W", sym)
            ec = self._cycle(k + 1, rc, ec, "W", sym)
        else:  # F: an F-cycle then a V-cycle on the coarse level
            ec = self._cycle(k + 1, rc, ec, "F", sym)
            ec = self._cycle(k + 1, rc, ec, "V", sym)
        x = x + level.P @ ec
        return level.smooth(x, b, self.postsmooth, backward=sym)

    def cycle(self, b: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """One cycle for ``A x = b`` from ``x`` (zero if None); returns the new iterate."""
        x = np.zeros_like(b) if x is None else np.asarray(x, dtype=np.float64)
        return self._cycle(0, np.asarray(b, dtype=np.float64), x, self.cycle_type, self.symmetric)

    def aspreconditioner(self) -> spla.LinearOperator:
        """One cycle from a zero guess with adjoint post-sweeps: an SPD preconditioner for CG.

        Needs ``presmooth == postsmooth`` (otherwise the cycle is not symmetric).
        """
        if self.presmooth != self.postsmooth:
            raise ValueError("a symmetric cycle (for CG) needs presmooth == postsmooth")
        size = self.levels[0].A.shape[0]

        def matvec(r: np.ndarray) -> np.ndarray:
            r = np.asarray(r, dtype=np.float64).ravel()
            return self._cycle(0, r, np.zeros_like(r), self.cycle_type, True)

        return spla.LinearOperator((size, size), matvec=matvec, dtype=np.float64)

    def error_matrix(self) -> np.ndarray:
        """The dense error-propagation matrix of one cycle (small grids only)."""
        size = self.levels[0].A.shape[0]
        if size > 5000:
            raise ValueError(f"error_matrix is dense; {size} unknowns is too many")
        zero = np.zeros(size)
        return np.column_stack([self.cycle(zero, e) for e in np.eye(size)])

    def convergence_factor(
        self, cycles: int = 40, seed: int = 0, A: sp.spmatrix | None = None
    ) -> float:
        """Asymptotic factor ``||e_k|| / ||e_{k-1}||`` at the last of ``cycles`` cycles on
        ``A e = 0`` from a seeded N(0, 1) guess (Greenfeld et al.'s test protocol)."""
        rng = np.random.default_rng(seed)
        e = rng.standard_normal(self.levels[0].A.shape[0])
        zero = np.zeros_like(e)
        prev = np.linalg.norm(e)
        factor = 0.0
        for _ in range(cycles):
            e = self.cycle(zero, e)
            norm = np.linalg.norm(e)
            if norm == 0.0 or prev == 0.0:
                return 0.0
            factor, prev = norm / prev, norm
            if norm < 1e-280:
                break
            if norm < 1e-200:  # rescale to avoid underflow (the map is linear)
                e, prev = e * 1e100, prev * 1e100
        return float(factor)

    @property
    def operator_complexity(self) -> float:
        """Σ nnz(A_l) / nnz(A_0)."""
        return sum(lv.A.nnz for lv in self.levels) / self.levels[0].A.nnz

    def prolongations(self) -> list[sp.csr_matrix]:
        """The prolongation matrices, finest first."""
        return [lv.P for lv in self.levels[:-1] if lv.P is not None]

    def coarse_operators(self) -> list[sp.csr_matrix]:
        """The coarse operators ``Pᵀ A P``, finest first (one per prolongation)."""
        return [lv.A for lv in self.levels[1:]]


def load_network(checkpoint: str | Path | None) -> Any:
    """The shipped (or given) learned prolongation network."""
    from pdesolve.nn.prolongation import load_prolongation_net

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no prolongation checkpoint at {path}")
    return load_prolongation_net(str(path))


@SOLVERS.register("multigrid")
class Multigrid(Solver):
    """Geometric multigrid (``MultigridHierarchy``) as a solver or as CG's preconditioner.

    Parameters
    ----------
    prolongation, smoother, presmooth, postsmooth, cycle, coarsest, omega
        See ``MultigridHierarchy``.
    krylov : {"none", "cg", "petsc_cg"}
        ``none``: stationary cycling; ``cg``: scipy CG preconditioned by one symmetric cycle;
        ``petsc_cg``: PETSc KSPCG with PCMG built on this hierarchy's prolongations.
    symmetric : bool, optional
        Adjoint post-sweeps in stationary cycling (default False; always True with CG).
    checkpoint : str, optional
        Learned-prolongation checkpoint (default: the shipped one).
    galerkin, precision
        How coarse operators are formed and the learned network's arithmetic; see
        ``MultigridHierarchy``. PETSc PCMG is handed the hierarchy's coarse operators.

    Needs ``system.stencil`` of shape ``(n, n, 3, 3)`` with ``n = 2^k - 1`` (Dirichlet).
    """

    registry_name = "multigrid"
    requires_spd = False

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 500,
        prolongation: str = "blackbox",
        smoother: str = "gauss_seidel",
        presmooth: int = 1,
        postsmooth: int = 1,
        cycle: str = "V",
        coarsest: int = 3,
        omega: float = 2.0 / 3.0,
        krylov: str = "none",
        symmetric: bool = False,
        checkpoint: str | None = None,
        galerkin: str = "matrix",
        precision: str = "float32",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
        if krylov not in KRYLOV:
            raise ValueError(f"unknown krylov {krylov!r}; known: {', '.join(KRYLOV)}")
        for value, known, what in (
            (prolongation, PROLONGATIONS, "prolongation"),
            (smoother, SMOOTHERS, "smoother"),
            (cycle, CYCLES, "cycle"),
            (galerkin, GALERKIN, "galerkin"),
            (precision, PRECISIONS, "precision"),
        ):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")
        self.options = {
            "prolongation": prolongation, "smoother": smoother, "presmooth": presmooth,
            "postsmooth": postsmooth, "cycle": cycle, "coarsest": coarsest, "omega": omega,
            "galerkin": galerkin, "precision": precision,
        }
        self.krylov, self.symmetric, self.checkpoint = krylov, symmetric, checkpoint
        if krylov != "none":
            self.requires_spd = True

    def hierarchy(self, system: LinearSystem) -> MultigridHierarchy:
        """Build the hierarchy for ``system`` (needs its stencil)."""
        stencil = getattr(system, "stencil", None)
        if stencil is None or np.ndim(stencil) != 4:
            raise ValueError(
                "multigrid needs a 2-D structured system with a stencil (n, n, 3, 3), e.g. "
                "get_problem('diffusion', dim=2, n=63, scheme='fe9').discretize()"
            )
        net = load_network(self.checkpoint) if self.options["prolongation"] == "learned" else None
        return MultigridHierarchy(
            system.A, stencil, net=net, symmetric=self.symmetric or self.krylov != "none",
            **self.options,
        )

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        t0 = time.perf_counter()
        mg = self.hierarchy(system)
        setup_time = time.perf_counter() - t0
        info = {
            "setup_time": setup_time, "levels": len(mg.levels), "krylov": self.krylov,
            "operator_complexity": mg.operator_complexity, **self.options,
        }
        rule = self.stopping
        if self.krylov == "cg":
            from pdesolve.solvers.scipy_cg import ScipyCG

            inner = ScipyCG(rtol=rule.rtol, atol=rule.atol, maxiter=rule.maxiter,
                            M=mg.aspreconditioner()).solve(system, x0=x0)
            return _with_setup(inner, setup_time, info)
        if self.krylov == "petsc_cg":
            from pdesolve.solvers.petsc_pcmg import solve_petsc_cg_pcmg

            inner = solve_petsc_cg_pcmg(system, mg.prolongations(), rule, x0=x0,
                                        cycle=self.options["cycle"],
                                        operators=mg.coarse_operators())
            return _with_setup(inner, setup_time, info)
        t1 = time.perf_counter()
        A, b = system.A, system.b
        b_norm = system.b_norm
        x = np.zeros_like(b) if x0 is None else x0.copy()
        norms = [system.residual_norm(x)]
        reason = rule.reason_for(norms[0], b_norm)
        iterations = 0
        while reason is None:
            if iterations >= rule.maxiter:
                reason = ConvergedReason.DIVERGED_ITS
                break
            x = mg.cycle(b, x)
            iterations += 1
            norms.append(float(np.linalg.norm(b - A @ x)))
            reason = rule.reason_for(norms[-1], b_norm)
            if reason is None and norms[-1] > _DTOL * max(norms[0], b_norm):
                reason = ConvergedReason.DIVERGED_DTOL
        solve_time = time.perf_counter() - t1
        info["solve_time"] = solve_time
        return SolveResult(
            x=x, converged=reason.converged, reason=reason, iterations=iterations,
            residual_norms=np.asarray(norms), wall_time=setup_time + solve_time, info=info,
        )


def _with_setup(inner: SolveResult, setup_time: float, info: dict[str, Any]) -> SolveResult:
    merged = {**info, **inner.info, "setup_time": setup_time + inner.info.get("setup_time", 0.0)}
    return SolveResult(
        x=inner.x, converged=inner.converged, reason=inner.reason, iterations=inner.iterations,
        residual_norms=inner.residual_norms, wall_time=setup_time + inner.wall_time, info=merged,
    )
