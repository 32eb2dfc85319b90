"""A saved PINN loads onto the device its checkpoint is mapped to."""

import pytest
import torch

import pdesolve
from pdesolve.train.pinn import PINNTrainer, load_pinn


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    problem = pdesolve.get_problem("poisson", dim=1, solution="exponential")
    trainer = PINNTrainer(problem, model={"name": "mlp", "width": 8, "depth": 1}, steps=2,
                          batch=16, log_every=1, seed=0, progress=False)
    trainer.fit()
    return trainer.save(tmp_path_factory.mktemp("pinn") / "checkpoint.pt"), trainer


def test_load_pinn_maps_the_model_to_the_requested_device(saved):
    path, trainer = saved
    model, _ = load_pinn(path, map_location="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    model, _ = load_pinn(path)
    x = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None]
    assert torch.allclose(model(x), trainer.model(x))


def test_load_pinn_without_cuda_names_the_device(saved, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="cuda"):
        load_pinn(saved[0], map_location="cuda")
