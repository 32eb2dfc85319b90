"""Where the set-up of CG + PETSc PCMG (learned / black-box P) spends its time, by component.

Profiles (cProfile) one ``pdesolve.solve(system, method="multigrid", krylov="petsc_cg")`` per
prolongation on Dirichlet log-normal diffusion (bilinear FE, seed 0) and one CG + GAMG solve,
and sums the cumulative time of the functions that make up each component (those that do not
exist in the profiled code count as absent, so the same script profiles older versions of
pdesolve: put them first on ``PYTHONPATH``). Writes ``<out>/<label>.json``; with ``--before``
(a JSON written earlier) also a before/after markdown table ``<out>/setup_profile.md``::

    OMP_NUM_THREADS=1 python experiments/learned_multigrid/profile_setup.py --n 1023 \\
        --label after [--before results/setup_profile_before.json]
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import os
import pstats
import subprocess
import time
from pathlib import Path

import torch

import pdesolve

HERE = Path(__file__).resolve().parent

#: component -> functions ("module:qualname") whose cumulative times are summed
COMPONENTS = {
    "load network": ["pdesolve.solvers.multigrid:load_network"],
    "network (forward / batched inference)": [
        "pdesolve.nn.prolongation:ProlongationNet.forward",
        "pdesolve.nn.prolongation:ProlongationNet._infer",
    ],
    "P-stencil rules incl. network": ["pdesolve.solvers.multigrid:pstencil_for"],
    "gather 5 neighbour stencils": [
        "pdesolve.discretize.prolongation:gather_neighbour_stencils"],
    "stencils read back from CSR": ["pdesolve.solvers.multigrid:stencil_from_csr"],
    "scipy sparse Galerkin product (matmul)": [
        "scipy.sparse._base:_spbase.__matmul__"],
    "P assembly (CSR)": ["pdesolve.solvers.multigrid:prolongation_matrix"],
    "Galerkin closed-form stencil product": ["pdesolve.discretize.galerkin:galerkin_stencil"],
    "coarse CSR from stencils": ["pdesolve.discretize.finite_difference:stencil_to_csr"],
    "Python smoother factorisations (splu)": [
        "pdesolve.solvers.multigrid:_TriangularSweep.__init__"],
    "hierarchy total": ["pdesolve.solvers.multigrid:MultigridHierarchy.__init__"],
    "PETSc PCMG set-up (conversions, KSPSetUp)": ["pdesolve.solvers.petsc_pcmg:PCMGKSP.__init__"],
}


def _keys(spec: str) -> list[tuple]:
    module, _, name = spec.partition(":")
    try:
        obj = __import__(module, fromlist=["_"])
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return []
    code = inspect.unwrap(obj).__code__
    return [(code.co_filename, code.co_firstlineno, code.co_name)]


def profile(fn, components: dict[str, list[str]] | None = None
            ) -> tuple[object, dict[str, float], float]:
    """``(fn(), {component: cumulative s or None}, wall s)`` of one profiled call."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    out = prof.runcall(fn)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats  # key -> (cc, nc, tt, ct, callers)
    comp = {}
    for label, specs in (components or COMPONENTS).items():
        keys = [k for s in specs for k in _keys(s)]
        hits = [stats[k][3] for k in keys if k in stats]
        comp[label] = float(sum(hits)) if hits else None
    return out, comp, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1023)
    parser.add_argument("--label", default="after")
    parser.add_argument("--before", default=None, help="JSON of an earlier run to compare")
    parser.add_argument("--rules", default="blackbox,learned")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--note", default="")
    parser.add_argument("--commit", default="", help="label of the profiled code's version")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    system = pdesolve.get_problem("diffusion", dim=2, n=args.n, coefficient="lognormal",
                                  scheme="fe9", seed=0).discretize()
    rows = {}
    runs = {rule: {"method": "multigrid", "prolongation": rule, "krylov": "petsc_cg"}
            for rule in args.rules.split(",")}
    runs["gamg"] = {"method": "petsc_cg", "pc": "gamg"}
    for name, opts in runs.items():
        # a plain run for the times (cProfile slows Python-heavy code), then a profiled one
        plain = pdesolve.solve(system, rtol=1e-8, **opts)
        res, comp, wall = profile(lambda opts=opts: pdesolve.solve(system, rtol=1e-8, **opts))
        rows[name] = {"components": comp if name != "gamg" else {},
                      "setup_s": plain.info["setup_time"],
                      "solve_s": plain.info.get("solve_time"),
                      "profiled_setup_s": res.info["setup_time"],
                      "iterations": plain.iterations, "wall_s": wall}
        print(name, json.dumps(rows[name], indent=1), flush=True)
    code = Path(pdesolve.__file__).parent
    commit = args.commit or subprocess.run(["git", "-C", str(code), "rev-parse", "--short",
                                            "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"label": args.label, "n": args.n, "rows": rows, "note": args.note,
              "pdesolve": str(Path(pdesolve.__file__).parent), "commit": commit}
    (out / f"setup_profile_{args.label}.json").write_text(json.dumps(record, indent=1))
    if args.before:
        write_table(json.loads(Path(args.before).read_text()), record, out)


def _ratio(rec: dict, a: str, b: str) -> float:
    return rec["rows"][a]["setup_s"] / rec["rows"][b]["setup_s"]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def write_table(before: dict, after: dict, out: Path,
                components: dict[str, list[str]] | None = None, name: str = "setup_profile.md",
                title: str = "", problem: str = "Dirichlet log-normal diffusion (bilinear FE, "
                "seed 0)") -> None:
    """The before/after markdown table of two profile records (``out/name``)."""
    from pdesolve.io import markdown_table

    components = components or COMPONENTS

    rules = [r for r in after["rows"] if r != "gamg"]
    cols = [(r, rec) for r in rules for rec in (before, after)]

    def row(label: str, cells: list[str]) -> dict[str, str]:
        return {"component (s)": label,
                **{f"{r} {rec['label']}": c for (r, rec), c in zip(cols, cells, strict=True)}}

    body = [row(label, [_fmt(rec["rows"][r]["components"].get(label)) for r, rec in cols])
            for label in components]
    body.append(row("set-up under cProfile", [_fmt(rec["rows"][r].get("profiled_setup_s"))
                                              for r, rec in cols]))
    body.append(row("**set-up (plain run)**",
                    [f"**{rec['rows'][r]['setup_s']:.2f}**" for r, rec in cols]))
    body.append(row("solve (plain run)", [_fmt(rec["rows"][r].get("solve_s"))
                                          for r, rec in cols]))
    body.append(row("CG iterations", [str(rec["rows"][r]["iterations"]) for r, rec in cols]))
    gb, ga = before["rows"]["gamg"]["setup_s"], after["rows"]["gamg"]["setup_s"]
    ratio = {rec["label"]: {r: rec["rows"][r]["setup_s"] / rec["rows"]["gamg"]["setup_s"]
                            for r in rules} for rec in (before, after)}
    lines = [
        title or f"# Set-up profile of CG + PETSc PCMG, n = {after['n']} (before / after)", "",
        f"{problem}, one process, one thread. "
        "Components: cProfile cumulative seconds in a profiled run (a component's functions "
        "may nest in another's: rows do not add up; cProfile inflates the many small calls of "
        "the Python-level code); set-up and solve: a plain run just before it (the solver's "
        f"own timers). {after['note']}", "",
        f"before: pdesolve at {before.get('commit', '?')}; after: {after.get('commit', '?')} "
        "plus the working tree when this table was written.", "",
        markdown_table(body), "",
        f"CG + GAMG set-up in the same runs: {gb:.2f} s before, {ga:.2f} s after. Set-up / GAMG's "
        "set-up: " + "; ".join(f"{lab}: " + ", ".join(f"{r} {v:.2f}" for r, v in d.items())
                                for lab, d in ratio.items()) + ".",
        "learned / black-box set-up: " + ", ".join(
            f"{rec['label']} {_ratio(rec, 'learned', 'blackbox'):.2f}" for rec in (before, after)
            if "learned" in rec["rows"] and "blackbox" in rec["rows"]),
    ]
    (out / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
