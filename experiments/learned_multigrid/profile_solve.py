"""Where CG + PETSc PCMG spends its time, and which cycle settings pay, for both prolongations.

1. PETSc's own event log (``PETSc.Log``, one stage per solver) of one set-up and one solve to
   rtol 1e-8 (true residual) of CG + PCMG(learned P), CG + PCMG(black-box P) and CG + GAMG:
   calls and seconds of the events a preconditioned CG iteration is made of, and the hierarchy
   (levels, non-zeros per level, operator complexity).
2. Cycle settings, the *same* for both prolongations: the default V(1,1) (forward SOR down,
   backward SOR up, ω = 1, i.e. Gauss–Seidel), symmetric SOR on both legs, Chebyshev(2) with
   Jacobi (PETSc's default level smoother), and the default cycle stopped at a 63² coarsest
   level (LU) instead of 3²: iterations, set-up CPU seconds and the best of ``--repeats``
   solves (CPU and wall seconds).
3. The set-up of the hierarchy itself: CPU seconds of ``MultigridHierarchy`` per rule, of which
   the P-stencil rule (the network for ``learned``), and the network's arithmetic.

Dirichlet log-normal diffusion (bilinear FE, seed 0), one process, one thread. Writes
``<out>/solve_profile.md``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/profile_solve.py [--n 1023]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import pdesolve
import pdesolve.solvers.multigrid as multigrid
from pdesolve.io import atomic_write, markdown_table
from pdesolve.linalg.petsc import ksp_with_options, petsc, remove_options
from pdesolve.nn.prolongation import ProlongationGuardWarning
from pdesolve.solvers.petsc_pcmg import aij_from_csr, pc_options

HERE = Path(__file__).resolve().parent
SOLVERS = [
    ("CG + PCMG(learned P)", {"pc": {"name": "multigrid", "prolongation": "learned"}}),
    ("CG + PCMG(black-box P)", {"pc": {"name": "multigrid", "prolongation": "blackbox"}}),
    ("CG + GAMG", {"pc": "gamg"}),
]
EVENTS = ["KSPSolve", "PCApply", "MatSOR", "MatResidual", "MatMult", "MatMultTranspose",
          "MatMultAdd", "MatSolve", "VecTDot", "VecNorm", "VecAXPY", "VecAYPX", "VecAXPBYCZ",
          "VecPointwiseMult"]


def event_log(system) -> tuple[list[dict], list[dict]]:
    """PETSc events of one set-up + solve per solver (a 63² warm-up solve first)."""
    PETSc = petsc()
    PETSc.Log.begin()
    small = pdesolve.get_problem("diffusion", dim=2, n=63, coefficient="lognormal",
                                 scheme="fe9", seed=0).discretize()
    rows, levels = [], []
    for label, opts in SOLVERS:
        pdesolve.get_solver("petsc_cg", rtol=1e-8, **opts).solve(small)
        solver = pdesolve.get_solver("petsc_cg", rtol=1e-8, **opts)
        setup = PETSc.Log.Stage(f"{label} set-up")
        setup.push()
        solver.setup(system)
        setup.pop()
        stage = PETSc.Log.Stage(f"{label} solve")
        stage.push()
        result = solver.solve(system.b)
        stage.pop()
        pc = solver._petsc["ksp"].getPC()
        if "PCMG" in label:
            nnz = [pc.getMGSmoother(k).getOperators()[0].getInfo()["nz_used"]
                   for k in range(pc.getMGLevels())][::-1]
            levels.append({"solver": label, "levels": len(nnz),
                           "non-zeros per level (finest first)":
                               ", ".join(f"{int(v)}" for v in nnz),
                           "non-zeros per row, finest": f"{nnz[0] / system.size:.2f}",
                           "operator complexity": f"{sum(nnz) / nnz[0]:.3f}"})
        solver.close()
        total = PETSc.Log.Event("KSPSolve").getPerfInfo(stage.id)["time"]
        for name in EVENTS:
            info = PETSc.Log.Event(name).getPerfInfo(stage.id)
            if info["count"]:
                rows.append({"solver": label, "iterations": result.iterations, "event": name,
                             "calls": int(info["count"]), "s": f"{info['time']:.3f}",
                             "% of KSPSolve": f"{100 * info['time'] / total:.0f}"})
        print(label, result.iterations, f"{total:.2f} s", flush=True)
    return rows, levels


def _variant_options(name: str) -> tuple[dict, int]:
    opts = pc_options("V")
    if name == "SSOR both legs":
        for key in ("mg_levels_pc_sor_forward", "mg_levels_up_pc_sor_backward"):
            opts.pop(key)
        opts.update({"mg_levels_pc_sor_symmetric": None, "mg_levels_up_pc_sor_symmetric": None})
    elif name == "Chebyshev(2) + Jacobi":
        for key in ("mg_levels_pc_sor_forward", "mg_levels_up_pc_sor_backward"):
            opts.pop(key)
        for leg in ("mg_levels_", "mg_levels_up_"):
            opts.update({leg + "ksp_type": "chebyshev", leg + "ksp_max_it": 2,
                         leg + "pc_type": "jacobi"})
    return opts, 63 if "63" in name else 3


VARIANTS = ["V(1,1) SOR forward/backward (default)", "SSOR both legs", "Chebyshev(2) + Jacobi",
            "default, coarsest 63² (LU)"]


def cycle_variants(system, net, repeats: int) -> list[dict]:
    """Iterations and CPU seconds of CG + PCMG per cycle setting, the same for both P."""
    PETSc = petsc()
    A = aij_from_csr(system.A)
    b, x = A.createVecs()[::-1]
    b.setArray(system.b)
    rows = []
    for rule in ("learned", "blackbox"):
        for name in VARIANTS:
            opts, coarsest = _variant_options(name)
            c0 = time.process_time()
            mg = multigrid.MultigridHierarchy(system.A, system.stencil, prolongation=rule,
                                              net=net, coarsest=coarsest)
            mats = [aij_from_csr(P) for P in mg.prolongations()]
            ops = [aij_from_csr(Ac) for Ac in mg.coarse_operators()]
            ksp, names = ksp_with_options(PETSc.COMM_SELF, {
                "ksp_type": "cg", "ksp_norm_type": "unpreconditioned", "ksp_rtol": 1e-8,
                **opts}, tag="profile")
            ksp.setOperators(A)
            pc = ksp.getPC()
            pc.setType("mg")
            nlev = len(mats) + 1
            pc.setMGLevels(nlev)
            for k, P in enumerate(mats):
                pc.setMGInterpolation(nlev - 1 - k, P)
            for k, Ac in enumerate(ops):
                pc.getMGSmoother(nlev - 2 - k).setOperators(Ac)
            ksp.setFromOptions()
            ksp.setUp()
            setup_cpu = time.process_time() - c0
            cpu, wall = [], []
            for _ in range(repeats):
                x.set(0.0)
                c0, t0 = time.process_time(), time.perf_counter()
                ksp.solve(b, x)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - t0)
            res = np.linalg.norm(system.b - system.A @ x.getArray()) / system.b_norm
            rows.append({"P": rule, "cycle": name, "levels": nlev,
                         "iterations": ksp.getIterationNumber(),
                         "true rel. residual": f"{res:.1e}",
                         "set-up CPU s": f"{setup_cpu:.2f}", "solve CPU s": f"{min(cpu):.2f}",
                         "solve wall s": f"{min(wall):.2f}"})
            print(rows[-1], flush=True)
            ksp.destroy()
            remove_options(names)
            for m in mats + ops:
                m.destroy()
    for obj in (A, b, x):
        obj.destroy()
    return rows


def hierarchy_setup(system, net, repeats: int) -> list[dict]:
    """CPU seconds of the hierarchy per rule (best of ``repeats``), of which the P-stencil rule."""
    spent = {"rule": 0.0}
    original = multigrid.pstencil_for

    def timed(*args, **kwargs):
        c0 = time.process_time()
        out = original(*args, **kwargs)
        spent["rule"] += time.process_time() - c0
        return out

    multigrid.pstencil_for = timed
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(repeats):
            for rule in ("learned", "blackbox"):
                spent["rule"] = 0.0
                c0 = time.process_time()
                mg = multigrid.MultigridHierarchy(system.A, system.stencil,
                                                  prolongation=rule, net=net)
                total = time.process_time() - c0
                if rule not in best or total < best[rule][0]:
                    best[rule] = (total, spent["rule"])
    finally:
        multigrid.pstencil_for = original
    points = sum(lv.P.shape[1] for lv in mg.levels[:-1])
    width, blocks = net.config["width"], net.config["blocks"]
    flop = 2 * points * (45 * width + 2 * blocks * width * width + 4 * width)
    return [{"P": rule, "hierarchy CPU s": f"{t:.2f}", "of which P-stencil rule CPU s": f"{r:.2f}",
             "network GFLOP": f"{flop / 1e9:.1f}" if rule == "learned" else "–"}
            for rule, (t, r) in best.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1023)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line about the machine and its load")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", ProlongationGuardWarning)
    t0 = time.perf_counter()
    load = [os.getloadavg()[0]]
    system = pdesolve.get_problem("diffusion", dim=2, n=args.n, coefficient="lognormal",
                                  scheme="fe9", seed=0).discretize()
    net = multigrid.load_network(None)
    events, levels = event_log(system)
    load.append(os.getloadavg()[0])
    variants = cycle_variants(system, net, args.repeats)
    load.append(os.getloadavg()[0])
    setup = hierarchy_setup(system, net, args.repeats)
    load.append(os.getloadavg()[0])
    lines = [f"# CG + PETSc PCMG at n = {args.n}: where the solve goes, cycle settings", "",
             f"Dirichlet log-normal diffusion (σ = 1, seed 0), one process, one thread. "
             f"{args.note} Load average (1 min, 2 cores) at the part boundaries: "
             + ", ".join(f"{v:.1f}" for v in load) + ".", "",
             "## 1. PETSc events of one solve to rtol 1e-8", "",
             "Seconds are PETSc's wall-clock event times; nested events count in their parents "
             "(MatResidual calls MatMult; PCApply holds the cycle's events; KSPSolve holds "
             "everything).", "", markdown_table(events), "", markdown_table(levels),
             "## 2. Cycle settings (the same for both prolongations)", "",
             f"Set-up CPU = hierarchy + PETSc set-up; solve = best of {args.repeats}.", "",
             markdown_table(variants),
             "## 3. Hierarchy set-up", "",
             f"Best of {args.repeats}, CPU seconds; the network's arithmetic counts the "
             "multiply-adds of its layers over every level's coarse points.", "",
             markdown_table(setup), f"(total {time.perf_counter() - t0:.0f} s)"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    atomic_write(out / "solve_profile.md", lambda t: t.write_text(text), overwrite=True)
    print(text)


if __name__ == "__main__":
    main()
