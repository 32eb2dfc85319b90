"""Refinement studies of the classical references of the time-dependent and shape-domain
problems: error (against the exact solution, or against a much finer run) and observed order
per refinement. Writes results/refinement.md and results/refinement.json.

    OMP_NUM_THREADS=1 python experiments/references/run.py
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import numpy as np

import pdesolve
from pdesolve.io import markdown_table
from pdesolve.problems.burgers import BASDEVANT_MAX_SLOPE

RESULTS = Path(__file__).resolve().parent / "results"


def _study(label, runs):
    rows, previous = [], None
    for resolution, error in runs:
        order = math.log2(previous / error) if previous else float("nan")
        rows.append({"reference": label, "resolution": resolution, "max error": error,
                     "observed order": order})  # fmt: skip
        previous = error
    return rows


def main() -> None:
    rows, start = [], time.perf_counter()
    for dim in (1, 2):
        p = pdesolve.get_problem("heat", dim=dim)
        rows += _study(f"heat {dim}D, Crank–Nicolson (vs exact)", [
            (f"n={n}, nt={n + 1}", p.reference(n=n, nt=n + 1, estimate=False).info["max_error"])
            for n in (15, 31, 63)])  # fmt: skip
    p = pdesolve.get_problem("heat", dim=1)
    rows += _study("heat 1D, backward Euler, n=255 (vs exact)", [
        (f"nt={nt}", p.reference(n=255, nt=nt, scheme="backward_euler", estimate=False)
         .info["max_error"]) for nt in (8, 16, 32)])  # fmt: skip
    p = pdesolve.get_problem("wave")
    rows += _study("wave, leapfrog, Courant 0.5 (vs exact)", [
        (f"n={n}", p.reference(n=n, estimate=False).info["max_error"]) for n in (64, 128, 256)])

    def final(problem, n, dt):
        return problem.reference(n=n, dt=dt, n_save=1, estimate=False).values[:, -1]

    for name in ("burgers", "allen_cahn"):
        p = pdesolve.get_problem(name)
        fine = final(p, 2048, 2.5e-4)
        rows += _study(f"{name}, ETDRK4 in time, 2048 modes (vs dt=2.5e-4)", [
            (f"dt={dt}", float(np.abs(final(p, 2048, dt) - fine).max()))
            for dt in (2e-3, 1e-3, 5e-4)])  # fmt: skip
        rows += _study(f"{name}, Fourier in space, dt=2.5e-4 (vs 2048 modes)", [
            (f"modes={n}", float(np.abs(final(p, n, 2.5e-4) - fine[:: 2048 // n]).max()))
            for n in (256, 512, 1024)])  # fmt: skip
    rows += _study("poisson_holes, P1 FEM, L2 error (vs exact)", [
        (f"h={h}", pdesolve.get_problem("poisson_holes", case="manufactured", mesh_size=h)
         .reference().info["errors"]["l2"]) for h in (0.1, 0.05, 0.025, 0.0125)])  # fmt: skip
    burgers = pdesolve.get_problem("burgers").reference()
    slope = {"max_t abs(u_x(0,t)) (ours)": burgers.info["max_slope"],
             "at t (ours)": burgers.info["max_slope_time"],
             "Basdevant et al. 1986": BASDEVANT_MAX_SLOPE, "at t (theirs)": 1.6037 / math.pi,
             "reference error estimate": burgers.info["error_estimate"]}
    RESULTS.mkdir(exist_ok=True)
    text = ("# Refinement studies of the references\n\n"
            f"Machine: {platform.machine()}, {platform.python_version()}, shared and heavily "
            f"loaded (2 cores, several jobs); wall time {time.perf_counter() - start:.0f} s.\n\n"
            + markdown_table(rows, ".3g") + "\n## Burgers: steepest slope at x = 0\n\n"
            + markdown_table([slope], ".8g"))  # fmt: skip
    (RESULTS / "refinement.md").write_text(text)
    (RESULTS / "refinement.json").write_text(json.dumps({"rows": rows, "burgers_slope": slope},
                                                        indent=1))  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
