"""Wall-clock benchmark of the learned multigrid against PETSc .

1. One V(1,1)-cycle (the symmetric preconditioner application: forward GS down, backward GS up,
   exact coarsest solve) of pdesolve's ``MultigridHierarchy`` against PETSc PCMG built on *the same
   prolongations* (PETSc forms the Galerkin operators; ``PCApply`` = one cycle); median of
   ``--repeat`` applications each, ratio reported.
2. Solver objects (``get_solver(...).setup(system)`` once, then repeated ``solve(b)``) to rtol
   1e-8 on the true residual, zero initial guess: CG preconditioned by the ``multigrid``
   preconditioner (scipy CG + Python cycles, and PETSc KSPCG + PCMG with the learned and
   black-box P) against PETSc CG + GAMG and CG + ICC(0) (PETSc defaults otherwise): set-up,
   first solve, and the median solve time with the set-up reused.
3. Set-up only, alternating rounds (``--setup-repeats``): PCMG(learned), PCMG(black-box), GAMG.

Dirichlet log-normal diffusion (bilinear FE, seed 0) at ``--n`` (default 1023, 1023² ≈ 1.05 M
unknowns). One process, one thread. Writes ``benchmark.md`` and ``benchmark.csv`` into ``--out``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/benchmark.py [--n 1023] [--repeat 5]

``--families`` runs the family table instead (``benchmark_families.md/.csv/.png``): log-normal
σ = 1 and 2 at 1023² (``--seeds-1023``) and 2047² (``--seeds-2047``), a contrast-1e4 checkerboard
and k_x/k_y = 1e-2, 1e-3 at 1023², each with PETSc CG + PCMG(learned P), PCMG(black-box P), GAMG,
BoomerAMG and (first 1023² row only) ICC(0): total time (set-up + first solve) and repeated-solve
time, the fastest solver per row, and the goals checked on the σ = 1 rows::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/benchmark.py --families \\
        [--seeds-1023 5] [--seeds-2047 2]
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
    small = pdesolve.get_problem("diffusion", dim=2, n=63, coefficient="lognormal",
                                 scheme="fe9", seed=0).discretize()
    for rule in ("blackbox", "learned"):  # warm-up (one-time library initialisation)
        MultigridHierarchy(small.A, small.stencil, prolongation=rule, net=net).precondition(small.b)
    for rule in ("blackbox", "learned"):
        t0 = time.perf_counter()
        mg = MultigridHierarchy(system.A, system.stencil, prolongation=rule, net=net)
        ours_setup = time.perf_counter() - t0
        M = mg.aspreconditioner()
        ours = _median_time(lambda M=M: M @ r, repeat)
        t0 = time.perf_counter()
        pcmg = PCMGKSP(system.A, mg.prolongations(), operators=mg.coarse_operators())
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


SOLVERS = [
    ("CG + MG-V(learned) [scipy CG, pdesolve cycles]", "scipy_cg",
     {"pc": {"name": "multigrid", "prolongation": "learned"}}),
    ("CG + PCMG(learned P) [PETSc]", "petsc_cg",
     {"pc": {"name": "multigrid", "prolongation": "learned"}}),
    ("CG + PCMG(black-box P) [PETSc]", "petsc_cg",
     {"pc": {"name": "multigrid", "prolongation": "blackbox"}}),
    ("CG + GAMG [PETSc]", "petsc_cg", {"pc": "gamg"}),
    ("CG + BoomerAMG [PETSc/hypre]", "petsc_cg", {"pc": "hypre"}),
    ("CG + ICC(0) [PETSc]", "petsc_cg", {"pc": "icc"}),
]
#: the solvers of the family table (``--families``): PETSc CG with each preconditioner
FAMILY_SOLVERS = [r for r in SOLVERS if "scipy" not in r[1]]


def solves(system, repeats: int, solvers=None, warm_up: bool = True) -> list[dict]:
    """Solver objects: set up once, then ``1 + repeats`` solves of the same system (ICC: one)."""
    rows = []
    small = pdesolve.get_problem("diffusion", dim=2, n=63, coefficient="lognormal",
                                 scheme="fe9", seed=0).discretize()
    for label, method, opts in SOLVERS if solvers is None else solvers:
        # warm-up at 63² (one-time library initialisation is not part of a set-up)
        if warm_up:
            pdesolve.get_solver(method, rtol=1e-8, **opts).solve(small)
        solver = pdesolve.get_solver(method, rtol=1e-8, maxiter=5000, **opts)
        t0 = time.perf_counter()
        solver.setup(system)
        setup = time.perf_counter() - t0
        first = solver.solve(system.b)
        again = [solver.solve(system.b) for _ in range(0 if "ICC" in label else repeats)]
        solver.close()
        true_rel = np.linalg.norm(system.b - system.A @ first.x) / system.b_norm
        times = [first.info["solve_time"]] + [r.info["solve_time"] for r in again]
        rows.append({"solver": label, "converged": first.converged,
                     "iterations": first.iterations, "true_rel_residual": float(true_rel),
                     "setup_s": setup, "solve_s": first.info["solve_time"],
                     "total_s": setup + first.info["solve_time"],
                     "repeat_solve_s": float(np.median(times)), "solves": len(times),
                     "setups": (again or [first])[-1].info["setups"]})
        print(rows[-1], flush=True)
    return rows


def setup_times(system, repeats: int) -> list[dict]:
    """Set-up only (``solver.setup``), ``repeats`` rounds alternating between the solvers, so
    that a burst of load on a shared machine hits them alike: min and median per solver."""
    runs = [r for r in SOLVERS if "PCMG" in r[0] or "GAMG" in r[0]]
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for _ in range(repeats):
        for label, method, opts in runs:
            solver = pdesolve.get_solver(method, rtol=1e-8, **opts)
            t0, c0 = time.perf_counter(), time.process_time()
            solver.setup(system)
            times[label].append(time.perf_counter() - t0)
            cpu[label].append(time.process_time() - c0)
            solver.close()
    return [{"solver": label, "min_s": min(times[label]),
             "median_s": float(np.median(times[label])), "min_cpu_s": min(cpu[label])}
            for label in times]


def family_specs(seeds_1023: int, seeds_2047: int, sigmas_2047: tuple[float, ...] = (1.0, 2.0)
                 ) -> list[tuple[str, int, dict]]:
    """(row label, n, ``get_problem`` keywords) of the family table."""
    fe = {"dim": 2, "scheme": "fe9"}
    rows = []
    for n, seeds, sigmas in ((1023, seeds_1023, (1.0, 2.0)), (2047, seeds_2047, sigmas_2047)):
        for sigma in sigmas:
            rows += [(f"log-normal σ={sigma:g}, seed {s}", n,
                      {**fe, "coefficient": "lognormal", "sigma": sigma, "seed": s})
                     for s in range(seeds)]
    rows += [("checkerboard 1e4, 5×5 boxes", 1023,
              {**fe, "coefficient": "checkerboard", "contrast": 1e4, "blocks": 5}),
             ("anisotropic k_x/k_y = 1e-2", 1023,
              {**fe, "coefficient": "anisotropic", "anisotropy": 1e-2, "sigma": 0.0}),
             ("anisotropic k_x/k_y = 1e-3", 1023,
              {**fe, "coefficient": "anisotropic", "anisotropy": 1e-3, "sigma": 0.0})]
    return rows


def families(args) -> list[dict]:
    """Every family row: each PETSc CG solver set up once, solved ``1 + solve_repeats`` times;
    CG + ICC(0) only on the first row at 1023² (it takes minutes per solve)."""
    import warnings

    from pdesolve.nn.prolongation import ProlongationGuardWarning

    warnings.simplefilter("ignore", ProlongationGuardWarning)
    rows, icc_done = [], False
    specs = family_specs(args.seeds_1023, args.seeds_2047,
                         tuple(float(v) for v in args.sigmas_2047.split(",") if v))
    solves(pdesolve.get_problem("diffusion", **specs[0][2], n=63).discretize(), 0,
           [r for r in FAMILY_SOLVERS if not any(w and w in r[0] for w in args.without.split(","))]
           )  # warm-up
    for label, n, kw in specs:
        t0 = time.perf_counter()
        system = pdesolve.get_problem("diffusion", n=n, **kw).discretize()
        run = [r for r in FAMILY_SOLVERS if "ICC" not in r[0] or (n == 1023 and not icc_done)]
        run = [r for r in run if not any(w and w in r[0] for w in args.without.split(","))]
        icc_done = icc_done or n == 1023
        for r in solves(system, args.solve_repeats, run, warm_up=False):
            rows.append({"family": label, "n": n, **r})
        print(f"{label} n={n}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def family_report(rows: list[dict], out: Path, note: str, seconds: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pdesolve.io import markdown_table

    keys = list(dict.fromkeys((r["family"], r["n"]) for r in rows))
    table = []
    for fam, n in keys:
        group = [r for r in rows if r["family"] == fam and r["n"] == n]
        gamg = next(r for r in group if "GAMG" in r["solver"])
        solved = [r for r in group if r["converged"]]
        best = min(solved, key=lambda r: r["total_s"])["solver"] if solved else "-"
        for r in group:
            table.append({
                "problem": fam, "n": f"{n}²", "solver": r["solver"],
                "iterations": f"{r['iterations']}{'' if r['converged'] else ' (not conv.)'}",
                "set-up s": f"{r['setup_s']:.2f}", "first solve s": f"{r['solve_s']:.2f}",
                "total s": f"{r['total_s']:.2f}",
                "total / GAMG": f"{r['total_s'] / gamg['total_s']:.2f}",
                "repeated solve s": f"{r['repeat_solve_s']:.2f}",
                "repeated / GAMG": f"{r['repeat_solve_s'] / gamg['repeat_solve_s']:.2f}",
                "fastest total": "←" if r["solver"] == best else ""})
    goals = []
    for n in (1023, 2047):
        sel = [k for k in keys if k[1] == n and k[0].startswith("log-normal σ=1,")]
        if not sel:
            continue

        def ratio(a: str, b: str, col: str, sel=sel) -> list[float]:
            return [next(r[col] for r in rows if (r["family"], r["n"]) == k and a in r["solver"])
                    / next(r[col] for r in rows if (r["family"], r["n"]) == k and b in r["solver"])
                    for k in sel]

        vs_gamg = ratio("learned", "GAMG", "total_s")
        vs_bb = ratio("learned", "black-box", "total_s")
        rep = ratio("learned", "GAMG", "repeat_solve_s")
        for text, vals, bound in (("total ≤ 0.5× CG+GAMG", vs_gamg, 0.5),
                                  ("total ≤ CG+PCMG(black-box)", vs_bb, 1.0),
                                  ("repeated solve ≤ 0.4× CG+GAMG", rep, 0.4)):
            met = "met" if max(vals) <= bound else "**not met**"
            goals.append({"goal (CG+PCMG(learned), log-normal σ=1)": text, "n": f"{n}²",
                          "ratios per seed": ", ".join(f"{v:.2f}" for v in vals), "verdict": met})
    lines = ["# Time to solution by coefficient family: PETSc CG with learned PCMG vs AMG", "",
             f"{note}", "",
             "rtol 1e-8 on the true residual, zero initial guess, one process, one thread; each "
             "solver object set up once and solved 3 times (ICC once; repeated solve = median "
             "solve time with the set-up reused). One run per row; ratios within the row. "
             "The learned PCMG uses the guarded network.", "",
             markdown_table(table), "## Goals", "", markdown_table(goals),
             f"(total {seconds:.0f} s)"]
    fig, ax = plt.subplots(figsize=(10, 4))
    present = {r["solver"] for r in rows}
    solvers = [r[0] for r in FAMILY_SOLVERS if "ICC" not in r[0] and r[0] in present]
    x = np.arange(len(keys))
    for k, name in enumerate(solvers):
        vals = [next((r["total_s"] for r in rows if (r["family"], r["n"]) == key
                      and r["solver"] == name), np.nan) for key in keys]
        ax.bar(x + (k - 1.5) * 0.2, vals, 0.2, label=name)
    ax.set_xticks(x, [f"{f} ({n}²)" for f, n in keys], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("set-up + solve, s")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "benchmark_families.png", dpi=120)
    text = "\n".join(lines) + "\n"
    (out / "benchmark_families.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1023)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--setup-repeats", type=int, default=3)
    parser.add_argument("--solve-repeats", type=int, default=2,
                        help="solves after the first one, set-up reused")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line about the machine/load")
    parser.add_argument("--families", action="store_true",
                        help="the family table instead: log-normal σ = 1, 2 at 1023² and 2047², "
                             "checkerboard and anisotropic at 1023², every PETSc CG solver")
    parser.add_argument("--seeds-1023", type=int, default=5)
    parser.add_argument("--seeds-2047", type=int, default=2)
    parser.add_argument("--sigmas-2047", default="1,2", help="log-normal σ of the 2047² rows")
    parser.add_argument("--without", default="",
                        help="comma-separated parts of solver labels to leave out, e.g. ICC")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.families:
        rows = families(args)
        with (out / "benchmark_families.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(family_report(rows, out, args.note, time.perf_counter() - t0))
        return
    system = pdesolve.get_problem("diffusion", dim=2, n=args.n, coefficient="lognormal",
                                  scheme="fe9", seed=0).discretize()
    print(f"problem n={args.n}: {time.perf_counter() - t0:.1f} s", flush=True)
    net = load_network(args.checkpoint)
    cyc = cycle_costs(system, net, args.repeat)
    sol = solves(system, args.solve_repeats)
    sets = setup_times(system, args.setup_repeats)
    with (out / "benchmark.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["table", *sol[0], *cyc[0]])
        writer.writeheader()
        writer.writerows([{"table": "cycle", **r} for r in cyc])
        writer.writerows([{"table": "solve", **r} for r in sol])
    gamg = next(r for r in sol if "GAMG" in r["solver"])
    lines = [f"# Benchmark: learned multigrid vs PETSc, n = {args.n} ({args.n ** 2} unknowns)", "",
             f"Dirichlet log-normal diffusion (seed 0), one process, OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}. {args.note}", "",
             "## One V(1,1) cycle, same prolongations (median of "
             f"{args.repeat})", "",
             "| P | levels | pdesolve s/cycle | PETSc PCMG s/cycle | ratio | rel. diff of M⁻¹r |"
             " pdesolve set-up s (factorisations lazy) | PETSc set-up s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in cyc:
        lines.append(f"| {r['prolongation']} | {r['levels']} | {r['pdesolve_cycle_s']:.3f} | "
                     f"{r['petsc_cycle_s']:.3f} | {r['ratio']:.2f} | {r['rel_diff']:.1e} | "
                     f"{r['pdesolve_setup_s']:.2f} | {r['petsc_setup_s']:.2f} |")
    lines += ["", "## Solver objects: set up once, solve to rtol 1e-8 (true residual)", "",
              "`solver.setup(system)` once, then `solver.solve(b)` "
              f"{1 + args.solve_repeats} times (ICC once); repeated solve = median solve time "
              "(set-up reused). Each solver is first run once at 63² (warm-up). Ratios to "
              "CG + GAMG in the same run.", "",
              "| solver | iterations | true rel. residual | set-up s | first solve s | "
              "set-up + first solve s | total / GAMG | repeated solve s | repeated / GAMG |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sol:
        lines.append(f"| {r['solver']} | {r['iterations']}"
                     f"{'' if r['converged'] else ' (not converged)'} | "
                     f"{r['true_rel_residual']:.1e} | {r['setup_s']:.2f} | {r['solve_s']:.2f} | "
                     f"{r['total_s']:.2f} | {r['total_s'] / gamg['total_s']:.2f} | "
                     f"{r['repeat_solve_s']:.2f} | "
                     f"{r['repeat_solve_s'] / gamg['repeat_solve_s']:.2f} |")
    base = next(r for r in sets if "GAMG" in r["solver"])
    bb = next(r for r in sets if "black-box" in r["solver"])
    lines += ["", f"## Set-up only, {args.setup_repeats} alternating rounds", "",
              "| solver | min s | median s | min CPU s | min / GAMG | min / PCMG(black-box) |",
              "|---|---|---|---|---|---|"]
    for r in sets:
        lines.append(f"| {r['solver']} | {r['min_s']:.2f} | {r['median_s']:.2f} | "
                     f"{r['min_cpu_s']:.2f} | {r['min_s'] / base['min_s']:.2f} | "
                     f"{r['min_s'] / bb['min_s']:.2f} |")
    lines.append(f"\n(total {time.perf_counter() - t0:.0f} s)")
    (out / "benchmark.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
