"""DCDM reproduction: DCDM vs CG, PETSc CG+ICC, PETSc CG+GAMG, deflated PCG and FCG(2)+Jacobi on
2D and 3D MAC pressure systems, at rtol 1e-6 on the relative true residual (one rule for every
solver), plus the per-iteration benchmark against PETSc CG+GAMG.

The models are the shipped ones (package data ``pdesolve/data/dcdm/dcdm{3,2}d/``), trained on
ONE 32³ box with 4 random obstacles, seed 0, and on ONE 128² obstacle box, seed 0. They are applied,
fully convolutionally, to unseen systems: the empty box, a box with a sphere (disk), boxes with
obstacles drawn with seeds 101 and 102, at the training size and larger. Iterations to rtol 1e-4
(the paper's tolerance) are read off the same residual histories. Wall times include network
inference and exclude training (reported apart, in the ``log.csv`` beside each model). One
thread for torch and PETSc; the benchmark uses process CPU times.

    python experiments/dcdm/run.py --dim 3 --sizes 32 64                 # ~20 CPU-min
    python experiments/dcdm/run.py --dim 3 --sizes 128 --geometries obstacles101 --append
    python experiments/dcdm/run.py --dim 2 --sizes 128 256               # 2D
    python experiments/dcdm/run.py --dim 3 --replot      # tables and plot from results3d.csv

Writes ``results/results{2,3}d.csv``, ``results/results{2,3}d_table.md``,
``results/benchmark{2,3}d.md`` and ``results/iterations_vs_size_{2,3}d.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.plotting import save_figure, subplots

HERE = Path(__file__).resolve().parent
METHODS = {
    "cg": ("petsc_cg", {"pc": "none"}),
    "icc_pcg": ("petsc_cg", {"pc": "icc"}),
    "gamg_pcg": ("petsc_cg", {"pc": "gamg"}),
    "deflated_pcg": ("deflated_cg", {"deflation": 16, "lanczos_steps": 64}),
    "fcg2_jacobi": ("fcg", {"pc": "jacobi", "memory": 2}),
    "dcdm_k2": ("dcdm", {"memory": 2, "maxiter": 300}),
    "dcdm_k2_safeguard": ("dcdm", {"memory": 2, "safeguard": True, "maxiter": 300}),
    "dcdm_full": ("dcdm", {"memory": None, "maxiter": 300}),
    "petsc_fcg2_dcdm": ("petsc_dcdm", {"ksp_type": "fcg", "memory": 2, "maxiter": 300}),
}
GEOMETRIES = {
    "empty": {"geometry": "empty"},
    "sphere": {"geometry": "sphere", "radius": 0.2},
    "obstacles101": {"geometry": "obstacles", "seed": 101},
    "obstacles102": {"geometry": "obstacles", "seed": 102},
}
CENTRES = {2: [0.5, 0.4], 3: [0.5, 0.5, 0.4]}
#: methods run by default in each dimension, and methods run only at some sizes (CPU time: the
#: PETSc route repeats dcdm_k2, full memory costs O(k n) per iteration)
DEFAULT_METHODS = {2: list(METHODS), 3: [m for m in METHODS if m != "fcg2_jacobi"]}
ONLY_AT = {2: {"petsc_fcg2_dcdm": {128}, "dcdm_full": {128, 256}},
           3: {"petsc_fcg2_dcdm": {32}, "dcdm_full": {32}}}  # fmt: skip
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
    res = pdesolve.solve(system, method=method, rtol=rtol, **{"maxiter": 20000, **kw})
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
    norms = res.residual_norms
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
    parser.add_argument("--dim", type=int, choices=(2, 3), default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--geometries", nargs="+", choices=list(GEOMETRIES), default=None)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--append", action="store_true", help="add rows to results{dim}d.csv")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--replot", action="store_true", help="only rewrite tables and plot")
    args = parser.parse_args()
    dim = args.dim
    sizes = args.sizes or ([32, 64] if dim == 3 else [128, 256])
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"results{dim}d.csv"
    rows = []
    if (args.append or args.replot) and csv_path.is_file():
        rows = read_csv(csv_path)
    if args.replot:
        write(rows, out, dim)
        return
    for n in sizes:
        for gname in args.geometries or list(GEOMETRIES):
            kw = dict(GEOMETRIES[gname])
            if kw["geometry"] == "sphere":
                kw["centre"] = CENTRES[dim]
            system = pdesolve.get_problem("pressure_poisson", dim=dim, n=n, **kw).discretize()
            for label in args.methods or DEFAULT_METHODS[dim]:
                if label in ONLY_AT[dim] and n not in ONLY_AT[dim][label]:
                    continue
                method, opts = METHODS[label]
                rows = [r for r in rows if (int(r["n"]), r["geometry"], r["method"])
                        != (n, gname, label)]  # fmt: skip
                row = {"n": n, "unknowns": system.size, "geometry": gname, "method": label,
                       **run_one(system, method, opts, args.rtol)}  # fmt: skip
                rows.append(row)
                print(f"n={n:4d} {gname:13s} {label:17s} its={row['iterations']:5d} "
                      f"(1e-4: {row['iterations_1e-4']}) conv={row['converged']} "
                      f"rel={row['true_rel_residual']:.2e} cpu={row['cpu_s']:.2f}s "
                      f"inference={row['inference_cpu_s']:.2f}s", flush=True)  # fmt: skip
                write(rows, out, dim)
    write(rows, out, dim)


def _val(r: dict, key: str) -> float:
    v = r[key]
    return float(v) if v not in ("", None, "None") else float("nan")


def _find(rows: list[dict], n: int, g: str, method: str) -> dict | None:
    return next((x for x in rows if (int(x["n"]), x["geometry"], x["method"]) == (n, g, method)),
                None)  # fmt: skip


def write(rows: list[dict], out: Path, dim: int) -> None:
    write_csv(out / f"results{dim}d.csv", rows, columns=FIELDS)
    power = "²" if dim == 2 else "³"
    labels = [m for m in METHODS if any(r["method"] == m for r in rows)]
    keys = sorted({(int(r["n"]), r["geometry"]) for r in rows})
    columns = ["n", "geometry", *labels]
    at_6, at_4 = [], []
    for n, g in keys:
        cells_6, cells_4 = {"n": f"{n}{power}", "geometry": g}, {"n": f"{n}{power}", "geometry": g}
        for lab in labels:
            r = _find(rows, n, g, lab)
            if r is None:
                cells_6[lab] = cells_4[lab] = "–"
                continue
            ok = str(r["converged"]) == "True"
            cells_6[lab] = f"{r['iterations']}{'' if ok else ' ✗'} ({_val(r, 'wall_s'):.2f})"
            v = r["iterations_1e-4"]
            cells_4[lab] = f">{r['iterations']} ✗" if v in (None, "", "None") else str(v)
        at_6.append(cells_6)
        at_4.append(cells_4)
    (out / f"results{dim}d_table.md").write_text(
        "### rtol = 1e-6 (true residual): iterations (wall time incl. inference, s)\n\n"
        + markdown_table(at_6, columns=columns)
        + "\n### rtol = 1e-4 (the paper's tolerance), from the same residual histories: "
        "iterations\n\n" + markdown_table(at_4, columns=columns))  # fmt: skip
    bench = []
    for n, g in keys:
        a = _find(rows, n, g, "gamg_pcg")
        if a is None or not np.isfinite(_val(a, "setup_cpu_s")):
            continue
        for variant in ("dcdm_k2", "dcdm_k2_safeguard"):
            d = _find(rows, n, g, variant)
            if d is None or not np.isfinite(_val(d, "cpu_s")):
                continue
            ok = "" if str(d["converged"]) == "True" else " ✗"
            d_its, a_its = max(int(d["iterations"]), 1), max(int(a["iterations"]), 1)
            d_inf = _val(d, "inference_cpu_s") / d_its
            d_rest = (_val(d, "cpu_s") - _val(d, "inference_cpu_s")) / d_its
            a_it = (_val(a, "cpu_s") - _val(a, "setup_cpu_s")) / a_its
            ratio = _val(d, "cpu_s") / _val(a, "cpu_s")
            bench.append({
                "n": f"{n}{power}", "geometry": g, "DCDM variant": variant,
                "DCDM its": f"{d['iterations']}{ok}", "DCDM ms/it: inference": f"{1e3 * d_inf:.1f}",
                "rest": f"{1e3 * d_rest:.1f}", "GAMG its": a["iterations"],
                "GAMG ms/it": f"{1e3 * a_it:.1f}",
                "GAMG setup ms": f"{1e3 * _val(a, 'setup_cpu_s'):.0f}",
                "DCDM / GAMG CPU time to solution": f"{'>' if ok else ''}{ratio:.0f}×",
            })  # fmt: skip
    (out / f"benchmark{dim}d.md").write_text(
        f"Machine: {platform.processor() or platform.machine()}, one thread (torch and "
        "PETSc), CPU shared with other jobs: times are process CPU times (robust to the load; "
        f"wall times in results{dim}d.csv), in ms.\n\n" + markdown_table(bench, columns=BENCH))
    plot(rows, out, dim)


#: the columns of benchmark{dim}d.md
BENCH = ["n", "geometry", "DCDM variant", "DCDM its", "DCDM ms/it: inference", "rest",
         "GAMG its", "GAMG ms/it", "GAMG setup ms", "DCDM / GAMG CPU time to solution"]


def plot(rows: list[dict], out: Path, dim: int) -> None:
    fig, axes = subplots(1, 2, figsize=(11, 4))
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
        ax.set_xlabel(f"n (grid n{'²' if dim == 2 else '³'})")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{dim}D, unseen obstacles (seed 101), one thread")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)
    save_figure(fig, out / f"iterations_vs_size_{dim}d.png", dpi=120)


if __name__ == "__main__":
    main()
