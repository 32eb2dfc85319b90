"""Where black-box multigrid and AMG struggle: learned vs black-box vs BoxMG, and against AMG.

Families (Dirichlet, bilinear FE 9-point stencil, f = 1):

* log-normal ``k = exp(σ N(0, 1))`` per cell, σ = 1 (the training family) and σ = 2;
* checkerboards of contrast 1e2, 1e3, 1e4 on 3×3, 5×5 and 7×7 boxes (the jumps fall between coarse
  grid lines);
* anisotropic ``K = k diag(ε, 1)``, ε = k_x / k_y = 1e-2 and 1e-3, with ``k = 1`` (σ = 0) and
  with a σ = 1 log-normal ``k``.

Part 1: asymptotic V(1,1) factors (forward GS, 40 cycles on A e = 0 from a seeded N(0,1) error) of
black-box, BoxMG, the shipped learned network with its guard and without it, mean ± std over the
family's problems, and the success rate (share of problems where the guarded learned factor is
below black-box's; the share of coarse points the guard sent back to black-box is reported).
Part 2: CG to rtol 1e-8 (true residual), zero initial guess, on the first problem of each family
at ``--solve-n``: PETSc CG with PCMG(learned P), PCMG(black-box P), GAMG and BoomerAMG (hypre):
iterations, set-up and solve seconds (one run, one thread). Writes ``factors.csv``,
``solves.csv``, ``hard_families.md`` and ``factors.png`` into ``--out``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/hard_families.py \\
        [--sizes 63,127] [--seeds 5] [--solve-n 255]
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.nn.prolongation import ProlongationGuardWarning
from pdesolve.plotting import save_figure, subplots
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network

HERE = Path(__file__).resolve().parent
RULES = ("blackbox", "boxmg", "learned", "learned (no guard)")


def families(seeds: int) -> dict[str, list[dict]]:
    """Family label -> list of ``get_problem`` keyword sets (without ``n``)."""
    fe = {"dim": 2, "scheme": "fe9"}
    out: dict[str, list[dict]] = {}
    for sigma in (1.0, 2.0):
        out[f"log-normal σ={sigma:g}"] = [
            {**fe, "coefficient": "lognormal", "sigma": sigma, "seed": 1000 + i}
            for i in range(seeds)]
    for contrast in (1e2, 1e3, 1e4):
        out[f"checkerboard {contrast:.0e}"] = [
            {**fe, "coefficient": "checkerboard", "contrast": contrast, "blocks": b}
            for b in (3, 5, 7)]
    for eps in (1e-2, 1e-3):
        out[f"anisotropic ε={eps:.0e}, k=1"] = [
            {**fe, "coefficient": "anisotropic", "anisotropy": eps, "sigma": 0.0}]
        out[f"anisotropic ε={eps:.0e}, log-normal k"] = [
            {**fe, "coefficient": "anisotropic", "anisotropy": eps, "sigma": 1.0,
             "seed": 1000 + i} for i in range(max(1, seeds // 2))]
    return out


def factors(fams: dict[str, list[dict]], sizes: list[int], cycles: int) -> list[dict]:
    net = load_network(None)
    bare = load_network(None)
    bare.set_guard(None)
    rows = []
    for n in sizes:
        for fam, problems in fams.items():
            t0 = time.perf_counter()
            for index, kw in enumerate(problems):
                system = pdesolve.get_problem("diffusion", n=n, **kw).discretize()
                for rule in RULES:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", ProlongationGuardWarning)
                        mg = MultigridHierarchy(
                            system.A, system.stencil,
                            prolongation="learned" if rule.startswith("learned") else rule,
                            net=bare if "no guard" in rule else net)
                    guarded = total = 0
                    for w in caught:
                        m = re.match(r"learned prolongation: (\d+) of (\d+)", str(w.message))
                        if m:
                            guarded, total = guarded + int(m[1]), total + int(m[2])
                    f = mg.convergence_factor(cycles=cycles, seed=1000 + index)
                    rows.append({"family": fam, "n": n, "problem": index, "rule": rule,
                                 "factor": f, "guarded_points": guarded})
            print(f"n={n} {fam}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


SOLVERS = [
    ("CG + PCMG(learned P)", {"pc": {"name": "multigrid", "prolongation": "learned"}}),
    ("CG + PCMG(black-box P)", {"pc": {"name": "multigrid", "prolongation": "blackbox"}}),
    ("CG + GAMG", {"pc": "gamg"}),
    ("CG + BoomerAMG", {"pc": "hypre"}),
]


def solves(fams: dict[str, list[dict]], n: int, without: str = "") -> list[dict]:
    rows = []
    run = [r for r in SOLVERS if not any(w and w in r[0] for w in without.split(","))]
    warnings.simplefilter("ignore", ProlongationGuardWarning)
    small = pdesolve.get_problem("diffusion", dim=2, n=31, scheme="fe9",
                                 coefficient="lognormal").discretize()
    for _, opts in run:  # warm-up: one-time library initialisation
        pdesolve.solve(small, method="petsc_cg", rtol=1e-8, **opts)
    for fam, problems in fams.items():
        system = pdesolve.get_problem("diffusion", n=n, **problems[0]).discretize()
        for label, opts in run:
            res = pdesolve.solve(system, method="petsc_cg", rtol=1e-8, maxiter=2000, **opts)
            true_rel = np.linalg.norm(system.b - system.A @ res.x) / system.b_norm
            rows.append({"family": fam, "n": n, "solver": label, "converged": res.converged,
                         "iterations": res.iterations, "true_rel_residual": float(true_rel),
                         "setup_s": res.info["setup_time"],
                         "solve_s": res.wall_time - res.info["setup_time"],
                         "total_s": res.wall_time})
            print(rows[-1], flush=True)
    return rows


def _table(header: list[str], rows: list[list]) -> str:
    return markdown_table([dict(zip(header, row, strict=True)) for row in rows])


def report(out: Path, fac: list[dict], sol: list[dict], sizes: list[int], args) -> str:
    fams = list(dict.fromkeys(r["family"] for r in fac))
    table = []
    for fam in fams:
        for n in sizes:
            by = {rule: np.array([r["factor"] for r in fac if r["family"] == fam
                                  and r["n"] == n and r["rule"] == rule]) for rule in RULES}
            guard = sum(r["guarded_points"] for r in fac if r["family"] == fam and r["n"] == n
                        and r["rule"] == "learned")
            table.append([fam, n, len(by["blackbox"]),
                          *(f"{by[r].mean():.3f} ± {by[r].std():.3f}" for r in RULES),
                          f"{np.sum(by['learned'] < by['blackbox'])}/{len(by['blackbox'])}",
                          f"{np.sum(by['learned (no guard)'] < by['blackbox'])}/"
                          f"{len(by['blackbox'])}", guard])
    lines = [
        "# Hard coefficient families: learned vs black-box vs BoxMG, and against AMG", "",
        f"{args.note}", "",
        "## Asymptotic V(1,1) factors", "",
        f"Dirichlet, bilinear FE, b = 0, N(0,1) initial error, {args.cycles} cycles, one forward "
        "GS sweep before and after; mean ± std over the family's problems. Success = learned "
        "(guarded) factor below black-box's. Guarded points: coarse points (all levels, all "
        "problems of the row) where the guard gave the black-box weights.", "",
        _table(["family", "n", "problems", *RULES, "learned < BB", "unguarded < BB",
                "guarded points"], table),
    ]
    if sol:
        gamg = {r["family"]: r for r in sol if r["solver"] == "CG + GAMG"}
        rows = [[r["family"], r["solver"],
                 f"{r['iterations']}{'' if r['converged'] else ' (not converged)'}",
                 f"{r['true_rel_residual']:.1e}", f"{r['setup_s']:.2f}", f"{r['solve_s']:.2f}",
                 f"{r['total_s']:.2f}", f"{r['total_s'] / gamg[r['family']]['total_s']:.2f}"]
                for r in sol]
        lines += ["", f"## CG to rtol 1e-8 at n = {sol[0]['n']} (first problem of each family)",
                  "", "PETSc KSPCG, zero initial guess, one run each, one thread; the learned "
                  "PCMG uses the guarded network.", "",
                  _table(["family", "solver", "iterations", "true rel. residual", "set-up s",
                          "solve s", "total s", "total / GAMG"], rows)]
    fig, ax = subplots(figsize=(9, 4))
    n = sizes[-1]
    x = np.arange(len(fams))
    for k, rule in enumerate(RULES):
        means = [np.mean([r["factor"] for r in fac if r["family"] == f and r["n"] == n
                          and r["rule"] == rule]) for f in fams]
        ax.bar(x + (k - 1.5) * 0.2, means, 0.2, label=rule)
    ax.set_xticks(x, fams, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(f"V(1,1) factor, n = {n}")
    ax.legend(fontsize=7)
    save_figure(fig, out / "factors.png", dpi=120)
    text = "\n".join(lines) + "\n"
    (out / "hard_families.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="63,127")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--solve-n", type=int, default=255, help="0: no solves")
    parser.add_argument("--out", default=str(HERE / "results" / "hard_families"))
    parser.add_argument("--without", default="",
                        help="comma-separated parts of solver labels to leave out")
    parser.add_argument("--reuse-factors", action="store_true",
                        help="read part 1 from --out/factors.csv (run part 2 only)")
    parser.add_argument("--note", default="", help="a line about the machine and its load")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    fams = families(args.seeds)
    if args.reuse_factors:
        fac = [{**r, "n": int(r["n"]), "factor": float(r["factor"]),
                "guarded_points": int(r["guarded_points"])} for r in read_csv(out / "factors.csv")]
        sizes = sorted({r["n"] for r in fac})
    else:
        fac = factors(fams, sizes, args.cycles)
        write_csv(out / "factors.csv", fac)
    sol = solves(fams, args.solve_n, args.without) if args.solve_n else []
    if sol:
        write_csv(out / "solves.csv", sol)
    print(report(out, fac, sol, sizes, args))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s")
