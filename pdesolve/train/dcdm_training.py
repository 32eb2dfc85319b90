"""Training of the DCDM network with a scale-invariant loss (docs/methods/dcdm.md), resumable.

For a right-hand side ``b`` and ``q = f(b)`` the paper's loss (``loss="residual"``) is the residual
after one exact line search along ``q``, ``|| b − (qᵀb / qᵀAq) A q ||²``, averaged over the batch.
The default here is the energy loss (``loss="energy"``), ``1 − (qᵀb)² / (qᵀAq · bᵀA⁻¹b)``, the
fraction of the error's A-norm energy left after that step: the quantity that governs DCDM with
the paper's short memory k = 2 (see ``energy_loss`` and experiments/dcdm/diagnose_k2.py, where a
residual-loss model stalls at k = 2 and an energy-loss model trained on the same data converges).
Both are invariant to the scale of ``q``, so the network only has to learn ``A⁻¹`` up to a
constant. ``A`` (one training matrix, as in the paper) is applied matrix-free as a stencil
convolution; directions are zeroed off the fluid cells, as in the solver. Data are Ritz
right-hand sides (``pdesolve.train.ritz``; with ``fluid_only`` supported on the fluid cells) with
disjoint train/validation files. Each epoch (or round of ``round_samples`` random samples) adds a
row to ``log.csv`` (both validation losses), prints progress and writes ``checkpoint.pt`` (weights,
optimizer, RNG states, config, history, versions); ``--resume`` picks up from it. The
best-validation weights go to ``model.pt`` (loadable by ``load_dcdm_model``). ``minutes`` is a
budget in process CPU time (``clock="cpu"``) or wall time; ``epochs`` fixes the run exactly.

Retrain the shipped 3D model (package data ``pdesolve/data/dcdm/dcdm3d/``; one thread) into a
new folder, then copy it there::

    python -m pdesolve.train.dcdm_training --dim 3 --n 32 --samples 1300 --lanczos-steps 800 \
        --val-fraction 0.077 --round-samples 400 --epochs 20 --minutes 60 --out runs/dcdm3d
    cp runs/dcdm3d/{model.pt,config.json,log.csv} pdesolve/data/dcdm/dcdm3d/

Retrain the shipped 2D model (``pdesolve/data/dcdm/dcdm2d/``: 128², four pooling levels, see
``DCDMNet``; Ritz data first, then fine-tuned on the residuals of its own DCDM iteration)::

    python -m pdesolve.train.dcdm_training --dim 2 --n 128 --samples 2200 --lanczos-steps 800 \
        --val-fraction 0.0909 --round-samples 400 --levels 4 --epochs 51 --minutes 75 \
        --out runs/run2d128
    python experiments/dcdm/onpolicy.py --run runs/run2d128 --out runs/dcdm2d
    cp runs/dcdm2d/{model.pt,config.json,log.csv} pdesolve/data/dcdm/dcdm2d/

The first 2D model (64², the paper's loss; ``experiments/dcdm/runs/run2d/model.pt``) came from
``--dim 2 --n 64 --loss residual --fluid-only 0 --clock wall --minutes 11 --out runs/run2d``.

Every option is listed by ``python -m pdesolve.train.dcdm_training --help``. An existing ``--out``
is refused unless ``--resume`` continues the run in it (only ``--epochs``, ``--minutes`` and
``--device`` may change; any other option that differs from the run's is an error naming it); a
folder that holds only a Ritz dataset (``data/``) is trained on if the dataset was made with the
same settings, and refused otherwise. ``log.csv`` is rewritten from the checkpoint's history each
epoch; ``result.json`` (rank 0) records the final losses and ``world_size``.

Data-parallel training (docs/distributed.md): the same command under
``torchrun --standalone --nproc_per_node=P``; each global batch of ``--batch`` samples is split
among the ``P`` processes (``--batch`` and the last batch of an epoch must divide by ``P``), the
gradients are averaged, and rank 0 writes every file. The checkpoint does not depend on ``P``.
Under torchrun write ``--cells`` for ``--n`` (torchrun's own parser takes ``--n`` for an
abbreviation of its options and stops).

Tiny runs, one process and two (the same losses up to rounding)::

    python -m pdesolve.train.dcdm_training --n 16 --samples 40 --lanczos-steps 30 --batch 4 \
        --epochs 3 --minutes 5 --out runs/dcdm1
    torchrun --standalone --nproc_per_node=2 -m pdesolve.train.dcdm_training --cells 16 \
        --samples 40 --lanczos-steps 30 --batch 4 --epochs 3 --minutes 5 --out runs/dcdm2
    python -m pdesolve.train.dcdm_training --resume --epochs 5 --out runs/dcdm2

>>> import torch
>>> A = StencilOperator(np.array([[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]] * 4).reshape(2, 2, 3, 3))
>>> b, q = torch.randn(3, 2, 2, dtype=torch.float64), torch.randn(3, 2, 2, dtype=torch.float64)
>>> bool(torch.isclose(dcdm_loss(b, q, A), dcdm_loss(b, -7.5 * q, A)))
True
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.io import versions, write_json
from pdesolve.linalg.torch_ops import StencilOperator
from pdesolve.nn.checkpoint import (
    capture_rng,
    check_device,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from pdesolve.nn.dcdm_cnn import DCDMNet
from pdesolve.train.distributed import DistributedContext
from pdesolve.train.ritz import load_split, write_ritz_dataset
from pdesolve.train.runs import (
    RunFolderError,
    claim_folder,
    one_line_errors,
    resumed_config,
    write_csv,
)  # fmt: skip


def dcdm_loss(b: torch.Tensor, q: torch.Tensor, A: StencilOperator) -> torch.Tensor:
    """Mean over the batch of ``||b − (qᵀb / qᵀAq) A q||²`` (fields ``(B, *grid)``)."""
    axes = tuple(range(1, b.ndim))
    Aq = A(q)
    alpha = (q * b).sum(axes, keepdim=True) / (q * Aq).sum(axes, keepdim=True)
    return ((b - alpha * Aq) ** 2).sum(axes).mean()


def energy_loss(
    b: torch.Tensor, q: torch.Tensor, A: StencilOperator, energy: torch.Tensor
) -> torch.Tensor:
    """Mean over the batch of ``1 − (qᵀb)² / (qᵀAq · bᵀA⁻¹b)`` (``energy`` = ``bᵀA⁻¹b``).

    This is ``||e − α q||²_A / ||e||²_A`` with ``e = A⁻¹b`` and the same exact line search: the
    fraction of the error's energy left after one step along ``q``, i.e. ``1 − cos²_A(q, e)``.
    It is the quantity that sets the convergence of a conjugate-direction method with short memory
    (each step of DCDM(k) keeps at most that fraction of the energy), whereas the paper's residual
    loss ``||A(e − α q)||²`` weighs the error by ``A²`` and hardly penalises a direction that misses
    the smooth error hidden under a rough residual. Scale invariant in ``q``; in ``[0, 1]``.
    """
    axes = tuple(range(1, b.ndim))
    qb = (q * b).sum(axes)
    qaq = (q * A(q)).sum(axes)
    return (1.0 - qb**2 / (qaq.clamp_min(1e-30) * energy)).mean()


DEFAULTS: dict[str, Any] = {
    "dim": 2, "n": 64, "geometry": "obstacles", "obstacles": 4, "problem_seed": 0,
    "boundary": "open_top", "samples": 2000, "lanczos_steps": 400, "chunk": 200,
    "val_fraction": 0.1, "batch": 10, "lr": 1e-3, "epochs": 1000, "minutes": 12.0, "seed": 0,
    "channels": 16, "pre": 2, "coarse": 3, "post": 2, "bias": 0, "levels": 1,
    "loss": "energy", "fluid_only": 1, "round_samples": 0, "clock": "cpu", "dtype": "float32",
    "device": "cpu",
}  # fmt: skip
#: what each option means (the ``--help`` text)
HELP: dict[str, str] = {
    "dim": "grid dimension of the training problem (2 or 3)",
    "n": "cells per side of the training box (--cells under torchrun)",
    "geometry": "geometry of the pressure problem: empty, sphere, obstacles, ...",
    "obstacles": "number of obstacles for geometry=obstacles",
    "problem_seed": "seed of the training geometry",
    "boundary": "boundary of the box (open_top or closed)",
    "samples": "Ritz right-hand sides in the dataset (train + validation)",
    "lanczos_steps": "Lanczos steps that give the Ritz vectors",
    "chunk": "samples per dataset file",
    "val_fraction": "fraction of the samples kept for validation (own files)",
    "batch": "global batch size (all processes together; a multiple of the process count)",
    "lr": "Adam learning rate",
    "epochs": "train until this many epochs (or rounds) in all; may change on --resume",
    "minutes": "budget in minutes of --clock time, over all sessions; may change on --resume",
    "seed": "seed of the dataset, the weights and the shuffling",
    "channels": "hidden channels of DCDMNet",
    "pre": "residual pairs before pooling",
    "coarse": "residual pairs on each coarse level",
    "post": "residual pairs after upsampling",
    "bias": "1: convolutions with bias, 0: without",
    "levels": "pooling levels of DCDMNet (1 is the paper's network)",
    "loss": "energy (1 - cos^2_A, default) or residual (the paper's)",
    "fluid_only": "1: Ritz samples supported on the fluid cells only, 0: on all cells",
    "round_samples": "if > 0, an epoch is a round of this many random samples",
    "clock": "what --minutes counts: cpu (process CPU time) or wall",
    "dtype": "float32 (default) or float64 for the network, the operator and the data",
    "device": "cpu or cuda (one GPU per process under torchrun); may change on --resume",
}
CHOICES = {"loss": ("residual", "energy"), "clock": ("cpu", "wall"),
           "dtype": ("float32", "float64"), "device": ("cpu", "cuda")}  # fmt: skip
#: options a --resume may change: how long to train and where; all others must match
RUN_OPTIONS = ("epochs", "minutes", "device")
#: settings of runs made before an option existed (so that ``--resume`` reproduces them)
LEGACY = {"loss": "residual", "fluid_only": 0, "round_samples": 0, "clock": "wall", "levels": 1,
          "dtype": "float32", "device": "cpu"}  # fmt: skip

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
LOSSES = CHOICES["loss"]
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _check_options(cfg: dict[str, Any]) -> None:
    """Clear errors for bad option values, before any work."""
    for key, allowed in CHOICES.items():
        if cfg[key] not in allowed:
            raise ValueError(f"unknown {key} {cfg[key]!r}; known: {', '.join(allowed)}")
    if cfg["dim"] not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {cfg['dim']!r}")
    positive = ("n", "samples", "lanczos_steps", "chunk", "batch", "channels", "levels")
    for key in positive:
        if cfg[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]!r}")
    for key in ("epochs", "round_samples", "pre", "coarse", "post", "obstacles"):
        if cfg[key] < 0:
            raise ValueError(f"{key} must be >= 0, got {cfg[key]!r}")
    if not (cfg["lr"] > 0 and cfg["minutes"] > 0):
        raise ValueError(f"lr and minutes must be > 0, got {cfg['lr']!r} and {cfg['minutes']!r}")
    if not 0 < cfg["val_fraction"] < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {cfg['val_fraction']!r}")


def _check_batches(n_train: int, cfg: dict[str, Any], ctx: DistributedContext) -> None:
    """Every global batch of an epoch must split evenly among the processes."""
    per_epoch = min(cfg["round_samples"], n_train) if cfg["round_samples"] else n_train
    if per_epoch < 1:
        raise ValueError(f"no training samples left (samples={cfg['samples']}, "
                         f"val_fraction={cfg['val_fraction']})")  # fmt: skip
    sizes = {min(cfg["batch"], per_epoch)}
    if per_epoch % cfg["batch"]:
        sizes.add(per_epoch % cfg["batch"])
    for size in sorted(sizes, reverse=True):
        if size % ctx.world_size:
            what = "batch" if size == cfg["batch"] else "last batch of each epoch"
            raise ValueError(
                f"the {what} has {size} samples, which does not divide among "
                f"{ctx.world_size} processes; choose --batch, --samples or --round-samples so "
                "that every batch is a multiple of the process count"
            )


def _problem_info(cfg: dict[str, Any]) -> dict[str, Any]:
    keys = ("dim", "n", "geometry", "obstacles", "problem_seed", "boundary", "fluid_only")
    return {k: cfg[k] for k in keys}


def _check_dataset(meta: dict[str, Any], cfg: dict[str, Any], size: int, fluid: int,
                   data_dir: Path) -> None:  # fmt: skip
    """The dataset on disk must be the one these options would write."""
    expect = {
        "samples": cfg["samples"], "lanczos_steps": cfg["lanczos_steps"], "seed": cfg["seed"],
        "n": size, "val": max(1, round(cfg["val_fraction"] * cfg["samples"])),
        "support": fluid if cfg["fluid_only"] else None,
    }  # fmt: skip
    names = {"n": "unknowns", "val": "validation samples", "support": "support cells"}
    diffs = [f"{names.get(k, k)} {meta.get(k)!r} (asked {v!r})" for k, v in expect.items()
             if meta.get(k) != v]  # fmt: skip
    if meta.get("info"):
        diffs += [f"{k} {meta['info'].get(k)!r} (asked {v!r})"
                  for k, v in _problem_info(cfg).items() if meta["info"].get(k) != v]  # fmt: skip
    if diffs:
        raise RunFolderError(
            f"the Ritz dataset in {str(data_dir)!r} was made with other settings: "
            f"{', '.join(diffs)}; train into another folder or remove {str(data_dir)!r}"
        )


def _check_finite(ctx: DistributedContext, data: dict[str, torch.Tensor], where: Path) -> None:
    """Each rank checks its part of every array; a bad sample anywhere stops every rank."""
    bad = []
    for name, x in data.items():
        if x is None:
            continue
        lo, hi = ctx.rank * len(x) // ctx.world_size, (ctx.rank + 1) * len(x) // ctx.world_size
        rows = x[lo:hi].reshape(hi - lo, -1)
        idx = (~torch.isfinite(rows).all(1)).nonzero().flatten() + lo
        if len(idx):
            bad.append(f"{name} sample(s) {idx[:5].tolist()}")
    ctx.check(not bad, f"NaN/Inf in {', '.join(bad)} of the dataset in {str(where)!r}")


def train(
    out: str | Path, resume: bool = False, ctx: DistributedContext | None = None, **options: Any
) -> dict[str, Any]:
    """Train (or resume) into ``out``; returns the history, the best validation loss, world size.

    ``options`` are the keys of ``DEFAULTS`` (see ``HELP``); ``ctx`` defaults to
    ``DistributedContext.from_environment(device)``. See the module docstring for the folder
    and resume rules.
    """
    from pdesolve.problems.pressure import PressurePoisson

    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    claim_folder(out, resume, reusable=("data",))
    ckpt = None
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        saved = {**DEFAULTS, **LEGACY, **ckpt["config"]["train"]}
        cfg = resumed_config(saved, options, RUN_OPTIONS)
    else:
        cfg = {**DEFAULTS, **options}
    _check_options(cfg)
    check_device(cfg["device"])
    if ctx is None:
        ctx = DistributedContext.from_environment(cfg["device"])
    device, dtype = ctx.device, DTYPES[cfg["dtype"]]
    clock = CLOCKS[cfg["clock"]]
    data_dir = out / "data"
    fresh_data = not (data_dir / "meta.json").is_file()
    if fresh_data:
        n_val = max(1, round(cfg["val_fraction"] * cfg["samples"]))
        _check_batches(cfg["samples"] - n_val, cfg, ctx)
    ctx.barrier()  # every rank has checked the folder before rank 0 writes to it
    torch.manual_seed(cfg["seed"])
    problem = PressurePoisson(
        dim=cfg["dim"], n=cfg["n"], geometry=cfg["geometry"], obstacles=cfg["obstacles"],
        seed=cfg["problem_seed"], boundary=cfg["boundary"],
    )  # fmt: skip
    system = problem.discretize()
    grid = system.metadata["grid_shape"]
    fluid = system.metadata["fluid_mask"]
    if cfg["lanczos_steps"] > system.A.shape[0]:
        raise ValueError(
            f"lanczos_steps={cfg['lanczos_steps']} exceeds the {system.A.shape[0]} unknowns"
        )
    if fresh_data:
        if ctx.is_main:
            print(f"writing Ritz dataset to {data_dir} ...", flush=True)
            write_ritz_dataset(
                system.A, data_dir, cfg["samples"], cfg["lanczos_steps"], chunk=cfg["chunk"],
                val_fraction=cfg["val_fraction"], seed=cfg["seed"],
                support=fluid if cfg["fluid_only"] else None,
                energies="ritz" if cfg["loss"] == "energy" else None, info=_problem_info(cfg),
            )  # fmt: skip
        ctx.barrier()
    meta = json.loads((data_dir / "meta.json").read_text())
    _check_dataset(meta, cfg, system.A.shape[0], int(np.sum(fluid)), data_dir)
    has_energy = bool(meta.get("energies"))
    if cfg["loss"] == "energy" and not has_energy:
        raise ValueError(f"loss='energy' needs sample energies; {data_dir} has none")
    train_e = val_e = None
    if has_energy:
        train_np, train_e = load_split(data_dir, "train", energy=True)
        val_np, val_e = load_split(data_dir, "val", energy=True)
        train_e = torch.as_tensor(train_e, device=device)
        val_e = torch.as_tensor(val_e, device=device)
    else:
        train_np, val_np = load_split(data_dir, "train"), load_split(data_dir, "val")
    train_b = torch.as_tensor(train_np).reshape((-1,) + grid).to(device, dtype)
    val_b = torch.as_tensor(val_np).reshape((-1,) + grid).to(device, dtype)
    if train_e is not None:
        train_e, val_e = train_e.to(device, dtype), val_e.to(device, dtype)
    _check_batches(len(train_b), cfg, ctx)
    _check_finite(ctx, {"training": train_b, "validation": val_b, "training energy": train_e,
                        "validation energy": val_e}, data_dir)  # fmt: skip
    mask = torch.as_tensor(fluid, dtype=dtype, device=device)
    A = StencilOperator(system.stencil, dtype=dtype, device=str(device))
    model = DCDMNet(cfg["dim"], cfg["channels"], cfg["pre"], cfg["coarse"], cfg["post"],
                    bool(cfg.get("bias", 1)), cfg["levels"])  # fmt: skip
    model = model.to(device, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    history: list[dict[str, float]] = []
    epoch, best = 0, float("inf")
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt["rng"], {"shuffle": gen})
        history, epoch = ckpt["history"], ckpt["step"]
        best = min((h["val_loss"] for h in history), default=float("inf"))

    def apply(b: torch.Tensor) -> torch.Tensor:
        return model(b[:, None])[:, 0] * mask

    def objective(b: torch.Tensor, q: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        if cfg["loss"] == "energy":
            return energy_loss(b, q, A, e.to(q.dtype))
        return dcdm_loss(b, q, A)

    def evaluate() -> dict[str, float]:
        """Validation losses (each rank its part, summed): the paper's residual loss, and the
        energy loss when available."""
        model.eval()
        lo = ctx.rank * len(val_b) // ctx.world_size
        hi = (ctx.rank + 1) * len(val_b) // ctx.world_size
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        with torch.no_grad():
            for i in range(lo, hi, 50):
                b = val_b[i : min(i + 50, hi)]
                q = apply(b)
                sums[0] += dcdm_loss(b, q, A).double() * len(b)
                if val_e is not None:
                    sums[1] += energy_loss(b, q, A, val_e[i : i + len(b)]).double() * len(b)
        model.train()
        sums = ctx.all_reduce_mean(sums) * ctx.world_size / len(val_b)
        res = {"val_residual_loss": sums[0].item()}
        if val_e is not None:
            res["val_energy_loss"] = sums[1].item()
        res["val_loss"] = res["val_energy_loss" if cfg["loss"] == "energy" else "val_residual_loss"]
        return res

    def save() -> None:
        config = {"train": cfg, "model": model.config}
        save_checkpoint(ckpt_path, step=epoch, config=config, model=model, optimizer=opt,
                        rng=capture_rng({"shuffle": gen}), history=history)  # fmt: skip

    if ctx.is_main:
        write_json(out / "config.json", cfg, overwrite=True)
        write_csv(out / "log.csv", history)  # the checkpoint's history, nothing after it
        if ckpt is None:
            save()  # step 0: a run stopped during its first epoch resumes
    start = clock()
    spent = sum(h["seconds"] for h in history)
    while True:
        go = epoch < cfg["epochs"] and spent + (clock() - start) < 60 * cfg["minutes"]
        if not ctx.broadcast_object(go):  # rank 0's clock decides for every rank
            break
        t, t_wall = clock(), time.perf_counter()
        perm = torch.randperm(len(train_b), generator=gen)
        if cfg["round_samples"]:  # a "round" of round_samples random samples instead of an epoch
            perm = perm[: cfg["round_samples"]]
        losses = []
        t_steps, c_steps = time.perf_counter(), time.process_time()
        for k, idx in enumerate(perm.split(cfg["batch"])):
            idx = idx[ctx.shard(len(idx))].to(device)
            b = train_b[idx]
            loss = objective(b, apply(b), None if train_e is None else train_e[idx])
            opt.zero_grad()
            loss.backward()
            ctx.average_gradients(model.parameters(), f"at epoch {epoch + 1}, batch {k + 1}")
            opt.step()
            losses.append(loss.detach().double())
        step_seconds = (time.perf_counter() - t_steps) / len(losses)
        step_cpu = (time.process_time() - c_steps) / len(losses)
        train_loss = ctx.all_reduce_mean(torch.stack(losses)).mean().item()
        epoch += 1
        row = {"epoch": epoch, "train_loss": train_loss, **evaluate(),
               "seconds": clock() - t, "wall_seconds": time.perf_counter() - t_wall,
               "step_seconds": step_seconds, "step_cpu_seconds": step_cpu,
               "world_size": ctx.world_size}  # fmt: skip
        history.append(row)
        if not ctx.is_main:
            continue
        write_csv(out / "log.csv", history)
        extra = "".join(f"  {k[4:]} {v:.4e}" for k, v in row.items()
                        if k.startswith("val_") and k != "val_loss")  # fmt: skip
        print(f"epoch {epoch}: train {row['train_loss']:.4e}  val {row['val_loss']:.4e}{extra}  "
              f"({row['seconds']:.1f} s)", flush=True)  # fmt: skip
        if row["val_loss"] < best:
            best = row["val_loss"]
            config = {"train": cfg, "model": model.config}
            save_checkpoint(out / "model.pt", step=epoch, config=config, model=model)
        save()
    best = min((h["val_loss"] for h in history), default=float("inf"))
    result = {"history": history, "best_val_loss": best, "world_size": ctx.world_size}
    if ctx.is_main:
        write_json(out / "result.json", {
            "kind": "train", "trainer": "dcdm", "world_size": ctx.world_size, "epochs": epoch,
            "best_val_loss": best if history else None,
            "final": history[-1] if history else None, "config": cfg, "versions": versions(),
        }, overwrite=True)  # fmt: skip
    ctx.barrier()
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line: every key of ``DEFAULTS`` as ``--key`` with its ``HELP`` text."""
    parser = argparse.ArgumentParser(
        prog="python -m pdesolve.train.dcdm_training",
        description="Train the DCDM network on Ritz right-hand sides of a pressure problem "
        "(one process, or data-parallel under torchrun).",
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it holds a run, "
                        "unless --resume)")  # fmt: skip
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt; only "
                        f"{', '.join('--' + k for k in RUN_OPTIONS)} may change")  # fmt: skip
    for key, value in DEFAULTS.items():
        # torchrun's own parser reads a bare "--n" as an abbreviation of its options: "--cells"
        flags = ["--n", "--cells"] if key == "n" else [f"--{key.replace('_', '-')}"]
        parser.add_argument(
            *flags, dest=key, type=type(value), default=None,
            choices=CHOICES.get(key), help=f"{HELP[key]} (default: {value})",
        )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; errors in options, folders or data end with one line."""
    args = vars(build_parser().parse_args(argv))
    out, resume = args.pop("out"), args.pop("resume")
    torch.set_num_threads(1)
    options = {k: v for k, v in args.items() if v is not None}
    one_line_errors(lambda: train(out, resume=resume, **options))


if __name__ == "__main__":
    main()
