"""The DCDM, prolongation, U-Net and PINN trainers under torchrun (2 processes, gloo, float64)
against one process: the same loss curves, resumes across world sizes, a NaN on one rank ends
both, an uneven global batch refused.

One torchrun launch (``_ddp_trainers_worker.py``) runs every two-process scenario; the
one-process counterparts run here.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from _support import torchrun

from pdesolve.train import dcdm_training, prolongation_training, unet_training

WORKER = Path(__file__).with_name("_ddp_trainers_worker.py")
REL = 1e-6  # what the design asks of the loss curves; we see ~1e-15 here


def _load_worker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ddp_trainers_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    proc = torchrun([str(WORKER), str(base)])
    errors = [line for line in proc.stderr.splitlines() if "Error" in line or "error" in line]
    assert proc.returncode == 0, "\n".join(errors[:20])
    reports = [json.loads((base / f"rank{r}.json").read_text()) for r in (0, 1)]
    return base, reports, _load_worker()


def _curve(history, keys):
    return [[row[k] for k in keys] for row in history]


def _same(a, b, rel=REL):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=rel)


DCDM_KEYS = ("train_loss", "val_loss", "val_residual_loss")
PROL_KEYS = ("train_loss", "test_loss")
UNET_KEYS = ("train_mse",)


@pytest.mark.slow
def test_dcdm_two_processes_equal_one(ddp, tmp_path, one_thread):
    base, (r0, _), worker = ddp
    assert r0["world_size"] == 2
    (tmp_path / "one").mkdir()  # the same Ritz dataset (the folder may hold only data/)
    shutil.copytree(base / "dcdm_full" / "data", tmp_path / "one" / "data")
    one = dcdm_training.train(tmp_path / "one", epochs=3, **worker.DCDM)
    _same(_curve(r0["dcdm_full"], DCDM_KEYS), _curve(one["history"], DCDM_KEYS))
    assert [h["world_size"] for h in r0["dcdm_full"]] == [2, 2, 2]
    # resumed two-process run = uninterrupted one (bit for bit: same ranks, same order)
    assert _curve(r0["dcdm_resumed"], DCDM_KEYS) == _curve(r0["dcdm_full"], DCDM_KEYS)
    # one process resumes the two-process checkpoint taken after epoch 1
    resumed = dcdm_training.train(base / "dcdm_part1", resume=True, epochs=3, **worker.DCDM)
    _same(_curve(resumed["history"], DCDM_KEYS), _curve(one["history"], DCDM_KEYS))
    assert [h["world_size"] for h in resumed["history"]] == [2, 1, 1]
    result = json.loads((base / "dcdm_full" / "result.json").read_text())
    assert result["world_size"] == 2 and result["epochs"] == 3
    log = (base / "dcdm_part" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch", "1", "2", "3"]  # no duplicates


@pytest.mark.slow
def test_nan_on_one_rank_ends_both(ddp):
    _, (r0, r1), _ = ddp
    expect = "1 of 2 processes failed; rank 1: NaN/Inf in training sample(s) [15]"
    assert r0["dcdm_nan"].startswith(expect) and r1["dcdm_nan"] == r0["dcdm_nan"]


@pytest.mark.slow
def test_prolongation_two_processes_equal_one(ddp, one_thread):
    base, (r0, _), worker = ddp
    cfg = prolongation_training.TrainConfig(**worker.PROLONGATION)
    _, one = prolongation_training.train(cfg)
    _same(_curve(r0["prolongation_full"], PROL_KEYS), _curve(one, PROL_KEYS))
    assert _curve(r0["prolongation_resumed"], PROL_KEYS) == _curve(r0["prolongation_full"],
                                                                   PROL_KEYS)  # fmt: skip
    _, resumed = prolongation_training.train(cfg, out=base / "prol_part1", resume=True)
    _same(_curve(resumed, PROL_KEYS), _curve(one, PROL_KEYS))
    assert json.loads((base / "prol_full" / "result.json").read_text())["world_size"] == 2
    torch.set_num_threads(1)  # train() sets cfg.threads; the fixture restores the suite's


@pytest.mark.slow
def test_unet_two_processes_equal_one(ddp, one_thread):
    base, (r0, _), worker = ddp
    cfg = unet_training.UNetTrainConfig(**worker.UNET)
    _, one = unet_training.train_unet(cfg, log=None)
    # BatchNorm statistics over the global batch: the same curve as one process
    _same(_curve(r0["unet_full"], UNET_KEYS), _curve(one, UNET_KEYS))
    assert _curve(r0["unet_resumed"], UNET_KEYS) == _curve(r0["unet_full"], UNET_KEYS)
    _, resumed = unet_training.train_unet(cfg, out=base / "unet_part1", resume=True, log=None)
    _same(_curve(resumed, UNET_KEYS), _curve(one, UNET_KEYS))
    assert json.loads((base / "unet_full" / "result.json").read_text())["world_size"] == 2


PINN_KEYS = ("train_loss", "relative_l2", "residual_rms")


def _pinn_curve(history):
    """The logged values after step 0 (whose training loss is NaN: no step was taken yet)."""
    return [[history[k][i] for k in PINN_KEYS] for i in range(1, len(history["step"]))]


@pytest.mark.slow
def test_pinn_causal_weights_two_processes_equal_one(ddp, one_thread):
    """Causal weights from the whole batch's time slabs: the 2-process loss curve and smallest
    weight equal one process's (Adam and L-BFGS phases)."""
    from pdesolve.train.pinn import PINNTrainer

    _, (r0, r1), worker = ddp
    one = PINNTrainer(worker.causal_problem(), **worker.CAUSAL)
    one.fit()
    two = r0["pinn"]["causal"]
    assert two["phase"] == one.history["phase"] and two["world_size"][-1] == 2
    _same(_pinn_curve(two), _pinn_curve(one.history))
    weights = one.history["causal_min_weight"][1:]
    assert min(weights) < 0.999  # the weights do act (the later slabs are down-weighted)
    _same([[w] for w in two["causal_min_weight"][1:]], [[w] for w in weights])
    assert r1["pinn"]["causal"]["train_loss"] == two["train_loss"]


