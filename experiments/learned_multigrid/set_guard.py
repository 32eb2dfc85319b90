"""Set the guard of a learned-prolongation checkpoint from its training family.

The guard (``pdesolve.nn.prolongation``) is ``margin`` × the largest network correction ``|z|``
over training-family stencils: ``--samples`` fresh periodic 8×8 log-normal blocks and half as
many Galerkin-coarsened 16×16 problems (as in ``pdesolve.train.prolongation_training``, seeded).
New training runs set it themselves (``--guard-margin``); this script sets it on a checkpoint
trained before, rewriting only its ``config``::

    python experiments/learned_multigrid/set_guard.py \
        --checkpoint pdesolve/data/learned_multigrid/prolongation.pt
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pdesolve.nn.prolongation import load_prolongation_net
from pdesolve.train.prolongation_training import coarse_blocks, guard_for, lognormal_blocks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--margin", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = load_prolongation_net(args.checkpoint)
    net.set_guard(None)
    rng = np.random.default_rng(args.seed)
    data = torch.cat([lognormal_blocks(args.samples, 8, rng),
                      coarse_blocks(net, args.samples // 2, rng)])
    guard = guard_for(net, data, args.margin)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    ckpt["config"] = {**ckpt["config"], "guard": guard}
    ckpt["guard_from"] = {"samples": args.samples, "coarse": args.samples // 2,
                          "margin": args.margin, "seed": args.seed,
                          "largest_correction": guard_for(net, data, 1.0)}
    torch.save(ckpt, args.checkpoint)
    print(f"guard {guard} written to {args.checkpoint} ({ckpt['guard_from']})")


if __name__ == "__main__":
    main()
