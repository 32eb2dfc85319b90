"""Is the P1 FEM reference of the square minus disks fine enough to measure a 5e-3 PINN error?

Solves ``poisson_holes`` (Laplace case: u = 0 outside, 1 on the circles; and the manufactured
case, which has an exact solution) on gmsh meshes of size h = 0.04 … 0.005 and reports, on the
benchmark's 10 000 seeded test points, the relative L2 difference between successive meshes
(Laplace; P1 converges at order 2, so the finer mesh's own error is about a third of that
difference) and the error against the exact solution (manufactured). Writes
``results/fem_reference.md``. With ``--pinn FOLDER`` (a trained ``poisson_holes`` run) it also
measures that network against the Laplace reference of every mesh.

    cd experiments/pinn_benchmark
    OMP_NUM_THREADS=1 python fem_reference.py \
        --pinn results/runs_long_poisson_holes/poisson_holes_tanh_adam+ssbfgs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table

HERE = Path(__file__).resolve().parent
SIZES = (0.04, 0.02, 0.01, 0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pinn", help="folder of a trained poisson_holes PINN run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    network = None
    if args.pinn:
        from pdesolve.train.pinn import load_pinn

        network, trained_on = load_pinn(args.pinn)
        if trained_on.name != "poisson_holes" or trained_on.case != "laplace":
            raise SystemExit(f"{args.pinn}: not a poisson_holes (laplace) run")
    rows = []
    for case in ("laplace", "manufactured"):
        previous = None
        for h in SIZES:
            problem = pdesolve.get_problem("poisson_holes", case=case, mesh_size=h)
            x = problem.domain.sample_interior(10_000, torch.Generator().manual_seed(10_007))
            ref = problem.reference()
            values = ref.evaluate(x.numpy())
            row = {"case": case, "mesh_size": h, "nodes": len(ref.grid[0]),
                   "diff_to_previous_mesh": float("nan"), "error_vs_exact": float("nan"),
                   "pinn_vs_this_mesh": float("nan")}
            if network is not None and case == "laplace":
                u = network.predict(x.numpy())
                row["pinn_vs_this_mesh"] = float(np.linalg.norm(u - values)
                                                 / np.linalg.norm(values))  # fmt: skip
            if previous is not None:
                row["diff_to_previous_mesh"] = float(np.linalg.norm(values - previous)
                                                     / np.linalg.norm(values))  # fmt: skip
            if problem.has_exact_solution:
                exact = problem.exact_solution(x).numpy()
                row["error_vs_exact"] = float(np.linalg.norm(values - exact)
                                              / np.linalg.norm(exact))  # fmt: skip
            previous = values
            rows.append(row)
            print(row, flush=True)
    out = HERE / "results" / "fem_reference.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("Relative L2 on the benchmark's 10 000 test points (seed 10 007).\n\n"
                   + markdown_table(rows))  # fmt: skip


if __name__ == "__main__":
    main()
