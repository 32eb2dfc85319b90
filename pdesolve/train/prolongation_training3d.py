"""Unsupervised training of the learned 3-D prolongation by the 3-D block-Fourier two-grid loss.

Training problems are periodic ``4³`` blocks (``pdesolve.train.block_fourier3d``) of two seeded
log-normal families, half each: trilinear-FE 27-point stencils of cell coefficients
``exp(N(0, σ²))`` and 7-point finite differences of nodal ones (harmonic face means; the two
schemes of ``get_problem("diffusion", dim=3)``). The loss is the two-grid ``||M_θ||²_F`` of the
symmetric cycle ``M = S_back C S_fwd`` (one Gauss–Seidel sweep each side, the cycle that
preconditions CG), max over the block frequencies of a periodic grid of size ``n``. A curriculum
over ``n`` (default ``(8, 8, 8, 8, 8)``): after each stage, Galerkin coarse problems are added —
fresh ``8³`` periodic problems coarsened by the current network to ``4³`` blocks, whose
27-point stencils are what the coarse levels of a hierarchy see. Float64 / complex128.

Retrain the shipped checkpoint (about 10 CPU-minutes on one core of a loaded machine)::

    python -m pdesolve.train.prolongation_training3d --out pdesolve/data/learned_multigrid

which writes ``prolongation3d.pt``, ``config3d.json`` and ``training_log3d.json``.

>>> cfg = TrainConfig3D(samples=16, test_samples=4, batch=8, curriculum=(8,), width=4, blocks=1)
>>> net, log = train3d(cfg)
>>> log[-1]["n"], log[-1]["test_loss"] > 0
(8, True)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.discretize.prolongation3d import blackbox_pstencil3d
from pdesolve.nn.checkpoint import check_device
from pdesolve.nn.prolongation3d import DIM, ProlongationNet3D, learned_pstencil3d
from pdesolve.train.block_fourier3d import (
    TwoGridProblems,
    galerkin_coarse_stencil3d,
    periodic_fd7_stencil,
    periodic_fe27_stencil,
)

BLOCK = 4


@dataclass
class TrainConfig3D:
    """Settings of one 3-D training run (recorded in the checkpoint)."""

    width: int = 32
    blocks: int = 2
    blackbox_skip: bool = True
    learn_faces: bool = True
    samples: int = 1024
    test_samples: int = 32
    test_n: int = 12
    batch: int = 16
    lr: float = 2e-3
    epochs_per_stage: int = 1
    curriculum: tuple[int, ...] = (8, 8, 8, 8, 8)
    coarse_fraction: float = 0.5
    sigma: float = 1.0
    pre: int = 1
    post: int = 1
    reduction: str = "max"
    weight_decay: float = 1e-7
    seed: int = 0
    device: str = "cpu"
    threads: int = 1


def lognormal_blocks3d(count: int, block: int, rng: np.random.Generator, sigma: float = 1.0
                       ) -> torch.Tensor:
    """Periodic stencils ``(count, block, block, block, 3, 3, 3)``: the first half trilinear FE
    of log-normal cells, the second half 7-point FD of log-normal nodal values."""
    fe = count // 2
    g = torch.as_tensor(np.exp(sigma * rng.standard_normal((count, block, block, block))))
    return torch.cat([periodic_fe27_stencil(g[:fe]), periodic_fd7_stencil(g[fe:])])


def coarse_blocks3d(net: ProlongationNet3D, count: int, rng: np.random.Generator,
                    sigma: float = 1.0, chunk: int = 64) -> torch.Tensor:
    """``4³`` Galerkin coarse stencils of fresh ``8³`` periodic problems, coarsened by ``net``."""
    out = []
    for start in range(0, count, chunk):
        fine = lognormal_blocks3d(min(chunk, count - start), 2 * BLOCK, rng, sigma)
        with torch.no_grad():
            p = learned_pstencil3d(net, fine, periodic=True).cpu()
        out.append(galerkin_coarse_stencil3d(fine, p))
    return torch.cat(out)


def evaluate3d(net: ProlongationNet3D, stencils: torch.Tensor, n: int, cfg: TrainConfig3D
               ) -> tuple[float, float]:
    """Mean-over-θ loss of the network and of black-box on ``stencils`` (batch means)."""
    problems = TwoGridProblems(stencils, n, cfg.pre, cfg.post)
    with torch.no_grad():
        ours = problems.loss(learned_pstencil3d(net, stencils, periodic=True), "mean")
        bb = problems.loss(blackbox_pstencil3d(stencils, periodic=True), "mean")
    return ours.mean().item(), bb.mean().item()


def train3d(cfg: TrainConfig3D, log_every: int = 0
            ) -> tuple[ProlongationNet3D, list[dict[str, Any]]]:
    """Train a ``ProlongationNet3D`` under ``cfg``; returns it and one log record per epoch."""
    check_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device(cfg.device)
    net = ProlongationNet3D(cfg.width, cfg.blocks, cfg.blackbox_skip,
                            cfg.learn_faces).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = lognormal_blocks3d(cfg.samples, BLOCK, rng, cfg.sigma)
    test = lognormal_blocks3d(cfg.test_samples, BLOCK, rng, cfg.sigma).to(device)
    log: list[dict[str, Any]] = []
    start = time.perf_counter()
    epoch = 0
    for stage, n in enumerate(cfg.curriculum):
        if stage > 0:  # add Galerkin-coarsened problems made with the current network
            extra = coarse_blocks3d(net, int(cfg.coarse_fraction * cfg.samples), rng, cfg.sigma)
            keep = torch.as_tensor(rng.permutation(len(data))[: len(data) - len(extra)])
            data = torch.cat([data[keep], extra])
        for _ in range(cfg.epochs_per_stage):
            order = torch.as_tensor(rng.permutation(len(data)))
            losses = []
            for step, first in enumerate(range(0, len(data), cfg.batch)):
                batch = data[order[first : first + cfg.batch]].to(device)
                problems = TwoGridProblems(batch, n, cfg.pre, cfg.post)
                loss = problems.loss(learned_pstencil3d(net, batch, periodic=True),
                                     cfg.reduction).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if log_every and step % log_every == 0:
                    print(f"stage {stage} n={n} step {step}: loss {loss.item():.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
            ours, bb = evaluate3d(net, test, cfg.test_n, cfg)
            record = {
                "epoch": epoch, "stage": stage, "n": n, "problems": len(data),
                "train_loss": float(np.mean(losses)), "test_loss": ours,
                "blackbox_test_loss": bb, "seconds": time.perf_counter() - start,
            }
            log.append(record)
            if log_every:
                print(json.dumps(record), flush=True)
            epoch += 1
    return net, log


def save3d(net: ProlongationNet3D, cfg: TrainConfig3D, log: list[dict[str, Any]], out: Path
           ) -> Path:
    """Write ``prolongation3d.pt`` (config + weights), ``config3d.json``, ``training_log3d.json``
    into ``out``; an existing checkpoint is replaced atomically."""
    import pdesolve

    out.mkdir(parents=True, exist_ok=True)
    ckpt = {"config": net.config, "dim": DIM, "model": net.cpu().state_dict(),
            "train_config": asdict(cfg), "log": log,
            "version": getattr(pdesolve, "__version__", "unknown")}
    path = out / "prolongation3d.pt"
    tmp = out / "prolongation3d.pt.tmp"
    torch.save(ckpt, tmp)
    tmp.replace(path)
    (out / "config3d.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "training_log3d.json").write_text(json.dumps(log, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="pdesolve/data/learned_multigrid")
    defaults = TrainConfig3D()
    for name in ("width", "blocks", "samples", "test_samples", "batch", "epochs_per_stage",
                 "seed", "threads", "pre", "post"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int,
                            default=getattr(defaults, name))
    for name in ("lr", "sigma", "coarse_fraction"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float,
                            default=getattr(defaults, name))
    parser.add_argument("--reduction", default=defaults.reduction)
    parser.add_argument("--edges-only", dest="learn_faces", action="store_false",
                        help="learn the edge weights only (faces by the collapsed-plane rule)")
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--curriculum", default=",".join(map(str, defaults.curriculum)))
    args = vars(parser.parse_args(argv))
    out = Path(args.pop("out"))
    args["curriculum"] = tuple(int(v) for v in args["curriculum"].split(","))
    cfg = TrainConfig3D(**args)
    net, log = train3d(cfg, log_every=8)
    print("saved", save3d(net, cfg, log, out))


if __name__ == "__main__":
    main()
