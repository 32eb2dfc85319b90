"""``poisson_holes``: ``-Δu = f`` on a square minus disks, Dirichlet data on every boundary.

The domain is ``[-0.5, 0.5]²`` minus disks (default: four of radius 0.1 at ``(±0.3, ±0.3)``), a
:mod:`~pdesolve.problems.geometry` shape (signed distances, boundary sampling on the outer edges
and the circles, hard-constraint distance). Cases (``case=``):

* ``laplace``: ``f = 0``, ``u = 0`` on the outer square, ``u = 1`` on the circles (no closed form);
* ``manufactured``: ``u = sin(πx) sin(πy) + x e^y``, ``f = -Δu``, ``g = u`` (exact).

The classical side is P1 finite elements (``pdesolve.discretize.fem``) on a triangle mesh that gmsh
generates in-process from the same shapes (``mesh_size`` = target edge length):
``discretize()`` returns the linear system, ``reference()`` solves it (``petsc_cg`` + GAMG by
default) and interpolates the P1 solution at any points.

>>> import pdesolve
>>> p = pdesolve.get_problem("poisson_holes", mesh_size=0.1)
>>> system = p.discretize()
>>> system.size > 50, p.kind
(True, 'stationary')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.discretize.fem import MeshGeometry, assemble_p1, boundary_facets
from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem, gradient, laplacian, to_numpy_fn
from pdesolve.problems.geometry import Disk, Rectangle
from pdesolve.problems.time_dependent import ReferenceSolution, linear_solver

DEFAULT_HOLES = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))


def gmsh_square_minus_disks(
    lo: Sequence[float], hi: Sequence[float], centers: Sequence[Sequence[float]],
    radius: float, mesh_size: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Points ``(P, 2)`` and triangles ``(M, 3)`` of a gmsh mesh of the rectangle minus disks."""
    import gmsh

    started = gmsh.isInitialized()
    if not started:
        gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("square_minus_disks")
        occ = gmsh.model.occ
        square = occ.addRectangle(lo[0], lo[1], 0, hi[0] - lo[0], hi[1] - lo[1])
        disks = [(2, occ.addDisk(c[0], c[1], 0, radius, radius)) for c in centers]
        if disks:
            occ.cut([(2, square)], disks)
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", mesh_size)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        gmsh.option.setNumber("Mesh.Algorithm", 6)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        _, elem_nodes = gmsh.model.mesh.getElementsByType(2)  # 3-node triangles
        gmsh.model.remove()
    finally:
        if not started:
            gmsh.finalize()
    index = np.full(int(tags.max()) + 1, -1, dtype=np.int64)
    index[tags.astype(np.int64)] = np.arange(len(tags))
    cells = index[np.asarray(elem_nodes, dtype=np.int64)].reshape(-1, 3)
    used, cells = np.unique(cells, return_inverse=True)
    points = coords.reshape(-1, 3)[used, :2].astype(np.float64)
    return points, cells.reshape(-1, 3)


