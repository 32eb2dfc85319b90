"""DeepXDE's side of the comparison: the benchmark's cases with DeepXDE 1.15 (PyTorch backend).

Runs in its own virtual environment (``/work/deepxde-venv``: torch and deepxde, no pdesolve) on
the cases that ``deepxde_prepare.py`` exported to ``results/deepxde/<case>.npz``: the same
network (sizes, activation, *initial weights*), the same collocation and boundary points of
both phases, the same hard constraints (DeepXDE output and feature transforms), the same loss
(mean squares, boundary weight), float64, Adam at lr 1e-3, then torch's L-BFGS with the same
options. Errors are measured on the exported test points against the exported reference.
Writes ``results/deepxde/deepxde.json`` (same fields as ``pdesolve.json``).

    OMP_NUM_THREADS=1 DDE_BACKEND=pytorch /work/deepxde-venv/bin/python \\
        experiments/pinn_benchmark/deepxde_compare.py --adam 220
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

import deepxde as dde
import numpy as np
import torch

OUT = Path(__file__).resolve().parent / "results" / "deepxde"


# the equations, written the DeepXDE way ------------------------------------------------------
def burgers(meta):
    nu = meta["params"]["nu"]

    def pde(x, y):
        y_x = dde.grad.jacobian(y, x, i=0, j=0)
        y_t = dde.grad.jacobian(y, x, i=0, j=1)
        y_xx = dde.grad.hessian(y, x, i=0, j=0)
        return y_t + y * y_x - nu * y_xx

    def output(x, y):  # u = u0(x) + t D(x) N, D = (x + 1)(1 - x) / 2
        xs, t = x[:, 0:1], x[:, 1:2]
        return -torch.sin(math.pi * xs) + t * (xs + 1) * (1 - xs) / 2 * y

    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))
    return geom, pde, output, None, None


def allen_cahn(meta):
    eps, rho = meta["params"]["epsilon"], meta["params"]["rho"]
    modes = int(meta["fourier_modes"])

    def pde(x, y):
        y_t = dde.grad.jacobian(y, x, i=0, j=1)
        y_xx = dde.grad.hessian(y, x, i=0, j=0)
        return y_t - eps * y_xx + rho * (y**3 - y)

    def features(x):  # exact periodicity in x (period 2), time passes through
        k = torch.arange(1, modes + 1, dtype=x.dtype)
        phase = math.pi * x[:, 0:1] * k
        return torch.cat([torch.cos(phase), torch.sin(phase), x[:, 1:2]], dim=1)

    def output(x, y):  # u = u0(x) + t N
        xs, t = x[:, 0:1], x[:, 1:2]
        return xs**2 * torch.cos(math.pi * xs) + t * y

    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))
    return geom, pde, output, features, None


def heat(meta):
    """``u_t = ∇·(k∇u) + f``, ``k = k0 (1 + sin(2πx) sin(2πy) / 2)`` (pdesolve's "smooth"
    coefficient) or ``k0``, manufactured ``u = e^-t (sin(πx) sin(πy) + (x + y)/4)``."""
    p = meta["params"]
    if p["dim"] != 2 or p["solution"] != "manufactured":
        raise SystemExit("heat: only the 2D manufactured case is written")
    k0, smooth = p["k_value"], p["coefficient"] == "smooth"
    pi = math.pi

    def coefficient(x):
        if not smooth:
            return k0 + 0 * x[:, 0:1], 0 * x[:, 0:1], 0 * x[:, 0:1]
        sx, sy = torch.sin(2 * pi * x[:, 0:1]), torch.sin(2 * pi * x[:, 1:2])
        cx, cy = torch.cos(2 * pi * x[:, 0:1]), torch.cos(2 * pi * x[:, 1:2])
        return k0 * (1 + 0.5 * sx * sy), k0 * pi * cx * sy, k0 * pi * sx * cy

    def initial(x):
        s = torch.sin(pi * x[:, 0:1]) * torch.sin(pi * x[:, 1:2])
        return s + 0.25 * (x[:, 0:1] + x[:, 1:2])

    def source(x):  # f = u_t - k Δu - ∇k·∇u for the manufactured u
        e = torch.exp(-x[:, 2:3])
        sx, sy = torch.sin(pi * x[:, 0:1]), torch.sin(pi * x[:, 1:2])
        cx, cy = torch.cos(pi * x[:, 0:1]), torch.cos(pi * x[:, 1:2])
        k, kx, ky = coefficient(x)
        ux, uy = e * (pi * cx * sy + 0.25), e * (pi * sx * cy + 0.25)
        return -e * initial(x) + k * 2 * pi**2 * e * sx * sy - kx * ux - ky * uy

    def pde(x, y):
        y_x = dde.grad.jacobian(y, x, i=0, j=0)
        y_y = dde.grad.jacobian(y, x, i=0, j=1)
        y_t = dde.grad.jacobian(y, x, i=0, j=2)
        lap = dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1)
        k, kx, ky = coefficient(x)
        return y_t - (k * lap + kx * y_x + ky * y_y) - source(x)

    def output(x, y):  # u = u0(x) + t N (the boundary data enter by a penalty)
        return initial(x) + x[:, 2:3] * y

    geom = dde.geometry.GeometryXTime(dde.geometry.Rectangle([0, 0], [1, 1]),
                                      dde.geometry.TimeDomain(0, 1))  # fmt: skip
    return geom, pde, output, None, source


def poisson_holes(meta):
    if meta["params"]["case"] != "laplace":
        raise SystemExit("poisson_holes: only the Laplace case is written")

    def pde(x, y):
        return -(dde.grad.hessian(y, x, i=0, j=0) + dde.grad.hessian(y, x, i=1, j=1))

    return dde.geometry.Rectangle([-0.5, -0.5], [0.5, 0.5]), pde, None, None, None


EQUATIONS = {"burgers": burgers, "allen_cahn": allen_cahn, "heat": heat,
             "poisson_holes": poisson_holes}  # fmt: skip


class Stamps(dde.callbacks.Callback):
    """Wall and CPU time at the end of every step of DeepXDE's loop."""

    def __init__(self) -> None:
        super().__init__()
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_batch_end(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.thread_time())


