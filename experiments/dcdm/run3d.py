"""3D DCDM reproduction: DCDM vs CG, PETSc CG+ICC, PETSc CG+GAMG and deflated PCG on 3D MAC
pressure systems, at rtol 1e-6 on the relative true residual (one rule for every solver), plus
the per-iteration benchmark against PETSc CG+GAMG.

The model is the shipped ``data/dcdm/dcdm3d.pt``, trained on ONE 32³ box with 4 random obstacles
(seed 0). It is applied, fully convolutionally, to unseen systems: the empty box, a box with a
sphere, boxes with obstacles drawn with seeds 101 and 102, at 32³ and 64³ (and 128³ with
``--sizes 32 64 128``). Iterations to rtol 1e-4 (the paper's tolerance) are read off the same
residual histories. Wall times include network inference and exclude training (reported apart,
from ``data/dcdm/run3d/log.csv``). Single-threaded torch and PETSc.

    python experiments/dcdm/run3d.py                      # 32³ and 64³, ~20 CPU-min, one core
    python experiments/dcdm/run3d.py --replot             # tables and plot from results3d.csv
    python experiments/dcdm/run3d.py --sizes 128 --geometries obstacles101 --append

Writes ``results/results3d.csv``, ``results/results3d_table.md``, ``results/benchmark3d.md`` and
``results/iterations_vs_size_3d.png``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
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
    "dcdm_k2": ("dcdm", {"memory": 2, "maxiter": 300}),
    "dcdm_k2_safeguard": ("dcdm", {"memory": 2, "safeguard": True, "maxiter": 300}),
    "dcdm_full": ("dcdm", {"memory": None, "maxiter": 300}),
    "petsc_fcg2_dcdm": ("petsc_dcdm", {"ksp_type": "fcg", "memory": 2, "maxiter": 300}),
}
GEOMETRIES = {
    "empty": {"geometry": "empty"},
    "sphere": {"geometry": "sphere", "radius": 0.2, "centre": [0.5, 0.5, 0.4]},
    "obstacles101": {"geometry": "obstacles", "seed": 101},
    "obstacles102": {"geometry": "obstacles", "seed": 102},
}
#: methods run only at some sizes (CPU time): the PETSc route repeats dcdm_k2, full memory
#: costs O(k n) per iteration
ONLY_AT = {"petsc_fcg2_dcdm": {32}, "dcdm_full": {32}}
FIELDS = [
    "n", "unknowns", "geometry", "method", "converged", "iterations", "iterations_1e-4",
    "true_rel_residual", "setup_s", "solve_s", "wall_s", "inference_s", "per_iteration_s",
    "inference_per_iteration_s", "rest_per_iteration_s", "cpu_s", "inference_cpu_s",
    "setup_cpu_s",
]  # fmt: skip


def iterations_to(norms: np.ndarray, threshold: float) -> int | None:
    """The first iteration whose residual norm is <= threshold (norms[0] is iteration 0)."""
    hit = np.flatnonzero(np.asarray(norms) <= threshold)
    return int(hit[0]) if hit.size else None


def run_one(system, method: str, kw: dict, rtol: float) -> dict:
    cpu = time.process_time()
    res = pdesolve.solve(system, method=method, rtol=rtol, **{"maxiter": 5000, **kw})
    cpu = time.process_time() - cpu
    setup_cpu = float("nan")
    if method == "petsc_cg":  # CPU time of the set-up alone (a solve with zero iterations)
        setup_cpu = time.process_time()
        pdesolve.solve(system, method=method, rtol=rtol, **{**kw, "maxiter": 0})
        setup_cpu = time.process_time() - setup_cpu
    true_rel = np.linalg.norm(system.b - system.A @ res.x) / system.b_norm
    its = max(res.iterations, 1)
    inference = float(res.info.get("inference_time", 0.0))
    solve = float(res.info.get("solve_time", 0.0))
    # deflated_cg's history holds ||b|| and then the deflated start (its iteration 0)
    norms = res.residual_norms[1:] if method == "deflated_cg" else res.residual_norms
    return {
        "converged": res.converged, "iterations": res.iterations,
        "iterations_1e-4": iterations_to(norms, 1e-4 * system.b_norm),
        "true_rel_residual": float(true_rel), "setup_s": float(res.info.get("setup_time", 0.0)),
        "solve_s": solve, "wall_s": float(res.wall_time), "inference_s": inference,
        "per_iteration_s": solve / its, "inference_per_iteration_s": inference / its,
        "rest_per_iteration_s": (solve - inference) / its, "cpu_s": cpu,
        "inference_cpu_s": float(res.info.get("inference_cpu_time", 0.0)),
        "setup_cpu_s": setup_cpu,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--geometries", nargs="+", default=list(GEOMETRIES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--append", action="store_true", help="add rows to results3d.csv")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--replot", action="store_true", help="only rewrite tables and plot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results3d.csv"
    rows = []
    if (args.append or args.replot) and csv_path.is_file():
        with csv_path.open() as fh:
            rows = list(csv.DictReader(fh))
    if args.replot:
        write(rows, out)
        return
    for n in args.sizes:
        for gname in args.geometries:
            system = pdesolve.get_problem("pressure_poisson", dim=3, n=n,
                                          **GEOMETRIES[gname]).discretize()  # fmt: skip
            for label in args.methods:
                if label in ONLY_AT and n not in ONLY_AT[label]:
                    continue
                method, kw = METHODS[label]
                rows = [r for r in rows if (int(r["n"]), r["geometry"], r["method"])
                        != (n, gname, label)]  # fmt: skip
                row = {"n": n, "unknowns": system.size, "geometry": gname, "method": label,
                       **run_one(system, method, kw, args.rtol)}  # fmt: skip
                rows.append(row)
                print(f"n={n:4d} {gname:13s} {label:16s} its={row['iterations']:5d} "
                      f"(1e-4: {row['iterations_1e-4']}) conv={row['converged']} "
                      f"rel={row['true_rel_residual']:.2e} wall={row['wall_s']:.2f}s "
                      f"inference={row['inference_s']:.2f}s", flush=True)  # fmt: skip
                write(rows, out)
    write(rows, out)


def _val(r: dict, key: str) -> float:
    v = r[key]
    return float(v) if v not in ("", None, "None") else float("nan")


def write(rows: list[dict], out: Path) -> None:
    with (out / "results3d.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    labels = [m for m in METHODS if any(r["method"] == m for r in rows)]
    keys = sorted({(int(r["n"]), r["geometry"]) for r in rows})
    lines = ["### rtol = 1e-6 (true residual): iterations (wall time incl. inference, s)\n",
             "| n | geometry | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]  # fmt: skip
    for n, g in keys:
        cells = []
        for lab in labels:
            r = next((x for x in rows if (int(x["n"]), x["geometry"], x["method"])
                      == (n, g, lab)), None)  # fmt: skip
            if r is None:
                cells.append("–")
                continue
            ok = str(r["converged"]) == "True"
            cells.append(f"{r['iterations']}{'' if ok else ' ✗'} ({_val(r, 'wall_s'):.2f})")
        lines.append(f"| {n}³ | {g} | " + " | ".join(cells) + " |")
    lines += ["\n### rtol = 1e-4 (the paper's tolerance), from the same residual histories: "
              "iterations\n", "| n | geometry | " + " | ".join(labels) + " |",
              "|---|---|" + "---|" * len(labels)]  # fmt: skip
    for n, g in keys:
        cells = []
        for lab in labels:
            r = next((x for x in rows if (int(x["n"]), x["geometry"], x["method"])
                      == (n, g, lab)), None)  # fmt: skip
            v = None if r is None else r["iterations_1e-4"]
            if r is None:
                cells.append("–")
            else:
                cells.append(f">{r['iterations']} ✗" if v in (None, "", "None") else str(v))
        lines.append(f"| {n}³ | {g} | " + " | ".join(cells) + " |")
    (out / "results3d_table.md").write_text("\n".join(lines) + "\n")
    bench = [f"Machine: {platform.processor() or platform.machine()}, one thread (torch and "
             "PETSc), CPU shared with other jobs: times are process CPU times (robust to the load; "
             "wall times in results3d.csv), in ms.\n",
             "| n | geometry | DCDM(k=2, safeguard) its | DCDM ms/it: inference | rest | "
             "GAMG its | GAMG ms/it | GAMG setup ms | DCDM / GAMG CPU time to solution |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for n, g in keys:
        d = next((x for x in rows if (int(x["n"]), x["geometry"], x["method"])
                  == (n, g, "dcdm_k2_safeguard")), None)  # fmt: skip
        a = next((x for x in rows if (int(x["n"]), x["geometry"], x["method"])
                  == (n, g, "gamg_pcg")), None)  # fmt: skip
        if d is None or a is None or not np.isfinite(_val(a, "setup_cpu_s")):
            continue
        ok = "" if str(d["converged"]) == "True" else " ✗"
        d_its, a_its = max(int(d["iterations"]), 1), max(int(a["iterations"]), 1)
        d_inf = _val(d, "inference_cpu_s") / d_its
        d_rest = (_val(d, "cpu_s") - _val(d, "inference_cpu_s")) / d_its
        a_it = (_val(a, "cpu_s") - _val(a, "setup_cpu_s")) / a_its
        bench.append(
            f"| {n}³ | {g} | {d['iterations']}{ok} | {1e3 * d_inf:.1f} | {1e3 * d_rest:.1f} | "
            f"{a['iterations']} | {1e3 * a_it:.1f} | {1e3 * _val(a, 'setup_cpu_s'):.0f} | "
            f"{_val(d, 'cpu_s') / _val(a, 'cpu_s'):.0f}× |"
        )
    (out / "benchmark3d.md").write_text("\n".join(bench) + "\n")
    plot(rows, out)


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, ylabel in ((axes[0], "iterations", "iterations to rtol 1e-6"),
                            (axes[1], "cpu_s", "CPU time to solution [s] (incl. inference)")):
        for i, lab in enumerate(METHODS):  # converged runs only (stalled runs have no count)
            sel = [r for r in rows if r["method"] == lab and r["geometry"] == "obstacles101"
                   and str(r["converged"]) == "True" and np.isfinite(_val(r, key))]
            ns = sorted({int(r["n"]) for r in sel})
            if not ns:
                continue
            ys = [next(_val(r, key) for r in sel if int(r["n"]) == n) for n in ns]
            ax.plot(ns, ys, "o-", color=f"C{i}", label=lab)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (grid n³)")
        ax.set_ylabel(ylabel)
        ax.set_title("unseen obstacles (seed 101), one thread")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "iterations_vs_size_3d.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
