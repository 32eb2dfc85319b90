"""Set up once, solve many: the first solve (set-up + solve) against the median repeated solve.

For every case a fresh solver object is set up on the system and solves ``b`` (the *first solve*:
wall time of ``setup`` + ``solve``), then solves the same ``b`` again ``repeats`` times from a zero
initial guess, reusing everything it set up (the *repeated solve*: median wall time). Ratios are
to CG + GAMG on the same problem. One process, one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``), rtol 1e-8 on the true residual, one run.

Cases (``--quick`` shrinks every size so that the whole run takes seconds):

* 1023² log-normal diffusion (bilinear FE, sigma 1, seed 0; ``problem/diffusion2d.yaml``):
  petsc_cg + ICC(0), + GAMG, + PCMG with the black-box and the learned prolongation
  (``get_preconditioner("multigrid", prolongation=...)``);
* 96³ Poisson (7-point FD): petsc_cg + ICC(0), + GAMG;
* 255² and 63³ pressure Poisson (random obstacles, open top, seed 0): dcdm with the shipped
  network (3 repeats) and petsc_cg + GAMG.

Writes ``setup_reuse.md`` / ``.csv`` into ``--out`` (default ``results/``, or ``results_quick/``
with ``--quick``)::

    OMP_NUM_THREADS=1 python experiments/setup_reuse/run.py            # ~10-15 CPU minutes
    OMP_NUM_THREADS=1 python experiments/setup_reuse/run.py --quick --out /tmp/quick
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch / PETSc load their BLAS

import argparse
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, write_table

HERE = Path(__file__).resolve().parent
RTOL = 1e-8


@dataclass
class Case:
    """One row: a problem, a solver (name + options) and the number of repeated solves."""

    problem: str
    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    repeats: int = 20


def problems(quick: bool) -> dict[str, dict[str, Any]]:
    """Problem label -> ``get_problem`` arguments."""
    n2, n3, p2, p3 = (63, 15, 31, 15) if quick else (1023, 96, 255, 63)
    return {
        f"diffusion {n2}²": dict(name="diffusion", dim=2, n=n2, coefficient="lognormal",
                                 scheme="fe9", sigma=1.0, seed=0),
        f"poisson {n3}³": dict(name="poisson", dim=3, n=n3),
        f"pressure {p2}²": dict(name="pressure_poisson", dim=2, n=p2, geometry="obstacles", seed=0),
        f"pressure {p3}³": dict(name="pressure_poisson", dim=3, n=p3, geometry="obstacles", seed=0),
    }  # fmt: skip


def cases(quick: bool, repeats: int | None = None) -> list[Case]:
    """The rows; ``repeats`` repeated solves per row (default 20, 3 with ``quick``; dcdm rows
    at most 3)."""
    d2, p3d, pr2, pr3 = problems(quick)
    repeats = repeats or (3 if quick else 20)
    dcdm_repeats = min(3, repeats)

    def multigrid(rule: str) -> dict[str, Any]:
        return {"pc": pdesolve.get_preconditioner("multigrid", prolongation=rule)}

    return [
        Case(d2, "petsc_cg + ICC(0)", "petsc_cg", {"pc": "icc"}, repeats),
        Case(d2, "petsc_cg + GAMG", "petsc_cg", {"pc": "gamg"}, repeats),
        Case(d2, "petsc_cg + PCMG (blackbox)", "petsc_cg", multigrid("blackbox"), repeats),
        Case(d2, "petsc_cg + PCMG (learned)", "petsc_cg", multigrid("learned"), repeats),
        Case(p3d, "petsc_cg + ICC(0)", "petsc_cg", {"pc": "icc"}, repeats),
        Case(p3d, "petsc_cg + GAMG", "petsc_cg", {"pc": "gamg"}, repeats),
        Case(pr2, "petsc_cg + GAMG", "petsc_cg", {"pc": "gamg"}, repeats),
        Case(pr2, "dcdm (shipped 2D network)", "dcdm", {}, dcdm_repeats),
        Case(pr3, "petsc_cg + GAMG", "petsc_cg", {"pc": "gamg"}, repeats),
        Case(pr3, "dcdm (shipped 3D network)", "dcdm", {}, dcdm_repeats),
    ]


def measure(case: Case, system: pdesolve.LinearSystem) -> dict[str, Any]:
    """First solve (set-up + solve) and the repeated solves of one case."""
    solver = pdesolve.get_solver(case.method, rtol=RTOL, **case.options)
    try:
        t0 = time.perf_counter()
        solver.setup(system)
        setup = time.perf_counter() - t0
        first = solver.solve(system.b)
        first_time = time.perf_counter() - t0
        times, repeated = [], []
        for _ in range(case.repeats):
            t0 = time.perf_counter()
            repeated.append(solver.solve(system.b))
            times.append(time.perf_counter() - t0)
    finally:
        solver.close()
    all_results = [first, *repeated]
    return {
        "problem": case.problem,
        "solver": case.label,
        "unknowns": system.size,
        "setup_s": setup,
        "first_solve_s": first_time,
        "first_its": first.iterations,
        "repeats": case.repeats,
        "repeat_median_s": float(np.median(times)),
        "repeat_its": int(np.median([r.iterations for r in repeated])),
        "repeat_setup_time": max(float(r.info["setup_time"]) for r in repeated),
        "setups": int(repeated[-1].info["setups"]),
        "converged": all(r.converged for r in all_results),
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Ratios of the first and the repeated solve to CG + GAMG on the same problem."""
    gamg = {r["problem"]: r for r in rows if r["solver"] == "petsc_cg + GAMG"}
    for r in rows:
        ref = gamg.get(r["problem"])
        r["first / gamg"] = r["first_solve_s"] / ref["first_solve_s"] if ref else float("nan")
        r["repeat / gamg"] = r["repeat_median_s"] / ref["repeat_median_s"] if ref else float("nan")


def machine_note() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} "
        f"logical CPUs, load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"(1/5/15 min); OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"torch threads {torch.get_num_threads()}; python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for tests")
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default results/, or results_quick/ with --quick)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeated solves per row (default 20, 3 with --quick; dcdm <= 3)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing setup_reuse.md / .csv in --out")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    out = args.out or HERE / ("results_quick" if args.quick else "results")
    stem = out / "setup_reuse"
    exists = stem.with_suffix(".md").exists() or stem.with_suffix(".csv").exists()
    if exists and not args.overwrite:
        parser.error(f"{stem}.md/.csv exist; pass --overwrite or choose another --out")
    torch.set_num_threads(1)
    note = machine_note()
    started = time.time()
    systems = {label: pdesolve.get_problem(p.pop("name"), **p).discretize()
               for label, p in problems(args.quick).items()}  # fmt: skip
    rows = []
    for case in cases(args.quick, args.repeats):
        rows.append(measure(case, systems[case.problem]))
        r = rows[-1]
        print(f"{r['problem']:>16} {r['solver']:<28} first {r['first_solve_s']:8.3f} s "
              f"(setup {r['setup_s']:.3f}), repeat median {r['repeat_median_s']:8.3f} s, "
              f"{r['first_its']}/{r['repeat_its']} its", flush=True)  # fmt: skip
    add_ratios(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_table(stem, rows, overwrite=True)
    header = (
        "# Set up once, solve many\n\n"
        f"One run, rtol {RTOL:g} (true residual), zero initial guess, same b every solve; "
        f"{time.time() - started:.0f} s wall in all.\nMachine: {note}.\n\n"
    )
    stem.with_suffix(".md").write_text(header + markdown_table(rows))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
