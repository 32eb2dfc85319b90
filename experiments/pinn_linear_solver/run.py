"""PINNs as linear solvers (Markidis 2021): pure PINN, transfer learning, the hybrid
smoother + corrector solver, and PETSc CG (none/jacobi/icc/gamg) on 2-D Poisson systems.

For each source (``polynomial``: ``u = x²(1-x)y²(1-y)``; ``multifrequency``: modes 1, 4, 16) on an
``n × n`` grid (default 128²), all at ``rtol`` (default 1e-6) on the true relative residual
``||b - A x|| / ||b||``:

* PETSc KSPCG with pc none / jacobi / icc / gamg: iterations, setup and solve time, error;
* the hybrid solver: Gauss–Seidel sweeps + coarse-grid correction (classical reference), + PINN
  correction (online training; its training *is* part of the solve time), and the plain smoother;
* the hybrid with a transfer-learned PINN's initial guess;
* a pure PINN (cold start), and the PINN warm-started from a neighbouring problem (transfer
  learning; pre-training time reported apart): steps/time to a target error, final error, the
  true relative residual of its grid values;
* the F-principle: error of the cold PINN on the multi-frequency problem, split into radial
  DFT bands per logged step (``fprinciple.csv``/``.png``).

Writes ``results/{results.csv, transfer.csv, fprinciple.csv, *.png, results.md}``. Single
threaded (torch and PETSc). ``python experiments/pinn_linear_solver/run.py [--quick] [--n 128]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import pdesolve
from pdesolve.train.pinn_trainer import PINNTrainer
from pdesolve.train.spectral import SpectralMonitor, band_labels, plot_bands, write_csv

HERE = Path(__file__).resolve().parent
SOURCES = {
    "polynomial": {"solution": "polynomial"},
    "multifrequency": {"solution": "multifrequency", "modes": (1, 4, 16)},
}
#: PINN cases: target problem and the neighbouring problem (another source term) it is
#: warm-started from; the third is the pair of tests/solvers/test_hybrid.py, PINN-only
PINN_CASES = {
    "polynomial": (SOURCES["polynomial"], {"solution": "sine", "frequency": 1}),
    "multifrequency": (SOURCES["multifrequency"],
                       {"solution": "multifrequency", "modes": (1, 4)}),
    "multifrequency_1_2": ({"solution": "multifrequency", "modes": (1, 2)},
                           {"solution": "sine", "frequency": 1}),
}
PINN = {"model": {"name": "mlp", "width": 32, "depth": 3, "activation": "tanh"},
        "optimizer": {"name": "adam", "lr": 5e-3}, "batch": 1024, "schedule": "none",
        "test_points": 4000, "progress": False, "seed": 0}  # fmt: skip
PINN_CORRECTOR = {"width": 32, "depth": 3, "steps": 10, "first_steps": 200, "batch": 512,
                  "lr": 5e-3, "seed": 0}  # fmt: skip


def rel_res(system, x) -> float:
    return float(np.linalg.norm(system.b - system.A @ x) / system.b_norm)


def row(source, n, method, result, system, **extra) -> dict:
    err = system.error_norms(result.x)
    out = {
        "source": source, "n": n, "method": method, "converged": bool(result.converged),
        "iterations": result.iterations, "rel_residual": rel_res(system, result.x),
        "setup_time": result.info.get("setup_time", float("nan")),
        "solve_time": result.info.get("solve_time", float("nan")),
        "train_time": 0.0, "max_error": err["max"], "relative_l2_error": err["relative_l2"],
    }
    out.update(extra)
    return out


def steps_to(history, tol) -> tuple[float, float]:
    for s, e, t in zip(history["step"], history["relative_l2"], history["time"], strict=True):
        if e <= tol:
            return s, t
    return float("nan"), float("nan")


def pinn_runs(source, n, steps, pre_steps, log_every, workdir, rows, transfer, spectral):
    """Cold PINN (with the F-principle monitor), neighbour pre-training, warm PINN."""
    target, near = PINN_CASES[source]
    problem = pdesolve.get_problem("poisson", dim=2, n=n, **target)
    system = problem.discretize()
    points = np.asarray(system.geometry.points)
    monitor = SpectralMonitor(points, system.exact)
    cold = PINNTrainer(problem, steps=steps, log_every=log_every, callback=monitor, **PINN)
    hc = cold.fit()
    x_cold = cold.evaluate(points)
    neighbour = pdesolve.get_problem("poisson", dim=2, n=n, **near)
    ckpt_dir = Path(workdir) / source
    pre = PINNTrainer(neighbour, steps=pre_steps, log_every=log_every, output_dir=ckpt_dir,
                      **PINN)
    pre.fit()
    ckpt = ckpt_dir / "checkpoint.pt"
    warm = PINNTrainer(problem, steps=steps, log_every=log_every, init_from=ckpt, **PINN)
    hw = warm.fit()
    x_warm = warm.evaluate(points)
    for label, trainer, x, pre_time in (("pinn_cold", cold, x_cold, 0.0),
                                        ("pinn_transfer", warm, x_warm, pre.elapsed)):
        err = system.error_norms(x)
        rows.append({
            "source": source, "n": n, "method": label, "converged": False,
            "iterations": trainer.step, "rel_residual": rel_res(system, x), "setup_time": 0.0,
            "solve_time": 0.0, "train_time": trainer.elapsed, "pretrain_time": pre_time,
            "max_error": err["max"], "relative_l2_error": err["relative_l2"],
        })  # fmt: skip
    best_cold = min(hc["relative_l2"])
    for tol in sorted({0.2, 0.1, 0.05, 0.02, 0.01}, reverse=True):
        sc, tc = steps_to(hc, tol)
        sw, tw = steps_to(hw, tol)
        transfer.append({"source": source, "neighbour": str(near),
                         "target_rel_l2": tol, "cold_steps": sc, "cold_time": tc,
                         "warm_steps": sw, "warm_time": tw, "pretrain_steps": pre_steps,
                         "pretrain_time": pre.elapsed, "best_cold_rel_l2": best_cold,
                         "best_warm_rel_l2": min(hw["relative_l2"])})  # fmt: skip
    spectral[source] = monitor
    return ckpt


def write_rows(path, rows) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4e}" if isinstance(v, float) else v) for k, v in r.items()})


def plot_histories(histories, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = sorted({s for s, _ in histories})
    fig, axes = plt.subplots(1, len(sources), figsize=(6 * len(sources), 4), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        for (s, label), (times, res) in histories.items():
            if s == source:
                ax.semilogy(times, res, label=label)
        ax.set_xlabel("wall time [s] (solve; hybrid-PINN includes its online training)")
        ax.set_ylabel("true relative residual")
        ax.set_title(source)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timed_history(result) -> tuple[np.ndarray, np.ndarray]:
    norms = np.asarray(result.residual_norms)
    t = np.linspace(0.0, result.info.get("solve_time", result.wall_time), len(norms))
    return t, norms / norms[0] if norms[0] > 0 else norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64² grid, short training")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = 64 if args.quick else args.n
    steps, pre_steps, log_every = (300, 150, 25) if args.quick else (2000, 1000, 50)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    transfer: list[dict] = []
    spectral: dict[str, SpectralMonitor] = {}
    histories: dict = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        for source, params in SOURCES.items():
            system = pdesolve.get_problem("poisson", dim=2, n=n, **params).discretize()
            for pc in ("none", "jacobi", "icc", "gamg"):
                pdesolve.solve(system, method="petsc_cg", pc=pc, rtol=args.rtol)  # warm-up
                res = pdesolve.solve(system, method="petsc_cg", pc=pc, rtol=args.rtol,
                                     true_residual_history=True)
                rows.append(row(source, n, f"petsc_cg_{pc}", res, system))
                histories[(source, f"petsc_cg_{pc}")] = timed_history(res)
            hybrids = {
                "hybrid_coarse_grid": {"corrector": "coarse_grid", "nu": 2},
                "hybrid_pinn": {"corrector": "pinn", "nu": 4, "corrector_options": PINN_CORRECTOR,
                                "maxiter": 2000},
                "gauss_seidel_only": {"corrector": None, "nu": 4, "maxiter": 200},
            }  # fmt: skip
            for label, kw in hybrids.items():
                kw = {"maxiter": 500, **kw}
                res = pdesolve.solve(system, method="hybrid", rtol=args.rtol, **kw)
                alphas = res.info["alphas"]
                rows.append(row(source, n, label, res, system, nu=kw["nu"],
                                correct_time=res.info["correct_time"],
                                mean_alpha=float(np.mean(alphas)) if alphas else float("nan")))
                histories[(source, label)] = timed_history(res)
                print(f"{source} {label}: {res.iterations} its, {res.wall_time:.2f}s, "
                      f"converged={res.converged}", flush=True)
            ckpt = pinn_runs(source, n, steps, pre_steps, log_every, workdir, rows, transfer,
                             spectral)
            for label, kw in {"hybrid_coarse_grid+pinn_x0": {"corrector": "coarse_grid", "nu": 2},
                              "hybrid_pinn+pinn_x0": {"corrector": "pinn", "nu": 4,
                                                      "corrector_options": PINN_CORRECTOR,
                                                      "maxiter": 2000}}.items():  # fmt: skip
                # initial guess: the *neighbour's* PINN (transfer, no training on the target)
                res = pdesolve.solve(system, method="hybrid", rtol=args.rtol,
                                     initial_checkpoint=str(ckpt), **kw)
                rows.append(row(source, n, label, res, system, nu=kw["nu"],
                                correct_time=res.info["correct_time"]))
            print(f"{source} done at {time.perf_counter() - start:.0f}s", flush=True)
        pinn_runs("multifrequency_1_2", n, steps, pre_steps, log_every, workdir, rows, transfer,
                  spectral)
    write_rows(out / "results.csv", rows)
    write_rows(out / "transfer.csv", transfer)
    plot_histories(histories, out / "residual_vs_time.png")
    if "multifrequency" in spectral:
        mon = spectral["multifrequency"]
        write_csv(mon, out / "fprinciple.csv")
        plot_bands(mon, out / "fprinciple.png",
                   title=f"PINN error per DFT band, multifrequency (1,4,16), {n}²")
    write_report(out, rows, transfer, spectral, n, args, time.perf_counter() - start)


def write_report(out, rows, transfer, spectral, n, args, total) -> None:
    lines = [f"# PINNs as linear solvers — results ({n}² grid, rtol {args.rtol:g} on the true "
             "relative residual)", "",
             f"Generated by `python experiments/pinn_linear_solver/run.py"
             f"{' --quick' if args.quick else ''}"
             f"{f' --n {n}' if n != 128 and not args.quick else ''}"
             f"` in {total:.0f} s (single thread, CPU). Times "
             "in seconds; `train` = offline PINN training (apart from solve time); the hybrid "
             "PINN corrector trains online, so its training is inside `solve`.", "",
             "| source | method | converged | its/steps | rel. residual | setup | solve | train "
             "| max error | rel. L2 error |", "|---" * 10 + "|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['source']} | {r['method']} | {r['converged']} | {r['iterations']} | "
            f"{r['rel_residual']:.2e} | {r['setup_time']:.3f} | {r['solve_time']:.3f} | "
            f"{r['train_time']:.1f} | {r['max_error']:.2e} | {r['relative_l2_error']:.2e} |")
    lines += ["", "## Transfer learning (steps / training seconds to a relative L2 error on the "
              "test set; pre-training on the neighbouring source reported apart)", "",
              "| source | neighbour | target | cold steps | cold s | warm steps | warm s | "
              "pre-train s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in transfer:
        lines.append(f"| {t['source']} | {t['neighbour']} | {t['target_rel_l2']} | "
                     f"{t['cold_steps']} | {t['cold_time']:.1f} | {t['warm_steps']} | "
                     f"{t['warm_time']:.1f} | {t['pretrain_time']:.1f} |")
    lines += ["", "## On par with PETSc CG?", ""]
    by = {(r["source"], r["method"]): r for r in rows}
    for source in SOURCES:
        if (source, "petsc_cg_none") not in by:
            continue
        cg = [by[(source, f"petsc_cg_{pc}")] for pc in ("none", "jacobi", "icc", "gamg")]
        best = min(cg, key=lambda r: r["setup_time"] + r["solve_time"])
        best_t = best["setup_time"] + best["solve_time"]
        plain = by[(source, "petsc_cg_none")]
        plain_t = plain["setup_time"] + plain["solve_time"]
        for label in ("hybrid_pinn", "hybrid_coarse_grid"):
            h = by[(source, label)]
            ht = h["setup_time"] + h["solve_time"]
            status = "reached" if h["converged"] else "did NOT reach"
            lines.append(
                f"- {source}, {label}: {status} rtol in {h['iterations']} outer iterations, "
                f"{ht:.3f} s = {ht / plain_t:.1f}× PETSc CG (no pc, {plain_t:.3f} s) and "
                f"{ht / best_t:.1f}× the fastest PETSc CG ({best['method']}, {best_t:.3f} s).")
    if "multifrequency" in spectral:
        rel = spectral["multifrequency"].relative()
        labels = band_labels(spectral["multifrequency"].edges)
        lines += ["", "## F-principle (cold PINN, multifrequency; error per DFT band relative "
                  "to the same band of the exact solution; `nan`: the solution has no content "
                  "there — see fprinciple.csv for absolute band errors)", "",
                  "| step | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        steps = spectral["multifrequency"].steps
        for i in sorted({0, len(steps) // 8, len(steps) // 4, len(steps) // 2, len(steps) - 1}):
            lines.append(f"| {steps[i]} | " + " | ".join(f"{v:.2e}" for v in rel[i]) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
