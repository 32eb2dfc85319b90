"""Runs under ``mpiexec -n p``: distributed assembly and solve, rank-0 results, ``.pvtu`` output.

A problem with ``discretize_distributed()`` (the grid diffusion families, ``poisson``, the P1
``mesh_poisson``) solved with ``petsc_cg`` and a preconditioner that works on distributed rows
(:mod:`pdesolve.solvers.distributed_pc`) is assembled by rows on every rank; any other
combination assembles the whole system on every rank and distributes only the solve. The
solution goes to ``solution.pvtu`` (one ``solution_<rank>.vtu`` piece per rank, each written by
its rank: ParaView opens the ``.pvtu``, meshio each piece), and also to ``solution.vtu`` gathered
on rank 0 when it has at most ``GATHER_LIMIT`` unknowns.

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=2, n=8)
>>> distributable(problem, "petsc_cg", {"pc": "gamg"}), distributable(problem, "scipy_cg", {})
(True, False)
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from pdesolve.linalg.distributed import (
    DistributedSystem,
    agree,
    allreduce,
    fetch_rows,
    gather_rows,
    world,
)
from pdesolve.linalg.petsc import row_range

#: a distributed solution with at most this many unknowns is also gathered into solution.vtu
GATHER_LIMIT = 250_000
DISTRIBUTED_PCS = ("none", "jacobi", "icc", "gamg", "hypre", "multigrid")


def world_size() -> int:
    """Processes of this run (1 without mpiexec)."""
    return world().getSize()


def rank() -> int:
    return world().getRank()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def distributable(problem: Any, method: str, method_cfg: dict[str, Any]) -> bool:
    """Whether ``method`` on ``problem`` runs on rank-local rows (else every rank assembles all)."""
    if method != "petsc_cg" or not hasattr(problem, "discretize_distributed"):
        return False
    if getattr(problem, "scheme", "fd") not in ("fd", "fe9", "fe27"):
        return False
    pc = method_cfg.get("pc", "none")
    name = pc if isinstance(pc, str) else (pc.get("name") if isinstance(pc, dict) else None)
    return name in DISTRIBUTED_PCS


def broadcast(value: Any) -> Any:
    """``value`` of rank 0 on every rank."""
    comm = world()
    return value if comm.getSize() == 1 else comm.tompi4py().bcast(value, root=0)


def build_problem(factory: Any) -> Any:
    """``factory()`` on every rank, failing on all of them if it fails on one (a missing mesh
    file on one rank's file system, a bad parameter)."""
    return agree(factory, "building the problem")


def solve_distributed(problem: Any, method_cfg: dict[str, Any]) -> dict[str, Any]:
    """Assemble ``problem`` by rows on every rank and solve with ``petsc_cg``.

    Returns the pieces of ``result.json`` (reduced over the ranks) and, under ``"write"``, a
    function ``write(output_dir)`` that every rank calls to write the solution pieces.
    """
    import pdesolve

    before = peak_rss_mb()
    t0 = time.perf_counter()
    system = problem.discretize_distributed()
    assembly = time.perf_counter() - t0
    result = agree(lambda: pdesolve.solve(system, method="petsc_cg", **method_cfg), "the solve")
    errors = system.error_norms(result.x)
    if hasattr(problem, "fem_errors_distributed"):
        errors = {**(errors or {}), **problem.fem_errors_distributed(system, result.x)}
    mpi = world().tompi4py()
    per_rank = mpi.allgather({"rows": list(system.local_rows), "assembly": assembly,
                              "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before})
    record = {
        "sizes": {"unknowns": system.global_size,
                  "nonzeros": int(allreduce(int(system.A.nnz))),
                  "world_size": world_size(), "assembly": "distributed"},
        "errors": errors,
        "timings": {"discretize": max(r["assembly"] for r in per_rank),
                    "setup": float(result.info.get("setup_time", 0.0)),
                    "solve": float(result.info.get("solve_time", result.wall_time)),
                    "total": max(r["assembly"] for r in per_rank) + result.wall_time},
        "per_rank": per_rank,
    }  # fmt: skip
    return {"record": record, "result": result, "system": system,
            "write": lambda out, name="solution": write_solution_pieces(out, problem, system,
                                                                        result.x, name),
            "finish": lambda: finish(system)}


def finish(system: DistributedSystem) -> None:
    """Free the run's PETSc objects on every rank at the same point (collective).

    petsc4py defers the destruction of parallel objects that Python's garbage collector frees;
    the collective clean-up at exit deadlocks when the ranks' collectors freed different ones,
    so a run frees them explicitly and cleans up together.
    """
    import gc

    from pdesolve.linalg.petsc import petsc

    system.release()
    gc.collect()
    petsc().garbage_cleanup(world())


def end() -> None:
    """Finalize PETSc on every rank at the same point, at the end of a command-line run under
    MPI. petsc4py otherwise cleans up at interpreter exit, where the ranks can disagree on
    whether PETSc's inner communicator still exists: one rank then duplicates it (a collective
    call) while the others have finalized, and the run never ends."""
    import gc

    from pdesolve.linalg.petsc import petsc

    PETSc = petsc()
    gc.collect()
    PETSc.garbage_cleanup(PETSc.COMM_WORLD)
    PETSc._finalize()  # petsc4py's own exit-time finalization, run here instead


# -- parallel VTU ------------------------------------------------------------------------------
def _grid_piece(problem: Any, system: DistributedSystem, x: np.ndarray) -> tuple[Any, ...]:
    """Points, cell type, cells and point data of this rank's cell planes of a grid."""
    from pdesolve.problems.base import to_numpy_fn

    grid = problem.grid
    n, dim, plane = grid.n, grid.dim, grid.n ** (grid.dim - 1)
    starts = np.asarray(world().tompi4py().allgather(system.row_start))
    # cell plane c (between full-grid planes c and c + 1) goes with interior plane min(c, n-1)
    owner = np.searchsorted(starts, np.minimum(np.arange(n + 1), n - 1) * plane, "right") - 1
    mine = np.flatnonzero(owner == rank())
    first, last = (int(mine[0]), int(mine[-1]) + 1) if mine.size else (0, -1)
    planes = max(last - first + 1, 0)
    shape = (planes, *grid.full_shape[1:])
    axes = [np.arange(first, first + planes) * grid.h] + [np.arange(n + 2) * grid.h] * (dim - 1)
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    idx = np.indices(shape).reshape(dim, -1)
    idx[0] += first
    boundary = np.any((idx == 0) | (idx == n + 1), axis=0)
    interior = np.ravel_multi_index(tuple(idx[:, ~boundary] - 1), grid.shape) if planes else []
    u = np.zeros(len(points))
    u[~boundary] = fetch_rows(system, x, np.asarray(interior, dtype=np.int64))
    if boundary.any():
        u[boundary] = to_numpy_fn(problem.boundary_value, points[boundary])
    data = {"u": u}
    if problem.has_exact_solution:
        data["exact"] = to_numpy_fn(problem.exact_solution, points) if len(points) else u * 0
        data["error"] = u - data["exact"]
    ids = np.arange(len(points)).reshape(shape) if planes else np.zeros((0,) * dim, dtype=int)
    if planes < 2:
        return points, _CELL_TYPE[dim], np.zeros((0, 2**dim), dtype=int), data
    lo_hi = [(slice(None, -1), slice(1, None))] * dim
    corners = {1: [(0,), (1,)], 2: [(0, 0), (1, 0), (1, 1), (0, 1)],
               3: [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0),
                   (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]}[dim]  # fmt: skip
    cells = np.stack([ids[tuple(lo_hi[a][c[a]] for a in range(dim))].ravel() for c in corners],
                     axis=1)
    return points, _CELL_TYPE[dim], cells, data


_CELL_TYPE = {1: "line", 2: "quad", 3: "hexahedron"}


def _mesh_piece(problem: Any, system: DistributedSystem, x: np.ndarray) -> tuple[Any, ...]:
    """Points, cell type, cells and point data of this rank's cells of a mesh."""
    from pdesolve.problems.base import to_numpy_fn

    geo = problem.geometry
    cells = geo.cells[problem.cell_owner() == rank()]
    nodes, local = np.unique(cells, return_inverse=True)
    row = np.full(len(geo.points), -1)
    row[geo.free] = np.arange(len(geo.free))
    free = row[nodes] >= 0
    u = np.zeros(len(nodes))
    u[free] = fetch_rows(system, x, row[nodes[free]])
    if (~free).any():
        u[~free] = to_numpy_fn(problem.exact_solution, geo.points[nodes[~free]])
    exact = to_numpy_fn(problem.exact_solution, geo.points[nodes]) if len(nodes) else u * 0
    return (geo.points[nodes], geo.cell_type, local.reshape(cells.shape),
            {"u": u, "exact": exact, "error": u - exact})


def write_solution_pieces(output_dir: str | Path, problem: Any, system: DistributedSystem,
                          x: np.ndarray, name: str = "solution") -> list[Path]:
    """Every rank writes ``<name>_<rank>.vtu``; rank 0 writes ``<name>.pvtu`` naming them
    (and ``<name>.vtu``, gathered, when the system is small). Collective. ``name`` carries a
    run's number (``solution-2``) when an earlier run's files are in the folder."""
    import meshio

    from pdesolve.io import atomic_write

    out = Path(output_dir)
    maker = _grid_piece if hasattr(problem, "grid") else _mesh_piece
    points, cell_type, cells, data = maker(problem, system, x)
    if points.shape[1] < 3:
        points = np.hstack([points, np.zeros((len(points), 3 - points.shape[1]))])
    piece = out / f"{name}_{rank()}.vtu"
    mesh = meshio.Mesh(points, [(cell_type, cells)], point_data=data)
    agree(lambda: atomic_write(piece, lambda tmp: meshio.write(tmp, mesh, file_format="vtu"),
                               False), "writing the solution pieces")
    written = [piece]
    full = gather_rows(x) if system.global_size <= GATHER_LIMIT else None
    if rank() == 0:
        written.append(write_pvtu(out / f"{name}.pvtu",
                                  [f"{name}_{r}.vtu" for r in range(world_size())], list(data)))
        if full is not None:
            from pdesolve.io import write_solution_vtu

            whole = problem.discretize() if system.global_size <= GATHER_LIMIT else None
            written.append(write_solution_vtu(out / f"{name}.vtu", whole, full))
    return written


def write_pvtu(path: str | Path, pieces: list[str], point_data: list[str]) -> Path:
    """The ``.pvtu`` index of unstructured-grid pieces (float64 points and point data)."""
    from pdesolve.io import atomic_write

    arrays = "\n".join(f'      <PDataArray type="Float64" Name={quoteattr(name)}/>'
                       for name in point_data)
    sources = "\n".join(f"    <Piece Source={quoteattr(p)}/>" for p in pieces)
    text = f"""<?xml version="1.0"?>
<VTKFile type="PUnstructuredGrid" version="0.1" byte_order="LittleEndian">
  <PUnstructuredGrid GhostLevel="0">
    <PPointData>
{arrays}
    </PPointData>
    <PPoints>
      <PDataArray type="Float64" NumberOfComponents="3"/>
    </PPoints>
{sources}
  </PUnstructuredGrid>
</VTKFile>
"""
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text), False)


def read_pvtu(path: str | Path) -> list[Any]:
    """The meshio meshes of the pieces a ``.pvtu`` file names (in its order).

    meshio reads VTU, not the ``.pvtu`` index itself: this reads the index and each piece.
    """
    import xml.etree.ElementTree as ET

    import meshio

    path = Path(path)
    root = ET.parse(path).getroot()
    return [meshio.read(path.parent / p.get("Source")) for p in root.iter("Piece")]


def abort_on_failure(exc: BaseException, wait: float = 10.0) -> None:
    """Under MPI, end every rank after an error on this one (MPI_Abort), after printing it:
    the other ranks may be waiting in a collective call and would otherwise hang.

    Before aborting, the ranks meet in a non-blocking barrier for up to ``wait`` seconds: when
    the error was collective (every rank failed, e.g. a failed ``agree``), each rank has finished
    writing its message before any rank's abort can cut another's short; a rank still stuck in a
    collective call is aborted after ``wait`` seconds."""
    if world_size() > 1:
        print(f"pdesolve: rank {rank()} failed ({type(exc).__name__}: {exc}); ending all ranks",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        comm = world().tompi4py()
        request, deadline = comm.Ibarrier(), time.monotonic() + wait
        while not request.Test() and time.monotonic() < deadline:
            time.sleep(0.01)
        comm.Abort(1)


__all__ = ["abort_on_failure", "broadcast", "build_problem", "distributable", "end", "read_pvtu",
           "row_range", "solve_distributed", "write_pvtu", "write_solution_pieces"]
