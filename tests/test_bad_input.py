"""Bad input gets a clear exception that names the cause."""

import meshio
import numpy as np
import pytest
import scipy.sparse as sp

import pdesolve
from pdesolve import InvalidSystemError
from pdesolve.io import MeshError


def laplacian_1d(n=5):
    return sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n), format="csr")


def test_non_square_matrix():
    with pytest.raises(InvalidSystemError, match="square"):
        pdesolve.LinearSystem(sp.random(4, 5, density=0.5, format="csr"), np.ones(4))


def test_nan_in_b():
    b = np.ones(5)
    b[2] = np.nan
    with pytest.raises(InvalidSystemError, match="b contains NaN"):
        pdesolve.LinearSystem(laplacian_1d(), b)


def test_nan_in_matrix():
    A = laplacian_1d().toarray()
    A[0, 0] = np.inf
    with pytest.raises(InvalidSystemError, match="A contains NaN or Inf"):
        pdesolve.LinearSystem(A, np.ones(5))


def test_b_of_wrong_length():
    with pytest.raises(InvalidSystemError, match="b has length 4 but A has 5 rows"):
        pdesolve.LinearSystem(laplacian_1d(), np.ones(4))


@pytest.mark.parametrize("method", ["petsc_cg", "scipy_cg"])
def test_wrong_length_x0(method):
    system = pdesolve.LinearSystem(laplacian_1d(), np.ones(5))
    with pytest.raises(InvalidSystemError, match="x0 has shape"):
        pdesolve.solve(system, method=method, x0=np.zeros(3))


@pytest.mark.parametrize("method", ["petsc_cg", "scipy_cg"])
def test_non_symmetric_matrix_given_to_cg(method):
    A = laplacian_1d().tolil()
    A[0, 1] = -0.5
    with pytest.raises(InvalidSystemError, match="not symmetric"):
        pdesolve.solve(pdesolve.LinearSystem(A.tocsr(), np.ones(5)), method=method)


def test_unknown_solver_lists_known_names():
    system = pdesolve.LinearSystem(laplacian_1d(), np.ones(5))
    with pytest.raises(pdesolve.UnknownNameError, match="known solvers: .*petsc_cg.*scipy_cg"):
        pdesolve.solve(system, method="petsc_gc")


def test_unknown_preconditioner_and_bad_tolerances():
    with pytest.raises(pdesolve.UnknownNameError, match="unknown preconditioner 'ilu0'"):
        pdesolve.get_solver("petsc_cg", pc="ilu0")
    with pytest.raises(ValueError, match="rtol must be"):
        pdesolve.get_solver("petsc_cg", rtol=float("nan"))
    with pytest.raises(ValueError, match="both 0"):
        pdesolve.get_solver("scipy_cg", rtol=0.0, atol=0.0)


def test_solve_rejects_other_objects():
    with pytest.raises(TypeError, match="LinearSystem or a Problem"):
        pdesolve.solve(np.eye(3))


def test_missing_mesh_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pdesolve.get_problem("mesh_poisson", mesh=tmp_path / "nope.msh")


def test_mesh_without_cells(tmp_path):
    path = tmp_path / "empty.msh"
    meshio.write(path, meshio.Mesh(np.random.default_rng(0).random((4, 3)), []), "gmsh22")
    with pytest.raises(MeshError, match="no cells"):
        pdesolve.get_problem("mesh_poisson", mesh=path)


def test_unreadable_mesh_file(tmp_path):
    path = tmp_path / "broken.vtu"
    path.write_text("<VTKFile> not really </VTKFile>")
    with pytest.raises(MeshError, match="could not read mesh"):
        pdesolve.get_problem("mesh_poisson", mesh=path)


def test_mesh_without_triangles(tmp_path):
    path = tmp_path / "lines.vtu"
    meshio.write(path, meshio.Mesh(np.eye(3), [("line", np.array([[0, 1], [1, 2]]))]))
    with pytest.raises(MeshError, match="no triangle or tetra cells"):
        pdesolve.get_problem("mesh_poisson", mesh=path)


def test_unknown_named_boundary():
    with pytest.raises(MeshError, match="no cell set 'east'.*boundary"):
        pdesolve.get_problem("mesh_poisson", boundary="east")


def test_bad_problem_parameters():
    with pytest.raises(ValueError, match="dim must be 1, 2 or 3"):
        pdesolve.get_problem("poisson", dim=4)
    with pytest.raises(ValueError, match="needs dim=2"):
        pdesolve.get_problem("poisson", dim=3, scheme="fe9")
    with pytest.raises(ValueError, match="unknown coefficient family"):
        pdesolve.get_problem("diffusion", coefficient="random")
    with pytest.raises(ValueError, match="unknown manufactured solution"):
        pdesolve.get_problem("poisson", solution="cosine")
    with pytest.raises(TypeError, match="no parameter 'resolution'; its parameters: dim, n"):
        pdesolve.get_problem("poisson", resolution=3)
    with pytest.raises(TypeError, match="solver 'scipy_cg' has no parameter 'tol'"):
        pdesolve.get_solver("scipy_cg", tol=1e-3)


def test_outputs_are_not_overwritten(tmp_path):
    from pdesolve.io import write_json

    path = write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(FileExistsError, match="exists"):
        write_json(path, {"x": 2})
    assert path.read_text().strip().endswith("}") and '"x": 1' in path.read_text()
