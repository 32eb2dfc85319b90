"""Wall-clock benchmark of 3-D multigrid (learned and black-box prolongation) against PETSc.

Solver objects (``get_solver(...).setup(system)`` once, then repeated ``solve(b)``) to rtol 1e-8
on the true residual, zero initial guess, on Dirichlet log-normal diffusion (σ = 1, seed 0) on
``n³`` grids: PETSc CG preconditioned by the ``multigrid`` preconditioner (PETSc PCMG on
pdesolve's 3-D prolongations and Galerkin operators) with the learned and the black-box 3-D P,
against PETSc CG + GAMG and CG + ICC(0) (PETSc defaults otherwise). Reported per solver: set-up,
first solve, total (set-up + first solve), the median solve time with the set-up reused, and
per size the best classical solver (GAMG or ICC, by total). Each solver runs once at 15³ first
(one-time library initialisation is not part of a set-up), and the system's symmetry check (done
once per system) runs before any timing, so that no solver pays it for the others. Set-up CPU s
is the process CPU time of the set-up: on a shared, loaded machine it is the steadier number.
The load average at the start and the end of the run is written with the table. One process,
one thread; writes ``benchmark3d.md`` / ``.csv`` (``benchmark3d_fe27.*`` with ``--scheme fe27``)::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/benchmark3d.py --sizes 63,127 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, write_csv

HERE = Path(__file__).resolve().parent

SOLVERS = [
    ("CG + PCMG(learned 3-D P)", {"name": "multigrid", "prolongation": "learned"}),
    ("CG + PCMG(black-box 3-D P)", {"name": "multigrid", "prolongation": "blackbox"}),
    ("CG + GAMG", "gamg"),
    ("CG + ICC(0)", "icc"),
]
CLASSICAL = ("CG + GAMG", "CG + ICC(0)")
HEADER = ["grid", "solver", "iterations", "true rel. residual", "set-up s", "set-up CPU s",
          "first solve s", "total CPU s", "total CPU / GAMG",
          "total s", "total / GAMG", "total / best classical", "repeated solve s",
          "repeated / GAMG", "best classical (by total)"]


def problem(n: int, scheme: str, seed: int = 0):
    return pdesolve.get_problem("diffusion", dim=3, n=n, coefficient="lognormal", sigma=1.0,
                                scheme=scheme, seed=seed).discretize()


def measure(label: str, pc, system, repeats: int) -> dict:
    """Set up once, then ``1 + repeats`` solves of the same system."""
    solver = pdesolve.get_solver("petsc_cg", rtol=1e-8, maxiter=5000, pc=pc)
    t0, c0 = time.perf_counter(), time.process_time()
    solver.setup(system)
    setup, setup_cpu = time.perf_counter() - t0, time.process_time() - c0
    c0 = time.process_time()
    first = solver.solve(system.b)
    solve_cpu = time.process_time() - c0
    again = [solver.solve(system.b) for _ in range(repeats)]
    solver.close()
    true_rel = np.linalg.norm(system.b - system.A @ first.x) / system.b_norm
    times = [first.info["solve_time"]] + [r.info["solve_time"] for r in again]
    return {"solver": label, "converged": first.converged, "iterations": first.iterations,
            "true_rel_residual": float(true_rel), "setup_s": setup, "setup_cpu_s": setup_cpu,
            "solve_s": first.info["solve_time"], "total_s": setup + first.info["solve_time"],
            "total_cpu_s": setup_cpu + solve_cpu, "repeat_solve_s": float(np.median(times)),
            "solves": len(times)}


def run(system, repeats: int, scheme: str, rounds: int = 1) -> list[dict]:
    """Per solver, ``rounds`` measurements (the order of the solvers reversed in every other
    round); the round with the smallest total wall time is kept."""
    small = problem(15, scheme)
    for _, pc in SOLVERS:
        pdesolve.get_solver("petsc_cg", rtol=1e-8, pc=pc).solve(small)  # warm-up
    found: dict[str, list[dict]] = {label: [] for label, _ in SOLVERS}
    for k in range(rounds):
        for label, pc in (SOLVERS if k % 2 == 0 else SOLVERS[::-1]):
            found[label].append(measure(label, pc, system, repeats))
            print(found[label][-1], flush=True)
    return [{**min(found[label], key=lambda r: r["total_s"]), "rounds": rounds}
            for label, _ in SOLVERS]


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.1f}" for v in avg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="63,127")
    parser.add_argument("--scheme", default="fd", choices=("fd", "fe27"))
    parser.add_argument("--solve-repeats", type=int, default=2,
                        help="solves after the first one, set-up reused")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measurements per solver (alternating order); the best is kept")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line about the machine/load")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    table, records = [], []
    for n in (int(v) for v in args.sizes.split(",")):
        t0 = time.perf_counter()
        system = problem(n, args.scheme)
        system.validate(symmetric=True)  # once per system: no solver below pays it
        print(f"n={n}: problem {time.perf_counter() - t0:.1f} s", flush=True)
        rows = run(system, args.solve_repeats, args.scheme, args.rounds)
        gamg = next(r for r in rows if r["solver"] == "CG + GAMG")
        best = min((r for r in rows if r["solver"] in CLASSICAL), key=lambda r: r["total_s"])
        for r in rows:
            records.append({"n": n, **r})
            table.append(dict(zip(HEADER, [f"{n}³", r["solver"],
                          f"{r['iterations']}{'' if r['converged'] else ' (not converged)'}",
                          f"{r['true_rel_residual']:.1e}", f"{r['setup_s']:.2f}",
                          f"{r['setup_cpu_s']:.2f}", f"{r['solve_s']:.2f}",
                          f"{r['total_cpu_s']:.2f}",
                          f"{r['total_cpu_s'] / gamg['total_cpu_s']:.2f}", f"{r['total_s']:.2f}",
                          f"{r['total_s'] / gamg['total_s']:.2f}",
                          f"{r['total_s'] / best['total_s']:.2f}",
                          f"{r['repeat_solve_s']:.2f}",
                          f"{r['repeat_solve_s'] / gamg['repeat_solve_s']:.2f}",
                          best["solver"]], strict=True)))
    stem = "benchmark3d" if args.scheme == "fd" else f"benchmark3d_{args.scheme}"
    write_csv(out / f"{stem}.csv", records)
    scheme = "7-point FD" if args.scheme == "fd" else "27-point trilinear FE"
    lines = [f"# 3-D benchmark: learned and black-box multigrid vs PETSc ({scheme})", "",
             f"Dirichlet log-normal diffusion (σ = 1, seed 0), rtol 1e-8 on the true residual, "
             f"zero initial guess; one process, OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads 1. "
             f"Set-up once, then {1 + args.solve_repeats} solves; repeated solve = median solve "
             f"time with the set-up reused; best of {args.rounds} round(s) per solver (by total "
             f"wall time; solver order reversed in every other round). Total CPU s: process CPU "
             f"time of set-up and first solve. Ratios in the same run. Load average (1, 5, 15 min) "
             f"at the start {_load(load_start)}, at the end {_load(os.getloadavg())} on "
             f"{os.cpu_count()} cores. {args.note}", "",
             markdown_table(table),
             f"\n(total {time.perf_counter() - t_start:.0f} s)"]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
