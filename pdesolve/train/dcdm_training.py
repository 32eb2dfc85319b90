"""Training of the DCDM network with the scale-invariant loss (METHODS.md §3.2), resumable.

For a right-hand side ``b`` and ``q = f(b)`` the loss is the residual after one exact line search
along ``q``, ``|| b − (qᵀb / qᵀAq) A q ||²``, averaged over the batch: invariant to the scale of
``q``, so the network only has to learn ``A⁻¹`` up to a constant. ``A`` (one training matrix, as
in the paper) is applied matrix-free as a stencil convolution; directions are zeroed off the fluid
cells, as in the solver. Data are Ritz right-hand sides (``pdesolve.train.ritz``) with disjoint
train/validation files. Each epoch appends to ``log.csv``, prints progress and writes
``checkpoint.pt`` (weights, optimizer, RNG states, config, history, versions); ``--resume`` picks up
from it. The best-validation weights go to ``model.pt`` (loadable by ``load_dcdm_model``).

Retrain the shipped 2D model (about 12 min on one core)::

    python -m pdesolve.train.dcdm_training --dim 2 --n 64 --out data/dcdm/run2d --minutes 12

>>> import torch
>>> A = StencilOperator(np.array([[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]] * 4).reshape(2, 2, 3, 3))
>>> b, q = torch.randn(3, 2, 2, dtype=torch.float64), torch.randn(3, 2, 2, dtype=torch.float64)
>>> bool(torch.isclose(dcdm_loss(b, q, A), dcdm_loss(b, -7.5 * q, A)))
True
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.linalg.torch_ops import StencilOperator
from pdesolve.nn.dcdm_cnn import DCDMNet
from pdesolve.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from pdesolve.train.ritz import load_split, write_ritz_dataset


def dcdm_loss(b: torch.Tensor, q: torch.Tensor, A: StencilOperator) -> torch.Tensor:
    """Mean over the batch of ``||b − (qᵀb / qᵀAq) A q||²`` (fields ``(B, *grid)``)."""
    axes = tuple(range(1, b.ndim))
    Aq = A(q)
    alpha = (q * b).sum(axes, keepdim=True) / (q * Aq).sum(axes, keepdim=True)
    return ((b - alpha * Aq) ** 2).sum(axes).mean()


DEFAULTS: dict[str, Any] = {
    "dim": 2, "n": 64, "geometry": "obstacles", "obstacles": 4, "problem_seed": 0,
    "boundary": "open_top", "samples": 2000, "lanczos_steps": 400, "chunk": 200,
    "val_fraction": 0.1, "batch": 10, "lr": 1e-3, "epochs": 1000, "minutes": 12.0, "seed": 0,
    "channels": 16, "pre": 2, "coarse": 3, "post": 2, "bias": 0,
}  # fmt: skip


def train(out: str | Path, resume: bool = False, **overrides: Any) -> dict[str, Any]:
    """Train (or resume) into ``out``; returns the final history. See the module docstring."""
    from pdesolve.problems.pressure import PressurePoisson

    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        cfg = dict(ckpt["config"]["train"])
        cfg["minutes"] = overrides.get("minutes", cfg["minutes"])
        cfg["epochs"] = overrides.get("epochs", cfg["epochs"])
    else:
        unknown = set(overrides) - set(DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown training options {sorted(unknown)}; known: {sorted(DEFAULTS)}"
            )
        cfg, ckpt = {**DEFAULTS, **overrides}, None
    torch.manual_seed(cfg["seed"])
    problem = PressurePoisson(
        dim=cfg["dim"], n=cfg["n"], geometry=cfg["geometry"], obstacles=cfg["obstacles"],
        seed=cfg["problem_seed"], boundary=cfg["boundary"],
    )  # fmt: skip
    system = problem.discretize()
    grid = system.metadata["grid_shape"]
    mask = torch.as_tensor(system.metadata["fluid_mask"], dtype=torch.float32)
    data_dir = out / "data"
    if not (data_dir / "meta.json").is_file():
        print(f"writing Ritz dataset to {data_dir} ...", flush=True)
        write_ritz_dataset(
            system.A, data_dir, cfg["samples"], cfg["lanczos_steps"], chunk=cfg["chunk"],
            val_fraction=cfg["val_fraction"], seed=cfg["seed"],
        )  # fmt: skip
    train_b = torch.as_tensor(load_split(data_dir, "train")).reshape((-1,) + grid)
    val_b = torch.as_tensor(load_split(data_dir, "val")).reshape((-1,) + grid)
    A = StencilOperator(system.stencil, dtype=torch.float32)
    model = DCDMNet(cfg["dim"], cfg["channels"], cfg["pre"], cfg["coarse"], cfg["post"],
                    bool(cfg.get("bias", 1)))  # fmt: skip
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

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [dcdm_loss(b, apply(b), A).item() for b in val_b.split(50)]
        model.train()
        return float(np.mean(losses))

    log = out / "log.csv"
    start = time.perf_counter()
    spent = sum(h["seconds"] for h in history)
    while epoch < cfg["epochs"] and spent + (time.perf_counter() - start) < 60 * cfg["minutes"]:
        t = time.perf_counter()
        perm = torch.randperm(len(train_b), generator=gen)
        losses = []
        for idx in perm.split(cfg["batch"]):
            b = train_b[idx]
            loss = dcdm_loss(b, apply(b), A)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        epoch += 1
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": evaluate(),
               "seconds": time.perf_counter() - t}  # fmt: skip
        history.append(row)
        new = not log.is_file()
        with log.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(f"epoch {epoch}: train {row['train_loss']:.4e}  val {row['val_loss']:.4e}  "
              f"({row['seconds']:.1f} s)", flush=True)  # fmt: skip
        config = {"train": cfg, "model": model.config}
        if row["val_loss"] < best:
            best = row["val_loss"]
            save_checkpoint(out / "model.pt", step=epoch, config=config, model=model)
        save_checkpoint(ckpt_path, step=epoch, config=config, model=model, optimizer=opt,
                        rng=capture_rng({"shuffle": gen}), history=history)  # fmt: skip
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    return {"history": history, "best_val_loss": best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="train the DCDM network (pdesolve)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    args = vars(parser.parse_args(argv))
    out, resume = args.pop("out"), args.pop("resume")
    torch.set_num_threads(1)
    train(out, resume=resume, **{k: v for k, v in args.items() if v is not None})


if __name__ == "__main__":
    main()
