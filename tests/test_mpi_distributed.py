"""Distributed assembly under ``mpiexec -n 2`` and ``-n 3`` (an uneven split): every rank's rows
equal the serial rows; CG + Jacobi and the P1 mesh problem give one rank's iterations and
solution; PCMG(black-box) with its parallel smoother the same solution; the CLI writes a
``.pvtu`` whose pieces meshio reads; a failure on one rank ends every rank with its message."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import meshio
import numpy as np
import pytest

from pdesolve.problems.mesh_poisson import SAMPLE_MESH

pytestmark = [pytest.mark.mpi, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpirun")

CHECK_SCRIPT = """
import json, sys
import numpy as np
import pdesolve
from pdesolve import parallel
from pdesolve.linalg.distributed import world

comm = world()
cases = {
    "poisson2d": ("poisson", dict(dim=2, n=9)),
    "poisson3d": ("poisson", dict(dim=3, n=5, solution="exponential")),
    "smooth3d": ("diffusion", dict(dim=3, n=5, coefficient="smooth", solution="exponential")),
    "fe9": ("diffusion", dict(dim=2, n=7, coefficient="lognormal", scheme="fe9")),
    "fe27": ("diffusion", dict(dim=3, n=5, coefficient="lognormal", scheme="fe27",
                               solution="exponential")),
    "anisotropic_fd": ("diffusion", dict(dim=2, n=7, coefficient="anisotropic")),
    "anisotropic_fe9": ("diffusion", dict(dim=2, n=7, coefficient="anisotropic", scheme="fe9")),
    "mesh": ("mesh_poisson", dict()),
}
for label, (name, kw) in cases.items():  # the rows of every rank equal the serial rows
    problem = pdesolve.get_problem(name, **kw)
    whole, local = problem.discretize(), problem.discretize_distributed()
    lo, hi = local.local_rows
    rows = whole.A[lo:hi]
    assert (rows != local.A).nnz == 0 or abs(rows - local.A).max() <= 1e-13 * abs(rows).max()
    assert rows.nnz == local.A.nnz, label
    np.testing.assert_allclose(local.b, whole.b[lo:hi], rtol=1e-13, atol=1e-13 * whole.b_norm)
    assert abs(local.b_norm - whole.b_norm) <= 1e-13 * whole.b_norm, label
out = {}
runs = {
    "jacobi": ("diffusion", dict(dim=2, n=31, coefficient="smooth", solution="polynomial"),
               "jacobi"),
    "mesh": ("mesh_poisson", dict(refine=1), "jacobi"),
    "pcmg": ("diffusion", dict(dim=2, n=63, coefficient="lognormal", scheme="fe9"),
             {"name": "multigrid", "prolongation": "blackbox"}),
    "pcmg_learned": ("diffusion", dict(dim=2, n=63, coefficient="lognormal", scheme="fe9"),
                     {"name": "multigrid", "prolongation": "learned"}),
}
for label, (name, kw, pc) in runs.items():
    problem = pdesolve.get_problem(name, **kw)
    system = problem.discretize_distributed()
    with pdesolve.get_solver("petsc_cg", pc=pc, rtol=1e-10) as solver:
        solver.setup(system)  # set up once, solve twice
        first = solver.solve(system.b)
        second = solver.solve(2 * system.b)
    x, x2 = system.gather(first.x), system.gather(second.x)
    errors = system.error_norms(first.x)  # collective: reduced over the ranks
    if comm.getRank() == 0:
        out[label] = {"its": first.iterations, "x": x.tolist(), "x2": x2.tolist(),
                      "setups": second.info["setups"], "smoother": first.info.get("mg_smoother"),
                      "errors": errors}
    system.release()
