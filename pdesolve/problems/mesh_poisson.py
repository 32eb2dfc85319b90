"""``mesh_poisson``: ``-Δu = f`` on a triangle (2D) or tetrahedron (3D) mesh read with meshio.

Dirichlet nodes are the vertices of the mesh's boundary facets, or of a named cell set
(``boundary="outer"`` for a gmsh physical group of that name). The data ``g`` and source ``f``
come from a manufactured solution (``solution=``, see ``pdesolve.problems.manufactured``).

>>> from pdesolve import get_problem
>>> p = get_problem("mesh_poisson")  # the shipped sample mesh (package data: meshes/disk.msh)
>>> system = p.discretize()
>>> system.geometry.cells.shape[1], system.size > 100
(3, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.discretize.fem import (
    FACET,
    SIMPLEX,
    MeshGeometry,
    assemble_p1,
    boundary_facets,
    refine_triangles,
)
from pdesolve.io import MeshError, named_cell_blocks, read_mesh
from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem, gradient, to_numpy_fn
from pdesolve.problems.domains import Domain
from pdesolve.problems.manufactured import make_solution
from pdesolve.resources import data_dir

if TYPE_CHECKING:  # meshio is imported where it is used: pdesolve imports without it
    import meshio

#: the shipped sample mesh (package data; made by scripts/make_disk_mesh.py)
SAMPLE_MESH = data_dir() / "meshes" / "disk.msh"


def _resolve(path: str | os.PathLike | None) -> Path:
    """The mesh file (``None``: the shipped sample mesh)."""
    return SAMPLE_MESH if path is None else Path(path)


class MeshDomain(Domain):
    """A simplex mesh as a sampling domain (cells chosen by volume, uniform inside)."""

    def __init__(self, geometry: MeshGeometry, facets: np.ndarray) -> None:
        self.geometry = geometry
        self.dim = geometry.dim
        self.facets = facets

    def _sample(self, simplices: np.ndarray, n: int, generator: torch.Generator | None) -> Tensor:
        pts = torch.as_tensor(self.geometry.points)[torch.as_tensor(simplices)]  # (M, k, d)
        edges = pts[:, 1:] - pts[:, :1]
        if edges.shape[1] == edges.shape[2]:
            size = torch.abs(torch.linalg.det(edges))
        else:  # facets: measure by the Gram determinant
            size = torch.sqrt(torch.abs(torch.linalg.det(edges @ edges.transpose(1, 2))))
        which = torch.multinomial(size / size.sum(), n, replacement=True, generator=generator)
        w = -torch.log(torch.rand(n, pts.shape[1], generator=generator, dtype=torch.float64))
        bary = w / w.sum(dim=1, keepdim=True)  # uniform on the simplex
        return torch.einsum("nk,nkd->nd", bary, pts[which])

    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self._sample(self.geometry.cells, n, generator)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self._sample(self.facets, n, generator)


@PROBLEMS.register("mesh_poisson")
class MeshPoissonProblem(Problem):
    """P1 finite elements for ``-Δu = f`` on a meshio mesh, Dirichlet data by elimination."""

    name = "mesh_poisson"

    def __init__(
        self,
        mesh: str | os.PathLike | meshio.Mesh | None = None,
        solution: str = "exponential",
        boundary: str | None = None,
        refine: int = 0,
        frequency: int = 1,
    ) -> None:
        import meshio

        super().__init__(
            mesh=str(_resolve(mesh)) if not isinstance(mesh, meshio.Mesh) else "<meshio.Mesh>",
            solution=solution, boundary=boundary, refine=refine, frequency=frequency,
        )  # fmt: skip
        m = mesh if isinstance(mesh, meshio.Mesh) else read_mesh(_resolve(mesh))
        points, cells, facets = self._cells_and_facets(m, boundary)
        for _ in range(int(refine)):
            points, cells, facets = refine_triangles(points, cells, facets)
        self.dim = points.shape[1]
        dirichlet = np.zeros(len(points), dtype=bool)
        dirichlet[np.unique(facets)] = True
        self.geometry = MeshGeometry(points=points, cells=cells, dirichlet=dirichlet, facets=facets)
        self.domain = MeshDomain(self.geometry, facets)
        extra = {"frequency": frequency} if solution == "sine" else {}
        self.solution = make_solution(solution, **extra)

    @staticmethod
    def _cells_and_facets(
        mesh: meshio.Mesh, boundary: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        blocks = {b.type: b.data for b in mesh.cells}
        dim = 3 if "tetra" in blocks else 2
        if SIMPLEX[dim] not in blocks or len(blocks[SIMPLEX[dim]]) == 0:
            types = ", ".join(blocks) or "none"
            raise MeshError(f"the mesh has no triangle or tetra cells (cell types: {types})")
        # drop unused points (e.g. gmsh geometry points) and a zero z-coordinate in 2D
        cells = np.asarray(blocks[SIMPLEX[dim]], dtype=np.int64)
        used, cells = np.unique(cells, return_inverse=True)
        cells = cells.reshape(-1, dim + 1)
        points = np.asarray(mesh.points, dtype=np.float64)[used, :dim]
        old_to_new = np.full(len(mesh.points), -1)
        old_to_new[used] = np.arange(len(used))
        if boundary is None:
            facets = boundary_facets(cells)
        else:
            parts = [c for t, c in named_cell_blocks(mesh, boundary) if t == FACET[dim]]
            if not parts:
                raise MeshError(f"cell set {boundary!r} has no {FACET[dim]} cells")
            facets = old_to_new[np.concatenate(parts)]
            if np.any(facets < 0):
                raise MeshError(f"cell set {boundary!r} uses points that no {SIMPLEX[dim]} uses")
        return points, cells, facets

    @property
    def has_exact_solution(self) -> bool:
        return True

    def exact_solution(self, x: Tensor) -> Tensor:
        return self.solution(x)

    def exact_gradient(self, x: Tensor) -> Tensor:
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            return gradient(self.solution(xg), xg).detach()

    def source(self, x: Tensor) -> Tensor:
        return -self.solution.laplacian(x)

    def discretize(self, **overrides: Any) -> LinearSystem:
        if overrides:
            return type(self)(**{**self.params, **overrides}).discretize()
        geo = self.geometry
        K, M = assemble_p1(geo.points, geo.cells)
        f = to_numpy_fn(self.source, geo.points)
        g = to_numpy_fn(self.exact_solution, geo.points[geo.dirichlet])
        load = M @ f
        free, fixed = geo.free, np.flatnonzero(geo.dirichlet)
        K = K.tocsr()
        A = K[free][:, free]
        b = load[free] - K[free][:, fixed] @ g
        exact = to_numpy_fn(self.exact_solution, geo.points[free])
        return LinearSystem(
            A=A, b=b, geometry=geo, exact=exact,
            metadata={"problem": self.describe(), "boundary_full": g},
        )  # fmt: skip

    def fem_errors(self, system: LinearSystem, x: np.ndarray) -> dict[str, float]:
        """L2 and H1-seminorm errors of the discrete solution (by quadrature)."""
        u_full = self.geometry.embed(x, system.metadata["boundary_full"])
        return self.geometry.errors(
            u_full,
            lambda p: to_numpy_fn(self.exact_solution, p),
            lambda p: to_numpy_fn(self.exact_gradient, p),
        )
