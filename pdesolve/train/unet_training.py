"""Supervised training of the U-Net baseline of the FIRENET study (docs/methods/firenet.md).

The U-Net (``pdesolve.nn.unet.UNet``) learns to map the zero-filled reconstruction
``Re A*(y + e)`` to the image, for subsampled Fourier measurements ``y = A x`` at a multilevel
mask (``multilevel_mask(n, rate, seed=mask_seed)``) of ``count`` random-ellipse images
(``ellipse_images(count, n, seed=image_seed)``). Each batch draws fresh complex Gaussian noise
``e`` of norm ``noise · ||y||`` per sample (from its own generator, seeded ``noise_seed``). Loss:
the mean squared error over the pixels of the batch; Adam; ``epochs`` passes over the images
in a random order (the global torch generator, seeded ``seed`` just before the network is built).

``python -m pdesolve.train.unet_training --out DIR`` trains into ``DIR``: ``checkpoint.pt``
after every epoch (weights, optimizer, RNG states, config, history), ``model.pt`` (weights and
config, loadable with :func:`load_unet`), ``log.csv``, ``config.json`` and ``result.json``
(with ``world_size``). Every option is listed by ``--help``. An existing ``DIR`` is refused
unless ``--resume`` continues its run (only ``--epochs`` and ``--device`` may change). The
library call :func:`train_unet` is what ``experiments/firenet/run.py`` uses (no files).

Data-parallel (docs/distributed.md): the same command under ``torchrun --standalone
--nproc_per_node=P``. Every global batch of ``--batch`` images is split among the processes
(the batch and the last batch of an epoch must divide by ``P``), the noise is drawn for the whole
global batch on every rank (the same numbers as one process), BatchNorm statistics are taken over
the global batch (:meth:`DistributedContext.sync_batchnorm`), gradients are averaged and rank 0
writes the files. Under torchrun write ``--side`` for ``--n`` (torchrun's own parser takes a
bare ``--n`` for an abbreviation of its options). Examples::

    python -m pdesolve.train.unet_training --n 32 --count 32 --epochs 2 --out runs/unet1
    torchrun --standalone --nproc_per_node=2 -m pdesolve.train.unet_training --side 32 \\
        --count 32 --epochs 2 --out runs/unet2
    python -m pdesolve.train.unet_training --resume --epochs 3 --out runs/unet2

>>> cfg = UNetTrainConfig(n=16, count=8, batch=4, epochs=1, features=2, depth=1)
>>> net, history = train_unet(cfg, log=None)
>>> [sorted(row) for row in history]
[['epoch', 'seconds', 'train_mse', 'world_size']]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from pdesolve.io import versions, write_json
from pdesolve.nn.checkpoint import (
    capture_rng,
    check_device,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)  # fmt: skip
from pdesolve.nn.unet import UNet
from pdesolve.train.distributed import DistributedContext
from pdesolve.train.runs import (
    add_options,
    claim_folder,
    one_line_errors,
    resumed_config,
    write_csv,
)  # fmt: skip

__all__ = ["UNetTrainConfig", "load_unet", "main", "noisy_adjoint_input", "train_unet"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class UNetTrainConfig:
    """Settings of one U-Net training run (see ``HELP``; recorded in the checkpoint)."""

    n: int = 64
    rate: float = 0.25
    mask_seed: int = 0
    count: int = 200
    image_seed: int = 1
    noise: float = 0.01
    noise_seed: int = 2
    features: int = 16
    depth: int = 3
    epochs: int = 2
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"


HELP = {
    "n": "image side, a multiple of 2**depth (--side under torchrun)",
    "rate": "fraction of Fourier coefficients measured (multilevel mask)",
    "mask_seed": "seed of the sampling mask",
    "count": "number of training images (random ellipses)",
    "image_seed": "seed of the training images",
    "noise": "relative norm of the complex Gaussian measurement noise, per sample",
    "noise_seed": "seed of the noise generator",
    "features": "U-Net channels at the top level (doubled per level)",
    "depth": "U-Net poolings",
    "epochs": "train until this many epochs in all; may change on --resume",
    "batch": "global batch size (all processes together; a multiple of the process count)",
    "lr": "Adam learning rate",
    "seed": "seed of the weights and of the shuffling",
    "dtype": "float32 (default) or float64",
    "device": "cpu or cuda (one GPU per process under torchrun); may change on --resume",
}
CHOICES = {"dtype": tuple(DTYPES), "device": ("cpu", "cuda")}
#: options a --resume may change; all others must match the run's
RUN_OPTIONS = ("epochs", "device")


def noisy_adjoint_input(
    sampler: Any, images: torch.Tensor, noise: float, gen: torch.Generator | None,
    part: slice = slice(None),
) -> torch.Tensor:  # fmt: skip
    """``Re A*(y + e)`` for ``images[part]`` (float64), ``y = A x``, ``||e_i|| = noise·||y_i||``.

    The noise is drawn for the whole batch ``images`` (real parts, then imaginary parts), so a
    process that evaluates only ``part`` uses the same numbers as one that evaluates everything.
    ``noise = 0`` (or ``gen=None``) gives the clean ``Re A* y``.
    """
    yb = sampler.forward(images[part].double())
    if noise and gen is not None:
        shape = (len(images), *yb.shape[1:])
        e = torch.complex(
            torch.randn(shape, generator=gen, dtype=torch.float64),
            torch.randn(shape, generator=gen, dtype=torch.float64),
        )[part]
        e = e * (
            noise
            * torch.linalg.vector_norm(yb, dim=-1, keepdim=True)
            / torch.linalg.vector_norm(e, dim=-1, keepdim=True)
        )
        yb = yb + e
    return sampler.adjoint(yb)


def _check(cfg: UNetTrainConfig) -> None:
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ValueError(f"unknown {key} {getattr(cfg, key)!r}; known: {', '.join(allowed)}")
    check_device(cfg.device)
    for key in ("n", "count", "features", "depth", "batch"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)!r}")
    if cfg.n % 2**cfg.depth:
        raise ValueError(f"n={cfg.n} must be a multiple of 2**depth = {2**cfg.depth}")
    if cfg.epochs < 0 or not 0 < cfg.rate <= 1 or cfg.noise < 0 or cfg.lr <= 0:
        raise ValueError("need epochs >= 0, 0 < rate <= 1, noise >= 0 and lr > 0")


def _check_batches(cfg: UNetTrainConfig, ctx: DistributedContext) -> None:
    sizes = {min(cfg.batch, cfg.count)} | ({cfg.count % cfg.batch} - {0})
    for size in sizes:
        if size % ctx.world_size:
            raise ValueError(
                f"a batch of {size} images (--batch {cfg.batch}, --count {cfg.count}) does not "
                f"divide among {ctx.world_size} processes; choose --batch and --count so that "
                "every batch is a multiple of the process count"
            )


def _problem(cfg: UNetTrainConfig) -> tuple[torch.Tensor, Any]:
    from pdesolve.problems.inverse import ellipse_images
    from pdesolve.problems.inverse_operators import SubsampledFourier, multilevel_mask

    images = torch.as_tensor(ellipse_images(cfg.count, cfg.n, seed=cfg.image_seed),
                             dtype=torch.float32)  # fmt: skip
    return images, SubsampledFourier(multilevel_mask(cfg.n, cfg.rate, seed=cfg.mask_seed))


def train_unet(
    cfg: UNetTrainConfig, images: torch.Tensor | None = None, sampler: Any = None, *,
    gen: torch.Generator | None = None, out: str | Path | None = None, resume: bool = False,
    ctx: DistributedContext | None = None, log: Callable[[str], None] | None = print,
) -> tuple[UNet, list[dict[str, Any]]]:  # fmt: skip
    """Train the U-Net under ``cfg``; returns it (in training mode) and one record per epoch.

    ``images`` (``(count, n, n)``) and ``sampler`` (``forward``/``adjoint``) default to the
    problem that ``cfg`` describes; ``gen`` is the noise generator (default: seeded
    ``noise_seed``; a caller that passes its own sees it advanced). With ``out`` the run writes
    its files there (see the module docstring); ``resume=True`` continues the run in ``out``,
    whose options ``cfg`` must repeat (but for ``RUN_OPTIONS``).
    """
    if out is not None:
        out = Path(out)
        claim_folder(out, resume)
    elif resume:
        raise ValueError("resume=True needs out= (the folder of the run)")
    ckpt = None
    if resume:
        ckpt = load_checkpoint(out / "checkpoint.pt")  # cfg must be the run's (but RUN_OPTIONS)
        cfg = UNetTrainConfig(**resumed_config(ckpt["config"]["train"], asdict(cfg), RUN_OPTIONS))
    _check(cfg)
    if ctx is None:
        ctx = DistributedContext.from_environment(cfg.device)
    if images is None or sampler is None:
        images, sampler = _problem(cfg)
    if images.shape != (cfg.count, cfg.n, cfg.n):
        raise ValueError(f"images must have shape {(cfg.count, cfg.n, cfg.n)}, got {images.shape}")
    _check_batches(cfg, ctx)
    ctx.barrier()  # every rank has checked the folder before rank 0 writes to it
    ctx.check(bool(torch.isfinite(images[ctx.shard(len(images) - len(images) % ctx.world_size)])
                   .all()), "NaN/Inf in the training images")  # fmt: skip
    device, dtype = ctx.device, DTYPES[cfg.dtype]
    gen = gen if gen is not None else torch.Generator().manual_seed(cfg.noise_seed)
    torch.manual_seed(cfg.seed)
    net = UNet(features=cfg.features, depth=cfg.depth)
    ctx.sync_batchnorm(net)
    net = net.to(device, dtype)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt["rng"], {"noise": gen})
        history = ckpt["history"]
    config = {"train": asdict(cfg), "model": net.config}

    def save() -> None:
        if out is not None and ctx.is_main:
            rng = capture_rng({"noise": gen})
            save_checkpoint(out / "checkpoint.pt", step=len(history), config=config, model=net,
                            optimizer=opt, rng=rng, history=history)  # fmt: skip
            write_csv(out / "log.csv", history)

    if out is not None and ctx.is_main:
        write_json(out / "config.json", asdict(cfg), overwrite=True)
        if ckpt is None:
            save()  # step 0
        else:
            write_csv(out / "log.csv", history)
    images = images.to(device)
    for epoch in range(len(history), cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(cfg.count)
        total = 0.0
        for first in range(0, cfg.count, cfg.batch):
            batch = images[perm[first : first + cfg.batch]]
            part = ctx.shard(len(batch))
            inputs = noisy_adjoint_input(sampler, batch, cfg.noise, gen, part)
            pred = net(inputs.to(device, dtype)[:, None])[:, 0]
            loss = (pred - batch[part].to(dtype)).square().mean()
            opt.zero_grad()
            loss.backward()
            ctx.average_gradients(net.parameters(), f"at epoch {epoch + 1}, images {first}+")
            opt.step()
            total += float(loss.detach()) * len(batch)
        mse = ctx.all_reduce_mean(torch.tensor([total], dtype=torch.float64)).item() / cfg.count
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_mse": mse, "seconds": seconds,
                        "world_size": ctx.world_size})  # fmt: skip
        if log is not None and ctx.is_main:
            log(f"  U-Net epoch {epoch + 1}/{cfg.epochs}: mse {mse:.2e}")
        save()
    if out is not None and ctx.is_main:
        save_checkpoint(out / "model.pt", step=len(history), config=config, model=net)
        write_json(out / "result.json", {
            "kind": "train", "trainer": "unet", "world_size": ctx.world_size,
            "epochs": len(history),
            "final_train_mse": history[-1]["train_mse"] if history else None,
            "config": asdict(cfg), "versions": versions(),
        }, overwrite=True)  # fmt: skip
    ctx.barrier()
    return net, history


def load_unet(path: str | Path, map_location: Any = "cpu") -> UNet:
    """The U-Net of a ``model.pt``/``checkpoint.pt`` written by :func:`train_unet`, in eval mode."""
    ckpt = load_checkpoint(path, map_location)
    net = UNet(**ckpt["config"]["model"])
    net.to(DTYPES[ckpt["config"]["train"].get("dtype", "float32")])
    net.load_state_dict(ckpt["model"])
    return net.eval()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring); errors end with one line."""
    parser = argparse.ArgumentParser(
        prog="python -m pdesolve.train.unet_training",
        description="Train the U-Net baseline of the FIRENET study on noisy subsampled-Fourier "
        "measurements of random ellipses (one process, or data-parallel under torchrun).",
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it holds a run, "
                        "unless --resume)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue the run in --out; only "
                        f"{', '.join('--' + k for k in RUN_OPTIONS)} may change")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process "
                        "(default: 1)")  # fmt: skip
    add_options(parser, {f.name: f.default for f in fields(UNetTrainConfig)}, HELP, CHOICES,
                aliases={"n": "--side"})  # fmt: skip
    args = vars(parser.parse_args(argv))
    out, resume = args.pop("out"), args.pop("resume")
    torch.set_num_threads(args.pop("threads"))
    given = {k: v for k, v in args.items() if v is not None}

    def run() -> None:
        if resume:  # the run's options; given ones must agree with them (but RUN_OPTIONS)
            claim_folder(out, resume=True)
            saved = load_checkpoint(Path(out) / "checkpoint.pt")["config"]["train"]
            cfg = UNetTrainConfig(**resumed_config(saved, given, RUN_OPTIONS))
        else:
            cfg = UNetTrainConfig(**given)
        train_unet(cfg, out=out, resume=resume)

    one_line_errors(run)


if __name__ == "__main__":
    main()
