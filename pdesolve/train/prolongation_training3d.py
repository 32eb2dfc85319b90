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

Retrain the shipped checkpoint (about 10 CPU-minutes on one core of a loaded machine) into a
new folder, then copy its three files into ``pdesolve/data/learned_multigrid``::

    python -m pdesolve.train.prolongation_training3d --out runs/prolongation3d

Every option is listed by ``--help``. ``--out`` must be a new (or empty) folder, unless
``--resume`` continues the run in it from ``checkpoint.pt`` (written after every epoch: weights,
optimiser, the numpy and torch RNG states, the current training problems, the log); a resume may
change only ``--device``, ``--threads`` and ``--stop-after`` (stop after that many epochs in all),
and any other option that differs is an error naming it (``pdesolve.train.runs``). The end of
the run writes ``prolongation3d.pt``, ``config3d.json``, ``training_log3d.json`` and
``result.json``.

>>> cfg = TrainConfig3D(samples=16, test_samples=4, batch=8, curriculum=(8,), width=4, blocks=1)
>>> net, log = train3d(cfg)
>>> log[-1]["n"], log[-1]["test_loss"] > 0
(8, True)
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.discretize.prolongation3d import blackbox_pstencil3d
from pdesolve.io import versions, write_json
from pdesolve.nn.checkpoint import check_device, load_checkpoint, resume_training, save_checkpoint
from pdesolve.nn.prolongation3d import DIM, ProlongationNet3D, learned_pstencil3d
from pdesolve.train.block_fourier3d import (
    TwoGridProblems,
    galerkin_coarse_stencil3d,
    periodic_fd7_stencil,
    periodic_fe27_stencil,
)
from pdesolve.train.runs import add_options, claim_folder, one_line_errors, resumed_config

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


def train3d(cfg: TrainConfig3D, log_every: int = 0, *, out: str | Path | None = None,
            resume: bool = False, stop_after: int | None = None
            ) -> tuple[ProlongationNet3D, list[dict[str, Any]]]:
    """Train a ``ProlongationNet3D`` under ``cfg``; returns it and one log record per epoch.

    With ``out`` a checkpoint is written there after every epoch and ``resume=True`` continues
    the run from it (``cfg`` must then be the run's, but for ``RUN_OPTIONS3D``); a finished run
    writes its files there (``save3d``). ``stop_after`` ends the run after that many epochs in
    all.
    """
    check_device(cfg.device)
    ckpt = None
    if out is not None:
        out = Path(out)
        claim_folder(out, resume)
        if resume:
            ckpt = load_checkpoint(out / "checkpoint.pt")
            saved = _as_options(ckpt["config"]["train"])
            resumed_config(saved, _as_options(asdict(cfg)), RUN_OPTIONS3D)
    elif resume:
        raise ValueError("resume=True needs out= (the folder of the run)")
    if stop_after is not None and stop_after < 0:
        raise ValueError(f"stop_after must be >= 0, got {stop_after}")
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
    start, done = time.perf_counter(), 0
    if ckpt is not None:
        data, log, done = resume_training(ckpt, net, opt, rng)
        start -= log[-1]["seconds"] if log else 0.0
    config = {"train": asdict(cfg), "model": net.config}

    def checkpoint(epoch: int) -> None:
        if out is not None:
            save_checkpoint(out / "checkpoint.pt", step=epoch, config=config, model=net,
                            optimizer=opt, history=log, numpy_rng=rng.bit_generator.state,
                            problems=data)  # fmt: skip

    if out is not None and ckpt is None:
        write_json(out / "config3d.json", asdict(cfg), overwrite=True)
        checkpoint(0)
    total = len(cfg.curriculum) * cfg.epochs_per_stage
    last = total if stop_after is None else min(total, stop_after)
    for epoch in range(done, last):
        stage, within = divmod(epoch, cfg.epochs_per_stage)
        n = cfg.curriculum[stage]
        if stage > 0 and within == 0:  # add Galerkin-coarsened problems made with the current net
            extra = coarse_blocks3d(net, int(cfg.coarse_fraction * cfg.samples), rng, cfg.sigma)
            keep = torch.as_tensor(rng.permutation(len(data))[: len(data) - len(extra)])
            data = torch.cat([data[keep], extra])
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
        checkpoint(epoch + 1)
    if out is not None and last == total:
        save3d(net, cfg, log, out)
        write_json(out / "result.json", {
            "kind": "train", "trainer": "prolongation3d", "world_size": 1, "epochs": len(log),
            "final": log[-1] if log else None, "config": asdict(cfg), "versions": versions(),
        }, overwrite=True)  # fmt: skip
    return net, log


