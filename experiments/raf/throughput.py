"""PINN training throughput, pdesolve vs DeepXDE (PyTorch backend), CPU, one thread.

Both train the *same* network on the *same* points with the *same* optimizer:

* network: a 4x50 tanh MLP (2 -> 50 -> 50 -> 50 -> 50 -> 1); DeepXDE's ``FNN`` gets a copy of
  pdesolve's initial weights, so the two start from identical parameters (the script checks that
  the initial losses agree);
* problem: 2D Poisson ``-Δu = 2π² sin(πx) sin(πy)`` on the unit square, hard boundary ansatz
  ``u = x(1-x)y(1-y) N(x, y)`` in both (pdesolve: ``constraint="hard"``; DeepXDE: an output
  transform), loss = mean squared PDE residual;
* points: one fixed set of N uniform points (pdesolve ``sampling="uniform"``, passed to DeepXDE as
  ``anchors``), all used every step (full batch);
* optimizer: Adam, lr 1e-3, no schedule, float32 (DeepXDE's default) and float64.

Throughput = collocation points x Adam steps per second of CPU time, measured as
``N (K2 - K1) / (t(K2) - t(K1))`` from two runs of K1 and K2 steps, which cancels set-up and the
start/end evaluations. CPU time (``time.process_time``, one thread) is used rather than wall time
because the benchmark machine is shared; wall-clock rates are written too. Runs alternate between
the libraries and the median over ``--repeats`` is reported.

pdesolve is timed twice: with its default forward-mode Laplacian (``derivatives="auto"``) and with
nested reverse-mode autograd (``derivatives="autograd"``, the algorithm DeepXDE uses).

DeepXDE must not go into the project environment. Install it (and the two packages it needs that
the project does not have) into ``.bench/site``::

    .venv/bin/python -m pip install --no-deps --target .bench/site \\
        deepxde==1.15.0 scikit-optimize==0.10.2 pyaml

then ``python experiments/raf/throughput.py`` (the script adds ``.bench/site`` to ``sys.path``
after the environment's own packages and sets ``DDE_BACKEND=pytorch``). Writes
``results/throughput.md`` and ``results/throughput.csv``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.train.pinn import PINNTrainer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH_SITE = ROOT / ".bench" / "site"
INSTALL_HINT = (
    "DeepXDE is needed for this benchmark but is not importable. Install it outside the project "
    "environment (never into .venv):\n"
    f"    {ROOT / '.venv/bin/python'} -m pip install --no-deps --target {BENCH_SITE} "
    "deepxde==1.15.0 scikit-optimize==0.10.2 pyaml\n"
    "(this script finds .bench/site by itself), or put an existing DeepXDE on PYTHONPATH."
)
WIDTH, DEPTH, LR = 50, 4, 1e-3


def import_deepxde():
    """DeepXDE with the PyTorch backend, or a RuntimeError saying how to install it."""
    os.environ["DDE_BACKEND"] = "pytorch"
    if BENCH_SITE.is_dir() and str(BENCH_SITE) not in sys.path:
        sys.path.append(str(BENCH_SITE))  # after .venv: its numpy/scipy/torch win
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import deepxde
    except ImportError as exc:
        raise RuntimeError(f"{INSTALL_HINT}\n(import error: {exc})") from exc
    if deepxde.backend.backend_name != "pytorch":
        raise RuntimeError(f"DeepXDE loaded the {deepxde.backend.backend_name!r} backend; set "
                           "DDE_BACKEND=pytorch")
    return deepxde


def make_pdesolve(problem, points: int, steps: int, dtype: str, derivatives: str) -> PINNTrainer:
    return PINNTrainer(
        problem, model={"name": "mlp", "width": WIDTH, "depth": DEPTH, "activation": "tanh"},
        optimizer={"name": "adam", "lr": LR}, steps=steps, batch=points, sampling="uniform",
        constraint="hard", schedule="none", dtype=dtype, seed=0, log_every=10**9,
        test_points=1000, monitor_points=1000, progress=False, derivatives=derivatives,
    )  # fmt: skip


def make_deepxde(dde, trainer: PINNTrainer, dtype: str):
    """A DeepXDE model with the trainer's network weights, points, loss and optimizer."""
    with contextlib.redirect_stdout(io.StringIO()):
        dde.config.set_default_float(dtype)
    pts = trainer.sampler.interior().numpy().astype(dtype)

    def pde(x, y):
        lap = dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1)
        f = 2 * math.pi**2 * torch.sin(math.pi * x[:, 0:1]) * torch.sin(math.pi * x[:, 1:2])
        return -lap - f

    geom = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
    data = dde.data.PDE(geom, pde, [], num_domain=0, num_boundary=0, anchors=pts)
    net = dde.nn.FNN([2] + [WIDTH] * DEPTH + [1], "tanh", "Glorot normal")
    ours = [m for m in trainer.model.network.layers if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for theirs, mine in zip(net.linears, ours, strict=True):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    net.apply_output_transform(
        lambda x, y: (x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2])) * y
    )
    model = dde.Model(data, net)
    with contextlib.redirect_stdout(io.StringIO()):
        model.compile("adam", lr=LR)
    return model


def time_pdesolve(problem, points, steps, dtype, derivatives) -> tuple[float, float]:
    trainer = make_pdesolve(problem, points, steps, dtype, derivatives)
    c0, w0 = time.process_time(), time.perf_counter()
    trainer.fit()
    return time.process_time() - c0, time.perf_counter() - w0


