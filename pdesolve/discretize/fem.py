"""P1 (linear Lagrange) finite elements on simplex meshes: triangles in 2D, tetrahedra in 3D.

Assembly is vectorised over cells (no Python loop over cells).

>>> import numpy as np
>>> points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
>>> K, M = assemble_p1(points, np.array([[0, 1, 2]]))
>>> K.toarray()
array([[ 1. , -0.5, -0.5],
       [-0.5,  0.5,  0. ],
       [-0.5,  0. ,  0.5]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations

import numpy as np
import scipy.sparse as sp

SIMPLEX = {2: "triangle", 3: "tetra"}
FACET = {2: "line", 3: "triangle"}


def _geometry(points: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the barycentric functions (M, d+1, d) and cell volumes (M,)."""
    d = points.shape[1]
    X = points[cells]  # (M, d+1, d)
    J = np.swapaxes(X[:, 1:] - X[:, :1], 1, 2)  # columns are edge vectors
    det = np.linalg.det(J)
    if np.any(np.abs(det) <= 1e-14 * np.max(np.abs(det))):
        raise ValueError("the mesh has degenerate (zero-volume) cells")
    Jinv = np.linalg.inv(J)  # rows: gradients of λ_1..λ_d
    grads = np.concatenate([-Jinv.sum(axis=1, keepdims=True), Jinv], axis=1)
    return grads, np.abs(det) / math.factorial(d)


