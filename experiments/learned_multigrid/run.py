"""Learned vs black-box vs bilinear multigrid on Dirichlet log-normal diffusion (Greenfeld et al.).

Writes results/{factors.csv, solves.csv, factors.png, results.md}. One run, one machine, one
true-residual stopping rule. Usage (about 5-10 minutes on one core with the defaults)::

    python experiments/learned_multigrid/run.py [--problems 10] [--sizes 63,127,255]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network

HERE = Path(__file__).resolve().parent
RULES = ("bilinear", "blackbox", "learned")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--sizes", default="63,127,255")
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = load_network(None)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, solves = [], []
    for n in sizes:
        for seed in range(1000, 1000 + args.problems):
            system = pdesolve.get_problem("diffusion", dim=2, n=n, coefficient="lognormal",
                                          scheme="fe9", seed=seed).discretize()
            for cycle in ("V", "W"):
                for rule in RULES:
                    mg = MultigridHierarchy(system.A, system.stencil, prolongation=rule,
                                            cycle=cycle, net=net)
                    f = mg.convergence_factor(cycles=args.cycles, seed=seed)
                    rows.append({"n": n, "seed": seed, "cycle": cycle, "prolongation": rule,
                                 "factor": f})
            if seed != 1000:
                continue  # timed solves on the first problem of each size
            runs = [(f"MG-V {r}", "multigrid", {"prolongation": r}) for r in RULES]
            runs += [(f"CG+MG-V {r}", "multigrid", {"prolongation": r, "krylov": "cg"})
                     for r in RULES]
            runs += [("PETSc CG+PCMG(learned P)", "multigrid",
                      {"prolongation": "learned", "krylov": "petsc_cg"}),
                     ("PETSc CG+GAMG", "petsc_cg", {"pc": "gamg"}),
                     ("PETSc CG+ICC", "petsc_cg", {"pc": "icc"})]
            for label, method, opts in runs:
                res = pdesolve.solve(system, method=method, rtol=1e-8, **opts)
                solves.append({
                    "n": n, "solver": label, "converged": res.converged,
                    "iterations": res.iterations,
                    "rel_residual": res.residual_norms[-1] / system.b_norm,
                    "setup_s": res.info["setup_time"],
                    "solve_s": res.info.get("solve_time", res.wall_time - res.info["setup_time"]),
                    "total_s": res.wall_time,
                })
            print(f"n={n}: done", flush=True)
    _write_csv(out / "factors.csv", rows)
    _write_csv(out / "solves.csv", solves)
    _report(out, rows, solves, sizes, args)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _report(out: Path, rows, solves, sizes, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# Learned multigrid prolongation: measured results", "",
             f"Dirichlet log-normal diffusion (k = exp(N(0,1)) per cell, bilinear FE), "
             f"{args.problems} problems per size (seeds 1000+), b = 0, N(0,1) initial error, "
             f"{args.cycles} cycles, GS(1,1) forward sweeps; factor = ||e_k||/||e_k-1|| at the "
             "last cycle. Success = share of problems where learned < black-box.", "",
             "| n | cycle | bilinear | black-box | learned | success (learned < BB) |",
             "|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, cycle in zip(axes, ("V", "W"), strict=True):
        for rule in RULES:
            means = []
            for n in sizes:
                f = [r["factor"] for r in rows if r["n"] == n and r["cycle"] == cycle
                     and r["prolongation"] == rule]
                means.append(np.mean(f))
            ax.plot(sizes, means, "o-", label=rule)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{cycle}(1,1) cycle")
        ax.set_xlabel("n")
        ax.set_ylabel("asymptotic factor")
        ax.legend()
        for n in sizes:
            stats = {}
            for rule in RULES:
                f = np.array([r["factor"] for r in rows if r["n"] == n and r["cycle"] == cycle
                              and r["prolongation"] == rule])
                stats[rule] = f
            win = np.mean(stats["learned"] < stats["blackbox"])
            cells = " | ".join(f"{stats[r].mean():.4f} ± {stats[r].std():.4f}" for r in RULES)
            lines.append(f"| {n} | {cycle} | {cells} | {100 * win:.0f}% |")
    fig.tight_layout()
    fig.savefig(out / "factors.png", dpi=120)
    lines += ["", "Time to rtol 1e-8 (true residual), first problem of each size, one core:", "",
              "| n | solver | iterations | setup s | solve s | total s |",
              "|---|---|---|---|---|---|"]
    for s in solves:
        lines.append(f"| {s['n']} | {s['solver']} | {s['iterations']}"
                     f"{'' if s['converged'] else ' (not converged)'} | {s['setup_s']:.3f} | "
                     f"{s['solve_s']:.3f} | {s['total_s']:.3f} |")
    (out / "results_table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.1f} s")
