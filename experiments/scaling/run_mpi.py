"""MPI scaling of distributed assembly and solve: 1 and 2 ranks, per-rank peak memory, times.

    python experiments/scaling/run_mpi.py            # the runs below, tables in results/
    python experiments/scaling/run_mpi.py --quick    # the smaller size of each case only

Each case runs as ``mpiexec -n p python run_mpi.py --worker ...``: every rank measures its
resident memory after the imports and PETSc's initialisation (the floor: ``import pdesolve``,
which loads no torch for these runs, plus the prolongation module that PCMG's black-box rule
needs, which does), assembles its rows (``problem.discretize_distributed()``), sets up
``petsc_cg`` with the preconditioner and solves to ``rtol=1e-10``; every rank saves its own part
of the solution (nothing is gathered on one rank). Memory above the floor is the rank's peak RSS
minus the floor. The growth exponents in N come from the two sizes of each case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"
#: (label, problem, dim, sizes n, preconditioner)
CASES = [
    ("poisson2d + gamg", 2, (1023, 2047), "gamg"),
    ("poisson2d + PCMG(black-box)", 2, (1023, 2047), "multigrid"),
    ("poisson3d + gamg", 3, (63, 127), "gamg"),
]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(dim: int, n: int, pc: str, out: str) -> None:
    import pdesolve
    from pdesolve import parallel

    imports = rss_mb()
    comm = parallel.world()  # PETSc and MPI initialised
    if pc == "multigrid":  # the black-box prolongation rule is written in torch
        import pdesolve.discretize.prolongation
    comm.tompi4py().Barrier()
    floor = rss_mb()
    problem = pdesolve.get_problem("poisson", dim=dim, n=n, solution="polynomial")
    t0 = time.perf_counter()
    system = problem.discretize_distributed()
    assembly = time.perf_counter() - t0
    after_assembly = peak_mb()
    pcs = {"gamg": "gamg", "multigrid": {"name": "multigrid", "prolongation": "blackbox"}}
    with pdesolve.get_solver("petsc_cg", pc=pcs[pc], rtol=1e-10) as solver:
        t1 = time.perf_counter()
        solver.setup(system)
        setup = time.perf_counter() - t1
        result = solver.solve(system.b)
    np.save(f"{out}.{comm.getRank()}.npy", result.x)  # each rank its own rows
    rows = comm.tompi4py().gather({
        "import_mb": imports, "floor_mb": floor, "assembly_peak_mb": after_assembly,
        "peak_mb": peak_mb(), "assembly_s": assembly, "setup_s": setup,
        "solve_s": result.info["solve_time"], "torch_loaded": "torch" in sys.modules,
    })  # fmt: skip
    system.release()
    if comm.getRank() == 0:
        Path(out + ".json").write_text(json.dumps({"ranks": rows, "its": result.iterations,
                                                   "converged": result.converged}))
    parallel.end()


def launch(dim: int, n: int, pc: str, ranks: int, tmp: Path) -> dict:
    out = str(tmp / f"{dim}_{n}_{pc}_{ranks}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--worker", str(dim), str(n), pc, out]
    if ranks > 1:
        cmd = [shutil.which("mpiexec"), "-n", str(ranks), *cmd]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, timeout=3600)
    data = json.loads(Path(out + ".json").read_text())
    data["x"] = np.concatenate([np.load(f"{out}.{r}.npy") for r in range(ranks)])
    data["wall_s"] = time.perf_counter() - t
    print(f"  {dim}-D n={n} {pc} on {ranks} rank(s): {data['wall_s']:.0f} s, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    return data


def exponent(a: float, b: float, n_a: int, n_b: int) -> float:
    """``e`` in ``cost ∝ N^e`` from two sizes."""
    return math.log(b / a) / math.log(n_b / n_a) if a > 0 and b > 0 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=4)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.worker:
        dim, n, pc, out = args.worker
        return worker(int(dim), int(n), pc, out)
    from pdesolve.io import markdown_table

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "pdesolve-scaling"
    tmp.mkdir(exist_ok=True)
    rows, raw, growth = [], [], []
    load_before = os.getloadavg()
    for label, dim, sizes, pc in CASES:
        for n in sizes[:1] if args.quick else sizes:
            one, two = launch(dim, n, pc, 1, tmp), launch(dim, n, pc, 2, tmp)
            r1 = one["ranks"][0]
            above1 = r1["peak_mb"] - r1["floor_mb"]
            above2 = max(r["peak_mb"] - r["floor_mb"] for r in two["ranks"])
            diff = float(np.linalg.norm(two["x"] - one["x"]) / np.linalg.norm(one["x"]))
            rows.append({
                "case": label, "N": n**dim, "its 1 / 2": f"{one['its']} / {two['its']}",
                "floor MB 1 / 2": f"{r1['floor_mb']:.0f} / "
                                  f"{max(r['floor_mb'] for r in two['ranks']):.0f}",
                "rel. diff x": f"{diff:.1e}",
                "MB above floor 1": round(above1, 1), "2 (max rank)": round(above2, 1),
                "mem ratio": round(above2 / above1, 2),
                "assembly s 1": round(r1["assembly_s"], 3),
                "2 (max)": round(max(r["assembly_s"] for r in two["ranks"]), 3),
                "asm ratio": round(max(r["assembly_s"] for r in two["ranks"]) / r1["assembly_s"],
                                   2),
                "setup+solve s 1": round(r1["setup_s"] + r1["solve_s"], 2),
                "2 (max) ": round(max(r["setup_s"] + r["solve_s"] for r in two["ranks"]), 2),
            })  # fmt: skip
            raw.append({"case": label, "n": n, "dim": dim, "one": {**one, "x": None},
                        "two": {**two, "x": None}, "relative_difference": diff})
            print(rows[-1], flush=True)
        done = [r for r in raw if r["case"] == label]
        if len(done) == 2:  # growth with N on one rank, from the two sizes
            (a, b), (na, nb) = [r["one"]["ranks"][0] for r in done], [r["n"] ** dim
                                                                      for r in done]
            growth.append({
                "case": label, "N": f"{na} → {nb}",
                "assembly time": round(exponent(a["assembly_s"], b["assembly_s"], na, nb), 2),
                "memory above floor": round(exponent(a["peak_mb"] - a["floor_mb"],
                                                     b["peak_mb"] - b["floor_mb"], na, nb), 2),
                "setup + solve time": round(exponent(a["setup_s"] + a["solve_s"],
                                                     b["setup_s"] + b["solve_s"], na, nb), 2),
            })  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    load = os.getloadavg()
    (RESULTS / "mpi.json").write_text(json.dumps({"load_average": [load_before, load],
                                                  "runs": raw, "growth": growth}, indent=1))
    (RESULTS / "mpi.md").write_text(
        f"# MPI scaling, 1 and 2 ranks (load average {load_before[0]:.1f} before, {load[0]:.1f} "
        "after, on 2 cores shared with other jobs)\n\n" + markdown_table(rows)
        + "\nGrowth exponents on one rank (cost ∝ N^e between the two sizes):\n\n"
        + (markdown_table(growth) if growth else "(one size only)\n") + "\n")


if __name__ == "__main__":
    main()
