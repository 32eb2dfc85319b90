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
disjoint train/validation files. Each epoch (or round of ``round_samples`` random samples) appends
to ``log.csv`` (both validation losses), prints progress and writes ``checkpoint.pt`` (weights,
optimizer, RNG states, config, history, versions); ``--resume`` picks up from it. The
best-validation weights go to ``model.pt`` (loadable by ``load_dcdm_model``). ``minutes`` is a
budget in process CPU time (``clock="cpu"``) or wall time; ``epochs`` fixes the run exactly.

Retrain the shipped 3D model (data/dcdm/dcdm3d.pt; one thread)::

    python -m pdesolve.train.dcdm_training --dim 3 --n 32 --samples 1300 --lanczos-steps 800 \
        --val-fraction 0.077 --round-samples 400 --epochs 20 --minutes 60 --out data/dcdm/run3d
    cp data/dcdm/run3d/model.pt data/dcdm/dcdm3d.pt

Retrain the shipped 2D model (data/dcdm/dcdm2d.pt: 128², four pooling levels, see ``DCDMNet``;
Ritz data first, then fine-tuned on the residuals of its own DCDM iteration)::

    python -m pdesolve.train.dcdm_training --dim 2 --n 128 --samples 2200 --lanczos-steps 800 \
        --val-fraction 0.0909 --round-samples 400 --levels 4 --epochs 51 --minutes 75 \
        --out data/dcdm/run2d128
    python experiments/dcdm/onpolicy.py --out data/dcdm/run2d128_onpolicy
    cp data/dcdm/run2d128_onpolicy/model.pt data/dcdm/dcdm2d.pt

