"""Devices: a clear error for ``device="cuda"`` without CUDA in every solver and trainer, models
that load on the device a checkpoint is mapped to, and trainers whose bookkeeping lives on the
model's device.

Without a GPU two stand-ins show what a GPU run would do: ``torch.set_default_device("meta")``
makes every tensor created without a device land elsewhere than the model (as a CPU tensor does
next to a CUDA model), so mixing fails; and a checkpoint whose storages are tagged ``cuda:0`` is
what ``torch.save`` writes on a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.nn.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _cuda_error(fn) -> str:
    with pytest.raises(ValueError, match="CUDA") as info:
        fn()
    return str(info.value)


def test_cuda_without_cuda_is_a_clear_error_in_multigrid_and_the_trainers(no_cuda, tmp_path):
    from pdesolve.nn.classifier import FeatureClassifier
    from pdesolve.train.dcdm_training import train as train_dcdm
    from pdesolve.train.imbalance import TrainConfig, train_classifier

    for make in (
        lambda: pdesolve.get_solver("multigrid", prolongation="learned", device="cuda"),
        lambda: pdesolve.get_solver("multigrid", krylov="cg", device="cuda"),
        lambda: pdesolve.get_preconditioner("multigrid", prolongation="learned", device="cuda"),
        lambda: pdesolve.get_solver("dcdm", device="cuda", vectors="device"),
        lambda: pdesolve.get_solver("hybrid", pc={"name": "pinn_correction", "device": "cuda"},
                                    vectors="device"),
    ):  # fmt: skip
        assert "device='cuda'" in _cuda_error(make)
    _cuda_error(lambda: train_dcdm(tmp_path / "dcdm", device="cuda", epochs=1))
    x, y = np.random.default_rng(0).random((8, 4)), np.arange(8) % 2
    net = FeatureClassifier(4, 2, width=4)
    _cuda_error(lambda: train_classifier(net, x, y, TrainConfig(epochs=1), device="cuda",
                                         out=tmp_path / "imb", progress=False))  # fmt: skip
    assert not any(tmp_path.iterdir())  # the error comes before any work or file


@pytest.mark.parametrize("strategy,mix_alpha", [("procrustean", 2.0), ("mixup", 1.0)])
def test_imbalance_trainer_keeps_everything_on_the_models_device(strategy, mix_alpha):
    """With the default device elsewhere ("meta"), a tensor the trainer made without naming the
    model's device would not mix with the model's: training works only if none is."""
    from pdesolve.nn.classifier import FeatureClassifier
    from pdesolve.train.imbalance import TrainConfig, train_classifier

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 16)).astype(np.float32), np.repeat([0, 1, 2], [24, 12, 4])
    cfg = TrainConfig(strategy, epochs=2, batch_size=8, mix_alpha=mix_alpha, mixing=True)
    results = []
    for default in ("meta", None):
        torch.manual_seed(0)
        net = FeatureClassifier(16, 3, width=8)
        torch.set_default_device(default)
        try:
            results.append(train_classifier(net, x, y, cfg, x_val=x[:6], y_val=y[:6],
                                            progress=False, device="cpu"))  # fmt: skip
        finally:
            torch.set_default_device(None)
    meta, plain = results
    assert next(meta.model.parameters()).device.type == "cpu"
    assert repr(meta.history) == repr(plain.history)  # the same run (NaN: classes not in val)
    assert np.isfinite(meta.history[-1]["loss"]) and meta.history[-1]["mixed_fraction"] > 0


def test_a_checkpoint_saved_on_a_gpu_loads_on_the_cpu(tmp_path, monkeypatch):
    from pdesolve.nn.dcdm_cnn import DCDMNet, load_dcdm_model, save_dcdm_model

    torch.manual_seed(0)
    model = DCDMNet(2, levels=2)
    # what torch.save writes for a model on cuda:0: its storages are tagged with that device
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    save_dcdm_model(tmp_path / "gpu.pt", model)
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="CUDA"):  # torch's own load needs a map_location
        torch.load(tmp_path / "gpu.pt", weights_only=False)
    loaded = load_dcdm_model(tmp_path / "gpu.pt")  # map_location="cpu" by default
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert load_checkpoint(tmp_path / "gpu.pt")["step"] == 0


def test_models_load_onto_the_device_they_are_mapped_to(tmp_path):
    """A CPU checkpoint mapped to another device ("meta" standing in for "cuda") gives a model
    whose parameters live there: ``load_state_dict`` would otherwise copy them back into a
    model built on the CPU."""
    from pdesolve.nn.classifier import FeatureClassifier
    from pdesolve.nn.dcdm_cnn import DCDMNet, load_dcdm_model, save_dcdm_model
    from pdesolve.nn.prolongation import load_prolongation_net
    from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT
    from pdesolve.train.imbalance import load_classifier

    save_dcdm_model(tmp_path / "dcdm.pt", DCDMNet(2, levels=2))
    net = FeatureClassifier(4, 2, width=4)
    save_checkpoint(tmp_path / "clf.pt", step=1, config={"model": net.config}, model=net)
    for load in (lambda where: load_dcdm_model(tmp_path / "dcdm.pt", map_location=where),
                 lambda where: load_prolongation_net(str(DEFAULT_CHECKPOINT), map_location=where),
                 lambda where: load_classifier(tmp_path / "clf.pt", map_location=where)):
        assert {p.device.type for p in load("meta").parameters()} == {"meta"}
        assert {p.device.type for p in load("cpu").parameters()} == {"cpu"}
        assert {p.device.type for p in load(lambda s, loc: s).parameters()} == {"cpu"}
