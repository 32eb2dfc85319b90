"""One prepared check of every neural part of pdesolve on CUDA against the CPU.

For each component it runs the same computation on the GPU and on the CPU, reports how far apart
the results are (against a tolerance stated per component) and times both: one warm-up call,
then ``torch.cuda.synchronize()``-bracketed ``time.perf_counter`` timers, medians of repeats. The
CPU runs only one inference, or a few iterations, at the large sizes. Writes ``check.json`` and
``check.md`` (a markdown table) under ``--out`` (never into an existing non-empty folder unless
``--overwrite``).

Agreement runs switch TF32 off (``strict_fp32``: float32 means float32 on both devices); timed
runs use torch's defaults (cuDNN may use TF32 for float32 convolutions). Without CUDA the CPU half
runs at tiny sizes and the report says so (that mode runs in the test suite).

    python experiments/gpu/check.py --out experiments/gpu/results/run1       # make gpu-check
    python experiments/gpu/check.py --out /tmp/gpu-tiny --tiny              # CPU, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pdesolve  # noqa: E402
from pdesolve.io import markdown_table  # noqa: E402

#: problem sizes and iteration counts; "full" is the CUDA run (< 5 minutes on one H200)
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "pinn_steps": 200, "pinn_agree_steps": 20, "pinn_batch": 2000, "pinn_width": 40,
        "dcdm_n2": 128, "dcdm_n3": 128, "dcdm_maxiter2": 1000, "dcdm_maxiter3": 400,
        "dcdm_cpu_iters3": 3, "dcdm_compare_iters": 10, "dcdm_agree_n3": 64,
        "prolong_n": 1023, "firenet_n": 256,
        "firenet_restarts": 40, "firenet_agree_restarts": 4, "curveball_points": 4096,
        "curveball_width": 64, "curveball_steps": 6, "unet_side": 256, "unet_batch": 8,
        "train_dcdm_n": 128, "train_batch": 8, "imbalance_batch": 512, "repeats": 5,
        "tts_sizes": [128, 256], "tts_precisions": ["float32", "tf32", "bfloat16"],
        "tts_maxiter": 600, "tts_host_sizes": [128],
    },
    "tiny": {
        "pinn_steps": 10, "pinn_agree_steps": 5, "pinn_batch": 64, "pinn_width": 8,
        "dcdm_n2": 32, "dcdm_n3": 16, "dcdm_maxiter2": 300, "dcdm_maxiter3": 300,
        "dcdm_cpu_iters3": 3, "dcdm_compare_iters": 10, "prolong_n": 63, "firenet_n": 32,
        "firenet_restarts": 4, "firenet_agree_restarts": 2, "curveball_points": 128,
        "curveball_width": 8, "curveball_steps": 3, "unet_side": 32, "unet_batch": 1,
        "train_dcdm_n": 32, "train_batch": 2, "imbalance_batch": 32, "repeats": 2,
        "tts_sizes": [8], "tts_precisions": ["float32", "tf32"], "tts_maxiter": 300,
        "tts_host_sizes": [8],
    },
}  # fmt: skip

#: the columns of the markdown table (the JSON keeps every field of every row)
COLUMNS = ("component", "size", "dtype", "cuda_s", "cpu_s", "speedup", "difference", "tolerance",
           "agree", "sanity", "note")  # fmt: skip
TTS_COLUMNS = ("size", "device", "precision", "vectors", "matvec", "iterations", "setup_s",
               "inference_s", "peak_gib", "cpu_gamg_s", "ratio_to_gamg", "sanity")  # fmt: skip

#: agreement tolerances (relative, unless the row says otherwise)
TOL_F64 = 1e-9  # float64 computations of a few dozen steps
TOL_F32 = 1e-4  # float32 with TF32 off
TOL_ITER = 1e-3  # residual histories of float32-network iterations (the first few iterations)


def gamg_reference() -> dict[int, float]:
    """Wall seconds (set-up + solve) of PETSc CG+GAMG to rtol 1e-6 on the unseen obstacle box
    (seed 101), per 3D size, measured on the CPU machine (experiments/dcdm/results)."""
    from pdesolve.io import read_csv

    path = ROOT / "experiments" / "dcdm" / "results" / "results3d.csv"
    if not path.is_file():
        return {}
    return {int(r["n"]): float(r["wall_s"]) for r in read_csv(path)
            if r["method"] == "gamg_pcg" and r["geometry"] == "obstacles101"}  # fmt: skip


def device_report() -> str:
    """One line: the device, its memory, torch and CUDA versions."""
    base = f"torch {torch.__version__}, Python {platform.python_version()}"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return (f"device: {p.name}, {p.total_memory / 2**30:.1f} GiB, {base}, "
                f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")  # fmt: skip
    return f"device: CPU only ({os.cpu_count()} cores; torch sees no CUDA device), {base}"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Median wall seconds of ``repeats`` synchronised calls of ``fn`` after ``warmup`` calls."""
    out = None
    for _ in range(warmup):
        out = fn()
    sync(device)
    times = []
    for _ in range(max(repeats, 1)):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for matmuls and cuDNN convolutions (float32 agreement runs)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def rel_diff(a: Any, b: Any) -> float:
    """``max|a - b| / max|b|`` of two arrays or tensors (any devices)."""
    a = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, float)
    b = b.detach().cpu().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


