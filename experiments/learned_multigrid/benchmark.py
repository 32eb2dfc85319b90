"""Wall-clock benchmark of the learned multigrid against PETSc (issue 6's benchmark).

1. One V(1,1)-cycle (the symmetric preconditioner application: forward GS down, backward GS up,
   exact coarsest solve) of pdesolve's ``MultigridHierarchy`` against PETSc PCMG built on *the same
   prolongations* (PETSc forms the Galerkin operators; ``PCApply`` = one cycle); median of
   ``--repeat`` applications each, ratio reported.
2. Time to rtol 1e-8 on the true residual, zero initial guess, one run each: CG preconditioned by
   the learned multigrid (scipy CG + Python cycles, and PETSc KSPCG + PCMG with the learned P)
   against PETSc CG + GAMG and CG + ICC(0) (PETSc defaults otherwise).

Dirichlet log-normal diffusion (bilinear FE, seed 0) at ``--n`` (default 1023, 1023² ≈ 1.05 M
unknowns). One process, one thread. Writes ``benchmark.md`` and ``benchmark.csv`` into ``--out``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/benchmark.py [--n 1023] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network
from pdesolve.solvers.petsc_pcmg import PCMGKSP

HERE = Path(__file__).resolve().parent


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cycle_costs(system, net, repeat: int) -> list[dict]:
    """Seconds per V-cycle: pdesolve vs PETSc PCMG on the same prolongations, per rule."""
    rows = []
    r = np.random.default_rng(0).standard_normal(system.b.shape)
    for rule in ("blackbox", "learned"):
        t0 = time.perf_counter()
        mg = MultigridHierarchy(system.A, system.stencil, prolongation=rule, net=net)
        ours_setup = time.perf_counter() - t0
        M = mg.aspreconditioner()
        ours = _median_time(lambda M=M: M @ r, repeat)
        t0 = time.perf_counter()
        pcmg = PCMGKSP(system.A, mg.prolongations())
        petsc_setup = time.perf_counter() - t0
        try:
            rp, zp = pcmg.A.createVecLeft(), pcmg.A.createVecRight()
            rp.getArray()[:] = r
            theirs = _median_time(lambda pcmg=pcmg, rp=rp, zp=zp: pcmg.pc.apply(rp, zp), repeat)
            diff = np.linalg.norm(zp.getArray() - M @ r) / np.linalg.norm(M @ r)
            rp.destroy()
            zp.destroy()
        finally:
            pcmg.destroy()
        rows.append({"prolongation": rule, "levels": len(mg.levels),
                     "pdesolve_setup_s": ours_setup, "pdesolve_cycle_s": ours,
                     "petsc_setup_s": petsc_setup, "petsc_cycle_s": theirs,
                     "ratio": ours / theirs, "rel_diff": float(diff)})
        print(rows[-1], flush=True)
    return rows


def solves(system) -> list[dict]:
    runs = [
        ("CG + MG-V(learned) [scipy CG, pdesolve cycles]", "multigrid",
         {"prolongation": "learned", "krylov": "cg"}),
        ("CG + PCMG(learned P) [PETSc]", "multigrid",
         {"prolongation": "learned", "krylov": "petsc_cg"}),
        ("CG + PCMG(black-box P) [PETSc]", "multigrid",
         {"prolongation": "blackbox", "krylov": "petsc_cg"}),
        ("CG + GAMG [PETSc]", "petsc_cg", {"pc": "gamg"}),
        ("CG + ICC(0) [PETSc]", "petsc_cg", {"pc": "icc"}),
    ]
    rows = []
    for label, method, opts in runs:
        res = pdesolve.solve(system, method=method, rtol=1e-8, maxiter=5000, **opts)
        true_rel = np.linalg.norm(system.b - system.A @ res.x) / system.b_norm
        setup = res.info.get("setup_time", 0.0)
        rows.append({"solver": label, "converged": res.converged, "iterations": res.iterations,
                     "true_rel_residual": float(true_rel), "setup_s": setup,
                     "solve_s": res.wall_time - setup, "total_s": res.wall_time})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1023)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line about the machine/load")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    system = pdesolve.get_problem("diffusion", dim=2, n=args.n, coefficient="lognormal",
                                  scheme="fe9", seed=0).discretize()
    print(f"problem n={args.n}: {time.perf_counter() - t0:.1f} s", flush=True)
    net = load_network(args.checkpoint)
    cyc = cycle_costs(system, net, args.repeat)
    sol = solves(system)
    with (out / "benchmark.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["table", *sol[0], *cyc[0]])
        writer.writeheader()
        writer.writerows([{"table": "cycle", **r} for r in cyc])
        writer.writerows([{"table": "solve", **r} for r in sol])
    ref = {r["solver"]: r["total_s"] for r in sol}
    learned_cg = ref[sol[0]["solver"]]
    lines = [f"# Benchmark: learned multigrid vs PETSc, n = {args.n} ({args.n ** 2} unknowns)", "",
             f"Dirichlet log-normal diffusion (seed 0), one process, OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}. {args.note}", "",
             "## One V(1,1) cycle, same prolongations (median of "
             f"{args.repeat})", "",
             "| P | levels | pdesolve s/cycle | PETSc PCMG s/cycle | ratio | rel. diff of M⁻¹r |"
             " pdesolve setup s | PETSc setup s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in cyc:
        lines.append(f"| {r['prolongation']} | {r['levels']} | {r['pdesolve_cycle_s']:.3f} | "
                     f"{r['petsc_cycle_s']:.3f} | {r['ratio']:.2f} | {r['rel_diff']:.1e} | "
                     f"{r['pdesolve_setup_s']:.2f} | {r['petsc_setup_s']:.2f} |")
    lines += ["", "## Time to rtol 1e-8 (true residual), one run each", "",
              "| solver | iterations | true rel. residual | setup s | solve s | total s | "
              "total / CG+MG(learned) |", "|---|---|---|---|---|---|---|"]
    for r in sol:
        lines.append(f"| {r['solver']} | {r['iterations']}"
                     f"{'' if r['converged'] else ' (not converged)'} | "
                     f"{r['true_rel_residual']:.1e} | {r['setup_s']:.2f} | {r['solve_s']:.2f} | "
                     f"{r['total_s']:.2f} | {r['total_s'] / learned_cg:.2f} |")
    lines.append(f"\n(total {time.perf_counter() - t0:.0f} s)")
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
