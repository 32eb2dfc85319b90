"""The shipped data: every trained model stored once, with its run's config and log beside it, and
no optimizer state in the package (nothing shipped is resumed)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from pdesolve.nn.dcdm_cnn import load_dcdm_model
from pdesolve.nn.prolongation import load_prolongation_net
from pdesolve.resources import data_dir
from pdesolve.solvers.dcdm_network import DEFAULT_MODELS
from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
#: every weights file kept in the repository: the package data and the studies' training runs
WEIGHTS = sorted([*data_dir().rglob("*.pt"), *(ROOT / "experiments").rglob("*.pt")])
#: the one optimizer-state checkpoint kept: experiments/dcdm/onpolicy.py resumes from it
RESUMED = {ROOT / "experiments" / "dcdm" / "runs" / "run2d128" / "checkpoint.pt"}


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_every_model_is_stored_once():
    states = {p: _load(p)["model"] for p in WEIGHTS}
    assert len(states) >= 6
    copies = [
        (a.relative_to(ROOT), b.relative_to(ROOT))
        for a, b in itertools.combinations(states, 2)
        if states[a].keys() == states[b].keys()
        and all(torch.equal(states[a][k], states[b][k]) for k in states[a])
    ]
    assert not copies, f"the same weights stored twice: {copies}"


def test_optimizer_state_only_where_a_documented_resume_needs_it():
    with_state = {p for p in WEIGHTS if _load(p).get("optimizer") is not None}
    assert with_state == RESUMED
    assert "run2d128" in (ROOT / "experiments" / "dcdm" / "onpolicy.py").read_text()


@pytest.mark.parametrize("dim", [2, 3])
def test_shipped_dcdm_models_load_with_their_config_and_log(dim):
    path = DEFAULT_MODELS[dim]
    assert path.is_relative_to(data_dir())
    for name in ("config.json", "log.csv"):
        assert (path.parent / name).is_file(), f"{name} missing beside {path}"
    net = load_dcdm_model(path)
    assert net.dim == dim
    state = _load(path)["model"]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_shipped_prolongation_loads_with_its_config_and_log():
    assert DEFAULT_CHECKPOINT.is_relative_to(data_dir())
    for name in ("config.json", "training_log.json", "README.md"):
        assert (DEFAULT_CHECKPOINT.parent / name).is_file(), name
    net = load_prolongation_net(str(DEFAULT_CHECKPOINT))
    state = _load(DEFAULT_CHECKPOINT)["model"]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
