"""DistributedContext: one-process behaviour, and two processes under torchrun (gloo)."""

import json
from pathlib import Path

import pytest
import torch
from _support import torchrun

from pdesolve.train.distributed import DistributedContext, RankFailure

ROOT = Path(__file__).resolve().parents[2]


def test_one_process_context():
    ctx = DistributedContext.from_environment()
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_distributed) == (0, 1, None, False)
    assert ctx.shard(5) == slice(0, 5)
    with pytest.raises(RankFailure, match="bad shard"):
        ctx.check(False, "bad shard")
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.tensor([1.0, float("nan")])
    with pytest.raises(RankFailure, match="non-finite gradients at step 3"):
        ctx.average_gradients([p], "at step 3")


def test_shard_refuses_uneven_batch():
    ctx = DistributedContext(rank=0, world_size=2)
    assert ctx.shard(4) == slice(0, 2)
    with pytest.raises(ValueError, match="multiple of 2"):
        ctx.shard(5)


def test_environment_errors(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="do not describe"):
        DistributedContext.from_environment()
    with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
        DistributedContext.from_environment(device="meta")


@pytest.mark.slow
def test_two_processes(tmp_path):
    proc = torchrun([str(ROOT / "tests" / "train" / "_dist_worker.py"), str(tmp_path)])
    # rank 1 ends with an error while rank 0 waits: the whole run ends, with that error
    assert proc.returncode != 0
    assert "mesh file missing on rank 1" in proc.stderr
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["world_size"], r0["backend"]) == (2, "gloo")
    assert (r0["shard"], r1["shard"]) == ([0, 2], [2, 4])
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1).double()
    net(torch.arange(12, dtype=torch.float64).reshape(4, 3)).pow(2).mean().backward()
    full = net.weight.grad.flatten().tolist() + net.bias.grad.tolist()
    for r in (r0, r1):
        assert r["grad"] == pytest.approx(full, rel=1e-12)
        assert r["mean"] == 0.5 and r["broadcast"] == {"from": 0}
        assert r["check"] == "1 of 2 processes failed; rank 1: bad data in shard 1"
        assert r["nan"] == (
            "1 of 2 processes failed; rank 1: non-finite gradients at step 7 (check the data)"
        )