if comm.getSize() == 1:  # today's serial PCMG: the same iterations from the distributed set-up
    problem = pdesolve.get_problem("diffusion", **runs["pcmg"][1])
    serial = pdesolve.solve(problem.discretize(), method="petsc_cg", rtol=1e-10,
                            pc=pdesolve.get_preconditioner("multigrid", prolongation="blackbox"))
    out["pcmg_serial_its"] = serial.iterations
    learned = pdesolve.solve(problem.discretize(), method="petsc_cg", rtol=1e-10,
                             pc=pdesolve.get_preconditioner("multigrid", prolongation="learned"))
    out["pcmg_learned_serial"] = {"its": learned.iterations, "x": learned.x.tolist()}
if comm.getRank() == 0:
    json.dump(out, open(sys.argv[1], "w"))
parallel.end()
"""


def _launch(cmd: list[str], ranks: int, timeout: int = 300) -> subprocess.CompletedProcess:
    assert MPIEXEC, "mpiexec not found: MPICH is part of the set-up"
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=ENV)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    script = tmp / "check.py"
    script.write_text(CHECK_SCRIPT)
    out = {}
    for ranks in (1, 2, 3):
        proc = _launch([sys.executable, str(script), str(tmp / f"r{ranks}.json")], ranks)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[ranks] = json.loads((tmp / f"r{ranks}.json").read_text())
    return out


@pytest.mark.parametrize("label", ["jacobi", "mesh"])
def test_cg_jacobi_and_mesh_match_one_rank(runs, label):
    one = runs[1][label]
    for ranks in (2, 3):
        other = runs[ranks][label]
        assert other["its"] == one["its"]
        for key in ("x", "x2"):
            x1, xp = np.array(one[key]), np.array(other[key])
            assert np.linalg.norm(xp - x1) <= 1e-10 * np.linalg.norm(x1)
        assert other["setups"] == 1
        assert other["errors"]["max"] == pytest.approx(one["errors"]["max"], rel=1e-8)


def test_pcmg_blackbox_parallel_smoother(runs):
    one = runs[1]["pcmg"]
    assert one["smoother"] == "sor" and one["its"] == runs[1]["pcmg_serial_its"]
    for ranks in (2, 3):
        other = runs[ranks]["pcmg"]
        assert other["smoother"] == "chebyshev+jacobi"
        # measured: 11 iterations on one rank (SOR), 15 on two and three (Chebyshev/Jacobi)
        assert abs(other["its"] - one["its"]) <= 6
        x1, xp = np.array(one["x"]), np.array(other["x"])
        assert np.linalg.norm(xp - x1) <= 1e-8 * np.linalg.norm(x1)


def _cli(tmp_path: Path, name: str, ranks: int, *overrides: str) -> subprocess.CompletedProcess:
    script = str(Path(sys.executable).with_name("pdesolve"))
    return _launch([script, *overrides, f"hydra.run.dir={tmp_path / name}"], ranks)


def test_pcmg_learned_builds_each_ranks_rows_of_p(runs):
    """The network runs on each rank's stencils: one rank gives the serial learned PCMG's
    iterations and solution, two and three ranks the same solution."""
    one, serial = runs[1]["pcmg_learned"], runs[1]["pcmg_learned_serial"]
    assert one["smoother"] == "sor" and one["its"] == serial["its"]
    x1 = np.array(one["x"])
    assert np.linalg.norm(x1 - np.array(serial["x"])) <= 1e-9 * np.linalg.norm(x1)
    for ranks in (2, 3):
        other = runs[ranks]["pcmg_learned"]
        assert other["smoother"] == "chebyshev+jacobi"
        assert abs(other["its"] - one["its"]) <= 6, (other["its"], one["its"])
        assert np.linalg.norm(np.array(other["x"]) - x1) <= 1e-8 * np.linalg.norm(x1)


def test_cli_writes_pvtu_pieces(tmp_path):
    """Three ranks: result.json from rank 0 with world_size, a .pvtu naming three pieces
    (each rank's cells), values equal to the one-rank solution at the same points."""
    args = ("problem=mesh_poisson", "problem.refine=1", "solver=petsc_cg", "solver.pc=jacobi",
            "solver.rtol=1e-10")  # fmt: skip
    for name, ranks in (("one", 1), ("three", 3)):
        proc = _cli(tmp_path, name, ranks, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "result.json").read_text())
    three = json.loads((tmp_path / "three" / "result.json").read_text())
    assert three["sizes"]["world_size"] == 3 and three["sizes"]["assembly"] == "distributed"
    assert three["iterations"] == one["iterations"]
    assert len(three["per_rank"]) == 3
    assert three["errors"]["l2"] == pytest.approx(one["errors"]["l2"], rel=1e-8)
    from pdesolve.parallel import read_pvtu

    pieces = read_pvtu(tmp_path / "three" / "solution.pvtu")
    assert len(pieces) == 3 and all(len(p.points) > 0 for p in pieces)
    serial = meshio.read(tmp_path / "one" / "solution.vtu")
    lookup = {tuple(np.round(p, 12)): u for p, u in zip(serial.points, serial.point_data["u"],
                                                        strict=True)}  # fmt: skip
    total_cells = 0
    for piece in pieces:
        total_cells += sum(len(block.data) for block in piece.cells)
        for p, u in zip(piece.points, piece.point_data["u"], strict=True):
            assert abs(lookup[tuple(np.round(p, 12))] - u) <= 1e-9
    assert total_cells == sum(len(block.data) for block in serial.cells)


