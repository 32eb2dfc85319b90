"""Adam step rate of the benchmark's PINNs, and where a step's time goes.

Builds each case with ``run.py``'s network, points and constraints (causal weighting left out,
as in the DeepXDE comparison), takes 5 warm-up Adam steps and reports the fastest of
``--blocks`` blocks of ``--steps`` steps in CPU time of this process (one torch thread). With
``--profile`` it also reports the shares of ``torch.profiler``'s self CPU time by kind of
operation over one more block. Nothing is written. Run it from the repository root with the
checkout on ``PYTHONPATH``, e.g. once on each of two checkouts, alternating, to compare them:

    PYTHONPATH=. OMP_NUM_THREADS=1 python experiments/pinn_benchmark/step_rate.py --profile
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import torch

import pdesolve
from pdesolve.train.pinn import PINNTrainer

HERE = Path(__file__).resolve().parent
KINDS = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
         "activation": ("aten::tanh", "aten::sin", "aten::cos"),
         "Adam": ("Optimizer.step", "Optimizer.zero_grad")}  # fmt: skip


def make_trainer(name: str, activation: str) -> PINNTrainer:
    spec = importlib.util.spec_from_file_location("pinn_benchmark_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    params, net, opts = run.PROBLEMS[name][:3]
    opts = {k: v for k, v in opts.items() if k != "causal"}
    problem = pdesolve.get_problem(run.NAMES.get(name, name), **params)
    return PINNTrainer(problem, model={"name": "mlp", "activation": activation, **net},
                       optimizer={"name": "adam", "lr": 1e-3}, steps=10**9, log_every=10**9,
                       seed=0, progress=False, monitor_points=100, **opts)  # fmt: skip


def cpu_seconds_per_step(trainer: PINNTrainer, steps: int) -> float:
    xi, xb, x0 = trainer._batch()
    start = time.process_time()
    for _ in range(steps):
        trainer._take_step(trainer.optimizer, xi, xb, x0)
    return (time.process_time() - start) / steps


def profile_shares(trainer: PINNTrainer, steps: int) -> dict[str, float]:
    """Shares of the profiler's self CPU time: the kinds above, other ATen operations
    (element-wise, sums, copies) and the rest (Python, autograd engine, profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        cpu_seconds_per_step(trainer, steps)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = dict.fromkeys([*KINDS, "other ATen ops", "rest"], 0.0)
    for e in events:
        kind = next((k for k, prefixes in KINDS.items() if e.key.startswith(prefixes)), None)
        if kind is None:
            kind = "other ATen ops" if e.key.startswith("aten::") else "rest"
        shares[kind] += e.self_cpu_time_total / total
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="*",
                        default=["burgers", "allen_cahn", "heat2d", "poisson_holes"])
    parser.add_argument("--activations", nargs="*", default=["tanh", "sin"])
    parser.add_argument("--steps", type=int, default=20, help="Adam steps per block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.problems:
        for activation in args.activations:
            trainer = make_trainer(name, activation)
            cpu_seconds_per_step(trainer, 5)
            t = min(cpu_seconds_per_step(trainer, args.steps) for _ in range(args.blocks))
            line = (f"{name} {activation} {trainer.derivatives}: {1e3 * t:.2f} ms per step, "
                    f"{1 / t:.1f} steps per CPU s, load {os.getloadavg()[0]:.1f}")  # fmt: skip
            if args.profile:
                shares = profile_shares(trainer, args.steps)
                line += "; " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items())
            print(line, flush=True)


if __name__ == "__main__":
    main()