@pytest.mark.slow
def test_pinn_two_processes_equal_one(ddp, tmp_path, one_thread):
    from pdesolve.train.pinn import PINNTrainer

    base, (r0, r1), worker = ddp
    p0, p1 = r0["pinn"], r1["pinn"]
    assert p0["per_rank_batch"] == [8, 4, 0]  # half of the interior and boundary batches
    assert p0["parameters"] == p1["parameters"]  # every rank holds the same network
    one = PINNTrainer(worker.pinn_problem(), **worker.PINN, **worker.PINN_FULL,
                      output_dir=tmp_path / "one")  # fmt: skip
    one.fit()
    assert p0["full"]["phase"] == one.history["phase"]  # adam, lbfgs and bfgs phases
    assert p0["full"]["points"] == one.history["points"] == [16] * 4 + [18] * 7  # refinement
    _same(_pinn_curve(p0["full"]), _pinn_curve(one.history))
    assert p0["weights"]["boundary"] == pytest.approx(one.weights["boundary"], rel=REL)
    assert p0["full"]["world_size"] == [2] * 11 and one.history["world_size"] == [1] * 11
    # resumed two-process run = uninterrupted one (bit for bit: same ranks, same order)
    assert _pinn_curve(p0["resumed"]) == _pinn_curve(p0["full"])
    # one process resumes the two-process checkpoint taken after 4 Adam steps
    resumed = PINNTrainer(worker.pinn_problem(), **worker.PINN, **worker.PINN_FULL,
                          output_dir=base / "pinn" / "part1", resume=True)  # fmt: skip
    resumed.fit()
    _same(_pinn_curve(resumed.history), _pinn_curve(one.history))
    assert resumed.history["world_size"] == [2] * 5 + [1] * 6
    summary = json.loads((base / "pinn" / "full" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 10


@pytest.mark.slow
def test_pinn_uneven_batch_and_cli_under_torchrun(ddp):
    base, (r0, r1), _ = ddp
    expect = "boundary_batch=9 not a multiple of 2"
    assert expect in r0["pinn"]["odd_batch"] and r1["pinn"]["odd_batch"] == r0["pinn"]["odd_batch"]
    assert r0["pinn"]["cli"]["world_size"] == 2
    result = json.loads((base / "pinn" / "cli" / "result.json").read_text())
    assert result["sizes"]["world_size"] == 2 and result["steps"] == 4
    # rank 0 alone wrote the run folder (no second result, no scratch files)
    assert sorted(p.name for p in (base / "pinn" / "cli").iterdir()) == [
        "checkpoint.pt", "config.yaml", "metrics.csv", "result.json", "solution.vtu",
        "summary.json", "training.png"]  # fmt: skip
