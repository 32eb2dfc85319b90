"""Success rate of a learned prolongation against black-box on fresh seed sets.

For each seed: a Dirichlet log-normal problem at ``n``, V(1,1) asymptotic factor (40 cycles, b = 0,
seeded N(0,1) error) with the learned and the black-box prolongation. Reports the share of
problems where learned < black-box, overall and per consecutive set of ``--set-size`` seeds::

    python experiments/learned_multigrid/fresh_seeds.py --first 3000 --count 100 \
        [--checkpoint pdesolve/data/learned_multigrid/prolongation.pt] [--n 63] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.solvers.multigrid import MultigridHierarchy, load_network


def factors(net, n: int, seeds: range, cycle: str = "V") -> np.ndarray:
    """``(len(seeds), 2)`` asymptotic factors: learned, black-box."""
    out = []
    for seed in seeds:
        system = pdesolve.get_problem("diffusion", dim=2, n=n, coefficient="lognormal",
                                      scheme="fe9", seed=seed).discretize()
        row = []
        for rule in ("learned", "blackbox"):
            mg = MultigridHierarchy(system.A, system.stencil, prolongation=rule, cycle=cycle,
                                    net=net)
            row.append(mg.convergence_factor(cycles=40, seed=seed))
        out.append(row)
    return np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--first", type=int, default=3000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--set-size", type=int, default=20)
    parser.add_argument("--n", type=int, default=63)
    parser.add_argument("--cycle", default="V")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = load_network(args.checkpoint)
    t0 = time.perf_counter()
    f = factors(net, args.n, range(args.first, args.first + args.count), args.cycle)
    wins = f[:, 0] < f[:, 1]
    ratio = f[:, 0] / f[:, 1]
    sets = [int(wins[i : i + args.set_size].sum()) for i in range(0, len(wins), args.set_size)]
    lines = [
        f"checkpoint: {args.checkpoint or 'shipped'}; n = {args.n}; {args.cycle}(1,1); seeds "
        f"{args.first}-{args.first + args.count - 1}",
        f"learned < black-box on {int(wins.sum())}/{len(wins)} problems; per set of "
        f"{args.set_size}: {sets}",
        f"factor learned {f[:, 0].mean():.4f} ± {f[:, 0].std():.4f}, black-box "
        f"{f[:, 1].mean():.4f} ± {f[:, 1].std():.4f}; ratio mean {ratio.mean():.3f}, "
        f"max {ratio.max():.3f} ({time.perf_counter() - t0:.0f} s)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