def assemble_p1(
    points: np.ndarray, cells: np.ndarray, coefficient: np.ndarray | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Stiffness ``∫ k ∇φ_i·∇φ_j`` (``k`` per cell, default 1) and mass ``∫ φ_i φ_j`` as CSR."""
    grads, vol = _geometry(points, cells)
    d1 = cells.shape[1]
    k = np.ones(len(cells)) if coefficient is None else np.asarray(coefficient, dtype=float)
    local_K = (k * vol)[:, None, None] * np.einsum("mik,mjk->mij", grads, grads)
    d = points.shape[1]
    local_M = vol[:, None, None] / ((d + 1) * (d + 2)) * (np.ones((d1, d1)) + np.eye(d1))
    rows = np.repeat(cells, d1, axis=1).ravel()
    cols = np.tile(cells, (1, d1)).ravel()
    n = len(points)
    K = sp.csr_matrix((local_K.ravel(), (rows, cols)), shape=(n, n))
    M = sp.csr_matrix((local_M.ravel(), (rows, cols)), shape=(n, n))
    return K, M


def boundary_facets(cells: np.ndarray) -> np.ndarray:
    """Facets (sorted vertex tuples) that belong to exactly one cell."""
    d1 = cells.shape[1]
    facets = np.concatenate([cells[:, list(c)] for c in combinations(range(d1), d1 - 1)])
    facets = np.sort(facets, axis=1)
    unique, counts = np.unique(facets, axis=0, return_counts=True)
    return unique[counts == 1]


# quadrature rules on the reference simplex: barycentric points, weights summing to 1
_TRI_A, _TRI_B = 0.445948490915965, 0.091576213509771
_QUAD = {
    2: (
        np.array(
            [[_TRI_A, _TRI_A, 1 - 2 * _TRI_A], [_TRI_A, 1 - 2 * _TRI_A, _TRI_A],
             [1 - 2 * _TRI_A, _TRI_A, _TRI_A], [_TRI_B, _TRI_B, 1 - 2 * _TRI_B],
             [_TRI_B, 1 - 2 * _TRI_B, _TRI_B], [1 - 2 * _TRI_B, _TRI_B, _TRI_B]]
        ),
        np.array([0.223381589678011] * 3 + [0.109951743655322] * 3),
    ),  # degree 4 (Strang-Fix / Dunavant)
    3: (
        np.array(
            [[0.25, 0.25, 0.25, 0.25], [0.5, 1 / 6, 1 / 6, 1 / 6], [1 / 6, 0.5, 1 / 6, 1 / 6],
             [1 / 6, 1 / 6, 0.5, 1 / 6], [1 / 6, 1 / 6, 1 / 6, 0.5]]
        ),
        np.array([-0.8, 0.45, 0.45, 0.45, 0.45]),
    ),  # degree 3 (Keast)
}  # fmt: skip


@dataclass(eq=False)
class MeshGeometry:
    """A simplex mesh with the Dirichlet nodes marked; unknowns are the free nodes, in order."""

    points: np.ndarray
    cells: np.ndarray
    dirichlet: np.ndarray  # bool mask over points
    facets: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=int))

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def cell_type(self) -> str:
        return SIMPLEX[self.dim]

    @cached_property
    def free(self) -> np.ndarray:
        return np.flatnonzero(~self.dirichlet)

    @cached_property
    def mass(self) -> sp.csr_matrix:
        return assemble_p1(self.points, self.cells)[1]

    @property
    def node_weights(self) -> np.ndarray:
        """Lumped-mass weights of the free nodes (grid-L2 norms of nodal vectors)."""
        return np.asarray(self.mass.sum(axis=1)).ravel()[self.free]

    def embed(self, u_free: np.ndarray, dirichlet_values: np.ndarray) -> np.ndarray:
        full = np.empty(len(self.points))
        full[self.free] = u_free
        full[self.dirichlet] = dirichlet_values
        return full

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Quadrature points (M, q, d), weights (M, q) and barycentric coordinates (q, d+1)."""
        bary, w = _QUAD[self.dim]
        _, vol = _geometry(self.points, self.cells)
        X = self.points[self.cells]
        pts = np.einsum("qi,mid->mqd", bary, X)
        return pts, vol[:, None] * w[None, :], bary

    def errors(self, u_full: np.ndarray, exact, exact_grad) -> dict[str, float]:
        """L2 and H1-seminorm errors of the P1 field ``u_full`` against ``exact`` (numpy fns)."""
        pts, weights, bary = self.quadrature()
        M, q, d = pts.shape
        flat = pts.reshape(-1, d)
        uh = np.einsum("qi,mi->mq", bary, u_full[self.cells])
        e = uh - exact(flat).reshape(M, q)
        grads, _ = _geometry(self.points, self.cells)
        grad_uh = np.einsum("mi,mid->md", u_full[self.cells], grads)
        ge = grad_uh[:, None, :] - exact_grad(flat).reshape(M, q, d)
        return {
            "l2": float(np.sqrt(np.sum(weights * e**2))),
            "h1_semi": float(np.sqrt(np.sum(weights * np.sum(ge**2, axis=2)))),
        }


def refine_triangles(
    points: np.ndarray, cells: np.ndarray, facets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Uniform red refinement: each triangle split into four by its edge midpoints.

    ``facets`` (boundary line segments, e.g. a named cell set) are split alongside.
    """
    if cells.shape[1] != 3:
        raise ValueError("uniform refinement is implemented for triangle meshes")
    edges = np.sort(np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]]), axis=1)
    unique, inverse = np.unique(edges, axis=0, return_inverse=True)
    mid = len(points) + inverse.reshape(3, -1).T  # midpoint ids of edges 01, 12, 20
    new_points = np.vstack([points, 0.5 * (points[unique[:, 0]] + points[unique[:, 1]])])
    a, b, c = cells.T
    m01, m12, m20 = mid.T
    new_cells = np.concatenate(
        [np.stack(t, axis=1) for t in
         ((a, m01, m20), (m01, b, m12), (m20, m12, c), (m01, m12, m20))]
    )  # fmt: skip
    new_facets = None
    if facets is not None and len(facets):
        f = np.sort(facets, axis=1)
        key = unique[:, 0] * len(new_points) + unique[:, 1]
        pos = np.searchsorted(key, f[:, 0] * len(new_points) + f[:, 1])
        if np.any(pos >= len(key)) or np.any(
            key[np.minimum(pos, len(key) - 1)] != f[:, 0] * len(new_points) + f[:, 1]
        ):
            raise ValueError("a boundary facet is not an edge of the mesh")
        m = len(points) + pos
        new_facets = np.concatenate([np.stack([f[:, 0], m], 1), np.stack([m, f[:, 1]], 1)])
    return new_points, new_cells, new_facets
