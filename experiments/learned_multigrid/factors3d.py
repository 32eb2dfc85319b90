"""Learned vs black-box 3-D prolongation: asymptotic V(1,1) factors on seeded Dirichlet problems.

Log-normal diffusion (σ = 1) on ``n³`` grids, both schemes (7-point FD, 27-point trilinear FE),
seeds ``--first`` .. ``--first + --count - 1`` (the training data are periodic blocks from
another generator, so every seed here is unseen). Symmetric V(1,1) cycles (forward GS down,
backward up, the CG preconditioner's cycle), factor at the last of ``--cycles`` cycles on
``A e = 0`` from a seeded random guess. Writes ``factors3d.md`` into ``--out``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/factors3d.py --sizes 15,31 --count 10
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table
from pdesolve.solvers.multigrid3d import MultigridHierarchy3D

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="15,31")
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=25)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = MultigridHierarchy3D.load_network(args.checkpoint)
    start = time.perf_counter()
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        for scheme in ("fd", "fe27"):
            f = {"blackbox": [], "learned": [], "trilinear": []}
            for seed in range(args.first, args.first + args.count):
                system = pdesolve.get_problem("diffusion", dim=3, n=n, coefficient="lognormal",
                                              scheme=scheme, seed=seed).discretize()
                for rule in f:
                    mg = MultigridHierarchy3D(system.A, system.stencil, prolongation=rule,
                                              net=net, symmetric=True)
                    f[rule].append(mg.convergence_factor(cycles=args.cycles))
            learned, bb = np.array(f["learned"]), np.array(f["blackbox"])
            ratio = learned / bb
            rows.append({"grid": f"{n}³", "scheme": scheme, "problems": args.count,
                         "trilinear mean": float(np.mean(f["trilinear"])),
                         "black-box mean": float(bb.mean()), "learned mean": float(learned.mean()),
                         "learned wins": f"{int((ratio < 1).sum())}/{args.count}",
                         "mean ratio": float(ratio.mean()), "worst ratio": float(ratio.max())})
            print(rows[-1], flush=True)
    lines = ["# Learned vs black-box 3-D prolongation: V(1,1) factors", "",
             f"Dirichlet log-normal diffusion (σ = 1), seeds {args.first}–"
             f"{args.first + args.count - 1}, symmetric GS(1,1) V-cycles, factor at cycle "
             f"{args.cycles}; ratio = learned / black-box per problem. OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS', 'unset')}. {args.note}", "",
             markdown_table(rows, floatfmt=".3f"),
             f"(total {time.perf_counter() - start:.0f} s)"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "factors3d.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
