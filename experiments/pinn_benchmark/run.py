"""PINN benchmark: Burgers, Allen–Cahn, 2D heat and the shape-domain Poisson problem.

For every problem, activation (tanh, sin, RAF) and optimiser schedule (Adam alone; Adam for half
the budget, then self-scaled BFGS on a fixed batch for the other half) one seeded run is trained
for a fixed CPU-time budget (``--budget`` CPU seconds of training steps, measured with the
process's CPU time, one torch thread; wall seconds are reported beside them); the relative L2
error is measured on the problem's fixed test grid (time-dependent problems) or a seeded test
set, against its exact solution or its own classical reference (Fourier spectral ETDRK4 for
Burgers and Allen–Cahn, P1 FEM for the shape domain).

Writes ``results/cells.csv``, ``results/cells.md`` (one row per run) and one ``metrics.csv``,
``training.png`` and ``solution.png`` per run under ``results/runs/<problem>_<act>_<opt>/``.

    OMP_NUM_THREADS=1 python experiments/pinn_benchmark/run.py --budget 60

``--marching K`` trains time-dependent problems by time-marching instead (one network per time
window, :class:`pdesolve.train.pinn.marching.MarchingTrainer`; the budget is the whole run's,
split over the windows; ``results/<tag>.csv`` then has the per-window errors).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.train.pinn import PINNTrainer
from pdesolve.train.pinn.marching import MarchingTrainer

HERE = Path(__file__).resolve().parent

PROBLEMS = {
    "burgers": ({}, {"width": 20, "depth": 4},
                {"batch": 2000, "sampling": "uniform", "test_grid": [201, 101]},
                {"adam_fraction": 0.3, "rar": {"every": 250, "candidates": 10_000, "points": 100},
                 "qn_batch": {"points": 4000, "resample_every": 500}}),
    "allen_cahn": ({}, {"width": 32, "depth": 4},
                   {"batch": 2000, "sampling": "uniform", "fourier_modes": 4,
                    "causal": {"segments": 32, "epsilon": 1.0}, "test_grid": [201, 101]},
                   {"adam_fraction": 0.5, "rar": None, "qn_batch": None}),
    "heat2d": ({"dim": 2}, {"width": 32, "depth": 3},
               {"batch": 2000, "sampling": "uniform", "constraint": "hard",
                "test_grid": [33, 11]},
               {"adam_fraction": 0.2, "rar": None, "qn_batch": None}),
    "poisson_holes": ({"mesh_size": 0.005}, {"width": 32, "depth": 4},
                      {"batch": 2000, "sampling": "uniform", "constraint": "hard",
                       "test_points": 10_000},
                      {"adam_fraction": 0.1, "rar": None, "qn_batch": None}),
}  # fmt: skip
# each problem's schedule defaults (the Adam share of the budget before the quasi-Newton
# phase, residual-based refinement during Adam, the quasi-Newton batch: None = the 2000 points
# plus the refinement points, fixed), from the longer runs in the README
NAMES = {"heat2d": "heat"}
ACTIVATIONS = ("tanh", "sin", "raf")
SCHEDULES = ("adam", "adam+ssbfgs")


def quasi_newton_schedule(schedule: str) -> bool:
    return schedule != "adam"


class Budget:
    """A callback that ends the Adam phase (or the run) once the training CPU time is spent
    (``trainer.cpu_elapsed``: the process's CPU seconds inside training steps, so that the
    budget does not depend on how loaded the shared machine is)."""

    def __init__(self, seconds: float, quasi_newton: bool, adam_fraction: float = 0.5) -> None:
        self.seconds, self.quasi_newton = seconds, quasi_newton
        self.adam_part = seconds * adam_fraction if quasi_newton else seconds

    def __call__(self, trainer: PINNTrainer) -> None:
        cfg, h = trainer.config, trainer.history
        if trainer.step % 500 == 0:  # a progress line on stderr
            print(f"step {trainer.step} {h['phase'][-1]} loss {h['train_loss'][-1]:.3e} "
                  f"error {h['relative_l2'][-1]:.3e} cpu {trainer.cpu_elapsed:.0f} s",
                  file=sys.stderr, flush=True)
        if trainer.step < cfg["steps"] and trainer.cpu_elapsed >= self.adam_part:
            cfg["steps"] = trainer.step  # switch to the quasi-Newton phase (or finish)
            if not self.quasi_newton:
                trainer.reason = "time"
        elif trainer.cpu_elapsed >= self.seconds:
            trainer.reason = "time"


def run_cell(name: str, activation: str, schedule: str, budget: float, out: Path,
             seed: int = 0, adam_fraction: float = 0.5, log_every: int = 5,
             rar: dict | None = None, qn_batch: dict | None = None) -> dict:
    params, net, opts, _ = PROBLEMS[name]
    if rar:
        opts = {**opts, "rar": rar}
    if qn_batch and quasi_newton_schedule(schedule):
        opts = {**opts, "qn_batch": qn_batch}
    problem = pdesolve.get_problem(NAMES.get(name, name), **params)
    quasi_newton = quasi_newton_schedule(schedule)
    model = {"name": "mlp", "activation": activation, **net}
    if activation == "raf":
        model["activation_options"] = {"gaussian_width": 0.5}
    stop = Budget(budget, quasi_newton, adam_fraction)
    folder = out / f"{name}_{activation}_{schedule}" if seed == 0 else \
        out / f"{name}_{activation}_{schedule}_seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    trainer = PINNTrainer(problem, model=model, optimizer={"name": "adam", "lr": 1e-3},
                          steps=10**7, bfgs_steps=10**7 if quasi_newton else 0,
                          bfgs_options={"variant": "ssbfgs"}, log_every=log_every, seed=seed,
                          progress=False, callback=stop, output_dir=folder,
                          monitor_points=500, **opts)  # fmt: skip
    setup = time.perf_counter() - t0
    load = os.getloadavg()[0]
    trainer.fit()
    h = trainer.history
    adam_steps = min(trainer.config["steps"], trainer.step)
    # the history's wall clock at the end of the Adam phase, for the Adam step rate
    i = next((k for k, s in enumerate(h["step"]) if s >= adam_steps), len(h["step"]) - 1)
    row = {
        "problem": name, "activation": activation, "optimiser": schedule, "seed": seed,
        "adam_fraction": adam_fraction if quasi_newton else 1.0,
        "rar": "{every}/{candidates}/{points}".format(**rar) if rar else "none",
        "qn_batch": describe_qn(trainer.config.get("qn_batch")) if quasi_newton else "",
        "relative_l2": trainer.relative_l2(), "train_cpu_s": round(trainer.cpu_elapsed, 1),
        "train_wall_s": round(trainer.elapsed, 1), "adam_steps": adam_steps,
        "qn_steps": trainer.step - adam_steps,
        "adam_steps_per_wall_s": round(adam_steps / max(h["time"][i], 1e-9), 1),
        "load_avg": round(0.5 * (load + os.getloadavg()[0]), 1), "setup_s": round(setup, 1),
        "against": trainer.summary()["error_against"],
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def run_marching(name: str, activation: str, schedule: str, budget: float, out: Path,
                 seed: int, adam_fraction: float, log_every: int, rar: dict | None,
                 marching: dict) -> dict:
    """One time-marching run (``marching``: ``windows`` (a count or the edges), ``shares``,
    ``warm_start``, optional ``net`` (width, depth) and ``batch`` overrides): the budget is the
    whole run's, split over the windows; errors of the composite on the full test grid."""
    params, net, opts, _ = PROBLEMS[name]
    opts = {**opts, "rar": rar} if rar else dict(opts)
    if marching.get("batch"):
        opts["batch"] = marching["batch"]
    if marching.get("net"):
        net = {"width": marching["net"][0], "depth": marching["net"][1]}
    if marching.get("causal_qn") and opts.get("causal"):
        opts["causal"] = {**opts["causal"], "quasi_newton": marching["causal_qn"]}
    problem = pdesolve.get_problem(NAMES.get(name, name), **params)
    quasi_newton = schedule != "adam"
    model = {"name": "mlp", "activation": activation, **net}
    if activation == "raf":
        model["activation_options"] = {"gaussian_width": 0.5}
    windows = marching["windows"]
    k = windows if isinstance(windows, int) else len(windows) - 1
    folder = out / f"{name}_{activation}_{schedule}_marching{k}_seed{seed}"
    if folder.exists():
        shutil.rmtree(folder)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    trainer = MarchingTrainer(problem, windows=windows, budget=budget,
                              shares=marching.get("shares"), adam_fraction=adam_fraction,
                              warm_start=marching.get("warm_start", False), output_dir=folder,
                              model=model, optimizer={"name": "adam", "lr": 1e-3},
                              steps=10**7, bfgs_steps=10**7 if quasi_newton else 0,
                              bfgs_options={"variant": "ssbfgs"}, log_every=log_every,
                              seed=seed, progress=False, monitor_points=500, **opts)
    summary = trainer.fit()
    wall = time.perf_counter() - t0
    per_window = ";".join(f"{w['composite_relative_l2']:.2e}" for w in summary["windows"])
    row = {
        "problem": name, "activation": activation, "optimiser": schedule, "seed": seed,
        "windows": k, "width_depth": f"{net['width']}x{net['depth']}", "batch": opts["batch"],
        "adam_fraction": adam_fraction if quasi_newton else 1.0,
        "warm_start": bool(marching.get("warm_start", False)),
        "causal_qn": (opts.get("causal") or {}).get("quasi_newton", "live"),
        "relative_l2": summary["relative_l2"], "window_errors": per_window,
        "train_cpu_s": round(summary["train_cpu_time"], 1),
        "train_wall_s": round(summary["train_time"], 1),
        "steps": sum(w["steps"] for w in summary["windows"]),
        "load_avg": round(0.5 * (load + os.getloadavg()[0]), 1), "run_wall_s": round(wall, 1),
        "against": summary["error_against"],
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def describe_qn(qn: dict | None) -> str:
    """``points sampling [/every hessian] [+rar]`` of a quasi-Newton batch, for the tables."""
    if not qn:
        return "batch"
    out = f"{qn.get('points', 'batch')} {qn['sampling']}"
    if qn["resample_every"]:
        out += f" /{qn['resample_every']} {qn['hessian']}" + (" +rar" if qn["refine"] else "")
    return out


LABELS = {"burgers": "Burgers", "allen_cahn": "Allen–Cahn", "heat2d": "2D heat",
          "poisson_holes": "square minus disks", "tanh": "tanh", "sin": "sin", "raf": "RAF"}


def grid_table(rows: list[dict]) -> list[dict]:
    """One row per (problem, activation) with the relative L2 error of each schedule (the
    median over seeds where a cell has several), the README's layout of a grid."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        key = (r["problem"], r["activation"])
        cells.setdefault(key, {}).setdefault(r["optimiser"], []).append(float(r["relative_l2"]))
    order = {name: i for i, name in enumerate([*PROBLEMS, *ACTIVATIONS])}
    table = []
    for (problem, activation) in sorted(cells, key=lambda k: (order[k[0]], order[k[1]])):
        row = {"problem": LABELS[problem], "activation": LABELS[activation]}
        for schedule, label in (("adam", "Adam"), ("adam+ssbfgs", "Adam → SSBFGS")):
            errors = sorted(cells[(problem, activation)].get(schedule, []))
            row[label] = errors[len(errors) // 2] if errors else "-"
        table.append(row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0,
                        help="CPU seconds of training steps per run")
    parser.add_argument("--adam-fraction", type=float, default=None,
                        help="share of the budget for Adam before the quasi-Newton phase "
                             "(default: each problem's own, see PROBLEMS)")
    parser.add_argument("--log-every", type=int, default=5,
                        help="steps between evaluations (and budget checks)")
    parser.add_argument("--rar", type=int, nargs=3, metavar=("EVERY", "CANDIDATES", "POINTS"),
                        help="residual-based refinement during Adam (the points join the "
                             "quasi-Newton batch too; default: each problem's own)")
    parser.add_argument("--no-rar", action="store_true",
                        help="no residual-based refinement, whatever the problem's default")
    parser.add_argument("--qn-points", type=int, default=None,
                        help="interior points of the quasi-Newton batch (plus the refinement "
                             "points; default: each problem's own, else the Adam batch)")
    parser.add_argument("--qn-sampling", choices=("uniform", "lhs", "sobol", "halton"),
                        default=None, help="how the quasi-Newton batch is drawn")
    parser.add_argument("--qn-resample", type=int, default=None, metavar="EVERY",
                        help="draw a fresh quasi-Newton batch every EVERY iterations (0: never)")
    parser.add_argument("--qn-hessian", choices=("keep", "reset"), default=None,
                        help="keep or reset the inverse Hessian when the batch is resampled")
    parser.add_argument("--qn-refine", choices=("yes", "no"), default=None,
                        help="refine (the rar sizes) at every resample (default: with rar)")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--activations", nargs="*", default=list(ACTIVATIONS))
    parser.add_argument("--schedules", nargs="*", default=list(SCHEDULES))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--tag", default="cells")
    parser.add_argument("--marching", type=int, default=None, metavar="K",
                        help="time-marching in K equal windows (time-dependent problems; the "
                             "budget is the whole run's, split over the windows)")
    parser.add_argument("--window-edges", type=float, nargs="*", default=None,
                        help="with --marching: the K+1 window edges instead of equal windows")
    parser.add_argument("--window-shares", type=float, nargs="*", default=None,
                        help="with --marching: the windows' relative budget shares")
    parser.add_argument("--warm-start", action="store_true",
                        help="with --marching: start each window from the previous weights")
    parser.add_argument("--net", type=int, nargs=2, metavar=("WIDTH", "DEPTH"),
                        help="with --marching: the MLP size instead of the problem's")
    parser.add_argument("--causal-qn", choices=("live", "frozen"), default=None,
                        help="with --marching: causal weights in the quasi-Newton phase (frozen: "
                             "those of its first step)")
    parser.add_argument("--batch", type=int, default=None,
                        help="with --marching: collocation points instead of the problem's")
    parser.add_argument("--table-from", nargs="+", metavar="CSV",
                        help="train nothing: write results/<tag>_table.md, the problem × "
                             "activation table of the runs in these CSV files")
    args = parser.parse_args()
    if args.table_from:
        rows = [row for path in args.table_from for row in read_csv(path)]
        text = markdown_table(grid_table(rows))
        (HERE / "results" / f"{args.tag}_table.md").write_text(text)
        print(text, end="")
        return
    for what, given, known in (("problem", args.problems, PROBLEMS),
                               ("activation", args.activations, ACTIVATIONS),
                               ("schedule", args.schedules, SCHEDULES)):  # fmt: skip
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"unknown {what} {unknown}; known: {', '.join(known)}")
    if not args.budget > 0 or not (args.adam_fraction is None or 0 < args.adam_fraction <= 1):
        parser.error("need --budget > 0 and 0 < --adam-fraction <= 1")
    if args.rar and args.no_rar:
        parser.error("--rar and --no-rar contradict each other")
    given_rar = dict(zip(("every", "candidates", "points"), args.rar, strict=True)) \
        if args.rar else None
    marching = None
    if args.marching is not None:
        if args.marching < 1:
            parser.error("--marching needs K >= 1 windows")
        edges = args.window_edges
        if edges and len(edges) != args.marching + 1:
            parser.error(f"--window-edges needs K+1 = {args.marching + 1} times")
        marching = {"windows": edges or args.marching, "shares": args.window_shares,
                    "warm_start": args.warm_start, "net": args.net, "batch": args.batch,
                    "causal_qn": args.causal_qn}
    elif (args.window_edges or args.window_shares or args.warm_start or args.net or args.batch
          or args.causal_qn):
        parser.error("--window-edges, --window-shares, --warm-start, --net, --batch and "
                     "--causal-qn go with --marching")
    torch.set_num_threads(1)
    results = HERE / "results"
    runs = results / ("runs" if args.tag == "cells" else f"runs_{args.tag}")
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.problems:
        defaults = PROBLEMS[name][3]
        fraction = defaults["adam_fraction"] if args.adam_fraction is None else args.adam_fraction
        rar = None if args.no_rar else given_rar or defaults["rar"]
        qn_batch = dict(defaults["qn_batch"] or {})
        for key, value in (("points", args.qn_points), ("sampling", args.qn_sampling),
                           ("resample_every", args.qn_resample), ("hessian", args.qn_hessian),
                           ("refine", None if args.qn_refine is None
                            else args.qn_refine == "yes")):  # fmt: skip
            if value is not None:
                qn_batch[key] = value
        for activation in args.activations:
            for schedule in args.schedules:
                for seed in args.seeds:
                    if marching is not None:
                        rows.append(run_marching(name, activation, schedule, args.budget, runs,
                                                 seed, fraction, args.log_every, rar, marching))
                        write_csv(results / f"{args.tag}.csv", rows, columns=list(rows[0]))
                        continue
                    rows.append(run_cell(name, activation, schedule, args.budget, runs, seed,
                                         fraction, args.log_every, rar, qn_batch or None))
                    write_csv(results / f"{args.tag}.csv", rows, columns=list(rows[0]))
    machine = (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, one "
               f"thread, budget {args.budget:g} CPU s of training steps per run (Adam share "
               "before the quasi-Newton phase in adam_fraction); shared 2-core machine, "
               "load average per run in load_avg")
    (results / f"{args.tag}.md").write_text(f"Machine: {machine}\n\n" + markdown_table(rows))


if __name__ == "__main__":
    main()
