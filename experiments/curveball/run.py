"""CurveBall reproduction: Rosenbrock, degenerate linear net, 2D Poisson PINN, digits, step cost.

Usage::

    PYTHONPATH=. python experiments/curveball/run.py [--quick] [--out DIR] [--threads N]

Writes CSV files, PNG plots and ``results.md`` (the measured numbers as tables) under
``experiments/curveball/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.nn.curveball import CurveBall
from pdesolve.plotting import save_figure, subplots
from pdesolve.train.optimizers import make_optimizer, take_step

DT = torch.float64
ROOT = Path(__file__).resolve().parent


class Point(nn.Module):
    def __init__(self, w0: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w0.clone())


# ------------------------------------------------------------------------------------------
# 1. Rosenbrock (deterministic and stochastic)
# ------------------------------------------------------------------------------------------
def rosenbrock_residual(w: Tensor, eps: float) -> Tensor:
    """f = (1−x)² + 100 ε (y−x²)² = Σ r²; ε = 1 deterministic, ε ~ U(0, 1) stochastic."""
    return torch.stack([1.0 - w[0], 10.0 * math.sqrt(eps) * (w[1] - w[0] ** 2)])


def run_rosenbrock(method: str, opts: dict, start: Tensor, stochastic: bool, max_iter: int,
                   seed: int) -> tuple[int | None, list[float]]:
    model = Point(start)
    gen = np.random.default_rng(seed)
    opt = (CurveBall(model, **opts) if method.startswith("curveball")
           else make_optimizer(method, model, **opts))
    dist = []
    for k in range(max_iter):
        eps = float(gen.uniform(0.0, 1.0)) if stochastic else 1.0

        def f(eps: float = eps) -> tuple[Tensor, Tensor]:
            r = rosenbrock_residual(model.w, eps)
            return r, torch.sum(r**2)

        try:
            take_step(opt, f)
        except FloatingPointError:
            return None, dist
        d = float(torch.linalg.norm(model.w.detach() - 1.0))
        dist.append(d)
        if not math.isfinite(d):
            return None, dist
        if d < 1e-6:
            return k + 1, dist
    return None, dist


def rosenbrock(args: argparse.Namespace, out: Path) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    n_starts, max_iter = (3, 1500) if args.quick else (4, 2000)
    starts = [torch.tensor([-2.0, -1.0], dtype=DT) + 4 * torch.rand(2, generator=gen, dtype=DT)
              for _ in range(n_starts)]
    # baselines get a small learning-rate grid (best per setting reported); CurveBall: defaults
    methods: dict[str, list[dict]] = {
        "curveball": [{}],
        "curveball-hessian": [{"curvature": "hessian"}],
        "sgd": [{"lr": lr, "momentum": 0.9} for lr in (1e-4, 3e-4, 1e-3)],
        "adam": [{"lr": lr} for lr in (1e-3, 1e-2, 1e-1)],
        "lbfgs": [{"max_iter": 1, "max_eval": 25}],  # one L-BFGS iteration (+ line search) a step
    }
    rows, curves = [], {}
    for stochastic in (False, True):
        for method, grid in methods.items():
            best = None
            for opts in grid:
                its, dists = [], []
                for i, s in enumerate(starts):
                    n, d = run_rosenbrock(method.replace("-hessian", ""), opts, s, stochastic,
                                          max_iter, seed=i)
                    its.append(n)
                    dists.append(d)
                solved = [n for n in its if n is not None]
                score = (len(solved), -statistics.median(solved) if solved else 0)
                if best is None or score > best[0]:
                    best = (score, opts, its, dists)
            _, opts, its, dists = best
            solved = [n for n in its if n is not None]
            rows.append({
                "problem": "stochastic" if stochastic else "deterministic", "method": method,
                "options": repr(opts), "starts": len(starts), "solved": len(solved),
                "median_iters": statistics.median(solved) if solved else "",
                "max_iters": max(solved) if solved else "", "cap": max_iter,
            })
            curves[(stochastic, method)] = dists[0]
            print("rosenbrock", rows[-1], flush=True)
    write_csv(out / "rosenbrock.csv", rows)
    fig, axes = subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, stochastic in zip(axes, (False, True), strict=True):
        for method in methods:
            d = curves[(stochastic, method)]
            ax.semilogy(np.arange(1, len(d) + 1), np.maximum(d, 1e-16), label=method)
        ax.axhline(1e-6, color="k", lw=0.5, ls="--")
        ax.set_title(("stochastic" if stochastic else "deterministic") + " Rosenbrock (start 0)")
        ax.set_xlabel("iteration")
        ax.set_xscale("log")
    axes[0].set_ylabel("‖w − w*‖")
    axes[0].legend()
    save_figure(fig, out / "rosenbrock.png", dpi=120)
    return rows


# ------------------------------------------------------------------------------------------
# 2. degenerate two-layer linear network
# ------------------------------------------------------------------------------------------
def linear_net(args: argparse.Namespace, out: Path) -> list[dict]:
    """min ‖W2 W1 X − Y‖²/N, W1: h×d, W2: d×h, h = d (over-parameterised, non-identifiable)."""
    g = torch.Generator().manual_seed(1)
    d, n, h = 10, 200, 10
    X = torch.randn(d, n, generator=g, dtype=DT)
    A = torch.randn(d, d, generator=g, dtype=DT)
    Y = A @ X + 0.1 * torch.randn(d, n, generator=g, dtype=DT)
    M = Y @ torch.linalg.pinv(X)  # closed-form optimum of the product
    L_star = float(torch.sum((M @ X - Y) ** 2) / n)
    max_iter = 300 if args.quick else 2000

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gi = torch.Generator().manual_seed(2)
            self.W1 = nn.Parameter(0.1 * torch.randn(h, d, generator=gi, dtype=DT))
            self.W2 = nn.Parameter(0.1 * torch.randn(d, h, generator=gi, dtype=DT))

        def forward(self) -> Tensor:
            return self.W2 @ self.W1 @ X

    methods = {"curveball": [{}], "curveball-lambda0=0.01": [{"lambd": 0.01}],
               "sgd": [{"lr": lr, "momentum": 0.9} for lr in (1e-3, 3e-3, 1e-2)],
               "adam": [{"lr": lr} for lr in (1e-3, 1e-2, 1e-1)],
               "lbfgs": [{"max_iter": 1, "max_eval": 25}]}
    rows, curves = [], {}
    for method, grid in methods.items():
        best = None
        for opts in grid:
            net = Net()
            opt = make_optimizer(method.split("-")[0], net, **opts)
            gaps, hit = [], None

            def f(net: Net = net) -> tuple[Tensor, Tensor]:
                r = net() - Y
                return r, torch.sum(r**2) / n

            for k in range(max_iter):
                try:
                    loss = take_step(opt, f)
                except FloatingPointError:
                    break
                gap = (loss - L_star) / L_star
                gaps.append(gap)
                if not math.isfinite(gap):
                    break
                if hit is None and gap < 1e-6:
                    hit = k + 1
                    break
            score = (hit is not None, -(hit or 0), -(gaps[-1] if gaps else math.inf))
            if best is None or score > best[0]:
                best = (score, opts, hit, gaps)
        _, opts, hit, gaps = best
        rows.append({"method": method, "options": repr(opts), "L_star": L_star,
                     "iters_to_1e-6_rel_gap": hit if hit else f">{max_iter}",
                     "final_rel_gap": gaps[-1]})
        curves[method] = gaps
        print("linear", rows[-1], flush=True)
    write_csv(out / "linear_net.csv", rows)
    fig, ax = subplots(figsize=(5, 4))
    for m, gaps in curves.items():
        ax.semilogy(np.arange(1, len(gaps) + 1), np.maximum(np.abs(gaps), 1e-17), label=m)
    ax.set_xlabel("iteration")
    ax.set_ylabel("(L − L*) / L*")
    ax.set_title("degenerate 2-layer linear net")
    ax.legend()
    save_figure(fig, out / "linear_net.png", dpi=120)
    return rows


# ------------------------------------------------------------------------------------------
# 3. 2D Poisson PINN
# ------------------------------------------------------------------------------------------
def mlp(sizes: list[int], act: type[nn.Module], seed: int, dtype: torch.dtype) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1]).to(dtype)


def pinn_setup(quick: bool):
    import pdesolve

    prob = pdesolve.get_problem("poisson", dim=2, n=32, solution="sine")
    g = torch.Generator().manual_seed(0)
    n_int, n_bc = (500, 100) if quick else (1000, 200)
    x_int = prob.domain.sample_interior(n_int, g).to(DT)
    x_bc = prob.domain.sample_boundary(n_bc, g).to(DT)
    u_bc = prob.boundary_value(x_bc).reshape(-1)
    t = torch.linspace(0, 1, 65, dtype=DT)
    x_test = torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)
    u_test = prob.exact_solution(x_test).reshape(-1)

    def make_closure(net: nn.Module) -> Callable[[], tuple[Tensor, Tensor]]:
        def closure() -> tuple[Tensor, Tensor]:
            r_pde = prob.pde_residual(net, x_int).reshape(-1) / math.sqrt(n_int)
            r_bc = (net(x_bc).reshape(-1) - u_bc) / math.sqrt(n_bc)
            r = torch.cat([r_pde, r_bc])  # loss = mean PDE residual² + mean boundary residual²
            return r, torch.sum(r**2)
        return closure

    def error(net: nn.Module) -> float:
        with torch.no_grad():
            u = net(x_test).reshape(-1)
        return float(torch.linalg.norm(u - u_test) / torch.linalg.norm(u_test))

    return make_closure, error


def pinn(args: argparse.Namespace, out: Path) -> list[dict]:
    make_closure, error = pinn_setup(args.quick)
    budget = 20.0 if args.quick else args.pinn_seconds
    plans = {
        # the closure's loss is Σ r² (not a mean): the autograd loss Hessian is exact for it
        "curveball": [("curveball", {"loss": "autograd"}, budget)],
        "adam": [("adam", {"lr": 1e-3}, budget)],
        "adam->lbfgs": [("adam", {"lr": 1e-3}, budget / 2),
                        ("lbfgs", {"max_iter": 1, "max_eval": 25}, budget / 2)],
    }
    rows, traces = [], {}
    for name, plan in plans.items():
        net = mlp([2, 50, 50, 50, 50, 1], nn.Tanh, seed=0, dtype=DT)
        closure = make_closure(net)
        trace, it, t_train = [], 0, 0.0
        for opt_name, opts, seconds in plan:
            opt = make_optimizer(opt_name, net, **opts)
            t_stage = 0.0
            while t_stage < seconds:
                t0 = time.perf_counter()
                try:
                    loss = take_step(opt, closure)
                except FloatingPointError as exc:
                    print(name, "stopped:", exc)
                    break
                dt = time.perf_counter() - t0
                t_stage += dt
                t_train += dt
                it += 1
                if it % 10 == 0 or it < 10:
                    trace.append({"method": name, "iter": it, "time_s": t_train, "loss": loss,
                                  "rel_l2_error": error(net), "stage": opt_name})
        trace.append({"method": name, "iter": it, "time_s": t_train, "loss": float(closure()[1]),
                      "rel_l2_error": error(net), "stage": plan[-1][0]})
        traces[name] = trace
        best_err = min(r["rel_l2_error"] for r in trace)
        rows.append({"method": name, "iters": it, "train_s": round(t_train, 2),
                     "final_loss": trace[-1]["loss"], "final_rel_l2": trace[-1]["rel_l2_error"],
                     "best_rel_l2": best_err})
        print("pinn", rows[-1], flush=True)
    write_csv(out / "pinn_trace.csv", [r for t in traces.values() for r in t])
    write_csv(out / "pinn.csv", rows)
    fig, axes = subplots(2, 2, figsize=(10, 7))
    for name, trace in traces.items():
        it = [r["iter"] for r in trace]
        ts = [r["time_s"] for r in trace]
        for j, key in enumerate(("loss", "rel_l2_error")):
            y = [r[key] for r in trace]
            axes[j, 0].loglog(it, y, label=name)
            axes[j, 1].semilogy(ts, y, label=name)
            axes[j, 0].set_ylabel(key)
    for ax in axes[1]:
        ax.set_xlabel("")
    axes[1, 0].set_xlabel("iteration")
    axes[1, 1].set_xlabel("training wall time [s]")
    axes[0, 0].legend()
    fig.suptitle("2D Poisson PINN (4×50 tanh, float64)")
    save_figure(fig, out / "pinn.png", dpi=120)
    return rows


# ------------------------------------------------------------------------------------------
# 4. digits classifier
# ------------------------------------------------------------------------------------------
def digits_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return (torch.from_numpy(Xtr), torch.from_numpy(ytr).long(), torch.from_numpy(Xte),
            torch.from_numpy(yte).long())


def cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def digits(args: argparse.Namespace, out: Path) -> list[dict]:
    Xtr, ytr, Xte, yte = digits_data()
    epochs = 3 if args.quick else 10
    batch = 64
    seeds = [0] if args.quick else [0, 1]
    methods = {"curveball": {"loss": "cross_entropy"}, "sgd": {"lr": 0.01, "momentum": 0.9},
               "adam": {"lr": 1e-3}}
    rows, traces = [], {}
    for name, opts in methods.items():
        for seed in seeds:
            net = cnn(seed)
            opt = make_optimizer(name, net, **opts)
            g = torch.Generator().manual_seed(100 + seed)
            it, t_train, trace = 0, 0.0, []
            for _ in range(epochs):
                perm = torch.randperm(len(Xtr), generator=g)
                for i in range(0, len(Xtr), batch):
                    idx = perm[i:i + batch]
                    xb, yb = Xtr[idx], ytr[idx]

                    def f(xb: Tensor = xb, yb: Tensor = yb,
                          net: nn.Module = net) -> tuple[Tensor, Tensor]:
                        o = net(xb)
                        return o, nn.functional.cross_entropy(o, yb)

                    t0 = time.perf_counter()
                    loss = take_step(opt, f)
                    t_train += time.perf_counter() - t0
                    it += 1
                    trace.append({"method": name, "seed": seed, "iter": it, "time_s": t_train,
                                  "batch_loss": loss})
            with torch.no_grad():
                full = float(nn.functional.cross_entropy(net(Xtr), ytr))
                acc = float((net(Xte).argmax(1) == yte).float().mean())
            traces[(name, seed)] = trace
            rows.append({"method": name, "seed": seed, "iters": it, "train_s": round(t_train, 2),
                         "final_train_loss": full, "test_acc": acc})
            print("digits", rows[-1], flush=True)
    write_csv(out / "digits.csv", rows)
    write_csv(out / "digits_trace.csv", [r for t in traces.values() for r in t])
    fig, axes = subplots(1, 2, figsize=(10, 4), sharey=True)
    for (name, seed), trace in traces.items():
        if seed != seeds[0]:
            continue
        y = np.array([r["batch_loss"] for r in trace])
        k = 10
        sm = np.convolve(y, np.ones(k) / k, mode="valid")
        axes[0].semilogy(np.arange(k, len(y) + 1), sm, label=name)
        axes[1].semilogy([r["time_s"] for r in trace][k - 1:], sm, label=name)
    axes[0].set_xlabel("iteration")
    axes[1].set_xlabel("training wall time [s]")
    axes[0].set_ylabel("mini-batch loss (moving average of 10)")
    axes[0].legend()
    fig.suptitle("sklearn digits, small CNN, batch 64, default hyper-parameters")
    save_figure(fig, out / "digits.png", dpi=120)
    return rows


# ------------------------------------------------------------------------------------------
# 5. cost of one step: CurveBall / Adam
# ------------------------------------------------------------------------------------------
def time_steps(step: Callable[[], object], n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def benchmark(args: argparse.Namespace, out: Path) -> list[dict]:
    n = 10 if args.quick else 20
    rows = []
    make_closure, _ = pinn_setup(args.quick)
    Xtr, ytr, _, _ = digits_data()
    xb, yb = Xtr[:64], ytr[:64]

    def cases():
        net = mlp([2, 50, 50, 50, 50, 1], nn.Tanh, seed=0, dtype=DT)
        yield "PINN 4x50 tanh (float64)", net, make_closure(net), {"loss": "autograd"}
        net = cnn(0)

        def f(net: nn.Module = net) -> tuple[Tensor, Tensor]:
            o = net(xb)
            return o, nn.functional.cross_entropy(o, yb)

        yield "digits CNN batch 64 (float32)", net, f, {"loss": "cross_entropy"}
        yield "digits CNN, torch.func.jvp", net, f, {"loss": "cross_entropy",
                                                     "forward_mode": "func"}

    for name, net, closure, cb_opts in cases():
        adam = make_optimizer("adam", net, lr=1e-5)
        cb = CurveBall(net, auto_lambda=False, **cb_opts)  # without the λ-ratio pass
        cb5 = CurveBall(net, **cb_opts)  # default: λ-ratio pass every 5 steps (from step 0)
        steps = {
            "forward": lambda closure=closure: closure(),
            "adam": lambda adam=adam, closure=closure: take_step(adam, closure),
            "curveball": lambda cb=cb, closure=closure: cb.step(closure),
            "curveball_lambda": lambda cb5=cb5, closure=closure: cb5.step(closure),
        }
        for step in steps.values():  # warm-up
            step()
        # interleaved timing: the machine is shared, so alternate the candidates
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(n):
            for k, step in steps.items():
                t0 = time.perf_counter()
                step()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        mean5 = statistics.mean(times["curveball_lambda"])
        rows.append({"case": name, "forward_ms": 1e3 * med["forward"],
                     "adam_step_ms": 1e3 * med["adam"], "curveball_step_ms": 1e3 * med["curveball"],
                     "ratio_curveball_over_adam": med["curveball"] / med["adam"],
                     "curveball_mean_step_with_lambda_pass_ms": 1e3 * mean5,
                     "extra_cost_in_forward_passes": (med["curveball"] - med["adam"])
                     / med["forward"]})
        print("bench", rows[-1], flush=True)
    write_csv(out / "benchmark.csv", rows)
    return rows


# ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small budgets (about a minute)")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pinn-seconds", type=float, default=60.0,
                    help="training wall-time budget per PINN method")
    ap.add_argument("--only", nargs="*", default=None,
                    choices=["rosenbrock", "linear", "pinn", "digits", "benchmark"])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = {"rosenbrock": rosenbrock, "linear": linear_net, "pinn": pinn, "digits": digits,
             "benchmark": benchmark}
    results = {}
    for name, fn in parts.items():
        if args.only is None or name in args.only:
            t0 = time.perf_counter()
            results[name] = fn(args, args.out)
            print(f"== {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
    env = (f"load average at the end {os.getloadavg()}, torch {torch.__version__}, "
           f"Python {platform.python_version()}, "
           f"{platform.machine()}, {args.threads} threads, "
           f"{'quick' if args.quick else 'full'} run; command: `PYTHONPATH=. python "
           f"experiments/curveball/run.py {' '.join(sys.argv[1:])}`")
    # tables.md is rebuilt from every part's CSV present in --out (parts may be re-run alone)
    (args.out / "last_run.txt").write_text(env + "\n")
    sections = ["# CurveBall reproduction: measured tables\n", f"Last run: {env}\n"]
    for name, csv_name in (("rosenbrock", "rosenbrock"), ("linear", "linear_net"),
                           ("pinn", "pinn"), ("digits", "digits"), ("benchmark", "benchmark")):
        path = args.out / f"{csv_name}.csv"
        if path.exists():
            sections.append(f"## {name}\n\n{markdown_table(read_csv(path, numbers=True))}")
    (args.out / "tables.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
