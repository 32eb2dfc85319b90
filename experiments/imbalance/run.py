"""Procrustean training reproduction: imbalanced digits, and troubled-cell detectors for Burgers.

Writes under experiments/imbalance/results/ (see README.md there for the commands and a reading):

* ``digits_runs.csv`` (every run), ``digits.md``/``.csv`` (mean ± std over seeds),
  ``digits_per_class.md`` (per-class test accuracy, step imbalance), ``digits_dynamics.md``
  (under-fit / over-fit measures), ``digits_curves.png`` and ``digits_bars.png``;
* ``troubled_cells.md``/``.csv`` (detector metrics per strategy and test source),
  ``troubled_solver.md``/``.csv`` (detectors inside the finite-volume Burgers solver against
  minmod everywhere, the minmod-TVB marker and no limiting) and ``troubled_solver.png``.

``IMBALANCE_RESULTS=<folder>`` writes elsewhere (e.g. for a quick trial run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pdesolve.discretize.finite_volume import FVGrid, burgers_sine_exact, solve_burgers
from pdesolve.io import write_table
from pdesolve.plotting import save_figure, subplots
from pdesolve.train.study import digits_study, summarize, troubled_cell_study
from pdesolve.train.troubled_cells import VISCOSITY, detector_indicator

RESULTS = Path(os.environ.get("IMBALANCE_RESULTS", Path(__file__).resolve().parent / "results"))
STRATEGIES = ["erm", "reweight", "resample", "mixup", "logit_adjust", "procrustean",
              "procrustean+logit_adjust"]  # fmt: skip
MIXING = {"mix_probability": 1.0, "mix_min_weight": 0.0}


def _load() -> str:
    try:
        return "load average (1/5/15 min) " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unavailable"


def digits(seeds: list[int], epochs: int) -> dict:
    t0 = time.perf_counter()
    rows, hist = digits_study(("step", "long_tailed"), (10, 20), seeds, STRATEGIES,
                              train={"epochs": epochs, **MIXING}, keep_history=True,
                              with_validation=True)  # fmt: skip
    wall = time.perf_counter() - t0
    flat = [{k: v for k, v in r.items() if k != "per_class"}
            | {f"class{c}": a for c, a in enumerate(r["per_class"])} for r in rows]  # fmt: skip
    write_table(RESULTS / "digits_runs", flat)
    summary = summarize(rows, ("kind", "ratio", "strategy"),
                        ("balanced_accuracy", "major_accuracy", "minor_accuracy"))  # fmt: skip
    table = []
    for s in summary:
        table.append({
            "imbalance": f"{s['kind']} {s['ratio']:g}", "strategy": s["strategy"],
            "balanced acc.": f"{s['balanced_accuracy']:.4f} ± {s['balanced_accuracy_std']:.4f}",
            "major": f"{s['major_accuracy']:.3f}", "minor": f"{s['minor_accuracy']:.3f}",
            "seeds": s["seeds"],
        })  # fmt: skip
    write_table(RESULTS / "digits", table)
    per_class = []
    for kind, ratio in (("step", 10.0), ("step", 20.0)):
        for strategy in STRATEGIES:
            acc = np.mean([r["per_class"] for r in rows if (r["kind"], r["ratio"],
                           r["strategy"]) == (kind, ratio, strategy)], axis=0)  # fmt: skip
            per_class.append({"imbalance": f"{kind} {ratio:g}", "strategy": strategy}
                             | {f"digit {c}": f"{a:.2f}" for c, a in enumerate(acc)})  # fmt: skip
    write_table(RESULTS / "digits_per_class", per_class)
    write_table(RESULTS / "digits_dynamics", dynamics(hist, seeds))
    plot_curves(hist, seeds)
    plot_bars(summary)
    return {"runs": len(rows), "wall_seconds": wall,
            "cpu_seconds": float(sum(r["cpu_seconds"] for r in rows))}  # fmt: skip


def _major_minor(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([h[key] for h in history])
    return v[:, :5].mean(1), v[:, 5:].mean(1)  # digits 0-4 major, 5-9 minor (step)


def dynamics(hist: dict, seeds: list[int]) -> list[dict]:
    """Under-fit then over-fit, measured per strategy on step imbalance (mean over seeds)."""
    out = []
    for ratio in (10.0, 20.0):
        for strategy in STRATEGIES:
            runs = [hist["step", ratio, strategy, s] for s in seeds]
            m = {"first10_gap_clean": [], "first10_gap_batch": [], "epoch_minor_half": [],
                 "grad_ratio": [], "final_train_minor": [], "final_test_minor": []}  # fmt: skip
            for h in runs:
                maj, mnr = _major_minor(h, "train_accuracy")
                bmaj, bmnr = _major_minor(h, "batch_accuracy")
                gmaj, gmnr = _major_minor(h, "grad_norm")
                _, vmnr = _major_minor(h, "val_accuracy")
                m["first10_gap_clean"].append(np.mean(maj[:10] - mnr[:10]))
                m["first10_gap_batch"].append(np.mean(bmaj[:10] - bmnr[:10]))
                above = np.flatnonzero(mnr >= 0.5)
                m["epoch_minor_half"].append(above[0] + 1 if len(above) else np.nan)
                m["grad_ratio"].append(np.mean(gmnr[5:] / gmaj[5:]))
                m["final_train_minor"].append(mnr[-1])
                m["final_test_minor"].append(vmnr[-1])
            out.append({"imbalance": f"step {ratio:g}", "strategy": strategy}
                       | {k: float(np.mean(v)) for k, v in m.items()})  # fmt: skip
    return out


def plot_curves(hist: dict, seeds: list[int]) -> None:
    fig, axes = subplots(2, 4, figsize=(16, 7), sharex=True)
    for row, ratio in enumerate((10.0, 20.0)):
        for strategy, style in (("erm", "-"), ("procrustean", "--")):
            curves = {key: [_major_minor(hist["step", ratio, strategy, s], key) for s in seeds]
                      for key in ("train_accuracy", "batch_accuracy", "val_accuracy",
                                  "grad_norm")}  # fmt: skip
            for ax, (key, title) in zip(axes[row], (
                ("train_accuracy", "training accuracy (unmixed, end of epoch)"),
                ("batch_accuracy", "training accuracy (batches as trained)"),
                ("val_accuracy", "test accuracy"),
                ("grad_norm", "mean feature-gradient norm"),
            ), strict=True):  # fmt: skip
                maj = np.mean([c[0] for c in curves[key]], axis=0)
                mnr = np.mean([c[1] for c in curves[key]], axis=0)
                epochs = np.arange(1, len(maj) + 1)
                ax.plot(epochs, maj, style, color="C0", label=f"{strategy} major")
                ax.plot(epochs, mnr, style, color="C3", label=f"{strategy} minor")
                ax.set_title(f"{title}\nstep, ratio {ratio:g}", fontsize=9)
                if key == "grad_norm":
                    ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    fig.suptitle(f"digits, MLP 64-64-64-10, mean of seeds {seeds}: ERM (solid) vs Procrustean "
                 "feature mixing (dashed); major = digits 0-4, minor = 5-9")  # fmt: skip
    save_figure(fig, RESULTS / "digits_curves.png", dpi=110)


def plot_bars(summary: list[dict]) -> None:
    settings = [("step", 10.0), ("step", 20.0), ("long_tailed", 10.0), ("long_tailed", 20.0)]
    fig, ax = subplots(figsize=(12, 4))
    width = 0.8 / len(STRATEGIES)
    for k, strategy in enumerate(STRATEGIES):
        vals = [next(s for s in summary if (s["kind"], s["ratio"], s["strategy"]) ==
                     (kind, ratio, strategy)) for kind, ratio in settings]  # fmt: skip
        ax.bar(np.arange(4) + k * width, [v["balanced_accuracy"] for v in vals], width,
               yerr=[v["balanced_accuracy_std"] for v in vals], label=strategy)  # fmt: skip
    ax.set_xticks(np.arange(4) + 0.4 - width / 2, [f"{k} {r:g}" for k, r in settings])
    ax.set_ylim(0.7, 1.0)
    ax.set_ylabel("balanced test accuracy")
    ax.legend(fontsize=8, ncol=4)
    save_figure(fig, RESULTS / "digits_bars.png", dpi=110)


def _solver_cases(n_random: int) -> list[dict]:
    rng = np.random.default_rng(2024)
    cases = [{"name": "-sin(pi x), nu=0", "amp": 1.0, "offset": 0.0, "shift": 0.0, "nu": 0.0},
             {"name": "-sin(pi x), nu=0.01/pi", "amp": 1.0, "offset": 0.0, "shift": 0.0,
              "nu": VISCOSITY}]  # fmt: skip
    for k in range(n_random):
        cases.append({"name": f"random {k}", "amp": rng.uniform(0.5, 1.5),
                      "offset": rng.uniform(-0.5, 0.5), "shift": rng.uniform(-1, 1),
                      "nu": 0.0})  # fmt: skip
    return cases


def troubled(seeds: list[int], epochs: int, n_cells: int, t_final: float, n_random: int) -> dict:
    t0 = time.perf_counter()
    rows, nets = troubled_cell_study(seeds, STRATEGIES, train={"epochs": epochs, **MIXING})
    summary = summarize(rows, ("test", "strategy"),
                        ("recall", "precision", "f1", "balanced_accuracy"))  # fmt: skip
    cells = {(r["test"]): (r["troubled"], r["cells"]) for r in rows}
    table = [{"test cells": f"{s['test']} ({cells[s['test']][0]} troubled / "
                            f"{cells[s['test']][1]})", "strategy": s["strategy"],
              "recall": f"{s['recall']:.3f} ± {s['recall_std']:.3f}",
              "precision": f"{s['precision']:.3f} ± {s['precision_std']:.3f}",
              "F1": f"{s['f1']:.3f}", "balanced acc.": f"{s['balanced_accuracy']:.4f}"}
             for s in summary]  # fmt: skip
    write_table(RESULTS / "troubled_cells", table)
    study_wall = time.perf_counter() - t0
    # detectors inside the finite-volume solver
    grid = FVGrid(-1.0, 1.0, n_cells)
    indicators = {"minmod everywhere": "all", "no limiting": "none",
                  "TVB M=0 (minmod marker)": ("tvb", 0.0), "TVB M=10": ("tvb", 10.0),
                  "TVB M=100": ("tvb", 100.0)}  # fmt: skip
    for strategy in ("erm", "reweight", "logit_adjust", "procrustean",
                     "procrustean+logit_adjust"):  # fmt: skip
        indicators[f"detector: {strategy}"] = detector_indicator(nets[strategy, seeds[0]])
    solver_rows, profiles = [], {}
    for case in _solver_cases(n_random):
        amp, c, s, nu = case["amp"], case["offset"], case["shift"], case["nu"]

        def u0_fn(x, amp=amp, c=c, s=s):
            return c - amp * np.sin(np.pi * (x - s))

        if nu == 0.0:
            ref = grid.averages(
                lambda x, amp=amp, c=c, s=s: burgers_sine_exact(x, t_final, amp, s, c), points=16
            )
        else:  # a fine-grid run (16x the cells), averaged onto the grid
            fine = FVGrid(-1.0, 1.0, 16 * n_cells)
            ref = solve_burgers(fine.averages(u0_fn), fine, t_final, nu=nu).u
            ref = ref.reshape(n_cells, 16).mean(axis=1)
        for label, ind in indicators.items():
            kind, m = ind if isinstance(ind, tuple) else (ind, 0.0)
            res = solve_burgers(grid.averages(u0_fn), grid, t_final, nu=nu, indicator=kind,
                                tvb_m=m)  # fmt: skip
            solver_rows.append({
                "case": case["name"], "indicator": label,
                "L1 error": float(np.abs(res.u - ref).mean() * 2.0),
                "overshoot": float(max(res.u.max() - ref.max(), ref.min() - res.u.min(), 0.0)),
                "limited cells %": 100 * res.limited_fraction,
            })  # fmt: skip
            if case["name"].startswith("-sin") and nu == 0.0:
                profiles[label] = res.u
        if case["name"].startswith("-sin") and nu == 0.0:
            profiles["exact"] = ref
    write_table(RESULTS / "troubled_solver_runs", solver_rows)
    agg = []
    for label in indicators:
        rs = [r for r in solver_rows if r["indicator"] == label]
        canon = [r for r in rs if r["case"].startswith("-sin")]
        rand = [r for r in rs if r["case"].startswith("random")]
        rand_l1 = np.mean([r["L1 error"] for r in rand])
        limited = np.mean([r["limited cells %"] for r in rs])
        agg.append({"indicator": label,
                    "L1 -sin nu=0": f"{canon[0]['L1 error']:.2e}",
                    "L1 -sin nu=0.01/pi": f"{canon[1]['L1 error']:.2e}",
                    f"L1 mean of {len(rand)} random": f"{rand_l1:.2e}",
                    "max overshoot": f"{max(r['overshoot'] for r in rs):.2e}",
                    "limited cells % (mean)": f"{limited:.1f}"})  # fmt: skip
    write_table(RESULTS / "troubled_solver", agg)
    plot_solver(grid, profiles, t_final)
    return {"study_wall_seconds": study_wall, "wall_seconds": time.perf_counter() - t0}


def plot_solver(grid: FVGrid, profiles: dict, t_final: float) -> None:
    fig, axes = subplots(1, 2, figsize=(13, 4.5))
    for ax, window in zip(axes, ((-1, 1), (-0.15, 0.15)), strict=True):
        ax.plot(grid.centers, profiles["exact"], "k-", lw=2, label="exact (cell averages)")
        for label in ("no limiting", "minmod everywhere", "TVB M=10", "detector: erm",
                      "detector: procrustean"):  # fmt: skip
            ax.plot(grid.centers, profiles[label], ".-", ms=4, lw=0.8, label=label)
        ax.set_xlim(*window)
        ax.set_xlabel("x")
    axes[0].set_ylabel("u")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Burgers, u(x,0) = -sin(pi x), {grid.n} cells, t = {t_final}: where to limit")
    save_figure(fig, RESULTS / "troubled_solver.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=["digits", "troubled"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60, help="digits epochs")
    parser.add_argument("--cell-epochs", type=int, default=30, help="troubled-cell epochs")
    parser.add_argument("--cells", type=int, default=100, help="cells of the solver runs")
    parser.add_argument("--t-final", type=float, default=0.8)
    parser.add_argument("--random-cases", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_before": _load(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "args": vars(args)}  # fmt: skip
    if "digits" in args.only:
        info["digits"] = digits(args.seeds, args.epochs)
    if "troubled" in args.only:
        info["troubled"] = troubled(args.seeds, args.cell_epochs, args.cells, args.t_final,
                                    args.random_cases)  # fmt: skip
    info["load_after"] = _load()
    name = "run_info_" + "_".join(args.only) + ".json"
    (RESULTS / name).write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