def block_medians(stamps: list[float], warmup: int, block: int = 10) -> float:
    """Median over blocks of ``block`` steps (after ``warmup``) of the mean step time."""
    t = np.asarray(stamps[warmup - 1 :])
    n = (len(t) - 1) // block
    return float(np.median((t[block : n * block + 1 : block] - t[: n * block : block]) / block))


def run_case(path: Path, adam: int, warmup: int, lbfgs: int) -> dict:
    z = np.load(path)
    meta = json.loads(str(z["meta"]))
    geom, pde, output, features, source = EQUATIONS[meta["problem"]](meta)
    if source is not None:  # the same right-hand side as pdesolve's at its points
        f = source(torch.as_tensor(z["interior"])).numpy().reshape(-1)
        np.testing.assert_allclose(f, z["source"], rtol=1e-12, atol=1e-12)
    bcs, weights = [], [1.0]
    if z["boundary"].size:
        bcs = [dde.icbc.PointSetBC(z["boundary"], z["boundary_values"][:, None])]
        weights.append(meta["boundary_weight"])
    kind = dde.data.TimePDE if meta["time_dependent"] else dde.data.PDE
    data = kind(geom, pde, bcs, num_domain=0, num_boundary=0, anchors=z["interior"])
    model_cfg = meta["model"]
    n_in = z["W0"].shape[1]
    net = dde.nn.FNN([n_in] + [model_cfg["width"]] * model_cfg["depth"] + [1],
                     model_cfg["activation"], "Glorot normal")  # fmt: skip
    with torch.no_grad():  # pdesolve's initial weights
        for i, linear in enumerate(net.linears):
            linear.weight.copy_(torch.as_tensor(z[f"W{i}"]))
            linear.bias.copy_(torch.as_tensor(z[f"b{i}"]))
    if features is not None:
        net.apply_feature_transform(features)
    if output is not None:
        net.apply_output_transform(output)
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3, loss_weights=weights)
    model.train(iterations=0, verbose=0)
    loss0 = float(np.sum(model.losshistory.loss_train[-1]))
    stamps = Stamps()
    model.train(iterations=adam, display_every=10**9, callbacks=[stamps], verbose=0)
    test_x, test_u = z["test_x"], z["test_u"]

    def l2() -> float:
        u = model.predict(test_x).reshape(-1)
        return float(np.linalg.norm(u - test_u) / np.linalg.norm(test_u))

    row = {"problem": path.stem.rsplit("_", 1)[0], "activation": model_cfg["activation"],
           "loss0": loss0, "loss0_pdesolve": meta["loss0"], "adam_steps": adam,
           "loss_adam": float(np.sum(model.losshistory.loss_train[-1])), "l2_adam": l2(),
           "adam_steps_per_s_cpu": 1.0 / block_medians(stamps.cpu, warmup),
           "adam_steps_per_s_wall": 1.0 / block_medians(stamps.wall, warmup)}  # fmt: skip
    # the quasi-Newton phase trains on pdesolve's second fixed batch
    if bcs:
        bcs[0].points = np.asarray(z["lbfgs_boundary"])
        bcs[0].values = torch.as_tensor(z["lbfgs_boundary_values"][:, None])
    data.train_x_bc = data.num_bcs = None
    data.replace_with_anchors(z["lbfgs_interior"])
    dde.optimizers.set_LBFGS_options(maxcor=50, ftol=0.0, gtol=1e-8, maxiter=lbfgs,
                                     maxfun=int(lbfgs * 1.25), maxls=50)  # fmt: skip
    # DeepXDE 1.15 sets the iterations of one torch L-BFGS call (at most 1000) at import only
    options = dde.optimizers.config.LBFGS_options
    options["iter_per_step"], options["fun_per_step"] = min(1000, lbfgs), int(lbfgs * 1.25)
    model.compile("L-BFGS", loss_weights=weights)
    step = model._train_step
    spent = {"wall": 0.0, "cpu": 0.0}

    def timed_step(*args):  # the optimizer step alone (DeepXDE evaluates the test set after it)
        w0, c0 = time.perf_counter(), time.thread_time()
        step(*args)
        spent["wall"] += time.perf_counter() - w0
        spent["cpu"] += time.thread_time() - c0

    model._train_step = timed_step
    model.train(verbose=0)
    state = model.opt.state_dict()["state"][0]
    row.update({"lbfgs_iterations": int(state["n_iter"]), "lbfgs_evals": int(state["func_evals"]),
                "lbfgs_evals_per_s_cpu": state["func_evals"] / spent["cpu"],
                "lbfgs_evals_per_s_wall": state["func_evals"] / spent["wall"],
                "loss_lbfgs": float(np.sum(model.losshistory.loss_train[-1])), "l2_lbfgs": l2(),
                "load": os.getloadavg()[0], "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__, "deepxde": dde.__version__})  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam", type=int, default=220)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--lbfgs", type=int, default=100)
    parser.add_argument("--cases", nargs="*", default=None, help="e.g. burgers_tanh")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dde.config.set_default_float("float64")
    dde.config.set_random_seed(0)
    results_path = OUT / "deepxde.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    paths = sorted(OUT.glob("*.npz")) if not args.cases else [OUT / f"{c}.npz" for c in args.cases]
    for path in paths:
        row = run_case(path, args.adam, args.warmup, args.lbfgs)
        results[path.stem] = row
        results_path.write_text(json.dumps(results, indent=1, default=float))
        print(json.dumps(row, default=float), flush=True)


if __name__ == "__main__":
    main()
