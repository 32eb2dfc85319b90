"""Unsupervised training of the learned prolongation by block-Fourier two-grid loss (Greenfeld).

Training problems are periodic 8×8-cell blocks of log-normal coefficients (``g = exp(N(0, 1))``)
with the bilinear-FE stencil; the loss is the two-grid ``||M_θ||_F²`` over block frequencies
(``pdesolve.train.block_fourier``), max over θ by default. Curriculum over periodic grid sizes
(default ``[16, 16, 32]``): after each stage, Galerkin coarse problems are added — fresh 16×16
periodic log-normal problems coarsened with the current network to 8×8 blocks, whose 9-point
stencils are no longer FE-like (see ``docs/methods/learned_multigrid.md``). Float64 / complex128
throughout.

Retrain from scratch (about 15 minutes on one core)::

    python -m pdesolve.train.prolongation_training --out data/learned_multigrid

``--init-from CHECKPOINT`` continues training a saved network (its width, depth and
``blackbox_skip`` are taken from the checkpoint); data, optimiser and curriculum are fresh.
``data/learned_multigrid/README.md`` gives the commands that rebuild the shipped checkpoint.

>>> cfg = TrainConfig(samples=64, test_samples=8, batch=32, curriculum=(16,), width=8, blocks=1)
>>> net, log = train(cfg)
>>> sorted(log[-1])[:3]
['blackbox_test_loss', 'epoch', 'n']
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.discretize.prolongation import blackbox_pstencil
from pdesolve.nn.checkpoint import check_device
from pdesolve.nn.prolongation import ProlongationNet, correction_range, learned_pstencil
from pdesolve.train.block_fourier import galerkin_coarse_stencil, periodic_fe_stencil, two_grid_loss


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
    #: guard = this × the largest |correction| over the training set (None: no guard)
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


def train(cfg: TrainConfig, log_every: int = 0) -> tuple[ProlongationNet, list[dict[str, Any]]]:
    """Train a ``ProlongationNet`` under ``cfg``; returns it and one log record per epoch."""
    check_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device(cfg.device)
    net = ProlongationNet(cfg.width, cfg.blocks, cfg.blackbox_skip)
    if cfg.init_from:
        ckpt = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        arch = {"width": cfg.width, "blocks": cfg.blocks, "blackbox_skip": cfg.blackbox_skip}
        if {k: ckpt["config"].get(k) for k in arch} != arch:
            raise ValueError(f"--init-from {cfg.init_from} has architecture {ckpt['config']}, "
                             f"the run asks for {arch}")
        net.load_state_dict(ckpt["model"])
    net = net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = lognormal_blocks(cfg.samples, 8, rng)
    test = lognormal_blocks(cfg.test_samples, 8, rng)
    log: list[dict[str, Any]] = []
    start = time.perf_counter()
    epoch = 0
    for stage, n in enumerate(cfg.curriculum):
        if stage > 0:  # add Galerkin-coarsened problems made with the current network
            extra = coarse_blocks(net, int(cfg.coarse_fraction * cfg.samples), rng)
            keep = torch.as_tensor(rng.permutation(len(data))[: len(data) // 2])
            data = torch.cat([data[keep], extra])
        for _ in range(cfg.epochs_per_stage):
            order = torch.as_tensor(rng.permutation(len(data)))
            losses = []
            for step, first in enumerate(range(0, len(data), cfg.batch)):
                batch = data[order[first : first + cfg.batch]].to(device)
                loss = _loss(net, batch, n, cfg).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if log_every and step % log_every == 0:
                    print(f"stage {stage} n={n} step {step}: loss {loss.item():.4f}", flush=True)
            ours, bb = evaluate(net, test.to(device), cfg.test_n, cfg)
            record = {
                "epoch": epoch, "stage": stage, "n": n, "problems": len(data),
                "train_loss": float(np.mean(losses)), "test_loss": ours,
                "blackbox_test_loss": bb, "seconds": time.perf_counter() - start,
            }
            log.append(record)
            if log_every:
                print(json.dumps(record), flush=True)
            epoch += 1
    if cfg.guard_margin is not None and cfg.blackbox_skip:
        net.set_guard(guard_for(net, data, cfg.guard_margin))
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
    ckpt = {"config": net.config, "model": net.cpu().state_dict(), "train_config": asdict(cfg),
            "log": log, "version": getattr(pdesolve, "__version__", "unknown")}
    path = out / "prolongation.pt"
    tmp = out / "prolongation.pt.tmp"
    torch.save(ckpt, tmp)
    tmp.replace(path)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/learned_multigrid")
    defaults = TrainConfig()
    for name in ("width", "blocks", "samples", "batch", "epochs_per_stage", "seed", "threads",
                 "pre", "post"):
        flag = f"--{name.replace('_', '-')}"
        parser.add_argument(flag, type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--guard-margin", type=float, default=defaults.guard_margin,
                        help="guard = margin x largest training correction (0: no guard)")
    parser.add_argument("--reduction", default=defaults.reduction)
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--curriculum", default=",".join(map(str, defaults.curriculum)))
    parser.add_argument("--init-from", default=None,
                        help="continue training this checkpoint (architecture taken from it)")
    args = vars(parser.parse_args(argv))
    out = Path(args.pop("out"))
    args["curriculum"] = tuple(int(v) for v in args["curriculum"].split(","))
    if args["init_from"]:
        arch = torch.load(args["init_from"], map_location="cpu", weights_only=False)["config"]
        args.update(width=arch["width"], blocks=arch["blocks"],
                    blackbox_skip=arch["blackbox_skip"])
    args["guard_margin"] = args["guard_margin"] or None
    cfg = TrainConfig(**args)
    net, log = train(cfg, log_every=50)
    print("saved", save(net, cfg, log, out))


if __name__ == "__main__":
    main()
