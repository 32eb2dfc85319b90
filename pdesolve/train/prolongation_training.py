"""Unsupervised training of the learned prolongation by block-Fourier two-grid loss (Greenfeld).

Training problems are periodic 8×8-cell blocks of log-normal coefficients (``g = exp(N(0, 1))``)
with the bilinear-FE stencil; the loss is the two-grid ``||M_θ||_F²`` over block frequencies
(``pdesolve.train.block_fourier``), max over θ by default. Curriculum over periodic grid sizes
(default ``[16, 16, 32]``): after each stage, Galerkin coarse problems are added — fresh 16×16
periodic log-normal problems coarsened with the current network to 8×8 blocks, whose 9-point
stencils are no longer FE-like (see ``docs/methods/learned_multigrid.md``). Float64 / complex128
throughout.

Retrain from scratch (about 15 minutes on one core)::

    python -m pdesolve.train.prolongation_training --out runs/learned_multigrid

``--init-from CHECKPOINT`` continues training a saved network (its width, depth and
``blackbox_skip`` are taken from the checkpoint); data, optimiser and curriculum are fresh.
``pdesolve/data/learned_multigrid/README.md`` gives the commands that rebuild the shipped
checkpoint.

Every option is listed by ``--help``. ``--out`` must be a new (or empty) folder, unless
``--resume`` continues the run in it from ``checkpoint.pt`` (written after every epoch: weights,
optimiser, the numpy and torch RNG states, the current training problems, the log); a resume
may change only ``--device``, ``--threads`` and ``--stop-after`` (stop after that many epochs in
all, to split a run into sessions); any other option that differs is an error naming it. The
end of the run writes ``prolongation.pt``, ``config.json``, ``training_log.json`` and
``result.json`` (with ``world_size``).

Data-parallel (docs/distributed.md): the same command under ``torchrun --standalone
--nproc_per_node=P``. Each global batch of ``--batch`` problems is split among the processes
(``--batch`` and every last batch of an epoch must divide by ``P``); the problems, the
Galerkin-coarsened ones and the test losses are computed alike on every rank (they are cheap next
to the training steps), gradients are averaged and rank 0 writes the files. For example::

    python -m pdesolve.train.prolongation_training --samples 64 --batch 32 --curriculum 16 \
        --width 8 --blocks 1 --out runs/prolong1
    torchrun --standalone --nproc_per_node=2 -m pdesolve.train.prolongation_training \
        --samples 64 --batch 32 --curriculum 16,16 --width 8 --blocks 1 --out runs/prolong2

>>> cfg = TrainConfig(samples=64, test_samples=8, batch=32, curriculum=(16,), width=8, blocks=1)
>>> net, log = train(cfg)
>>> sorted(log[-1])[:3]
['blackbox_test_loss', 'epoch', 'n']
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.discretize.prolongation import blackbox_pstencil
from pdesolve.io import versions, write_json
from pdesolve.nn.checkpoint import check_device, load_checkpoint, resume_training, save_checkpoint
from pdesolve.nn.prolongation import ProlongationNet, correction_range, learned_pstencil
from pdesolve.train.block_fourier import galerkin_coarse_stencil, periodic_fe_stencil, two_grid_loss
from pdesolve.train.distributed import DistributedContext
from pdesolve.train.runs import add_options, claim_folder, one_line_errors, resumed_config


@dataclass
class TrainConfig:
    """Settings of one training run (recorded in the checkpoint)."""

    width: int = 32
    blocks: int = 4
    blackbox_skip: bool = True
    samples: int = 4096
    test_samples: int = 128
    test_n: int = 32
    batch: int = 32
    lr: float = 3e-4
    epochs_per_stage: int = 1
    curriculum: tuple[int, ...] = (16, 16, 32)
    coarse_fraction: float = 0.5
    pre: int = 2
    post: int = 0
    smoother: str = "gauss_seidel"
    reduction: str = "max"
    weight_decay: float = 1e-7
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    init_from: str | None = None
    #: guard = this × the largest |correction| over the training set (0 or None: no guard)
    guard_margin: float | None = 1.1
    extra: dict[str, Any] = field(default_factory=dict)


def lognormal_blocks(count: int, block: int, rng: np.random.Generator) -> torch.Tensor:
    """Periodic FE stencils ``(count, block, block, 3, 3)`` of ``g = exp(N(0, 1))`` cells."""
    g = torch.as_tensor(np.exp(rng.standard_normal((count, block, block))))
    return periodic_fe_stencil(g)


def coarse_blocks(net: ProlongationNet, count: int, rng: np.random.Generator,
                  chunk: int = 256) -> torch.Tensor:
    """8×8 Galerkin coarse stencils of fresh 16×16 periodic problems, coarsened by ``net``."""
    out = []
    for start in range(0, count, chunk):
        fine = lognormal_blocks(min(chunk, count - start), 16, rng)
        with torch.no_grad():
            p = learned_pstencil(net, fine, periodic=True).cpu()
        out.append(galerkin_coarse_stencil(fine, p))
    return torch.cat(out)


def _loss(net: ProlongationNet, stencils: torch.Tensor, n: int, cfg: TrainConfig,
          reduction: str | None = None) -> torch.Tensor:
    p = learned_pstencil(net, stencils, periodic=True)
    return two_grid_loss(stencils.to(p.device), p, n, reduction or cfg.reduction, cfg.pre,
                         cfg.post, cfg.smoother)


def evaluate(net: ProlongationNet, stencils: torch.Tensor, n: int, cfg: TrainConfig
             ) -> tuple[float, float]:
    """Mean-over-θ loss of the network and of black-box on ``stencils`` (batch means)."""
    with torch.no_grad():
        ours = _loss(net, stencils, n, cfg, "mean").mean().item()
        bb = two_grid_loss(stencils, blackbox_pstencil(stencils, periodic=True), n, "mean",
                           cfg.pre, cfg.post, cfg.smoother).mean().item()
    return ours, bb


def _check(cfg: TrainConfig) -> None:
    check_device(cfg.device)
    for key in ("width", "blocks", "samples", "test_samples", "test_n", "batch",
                "epochs_per_stage", "threads"):  # fmt: skip
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be >= 1, got {getattr(cfg, key)!r}")
    if not cfg.curriculum or any(n < 16 or n % 8 for n in cfg.curriculum):
        raise ValueError(f"curriculum: grid sizes >= 16, multiples of 8; got {cfg.curriculum}")
    if cfg.reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {cfg.reduction!r}; known: {', '.join(REDUCTIONS)}")
    if not (cfg.lr > 0 and 0 <= cfg.coarse_fraction):
        raise ValueError("need lr > 0 and coarse_fraction >= 0")


def _stage_sizes(cfg: TrainConfig) -> list[int]:
    """Number of training problems in each stage of the curriculum."""
    sizes = [cfg.samples]
    for _ in cfg.curriculum[1:]:
        sizes.append(sizes[-1] // 2 + int(cfg.coarse_fraction * cfg.samples))
    return sizes


def _check_batches(cfg: TrainConfig, ctx: DistributedContext) -> None:
    for stage, size in enumerate(_stage_sizes(cfg)):
        for b in {min(cfg.batch, size)} | ({size % cfg.batch} - {0}):
            if b % ctx.world_size:
                raise ValueError(
                    f"stage {stage} has {size} problems: a batch of {b} (--batch {cfg.batch}) "
                    f"does not divide among {ctx.world_size} processes; choose --batch, "
                    "--samples and --coarse-fraction so that every batch is a multiple of the "
                    "process count"
                )


def train(
    cfg: TrainConfig, log_every: int = 0, *, out: str | Path | None = None, resume: bool = False,
    ctx: DistributedContext | None = None, stop_after: int | None = None,
) -> tuple[ProlongationNet, list[dict[str, Any]]]:  # fmt: skip
    """Train a ``ProlongationNet`` under ``cfg``; returns it and one log record per epoch.

    With ``out`` a checkpoint is written there after every epoch (rank 0) and ``resume=True``
    continues the run from it; ``cfg`` must then be the run's (but for ``RUN_OPTIONS``).
    ``stop_after`` ends the run after that many epochs in all. ``ctx`` defaults to
    ``DistributedContext.from_environment(cfg.device)``.
    """
    ckpt = None
    if out is not None:
        out = Path(out)
        claim_folder(out, resume)
        if resume:
            ckpt = load_checkpoint(out / "checkpoint.pt")
            saved = ckpt["config"]["train"]
            fixed = {k: v for k, v in asdict(cfg).items() if k not in ("extra",)}
            fixed["curriculum"] = list(cfg.curriculum)
            resumed_config({**saved, "curriculum": list(saved["curriculum"])}, fixed, RUN_OPTIONS)
    elif resume:
        raise ValueError("resume=True needs out= (the folder of the run)")
    _check(cfg)
    if ctx is None:
        ctx = DistributedContext.from_environment(cfg.device)
    _check_batches(cfg, ctx)
    ctx.barrier()  # every rank has checked the folder before rank 0 writes to it
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = ctx.device if ctx.is_distributed else torch.device(cfg.device)
    net = ProlongationNet(cfg.width, cfg.blocks, cfg.blackbox_skip)
    if cfg.init_from and ckpt is None:
        init = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        arch = {"width": cfg.width, "blocks": cfg.blocks, "blackbox_skip": cfg.blackbox_skip}
        if {k: init["config"].get(k) for k in arch} != arch:
            raise ValueError(f"--init-from {cfg.init_from} has architecture {init['config']}, "
                             f"the run asks for {arch}")
        net.load_state_dict(init["model"])
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = lognormal_blocks(cfg.samples, 8, rng)
    test = lognormal_blocks(cfg.test_samples, 8, rng)
    log: list[dict[str, Any]] = []
    start, done = time.perf_counter(), 0
    if ckpt is not None:
        data, log, done = resume_training(ckpt, net, opt, rng)
        start -= log[-1]["seconds"] if log else 0.0
    config = {"train": asdict(cfg), "model": net.config}

    def checkpoint(epoch: int) -> None:
        if out is not None and ctx.is_main:
            save_checkpoint(out / "checkpoint.pt", step=epoch, config=config, model=net,
                            optimizer=opt, history=log, numpy_rng=rng.bit_generator.state,
                            problems=data)  # fmt: skip

    if out is not None and ctx.is_main and ckpt is None:
        write_json(out / "config.json", asdict(cfg), overwrite=True)
        checkpoint(0)
    total = len(cfg.curriculum) * cfg.epochs_per_stage
    last = total if stop_after is None else min(total, stop_after)
    for epoch in range(done, last):
        stage, within = divmod(epoch, cfg.epochs_per_stage)
        n = cfg.curriculum[stage]
        if stage > 0 and within == 0:  # add Galerkin-coarsened problems made with the current net
            extra = coarse_blocks(net, int(cfg.coarse_fraction * cfg.samples), rng)
            keep = torch.as_tensor(rng.permutation(len(data))[: len(data) // 2])
            data = torch.cat([data[keep], extra])
        order = torch.as_tensor(rng.permutation(len(data)))
        losses = []
        for step, first in enumerate(range(0, len(data), cfg.batch)):
            batch = data[order[first : first + cfg.batch]]
            batch = batch[ctx.shard(len(batch))].to(device)
            loss = _loss(net, batch, n, cfg).mean()
            opt.zero_grad()
            loss.backward()
            ctx.average_gradients(net.parameters(), f"at epoch {epoch}, step {step}")
            opt.step()
            losses.append(loss.detach().double().cpu())
            if log_every and step % log_every == 0 and ctx.is_main:
                print(f"stage {stage} n={n} step {step}: loss {loss.item():.4f}", flush=True)
        train_loss = ctx.all_reduce_mean(torch.stack(losses).to(device)).mean().item()
        ours, bb = evaluate(net, test.to(device), cfg.test_n, cfg)
        record = {
            "epoch": epoch, "stage": stage, "n": n, "problems": len(data),
            "train_loss": train_loss, "test_loss": ours,
            "blackbox_test_loss": bb, "seconds": time.perf_counter() - start,
            "world_size": ctx.world_size,
        }  # fmt: skip
        log.append(record)
        if log_every and ctx.is_main:
            print(json.dumps(record), flush=True)
        checkpoint(epoch + 1)
    if last == total and cfg.guard_margin and cfg.blackbox_skip:
        net.set_guard(guard_for(net, data, cfg.guard_margin))
    if out is not None and ctx.is_main and last == total:
        save(net, cfg, log, out)
        write_json(out / "result.json", {
            "kind": "train", "trainer": "prolongation", "world_size": ctx.world_size,
            "epochs": len(log), "final": log[-1] if log else None, "config": asdict(cfg),
            "versions": versions(),
        }, overwrite=True)  # fmt: skip
    ctx.barrier()
    return net, log


def guard_for(net: ProlongationNet, stencils: torch.Tensor, margin: float = 1.1) -> float:
    """``margin`` × the largest correction ``|z|`` over periodic training stencils, rounded up
    to 0.01: the network's ``guard`` (``pdesolve.nn.prolongation``)."""
    top = max((correction_range(net, stencils[i : i + 256], periodic=True)
               for i in range(0, len(stencils), 256)), default=0.0)
    return max(float(np.ceil(100 * margin * top) / 100), 0.01)


