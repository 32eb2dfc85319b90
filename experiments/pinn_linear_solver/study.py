"""Network-configuration study for PINNs as linear solvers (Markidis 2021).

The paper varies the depth/width ordering, the activation function and the distribution of the
collocation points. Every configuration here is one change from the baseline, a 4 × 50 tanh MLP
(hard zero-Dirichlet ansatz, Adam lr 1e-3, fresh random batch of 1024 points per step):

* ``arch``: ``constant`` 4 × 50 (7,851 parameters), ``narrow_wide`` 16-32-64-80 (7,985),
  ``wide_narrow`` 80-64-32-16 (8,049): comparable parameter counts, opposite orderings;
* ``act``: ``tanh`` (the baseline), ``sigmoid``, ``sin``, ``raf`` (partitioned reproducing
  activation, ``poly_sin_gaussian``, Gaussian width 0.5);
* ``colloc``: ``random`` (the baseline: a fresh pseudo-random batch every step) against one
  fixed set of the same size drawn once: ``uniform`` (i.i.d. pseudo-random), ``lhs``,
  ``sobol``, ``halton`` (scrambled, ``scipy.stats.qmc``).

For each configuration, source and seed:

1. **pure PINN**: ``--steps`` Adam steps (default 1000); relative L2 error against the exact
   solution on a fixed seeded test set at the end and its minimum, steps (and training seconds)
   to relative errors 1e-1, 3e-2, 1e-2, training wall and CPU time, and the relative L2 error of
   the network on the ``n × n`` grid nodes;
2. **hybrid corrector**: the same network (architecture, activation, collocation distribution;
   batch 512, 10 Adam steps per outer iteration, 200 on the first, lr 5e-3, as in ``run.py``) as
   the corrector of the hybrid solver with ``nu = 4`` Gauss–Seidel sweeps on the ``n × n``
   system, to rtol 1e-6 on the true residual (capped by ``--max-time`` CPU seconds): outer
   iterations, solve wall/CPU time.

Sources: ``polynomial`` (smooth, ``x²(1-x)y²(1-y)``) and ``multifrequency_modulated``
(``Σ_m w(x)w(y) sin(mπx) sin(mπy)``, m = 1, 4, 16; ``pdesolve.problems.manufactured``).

Rows go to ``results/study/rows_<tag>.csv`` as they finish (so several processes can share the
work: ``--seeds 0`` in one, ``--seeds 1`` in another); ``--report`` merges every rows file into
``results/study.csv`` (one row per configuration, source and seed), ``results/study.md``
(means over seeds) and ``results/study.png``.

``python experiments/pinn_linear_solver/study.py [--quick] [--seeds 0 1] [--part pinn|hybrid]
[--sources polynomial]``
``python experiments/pinn_linear_solver/study.py --report``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.nn.mlp import count_parameters
from pdesolve.plotting import save_figure, subplots
from pdesolve.train.pinn import PINNTrainer

HERE = Path(__file__).resolve().parent
SOURCES = {
    "polynomial": {"solution": "polynomial"},
    "multifrequency_modulated": {"solution": "multifrequency_modulated"},
}
BASE = {"name": "mlp", "width": 50, "depth": 4, "activation": "tanh"}
RAF_OPTIONS = {"gaussian_width": 0.5}
#: (group, label) -> (model spec, collocation sampling)
CONFIGS: dict[tuple[str, str], tuple[dict, str]] = {
    ("baseline", "4x50_tanh_random"): (BASE, "random"),
    ("arch", "narrow_wide"): ({"name": "mlp", "widths": [16, 32, 64, 80],
                              "activation": "tanh"}, "random"),
    ("arch", "wide_narrow"): ({"name": "mlp", "widths": [80, 64, 32, 16],
                              "activation": "tanh"}, "random"),
    ("act", "sigmoid"): ({**BASE, "activation": "sigmoid"}, "random"),
    ("act", "sin"): ({**BASE, "activation": "sin"}, "random"),
    ("act", "raf"): ({**BASE, "activation": "raf", "activation_options": RAF_OPTIONS}, "random"),
    ("colloc", "uniform"): (BASE, "uniform"),
    ("colloc", "lhs"): (BASE, "lhs"),
    ("colloc", "sobol"): (BASE, "sobol"),
    ("colloc", "halton"): (BASE, "halton"),
}  # fmt: skip
TARGETS = (1e-1, 3e-2, 1e-2)
PINN = {"optimizer": {"name": "adam", "lr": 1e-3}, "batch": 1024, "schedule": "none",
        "dtype": "float32", "test_points": 4000, "progress": False}  # fmt: skip
CORRECTOR = {"steps": 10, "first_steps": 200, "batch": 512, "lr": 5e-3, "dtype": "float32"}


def n_params(model: dict) -> int:
    spec = {k: v for k, v in model.items() if k != "name"}
    return count_parameters(pdesolve.nn.mlp.make_model(model["name"], 2, 1, **spec))


def steps_to(history: dict, tol: float) -> tuple[float, float]:
    for s, e, t in zip(history["step"], history["relative_l2"], history["time"], strict=True):
        if e <= tol:
            return float(s), float(t)
    return float("nan"), float("nan")


def run_pinn(group, label, source, seed, n, steps, log_every) -> dict:
    model, sampling = CONFIGS[(group, label)]
    problem = pdesolve.get_problem("poisson", dim=2, n=n, **SOURCES[source])
    trainer = PINNTrainer(problem, model=model, sampling=sampling, steps=steps,
                          log_every=log_every, seed=seed, **PINN)
    c0 = time.process_time()
    hist = trainer.fit()
    cpu = time.process_time() - c0
    system = problem.discretize()
    grid_err = system.error_norms(trainer.evaluate(np.asarray(system.geometry.points)))
    row = {"part": "pinn", "group": group, "config": label, "source": source, "seed": seed,
           "n": n, "params": n_params(model), "steps": trainer.step,
           "final_rel_l2": hist["relative_l2"][-1], "best_rel_l2": float(np.nanmin(
               hist["relative_l2"])), "grid_rel_l2": grid_err["relative_l2"],
           "train_time": trainer.elapsed, "train_cpu": cpu}  # fmt: skip
    for tol in TARGETS:
        row[f"steps_to_{tol:g}"], row[f"time_to_{tol:g}"] = steps_to(hist, tol)
    return row


def run_hybrid(group, label, source, seed, n, rtol, max_time) -> dict:
    model, sampling = CONFIGS[(group, label)]
    system = pdesolve.get_problem("poisson", dim=2, n=n, **SOURCES[source]).discretize()
    options = {**CORRECTOR, "model": model, "sampling": sampling, "seed": seed}
    c0 = time.process_time()
    res = pdesolve.solve(system, method="hybrid", pc={"name": "pinn_correction", **options},
                         nu=4, rtol=rtol, maxiter=5000, max_time=max_time,
                         max_time_clock="process")
    cpu = time.process_time() - c0
    rel = float(np.linalg.norm(system.b - system.A @ res.x) / system.b_norm)
    return {"part": "hybrid", "group": group, "config": label, "source": source, "seed": seed,
            "n": n, "params": n_params(model), "converged": bool(res.converged),
            "time_limit": bool(res.info["time_limit"]), "outer_iterations": res.iterations,
            "rel_residual": rel, "solve_time": res.info["solve_time"],
            "setup_time": res.info["setup_time"], "solve_cpu": cpu,
            "correct_time": res.info["correct_time"],
            "grid_rel_l2": system.error_norms(res.x)["relative_l2"]}  # fmt: skip


def write_rows(path: Path, rows: list[dict]) -> None:
    write_csv(path, rows, floatfmt=".4e")


def read_rows(paths) -> list[dict]:
    return [r for p in paths for r in read_csv(p)]


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _mean(rows, key) -> float:
    vals = [_f(r.get(key)) for r in rows]
    return float(np.mean(vals)) if vals else float("nan")


def _fmt_steps(rows, key) -> str:
    """Mean steps over the seeds that reached the target, with 'k/N reached' when not all did."""
    vals = [_f(r.get(key)) for r in rows]
    ok = [v for v in vals if np.isfinite(v)]
    if not ok:
        return "—"
    text = f"{np.mean(ok):.0f}"
    return text if len(ok) == len(vals) else f"{text} ({len(ok)}/{len(vals)})"


#: the columns of the hybrid tables
HYBRID = ["group", "config", "converged", "outer its", "solve s", "solve CPU s", "rel. residual"]


def report(out: Path) -> None:
    files = sorted((out / "study").glob("rows_*.csv"))
    rows = read_rows(files)
    if not rows:
        raise SystemExit(f"no rows in {out / 'study'}")
    keys = list(dict.fromkeys(k for r in rows for k in r))  # in the files' order
    order = {key: i for i, key in enumerate(CONFIGS)}
    rows.sort(key=lambda r: (r["part"], list(SOURCES).index(r["source"]),
                             order[(r["group"], r["config"])], int(r["seed"])))  # fmt: skip
    write_csv(out / "study.csv", rows, columns=keys)
    seeds = sorted({int(r["seed"]) for r in rows})
    n = next((r["n"] for r in rows if r["part"] == "pinn"), "?")
    n_hyb = next((r["n"] for r in rows if r["part"] == "hybrid"), "?")
    lines = [
        "# PINN network-configuration study (Markidis §5, item 4)", "",
        f"Generated by `python experiments/pinn_linear_solver/study.py` (seeds {seeds}; "
        "here as several processes, each with `--part`/`--sources`/`--configs`, merged with "
        "`--report`). One change from the baseline per row: "
        "4 × 50 tanh MLP, hard zero-Dirichlet ansatz, Adam lr 1e-3, a fresh pseudo-random batch "
        "of 1024 collocation points per step, float32, one CPU thread. `colloc` rows use one "
        "fixed set of 1024 points drawn once (`uniform` = i.i.d. pseudo-random). Errors are "
        "relative L2 errors against the exact solution on a fixed seeded test set of 4000 "
        "points; `grid err` on the "
        f"{n}² grid nodes. Means over seeds (one seed: single runs, so differences of less "
        "than ~2× between rows are within run-to-run noise of Adam on a fresh batch); steps to "
        "a target are first logged step (every 50) at or below it, `—` when never reached. "
        "Wall-clock seconds are under a shared, heavily loaded 2-core machine; CPU seconds are "
        "in study.csv.", "",
    ]  # fmt: skip
    for source in SOURCES:
        sel = [r for r in rows if r["part"] == "pinn" and r["source"] == source]
        if not sel:
            continue
        steps = sel[0]["steps"]
        table = []
        for key in CONFIGS:
            rs = [r for r in sel if (r["group"], r["config"]) == key]
            if not rs:
                continue
            table.append({
                "group": key[0], "config": key[1], "params": rs[0]["params"],
                "final err": f"{_mean(rs, 'final_rel_l2'):.2e}",
                "best err": f"{_mean(rs, 'best_rel_l2'):.2e}",
                "grid err": f"{_mean(rs, 'grid_rel_l2'):.2e}",
                **{f"steps to {t:g}": _fmt_steps(rs, f"steps_to_{t:g}") for t in TARGETS},
                "train s": f"{_mean(rs, 'train_time'):.0f}",
            })  # fmt: skip
        columns = ["group", "config", "params", "final err", "best err", "grid err",
                   *(f"steps to {t:g}" for t in TARGETS), "train s"]  # fmt: skip
        lines += [f"## Pure PINN, `{source}` ({steps} Adam steps)", "",
                  *markdown_table(table, columns=columns).splitlines(), ""]
    for source in SOURCES:
        sel = [r for r in rows if r["part"] == "hybrid" and r["source"] == source]
        if not sel:
            continue
        lines += [f"## The configuration as the hybrid solver's corrector, `{source}`, {n_hyb}², "
                  f"rtol 1e-6 (Gauss–Seidel ν = 4)", ""]
        table = []
        for key in CONFIGS:
            rs = [r for r in sel if (r["group"], r["config"]) == key]
            if not rs:
                continue
            conv = sum(r["converged"] == "True" for r in rs)
            its = [int(r["outer_iterations"]) for r in rs]
            table.append({
                "group": key[0], "config": key[1], "converged": f"{conv}/{len(rs)}",
                "outer its": f"{np.mean(its):.0f} ({min(its)}–{max(its)})",
                "solve s": f"{_mean(rs, 'solve_time'):.1f}",
                "solve CPU s": f"{_mean(rs, 'solve_cpu'):.1f}",
                "rel. residual": f"{_mean(rs, 'rel_residual'):.1e}",
            })  # fmt: skip
        lines += [*markdown_table(table, columns=HYBRID).splitlines(), ""]
    (out / "study.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "study.png")


def plot(rows, path) -> None:
    labels = [f"{g}:{c}" for g, c in CONFIGS]
    fig, axes = subplots(1, 2, figsize=(13, 4.5))
    width = 0.38
    xs = np.arange(len(labels))
    for i, source in enumerate(SOURCES):
        pin = [[_f(r["final_rel_l2"]) for r in rows if r["part"] == "pinn"
                and r["source"] == source and (r["group"], r["config"]) == key]
               for key in CONFIGS]  # fmt: skip
        hyb = [[_f(r["outer_iterations"]) for r in rows if r["part"] == "hybrid"
                and r["source"] == source and (r["group"], r["config"]) == key]
               for key in CONFIGS]  # fmt: skip
        for ax, vals in ((axes[0], pin), (axes[1], hyb)):
            means = [np.mean(v) if v else np.nan for v in vals]
            ax.bar(xs + (i - 0.5) * width, means, width, label=source)
            for x, v in zip(xs, vals, strict=True):
                if v:
                    ax.plot([x + (i - 0.5) * width] * len(v), v, "k.", ms=3)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("pure PINN: final relative L2 error")
    axes[1].set_ylabel("hybrid corrector: outer iterations to rtol 1e-6")
    for ax in axes:
        ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64², 200 steps, seed 0, 2 configs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--max-time", type=float, default=90.0,
                        help="cap [CPU s of this process] per hybrid solve")
    parser.add_argument("--part", choices=("pinn", "hybrid", "both"), default="both")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--configs", nargs="+", default=None,
                        help="group:label names (default: all)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--report", action="store_true", help="only merge rows and write report")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report:
        report(out)
        return
    torch.set_num_threads(1)
    keys = list(CONFIGS)
    if args.configs:
        keys = [tuple(c.split(":", 1)) for c in args.configs]
        unknown = [k for k in keys if k not in CONFIGS]
        if unknown:
            raise SystemExit(f"unknown configs {unknown}; known: {list(CONFIGS)}")
    n, steps, log_every, seeds = args.n, args.steps, 50, args.seeds
    if args.quick:
        n, steps, log_every, seeds = 64, 200, 25, [0]
        keys = keys if args.configs else keys[:2]
    tag = f"{args.part}_{'-'.join(map(str, seeds))}_{'-'.join(s[:4] for s in args.sources)}"
    path = out / "study" / f"rows_{tag}.csv"
    rows: list[dict] = []
    start = time.perf_counter()
    for seed in seeds:
        for source in args.sources:
            for key in keys:
                if args.part in ("pinn", "both"):
                    rows.append(run_pinn(*key, source, seed, n, steps, log_every))
                    r = rows[-1]
                    print(f"[{time.perf_counter() - start:.0f}s] pinn {key} {source} s{seed}: "
                          f"err {r['final_rel_l2']:.2e} in {r['train_time']:.0f}s", flush=True)
                    write_rows(path, rows)
                if args.part in ("hybrid", "both"):
                    rows.append(run_hybrid(*key, source, seed, n, args.rtol, args.max_time))
                    r = rows[-1]
                    print(f"[{time.perf_counter() - start:.0f}s] hybrid {key} {source} s{seed}: "
                          f"{r['outer_iterations']} its, conv {r['converged']}, "
                          f"{r['solve_time']:.0f}s", flush=True)
                    write_rows(path, rows)
    if not args.quick:
        report(out)


if __name__ == "__main__":
    main()