def time_deepxde(dde, problem, points, steps, dtype) -> tuple[float, float]:
    model = make_deepxde(dde, make_pdesolve(problem, points, 1, dtype, "auto"), dtype)
    c0, w0 = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model.train(iterations=steps, display_every=10**9, verbose=0)
    return time.process_time() - c0, time.perf_counter() - w0


def initial_losses(dde, problem, points: int, dtype: str) -> tuple[float, float]:
    """The first loss of each library on the same network and points (must agree)."""
    trainer = make_pdesolve(problem, points, 1, dtype, "auto")
    x = trainer._to(trainer.sampler.interior())
    ours = float(trainer.predict_and_loss(x, None)[1].detach())
    model = make_deepxde(dde, trainer, dtype)
    with contextlib.redirect_stdout(io.StringIO()):
        losshistory, _ = model.train(iterations=1, display_every=10**9, verbose=0)
    return ours, float(np.sum(losshistory.loss_train[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--steps", type=int, nargs=2, default=[10, 60], metavar=("K1", "K2"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite throughput.md from an existing throughput.csv")
    args = parser.parse_args()
    if args.report_only:
        rows = [{k: (float(v) if k in ("ratio_vs_deepxde", "initial_loss") else
                     int(v) if k not in ("dtype", "library") else v) for k, v in r.items()}
                for r in read_csv(args.out / "throughput.csv")]  # fmt: skip
        version = os.environ.get("DEEPXDE_VERSION", "1.15.0")
        write(rows, args, version)
        return
    dde = import_deepxde()
    torch.set_num_threads(1)
    problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
    k1, k2 = args.steps
    variants = {
        "pdesolve": lambda n, k, dt: time_pdesolve(problem, n, k, dt, "auto"),
        "pdesolve (autograd)": lambda n, k, dt: time_pdesolve(problem, n, k, dt, "autograd"),
        "deepxde": lambda n, k, dt: time_deepxde(dde, problem, n, k, dt),
    }
    rows = []
    for dtype in args.dtypes:
        for n in args.points:
            ours0, theirs0 = initial_losses(dde, problem, n, dtype)
            if not math.isclose(ours0, theirs0, rel_tol=1e-4 if dtype == "float32" else 1e-10):
                raise RuntimeError(f"initial losses differ ({ours0} vs {theirs0}): the two "
                                   "set-ups are not the same problem")
            cpu: dict[str, list[float]] = {v: [] for v in variants}
            wall: dict[str, list[float]] = {v: [] for v in variants}
            for _ in range(args.repeats):
                for name, fn in variants.items():  # alternate, so load changes hit all alike
                    c1, w1 = fn(n, k1, dtype)
                    c2, w2 = fn(n, k2, dtype)
                    cpu[name].append(n * (k2 - k1) / max(c2 - c1, 1e-9))
                    wall[name].append(n * (k2 - k1) / max(w2 - w1, 1e-9))
            base = statistics.median(cpu["deepxde"])
            for name in variants:
                rate = statistics.median(cpu[name])
                rows.append({
                    "dtype": dtype, "points": n, "library": name,
                    "points_steps_per_cpu_s": round(rate), "spread_min": round(min(cpu[name])),
                    "spread_max": round(max(cpu[name])),
                    "points_steps_per_wall_s": round(statistics.median(wall[name])),
                    "ratio_vs_deepxde": round(rate / base, 3),
                    "initial_loss": ours0 if name != "deepxde" else theirs0,
                })  # fmt: skip
                print(f"{dtype} N={n:5d} {name:20s} {rate:10.0f} pts*steps/s  "
                      f"x{rate / base:.2f} vs DeepXDE", flush=True)
    write(rows, args, dde.__version__)


def write(rows: list[dict], args, dde_version: str) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "throughput.csv", rows)
    k1, k2 = args.steps
    lines = [
        "# PINN training throughput: pdesolve vs DeepXDE (CPU, one thread)", "",
        f"4x50 tanh MLP, 2D Poisson with the hard ansatz x(1-x)y(1-y)N, N fixed uniform points "
        f"(full batch), Adam lr 1e-3; DeepXDE {dde_version} (PyTorch backend, torch "
        f"{torch.__version__}) starts from a copy of pdesolve's weights and its first loss equals "
        f"pdesolve's. Rate = points x steps per CPU second from runs of {k1} and {k2} steps "
        f"(median of {args.repeats}, min-max in brackets). `pdesolve` is the default "
        "(forward-mode Laplacian); `pdesolve (autograd)` uses nested reverse-mode autograd like "
        "DeepXDE. Produced by `python experiments/raf/throughput.py`. Measured on a 2-core "
        "machine shared with other jobs (hence CPU-time rates; wall-clock rates, much lower under "
        "that load, are in throughput.csv); the ratios are within one run.", "",
        *markdown_table([{
            "dtype": r["dtype"], "points": r["points"], "library": r["library"],
            "points x steps / s":
                f"{r['points_steps_per_cpu_s']:,} [{r['spread_min']:,}-{r['spread_max']:,}]",
            "ratio vs DeepXDE": f"**{r['ratio_vs_deepxde']:.2f}**",
        } for r in rows]).splitlines(),
    ]  # fmt: skip
    (args.out / "throughput.md").write_text("\n".join(lines) + "\n")
    print((args.out / "throughput.md").read_text())


if __name__ == "__main__":
    main()