@PROBLEMS.register("poisson_holes")
class PoissonHolesProblem(Problem):
    """``-Δu = f`` on ``[-0.5, 0.5]²`` minus disks, P1 FEM on a gmsh mesh."""

    name = "poisson_holes"

    def __init__(
        self,
        case: str = "laplace",
        mesh_size: float = 0.02,
        radius: float = 0.1,
        centers: Sequence[Sequence[float]] = DEFAULT_HOLES,
        inner_value: float = 1.0,
    ) -> None:
        if case not in ("laplace", "manufactured"):
            raise ValueError(f"poisson_holes: case must be 'laplace' or 'manufactured', got "
                             f"{case!r}")  # fmt: skip
        if not 0 < mesh_size < 0.5:
            raise ValueError(f"poisson_holes: mesh_size must be in (0, 0.5), got {mesh_size!r}")
        centers = tuple(tuple(float(v) for v in c) for c in centers)
        super().__init__(case=case, mesh_size=float(mesh_size), radius=float(radius),
                         centers=[list(c) for c in centers], inner_value=float(inner_value))
        self.dim = 2
        self.case, self.mesh_size, self.inner_value = case, float(mesh_size), float(inner_value)
        self.outer = Rectangle((-0.5, -0.5), (0.5, 0.5))
        self.holes = [Disk(c, radius) for c in centers]
        domain = self.outer
        for hole in self.holes:
            domain = domain - hole
            if np.any(hole.bounding_box[0] <= -0.5) or np.any(hole.bounding_box[1] >= 0.5):
                raise ValueError(f"poisson_holes: {hole!r} must lie inside the square")
        self.domain = domain
        self.radius, self.centers = float(radius), centers
        self._geometry: MeshGeometry | None = None
        self._reference: ReferenceSolution | None = None

    # continuous form --------------------------------------------------------------------------
    @property
    def has_exact_solution(self) -> bool:
        return self.case == "manufactured"

    def exact_solution(self, x: Tensor) -> Tensor:
        if not self.has_exact_solution:
            return super().exact_solution(x)
        return (torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])
                + x[:, 0] * torch.exp(x[:, 1]))  # fmt: skip

    def exact_gradient(self, x: Tensor) -> Tensor:
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            return gradient(self.exact_solution(xg), xg).detach()

    def source(self, x: Tensor) -> Tensor:
        if not self.has_exact_solution:
            return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            return -laplacian(self.exact_solution(xg), xg).detach()

    def boundary_value(self, x: Tensor) -> Tensor:
        """``u`` (manufactured), or 0 on the square and ``inner_value`` on the circles."""
        if self.has_exact_solution:
            return self.exact_solution(x)
        near_hole = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for hole in self.holes:
            near_hole |= hole.signed_distance(x) < 0.5 * self.mesh_size
        return torch.where(near_hole, self.inner_value, 0.0).to(x.dtype)

    # discrete form ----------------------------------------------------------------------------
    @property
    def geometry(self) -> MeshGeometry:
        """The P1 mesh (generated by gmsh on first use)."""
        if self._geometry is None:
            points, cells = gmsh_square_minus_disks((-0.5, -0.5), (0.5, 0.5), self.centers,
                                                    self.radius, self.mesh_size)  # fmt: skip
            facets = boundary_facets(cells)
            dirichlet = np.zeros(len(points), dtype=bool)
            dirichlet[np.unique(facets)] = True
            self._geometry = MeshGeometry(points=points, cells=cells, dirichlet=dirichlet,
                                          facets=facets)  # fmt: skip
        return self._geometry

    def discretize(self, **overrides: Any) -> LinearSystem:
        if overrides:
            return type(self)(**{**self.params, **overrides}).discretize()
        geo = self.geometry
        K, M = assemble_p1(geo.points, geo.cells)
        f = to_numpy_fn(self.source, geo.points)
        g = to_numpy_fn(self.boundary_value, geo.points[geo.dirichlet])
        free, fixed = geo.free, np.flatnonzero(geo.dirichlet)
        K = K.tocsr()
        A = K[free][:, free]
        b = (M @ f)[free] - K[free][:, fixed] @ g
        exact = to_numpy_fn(self.exact_solution, geo.points[free]) if self.has_exact_solution \
            else None  # fmt: skip
        return LinearSystem(A=A, b=b, geometry=geo, exact=exact,
                            metadata={"problem": self.describe(), "boundary_full": g})

    def solve_fem(self, solver: Any = "petsc_cg", **options: Any) -> np.ndarray:
        """Nodal values of the P1 solution on all mesh points (one solver-object solve)."""
        system = self.discretize()
        options = {"rtol": 1e-12, "pc": "gamg", **options}
        with linear_solver(solver, **options) as fem_solver:
            fem_solver.setup(system)
            result = fem_solver.solve(system.b)
        if not result.converged:
            raise RuntimeError(f"poisson_holes: the FEM solve failed: {result.reason!r}")
        return self.geometry.embed(result.x, system.metadata["boundary_full"])

    def fem_errors(self, system: LinearSystem, x: np.ndarray) -> dict[str, float]:
        """L2 and H1-seminorm errors of a discrete solution ``x`` of ``system`` (by quadrature;
        empty without an exact solution)."""
        if not self.has_exact_solution:
            return {}
        return self.nodal_errors(self.geometry.embed(x, system.metadata["boundary_full"]))

    def nodal_errors(self, u_full: np.ndarray) -> dict[str, float]:
        """L2 and H1-seminorm errors of nodal values against the manufactured solution."""
        return self.geometry.errors(
            u_full,
            lambda p: to_numpy_fn(self.exact_solution, p),
            lambda p: to_numpy_fn(self.exact_gradient, p),
        )

    def reference(self, solver: Any = "petsc_cg", **options: Any) -> ReferenceSolution:
        """The P1 FEM solution (cached), evaluated by linear interpolation on its triangles;
        ``grid`` holds the mesh points and ``values`` the nodal values."""
        if self._reference is None or options or solver != "petsc_cg":
            from matplotlib.tri import LinearTriInterpolator, Triangulation

            u = self.solve_fem(solver, **options)
            geo = self.geometry
            tri = LinearTriInterpolator(Triangulation(geo.points[:, 0], geo.points[:, 1],
                                                      geo.cells), u)  # fmt: skip

            def evaluate(points: np.ndarray) -> np.ndarray:
                points = np.asarray(points, dtype=np.float64)
                out = np.ma.filled(tri(points[:, 0], points[:, 1]).astype(float), np.nan)
                missed = np.isnan(out)  # on a curved boundary, just outside the polygon
                if missed.any():
                    inside = self.domain.contains(points[missed])
                    if not inside.all():
                        bad = points[missed][~inside][0].tolist()
                        raise ValueError(f"poisson_holes: points outside the domain, e.g. {bad}")
                    from scipy.spatial import cKDTree

                    nearest = cKDTree(geo.points).query(points[missed])[1]
                    out[missed] = u[nearest]
                return out

            info = {"method": "P1 finite elements (gmsh mesh)", "resolution":
                    {"mesh_size": self.mesh_size, "nodes": len(geo.points),
                     "triangles": len(geo.cells)}}  # fmt: skip
            if self.has_exact_solution:
                info["errors"] = self.nodal_errors(u)
            ref = ReferenceSolution((geo.points,), u, info, evaluator=evaluate)
            if options or solver != "petsc_cg":
                return ref
            self._reference = ref
        return self._reference

    def test_points(self, n: int = 101) -> np.ndarray:
        """A fixed ``n × n`` grid over the square, points in the holes dropped."""
        axis = np.linspace(-0.5, 0.5, int(n))
        pts = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
        return pts[self.domain.contains(pts)]
