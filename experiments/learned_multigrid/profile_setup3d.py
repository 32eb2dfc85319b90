"""Where the 3-D set-up of CG + PETSc PCMG (learned / black-box P) spends its time, by component.

The 3-D counterpart of ``profile_setup.py`` (whose profiling and table helpers it uses): one
set-up of ``get_solver("petsc_cg", pc={"name": "multigrid", "prolongation": rule})`` per rule on
Dirichlet log-normal diffusion (σ = 1, seed 0) on an ``n³`` grid, a plain run for the times
(wall and process CPU seconds: on a shared machine the CPU time is the steadier number) and a
profiled one for the components, plus a plain CG + GAMG set-up. The system's symmetry check
runs before any timing (it is computed once per system: otherwise the first solver pays it).
Components absent from the profiled code count as absent, so older versions of pdesolve can be
profiled by putting them first on ``PYTHONPATH``. With ``--galerkin`` it also times the finest
Galerkin product by scipy and by PETSc's MatPtAP. Writes ``<out>/setup_profile3d_<label>.json``
and, with ``--before``, ``<out>/setup_profile3d.md``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/profile_setup3d.py --n 127 \\
        --label after --galerkin [--before results/setup_profile3d_before.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from profile_setup import profile, write_table

import pdesolve

HERE = Path(__file__).resolve().parent

#: component -> functions ("module:qualname") whose cumulative times are summed
COMPONENTS3D = {
    "load network": ["pdesolve.solvers.multigrid3d:MultigridHierarchy3D.load_network"],
    "network (forward / batched inference)": [
        "pdesolve.nn.prolongation3d:ProlongationNet3D.forward",
        "pdesolve.nn.prolongation3d:ProlongationNet3D.infer",
        "pdesolve.nn.prolongation3d:ProlongationNet3D.logits"],
    "network input gathers": [
        "pdesolve.discretize.prolongation3d:gather_neighbour_stencils3d",
        "pdesolve.discretize.pstencil3d_setup:SetupStencils.neighbour_inputs"],
    "P-stencil rules incl. network": ["pdesolve.solvers.multigrid3d:pstencil_for3d"],
    "collapsed planes/lines of the whole grid": [
        "pdesolve.discretize.prolongation3d:collapsed_planes_and_lines"],
    "per-kind stencil gathers (set-up route)": [
        "pdesolve.discretize.pstencil3d_setup:SetupStencils.__init__"],
    "face-factor sharing": [
        "pdesolve.discretize.prolongation3d:share_face_weights3d",
        "pdesolve.discretize.pstencil3d_setup:share_face_weights_setup"],
    "stencils read back from CSR": ["pdesolve.discretize.prolongation3d:stencil_from_csr3d"],
    "P assembly (CSR)": ["pdesolve.discretize.prolongation3d:prolongation_matrix3d",
                         "pdesolve.discretize.pstencil3d_setup:prolongation_pair3d"],
    "scipy sparse Galerkin product (matmul)": ["scipy.sparse._base:_spbase.__matmul__"],
    "Python smoother factorisations (splu)": [
        "pdesolve.solvers.multigrid:_TriangularSweep.__init__"],
    "hierarchy total": ["pdesolve.solvers.multigrid3d:MultigridHierarchy3D.__init__"],
    "PCMG hand-over (AIJ wrappers, options)": [
        "pdesolve.solvers.multigrid:MultigridPreconditioner.configure_petsc"],
    "fine A to PETSc (every solver)": ["pdesolve.linalg.petsc:csr_to_petsc"],
}


def _problem(n: int, scheme: str):
    return pdesolve.get_problem("diffusion", dim=3, n=n, coefficient="lognormal", sigma=1.0,
                                scheme=scheme, seed=0).discretize()


def _pc(name: str):
    return "gamg" if name == "gamg" else {"name": "multigrid", "prolongation": name}


def galerkin_times(system) -> dict[str, float]:
    """Seconds of the finest black-box Galerkin product by scipy (``R (A P)``) and by PETSc
    MatPtAP (best of two each), and their largest relative difference."""
    from pdesolve.discretize.pstencil3d_setup import blackbox_pstencil3d_setup, prolongation_pair3d
    from pdesolve.solvers.petsc_pcmg import aij_from_csr

    A, n = system.A.tocsr(), system.stencil.shape[0]
    P, R = prolongation_pair3d(blackbox_pstencil3d_setup(system.stencil), n)
    out, results = {}, {}
    Am, Pm = aij_from_csr(A), aij_from_csr(P)
    for label, fn in (("scipy R @ (A @ P)", lambda: R @ (A @ P)),
                      ("PETSc MatPtAP", lambda: Am.ptap(Pm))):
        best = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            results[label] = fn()
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    ip, ix, v = results["PETSc MatPtAP"].getValuesCSR()
    import scipy.sparse as sp

    C = sp.csr_matrix((v, ix, ip), shape=R.shape[:1] * 2)
    ref = results["scipy R @ (A @ P)"]
    out["relative difference"] = float(abs(C - ref).max() / abs(ref).max())
    for M in (Am, Pm, results["PETSc MatPtAP"]):
        M.destroy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=127, help="grid size per dimension (2^k - 1)")
    parser.add_argument("--scheme", default="fd", choices=("fd", "fe27"))
    parser.add_argument("--label", default="after", help="name of this record")
    parser.add_argument("--before", default=None, help="JSON of an earlier run to compare")
    parser.add_argument("--rules", default="blackbox,learned")
    parser.add_argument("--galerkin", action="store_true",
                        help="also time the finest Galerkin product by scipy and MatPtAP")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="", help="a line about the machine/load")
    parser.add_argument("--commit", default="", help="label of the profiled code's version")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    system = _problem(args.n, args.scheme)
    system.validate(symmetric=True)  # computed once per system: no solver below pays it
    small = _problem(15, args.scheme)
    rows = {}
    for name in [*args.rules.split(","), "gamg"]:
        pdesolve.get_solver("petsc_cg", rtol=1e-8, pc=_pc(name)).solve(small)  # warm-up
        solver = pdesolve.get_solver("petsc_cg", rtol=1e-8, maxiter=5000, pc=_pc(name))
        t0, c0 = time.perf_counter(), time.process_time()
        solver.setup(system)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = solver.solve(system.b)
        solver.close()
        rows[name] = {"setup_s": wall, "setup_cpu_s": cpu, "solve_s": res.info["solve_time"],
                      "iterations": res.iterations, "components": {}}
        if name != "gamg":  # GAMG's set-up is PETSc's own: nothing of pdesolve's to profile
            solver = pdesolve.get_solver("petsc_cg", rtol=1e-8, maxiter=5000, pc=_pc(name))
            _, comp, pwall = profile(lambda s=solver: s.setup(system), COMPONENTS3D)
            solver.close()
            rows[name].update(components=comp, profiled_setup_s=pwall)
        print(name, json.dumps(rows[name], indent=1), flush=True)
    code = Path(pdesolve.__file__).parent
    commit = args.commit or subprocess.run(["git", "-C", str(code), "rev-parse", "--short",
                                            "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"label": args.label, "n": args.n, "scheme": args.scheme, "rows": rows,
              "note": args.note, "pdesolve": str(code), "commit": commit}
    if args.galerkin:
        record["galerkin"] = galerkin_times(system)
        print(record["galerkin"], flush=True)
    (out / f"setup_profile3d_{args.label}.json").write_text(json.dumps(record, indent=1))
    if args.before:
        before = json.loads(Path(args.before).read_text())
        scheme = "7-point FD" if args.scheme == "fd" else "27-point trilinear FE"
        write_table(before, record, out, COMPONENTS3D, name="setup_profile3d.md",
                    title=f"# 3-D set-up profile of CG + PETSc PCMG, {args.n}³ (before / after)",
                    problem=f"Dirichlet log-normal diffusion in 3-D ({scheme}, σ = 1, seed 0)")
        with (out / "setup_profile3d.md").open("a") as fh:
            fh.write("\nProcess CPU seconds of the plain set-ups (the steadier number on a "
                     "shared machine): " + "; ".join(
                         f"{rec['label']}: " + ", ".join(
                             f"{r} {v['setup_cpu_s']:.2f}" for r, v in rec["rows"].items()
                             if "setup_cpu_s" in v) for rec in (before, record)) + ".\n")
            if "galerkin" in record:
                g = record["galerkin"]
                fh.write("\nFinest Galerkin product (black-box P, best of 2): " + ", ".join(
                    f"{k} {v:.2f} s" for k, v in g.items() if k != "relative difference")
                    + f" (largest relative difference {g['relative difference']:.1e}).\n")


if __name__ == "__main__":
    main()
