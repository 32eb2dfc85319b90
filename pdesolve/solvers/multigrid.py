"""``multigrid``: geometric multigrid for 2-D 9-point stencil operators, with learned prolongation.

Full 2:1 coarsening on Dirichlet grids with ``n = 2^k - 1`` interior nodes per dimension; coarse
point ``(I, J)`` is fine node ``(2I + 1, 2J + 1)`` (odd fine indices, the one C-point convention
of ``pdesolve.discretize.prolongation``). Prolongations are built from 3×3 P-stencils per coarse
point: ``bilinear``, ``blackbox`` (collapsed-stencil rule of Greenfeld et al.'s baseline),
``boxmg`` (Dendy's BoxMG rule: collapsed stencil with a row-sum-switched denominator; it
coincides with ``blackbox`` on Dirichlet diffusion problems in this C-point convention, see
``pdesolve.discretize.prolongation``), ``constant_preserving`` (an ablation), ``learned`` (a
``ProlongationNet``). Coarse operators are Galerkin ``Pᵀ A P`` (scipy sparse products, or the
closed-form stencil product of ``pdesolve.discretize.galerkin``); operator-dependent rules read
each coarse level's stencil. Smoothers: lexicographic and red-black Gauss–Seidel (exact
triangular solves in the given ordering, through a natural-order sparse LU of the triangle, i.e.
compiled forward substitution) and weighted Jacobi. V, W and F cycles; exact coarsest solve.

``MultigridHierarchy`` is the reusable object (``cycle``, ``precondition``,
``error_matrix``). The registered preconditioner ``multigrid`` (``MultigridPreconditioner``)
is one symmetric cycle for any Krylov solver of pdesolve (``pc="multigrid"`` or
``get_preconditioner("multigrid", prolongation=..., cycle=...)``); under ``petsc_cg`` it
becomes PETSc's PCMG on the same prolongations and coarse operators (see
``pdesolve.solvers.petsc_pcmg``). The registered solver ``multigrid`` runs stationary cycles
(``krylov="none"``) or CG with that preconditioner (``"cg"``: scipy, ``"petsc_cg"``: PETSc).
Set-up computes the prolongations and coarse operators only (float32 network inference for the
learned rule); smoother factorisations are built by the first Python cycle.

>>> import pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=31, scheme="fe9").discretize()
>>> result = pdesolve.solve(system, method="multigrid", prolongation="bilinear", rtol=1e-8)
>>> result.converged, result.iterations <= 10
(True, True)
"""

from __future__ import annotations

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
from pdesolve.nn.checkpoint import check_device
from pdesolve.resources import data_dir
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import Solver, SolveResult
from pdesolve.solvers.driver import IterationDriver
from pdesolve.solvers.preconditioner import PRECONDITIONERS, Preconditioner

PROLONGATIONS = ("bilinear", "blackbox", "boxmg", "constant_preserving", "learned")
SMOOTHERS = ("gauss_seidel", "red_black", "jacobi")
CYCLES = ("V", "W", "F")
KRYLOV = ("none", "cg", "petsc_cg")
GALERKIN = ("matrix", "stencil")
PRECISIONS = ("float32", "float64")
#: the shipped learned prolongation, package data (see pdesolve/data/learned_multigrid/README.md)
DEFAULT_CHECKPOINT = data_dir() / "learned_multigrid" / "prolongation.pt"
#: hierarchy classes for grids of other dimensions, by dimension (``pdesolve.solvers.multigrid3d``
#: adds 3): each has the constructor of ``MultigridHierarchy`` and static ``stencil_of(system)``
#: and ``load_network(checkpoint)``
HIERARCHIES: dict[int, Any] = {}


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


class Level:
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


