"""Learned vs black-box vs BoxMG vs bilinear multigrid on Dirichlet diffusion (Greenfeld et al.).

Asymptotic V(1,1)/W(1,1) factors (b = 0, seeded N(0,1) initial error, 40 cycles, forward GS pre
and post), mean ± std over seeded problems, and the success rate (learned < black-box). Writes
``factors.csv``, ``factors.png``, ``results_table.md`` (and ``solves.csv`` with timed solves on the
first problem of each size unless ``--no-solves``) into ``--out``. Usage::

    python experiments/learned_multigrid/run.py [--problems 10] [--sizes 63,127,255]
    python experiments/learned_multigrid/run.py --coefficient uniform --no-solves --out ...
    python experiments/learned_multigrid/run.py --coefficient checkerboard --no-solves --out ...

Coefficient families: ``lognormal`` (training distribution, k = exp(N(0,1)) per cell; seeds
1000+), ``uniform`` (k ~ U(0,1) per cell; seeds 1000+) and ``checkerboard`` (k alternating
1 / contrast on blocks × blocks boxes; problem i takes the i-th (blocks, contrast) of
``CHECKERBOARDS``, blocks 3 and 5 put the jumps off the coarse grid lines).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, write_csv
from pdesolve.plotting import save_figure, subplots
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network

HERE = Path(__file__).resolve().parent
RULES = ("bilinear", "blackbox", "boxmg", "learned")
#: (blocks, contrast) of the checkerboard problems, in order
CHECKERBOARDS = list(itertools.product((3, 4, 5, 8), (1e1, 1e2, 1e3, 1e4)))


def problem(coefficient: str, n: int, index: int):
    """The ``index``-th problem of a family (seed ``1000 + index`` for random families)."""
    if coefficient == "checkerboard":
        blocks, contrast = CHECKERBOARDS[index % len(CHECKERBOARDS)]
        return pdesolve.get_problem("diffusion", dim=2, n=n, coefficient="checkerboard",
                                    blocks=blocks, contrast=contrast, scheme="fe9")
    return pdesolve.get_problem("diffusion", dim=2, n=n, coefficient=coefficient, scheme="fe9",
                                seed=1000 + index)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--sizes", default="63,127,255")
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--coefficient", default="lognormal",
                        choices=("lognormal", "uniform", "checkerboard"))
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--no-solves", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = load_network(args.checkpoint)
    rules = tuple(args.rules.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, solves = [], []
    for n in sizes:
        t0 = time.perf_counter()
        for index in range(args.problems):
            system = problem(args.coefficient, n, index).discretize()
            seed = 1000 + index
            for rule in rules:
                mg = MultigridHierarchy(system.A, system.stencil, prolongation=rule, net=net)
                for cycle in ("V", "W"):
                    mg.cycle_type = cycle  # same hierarchy, other cycle
                    f = mg.convergence_factor(cycles=args.cycles, seed=seed)
                    rows.append({"n": n, "seed": seed, "cycle": cycle, "prolongation": rule,
                                 "factor": f})
            if index == 0 and not args.no_solves:
                solves += timed_solves(system, n)
        print(f"n={n}: {args.problems} problems, {time.perf_counter() - t0:.0f} s", flush=True)
    write_csv(out / "factors.csv", rows)
    if solves:
        write_csv(out / "solves.csv", solves)
    _report(out, rows, solves, sizes, rules, args)


def timed_solves(system, n: int) -> list[dict]:
    """Time to rtol 1e-8 (true residual) of the MG variants and PETSc baselines."""
    runs = [(f"MG-V {r}", "multigrid", {"prolongation": r}) for r in ("bilinear", "blackbox",
                                                                       "learned")]
    runs += [(f"CG+MG-V {r}", "multigrid", {"prolongation": r, "krylov": "cg"})
             for r in ("bilinear", "blackbox", "learned")]
    runs += [("PETSc CG+PCMG(learned P)", "multigrid",
              {"prolongation": "learned", "krylov": "petsc_cg"}),
             ("PETSc CG+GAMG", "petsc_cg", {"pc": "gamg"}),
             ("PETSc CG+ICC", "petsc_cg", {"pc": "icc"})]
    out = []
    for label, method, opts in runs:
        res = pdesolve.solve(system, method=method, rtol=1e-8, **opts)
        out.append({
            "n": n, "solver": label, "converged": res.converged, "iterations": res.iterations,
            "rel_residual": res.residual_norms[-1] / system.b_norm,
            "setup_s": res.info["setup_time"],
            "solve_s": res.info.get("solve_time", res.wall_time - res.info["setup_time"]),
            "total_s": res.wall_time,
        })
    return out


def _family(args) -> str:
    if args.coefficient == "lognormal":
        return "log-normal diffusion (k = exp(N(0,1)) per cell, bilinear FE)"
    if args.coefficient == "uniform":
        return "uniform diffusion (k ~ U(0,1) per cell, bilinear FE; out of distribution)"
    return ("checkerboard diffusion (k = 1 / contrast on blocks x blocks boxes, bilinear FE; out "
            f"of distribution; (blocks, contrast) = {CHECKERBOARDS[: args.problems]})")


def _report(out: Path, rows, solves, sizes, rules, args) -> None:
    lines = [f"# Learned multigrid prolongation: {args.coefficient}", "",
             f"Dirichlet {_family(args)}, {args.problems} problems per size, b = 0, N(0,1) "
             f"initial error, {args.cycles} cycles, GS(1,1) forward sweeps; factor = "
             "||e_k||/||e_k-1|| at the last cycle, mean ± std. Success = share of problems where "
             "learned < black-box.", ""]
    table = []
    fig, axes = subplots(1, 2, figsize=(9, 3.5))
    notes = []
    for ax, cycle in zip(axes, ("V", "W"), strict=True):
        for rule in rules:
            means = [np.mean([r["factor"] for r in rows if r["n"] == n and r["cycle"] == cycle
                              and r["prolongation"] == rule]) for n in sizes]
            ax.plot(sizes, means, "o-", label=rule)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{cycle}(1,1) cycle, {args.coefficient}")
        ax.set_xlabel("n")
        ax.set_ylabel("asymptotic factor")
        ax.legend()
        for n in sizes:
            stats = {rule: np.array([r["factor"] for r in rows if r["n"] == n
                                     and r["cycle"] == cycle and r["prolongation"] == rule])
                     for rule in rules}
            win = (f"{100 * np.mean(stats['learned'] < stats['blackbox']):.0f}% of "
                   f"{len(stats['learned'])}" if {"learned", "blackbox"} <= set(rules) else "-")
            table.append({"n": n, "cycle": cycle,
                          **{r: f"{stats[r].mean():.4f} ± {stats[r].std():.4f}" for r in rules},
                          "success (learned < BB)": win})
            if {"boxmg", "blackbox"} <= set(rules):
                notes.append(np.abs(stats["boxmg"] - stats["blackbox"]).max())
    save_figure(fig, out / "factors.png", dpi=120)
    lines += markdown_table(
        table, columns=["n", "cycle", *rules, "success (learned < BB)"]).splitlines()
    if notes:
        lines += ["", f"BoxMG vs black-box: largest |factor difference| over all problems "
                  f"{max(notes):.1e} (the rules coincide on these Dirichlet problems)."]
    if solves:
        lines += ["", "Time to rtol 1e-8 (true residual), first problem of each size, one core:",
                  "", *markdown_table([{
                      "n": s["n"], "solver": s["solver"],
                      "iterations":
                          f"{s['iterations']}{'' if s['converged'] else ' (not converged)'}",
                      "setup s": f"{s['setup_s']:.3f}", "solve s": f"{s['solve_s']:.3f}",
                      "total s": f"{s['total_s']:.3f}"} for s in solves]).splitlines()]  # fmt: skip
    (out / "results_table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.1f} s")
