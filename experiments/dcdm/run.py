"""DCDM vs CG, PETSc CG+ICC, PETSc CG+GAMG, deflated PCG and FCG(2)+Jacobi on held-out pressure
systems, at rtol 1e-4 and 1e-6 on the relative true residual (one rule for every solver).

The 2D model shipped in data/dcdm/dcdm2d.pt was trained on one 64² obstacle box (seed 0); here it
is applied to unseen obstacle boxes (seeds 101, 102), the empty box and the box with a sphere, at
64², 128² and 256² (trained-small → applied-larger). Writes results/results.csv, results/*.png and
results/results_table.md. Single-threaded (torch and PETSc): ``python experiments/dcdm/run.py``.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import pdesolve

HERE = Path(__file__).resolve().parent
METHODS = {
    "cg": ("petsc_cg", {"pc": "none"}),
    "icc_pcg": ("petsc_cg", {"pc": "icc"}),
    "gamg_pcg": ("petsc_cg", {"pc": "gamg"}),
    "deflated_pcg": ("deflated_cg", {"deflation": 16, "lanczos_steps": 64}),
    "fcg2_jacobi": ("fcg", {"pc": "jacobi", "memory": 2}),
    "dcdm_k2": ("dcdm", {"memory": 2, "maxiter": 100}),
    "dcdm_full": ("dcdm", {"memory": None, "maxiter": 300}),
}
GEOMETRIES = {
    "empty": {"geometry": "empty"},
    "sphere": {"geometry": "sphere", "radius": 0.2, "centre": [0.5, 0.4]},
    "obstacles101": {"geometry": "obstacles", "seed": 101},
    "obstacles102": {"geometry": "obstacles", "seed": 102},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--rtols", type=float, nargs="+", default=[1e-4, 1e-6])
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        for gname, gkw in GEOMETRIES.items():
            if (n > 64 and gname not in ("obstacles101", "empty")) or (
                n > 128 and gname != "obstacles101"
            ):  # larger sizes: fewer geometries (CPU time)
                continue
            system = pdesolve.get_problem("pressure_poisson", dim=2, n=n, **gkw).discretize()
            for rtol in args.rtols:
                for label, (method, kw) in METHODS.items():
                    opts = {"maxiter": 5000, **kw}
                    res = pdesolve.solve(system, method=method, rtol=rtol, **opts)
                    true_rel = np.linalg.norm(system.b - system.A @ res.x) / system.b_norm
                    row = {
                        "n": n, "unknowns": system.size, "geometry": gname, "rtol": rtol,
                        "method": label, "converged": res.converged,
                        "iterations": res.iterations, "true_rel_residual": true_rel,
                        "setup_s": res.info.get("setup_time", 0.0),
                        "solve_s": res.info.get("solve_time", 0.0), "wall_s": res.wall_time,
                        "inference_s": res.info.get("inference_time", 0.0),
                    }  # fmt: skip
                    rows.append(row)
                    print(f"n={n:4d} {gname:13s} rtol={rtol:.0e} {label:13s} "
                          f"its={res.iterations:5d} conv={res.converged} "
                          f"rel={true_rel:.2e} wall={res.wall_time:.3f}s", flush=True)  # fmt: skip
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_table(rows, out / "results_table.md")
    plot(rows, out)


def write_table(rows: list[dict], path: Path) -> None:
    labels = list(METHODS)
    lines = []
    for rtol in sorted({r["rtol"] for r in rows}, reverse=True):
        lines += [f"\n### rtol = {rtol:.0e}: iterations (wall time, s)\n",
                  "| n | geometry | " + " | ".join(labels) + " |",
                  "|---|---|" + "---|" * len(labels)]  # fmt: skip
        keys = sorted({(r["n"], r["geometry"]) for r in rows}, key=lambda k: (k[0], k[1]))
        for n, g in keys:
            cells = []
            for lab in labels:
                r = next(x for x in rows if (x["n"], x["geometry"], x["rtol"], x["method"])
                         == (n, g, rtol, lab))  # fmt: skip
                mark = "" if r["converged"] else " ✗"
                cells.append(f"{r['iterations']}{mark} ({r['wall_s']:.3f})")
            lines.append(f"| {n}² | {g} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    rtol = min(r["rtol"] for r in rows)
    for ax, key, ylabel in ((axes[0], "iterations", "iterations"),
                            (axes[1], "wall_s", "wall time [s]")):  # fmt: skip
        for lab in METHODS:
            sel = [r for r in rows if r["method"] == lab and r["rtol"] == rtol
                   and r["geometry"] == "obstacles101"]  # fmt: skip
            ns = sorted({r["n"] for r in sel})
            ys = [np.mean([r[key] for r in sel if r["n"] == n]) for n in ns]
            ax.plot(ns, ys, "o-", label=lab)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (grid n × n)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"unseen obstacles, rtol {rtol:.0e} (seed 101)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "iterations_vs_size.png", dpi=120)


if __name__ == "__main__":
    main()
