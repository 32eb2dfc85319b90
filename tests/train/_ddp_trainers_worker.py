"""Run under ``torchrun --nproc_per_node=2`` by test_trainers_ddp.py (float64, tiny sizes).

For each trainer: an uninterrupted run, and a run stopped after one epoch (its folder copied
aside, for a one-process resume in the test) then resumed; for DCDM also a dataset with one
NaN sample in rank 1's part; for the PINN trainer also an uneven global batch and a run of the
command line's ``run``. Each rank writes what it saw to ``rank<r>.json``.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.train import dcdm_training, prolongation_training, unet_training
from pdesolve.train.distributed import DistributedContext, RankFailure
from pdesolve.train.pinn import PINNTrainer

DCDM = {"n": 16, "samples": 24, "lanczos_steps": 20, "batch": 4, "channels": 4, "pre": 1,
        "coarse": 1, "post": 1, "dtype": "float64", "minutes": 60.0}  # fmt: skip
PROLONGATION = {"samples": 32, "test_samples": 4, "test_n": 16, "batch": 16, "width": 4,
                "blocks": 1, "curriculum": (16, 16), "coarse_fraction": 0.5}  # fmt: skip
UNET = {"n": 16, "count": 8, "batch": 4, "features": 2, "depth": 1, "epochs": 3,
        "dtype": "float64"}  # fmt: skip

# poisson 2-D with a soft boundary term; every phase, refinement and loss-weight annealing
PINN = {"model": {"name": "mlp", "width": 8, "depth": 2, "activation": "tanh"},
        "optimizer": {"name": "adam", "lr": 1e-2}, "batch": 16, "boundary_batch": 8,
        "constraint": "soft", "sampling": "random", "rar": {"every": 3, "candidates": 32,
        "points": 2}, "adaptive_weights": "annealing", "adaptive_options": {"every": 2},
        "lbfgs_options": {"max_iter": 3}, "test_points": 64, "monitor_points": 32,
        "log_every": 1, "seed": 3, "progress": False, "dtype": "float64"}  # fmt: skip
PINN_FULL = {"steps": 6, "lbfgs_steps": 2, "bfgs_steps": 2}
# 1-D heat with causal weights over 4 time slabs, Adam then L-BFGS (the weights in every phase)
CAUSAL = {"model": {"name": "mlp", "width": 8, "depth": 2, "activation": "tanh"},
          "optimizer": {"name": "adam", "lr": 1e-2}, "batch": 16, "steps": 4, "lbfgs_steps": 2,
          "lbfgs_options": {"max_iter": 3}, "causal": {"segments": 4, "epsilon": 1.0},
          "sampling": "random", "log_every": 1, "seed": 5, "progress": False,
          "dtype": "float64"}  # fmt: skip


def causal_problem():
    return pdesolve.get_problem("heat", dim=1)
PINN_PART = {"steps": 4, "lbfgs_steps": 0, "bfgs_steps": 0}


def pinn_problem():
    return pdesolve.get_problem("poisson", dim=2, solution="sine")


def pinn_history(trainer: PINNTrainer) -> dict:
    return {k: trainer.history[k] for k in ("step", "phase", "train_loss", "relative_l2",
                                            "residual_rms", "points", "world_size")}  # fmt: skip


def pinn_scenarios(base: Path, ctx: DistributedContext) -> dict:
    """The PINN trainer: an uninterrupted run through every phase, a stopped and resumed one,
    an uneven global batch, and a ``fit=pinn`` run of the command line's ``run``."""
    base.mkdir(exist_ok=True)
    report: dict = {}
    probe = PINNTrainer(pinn_problem(), **PINN, **PINN_FULL)
    report["per_rank_batch"] = [int(x.shape[0]) if x is not None else 0 for x in probe._batch()]
    full = PINNTrainer(pinn_problem(), **PINN, **PINN_FULL, output_dir=base / "full")
    full.fit()
    report["full"] = pinn_history(full)
    report["weights"] = dict(full.weights)
    report["parameters"] = [p.detach().reshape(-1).tolist() for p in full.model.parameters()]
    PINNTrainer(pinn_problem(), **PINN, **PINN_PART, output_dir=base / "part").fit()
    if ctx.is_main:
        shutil.copytree(base / "part", base / "part1")
    ctx.barrier()
    resumed = PINNTrainer(pinn_problem(), **PINN, **PINN_FULL, output_dir=base / "part",
                          resume=True)  # fmt: skip
    resumed.fit()
    report["resumed"] = pinn_history(resumed)
    causal = PINNTrainer(causal_problem(), **CAUSAL)
    causal.fit()
    report["causal"] = {**pinn_history(causal),
                        "causal_min_weight": causal.history["causal_min_weight"]}
    try:  # 9 boundary points do not split over 2 processes: refused before any work
        PINNTrainer(pinn_problem(), **{**PINN, "boundary_batch": 9}, **PINN_FULL)
    except ValueError as exc:
        report["odd_batch"] = str(exc)
    from hydra import compose, initialize_config_dir

    from pdesolve.cli import CONFIG_DIR, run

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "fit=pinn", "problem=poisson1d", "fit.steps=4", "fit.batch=8", "fit.log_every=2",
            "model@fit.model=mlp", "fit.model.width=4", "fit.model.depth=1",
            "fit.test_points=16", "fit.monitor_points=8", "fit.progress=false"])  # fmt: skip
    report["cli"] = run(cfg, base / "cli" if ctx.is_main else None)["sizes"]
    return report


