"""The default experiment (`make run`): every linear solver in pdesolve against PETSc CG on
2D Poisson, same system, same true-residual rule, one run. Prints a table and writes
results/comparison.{csv,md,json}.

    python experiments/poisson2d_comparison/run.py [--n 256] [--rtol 1e-8]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import pdesolve
from pdesolve.io import markdown_table, write_json, write_table

RESULTS = Path(__file__).with_name("results")

# solver -> the option sets to compare (registered linear solvers not listed run with defaults);
# "maxiter" bounds the slow learned solvers so the default experiment stays short
VARIANTS: dict[str, list[dict]] = {
    "petsc_cg": [{"pc": pc} for pc in ("none", "jacobi", "icc", "gamg")],
    "scipy_cg": [{"pc": "none"}, {"pc": "jacobi"}],
    "fcg": [{"pc": "jacobi", "memory": 2}],
    "deflated_cg": [{"deflation": 16}],
    "multigrid": [
        {"prolongation": "bilinear"},
        {"prolongation": "blackbox"},
        {"prolongation": "blackbox", "krylov": "cg"},
    ],
    "hybrid": [{"pc": "coarse_grid"}, {"pc": "pinn_correction", "nu": 4, "maxiter": 400}],
    "dcdm": [{"memory": None, "maxiter": 400}],  # shipped 2D model (trained on 64² pressure)
}
BASELINE = ("petsc_cg", "pc=none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=255, help="interior nodes per dimension (2^k - 1)")
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--solution", default="polynomial")
    args = parser.parse_args()

    problem = pdesolve.get_problem("poisson", dim=2, n=args.n, solution=args.solution)
    t0 = time.perf_counter()
    system = problem.discretize()
    print(
        f"2D Poisson, {args.n}x{args.n} = {system.size} unknowns, solution '{args.solution}', "
        f"assembled in {time.perf_counter() - t0:.2f} s; rtol {args.rtol:g} on ||b - Ax||\n"
    )
    rows = []
    for name in pdesolve.list_solvers():  # linear solvers only (PINNs are pdesolve.fit methods)
        for options in VARIANTS.get(name, [{}]):
            result = pdesolve.solve(system, method=name, rtol=args.rtol, **options)
            label = ", ".join(f"{k}={v}" for k, v in options.items() if k != "maxiter")
            rows.append({
                "solver": name,
                "options": label or "-",
                "converged": result.reason.name,
                "iterations": result.iterations,
                "setup_s": float(result.info.get("setup_time", 0.0)),
                "solve_s": float(result.info.get("solve_time", result.wall_time)),
                "rel_residual": result.final_residual / system.b_norm,
                "max_error": result.info["error"]["max"],
            })  # fmt: skip
    base = next(r for r in rows if (r["solver"], r["options"]) == BASELINE)
    base_total = base["setup_s"] + base["solve_s"]
    for r in rows:
        r["time_vs_petsc_cg"] = (r["setup_s"] + r["solve_s"]) / base_total
    print(markdown_table(rows))
    RESULTS.mkdir(exist_ok=True)
    write_table(RESULTS / "comparison", rows)
    write_json(RESULTS / "comparison.json",
               {"n": args.n, "rtol": args.rtol, "solution": args.solution,
                "machine": platform.platform(), "rows": rows}, overwrite=True)  # fmt: skip
    print(f"results written to {RESULTS}/comparison.{{csv,md,json}}")


if __name__ == "__main__":
    main()
