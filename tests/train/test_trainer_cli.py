"""The training entry points (DCDM, prolongation, U-Net): documented options, output folders
that are resumed explicitly or refused, resumes that refuse changed options, one-line errors."""

import argparse
import json

import numpy as np
import pytest

from pdesolve.train import (
    dcdm_training,
    prolongation_training,
    prolongation_training3d,
    unet_training,
)
from pdesolve.train.distributed import DistributedContext, RankFailure
from pdesolve.train.runs import add_options

DCDM = ["--n", "12", "--samples", "20", "--lanczos-steps", "12", "--batch", "4", "--channels",
        "2", "--pre", "0", "--coarse", "0", "--post", "0", "--epochs", "1"]  # fmt: skip
PROL = ["--samples", "16", "--test-samples", "2", "--test-n", "16", "--batch", "16", "--width",
        "2", "--blocks", "1", "--curriculum", "16"]  # fmt: skip
PROL3 = ["--samples", "8", "--test-samples", "2", "--test-n", "8", "--batch", "8", "--width", "2",
         "--blocks", "1", "--curriculum", "8"]  # fmt: skip
UNET = ["--n", "16", "--count", "4", "--batch", "4", "--features", "2", "--depth", "1",
        "--epochs", "1"]  # fmt: skip


def _help_actions(main, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("module", "options"), [
    (dcdm_training, list(dcdm_training.DEFAULTS)),
    (prolongation_training, list(prolongation_training.HELP)),
    (prolongation_training3d, list(prolongation_training3d.HELP3D)),
    (unet_training, list(unet_training.HELP)),
])  # fmt: skip
def test_help_documents_every_option(module, options, capsys):
    text = _help_actions(module.main, capsys)
    for key in [*options, "out", "resume"]:
        assert f"--{key.replace('_', '-')}" in text
    # every option has a help text (add_options refuses an option without one)
    assert all(a.help for a in dcdm_training.build_parser()._actions)
    with pytest.raises(KeyError, match="no help text"):
        add_options(argparse.ArgumentParser(), {"width": 1}, {})


def _run(main, argv, capsys):
    """Run a CLI; returns (exit code, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("module", "argv", "change"), [
    (dcdm_training, DCDM, ["--lr", "0.5", "--n", "16"]),
    (prolongation_training, PROL, ["--lr", "0.5", "--width", "4"]),
    (prolongation_training3d, PROL3, ["--sigma", "2.0", "--learn-faces", "0"]),
    (unet_training, UNET, ["--lr", "0.5", "--n", "32"]),
])  # fmt: skip
def test_folder_refused_or_resumed(module, argv, change, tmp_path, capsys, one_thread):
    out = str(tmp_path / "run")
    assert _run(module.main, [*argv, "--out", out], capsys)[0] == 0
    # an existing run: refused with one line, nothing touched
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    code, err = _run(module.main, [*argv, "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1 and "already holds a run" in err
    assert "pass --resume" in err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before
    # a resume that changes options is refused, naming each of them
    code, err = _run(module.main, ["--resume", *change, "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1 and "--resume cannot change" in err
    for flag in change[::2]:
        assert flag.lstrip("-").replace("-", "_") in err
    # resume without a checkpoint
    code, err = _run(module.main, ["--resume", "--out", str(tmp_path / "none")], capsys)
    assert code == 2 and "nothing to resume" in err


def test_dcdm_resume_extends_and_rewrites_the_log(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert _run(dcdm_training.main, [*DCDM, "--out", str(out)], capsys)[0] == 0
    code, _ = _run(dcdm_training.main, ["--resume", "--epochs", "3", "--n", "12", "--out",
                                        str(out)], capsys)  # fmt: skip
    assert code == 0
    rows = (out / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2", "3"]
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 3 and result["world_size"] == 1 and result["config"]["epochs"] == 3


@pytest.mark.slow
def test_prolongation3d_resume_continues_the_run_exactly(tmp_path, capsys, one_thread):
    argv = [*PROL3[:-1], "8,8"]
    assert _run(prolongation_training3d.main, [*argv, "--out", str(tmp_path / "whole")],
                capsys)[0] == 0  # fmt: skip
    part = str(tmp_path / "part")
    assert _run(prolongation_training3d.main, [*argv, "--stop-after", "1", "--out", part],
                capsys)[0] == 0  # fmt: skip
    assert not (tmp_path / "part" / "prolongation3d.pt").exists()
    assert _run(prolongation_training3d.main, ["--resume", "--threads", "1", "--out", part],
                capsys)[0] == 0  # fmt: skip
    logs = [json.loads((tmp_path / d / "training_log3d.json").read_text()) for d in
            ("whole", "part")]
    keys = ("epoch", "stage", "problems", "train_loss", "test_loss", "blackbox_test_loss")
    assert [[r[k] for k in keys] for r in logs[0]] == [[r[k] for k in keys] for r in logs[1]]
    assert len(logs[0]) == 2
    result = json.loads((tmp_path / "part" / "result.json").read_text())
    assert result["trainer"] == "prolongation3d" and result["epochs"] == 2


def test_dcdm_refuses_a_dataset_made_with_other_settings(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert _run(dcdm_training.main, [*DCDM, "--out", str(out)], capsys)[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    (out / "data").rename(other / "data")  # a folder holding only a dataset is trained on ...
    code, err = _run(dcdm_training.main, [*DCDM, "--samples", "30", "--out", str(other)], capsys)
    assert code == 2 and "made with other settings: samples 20 (asked 30)" in err  # ... if it fits
    code, err = _run(dcdm_training.main, [*DCDM[2:], "--n", "16", "--out", str(other)], capsys)
    assert code == 2 and "unknowns 144 (asked 256)" in err and "n 12 (asked 16)" in err
    assert _run(dcdm_training.main, [*DCDM, "--out", str(other)], capsys)[0] == 0


def test_dcdm_batches_must_divide_among_processes(tmp_path):
    fake = DistributedContext(rank=0, world_size=2)  # checked before any collective
    with pytest.raises(ValueError, match="batch has 3 samples, which does not divide among 2"):
        dcdm_training.train(tmp_path / "a", ctx=fake, n=12, samples=20, batch=3)
    with pytest.raises(ValueError, match="last batch of each epoch has 2 samples"):
        dcdm_training.train(tmp_path / "b", ctx=DistributedContext(rank=0, world_size=4), n=12,
                            samples=20, batch=4)  # 18 training samples: batches 4,4,4,4,2
    with pytest.raises(ValueError, match="does not divide among 2"):
        unet_training.train_unet(unet_training.UNetTrainConfig(count=5, batch=4), ctx=fake)
    with pytest.raises(ValueError, match="does not divide among 2"):
        prolongation_training.train(prolongation_training.TrainConfig(batch=33), ctx=fake)


def test_dcdm_nan_in_the_data_is_named(tmp_path, one_thread):
    out = tmp_path / "run"
    opts = {"n": 12, "samples": 20, "lanczos_steps": 12, "batch": 4, "channels": 2, "pre": 0,
            "coarse": 0, "post": 0, "epochs": 0}  # fmt: skip
    dcdm_training.train(out, **opts)
    x = np.load(out / "data" / "val_00000.npy")
    x[1, 0] = np.inf
    np.save(out / "data" / "val_00000.npy", x)
    with pytest.raises(RankFailure, match=r"NaN/Inf in validation sample\(s\) \[1\]"):
        dcdm_training.train(out, resume=True, **opts)