def main() -> None:
    base = Path(sys.argv[1])
    torch.set_num_threads(1)
    ctx = DistributedContext.from_environment()
    report: dict = {"world_size": ctx.world_size}

    def snapshot(src: str, dst: str) -> None:
        if ctx.is_main:
            shutil.copytree(base / src, base / dst)
        ctx.barrier()

    report["dcdm_full"] = dcdm_training.train(base / "dcdm_full", epochs=3, **DCDM)["history"]
    dcdm_training.train(base / "dcdm_part", epochs=1, **DCDM)
    snapshot("dcdm_part", "dcdm_part1")
    report["dcdm_resumed"] = dcdm_training.train(base / "dcdm_part", resume=True, epochs=3,
                                                 **DCDM)["history"]  # fmt: skip
    if ctx.is_main:  # the same dataset with one NaN in the second half of the training samples
        (base / "dcdm_nan").mkdir()
        shutil.copytree(base / "dcdm_full" / "data", base / "dcdm_nan" / "data")
        first = base / "dcdm_nan" / "data" / "train_00000.npy"
        x = np.load(first)
        x[15, 3] = np.nan
        np.save(first, x)
    ctx.barrier()
    try:
        dcdm_training.train(base / "dcdm_nan", epochs=3, **DCDM)
    except RankFailure as exc:
        report["dcdm_nan"] = str(exc)

    cfg = prolongation_training.TrainConfig(**PROLONGATION)
    report["prolongation_full"] = prolongation_training.train(cfg, out=base / "prol_full")[1]
    prolongation_training.train(cfg, out=base / "prol_part", stop_after=1)
    snapshot("prol_part", "prol_part1")
    report["prolongation_resumed"] = prolongation_training.train(
        cfg, out=base / "prol_part", resume=True)[1]  # fmt: skip

    ucfg = unet_training.UNetTrainConfig(**UNET)
    report["unet_full"] = unet_training.train_unet(ucfg, out=base / "unet_full", log=None)[1]
    one = unet_training.UNetTrainConfig(**{**UNET, "epochs": 1})
    unet_training.train_unet(one, out=base / "unet_part", log=None)
    snapshot("unet_part", "unet_part1")
    report["unet_resumed"] = unet_training.train_unet(ucfg, out=base / "unet_part", resume=True,
                                                      log=None)[1]  # fmt: skip
    report["pinn"] = pinn_scenarios(base / "pinn", ctx)
    (base / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    ctx.close()


if __name__ == "__main__":
    main()
