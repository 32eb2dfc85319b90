"""``diffusion``: ``-∇·(k∇u) = f`` on the unit square/cube with Dirichlet data.

Coefficient families (``coefficient=``):

* ``constant``: ``k = k_value``; any manufactured solution.
* ``smooth``: ``k = 1 + 0.5 Π_i sin(2π x_i)``; any manufactured solution (source by autograd).
* ``checkerboard``: ``k`` alternates between 1 and ``contrast`` on ``blocks^d`` equal boxes.
* ``lognormal``: cell-wise ``k = exp(σ N(0, 1))`` on ``cells^d`` cells (default: the grid's own
  ``(n + 1)^d`` cells), seeded, as in Greenfeld et al. (docs/methods/learned_multigrid.md).
* ``uniform``: cell-wise ``k ~ U(low, high)`` (default ``U(0, 1)``) on the same cells, seeded; an
  out-of-distribution family for the learned multigrid prolongation.
* ``anisotropic``: ``K = k diag(anisotropy, 1, ...)`` (``anisotropy = k_x / k_y``, default
  1e-2) with ``k`` the ``lognormal`` field of ``sigma`` (``sigma=0``: constant ``k = 1``), seeded;
  ``coefficient(x)`` returns ``k``. In ``fe9`` the x-links turn positive for
  ``anisotropy < 1/2`` (SPD, not an M-matrix); ``fd`` scales the x-face coefficients.

Schemes (``scheme=``): ``fd`` (3/5/7-point, harmonic face averages of nodal ``k``), in 2D
``fe9`` (bilinear finite elements, cell-centred ``k``, the 9-point stencil of the learned-multigrid
paper) and in 3D ``fe27`` (trilinear finite elements, cell-centred ``k``, 27-point stencil;
``pdesolve.discretize.trilinear``). Stencils are ``grid.shape + (3,) * dim`` arrays.

>>> from pdesolve import get_problem
>>> p = get_problem("diffusion", dim=2, n=15, coefficient="lognormal", seed=0)
>>> system = p.discretize()
>>> system.shape, system.stencil.shape
((225, 225), (15, 15, 3, 3))
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pdesolve.discretize.finite_difference import (
    anisotropic_fe_stencil,
    bilinear_fe_stencil,
    eliminate_boundary,
    fd_stencil,
    stencil_to_csr,
)
from pdesolve.discretize.grid import GridSlab, StructuredGrid
from pdesolve.discretize.trilinear import trilinear_fe_stencil
from pdesolve.linalg.distributed import DistributedSystem, agree
from pdesolve.linalg.petsc import petsc, row_range
from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import (
    Problem,
    accepts_numpy,
    evaluate,
    gradient,
    rows_full,
    to_numpy_fn,
)
from pdesolve.problems.domains import UnitBox
from pdesolve.problems.manufactured import ManufacturedSolution, make_solution

if TYPE_CHECKING:
    from torch import Tensor

COEFFICIENTS = ("constant", "smooth", "checkerboard", "lognormal", "uniform", "anisotropic")
SCHEMES = ("fd", "fe9", "fe27")


@PROBLEMS.register("diffusion")
class GridDiffusionProblem(Problem):
    """``-∇·(k∇u) = f`` on ``[0, 1]^dim`` discretized on a ``StructuredGrid`` with ``n`` interior
    nodes per dimension."""

    name = "diffusion"

    def __init__(
        self,
        dim: int = 2,
        n: int = 64,
        coefficient: str = "constant",
        solution: str | None = "sine",
        scheme: str = "fd",
        k_value: float = 1.0,
        contrast: float = 100.0,
        blocks: int = 4,
        sigma: float = 1.0,
        cells: int | None = None,
        seed: int = 0,
        frequency: int = 1,
        modes: tuple[int, ...] = (1, 4, 16),
        low: float = 0.0,
        high: float = 1.0,
        anisotropy: float = 1e-2,
    ) -> None:
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        if coefficient not in COEFFICIENTS:
            raise ValueError(
                f"unknown coefficient family {coefficient!r}; known: {', '.join(COEFFICIENTS)}"
            )
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
        if scheme == "fe9" and dim != 2:
            raise ValueError("scheme 'fe9' (bilinear FE 9-point stencil) needs dim=2")
        if scheme == "fe27" and dim != 3:
            raise ValueError("scheme 'fe27' (trilinear FE 27-point stencil) needs dim=3")
        if coefficient not in ("constant", "smooth") and solution is not None:
            solution = None  # no closed-form solution across coefficient jumps: f = 1, g = 0
        super().__init__(
            dim=dim, n=n, coefficient=coefficient, solution=solution, scheme=scheme,
            k_value=k_value, contrast=contrast, blocks=blocks, sigma=sigma, cells=cells, seed=seed,
            frequency=frequency, modes=tuple(modes), low=low, high=high, anisotropy=anisotropy,
        )  # fmt: skip
        self.dim = dim
        self.grid = StructuredGrid(dim=dim, n=n)
        self.domain = UnitBox(dim)
        self.scheme = scheme
        self.family = coefficient
        self.k_value = float(k_value)
        self.contrast = float(contrast)
        self.blocks = int(blocks)
        if self.family == "constant" and not self.k_value > 0:
            raise ValueError(f"k_value must be positive, got {k_value!r}")
        if self.family == "checkerboard" and not self.contrast > 0:
            raise ValueError(f"contrast must be positive, got {contrast!r}")
        self.solution: ManufacturedSolution | None = None
        if solution is not None:
            extra: dict[str, Any] = {}
            if solution == "sine":
                extra["frequency"] = frequency
            elif solution == "multifrequency":
                extra["modes"] = modes
            self.solution = make_solution(solution, **extra)
        self.anisotropy = float(anisotropy)
        if self.family == "anisotropic" and not (
            math.isfinite(self.anisotropy) and self.anisotropy > 0
        ):
            raise ValueError(f"anisotropy must be finite and positive, got {anisotropy!r}")
        if self.family in ("lognormal", "anisotropic"):
            cells = int(cells) if cells is not None else n + 1
            rng = np.random.default_rng(seed)
            self.log_k = sigma * rng.standard_normal((cells,) * dim)
            self.cells = cells
        if self.family == "uniform":
            if not 0.0 <= low < high:
                raise ValueError(f"uniform coefficients need 0 <= low < high, got {low}, {high}")
            cells = int(cells) if cells is not None else n + 1
            rng = np.random.default_rng(seed)
            k = rng.uniform(low, high, (cells,) * dim)
            if np.any(k <= 0):
                raise ValueError("a uniform coefficient sample is not positive; raise low")
            self.log_k = np.log(k)
            self.cells = cells

    # continuous form (torch or numpy points) ------------------------------------------------
    @accepts_numpy
    def coefficient(self, x: Tensor) -> Tensor:
        if self.family == "constant":
            return rows_full(x, self.k_value)
        if isinstance(x, np.ndarray):
            return self._numpy_coefficient(x)
        import torch

        if self.family == "smooth":
            return 1.0 + 0.5 * torch.prod(torch.sin(2 * math.pi * x), dim=1)
        if self.family == "checkerboard":
            idx = torch.clamp(torch.floor(x.detach() * self.blocks), 0, self.blocks - 1).long()
            odd = idx.sum(dim=1) % 2 == 1
            return torch.where(odd, self.contrast, 1.0).to(x.dtype)
        idx = torch.clamp(torch.floor(x.detach() * self.cells), 0, self.cells - 1).long()
        log_k = torch.as_tensor(self.log_k, device=x.device)[tuple(idx[:, i]
                                                                   for i in range(self.dim))]
        return torch.exp(log_k).to(x.dtype)

    def _numpy_coefficient(self, x: np.ndarray) -> np.ndarray:
        if self.family == "smooth":
            return 1.0 + 0.5 * np.prod(np.sin(2 * math.pi * x), axis=1)
        if self.family == "checkerboard":
            idx = np.clip(np.floor(x * self.blocks), 0, self.blocks - 1).astype(np.int64)
            return np.where(idx.sum(axis=1) % 2 == 1, self.contrast, 1.0)
        idx = np.clip(np.floor(x * self.cells), 0, self.cells - 1).astype(np.int64)
        return np.exp(self.log_k[tuple(idx[:, i] for i in range(self.dim))])

    @property
    def has_exact_solution(self) -> bool:
        return self.solution is not None

    @accepts_numpy
    def exact_solution(self, x: Tensor) -> Tensor:
        if self.solution is None:
            return super().exact_solution(x)
        return self.solution(x)

    @accepts_numpy
    def source(self, x: Tensor) -> Tensor:
        if self.solution is None:
            return rows_full(x, 1.0)
        if self.family == "constant":
            return -self.k_value * self.solution.laplacian(x)
        return evaluate(self._source_by_autograd, x)  # numpy points: through torch

    def _source_by_autograd(self, x: Tensor) -> Tensor:
        """``-∇·(k∇u) = -k Δu - ∇k·∇u`` with the gradients by autograd (torch points)."""
        import torch

        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            grad_u = gradient(self.solution(xg), xg)
            k = self.coefficient(xg)
            grad_k = gradient(k, xg)
            f = -k * self.solution.laplacian(xg) - (grad_k * grad_u).sum(dim=1)
        return f.detach()

    # discrete form ---------------------------------------------------------------------------
    def _anisotropic(self, full: np.ndarray) -> np.ndarray:
        """The full stencil with ``K = k diag(anisotropy, 1, ...)`` (``full``: the one of ``k``)."""
        grid, a = self.grid, self.anisotropy
        if self.scheme == "fe9":
            centres = (np.arange(grid.n + 1) + 0.5) * grid.h
            cc = np.stack(np.meshgrid(centres, centres, indexing="ij"), axis=-1).reshape(-1, 2)
            k_cells = to_numpy_fn(self.coefficient, cc).reshape(grid.n + 1, grid.n + 1)
            return anisotropic_fe_stencil(grid, k_cells, a)
        if self.scheme != "fd":
            raise ValueError(f"coefficient 'anisotropic' needs scheme 'fd' or 'fe9', got "
                             f"{self.scheme!r}")
        out = full.copy()
        centre = (1,) * grid.dim
        for end in (0, 2):
            link = (...,) + (end,) + centre[1:]
            out[link] *= a
            out[(...,) + centre] += (a - 1.0) * -full[link]
        return out

    def discretize(self, **overrides: Any) -> LinearSystem:
        """The ``fd``, ``fe9`` or ``fe27`` system on the problem's grid (``n`` may be
        overridden)."""
        if overrides:
            return type(self)(**{**self.params, **overrides}).discretize()
        grid = self.grid
        if self.scheme == "fd":
            k_nodes = to_numpy_fn(self.coefficient, grid.full_points).reshape(grid.full_shape)
            full = fd_stencil(grid, k_nodes)
        else:
            centres = (np.arange(grid.n + 1) + 0.5) * grid.h
            axes = np.meshgrid(*(centres,) * grid.dim, indexing="ij")
            cc = np.stack(axes, axis=-1).reshape(-1, grid.dim)
            k_cells = to_numpy_fn(self.coefficient, cc).reshape((grid.n + 1,) * grid.dim)
            fe = bilinear_fe_stencil if self.scheme == "fe9" else trilinear_fe_stencil
            full = fe(grid, k_cells)
        g_full = np.zeros(grid.full_points.shape[0])
        g_full[grid.boundary_mask] = to_numpy_fn(
            self.boundary_value, grid.full_points[grid.boundary_mask]
        )
        if self.family == "anisotropic":
            full = self._anisotropic(full)
        stencil, boundary_rhs = eliminate_boundary(grid, full, g_full)
        b = to_numpy_fn(self.source, grid.points) + boundary_rhs
        exact = to_numpy_fn(self.exact_solution, grid.points) if self.has_exact_solution else None
        return LinearSystem(
            A=stencil_to_csr(stencil),
            b=b,
            geometry=grid,
            grid=grid.as_grid(),
            stencil=stencil,
            exact=exact,
            metadata={"problem": self.describe(), "boundary_full": g_full[grid.boundary_mask]},
        )

    def discretize_distributed(self, comm: Any = None) -> DistributedSystem:
        """This MPI rank's rows of ``discretize()``, built from its own slab of x-planes only.

        The rows are PETSc's default layout over ``comm`` (``COMM_WORLD`` if None); the rank
        evaluates the coefficient on its planes plus one ghost plane on each side (the
        stencil's reach), the source and exact solution on its own nodes, so its memory and
        time are ``O(N / p)`` (the seeded ``lognormal``/``uniform`` coefficient fields are drawn
        whole on every rank, ``O(N)`` floats, to keep them independent of ``p``). Row for row,
        the result equals the same rows of ``discretize()``.

        >>> from pdesolve import get_problem
        >>> p = get_problem("poisson", dim=2, n=8)
        >>> local = p.discretize_distributed()  # one process: all rows
        >>> bool(abs(local.A - p.discretize().A).max() == 0), local.local_rows
        (True, (0, 64))
        """
        comm = comm or petsc().COMM_WORLD
        return agree(lambda: self._slab_system(comm), "distributed assembly", comm)

    def _slab_system(self, comm: Any) -> DistributedSystem:
        grid = self.grid
        lo, hi = row_range(grid.size, comm)
        if hi <= lo:
            raise ValueError(
                f"this rank has no rows: {grid.size} unknowns for {comm.getSize()} ranks "
                "(use fewer ranks or a finer grid)"
            )
        slab = GridSlab.covering(grid, lo, hi)
        if self.scheme == "fd":
            k_nodes = to_numpy_fn(self.coefficient, slab.full_points).reshape(slab.full_shape)
            full = fd_stencil(grid, k_nodes, planes=slab.planes)
            if self.family == "anisotropic":
                full = self._anisotropic(full)
        else:  # the cells of the slab's planes plus the cell plane on each side
            h, n, m = grid.h, grid.n, slab.planes
            cx = (np.arange(slab.first, slab.first + m + 1) + 0.5) * h
            rest = (np.arange(n + 1) + 0.5) * h
            axes = np.meshgrid(cx, *(rest,) * (grid.dim - 1), indexing="ij")
            cc = np.stack(axes, axis=-1).reshape(-1, grid.dim)
            shape = (m + 1,) + (n + 1,) * (grid.dim - 1)
            k_cells = to_numpy_fn(self.coefficient, cc).reshape(shape)
            if self.scheme == "fe27":
                full = trilinear_fe_stencil(grid, k_cells, planes=m)
            elif self.family == "anisotropic":
                full = anisotropic_fe_stencil(grid, k_cells, self.anisotropy, planes=m)
            else:
                full = bilinear_fe_stencil(grid, k_cells, planes=m)
        g_slab = np.zeros(len(slab.full_points))
        on_boundary = slab.boundary_mask
        if on_boundary.any():
            g_slab[on_boundary] = to_numpy_fn(self.boundary_value, slab.full_points[on_boundary])
        stencil, boundary_rhs = eliminate_boundary(grid, full, g_slab, first_plane=slab.first)
        rows = slice(lo - slab.row_offset, hi - slab.row_offset)
        points = slab.points[rows]
        b = to_numpy_fn(self.source, points) + boundary_rhs[rows]
        exact = to_numpy_fn(self.exact_solution, points) if self.has_exact_solution else None
        A = stencil_to_csr(stencil, grid.shape, slab.first)[rows]
        return DistributedSystem(
            A=A, b=b, exact=exact, geometry=slab, global_size=grid.size, row_start=lo,
            comm=comm, weights=grid.node_weights,
            metadata={"problem": self.describe(), "points": points},
        )  # fmt: skip