def _as_options(config: dict[str, Any]) -> dict[str, Any]:
    """A run's options as compared on resume (the curriculum as a list)."""
    return {**config, "curriculum": list(config["curriculum"])}


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


HELP3D = {
    "width": "channels of the network's hidden layers",
    "blocks": "residual blocks of the network",
    "blackbox_skip": "1: the network corrects black-box edge weights, 0: predicts them",
    "learn_faces": "1: also learn the 12 face factors, 0: edges only (faces by the "
                   "collapsed-plane rule)",
    "samples": "periodic 4x4x4 log-normal training problems (half trilinear FE, half 7-point FD)",
    "test_samples": "test problems (their loss is logged each epoch)",
    "test_n": "periodic grid size of the test loss",
    "batch": "batch size",
    "lr": "Adam learning rate",
    "epochs_per_stage": "epochs per curriculum stage",
    "curriculum": "periodic grid sizes of the stages, comma-separated (multiples of 4)",
    "coarse_fraction": "Galerkin-coarsened problems added per stage, as a fraction of --samples",
    "sigma": "standard deviation of the log-normal coefficients' logarithm",
    "pre": "pre-smoothing sweeps in the two-grid loss",
    "post": "post-smoothing sweeps in the two-grid loss",
    "reduction": "reduction of the loss over frequencies (max or mean)",
    "weight_decay": "Adam weight decay",
    "seed": "seed of the problems, the weights and the shuffling",
    "device": "cpu or cuda; may change on --resume",
    "threads": "torch threads; may change on --resume",
}
REDUCTIONS3D = ("max", "mean")
#: options a --resume may change; all others must match the run's
RUN_OPTIONS3D = ("device", "threads")


def _check3d(cfg: TrainConfig3D) -> None:
    """Refuse settings that cannot train, before any work."""
    for name in ("width", "blocks", "samples", "test_samples", "batch", "epochs_per_stage",
                 "threads"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not cfg.curriculum or any(n < 2 * BLOCK or n % BLOCK for n in cfg.curriculum):
        raise ValueError(f"--curriculum needs periodic grid sizes that are multiples of {BLOCK} "
                         f"and at least {2 * BLOCK}, got {cfg.curriculum}")
    if cfg.reduction not in REDUCTIONS3D:
        raise ValueError(f"unknown reduction {cfg.reduction!r}; known: {', '.join(REDUCTIONS3D)}")
    if not 0 <= cfg.coarse_fraction <= 1:
        raise ValueError(f"--coarse-fraction must be in [0, 1], got {cfg.coarse_fraction}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring); errors end with one line."""
    parser = argparse.ArgumentParser(prog="python -m pdesolve.train.prolongation_training3d",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder (refused if it holds a run, "
                        "unless --resume)")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue the run in --out; only "
                        "--device, --threads and --stop-after may change")  # fmt: skip
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many "
                        "epochs in all (resume later with --resume; default: the whole "
                        "curriculum)")  # fmt: skip
    defaults = {f.name: f.default for f in fields(TrainConfig3D)}
    add_options(parser, defaults, HELP3D, {"reduction": REDUCTIONS3D})
    args = vars(parser.parse_args(argv))
    out, resume, stop_after = Path(args.pop("out")), args.pop("resume"), args.pop("stop_after")
    given = {k: v for k, v in args.items() if v is not None}

    def run() -> None:
        if resume:  # the run's options; given ones must agree with them (but RUN_OPTIONS3D)
            claim_folder(out, resume=True)
            saved = _as_options(load_checkpoint(out / "checkpoint.pt")["config"]["train"])
            given_opts = {**given, **({"curriculum": list(given["curriculum"])}
                                      if "curriculum" in given else {})}
            merged = resumed_config(saved, given_opts, RUN_OPTIONS3D)
            cfg = TrainConfig3D(**{**merged, "curriculum": tuple(merged["curriculum"])})
        else:
            cfg = TrainConfig3D(**given)
        _check3d(cfg)
        _, log = train3d(cfg, log_every=8, out=out, resume=resume, stop_after=stop_after)
        done = len(cfg.curriculum) * cfg.epochs_per_stage
        print("saved", out / ("prolongation3d.pt" if len(log) == done else "checkpoint.pt"))

    one_line_errors(run)


if __name__ == "__main__":
    main()
