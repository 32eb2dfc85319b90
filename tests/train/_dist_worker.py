"""Run under ``torchrun --nproc_per_node=2`` by test_distributed.py: writes one JSON per rank."""

import json
import sys
from pathlib import Path

import torch

from pdesolve.train.distributed import DistributedContext, RankFailure


def main() -> None:
    out = Path(sys.argv[1])
    ctx = DistributedContext.from_environment()
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1).double()
    x = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    net(x[ctx.shard(4)]).pow(2).mean().backward()
    ctx.average_gradients(net.parameters())
    report = {
        "rank": ctx.rank, "world_size": ctx.world_size, "backend": ctx.backend,
        "shard": [ctx.shard(4).start, ctx.shard(4).stop],
        "grad": net.weight.grad.flatten().tolist() + net.bias.grad.tolist(),
        "mean": ctx.all_reduce_mean(torch.tensor([float(ctx.rank)], dtype=torch.float64)).item(),
        "broadcast": ctx.broadcast_object({"from": ctx.rank}),
    }  # fmt: skip
    try:
        ctx.check(ctx.rank != 1, "bad data in shard 1")
    except RankFailure as exc:
        report["check"] = str(exc)
    net.zero_grad()
    y = x[ctx.shard(4)].clone()
    if ctx.rank == 1:
        y[0, 0] = float("nan")
    net(y).sum().backward()
    try:
        ctx.average_gradients(net.parameters(), "at step 7")
    except RankFailure as exc:
        report["nan"] = str(exc)
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    ctx.barrier()
    if ctx.rank == 1:  # an uncaught error on one rank while the other waits in a collective
        raise FileNotFoundError("mesh file missing on rank 1")
    ctx.barrier()


if __name__ == "__main__":
    main()
