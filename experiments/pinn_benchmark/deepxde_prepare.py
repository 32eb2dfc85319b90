"""pdesolve's side of the DeepXDE comparison: export the cases, then train them with pdesolve.

For every problem of the benchmark (``run.py``'s networks, points and weights) and activation
(tanh, sin) this writes ``results/deepxde/<problem>_<activation>.npz`` with everything the
DeepXDE side needs to pose *the same* problem without importing pdesolve: the initial network
weights, the collocation points of the Adam phase and of the quasi-Newton phase (with the
boundary data at the boundary points), the right-hand side at the interior points, the test
points and the reference values there (exact solution, or pdesolve's classical reference). Then
it trains the case with pdesolve (``adam`` steps of Adam at lr 1e-3, then one L-BFGS step of up
to ``lbfgs`` iterations, strong Wolfe line search, history 50) and writes
``results/deepxde/pdesolve.json``: steps per second of Adam (median over blocks of 10 steps
after ``warmup`` steps; wall and CPU time of the training steps, one thread), L-BFGS loss
evaluations per second, the loss after Adam and the relative L2 errors.

Causal weighting (Allen–Cahn in ``run.py``) and the boundary lift of non-zero Dirichlet data
(2D heat, the shape domain: ``constraint="hard"`` in ``run.py``) have no DeepXDE counterpart
here: causal weighting is left out and those boundary data are penalised at the boundary points
on both sides, so that the two frameworks minimise the same loss.

    OMP_NUM_THREADS=1 python experiments/pinn_benchmark/deepxde_prepare.py --adam 220
    OMP_NUM_THREADS=1 DDE_BACKEND=pytorch /work/deepxde-venv/bin/python \\
        experiments/pinn_benchmark/deepxde_compare.py --adam 220
    python experiments/pinn_benchmark/deepxde_table.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.train.pinn import PINNTrainer

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "deepxde"
ACTIVATIONS = ("tanh", "sin")
#: L-BFGS as DeepXDE builds it (``set_LBFGS_options``), the same torch.optim.LBFGS on both sides
LBFGS = {"lr": 1.0, "history_size": 50, "tolerance_grad": 1e-8, "tolerance_change": 0.0,
         "line_search_fn": "strong_wolfe"}  # fmt: skip


def benchmark_cells() -> tuple[dict, dict]:
    """``PROBLEMS`` and ``NAMES`` of ``run.py`` (the benchmark's networks and points)."""
    spec = importlib.util.spec_from_file_location("pinn_benchmark_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PROBLEMS, module.NAMES


def make_trainer(name: str, activation: str, adam: int, lbfgs: int) -> PINNTrainer:
    problems, names = benchmark_cells()
    params, net, opts = problems[name][:3]  # (the schedule defaults do not apply here)
    opts = {k: v for k, v in opts.items() if k != "causal"}
    if opts.get("constraint") == "hard":  # non-zero Dirichlet data (2D heat, shape domain):
        # the DeepXDE side has no counterpart of the boundary lift G + D N and imposes them by
        # the penalty at the boundary points, so pdesolve does the same here
        opts["constraint"] = "soft"
    problem = pdesolve.get_problem(names.get(name, name), **params)
    return PINNTrainer(problem, model={"name": "mlp", "activation": activation, **net},
                       optimizer={"name": "adam", "lr": 1e-3}, steps=adam, lbfgs_steps=0,
                       lbfgs_options={**LBFGS, "max_iter": lbfgs,
                                      "max_eval": int(lbfgs * 1.25)},
                       log_every=10**9, seed=0, progress=False, monitor_points=100,
                       **opts)  # fmt: skip


def _numpy(x: torch.Tensor | None) -> np.ndarray:
    return np.zeros((0, 0)) if x is None else x.detach().double().cpu().numpy()


def export(trainer: PINNTrainer, path: Path) -> None:
    """The case as plain arrays (see the module docstring)."""
    problem, cfg = trainer.problem, trainer.config
    xi, xb, x0 = trainer._batch()
    fi, fb, f0 = trainer._fixed_batch()
    if x0 is not None or f0 is not None:
        raise ValueError("a soft initial condition is not exported (the cells use hard ones)")
    linears = [m for m in trainer.model.network.layers if isinstance(m, torch.nn.Linear)]
    arrays = {f"W{i}": _numpy(m.weight) for i, m in enumerate(linears)}
    arrays.update({f"b{i}": _numpy(m.bias) for i, m in enumerate(linears)})

    def boundary(x: torch.Tensor | None) -> np.ndarray:
        return np.zeros(0) if x is None else _numpy(problem.boundary_value(x).reshape(-1))

    loss0 = current_loss(trainer)
    meta = {"problem": problem.name, "params": problem.params, "model": cfg["model"],
            "boundary_weight": cfg["boundary_weight"], "fourier_modes": cfg.get("fourier_modes"),
            "time_dependent": trainer.time_dependent, "loss0": loss0,
            "error_against": "exact" if problem.has_exact_solution else "reference"}  # fmt: skip
    np.savez(path, interior=_numpy(xi), boundary=_numpy(xb), boundary_values=boundary(xb),
             source=_numpy(problem.source(xi).reshape(-1)),
             lbfgs_interior=_numpy(fi), lbfgs_boundary=_numpy(fb),
             lbfgs_boundary_values=boundary(fb), test_x=_numpy(trainer.test_x),
             test_u=_numpy(trainer.exact), meta=json.dumps(meta, default=float), **arrays)


def current_loss(trainer: PINNTrainer, batch: tuple | None = None) -> float:
    """The training loss at the current weights (on the Adam batch, or ``batch``)."""
    with torch.no_grad():
        return float(trainer.predict_and_loss(*(batch or trainer._batch()))[1])


def train(trainer: PINNTrainer, adam: int, warmup: int, block: int = 10) -> dict:
    """Adam in blocks of ``block`` steps (one evaluation between blocks, not timed), then one
    L-BFGS step; per-step wall and CPU times of the training steps alone."""
    wall, cpu = [], []
    for stop in range(block, adam + 1, block):
        trainer.config["steps"] = stop
        w0, c0 = trainer.elapsed, trainer.cpu_elapsed
        trainer.fit()
        wall.append((trainer.elapsed - w0) / block)
        cpu.append((trainer.cpu_elapsed - c0) / block)
    skip = warmup // block
    row = {"adam_steps": trainer.step, "loss_adam": current_loss(trainer),
           "l2_adam": trainer.relative_l2(),
           "adam_steps_per_s_cpu": 1.0 / float(np.median(cpu[skip:])),
           "adam_steps_per_s_wall": 1.0 / float(np.median(wall[skip:]))}  # fmt: skip
    trainer.config["lbfgs_steps"] = 1
    w0, c0 = trainer.elapsed, trainer.cpu_elapsed
    trainer.fit()
    state = trainer.lbfgs.state[next(iter(trainer.model.parameters()))]
    row.update({"lbfgs_iterations": int(state["n_iter"]), "lbfgs_evals": int(state["func_evals"]),
                "lbfgs_evals_per_s_cpu": state["func_evals"] / (trainer.cpu_elapsed - c0),
                "lbfgs_evals_per_s_wall": state["func_evals"] / (trainer.elapsed - w0),
                "loss_lbfgs": current_loss(trainer, trainer._fixed_batch()),
                "l2_lbfgs": trainer.relative_l2()})  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam", type=int, default=220, help="Adam steps (multiple of 10)")
    parser.add_argument("--warmup", type=int, default=20, help="Adam steps left out of timing")
    parser.add_argument("--lbfgs", type=int, default=100, help="L-BFGS iterations")
    parser.add_argument("--problems", nargs="*", default=None)
    parser.add_argument("--activations", nargs="*", default=list(ACTIVATIONS))
    args = parser.parse_args()
    if args.adam % 10 or args.adam <= args.warmup:
        raise SystemExit("--adam must be a multiple of 10 and larger than --warmup")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    results_path = OUT / "pdesolve.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.problems or list(benchmark_cells()[0]):
        for activation in args.activations:
            t0 = time.perf_counter()
            trainer = make_trainer(name, activation, args.adam, args.lbfgs)
            setup = time.perf_counter() - t0
            export(trainer, OUT / f"{name}_{activation}.npz")
            row = {"problem": name, "activation": activation, "derivatives": trainer.derivatives,
                   **train(trainer, args.adam, args.warmup), "setup_s": setup,
                   "load": os.getloadavg()[0], "machine": platform.processor() or
                   platform.machine(), "torch": torch.__version__}  # fmt: skip
            results[f"{name}_{activation}"] = row
            results_path.write_text(json.dumps(results, indent=1, default=float))
            print(json.dumps(row, default=float), flush=True)


if __name__ == "__main__":
    main()