def check_cycle_options(
    cycle: str, presmooth: int, postsmooth: int, precision: str | None, prolongation: str,
    net: Any,
) -> None:
    """The checks every multigrid hierarchy (2-D or 3-D) makes of its cycle options."""
    if cycle not in CYCLES:
        raise ValueError(f"unknown cycle {cycle!r}; known: {', '.join(CYCLES)}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if presmooth < 0 or postsmooth < 0 or presmooth + postsmooth == 0:
        raise ValueError("need presmooth, postsmooth >= 0 with at least one sweep")
    if prolongation == "learned" and net is None:
        raise ValueError("prolongation='learned' needs a network (net= or checkpoint=)")


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
        if galerkin not in GALERKIN:
            raise ValueError(f"unknown galerkin {galerkin!r}; known: {', '.join(GALERKIN)}")
        check_cycle_options(cycle, presmooth, postsmooth, precision, prolongation, net)
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
        self._build_levels(Level(A, n, smoother, omega, stencil), coarsest, max_levels, omega, net)

    def _build_levels(
        self, finest: Level, coarsest: int, max_levels: int | None, omega: float, net: Any
    ) -> None:
        """Coarsen from ``finest`` until ``coarsest`` (or ``max_levels``), each level's
        prolongation and coarse operator from :meth:`_coarsen`."""
        self.levels: list[Level] = [finest]
        while True:
            level = self.levels[-1]
            if level.n <= coarsest or level.n < 3 or (
                max_levels is not None and len(self.levels) >= max_levels
            ):
                break
            nc = coarse_size(level.n)
            level.P, Ac, coarse = self._coarsen(level, nc, net)
            self.levels.append(Level(Ac, nc, self.smoother, omega, coarse))
        self._coarse: Any = None

    def _coarsen(
        self, level: Level, nc: int, net: Any
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None]:
        """``(P, A_c, coarse stencil or None)`` of one 2-D level."""
        if self.prolongation == "bilinear":  # the one rule that does not read the operator
            p = bilinear_pstencil((nc, nc)).numpy()
        else:
            if level.stencil is None:
                level.stencil = stencil_from_csr(level.A, level.n)
            p = pstencil_for(self.prolongation, level.stencil, net, self.precision)
        P = prolongation_matrix(p, level.n)
        if self.galerkin == "stencil":
            if level.stencil is None:
                level.stencil = stencil_from_csr(level.A, level.n)
            coarse = galerkin_stencil(level.stencil, p)
            return P, stencil_to_csr(coarse), coarse
        return P, (P.T.tocsr() @ level.A @ P).tocsr(), None

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

    def precondition(self, r: np.ndarray) -> np.ndarray:
        """One cycle for ``A z = r`` from a zero guess with adjoint post-sweeps (symmetric)."""
        r = np.asarray(r, dtype=np.float64).ravel()
        return self._cycle(0, r, np.zeros_like(r), self.cycle_type, True)

    def aspreconditioner(self) -> spla.LinearOperator:
        """One cycle from a zero guess with adjoint post-sweeps: an SPD preconditioner for CG.

        Needs ``presmooth == postsmooth`` (otherwise the cycle is not symmetric).
        """
        if self.presmooth != self.postsmooth:
            raise ValueError("a symmetric cycle (for CG) needs presmooth == postsmooth")
        size = self.levels[0].A.shape[0]
        return spla.LinearOperator((size, size), matvec=self.precondition, dtype=np.float64)

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


def load_network(checkpoint: str | Path | None, device: str = "cpu") -> Any:
    """The shipped (or given) learned prolongation network, on ``device``."""
    from pdesolve.nn.prolongation import load_prolongation_net

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no prolongation checkpoint at {path}")
    return load_prolongation_net(str(path), map_location=device)


def grid_dimension(system: LinearSystem) -> int:
    """The dimension of a structured system's grid (2 when it does not say).

    >>> import pdesolve
    >>> grid_dimension(pdesolve.get_problem("diffusion", dim=3, n=3).discretize())
    3
    """
    grid, stencil = getattr(system, "grid", None), getattr(system, "stencil", None)
    if grid is not None:
        return len(grid.shape)
    shape = np.shape(stencil) if stencil is not None else ()
    return 3 if len(shape) == 6 or (len(shape) == 4 and shape[-1] == 27) else 2


def _hierarchy_class(dim: int) -> Any:
    if dim == 2:
        return None
    if dim == 3 and dim not in HIERARCHIES:  # the 3-D module registers itself when imported,
        # like a registry's declared entry (this module may have been imported on its own)
        import importlib

        importlib.import_module("pdesolve.solvers.multigrid3d")
    if dim not in HIERARCHIES:
        raise ValueError(f"multigrid runs on 2-D and 3-D structured grids, got a {dim}-D system")
    return HIERARCHIES[dim]


def structured_stencil(system: LinearSystem) -> np.ndarray:
    """The ``(n, n, 3, 3)`` stencil multigrid coarsens, from ``system.stencil`` or, when a
    system on a whole 2-D ``n × n`` grid has none (e.g. after ``update`` with a bare matrix),
    read from ``system.A``; ``n`` must be ``2^k - 1`` (Dirichlet full coarsening)."""
    stencil, grid = getattr(system, "stencil", None), getattr(system, "grid", None)
    hint = ("multigrid needs a 2-D structured system with a 9-point stencil on an n x n grid, "
            "n = 2^k - 1, e.g. get_problem('diffusion', dim=2, n=63, scheme='fe9').discretize()")
    if grid is not None and (len(grid.shape) != 2 or grid.mask is not None):
        raise ValueError(f"{hint}; this system's grid has shape {grid.shape}"
                         + (" with inactive cells" if grid.mask is not None else ""))
    if stencil is None:
        if grid is None or grid.shape[0] != grid.shape[1]:
            raise ValueError(f"{hint}; this system has no stencil")
        stencil = stencil_from_csr(system.A, grid.shape[0])
    stencil = np.asarray(stencil)
    n = stencil.shape[0]
    if stencil.ndim != 4 or stencil.shape != (n, n, 3, 3):
        raise ValueError(f"{hint}; its stencil has shape {stencil.shape}")
    if n < 3 or (n + 1) & n:
        raise ValueError(f"{hint}; n = {n} is not 2^k - 1")
    if grid is not None and grid.shape != (n, n):
        raise ValueError(f"{hint}; the stencil is {n}x{n} but the grid {grid.shape}")
    return stencil


@PRECONDITIONERS.register("multigrid")
class MultigridPreconditioner(Preconditioner):
    """One symmetric geometric multigrid cycle (``MultigridHierarchy``) as a preconditioner.

    Parameters
    ----------
    prolongation : {"bilinear", "blackbox", "boxmg", "constant_preserving", "learned"}
    cycle : {"V", "W", "F"}
    smoother : {"gauss_seidel", "red_black", "jacobi"}
    presmooth, postsmooth : int
        Sweeps per level; equal (the cycle is symmetric: adjoint post-sweeps).
    coarsest, omega, galerkin, precision
        See ``MultigridHierarchy``.
    checkpoint : str, optional
        Learned-prolongation checkpoint (default: the shipped one); loaded once per object.
    threads : int, optional
        Torch intra-op threads for the network during set-up (None: torch's current setting).
    device : str
        Where the learned network runs during set-up ("cpu" or "cuda"; the P-stencils come back
        to the host, the cycles run there).

    ``setup`` builds the prolongations and coarse operators only; ``apply`` runs one cycle from
    a zero guess in Python (its smoother factorisations built on the first application). Under
    ``petsc_cg`` (one rank) a Gauss–Seidel V or W cycle becomes PETSc's own PCMG on the same
    prolongations and coarse operators (SOR forward down, backward up, LU coarsest: the same
    map as ``apply`` up to rounding); other cycles and smoothers, and runs on several ranks,
    use the python-PC default.

    >>> import pdesolve
    >>> system = pdesolve.get_problem("diffusion", dim=2, n=63, scheme="fe9").discretize()
    >>> mg = pdesolve.get_preconditioner("multigrid", prolongation="blackbox")
    >>> result = pdesolve.solve(system, method="petsc_cg", pc=mg, rtol=1e-8)
    >>> result.converged, result.iterations <= 12
    (True, True)
    """

    registry_name = "multigrid"
    is_linear = True
    is_symmetric = True

    def __init__(
        self,
        prolongation: str = "blackbox",
        cycle: str = "V",
        smoother: str = "gauss_seidel",
        presmooth: int = 1,
        postsmooth: int = 1,
        coarsest: int = 3,
        omega: float = 2.0 / 3.0,
        checkpoint: str | None = None,
        galerkin: str = "matrix",
        precision: str = "float32",
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        check_device(device)
        for value, known, what in (
            (prolongation, PROLONGATIONS, "prolongation"), (cycle, CYCLES, "cycle"),
            (smoother, SMOOTHERS, "smoother"), (galerkin, GALERKIN, "galerkin"),
            (precision, PRECISIONS, "precision"),
        ):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")
        if presmooth != postsmooth or presmooth < 1:
            raise ValueError("a symmetric cycle (for CG) needs presmooth == postsmooth >= 1, "
                             f"got {presmooth}, {postsmooth}")
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.options = {
            "prolongation": prolongation, "cycle": cycle, "smoother": smoother,
            "presmooth": int(presmooth), "postsmooth": int(postsmooth), "coarsest": coarsest,
            "omega": omega, "galerkin": galerkin, "precision": precision,
        }
        self.checkpoint, self.threads, self.device = checkpoint, threads, device
        self.hierarchy: MultigridHierarchy | None = None
        self._nets: dict[int, Any] = {}
        self._petsc: list[Any] = []
        self._option_names: list[str] = []

    @property
    def petsc_native(self) -> bool:
        """Whether ``configure_petsc`` builds PETSc's own PCMG (else a python PC)."""
        return self.options["smoother"] == "gauss_seidel" and self.options["cycle"] in ("V", "W")

    def network(self, dim: int = 2) -> Any:
        """The learned prolongation network for ``dim``-D grids (loaded on first use, then
        kept)."""
        if dim not in self._nets:
            cls = _hierarchy_class(dim)
            self._nets[dim] = (load_network if cls is None else cls.load_network)(
                self.checkpoint, self.device)
        return self._nets[dim]

    def _setup(self, system: LinearSystem) -> None:
        dim = grid_dimension(system)
        cls = _hierarchy_class(dim)
        stencil = structured_stencil(system) if cls is None else cls.stencil_of(system)
        opts = dict(self.options)
        cycle = opts.pop("cycle")
        net = self.network(dim) if opts["prolongation"] == "learned" else None
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(int(self.threads))
        try:
            self.hierarchy = (cls or MultigridHierarchy)(system.A, stencil, cycle=cycle,
                                                         symmetric=True, net=net, **opts)
        finally:
            if self.threads is not None:
                torch.set_num_threads(before)

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return self.hierarchy.precondition(r)

    def configure_petsc(self, pc: Any) -> None:
        if self.hierarchy is None:
            raise RuntimeError("the multigrid preconditioner is used before setup(system)")
        if not self.petsc_native or pc.getComm().getSize() > 1:
            super().configure_petsc(pc)
            return
        from pdesolve.solvers.petsc_pcmg import aij_from_csr, configure_pcmg

        mg = self.hierarchy
        interpolations = [aij_from_csr(P) for P in mg.prolongations()]
        operators = [aij_from_csr(Ac) for Ac in mg.coarse_operators()]
        self._petsc += interpolations + operators
        self._option_names += configure_pcmg(pc, interpolations, operators,
                                             self.options["cycle"], self.options["presmooth"])

    def describe(self) -> dict[str, Any]:
        out = {**super().describe(), **self.options, "petsc_native": self.petsc_native}
        if self.hierarchy is not None:
            out.update(levels=len(self.hierarchy.levels),
                       operator_complexity=self.hierarchy.operator_complexity)
        return out

    def _close(self) -> None:
        if self._option_names:
            from pdesolve.linalg.petsc import remove_options

            remove_options(self._option_names)
            self._option_names = []
        for obj in self._petsc:
            obj.destroy()
        self._petsc = []
        self.hierarchy = None


@SOLVERS.register("multigrid")
class Multigrid(Solver):
    """Geometric multigrid as a solver: stationary cycles, or CG preconditioned by one cycle.

    Parameters
    ----------
    prolongation, smoother, presmooth, postsmooth, cycle, coarsest, omega
        See ``MultigridHierarchy``.
    krylov : {"none", "cg", "petsc_cg"}
        ``none``: stationary cycling (through pdesolve's iteration driver); ``cg``: scipy CG
        preconditioned by ``MultigridPreconditioner`` (one symmetric cycle); ``petsc_cg``:
        PETSc KSPCG with it (PETSc PCMG on this hierarchy's prolongations and coarse operators).
    symmetric : bool, optional
        Adjoint post-sweeps in stationary cycling (default False; always True with CG).
    checkpoint : str, optional
        Learned-prolongation checkpoint (default: the shipped one).
    galerkin, precision
        How coarse operators are formed and the learned network's arithmetic; see
        ``MultigridHierarchy``.
    device : str
        Where the learned network runs during set-up ("cpu" or "cuda").
    dtol : float, optional
        Stationary cycling stops as diverged once the residual exceeds ``dtol · ||b||``.

    Needs a 2-D structured system (``system.stencil`` ``(n, n, 3, 3)``, ``n = 2^k - 1``).
    ``setup`` builds the hierarchy once; every ``solve`` reuses it.
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
        dtol: float | None = 1e5,
        device: str = "cpu",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)
        check_device(device)
        self.device = device
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
            # fails here, early, on a non-symmetric cycle (presmooth != postsmooth)
            self.preconditioner = MultigridPreconditioner(checkpoint=checkpoint, device=device,
                                                          **self.options)  # fmt: skip
        self._inner: Solver | None = None
        self._mg: MultigridHierarchy | None = None
        self._nets: dict[int, Any] = {}

    def hierarchy(self, system: LinearSystem) -> MultigridHierarchy:
        """Build the hierarchy for ``system`` (needs its stencil; 2-D or 3-D)."""
        dim = grid_dimension(system)
        cls = _hierarchy_class(dim)
        if self.options["prolongation"] == "learned" and dim not in self._nets:
            load = load_network if cls is None else cls.load_network
            self._nets[dim] = load(self.checkpoint, self.device)
        stencil = structured_stencil(system) if cls is None else cls.stencil_of(system)
        return (cls or MultigridHierarchy)(
            system.A, stencil, net=self._nets.get(dim),
            symmetric=self.symmetric or self.krylov != "none", **self.options,
        )

    def _check_system(self, system: LinearSystem) -> None:
        cls = _hierarchy_class(grid_dimension(system))
        structured_stencil(system) if cls is None else cls.stencil_of(system)

    def _setup(self, system: LinearSystem) -> None:
        if self.krylov == "none":
            self._mg = self.hierarchy(system)
            self._cycled_A = system.A
            return
        from pdesolve.solvers.petsc_cg import PetscCG
        from pdesolve.solvers.scipy_cg import ScipyCG

        rule = self.stopping
        inner_cls = ScipyCG if self.krylov == "cg" else PetscCG
        self._inner = inner_cls(rtol=rule.rtol, atol=rule.atol, maxiter=rule.maxiter,
                                pc=self.preconditioner)
        self._inner.setup(system)
        self._mg = self.preconditioner.hierarchy

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        mg = self._mg
        info = {"levels": len(mg.levels), "krylov": self.krylov,
                "operator_complexity": mg.operator_complexity, **self.options}
        if self._inner is not None:
            inner = self._inner.solve(system.b, x0=x0, callback=self.callback)
            inner_info = {k: v for k, v in inner.info.items()
                          if k not in ("solver", "setup_time", "solve_time", "setups")}
            return SolveResult(x=inner.x, converged=inner.converged, reason=inner.reason,
                               iterations=inner.iterations, residual_norms=inner.residual_norms,
                               wall_time=0.0, info={**inner_info, **info, "pc": "multigrid"})
        A, b = system.A, system.b
        driver = IterationDriver(self.stopping, system.b_norm, self.callback,
                                 description="multigrid")
        x = np.zeros_like(b) if x0 is None else x0.copy()
        reason = driver.start(system.residual_norm(x))
        own = A is self._cycled_A  # else: a hierarchy kept by update() for other values of A
        while reason is None:
            x = mg.cycle(b, x) if own else x + mg.cycle(b - A @ x, np.zeros_like(x))
            reason = driver.step(x, float(np.linalg.norm(b - A @ x)))
        reason, iterations, norms = driver.finish()
        return SolveResult(
            x=x, converged=reason.converged, reason=reason, iterations=iterations,
            residual_norms=norms, wall_time=0.0, info=info,
        )

    def _swap_operator(self, system: LinearSystem) -> None:
        if self._inner is not None:  # the Krylov method takes the new A, the cycle stays
            self._inner.update(system, reuse_preconditioner=True)

    def _close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        if self.krylov != "none":
            self.preconditioner.close()
        self._mg = None
