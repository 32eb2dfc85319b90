"""The MAC-grid pressure Poisson problem: symmetry, definiteness, consistency, masks, errors."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import pdesolve
from pdesolve.problems.pressure import AIR, FLUID, SOLID, mesh_mask, pressure_stencil


def _smallest_eigs(A, k=2):
    return np.linalg.eigvalsh(A.toarray())[:k]


@pytest.mark.parametrize("geometry", ["empty", "sphere", "obstacles"])
@pytest.mark.parametrize("dim,n", [(2, 12), (3, 6)])
def test_open_top_is_spd(geometry, dim, n):
    s = pdesolve.get_problem("pressure_poisson", dim=dim, n=n, geometry=geometry, seed=2,
                             radius=0.3).discretize()
    A = s.A
    assert abs(A - A.T).max() == 0
    assert _smallest_eigs(A)[0] > 1e-6
    assert s.metadata["null_components"] == 0
    nonfluid = ~s.metadata["fluid_mask"].ravel()
    assert np.all(s.b[nonfluid] == 0)


def test_closed_box_is_singular_but_consistent():
    s = pdesolve.get_problem("pressure_poisson", dim=2, n=10, geometry="sphere",
                             boundary="closed").discretize()
    lam = _smallest_eigs(s.A, 2)
    assert abs(lam[0]) < 1e-10 and lam[1] > 1e-4  # one constant null vector, PSD
    fluid = s.metadata["fluid_mask"].ravel()
    assert abs(s.b[fluid].sum()) < 1e-12 * np.abs(s.b).sum()  # b in the range
    x, info = spla.cg(s.A, s.b, rtol=1e-10, maxiter=2000)
    assert info == 0 and np.linalg.norm(s.b - s.A @ x) <= 1e-9 * np.linalg.norm(s.b)


def test_enclosed_component_is_projected():
    cells = np.full((6, 6), FLUID)
    cells[1:5, 1:5] = SOLID
    cells[2:4, 2:4] = FLUID  # an enclosed pocket: its own null vector
    from pdesolve.problems.pressure import _project_onto_range

    b, null = _project_onto_range(cells, "open_top", np.arange(36.0).reshape(6, 6))
    assert null == 1 and abs(b[2:4, 2:4].sum()) < 1e-12


def test_stencil_rows_sum_to_air_links():
    cells = np.full((4, 4), FLUID)
    cells[1, 1] = SOLID
    cells[3, 3] = AIR
    s = pressure_stencil(cells, boundary="closed")
    row_sums = s.sum(axis=(-2, -1))
    assert row_sums[1, 1] == 1 and row_sums[3, 3] == 1  # identity rows
    assert row_sums[3, 2] == 1 and row_sums[2, 3] == 1  # one air neighbour each
    assert row_sums[0, 0] == 0  # Neumann corner: no air


def test_remove_nonfluid_matches_identity_block():
    kw = dict(dim=2, n=12, geometry="sphere", radius=0.3)
    full = pdesolve.get_problem("pressure_poisson", **kw).discretize()
    red = pdesolve.get_problem("pressure_poisson", nonfluid="remove", **kw).discretize()
    idx = np.flatnonzero(full.metadata["fluid_mask"].ravel())
    assert (abs(full.A[idx][:, idx] - red.A)).max() == 0
    assert np.array_equal(full.b[idx], red.b)


def test_seeded_obstacles_reproducible_and_different():
    a = pdesolve.get_problem("pressure_poisson", dim=2, n=24, geometry="obstacles", seed=5)
    b = pdesolve.get_problem("pressure_poisson", dim=2, n=24, geometry="obstacles", seed=6)
    assert np.array_equal(a.cell_types(), a.cell_types())
    assert not np.array_equal(a.cell_types(), b.cell_types())


def test_image_mask(tmp_path):
    from PIL import Image

    pic = np.full((20, 40), 255, dtype=np.uint8)
    pic[15:, :] = 0  # dark band at the bottom of the picture
    Image.fromarray(pic).save(tmp_path / "m.png")
    p = pdesolve.get_problem("pressure_poisson", dim=2, n=10, geometry="image",
                             path=str(tmp_path / "m.png"))
    cells = p.cell_types()
    assert np.all(cells[:, :2] == SOLID) and np.all(cells[:, 3:] == FLUID)  # y up


def test_mesh_mask_cube(tmp_path):
    import meshio

    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    tris = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    meshio.write(tmp_path / "cube.vtk", meshio.Mesh(v, [("triangle", np.array(tris))]))
    m = mesh_mask(tmp_path / "cube.vtk", 12)
    # the cube is scaled to [0.15, 0.85]^3: cell centres (i + 1/2)/12 for i = 2..9 are inside
    assert m[2:10, 2:10, 2:10].all() and m.sum() == 8**3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(dim=1), "dim 2 or 3"),
        (dict(geometry="bunny"), "unknown geometry"),
        (dict(geometry="image"), "needs path"),
        (dict(boundary="periodic"), "unknown boundary"),
        (dict(nonfluid="drop"), "nonfluid"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pdesolve.get_problem("pressure_poisson", **kwargs)


def test_all_solid_is_an_error():
    p = pdesolve.get_problem("pressure_poisson", dim=2, n=8, geometry="sphere", radius=2.0)
    with pytest.raises(ValueError, match="no fluid"):
        p.discretize()
