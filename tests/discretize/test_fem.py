"""P1 finite elements on meshio meshes: convergence orders, boundaries, tetrahedra."""

import itertools

import meshio
import numpy as np
import pytest
import scipy.sparse.linalg as spla
from _support import measured_orders

import pdesolve
from pdesolve.discretize.fem import assemble_p1, boundary_facets, refine_triangles


def fem_errors(problem):
    system = problem.discretize()
    x = spla.spsolve(system.A.tocsc(), system.b)
    return problem.fem_errors(system, x)


def test_p1_orders_on_sample_mesh_and_refinements():
    errors, widths = [], []
    for level in range(4):
        p = pdesolve.get_problem("mesh_poisson", refine=level, solution="sine", frequency=2)
        errors.append(fem_errors(p))
        widths.append(0.5**level)
    l2 = measured_orders([e["l2"] for e in errors], widths)
    h1 = measured_orders([e["h1_semi"] for e in errors], widths)
    assert np.all(np.abs(l2 - 2.0) < 0.1), l2
    assert np.all(np.abs(h1 - 1.0) < 0.1), h1


def test_nonzero_dirichlet_data_on_named_boundary():
    full = pdesolve.get_problem("mesh_poisson", boundary=None)
    named = pdesolve.get_problem("mesh_poisson", boundary="boundary")
    west = pdesolve.get_problem("mesh_poisson", boundary="west")
    assert np.array_equal(full.geometry.dirichlet, named.geometry.dirichlet)
    assert 0 < west.geometry.dirichlet.sum() < full.geometry.dirichlet.sum()
    assert np.all(full.geometry.points[west.geometry.dirichlet, 0] <= 0.5 + 1e-12)


def test_refinement_preserves_area_and_boundary():
    p0 = pdesolve.get_problem("mesh_poisson")
    pts, cells, facets = refine_triangles(p0.geometry.points, p0.geometry.cells, p0.geometry.facets)
    _, M0 = assemble_p1(p0.geometry.points, p0.geometry.cells)
    _, M1 = assemble_p1(pts, cells)
    assert M0.sum() == pytest.approx(M1.sum(), rel=1e-12)  # the mass matrix sums to the area
    assert len(cells) == 4 * len(p0.geometry.cells)
    assert len(facets) == 2 * len(p0.geometry.facets) == len(boundary_facets(cells))


def cube_tetra_mesh(m: int) -> meshio.Mesh:
    """The unit cube cut into m³ cubes of 6 tetrahedra each (Kuhn triangulation)."""
    axis = np.linspace(0, 1, m + 1)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    ids = np.arange((m + 1) ** 3).reshape(m + 1, m + 1, m + 1)
    corner = ids[:-1, :-1, :-1].ravel()
    strides = np.array([(m + 1) ** 2, m + 1, 1])
    tets = []
    for perm in itertools.permutations(range(3)):
        path = [np.zeros(3, dtype=int)]
        for axis_ in perm:
            step = path[-1].copy()
            step[axis_] = 1
            path.append(step)
        tets.append(np.stack([corner + p @ strides for p in path], axis=1))
    return meshio.Mesh(points, [("tetra", np.concatenate(tets))])


def test_p1_on_tetrahedra_converges_at_second_order():
    errors = []
    for m in (4, 8, 16):
        p = pdesolve.get_problem("mesh_poisson", mesh=cube_tetra_mesh(m), solution="exponential")
        assert p.dim == 3 and p.geometry.cells.shape[1] == 4
        errors.append(fem_errors(p))
    l2 = measured_orders([e["l2"] for e in errors], [1 / 4, 1 / 8, 1 / 16])
    h1 = measured_orders([e["h1_semi"] for e in errors], [1 / 4, 1 / 8, 1 / 16])
    assert np.all(np.abs(l2 - 2.0) < 0.15), l2
    assert np.all(np.abs(h1 - 1.0) < 0.15), h1
