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
time, wall-clock and CPU seconds, the fastest solver per row, and the goals checked on the σ = 1
rows. The CSV and report are rewritten after every row; ``--budget-min`` starts no row after that
many minutes, ``--rows`` runs chosen rows of ``family_specs`` (so that parts can run side by
side), and ``--report-from a.csv,b.csv`` rebuilds one report from such parts::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/benchmark.py --families \\
        [--seeds-1023 5] [--seeds-2047 2] [--solve-repeats 1] [--repeat-limit 30]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import atomic_write, markdown_table, read_csv, table_csv, write_csv
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


def solves(system, repeats: int, solvers=None, warm_up: bool = True,
           repeat_limit: float | None = None) -> list[dict]:
    """Solver objects: set up once, then ``1 + repeats`` solves of the same system (ICC: one).

    Wall and CPU seconds (``time.process_time``: this process's own CPU, less inflated than
    wall time by other jobs on a shared machine) of the set-up and of each solve. Repeated
    solve = median over the solves after the first; none are run (repeated = first solve,
    ``repeat_measured`` False) for ICC and, with ``repeat_limit``, when the first solve took
    longer than that many wall seconds.
    """
    rows = []
    small = pdesolve.get_problem("diffusion", dim=2, n=63, coefficient="lognormal",
                                 scheme="fe9", seed=0).discretize()
    for label, method, opts in SOLVERS if solvers is None else solvers:
        # warm-up at 63² (one-time library initialisation is not part of a set-up)
        if warm_up:
            pdesolve.get_solver(method, rtol=1e-8, **opts).solve(small)
        solver = pdesolve.get_solver(method, rtol=1e-8, maxiter=5000, **opts)
        t0, c0 = time.perf_counter(), time.process_time()
        solver.setup(system)
        setup, setup_cpu = time.perf_counter() - t0, time.process_time() - c0
        c0 = time.process_time()
        first = solver.solve(system.b)
        cpu = [time.process_time() - c0]
        wall = [first.info["solve_time"]]
        more = 0 if "ICC" in label else repeats
        if repeat_limit is not None and wall[0] > repeat_limit:
            more = 0
        again = []
        for _ in range(more):
            c0 = time.process_time()
            again.append(solver.solve(system.b))
            cpu.append(time.process_time() - c0)
            wall.append(again[-1].info["solve_time"])
        solver.close()
        true_rel = np.linalg.norm(system.b - system.A @ first.x) / system.b_norm
        rep = slice(1, None) if again else slice(0, 1)
        rows.append({"solver": label, "converged": first.converged,
                     "iterations": first.iterations, "true_rel_residual": float(true_rel),
                     "setup_s": setup, "solve_s": wall[0], "total_s": setup + wall[0],
                     "repeat_solve_s": float(np.median(wall[rep])),
                     "setup_cpu_s": setup_cpu, "solve_cpu_s": cpu[0],
                     "total_cpu_s": setup_cpu + cpu[0],
                     "repeat_solve_cpu_s": float(np.median(cpu[rep])),
                     "solves": len(wall), "repeat_measured": bool(again),
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
    """(row label, n, ``get_problem`` keywords) of the family table, in the order they run:
    one problem of every 1023² family and the first σ = 1 problem at 2047² first, then the
    further σ = 1 seeds (the goals' rows), then σ = 2 at 2047² and the further σ = 2 seeds, so
    that a run stopped by its time budget still covers every family."""
    fe = {"dim": 2, "scheme": "fe9"}

    def lognormal(n: int, sigma: float, seed: int) -> tuple[str, int, dict]:
        return (f"log-normal σ={sigma:g}, seed {seed}", n,
                {**fe, "coefficient": "lognormal", "sigma": sigma, "seed": seed})

    grids = ((1023, seeds_1023, (1.0, 2.0)), (2047, seeds_2047, sigmas_2047))
    rows = [lognormal(n, 1.0, 0) for n, seeds, sigmas in grids if seeds > 0 and 1.0 in sigmas]
    rows += [lognormal(1023, 2.0, 0)] if seeds_1023 > 0 else []
    rows += [("checkerboard 1e4, 5×5 boxes", 1023,
              {**fe, "coefficient": "checkerboard", "contrast": 1e4, "blocks": 5}),
             ("anisotropic k_x/k_y = 1e-2", 1023,
              {**fe, "coefficient": "anisotropic", "anisotropy": 1e-2, "sigma": 0.0}),
             ("anisotropic k_x/k_y = 1e-3", 1023,
              {**fe, "coefficient": "anisotropic", "anisotropy": 1e-3, "sigma": 0.0})]
    rows += [lognormal(n, 1.0, s) for n, seeds, sigmas in grids if 1.0 in sigmas
             for s in range(1, seeds)]
    rows += [lognormal(2047, 2.0, 0)] if seeds_2047 > 0 and 2.0 in sigmas_2047 else []
    rows += [lognormal(n, 2.0, s) for n, seeds, sigmas in grids if 2.0 in sigmas
             for s in range(1, seeds)]
    return rows


def _family_solvers(without: str) -> list[tuple]:
    return [r for r in FAMILY_SOLVERS if not any(w and w in r[0] for w in without.split(","))]


def families(args, out: Path, note: str) -> tuple[list[dict], list[str]]:
    """Every family row: each PETSc CG solver set up once, solved ``1 + solve_repeats`` times;
    CG + ICC(0) only on the first row at 1023² (it takes minutes per solve). The CSV and the
    report are rewritten after every row; rows not started within ``--budget-min`` minutes are
    left out (and listed in the report)."""
    import warnings

    from pdesolve.nn.prolongation import ProlongationGuardWarning

    warnings.simplefilter("ignore", ProlongationGuardWarning)
    rows, skipped, icc_done, t_start = [], [], False, time.perf_counter()
    specs = family_specs(args.seeds_1023, args.seeds_2047,
                         tuple(float(v) for v in args.sigmas_2047.split(",") if v))
    if args.rows:
        specs = [specs[int(k)] for k in args.rows.split(",")]
    solvers = _family_solvers(args.without)
    solves(pdesolve.get_problem("diffusion", **specs[0][2], n=63).discretize(), 0,
           solvers)  # warm-up
    for k, (label, n, kw) in enumerate(specs):
        if args.budget_min and time.perf_counter() - t_start > 60 * args.budget_min:
            skipped = [f"{lab} ({m}²)" for lab, m, _ in specs[k:]]
            print("time budget spent; not run:", ", ".join(skipped), flush=True)
            break
        t0 = time.perf_counter()
        load0 = os.getloadavg()[0]
        system = pdesolve.get_problem("diffusion", n=n, **kw).discretize()
        run = [r for r in solvers if "ICC" not in r[0] or (n == 1023 and not icc_done)]
        icc_done = icc_done or n == 1023
        for r in solves(system, args.solve_repeats, run, warm_up=False,
                        repeat_limit=args.repeat_limit or None):
            rows.append({"family": label, "n": n, **r,
                         "load_average": max(load0, os.getloadavg()[0])})
        del system
        print(f"{label} n={n}: {time.perf_counter() - t0:.0f} s", flush=True)

        atomic_write(out / "benchmark_families.csv",
                     lambda t: t.write_text(table_csv(rows)), overwrite=True)
        family_report(rows, out, note, time.perf_counter() - t_start)
    return rows, skipped


def _typed(row: dict) -> dict:
    """A row of ``benchmark_families.csv`` with its numbers and flags parsed."""
    out = dict(row)
    for key, value in row.items():
        if value in ("True", "False"):
            out[key] = value == "True"
        elif key not in ("family", "solver"):
            out[key] = float(value) if any(c in value for c in ".e") else int(value)
    return out


def _group(family: str) -> str:
    """The family of a row label (without its seed)."""
    return family.split(", seed")[0]


def family_report(rows: list[dict], out: Path, note: str, seconds: float,
                  skipped: list[str] | None = None) -> str:
    from pdesolve.plotting import save_figure, subplots

    keys = list(dict.fromkeys((r["family"], r["n"]) for r in rows))
    order = [r[0] for r in FAMILY_SOLVERS]
    groups = list(dict.fromkeys(_group(k[0]) for k in keys))
    keys.sort(key=lambda k: (k[1], groups.index(_group(k[0])), k[0]))
    table, ratios = [], []
    for fam, n in keys:
        group = [r for r in rows if r["family"] == fam and r["n"] == n]
        group.sort(key=lambda r: order.index(r["solver"]))
        gamg = next(r for r in group if "GAMG" in r["solver"])
        solved = [r for r in group if r["converged"]]
        best = min(solved, key=lambda r: r["total_s"])["solver"] if solved else "-"
        for r in group:
            rel = {"total / GAMG": r["total_s"] / gamg["total_s"],
                   "repeated / GAMG": r["repeat_solve_s"] / gamg["repeat_solve_s"],
                   "total CPU / GAMG": r["total_cpu_s"] / gamg["total_cpu_s"],
                   "repeated CPU / GAMG": r["repeat_solve_cpu_s"] / gamg["repeat_solve_cpu_s"]}
            ratios.append({"family": _group(fam), "n": n, "solver": r["solver"],
                           "iterations": r["iterations"], **rel})
            table.append({
                "problem": fam, "n": f"{n}²", "solver": r["solver"],
                "iterations": f"{r['iterations']}{'' if r['converged'] else ' (not conv.)'}",
                "set-up s": f"{r['setup_s']:.2f}", "first solve s": f"{r['solve_s']:.2f}",
                "total s": f"{r['total_s']:.2f}",
                "total / GAMG": f"{rel['total / GAMG']:.2f}",
                "repeated solve s": f"{r['repeat_solve_s']:.2f}"
                                    + ("" if r["repeat_measured"] else "*"),
                "repeated / GAMG": f"{rel['repeated / GAMG']:.2f}",
                "total CPU s": f"{r['total_cpu_s']:.2f}",
                "total CPU / GAMG": f"{rel['total CPU / GAMG']:.2f}",
                "repeated CPU / GAMG": f"{rel['repeated CPU / GAMG']:.2f}",
                "load": f"{r['load_average']:.1f}",
                "fastest total": "←" if r["solver"] == best else ""})
    summary = []
    for fam, n in dict.fromkeys((r["family"], r["n"]) for r in ratios):
        for solver in order:
            sel = [r for r in ratios if (r["family"], r["n"], r["solver"]) == (fam, n, solver)]
            if not sel:
                continue
            its = [r["iterations"] for r in sel]
            summary.append({"family": fam, "n": f"{n}²", "solver": solver,
                            "problems": len(sel),
                            "iterations": f"{min(its)}–{max(its)}" if min(its) < max(its)
                            else str(its[0]),
                            **{col: f"{np.mean([r[col] for r in sel]):.2f} "
                                    f"({min(r[col] for r in sel):.2f}–"
                                    f"{max(r[col] for r in sel):.2f})"
                               for col in ("total / GAMG", "repeated / GAMG",
                                           "total CPU / GAMG", "repeated CPU / GAMG")}})
    goals = []
    for n in (1023, 2047):
        sel = [k for k in keys if k[1] == n and k[0].startswith("log-normal σ=1,")]
        if not sel:
            continue

        def ratio(a: str, b: str, col: str, sel=sel) -> list[float]:
            return [next(r[col] for r in rows if (r["family"], r["n"]) == k and a in r["solver"])
                    / next(r[col] for r in rows if (r["family"], r["n"]) == k and b in r["solver"])
                    for k in sel]

        for text, a, b, col, bound in (
                ("total ≤ 0.5× CG+GAMG", "learned", "GAMG", "total", 0.5),
                ("total ≤ CG+PCMG(black-box)", "learned", "black-box", "total", 1.0),
                ("repeated solve ≤ 0.4× CG+GAMG", "learned", "GAMG", "repeat_solve", 0.4)):
            wall, cpu = ratio(a, b, col + "_s"), ratio(a, b, col + "_cpu_s")
            goals.append({"goal (CG+PCMG(learned), log-normal σ=1)": text, "n": f"{n}²",
                          "seeds": len(sel),
                          "wall-clock ratios": ", ".join(f"{v:.2f}" for v in wall),
                          "verdict (wall, every seed)":
                              "met" if max(wall) <= bound else "**not met**",
                          "CPU-time ratios": ", ".join(f"{v:.2f}" for v in cpu),
                          "verdict (CPU)": "met" if max(cpu) <= bound else "**not met**"})
    loads = [r["load_average"] for r in rows]
    lines = ["# Time to solution by coefficient family: PETSc CG with learned PCMG vs AMG", "",
             f"{note}", "",
             "rtol 1e-8 on the true residual, zero initial guess, one process, one thread; each "
             "solver object set up once and solved once more (ICC once; repeated solve = the "
             "solves after the first, set-up reused; * = not repeated because the first solve "
             "took longer than the repeat limit: the first solve's time). One run per row; "
             "ratios within the row. CPU = this process's CPU seconds (`time.process_time`), "
             "less inflated than wall time by the other jobs on the machine. The learned PCMG "
             "uses the guarded network. `load`: the 1-minute load average (2 cores) at the "
             f"start or end of the row, whichever is higher (range in this run: "
             f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f}).", "",
             "## Goals", "", markdown_table(goals),
             "## Summary by family (mean of the per-problem ratios, range in brackets)", "",
             markdown_table(summary), "## Every problem", "", markdown_table(table)]
    if skipped:
        lines += ["Not run (the run's time budget was spent): " + ", ".join(skipped) + ".", ""]
    lines.append(f"(total {seconds:.0f} s)")
    fig, axes = subplots(1, 2, figsize=(13, 4.5), sharey=False)
    present = {r["solver"] for r in rows}
    solvers = [r[0] for r in FAMILY_SOLVERS
               if "ICC" not in r[0] and "GAMG" not in r[0] and r[0] in present]
    x = np.arange(len(keys))
    width = 0.8 / max(1, len(solvers))
    for ax, col, title in ((axes[0], "total_cpu_s", "total (set-up + solve) CPU time / CG+GAMG"),
                           (axes[1], "repeat_solve_cpu_s", "repeated solve CPU time / CG+GAMG")):
        for k, name in enumerate(solvers):
            vals = []
            for key in keys:
                group = {r["solver"]: r for r in rows if (r["family"], r["n"]) == key}
                gamg = next(v for s, v in group.items() if "GAMG" in s)
                vals.append(group[name][col] / gamg[col] if name in group else np.nan)
            ax.bar(x + (k - (len(solvers) - 1) / 2) * width, vals, width, label=name)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xticks(x, [f"{f} ({n}²)" for f, n in keys], rotation=35, ha="right", fontsize=6)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
    axes[0].axhline(0.5, color="r", lw=0.7, ls="--")
    axes[1].axhline(0.4, color="r", lw=0.7, ls="--")
    axes[0].legend(fontsize=6)
    save_figure(fig, out / "benchmark_families.png", dpi=120)
    text = "\n".join(lines) + "\n"
    atomic_write(out / "benchmark_families.md", lambda t: t.write_text(text), overwrite=True)
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
    parser.add_argument("--repeat-limit", type=float, default=0.0,
                        help="family table: no repeated solve after a first solve longer than "
                             "this many wall seconds (0: always repeat)")
    parser.add_argument("--budget-min", type=float, default=0.0,
                        help="family table: start no row after this many minutes (0: no limit)")
    parser.add_argument("--rows", default="",
                        help="family table: comma-separated indices into family_specs (in its "
                             "run order) to run instead of all rows")
    parser.add_argument("--report-from", default="",
                        help="family table: rebuild the report (and one CSV) from these "
                             "comma-separated benchmark_families.csv files, running nothing")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="with --report-from: the runs' total seconds, for the report")
    parser.add_argument("--without", default="",
                        help="comma-separated parts of solver labels to leave out, e.g. ICC")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.report_from:
        rows, seen = [], set()
        for path in args.report_from.split(","):
            part = [_typed(r) for r in read_csv(path)]
            new = {(r["family"], r["n"]) for r in part} - seen  # first file wins a duplicate
            rows += [r for r in part if (r["family"], r["n"]) in new]
            seen |= new

        atomic_write(out / "benchmark_families.csv", lambda t: t.write_text(table_csv(rows)),
                     overwrite=True)
        print(family_report(rows, out, args.note, args.seconds))
        return
    if args.families:
        rows, skipped = families(args, out, args.note)
        print(family_report(rows, out, args.note, time.perf_counter() - t0, skipped)
              if rows else "no rows")
        return
    system = pdesolve.get_problem("diffusion", dim=2, n=args.n, coefficient="lognormal",
                                  scheme="fe9", seed=0).discretize()
    print(f"problem n={args.n}: {time.perf_counter() - t0:.1f} s", flush=True)
    net = load_network(args.checkpoint)
    cyc = cycle_costs(system, net, args.repeat)
    sol = solves(system, args.solve_repeats)
    sets = setup_times(system, args.setup_repeats)
    write_csv(out / "benchmark.csv",
              [{"table": "cycle", **r} for r in cyc] + [{"table": "solve", **r} for r in sol],
              columns=["table", *sol[0], *cyc[0]])
    gamg = next(r for r in sol if "GAMG" in r["solver"])
    lines = [f"# Benchmark: learned multigrid vs PETSc, n = {args.n} ({args.n ** 2} unknowns)", "",
             f"Dirichlet log-normal diffusion (seed 0), one process, OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}. {args.note}", "",
             "## One V(1,1) cycle, same prolongations (median of "
             f"{args.repeat})", "",
             markdown_table([{
                 "P": r["prolongation"], "levels": r["levels"],
                 "pdesolve s/cycle": f"{r['pdesolve_cycle_s']:.3f}",
                 "PETSc PCMG s/cycle": f"{r['petsc_cycle_s']:.3f}", "ratio": f"{r['ratio']:.2f}",
                 "rel. diff of M⁻¹r": f"{r['rel_diff']:.1e}",
                 "pdesolve set-up s (factorisations lazy)": f"{r['pdesolve_setup_s']:.2f}",
                 "PETSc set-up s": f"{r['petsc_setup_s']:.2f}"} for r in cyc]).rstrip("\n")]
    lines += ["", "## Solver objects: set up once, solve to rtol 1e-8 (true residual)", "",
              "`solver.setup(system)` once, then `solver.solve(b)` "
              f"{1 + args.solve_repeats} times (ICC once); repeated solve = median of the solves "
              "after the first (set-up reused). Each solver is first run once at 63² (warm-up). "
              "Ratios to "
              "CG + GAMG in the same run.", "",
              markdown_table([{
                  "solver": r["solver"],
                  "iterations": f"{r['iterations']}"
                                f"{'' if r['converged'] else ' (not converged)'}",
                  "true rel. residual": f"{r['true_rel_residual']:.1e}",
                  "set-up s": f"{r['setup_s']:.2f}", "first solve s": f"{r['solve_s']:.2f}",
                  "set-up + first solve s": f"{r['total_s']:.2f}",
                  "total / GAMG": f"{r['total_s'] / gamg['total_s']:.2f}",
                  "repeated solve s": f"{r['repeat_solve_s']:.2f}",
                  "repeated / GAMG": f"{r['repeat_solve_s'] / gamg['repeat_solve_s']:.2f}",
              } for r in sol]).rstrip("\n")]
    base = next(r for r in sets if "GAMG" in r["solver"])
    bb = next(r for r in sets if "black-box" in r["solver"])
    lines += ["", f"## Set-up only, {args.setup_repeats} alternating rounds", "",
              markdown_table([{
                  "solver": r["solver"], "min s": f"{r['min_s']:.2f}",
                  "median s": f"{r['median_s']:.2f}", "min CPU s": f"{r['min_cpu_s']:.2f}",
                  "min / GAMG": f"{r['min_s'] / base['min_s']:.2f}",
                  "min / PCMG(black-box)": f"{r['min_s'] / bb['min_s']:.2f}",
              } for r in sets]).rstrip("\n")]
    lines.append(f"\n(total {time.perf_counter() - t0:.0f} s)")
    text = "\n".join(lines) + "\n"
    atomic_write(out / "benchmark.md", lambda t: t.write_text(text), overwrite=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
