"""PINN benchmark: Burgers, Allen–Cahn, 2D heat and the shape-domain Poisson problem.

For every problem, activation (tanh, sin, RAF) and optimiser schedule (Adam alone; Adam for half
the budget, then self-scaled BFGS on a fixed batch for the other half) one seeded run is trained
for a fixed CPU-time budget (``--budget`` seconds of training time, one torch thread); the
relative L2 error is measured on the problem's fixed test grid (time-dependent problems) or a
seeded test set, against its exact solution or its own classical reference (Fourier spectral
ETDRK4 for Burgers and Allen–Cahn, P1 FEM for the shape domain).

Writes ``results/cells.csv``, ``results/cells.md`` (one row per run) and one ``metrics.csv``,
``training.png`` and ``solution.png`` per run under ``results/runs/<problem>_<act>_<opt>/``.

    OMP_NUM_THREADS=1 python experiments/pinn_benchmark/run.py --budget 60
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import time
from pathlib import Path

import torch

import pdesolve
from pdesolve.io import markdown_table
from pdesolve.train.pinn import PINNTrainer

HERE = Path(__file__).resolve().parent

PROBLEMS = {
    "burgers": ({}, {"width": 20, "depth": 4},
                {"batch": 2000, "sampling": "uniform", "test_grid": [201, 101]}),
    "allen_cahn": ({}, {"width": 32, "depth": 4},
                   {"batch": 2000, "sampling": "uniform", "fourier_modes": 4,
                    "causal": {"segments": 32, "epsilon": 1.0}, "test_grid": [201, 101]}),
    "heat2d": ({"dim": 2}, {"width": 32, "depth": 3},
               {"batch": 2000, "sampling": "uniform", "boundary_batch": 500,
                "test_grid": [33, 11]}),
    "poisson_holes": ({}, {"width": 32, "depth": 4},
                      {"batch": 2000, "sampling": "uniform", "boundary_batch": 800,
                       "boundary_weight": 10.0, "test_points": 10_000}),
}  # fmt: skip
NAMES = {"heat2d": "heat"}
ACTIVATIONS = ("tanh", "sin", "raf")
SCHEDULES = ("adam", "adam+ssbfgs")


class Budget:
    """A callback that ends the Adam phase (or the run) once the training time is spent."""

    def __init__(self, seconds: float, quasi_newton: bool) -> None:
        self.seconds, self.quasi_newton = seconds, quasi_newton

    def __call__(self, trainer: PINNTrainer) -> None:
        cfg = trainer.config
        adam_part = self.seconds / 2 if self.quasi_newton else self.seconds
        if trainer.step < cfg["steps"] and trainer.elapsed >= adam_part:
            self.adam_steps = trainer.step
            cfg["steps"] = trainer.step  # switch to the quasi-Newton phase (or finish)
            if not self.quasi_newton:
                trainer.reason = "time"
        elif trainer.elapsed >= self.seconds:
            trainer.reason = "time"


def run_cell(name: str, activation: str, schedule: str, budget: float, out: Path,
             seed: int = 0) -> dict:
    params, net, opts = PROBLEMS[name]
    problem = pdesolve.get_problem(NAMES.get(name, name), **params)
    quasi_newton = schedule != "adam"
    model = {"name": "mlp", "activation": activation, **net}
    if activation == "raf":
        model["activation_options"] = {"gaussian_width": 0.5}
    stop = Budget(budget, quasi_newton)
    folder = out / f"{name}_{activation}_{schedule}"
    if folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    trainer = PINNTrainer(problem, model=model, optimizer={"name": "adam", "lr": 1e-3},
                          steps=10**6, bfgs_steps=10**6 if quasi_newton else 0,
                          bfgs_options={"variant": "ssbfgs"}, log_every=5, seed=seed,
                          progress=False, callback=stop, output_dir=folder,
                          monitor_points=500, **opts)  # fmt: skip
    setup = time.perf_counter() - t0
    trainer.fit()
    adam_steps = min(trainer.config["steps"], trainer.step)
    row = {
        "problem": name, "activation": activation, "optimiser": schedule,
        "relative_l2": trainer.relative_l2(), "train_s": round(trainer.elapsed, 1),
        "adam_steps": adam_steps, "qn_steps": trainer.step - adam_steps,
        "adam_steps_per_s": round(adam_steps / max(trainer.history["time"][
            next((i for i, s in enumerate(trainer.history["step"]) if s >= adam_steps),
                 -1)], 1e-9), 1),
        "setup_s": round(setup, 1), "against": trainer.summary()["error_against"],
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per run")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--activations", nargs="*", default=list(ACTIVATIONS))
    parser.add_argument("--schedules", nargs="*", default=list(SCHEDULES))
    parser.add_argument("--tag", default="cells")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = HERE / "results"
    runs = results / ("runs" if args.tag == "cells" else f"runs_{args.tag}")
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.problems:
        for activation in args.activations:
            for schedule in args.schedules:
                rows.append(run_cell(name, activation, schedule, args.budget, runs))
                with (results / f"{args.tag}.csv").open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
    machine = (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, one "
               f"thread, budget {args.budget:g} s of training time per run")
    (results / f"{args.tag}.md").write_text(f"Machine: {machine}\n\n" + markdown_table(rows))


if __name__ == "__main__":
    main()