The first 2D model (64², the paper's loss; data/dcdm/run2d/model.pt) came from
``--dim 2 --n 64 --loss residual --fluid-only 0 --clock wall --minutes 11 --out data/dcdm/run2d``.

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
from pdesolve.nn.checkpoint import (
    capture_rng,
    check_device,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from pdesolve.nn.dcdm_cnn import DCDMNet
from pdesolve.train.ritz import load_split, write_ritz_dataset


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
    "loss": "energy", "fluid_only": 1, "round_samples": 0, "clock": "cpu", "device": "cpu",
}  # fmt: skip
#: settings of runs made before an option existed (so that ``--resume`` reproduces them)
LEGACY = {"loss": "residual", "fluid_only": 0, "round_samples": 0, "clock": "wall", "levels": 1,
          "device": "cpu"}  # fmt: skip
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
LOSSES = ("residual", "energy")


def train(out: str | Path, resume: bool = False, **overrides: Any) -> dict[str, Any]:
    """Train (or resume) into ``out``; returns the final history. See the module docstring."""
    from pdesolve.problems.pressure import PressurePoisson

    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        cfg = {**LEGACY, **ckpt["config"]["train"]}
        cfg["minutes"] = overrides.get("minutes", cfg["minutes"])
        cfg["epochs"] = overrides.get("epochs", cfg["epochs"])
        cfg["device"] = overrides.get("device", cfg["device"])
    else:
        unknown = set(overrides) - set(DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown training options {sorted(unknown)}; known: {sorted(DEFAULTS)}"
            )
        cfg, ckpt = {**DEFAULTS, **overrides}, None
    if cfg["loss"] not in LOSSES:
        raise ValueError(f"unknown loss {cfg['loss']!r}; known: {', '.join(LOSSES)}")
    if cfg["clock"] not in CLOCKS:
        raise ValueError(f"unknown clock {cfg['clock']!r}; known: {', '.join(CLOCKS)}")
    check_device(cfg["device"])
    device = torch.device(cfg["device"])
    clock = CLOCKS[cfg["clock"]]
    torch.manual_seed(cfg["seed"])
    problem = PressurePoisson(
        dim=cfg["dim"], n=cfg["n"], geometry=cfg["geometry"], obstacles=cfg["obstacles"],
        seed=cfg["problem_seed"], boundary=cfg["boundary"],
    )  # fmt: skip
    system = problem.discretize()
    grid = system.metadata["grid_shape"]
    mask = torch.as_tensor(system.metadata["fluid_mask"], dtype=torch.float32, device=device)
    data_dir = out / "data"
    if not (data_dir / "meta.json").is_file():
        print(f"writing Ritz dataset to {data_dir} ...", flush=True)
        write_ritz_dataset(
            system.A, data_dir, cfg["samples"], cfg["lanczos_steps"], chunk=cfg["chunk"],
            val_fraction=cfg["val_fraction"], seed=cfg["seed"],
            support=system.metadata["fluid_mask"] if cfg["fluid_only"] else None,
            energies="ritz" if cfg["loss"] == "energy" else None,
        )  # fmt: skip
    meta = json.loads((data_dir / "meta.json").read_text())
    has_energy = bool(meta.get("energies"))
    if cfg["loss"] == "energy" and not has_energy:
        raise ValueError(f"loss='energy' needs sample energies; {data_dir} has none")
    if has_energy:
        train_np, train_e = load_split(data_dir, "train", energy=True)
        val_np, val_e = load_split(data_dir, "val", energy=True)
        train_e = torch.as_tensor(train_e, device=device)
        val_e = torch.as_tensor(val_e, device=device)
    else:
        train_np, val_np = load_split(data_dir, "train"), load_split(data_dir, "val")
        train_e = val_e = None
    train_b = torch.as_tensor(train_np, device=device).reshape((-1,) + grid)
    val_b = torch.as_tensor(val_np, device=device).reshape((-1,) + grid)
    A = StencilOperator(system.stencil, dtype=torch.float32, device=cfg["device"])
    model = DCDMNet(cfg["dim"], cfg["channels"], cfg["pre"], cfg["coarse"], cfg["post"],
                    bool(cfg.get("bias", 1)), cfg["levels"]).to(device)  # fmt: skip
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
        """Validation losses: the paper's residual loss, and the energy loss when available."""
        model.eval()
        res, ene = [], []
        with torch.no_grad():
            for i in range(0, len(val_b), 50):
                b = val_b[i : i + 50]
                q = apply(b)
                res.append(dcdm_loss(b, q, A).item() * len(b))
                if val_e is not None:
                    ene.append(energy_loss(b, q, A, val_e[i : i + 50].float()).item() * len(b))
        model.train()
        out = {"val_residual_loss": sum(res) / len(val_b)}
        if ene:
            out["val_energy_loss"] = sum(ene) / len(val_b)
        out["val_loss"] = out["val_energy_loss" if cfg["loss"] == "energy" else "val_residual_loss"]
        return out

    log = out / "log.csv"
    start = clock()
    spent = sum(h["seconds"] for h in history)
    while epoch < cfg["epochs"] and spent + (clock() - start) < 60 * cfg["minutes"]:
        t, t_wall = clock(), time.perf_counter()
        perm = torch.randperm(len(train_b), generator=gen)
        if cfg["round_samples"]:  # a "round" of round_samples random samples instead of an epoch
            perm = perm[: cfg["round_samples"]]
        losses = []
        for idx in perm.split(cfg["batch"]):
            b = train_b[idx]
            loss = objective(b, apply(b), None if train_e is None else train_e[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        epoch += 1
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **evaluate(),
               "seconds": clock() - t, "wall_seconds": time.perf_counter() - t_wall}  # fmt: skip
        history.append(row)
        new = not log.is_file()
        with log.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        extra = "".join(f"  {k[4:]} {v:.4e}" for k, v in row.items()
                        if k.startswith("val_") and k != "val_loss")  # fmt: skip
        print(f"epoch {epoch}: train {row['train_loss']:.4e}  val {row['val_loss']:.4e}{extra}  "
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
