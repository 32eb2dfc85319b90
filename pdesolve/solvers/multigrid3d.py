"""Geometric multigrid for 3-D 27-point (and 7-point) stencil operators, black-box or learned P.

The 3-D counterpart of ``pdesolve.solvers.multigrid``: full 2:1 coarsening on Dirichlet grids
with ``n = 2^k - 1`` interior nodes per dimension, coarse point ``(I, J, K)`` at fine node
``(2I + 1, 2J + 1, 2K + 1)``. Prolongations from 3×3×3 P-stencils per coarse point
(``pdesolve.discretize.prolongation3d``): ``trilinear`` (alias ``bilinear``, the d-linear
geometric rule), ``blackbox`` (the operator-dependent collapsed-stencil rule) and ``learned``
(a ``ProlongationNet3D``; the shipped checkpoint is
``pdesolve/data/learned_multigrid/prolongation3d.pt``).
Coarse operators are Galerkin ``Pᵀ A P`` (scipy sparse products; 27-point on every coarse
level); operator-dependent rules read each coarse level's stencil. Smoothers: lexicographic
Gauss–Seidel (forward down, backward up when symmetric) or weighted Jacobi; V, W, F cycles;
exact coarsest solve. The cycling, ``precondition``, ``convergence_factor`` and
``error_matrix`` are those of ``MultigridHierarchy``.

Importing this module registers the hierarchy for 3-D systems with the ``multigrid``
preconditioner and solver: ``pc="multigrid"`` on a system from
``get_problem("diffusion", dim=3, ...)`` builds this hierarchy, and under ``petsc_cg`` it becomes
PETSc's PCMG on the same prolongations and coarse operators.

>>> import pdesolve
>>> system = pdesolve.get_problem("diffusion", dim=3, n=15, coefficient="lognormal",
...                               scheme="fe27", seed=0).discretize()
>>> mg = MultigridHierarchy3D(system.A, system.stencil, prolongation="blackbox")
>>> [level.n for level in mg.levels]
[15, 7, 3]
>>> result = pdesolve.solve(system, method="petsc_cg", pc="multigrid", rtol=1e-8)
>>> result.converged, result.iterations <= 12
(True, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from pdesolve.discretize.finite_difference import stencil_to_csr
from pdesolve.discretize.prolongation import coarse_size
from pdesolve.discretize.prolongation3d import (
    as_stencil3d,
    blackbox_pstencil3d,
    stencil_from_csr3d,
    trilinear_pstencil,
)
from pdesolve.discretize.pstencil3d_setup import blackbox_pstencil3d_setup, prolongation_pair3d
from pdesolve.linalg.system import LinearSystem
from pdesolve.resources import data_dir
from pdesolve.solvers import multigrid
from pdesolve.solvers.multigrid import Level, MultigridHierarchy, check_cycle_options

PROLONGATIONS3D = ("trilinear", "bilinear", "blackbox", "learned")
SMOOTHERS3D = ("gauss_seidel", "jacobi")
#: the shipped learned 3-D prolongation (package data; pdesolve/data/learned_multigrid/README.md)
DEFAULT_CHECKPOINT3D = data_dir() / "learned_multigrid" / "prolongation3d.pt"


def pstencil_for3d(rule: str, stencil: np.ndarray | int, net: Any = None,
                   precision: str | None = "float32") -> np.ndarray:
    """P-stencils ``(nc, nc, nc, 3, 3, 3)`` of ``rule`` for a Dirichlet fine stencil (or, for
    the trilinear rule, just the fine grid size ``n``).

    ``precision`` ``"float32"`` / ``"float64"``: the set-up route (numpy rules of
    ``pdesolve.discretize.pstencil3d_setup``, the network's batched inference in that
    precision); None: the reference route (the differentiable torch rules and the network
    module itself). The two agree to rounding.
    """
    if rule in ("trilinear", "bilinear"):
        n = stencil if isinstance(stencil, int) else np.shape(stencil)[0]
        return trilinear_pstencil((coarse_size(n),) * 3).numpy()
    if rule not in PROLONGATIONS3D:
        raise ValueError(f"unknown 3-D prolongation {rule!r}; known: {', '.join(PROLONGATIONS3D)}")
    if rule == "learned" and net is None:
        raise ValueError("prolongation='learned' needs a network (net= or checkpoint=)")
    if precision is not None:
        s = as_stencil3d(np.ascontiguousarray(stencil)).numpy()
        if rule == "blackbox":
            return blackbox_pstencil3d_setup(s)
        from pdesolve.nn.prolongation3d import learned_pstencil3d_setup

        return learned_pstencil3d_setup(net, s, precision)
    s = as_stencil3d(np.ascontiguousarray(stencil)).to(torch.float64)
    with torch.no_grad():
        if rule == "blackbox":
            p = blackbox_pstencil3d(s)
        else:
            from pdesolve.nn.prolongation3d import learned_pstencil3d

            p = learned_pstencil3d(net, s).cpu()
    return p.numpy().astype(np.float64, copy=False)


class MultigridHierarchy3D(MultigridHierarchy):
    """A geometric multigrid hierarchy for a Dirichlet 3-D stencil operator.

    Parameters
    ----------
    A : sparse matrix, shape (n³, n³), or None
        The fine operator (built from ``stencil`` when None).
    stencil : ndarray, shape (n, n, n, 3, 3, 3) or (n, n, n, 27)
        Its stencil, ``n = 2^k - 1``.
    prolongation : {"trilinear", "bilinear", "blackbox", "learned"}
    smoother : {"gauss_seidel", "jacobi"}
    presmooth, postsmooth, cycle, coarsest, max_levels, omega, symmetric
        As for ``MultigridHierarchy``.
    net : ProlongationNet3D, optional
        The network for ``prolongation="learned"``.
    galerkin : {"matrix"}
        Coarse operators by sparse products (the only way in 3-D).
    precision : {"float32", "float64"} or None
        The learned network's arithmetic (None: the network module itself).
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
        if prolongation not in PROLONGATIONS3D:
            raise ValueError(f"unknown 3-D prolongation {prolongation!r}; known: "
                             f"{', '.join(PROLONGATIONS3D)}")
        if smoother not in SMOOTHERS3D:
            raise ValueError(f"unknown 3-D smoother {smoother!r}; known: {', '.join(SMOOTHERS3D)}")
        if galerkin != "matrix":
            raise ValueError(f"3-D multigrid forms coarse operators by sparse products "
                             f"(galerkin='matrix'), got {galerkin!r}")
        check_cycle_options(cycle, presmooth, postsmooth, precision, prolongation, net)
        s = as_stencil3d(stencil).numpy()
        if s.ndim != 6:
            raise ValueError(f"multigrid needs one 3-D stencil (n, n, n, 3, 3, 3), got {s.shape}")
        n = s.shape[0]
        coarse_size(n)  # validates n
        A = stencil_to_csr(s) if A is None else sp.csr_matrix(A, dtype=np.float64)
        if A.shape != (n**3, n**3):
            raise ValueError(f"A has shape {A.shape} but the stencil is {n}x{n}x{n}")
        self.prolongation, self.smoother, self.cycle_type = prolongation, smoother, cycle
        self.presmooth, self.postsmooth = int(presmooth), int(postsmooth)
        self.symmetric, self.galerkin, self.precision = symmetric, galerkin, precision
        self._build_levels(Level(A, n, smoother, omega, s), coarsest, max_levels, omega, net)

    def _coarsen(
        self, level: Level, nc: int, net: Any
    ) -> tuple[sp.csr_matrix, sp.csr_matrix, None]:
        """``(P, PᵀAP, None)`` of one 3-D level (coarse operators by sparse products)."""
        if level.stencil is None and self.prolongation not in ("trilinear", "bilinear"):
            level.stencil = stencil_from_csr3d(level.A, level.n)
        p = pstencil_for3d(self.prolongation,
                           level.n if level.stencil is None else level.stencil, net,
                           self.precision)  # fmt: skip
        P, R = prolongation_pair3d(p, level.n)
        return P, R @ (level.A @ P), None

    @staticmethod
    def stencil_of(system: LinearSystem) -> np.ndarray:
        """The ``(n, n, n, 3, 3, 3)`` stencil of a 3-D structured system (from ``system.A``
        when it has none); ``n`` must be ``2^k - 1``."""
        stencil, grid = getattr(system, "stencil", None), getattr(system, "grid", None)
        hint = ("3-D multigrid needs a structured system with a 27-point (or 7-point) stencil "
                "on an n x n x n grid, n = 2^k - 1, e.g. get_problem('diffusion', dim=3, n=31, "
                "scheme='fe27').discretize()")
        if grid is not None and (len(grid.shape) != 3 or grid.mask is not None):
            raise ValueError(f"{hint}; this system's grid has shape {grid.shape}"
                             + (" with inactive cells" if grid.mask is not None else ""))
        if stencil is None:
            if grid is None or len(set(grid.shape)) != 1:
                raise ValueError(f"{hint}; this system has no stencil")
            stencil = stencil_from_csr3d(system.A, grid.shape[0])
        try:
            s = as_stencil3d(np.asarray(stencil))
        except ValueError as err:
            raise ValueError(f"{hint}; {err}") from None
        n = s.shape[0]
        if s.ndim != 6 or n < 3 or (n + 1) & n:
            raise ValueError(f"{hint}; its stencil has shape {tuple(s.shape)}"
                             + ("" if s.ndim != 6 else f" and n = {n} is not 2^k - 1"))
        if grid is not None and grid.shape != (n, n, n):
            raise ValueError(f"{hint}; the stencil is {n}x{n}x{n} but the grid {grid.shape}")
        return s.numpy()

    @staticmethod
    def load_network(checkpoint: str | Path | None, device: str = "cpu") -> Any:
        """The shipped (or given) learned 3-D prolongation network, on ``device``."""
        from pdesolve.nn.prolongation3d import load_prolongation_net3d

        path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT3D
        if not path.exists():
            raise FileNotFoundError(f"no 3-D prolongation checkpoint at {path}")
        return load_prolongation_net3d(str(path), map_location=device)


multigrid.HIERARCHIES[3] = MultigridHierarchy3D
