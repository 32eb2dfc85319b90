"""Files the trainers write get the mode the umask gives a new file (not mkstemp's 0600)."""

import os
import stat

import pytest

from pdesolve.train.pinn.callbacks import plot_history, write_metrics
from pdesolve.train.runs import write_csv


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_training_outputs_follow_the_umask(tmp_path, umask_027):
    history = {"step": [0, 1], "train_loss": [1.0, 0.5]}
    write_metrics(history, ["step", "train_loss"], tmp_path / "metrics.csv")
    plot_history(history, tmp_path / "training.png")
    write_csv(tmp_path / "log.csv", [{"epoch": 0, "loss": 1.0}])
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"metrics.csv": 0o640, "training.png": 0o640, "log.csv": 0o640}
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["step,train_loss", "0,1.0",
                                                                   "1,0.5"]