def save(net: ProlongationNet, cfg: TrainConfig, log: list[dict[str, Any]], out: Path) -> Path:
    """Write ``prolongation.pt`` (config + weights), ``config.json`` and ``training_log.json``."""
    import pdesolve

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in net.state_dict().items()}
    ckpt = {"config": net.config, "model": state, "train_config": asdict(cfg),
            "log": log, "version": getattr(pdesolve, "__version__", "unknown")}
    path = out / "prolongation.pt"
    tmp = out / "prolongation.pt.tmp"
    torch.save(ckpt, tmp)
    tmp.replace(path)
    write_json(out / "config.json", asdict(cfg), overwrite=True)
    (out / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return path


HELP = {
    "width": "channels of the network's hidden layers",
    "blocks": "residual blocks of the network",
    "blackbox_skip": "1: the network corrects black-box prolongation weights, 0: predicts them",
    "samples": "periodic 8x8 log-normal training problems",
    "test_samples": "test problems (their loss is logged each epoch)",
    "test_n": "periodic grid size of the test loss",
    "batch": "global batch size (all processes together; a multiple of the process count)",
    "lr": "Adam learning rate",
    "epochs_per_stage": "epochs per curriculum stage",
    "curriculum": "periodic grid sizes of the stages, comma-separated (multiples of 8)",
    "coarse_fraction": "Galerkin-coarsened problems added per stage, as a fraction of --samples",
    "pre": "pre-smoothing sweeps in the two-grid loss",
    "post": "post-smoothing sweeps in the two-grid loss",
    "smoother": "smoother of the two-grid loss (gauss_seidel or jacobi)",
    "reduction": "reduction of the loss over frequencies (max or mean)",
    "weight_decay": "Adam weight decay",
    "seed": "seed of the problems, the weights and the shuffling",
    "device": "cpu or cuda (one GPU per process under torchrun); may change on --resume",
    "threads": "torch threads per process; may change on --resume",
    "init_from": "continue training this prolongation.pt (architecture taken from it)",
    "guard_margin": "guard = this x the largest training correction |z| (0: no guard)",
}
REDUCTIONS = ("max", "mean")
#: options a --resume may change; all others must match the run's
RUN_OPTIONS = ("device", "threads")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring); errors end with one line."""
    parser = argparse.ArgumentParser(
        prog="python -m pdesolve.train.prolongation_training",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("--out", required=True, help="output folder (refused if it holds a run, "
                        "unless --resume)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue the run in --out; only "
                        "--device, --threads and --stop-after may change")  # fmt: skip
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many "
                        "epochs in all (resume later with --resume; default: the whole "
                        "curriculum)")  # fmt: skip
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.name != "extra"}
    add_options(parser, defaults, HELP, {"reduction": REDUCTIONS,
                                         "smoother": ("gauss_seidel", "jacobi")})  # fmt: skip
    args = vars(parser.parse_args(argv))
    out, resume, stop_after = Path(args.pop("out")), args.pop("resume"), args.pop("stop_after")
    given = {k: v for k, v in args.items() if v is not None}

    def run() -> None:
        if resume:  # the run's options; given ones must agree with them (but RUN_OPTIONS)
            claim_folder(out, resume=True)
            saved = dict(load_checkpoint(out / "checkpoint.pt")["config"]["train"])
            saved["curriculum"] = tuple(saved["curriculum"])
            cfg = TrainConfig(**resumed_config(saved, given, RUN_OPTIONS))
        else:
            if given.get("init_from"):
                arch = torch.load(given["init_from"], map_location="cpu",
                                  weights_only=False)["config"]  # fmt: skip
                given.update(width=arch["width"], blocks=arch["blocks"],
                             blackbox_skip=arch["blackbox_skip"])  # fmt: skip
            cfg = TrainConfig(**given)
        _, log = train(cfg, log_every=50, out=out, resume=resume, stop_after=stop_after)
        if int(os.environ.get("RANK", "0")) == 0:
            done = len(cfg.curriculum) * cfg.epochs_per_stage
            print("saved", out / ("prolongation.pt" if len(log) == done else "checkpoint.pt"))

    one_line_errors(run)


if __name__ == "__main__":
    main()