class Check:
    """Runs the components and collects one row per measurement."""

    def __init__(self, mode: str, pairs: list[tuple[str, str]]) -> None:
        """``pairs``: ``(role, device)``, roles "cuda" (the GPU half) and "cpu"."""
        self.mode, self.pairs, self.s = mode, pairs, SIZES[mode]
        self.cuda = len(pairs) == 2  # two devices: agreement is checked
        self.rows: list[dict[str, Any]] = []

    def row(self, component: str, size: str, dtype: str, times: dict[str, float],
            difference: float | None, tolerance: float | None, sanity: bool, note: str = "",
            **extra: Any) -> None:  # fmt: skip
        cuda_s, cpu_s = times.get("cuda"), times.get("cpu")
        agree = None if difference is None else bool(difference <= tolerance)
        self.rows.append({
            "component": component, "size": size, "dtype": dtype, "cuda_s": cuda_s,
            "cpu_s": cpu_s, "speedup": (cpu_s / cuda_s) if cuda_s and cpu_s else None,
            "difference": difference, "tolerance": tolerance, "agree": agree,
            "sanity": bool(sanity), "note": note, **extra,
        })  # fmt: skip
        shown = {k: v for k, v in self.rows[-1].items() if v is not None}
        print(json.dumps(shown, default=float), flush=True)

    def run(self, name: str, fn: Callable[[], None]) -> None:
        t = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # keep going: every component gets its row
            traceback.print_exc()
            self.rows.append({"component": name, "size": "", "dtype": "", "cuda_s": None,
                              "cpu_s": None, "speedup": None, "difference": None,
                              "tolerance": None, "agree": False, "sanity": False,
                              "note": f"ERROR {type(exc).__name__}: {exc}"[:300]})  # fmt: skip
        print(f"# {name}: {time.perf_counter() - t:.1f} s", flush=True)

    # ------------------------------------------------------------------ components
    def pinn(self) -> None:
        """RAF-PINN training (2D Poisson): the PINN trainer itself on each device."""
        from pdesolve.train.pinn import PINNTrainer

        s = self.s
        problem = pdesolve.get_problem("poisson", dim=2, solution="sine")
        probe = torch.rand(500, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

        def trainer(device: str, steps: int) -> PINNTrainer:
            return PINNTrainer(
                problem, model={"name": "resnet", "width": s["pinn_width"], "activation": "raf"},
                optimizer={"name": "adam", "lr": 1e-3}, steps=steps, batch=s["pinn_batch"],
                log_every=steps, seed=0, device=device, dtype="float64", test_points=2000,
                monitor_points=500, progress=False,
            )  # fmt: skip

        outs, times = {}, {}
        k = s["pinn_agree_steps"]
        for role, dev in self.pairs:
            tr = trainer(dev, k)
            t = time.perf_counter()
            tr.fit()
            sync(dev)
            times[role] = (time.perf_counter() - t) / k
            outs[role] = tr.evaluate(probe)
        diff = rel_diff(outs["cuda"], outs["cpu"]) if self.cuda else None
        self.row("pinn_raf_agree", f"2D, {k} Adam steps, batch {s['pinn_batch']}", "float64",
                 times, diff, TOL_F64 * 1e3, True,
                 "s per step (fit/steps, incl. set-up); difference of u on 500 points")  # fmt: skip
        role, dev = self.pairs[0]
        tr = trainer(dev, s["pinn_steps"])
        t = time.perf_counter()
        hist = tr.fit()
        sync(dev)
        total = time.perf_counter() - t
        rms = hist["residual_rms"]
        ok = bool(rms[-1] < rms[0] and math.isfinite(hist["relative_l2"][-1]))
        self.row("pinn_raf_train", f"2D, {s['pinn_steps']} Adam steps", "float64",
                 {role: total}, None, None, ok,
                 f"whole fit on {dev}; residual RMS {rms[0]:.3g} -> {rms[-1]:.3g}, "
                 f"rel. L2 {hist['relative_l2'][-1]:.3g}")  # fmt: skip

    def dcdm(self, dim: int) -> None:
        """DCDM network inference (float64 agreement, float32 timing) and a full DCDM solve."""
        s = self.s
        n = s[f"dcdm_n{dim}"]
        system = pdesolve.get_problem("pressure_poisson", dim=dim, n=n).discretize()
        size = f"{n}^{dim}"
        # float64 CPU convolutions are ~10x slower than float32: at 128^3 they agree on 64^3
        n64 = s.get(f"dcdm_agree_n{dim}", n)
        systems = {"float32": system, "float64": system if n64 == n else pdesolve.get_problem(
            "pressure_poisson", dim=dim, n=n64).discretize()}  # fmt: skip
        # inference: the preconditioner map r -> f(r/||r||) (host vector in, host vector out)
        outs, times, net_times = {}, {}, {}
        for dtype in ("float64", "float32"):
            sys_ = systems[dtype]
            r = np.random.default_rng(0).standard_normal(sys_.size)
            for role, dev in self.pairs:
                pc = pdesolve.get_preconditioner("dcdm_network", device=dev, dtype=dtype)
                pc.setup(sys_)
                big_cpu = role == "cpu" and self.cuda
                with strict_fp32():
                    outs[dtype, role] = pc.apply(r)
                if dtype == "float32":
                    reps = 1 if big_cpu else s["repeats"]
                    warm = 0 if big_cpu else 1
                    times[role], _ = bench(lambda pc=pc, r=r: pc.apply(r), dev, reps, warm)
                    net = pc.network_.model
                    x = torch.randn((1, 1) + sys_.grid.shape, device=dev)
                    with torch.no_grad():
                        net_times[role], _ = bench(lambda net=net, x=x: net(x), dev, reps, warm)
        for dtype, tol in (("float64", TOL_F64), ("float32", TOL_F32)):
            diff = rel_diff(outs[dtype, "cuda"], outs[dtype, "cpu"]) if self.cuda else None
            finite = bool(np.all(np.isfinite(outs[dtype, self.pairs[-1][0]])))
            m = systems[dtype].grid.shape[0]
            self.row(f"dcdm{dim}d_inference_agree", f"{m}^{dim}", dtype, {}, diff, tol, finite,
                     "network direction of one residual (TF32 off)")  # fmt: skip
        self.row(f"dcdm{dim}d_inference", size, "float32", times, None, None, True,
                 "s per preconditioner apply (host vector in and out)")
        self.row(f"dcdm{dim}d_network_forward", size, "float32", net_times, None, None, True,
                 "s per forward pass on a device tensor")
        # full solve
        results, solve_times = {}, {}
        for role, dev in self.pairs:
            maxiter = s[f"dcdm_maxiter{dim}"]
            if role == "cpu" and self.cuda and dim == 3:
                maxiter = s["dcdm_cpu_iters3"]
            solver = pdesolve.get_solver("dcdm", device=dev, rtol=1e-8, maxiter=maxiter)
            solver.setup(system)
            sync(dev)
            t = time.perf_counter()
            results[role] = solver.solve(system.b)
            sync(dev)
            solve_times[role] = time.perf_counter() - t
            solver.close()
        k = min(s["dcdm_compare_iters"], *(len(res.residual_norms) for res in results.values()))
        diff = None
        if self.cuda:
            diff = rel_diff(results["cuda"].residual_norms[:k], results["cpu"].residual_norms[:k])
        main = results[self.pairs[0][0]]
        ok = bool(main.converged and main.residual_norms[-1] <= 1e-8 * system.b_norm * (1 + 1e-9))
        iters = {dev: res.iterations for dev, res in results.items()}
        self.row(f"dcdm{dim}d_solve", size, "float32 net, float64 CG", solve_times, diff,
                 TOL_ITER, ok,
                 f"time to rtol 1e-8 ({main.reason.name}); iterations {iters}; difference of the "
                 f"first {k} residual norms", iterations=iters)  # fmt: skip

    def prolongation(self) -> None:
        """The learned prolongation network on the stencils of a lognormal diffusion problem."""
        from pdesolve.nn.prolongation import learned_pstencil, load_prolongation_net
        from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT

        n = self.s["prolong_n"]
        stencil = torch.as_tensor(pdesolve.get_problem(
            "diffusion", dim=2, n=n, coefficient="lognormal", scheme="fe9", seed=0,
        ).discretize().stencil)  # fmt: skip
        outs, times = {}, {}
        for role, dev in self.pairs:
            net = load_prolongation_net(str(DEFAULT_CHECKPOINT), map_location=dev)
            st = stencil.to(dev)
            reps = 1 if role == "cpu" and self.cuda else self.s["repeats"]
            with torch.no_grad(), strict_fp32():
                outs[role] = learned_pstencil(net, st)
                times[role], _ = bench(lambda net=net, st=st: learned_pstencil(net, st), dev, reps)
        p = outs[self.pairs[0][0]].cpu()
        unity = float((p[:-1, :, 2, 1] + p[1:, :, 0, 1] - 1).abs().max())
        diff = rel_diff(outs["cuda"], outs["cpu"]) if self.cuda else None
        self.row("prolongation_net", f"{n}^2 fine grid", str(p.dtype).replace("torch.", ""),
                 times, diff, TOL_F64, unity < 1e-10,
                 f"P-stencils of the shipped network (loaded with map_location=device); "
                 f"partition of unity error {unity:.1e}")  # fmt: skip

    def firenet(self) -> None:
        """FIRENET (unrolled restarted primal-dual) on a compressed-sensing problem."""
        s = self.s
        n = s["firenet_n"]
        problem = pdesolve.get_problem("compressed_sensing", n=n, rate=0.25)
        k = s["firenet_agree_restarts"]
        outs, times = {}, {}
        for role, dev in self.pairs:
            def run(dev: str = dev, restarts: int = k) -> Any:
                return pdesolve.recover(problem, method="firenet", device=dev,
                                        inner_iterations=5, restarts=restarts)  # fmt: skip

            reps = 1 if role == "cpu" and self.cuda else s["repeats"]
            times[role], res = bench(run, dev, reps, 0 if role == "cpu" and self.cuda else 1)
            times[role] /= 5 * k
            outs[role] = res
        diff = rel_diff(outs["cuda"].coefficients, outs["cpu"].coefficients) if self.cuda else None
        norms = outs[self.pairs[0][0]].misfit_norms
        self.row("firenet_agree", f"N = {n}, {k} restarts x 5", "float64", times, diff, TOL_F64,
                 bool(norms[-1] < norms[0]), "s per layer (one A and one A*)")  # fmt: skip
        role, dev = self.pairs[0]
        full = s["firenet_restarts"]
        t, res = bench(lambda: pdesolve.recover(problem, method="firenet", device=dev,
                                                inner_iterations=5, restarts=full),
                       dev, 3 if self.cuda else 1)  # fmt: skip
        self.row("firenet", f"N = {n}, {full} restarts x 5", "float64", {role: t}, None, None,
                 bool(res.misfit_norms[-1] < res.misfit_norms[0]),
                 f"whole network on {dev}; relative error {res.relative_error}")

    def curveball(self) -> None:
        """CurveBall steps on a small regression MLP."""
        from pdesolve.nn.curveball import CurveBall
        from pdesolve.nn.mlp import MLP

        s = self.s
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(s["curveball_points"], 2, generator=gen, dtype=torch.float64)
        y = torch.sin(3 * x[:, :1]) * torch.cos(2 * x[:, 1:])
        torch.manual_seed(0)
        base = MLP(2, 1, width=s["curveball_width"], depth=3).double()
        params, times, losses = {}, {}, {}
        for role, dev in self.pairs:
            model = MLP(2, 1, width=s["curveball_width"], depth=3).double().to(dev)
            model.load_state_dict(base.state_dict())
            xd, yd = x.to(dev), y.to(dev)
            opt = CurveBall(model.parameters(), model=model, loss="mse")

            def closure(model: Any = model, xd: Tensor = xd, yd: Tensor = yd) -> Any:
                pred = model(xd)
                return pred, torch.mean((pred - yd) ** 2)

            step_times, hist = [], []
            for _ in range(s["curveball_steps"]):
                sync(dev)
                t = time.perf_counter()
                hist.append(float(opt.step(closure)))
                sync(dev)
                step_times.append(time.perf_counter() - t)
            times[role] = statistics.median(step_times[1:])
            params[role] = torch.cat([p.detach().flatten().cpu() for p in model.parameters()])
            losses[role] = hist
        diff = rel_diff(params["cuda"], params["cpu"]) if self.cuda else None
        h = losses[self.pairs[0][0]]
        self.row("curveball_step", f"MLP width {s['curveball_width']}, "
                 f"{s['curveball_points']} points", "float64", times, diff, TOL_F64, h[-1] < h[0],
                 f"median s per step after the first; parameters after {s['curveball_steps']} "
                 "steps compared")  # fmt: skip

    def unet(self) -> None:
        """The U-Net baseline: forward pass and one Adam training step (its trainer's step)."""
        from pdesolve.nn.unet import UNet

        s = self.s
        torch.manual_seed(0)
        base = UNet(features=16, depth=3)
        gen = torch.Generator().manual_seed(0)
        shape = (s["unet_batch"], 1, s["unet_side"], s["unet_side"])
        x, target = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        fwd, step, outs, grads = {}, {}, {}, {}
        for role, dev in self.pairs:
            net = UNet(features=16, depth=3).to(dev)
            net.load_state_dict(base.state_dict())
            xd, td = x.to(dev), target.to(dev)
            with torch.no_grad(), strict_fp32():
                outs[role] = net(xd)
            reps = 1 if role == "cpu" and self.cuda else s["repeats"]
            with torch.no_grad():
                fwd[role], _ = bench(lambda net=net, xd=xd: net(xd), dev, reps)
            with strict_fp32():
                net.zero_grad()
                torch.mean((net(xd) - td) ** 2).backward()
                grads[role] = torch.cat([p.grad.flatten().cpu() for p in net.parameters()])
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)

            def train_step(net: Any = net, xd: Tensor = xd, td: Tensor = td, opt: Any = opt
                           ) -> Any:  # fmt: skip
                opt.zero_grad()
                loss = torch.mean((net(xd) - td) ** 2)
                loss.backward()
                opt.step()
                return loss

            step[role], _ = bench(train_step, dev, reps)
        size = f"{s['unet_batch']} x {s['unet_side']}^2"
        d_out = rel_diff(outs["cuda"], outs["cpu"]) if self.cuda else None
        d_grad = rel_diff(grads["cuda"], grads["cpu"]) if self.cuda else None
        self.row("unet_forward", size, "float32", fwd, d_out, TOL_F32, True, "output compared")
        self.row("unet_train_step", size, "float32", step, d_grad, TOL_F32, True,
                 "Adam step (MSE); gradient compared (TF32 off)")

    def train_dcdm(self) -> None:
        """One step of the DCDM trainer's objective: DCDMNet, dcdm_loss, Adam."""
        from pdesolve.linalg.torch_ops import StencilOperator
        from pdesolve.nn.dcdm_cnn import DCDMNet
        from pdesolve.train.dcdm_training import dcdm_loss

        s = self.s
        n = s["train_dcdm_n"]
        system = pdesolve.get_problem("pressure_poisson", dim=2, n=n).discretize()
        mask = torch.as_tensor(system.metadata["fluid_mask"], dtype=torch.float32)
        gen = torch.Generator().manual_seed(0)
        b = torch.randn((s["train_batch"], n, n), generator=gen) * mask
        b = b / b.flatten(1).norm(dim=1)[:, None, None]
        torch.manual_seed(0)
        base = DCDMNet(2, levels=4)
        times, grads, losses = {}, {}, {}
        for role, dev in self.pairs:
            model = DCDMNet(2, levels=4).to(dev)
            model.load_state_dict(base.state_dict())
            A = StencilOperator(system.stencil, dtype=torch.float32, device=dev)
            bd, md = b.to(dev), mask.to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)

            def step(model: Any = model, A: Any = A, bd: Tensor = bd, md: Tensor = md,
                     opt: Any = opt, keep: bool = False, role: str = role) -> Any:  # fmt: skip
                opt.zero_grad()
                loss = dcdm_loss(bd, model(bd[:, None])[:, 0] * md, A)
                loss.backward()
                if keep:
                    grads[role] = torch.cat([p.grad.flatten().cpu() for p in model.parameters()])
                    losses[role] = float(loss.detach())
                    return loss
                opt.step()
                return loss

            with strict_fp32():
                step(keep=True)
            reps = 1 if role == "cpu" and self.cuda else s["repeats"]
            times[role], _ = bench(step, dev, reps)
        diff = rel_diff(grads["cuda"], grads["cpu"]) if self.cuda else None
        self.row("dcdm_trainer_step", f"batch {s['train_batch']} x {n}^2", "float32", times, diff,
                 TOL_F32 * 10, math.isfinite(losses[self.pairs[0][0]]),
                 "gradient of dcdm_loss compared (TF32 off)")  # fmt: skip

    def train_prolongation(self) -> None:
        """The prolongation trainer itself (a tiny run: one epoch of two batches)."""
        from pdesolve.train.prolongation_training import TrainConfig, train

        threads = torch.get_num_threads()
        logs, times = {}, {}
        for role, dev in self.pairs:
            cfg = TrainConfig(width=16, blocks=2, samples=64, test_samples=8, test_n=16, batch=32,
                              curriculum=(16,), device=dev, threads=threads)  # fmt: skip
            t = time.perf_counter()
            with strict_fp32():
                net, log = train(cfg)
            sync(dev)
            times[role] = time.perf_counter() - t
            logs[role] = [v for rec in log for k, v in rec.items()
                         if isinstance(v, float) and "loss" in k]  # fmt: skip
            params = torch.cat([p.detach().flatten().cpu() for p in net.parameters()])
            logs[role + "_params"] = params
        torch.set_num_threads(threads)
        diff = rel_diff(logs["cuda_params"], logs["cpu_params"]) if self.cuda else None
        ok = all(math.isfinite(v) for v in logs[self.pairs[0][0]])
        self.row("prolongation_trainer", "64 samples of 16^2, 2 steps", "float64", times, diff,
                 TOL_F64 * 1e3, ok, "whole tiny train() run (Adam); trained parameters compared")

    def train_imbalance(self) -> None:
        """One step of the imbalance trainer's rule: feature mixing, cross-entropy, SGD."""
        from pdesolve.nn.classifier import FeatureClassifier
        from pdesolve.train.imbalance import FeatureMixing

        s = self.s
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(s["imbalance_batch"], 16, 16, generator=gen)
        labels = torch.randint(0, 10, (s["imbalance_batch"],), generator=gen)
        mixing = FeatureMixing(probability=1.0)
        class_prob = torch.as_tensor(mixing.class_probabilities([500, 300, 200, 100, 50, 30, 20,
                                                                 10, 5, 2]), dtype=torch.float32)
        torch.manual_seed(0)
        base = FeatureClassifier((16, 16), 10, kind="cnn", width=64)
        times, grads = {}, {}
        for role, dev in self.pairs:
            model = FeatureClassifier((16, 16), 10, kind="cnn", width=64).to(dev)
            model.load_state_dict(base.state_dict())
            xd, yd = x.to(dev), labels.to(dev)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

            def step(model: Any = model, xd: Tensor = xd, yd: Tensor = yd, opt: Any = opt,
                     keep: bool = False, role: str = role) -> Any:  # fmt: skip
                opt.zero_grad()
                feats, _ = mixing(model.features(xd), yd, class_prob,
                                  torch.Generator().manual_seed(1))
                loss = torch.nn.functional.cross_entropy(model.head(feats), yd)
                loss.backward()
                if keep:
                    grads[role] = torch.cat([p.grad.flatten().cpu() for p in model.parameters()])
                    return loss
                opt.step()
                return loss

            with strict_fp32():
                step(keep=True)
            times[role], _ = bench(step, dev, s["repeats"])
        diff = rel_diff(grads["cuda"], grads["cpu"]) if self.cuda else None
        self.row("imbalance_trainer_step", f"batch {s['imbalance_batch']} x 16^2, CNN", "float32",
                 times, diff, TOL_F32, bool(torch.isfinite(grads[self.pairs[0][0]]).all()),
                 "Procrustean feature mixing + CE + SGD; gradient compared")  # fmt: skip

    def dcdm_time_to_solution(self) -> None:
        """DCDM's time to solution on the unseen 128³ (and 256³) obstacle box of the DCDM
        results, vectors on the device, for each inference precision; plus the host-vector
        loop (one residual to the device and one direction back per iteration) at 128³. Only
        the GPU half runs (a CPU DCDM solve at 128³ takes 25 minutes); the reference is PETSc
        CG+GAMG on the same system, measured on the CPU machine (results3d.csv)."""
        s = self.s
        role, dev = self.pairs[0]
        ref = gamg_reference()
        for n in s["tts_sizes"]:
            # DCDMNet at n³: ~12 live float32 activations of 16 channels, plus the vectors
            need = 12 * 16 * 4 * n**3 + 20 * 8 * n**3
            if dev.startswith("cuda"):
                free, _ = torch.cuda.mem_get_info()
                if need > 0.8 * free:
                    self.row("dcdm3d_time_to_solution", f"{n}^3", "", {}, None, None, True,
                             f"skipped: needs ~{need / 2**30:.0f} GiB, {free / 2**30:.0f} "
                             "GiB free", device=dev)  # fmt: skip
                    continue
            t = time.perf_counter()
            system = pdesolve.get_problem("pressure_poisson", dim=3, n=n, geometry="obstacles",
                                          seed=101).discretize()  # fmt: skip
            made = time.perf_counter() - t
            runs = [("device", p) for p in s["tts_precisions"]]
            runs += [("host", "float32")] if n in s["tts_host_sizes"] else []
            for vectors, precision in runs:
                solver = pdesolve.get_solver("dcdm", device=dev, dtype=precision,
                                             vectors=vectors, rtol=1e-6,
                                             maxiter=s["tts_maxiter"])  # fmt: skip
                solver.setup(system)
                sync(dev)
                if dev.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                t = time.perf_counter()
                res = solver.solve(system.b)
                sync(dev)
                wall = time.perf_counter() - t
                peak = (torch.cuda.max_memory_allocated() / 2**30
                        if dev.startswith("cuda") else None)  # fmt: skip
                setup = res.info["setup_time"]
                ok = bool(res.converged and res.residual_norms[-1] <= 1e-6 * system.b_norm
                          * (1 + 1e-9))  # fmt: skip
                gamg = ref.get(n)
                ratio = (wall + setup) / gamg if gamg else None
                self.row(
                    "dcdm3d_time_to_solution", f"{n}^3", precision, {role: wall}, None, None,
                    ok, f"to rtol 1e-6, {res.iterations} its ({res.reason.name}), vectors "
                    f"{vectors}, matvec {res.info.get('matvec', 'scipy')}; set-up {setup:.2f} s; "
                    + (f"(set-up + solve) / CPU CG+GAMG {ratio:.2f}" if ratio else
                       "no CPU CG+GAMG reference at this size"),
                    device=dev, precision=precision, vectors=vectors,
                    matvec=res.info.get("matvec", "scipy"), iterations=res.iterations,
                    setup_s=setup, inference_s=res.info.get("inference_time"),
                    peak_gib=peak, problem_seconds=made, cpu_gamg_s=gamg, ratio_to_gamg=ratio,
                )  # fmt: skip
                solver.close()
            del system

    def checkpoints(self) -> None:
        """A checkpoint saved on one device loads on the other (and gives the same outputs)."""
        from pdesolve.nn.dcdm_cnn import DCDMNet, load_dcdm_model, save_dcdm_model

        torch.manual_seed(0)
        x = torch.randn(1, 1, 32, 32)
        diffs = []
        with tempfile.TemporaryDirectory() as tmp:
            devs = [dev for _, dev in self.pairs]
            pairs = [(devs[0], devs[-1]), (devs[-1], devs[0])] if self.cuda else [(devs[0],) * 2]
            for src, dst in pairs:
                model = DCDMNet(2, levels=3).to(src)
                path = Path(tmp) / f"{src}.pt"
                save_dcdm_model(path, model)
                loaded = load_dcdm_model(path, map_location=dst)
                with torch.no_grad(), strict_fp32():
                    a, b = model(x.to(src)), loaded(x.to(dst))
                ok = next(loaded.parameters()).device.type == dst
                diffs.append(rel_diff(a, b) if ok else float("inf"))
        self.row("checkpoint_cross_device", "DCDMNet 2D", "float32", {}, max(diffs), TOL_F32,
                 all(math.isfinite(d) for d in diffs),
                 "saved on " + ", ".join(f"{a} -> loaded on {b}" for a, b in pairs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (default without CUDA)")
    parser.add_argument("--only", default="", help="comma-separated components (default: all)")
    parser.add_argument("--gpu-device", default="cuda",
                        help="device of the GPU half (cpu: test the two-device path without one)")
    parser.add_argument("--tts-sizes", default="",
                        help="3D sizes of dcdm_tts, e.g. 128 (default: 128,256 with CUDA, 8 "
                             "without)")  # fmt: skip
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        parser.error(f"--out {str(out)!r} exists and is not an empty folder; pass --overwrite")
    report = device_report()
    print(report, flush=True)
    cuda = torch.cuda.is_available()
    mode = "tiny" if args.tiny or not cuda else "full"
    two = cuda or args.gpu_device != "cuda"
    pairs = [("cuda", args.gpu_device), ("cpu", "cpu")] if two else [("cpu", "cpu")]
    devices = [dev for _, dev in pairs]
    if not two:
        print("no CUDA device: running the CPU half only, at tiny sizes; no agreement checked",
              flush=True)
    check = Check(mode, pairs)
    if args.tts_sizes:
        try:
            check.s = {**check.s, "tts_sizes": [int(v) for v in args.tts_sizes.split(",")]}
        except ValueError:
            parser.error(f"--tts-sizes takes comma-separated integers, got {args.tts_sizes!r}")
    components = {
        "pinn": check.pinn, "dcdm2d": lambda: check.dcdm(2), "dcdm3d": lambda: check.dcdm(3),
        "dcdm_tts": check.dcdm_time_to_solution,
        "prolongation": check.prolongation, "firenet": check.firenet,
        "curveball": check.curveball, "unet": check.unet, "train_dcdm": check.train_dcdm,
        "train_prolongation": check.train_prolongation,
        "train_imbalance": check.train_imbalance, "checkpoints": check.checkpoints,
    }  # fmt: skip
    chosen = [c for c in args.only.split(",") if c] or list(components)
    unknown = set(chosen) - set(components)
    if unknown:
        parser.error(f"unknown components {sorted(unknown)}; known: {', '.join(components)}")
    start = time.perf_counter()
    for name in chosen:
        check.run(name, components[name])
    total = time.perf_counter() - start
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    record = {
        "device_report": report, "mode": mode, "devices": devices, "cuda": cuda,
        "sizes": SIZES[mode], "total_seconds": total, "load_average": load,
        "threads": torch.get_num_threads(), "versions": pdesolve.io.versions(),
        "tolerances": {"float64": TOL_F64, "float32": TOL_F32, "iterations": TOL_ITER},
        "rows": check.rows,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "check.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    table = [{k: ("" if r.get(k) is None else r[k]) for k in COLUMNS} for r in check.rows]
    tts = [{k: ("" if r.get(k) is None else r[k]) for k in TTS_COLUMNS} | {
        "seconds": r["cuda_s"] if r["cuda_s"] is not None else r["cpu_s"]}
        for r in check.rows if r["component"] == "dcdm3d_time_to_solution"]  # fmt: skip
    failed = [r["component"] for r in check.rows if r["agree"] is False or not r["sanity"]]
    head = (f"# GPU check\n\n{report}\n\nMode: {mode} ({', '.join(devices)}); "
            f"{total:.1f} s in all; load average {load}; {torch.get_num_threads()} torch threads."
            "\nTimes are medians of synchronised repeats after a warm-up (seconds); `difference` "
            "is max|cuda - cpu| / max|cpu| (TF32 off), `agree` is difference <= tolerance.\n")
    if not two:
        head += "\nNo CUDA device was available: only the CPU half ran, at tiny sizes.\n"
    head += f"\nFailed: {', '.join(failed) if failed else 'none'}\n\n"
    body = markdown_table(table)
    if tts:
        body += ("\n## DCDM time to solution (rtol 1e-6, unseen 3D obstacle box)\n\n"
                 "`seconds` is the solve; `ratio_to_gamg` is (set-up + solve) over PETSc CG+GAMG "
                 "on the same system on the CPU machine (one core, "
                 "experiments/dcdm/results/results3d.csv).\n\n" + markdown_table(tts))
    (out / "check.md").write_text(head + body)
    print(f"wrote {out / 'check.json'} and {out / 'check.md'} ({total:.1f} s)", flush=True)
    return 1 if failed else 0


Tensor = torch.Tensor

if __name__ == "__main__":
    sys.exit(main())
