"""Run under ``torchrun --nproc_per_node=2`` by test_trainers_ddp.py (float64, tiny sizes).

For each trainer: an uninterrupted run, and a run stopped after one epoch (its folder copied
aside, for a one-process resume in the test) then resumed; for DCDM also a dataset with one
NaN sample in rank 1's part. Each rank writes what it saw to ``rank<r>.json``.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from pdesolve.train import dcdm_training, prolongation_training, unet_training
from pdesolve.train.distributed import DistributedContext, RankFailure

DCDM = {"n": 16, "samples": 24, "lanczos_steps": 20, "batch": 4, "channels": 4, "pre": 1,
        "coarse": 1, "post": 1, "dtype": "float64", "minutes": 60.0}  # fmt: skip
PROLONGATION = {"samples": 32, "test_samples": 4, "test_n": 16, "batch": 16, "width": 4,
                "blocks": 1, "curriculum": (16, 16), "coarse_fraction": 0.5}  # fmt: skip
UNET = {"n": 16, "count": 8, "batch": 4, "features": 2, "depth": 1, "epochs": 3,
        "dtype": "float64"}  # fmt: skip


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
    (base / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    ctx.close()


if __name__ == "__main__":
    main()
