"""examples/smoke2d.py: a smoke simulation that sets each pressure solver up once and reuses it."""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdesolve.discretize.finite_difference import stencil_to_csr
from pdesolve.problems.pressure import FLUID, SOLID, pressure_stencil

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "smoke2d.py"
RTOL = 1e-8


@pytest.fixture(scope="module")
def smoke():
    spec = importlib.util.spec_from_file_location("smoke2d_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def simulation(smoke, tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-one network inferences (DCDM): one thread is faster
    try:
        return smoke.run(n=63, steps=3, solvers=smoke.DEFAULT_SOLVERS, rtol=RTOL, out=out), out
    finally:
        torch.set_num_threads(threads)


def test_doctests(smoke):
    assert doctest.testmod(smoke).failed == 0


def test_pressure_operator_is_the_library_mac_operator(smoke):
    """The example's stencil and matrix equal pressure_poisson's (open top, solid walls) and the
    matrix is symmetric positive definite."""
    solid = smoke.obstacle_mask(31)
    stencil = smoke.pressure_stencil(solid)
    cells = np.where(solid, SOLID, FLUID)
    np.testing.assert_array_equal(stencil, pressure_stencil(cells, boundary="open_top"))
    A = smoke.stencil_matrix(stencil)
    assert abs(A - stencil_to_csr(stencil)).max() == 0
    assert abs(A - A.T).max() == 0
    assert spla.eigsh(A, k=1, sigma=0, which="LM")[0][0] > 1e-4
    system = smoke.pressure_system(solid)
    assert system.stencil.shape == (31, 31, 3, 3)
    assert system.grid.shape == (31, 31)
    assert system.grid.mask is None  # solid cells are unknowns too (identity rows)
    np.testing.assert_array_equal(system.metadata["fluid_mask"], ~solid)


def test_every_solver_projects_to_rtol_with_one_setup(simulation):
    result, _ = simulation
    assert [r.key for r in result.records] == ["icc", "gamg", "mg_learned", "dcdm"]
    for record in result.records:
        assert len(record.ratios) == 3
        assert all(record.converged), record.key
        # divergence after the projection / before it <= the solver's rtol, every step
        assert max(record.ratios) <= RTOL, (record.key, record.ratios)
        assert min(record.ratios) > 0.0  # measured, not assumed
        assert record.setups == [1, 1, 1], record.key  # set up once, reused every step
        assert min(record.iterations) >= 1


def test_solvers_agree_on_the_pressure(simulation, smoke):
    """Every solver's last pressure is within the residual bound of the exact one (sparse LU)."""
    result, _ = simulation
    system = smoke.pressure_system(result.flow.solid)
    exact = spla.spsolve(system.A.tocsc(), result.last_rhs)
    lam_min = spla.eigsh(system.A, k=1, sigma=0, which="LM")[0][0]
    bound = RTOL * np.linalg.norm(result.last_rhs) / lam_min  # ||A^-1|| ||r||
    pressures = {r.key: r.pressure for r in result.records}
    for key, p in pressures.items():
        assert np.linalg.norm(p - exact) <= bound, key
        assert np.linalg.norm(p - exact) <= 1e-6 * np.linalg.norm(exact), key
    assert np.linalg.norm(pressures["icc"] - pressures["dcdm"]) <= 2 * bound
    assert np.linalg.norm(pressures["gamg"] - pressures["mg_learned"]) <= 2 * bound
    assert np.linalg.norm(exact) > 1e3 * bound  # the bound is tight enough to mean something


def test_outputs(simulation):
    result, out = simulation
    assert sorted(p.name for p in (out / "frames").iterdir()) == [
        "frame_0001.png", "frame_0002.png", "frame_0003.png"
    ]  # fmt: skip
    from PIL import Image

    with Image.open(out / "smoke.gif") as gif:
        assert gif.n_frames == 3
    table = (out / "table.md").read_text()
    assert table == result.table
    for label in ("petsc_cg + ICC(0)", "petsc_cg + GAMG", "learned", "dcdm"):
        assert label in table
    assert result.flow.s.max() > 0.5  # smoke was injected and advected
    assert np.abs(result.flow.v).max() > 0.5  # and rises


def test_bad_input(smoke, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(SystemExit):
        smoke.main(["--n", "63", "--steps", "1", "--out", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="2\\^k - 1"):
        smoke.run(n=64, steps=1, solvers=["mg_learned"])
    with pytest.raises(ValueError, match="unknown solver"):
        smoke.run(n=63, steps=1, solvers=["gmres"])