def test_second_cli_run_into_one_folder_keeps_the_first_runs_pieces(tmp_path):
    """Two 2-rank runs into one folder: the second's result and solution pieces are numbered,
    the first's are untouched, and each .pvtu names its own run's pieces."""
    from pdesolve.parallel import read_pvtu

    args = ("problem.n=16", "solver=petsc_cg", "solver.pc=jacobi", "solver.rtol=1e-10")
    first = _cli(tmp_path, "runs", 2, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    before = (tmp_path / "runs" / "solution_0.vtu").read_bytes()
    second = _cli(tmp_path, "runs", 2, *args[:-1], "solver.rtol=1e-4")
    assert second.returncode == 0, second.stderr[-3000:]
    runs = tmp_path / "runs"
    assert (runs / "solution_0.vtu").read_bytes() == before
    assert {"result-2.json", "solution-2.pvtu", "solution-2_0.vtu", "solution-2_1.vtu"} <= {
        p.name for p in runs.iterdir()}
    one, two = (json.loads((runs / f).read_text()) for f in ("result.json", "result-2.json"))
    assert two["iterations"] < one["iterations"]  # the looser tolerance: the other run's files
    u_one = np.concatenate([p.point_data["u"] for p in read_pvtu(runs / "solution.pvtu")])
    u_two = np.concatenate([p.point_data["u"] for p in read_pvtu(runs / "solution-2.pvtu")])
    assert 0 < np.abs(u_one - u_two).max() < 1e-2


def test_missing_mesh_on_one_rank_ends_all_ranks(tmp_path):
    shutil.copy(SAMPLE_MESH, tmp_path / "mesh_0.msh")  # rank 1 lacks its
    proc = _cli(tmp_path, "run", 2, "problem=mesh_poisson",
                f"problem.mesh={tmp_path}/mesh_${{oc.env:PMI_RANK}}.msh", "solver=petsc_cg")
    assert proc.returncode != 0
    assert "building the problem failed on 1 of 2 ranks (rank 1:" in proc.stderr
    assert "mesh_1.msh" in proc.stderr


def test_nan_in_one_ranks_data_ends_all_ranks(tmp_path):
    mesh = meshio.read(SAMPLE_MESH)
    tri = np.unique(mesh.cells_dict["triangle"])
    mesh.points[tri[-1], 0] = np.nan  # a node of the last rows: rank 1's data only
    meshio.write(tmp_path / "nan.msh", mesh, file_format="gmsh22")
    proc = _cli(tmp_path, "run", 2, "problem=mesh_poisson", f"problem.mesh={tmp_path}/nan.msh",
                "solver=petsc_cg")
    assert proc.returncode != 0
    assert "distributed assembly failed on 1 of 2 ranks (rank 1:" in proc.stderr
    assert "NaN" in proc.stderr
