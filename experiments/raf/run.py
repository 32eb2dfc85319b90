"""RAF reproduction at CPU scale (docs/methods/raf.md): RAF (partitioned x | x² | sin | Gaussian) vs
tanh, sin and ReLU³ in the RAF paper's width-50 ResNet, 3 seeds, on the paper's PDE problems.

Usage::

    python experiments/raf/run.py                  # the committed run (see README.md for its cost)
    python experiments/raf/run.py --workers 2      # same results, two single-threaded processes
    python experiments/raf/run.py --quick          # a smoke run in about a minute (results_quick/)

Every run is stored as ``results/runs/<case>__<activation>__seed<k>.json`` (final errors and the
whole error-vs-step history) and skipped when it already exists, so an interrupted sweep resumes
where it stopped (``--fresh`` reruns everything). From those files the script writes
``results/errors.csv`` (one row per run), ``results/curves.csv`` (error vs step),
``results/<case>.png`` (error vs step: mean over seeds, min-max band) and ``results/results.md``
(mean ± std table).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pdesolve.io import markdown_table, write_csv
from pdesolve.plotting import save_figure, subplots

HERE = Path(__file__).resolve().parent

# case -> problem, RAF options as in the official code, Adam/StepLR settings of the official code.
# official: smooth: wd 1e-4, StepLR(2000, 0.7); singular: wd 1e-4, StepLR(1000, 0.95); oscillatory:
# no wd, StepLR(1000, 0.95); lr 1e-3 throughout. The eigenvalue problem has no official code: the
# smooth-Poisson settings are used for it.
SMOOTH = {"wd": 1e-4, "step": 2000, "gamma": 0.7, "total": 100_000}
SINGULAR = {"wd": 1e-4, "step": 1000, "gamma": 0.95, "total": 500_000}
OSCILLATION = {"wd": 0.0, "step": 1000, "gamma": 0.95, "total": 100_000}
OSC_RAF = {"gaussian_width": 0.5, "sizes": [12, 12, 16, 10]}  # sin on [2q, m-10], Gaussian on 10
CASES: dict[str, dict] = {
    "smooth_2d": dict(problem="poisson", params={"dim": 2, "solution": "polynomial"},
                      raf={"gaussian_width": 0.05}, **SMOOTH),
    "low_regularity_2d": dict(problem="low_regularity", params={"dim": 2},
                              raf={"gaussian_width": 0.1}, **SINGULAR),
    "low_regularity_5d": dict(problem="low_regularity", params={"dim": 5},
                              raf={"gaussian_width": 0.1}, **SINGULAR),
    "oscillatory_2d_k2": dict(problem="oscillatory", params={"dim": 2, "frequency": 2},
                              raf=OSC_RAF, **OSCILLATION),
    "oscillatory_2d_k3": dict(problem="oscillatory", params={"dim": 2, "frequency": 3},
                              raf=OSC_RAF, **OSCILLATION),
    "eigen_2d": dict(problem="laplace_eigen", params={"dim": 2}, raf={"gaussian_width": 0.05},
                     **SMOOTH),
}  # fmt: skip
# diagnostic cases (not in the default sweep): other problems and RAF variants
EXTRA_CASES: dict[str, dict] = {
    "oscillatory_2d_k1": dict(problem="oscillatory", params={"dim": 2, "frequency": 1},
                              raf=OSC_RAF, **OSCILLATION),
    # smooth Poisson with other RAF slices (run with --activations raf): is s = 0.05 the problem?
    "smooth_2d_raf_s0.5": dict(problem="poisson", params={"dim": 2, "solution": "polynomial"},
                               raf={"gaussian_width": 0.5}, **SMOOTH),
    "smooth_2d_raf_poly_sin": dict(problem="poisson", params={"dim": 2, "solution": "polynomial"},
                                   raf={"basis": "poly_sin"}, **SMOOTH),
}  # fmt: skip
ACTIVATIONS = ("raf", "tanh", "sin", "relu3")
WIDTH = 50


def all_cases() -> dict[str, dict]:
    return {**CASES, **EXTRA_CASES}


def step_size(spec: dict, steps: int, schedule: str) -> int:
    """``official``: the official StepLR step size (our run = the official run's first steps);
    ``compressed``: scaled by steps/official total (keeps the official total decay)."""
    if schedule == "official":
        return spec["step"]
    return max(1, round(spec["step"] * steps / spec["total"]))


def run_one(job: dict) -> dict:
    """Train one (case, activation, seed); returns the record stored in runs/*.json."""
    import torch

    import pdesolve
    from pdesolve.train.pinn import PINNTrainer

    torch.set_num_threads(1)
    spec = all_cases()[job["case"]]
    act, raf_options = job["activation"], dict(spec["raf"], **job.get("raf_override", {}))
    problem = pdesolve.get_problem(spec["problem"], **spec["params"])
    trainer = PINNTrainer(
        problem,
        model={"name": "resnet", "width": WIDTH, "blocks": 2, "activation": act,
               "activation_options": raf_options if act == "raf" else {}},
        optimizer={"name": "adam", "lr": 1e-3, "weight_decay": spec["wd"]},
        steps=job["steps"], batch=job["batch"], sampling="random", constraint="hard",
        schedule="step", schedule_options={
            "step_size": step_size(spec, job["steps"], job["schedule"]), "gamma": spec["gamma"]},
        dtype="float64", seed=job["seed"], test_points=10_000, log_every=job["log_every"],
        progress=False,
    )  # fmt: skip
    cpu0, wall0 = time.process_time(), time.perf_counter()
    h = trainer.fit()
    record = {
        "case": job["case"], "activation": act, "seed": job["seed"], "steps": job["steps"],
        "batch": job["batch"], "schedule": job["schedule"], "parameters": sum(
            p.numel() for p in trainer.model.parameters()),
        "raf_options": raf_options if act == "raf" else {},
        "relative_l2": h["relative_l2"][-1],
        "best_relative_l2": float(np.nanmin(h["relative_l2"])),
        "cpu_seconds": round(time.process_time() - cpu0, 2),
        "wall_seconds": round(time.perf_counter() - wall0, 2),
        "history": {k: h[k] for k in ("step", "relative_l2", "train_loss", "residual_rms",
                                       "eigenvalue")},
    }  # fmt: skip
    if problem.name == "laplace_eigen":
        lam, exact = h["eigenvalue"][-1], problem.exact_eigenvalue
        record.update(eigenvalue=lam, eigenvalue_rel_error=abs(lam - exact) / exact)
    return record


def run_path(out: Path, case: str, act: str, seed: int) -> Path:
    return out / "runs" / f"{case}__{act}__seed{seed}.json"


def execute(job: dict) -> str:
    path = Path(job["path"])
    if path.exists() and not job.get("fresh"):  # done meanwhile by another sweep process
        return f"{path.name}: already done"
    record = run_one(job)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return (f"{job['case']:20s} {job['activation']:6s} seed {job['seed']}: rel L2 "
            f"{record['relative_l2']:.3e} ({record['cpu_seconds']:.0f} s CPU)")


# ----------------------------------------------------------------------------------------------
def load_records(out: Path, cases, activations, seeds) -> list[dict]:
    records = []
    for case in cases:
        for act in activations:
            for seed in seeds:
                path = run_path(out, case, act, seed)
                if path.exists():
                    records.append(json.loads(path.read_text()))
    return records


def plot(case: str, records: list[dict], path: Path) -> None:
    fig, ax = subplots(figsize=(5.5, 3.8))
    for i, act in enumerate(ACTIVATIONS):
        runs = [r["history"] for r in records if r["activation"] == act]
        if not runs:
            continue
        steps = np.asarray(runs[0]["step"])
        errs = np.asarray([h["relative_l2"] for h in runs], dtype=float)
        ax.semilogy(steps, np.exp(np.mean(np.log(errs), axis=0)), color=f"C{i}",
                    label=f"{act} ({len(runs)} seeds)")
        if len(runs) > 1:
            ax.fill_between(steps, errs.min(axis=0), errs.max(axis=0), color=f"C{i}", alpha=0.2)
    ax.set_xlabel("Adam step")
    ax.set_ylabel("relative L2 error (10,000 test points)")
    ax.set_title(f"{case}: geometric mean over seeds, min-max band", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def fmt(values: list[float], seeds: int = 3) -> str:
    """Mean ± sample std; the number of seeds is added when some are missing."""
    if len(values) == 1:
        text = f"{values[0]:.2e}"
    else:
        text = f"{np.mean(values):.2e} ± {np.std(values, ddof=1):.1e}"
    return text if len(values) >= seeds else f"{text} (n={len(values)})"


def summarise(records: list[dict], cases, args) -> str:
    cpu = sum(r["cpu_seconds"] for r in records)
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "# RAF reproduction (CPU scale)", "",
        f"Settings: width-{WIDTH} ResNet (2 residual blocks, identity-embedded skips, hard "
        f"boundary ansatz), identical parameter count for every activation; Adam lr 1e-3 with "
        f"the official weight decay and StepLR ({args.schedule} step size, see README.md), "
        f"{args.steps} steps, {args.batch} fresh uniform points per step, float64, seeds "
        f"{seeds}. Error: relative L2 "
        f"on a fixed, seeded 10,000-point test set after the last step (eigenfunction: after the "
        f"best scaling). Mean ± sample std over seeds. {len(records)} runs, "
        f"{cpu / 60:.1f} CPU-minutes in all (one thread each).", "",
    ]  # fmt: skip
    table = []
    for case in cases:
        errs = {a: [r["relative_l2"] for r in records if r["case"] == case
                    and r["activation"] == a] for a in ACTIVATIONS}  # fmt: skip
        errs = {a: v for a, v in errs.items() if v}
        if not errs:
            continue
        means = {a: float(np.mean(v)) for a, v in errs.items()}
        cells = [(f"**{fmt(errs[a], len(seeds))}**" if a == min(means, key=means.get)
                  else fmt(errs[a], len(seeds)))
                 if a in errs else "-" for a in ACTIVATIONS]  # fmt: skip
        word = "-"
        if "raf" in means and len(means) > 1:
            best = min((a for a in means if a != "raf"), key=means.get)
            ratio = means["raf"] / means[best]
            word = (f"{100 * (1 - ratio):.0f}% lower" if ratio < 1 else f"{ratio:.1f}x higher")
            word += f" (best baseline: {best})"
        table.append({"case": case, **dict(zip(ACTIVATIONS, cells, strict=True)),
                      "RAF vs best baseline (means)": word})
    lines += markdown_table(
        table, columns=["case", *ACTIVATIONS, "RAF vs best baseline (means)"]).splitlines()
    eig = [r for r in records if "eigenvalue" in r]
    if eig:
        lines += ["", "Eigenvalue estimate (Rayleigh quotient on the test set; exact 2π² = "
                  "19.7392), mean over seeds:", ""]  # fmt: skip
        lines += markdown_table([
            {"activation": act, "λ": f"{np.mean([r['eigenvalue'] for r in rs]):.4f}",
             "relative error of λ": fmt([r["eigenvalue_rel_error"] for r in rs], len(seeds))}
            for act in ACTIVATIONS if (rs := [r for r in eig if r["activation"] == act])
        ]).splitlines()  # fmt: skip
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, records: list[dict], cases, args) -> None:
    keys = ["case", "activation", "seed", "steps", "batch", "schedule", "parameters",
            "relative_l2", "best_relative_l2", "eigenvalue", "eigenvalue_rel_error",
            "cpu_seconds", "wall_seconds"]  # fmt: skip
    write_csv(out / "errors.csv", records, columns=keys)
    curves = ("step", "relative_l2", "train_loss", "residual_rms")
    write_csv(out / "curves.csv", [
        {"case": r["case"], "activation": r["activation"], "seed": r["seed"],
         **dict(zip(curves, row, strict=True))}
        for r in records for row in zip(*(r["history"][k] for k in curves), strict=True)
    ], floatfmt=".6g", columns=["case", "activation", "seed", *curves])  # fmt: skip
    for case in cases:
        rs = [r for r in records if r["case"] == case]
        if rs:
            plot(case, rs, out / f"{case}.png")
    (out / "results.md").write_text(summarise(records, cases, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(all_cases()))
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS),
                        choices=ACTIVATIONS)
    parser.add_argument("--schedule", choices=("official", "compressed"), default="official")
    parser.add_argument("--workers", type=int, default=1, help="single-threaded processes")
    parser.add_argument("--fresh", action="store_true", help="rerun runs already on disk")
    parser.add_argument("--reverse", action="store_true",
                        help="work through the runs from the end (a second, concurrent sweep)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch, args.out = 40, 200, args.out.with_name("results_quick")
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    log_every = max(args.steps // 40, 1)
    jobs = []
    for seed in args.seeds:  # seed-major: an interrupted sweep still covers every case
        for case in args.cases:
            for act in args.activations:
                path = run_path(args.out, case, act, seed)
                if path.exists() and not args.fresh:
                    old = json.loads(path.read_text())
                    if (old["steps"], old["batch"], old["schedule"]) == (
                            args.steps, args.batch, args.schedule):
                        continue
                jobs.append({"case": case, "activation": act, "seed": seed, "steps": args.steps,
                             "batch": args.batch, "schedule": args.schedule,
                             "log_every": log_every, "path": str(path),
                             "fresh": args.fresh})  # fmt: skip
    if args.reverse:
        jobs.reverse()
    print(f"{len(jobs)} runs to do", flush=True)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for line in pool.map(execute, jobs):
                print(line, flush=True)
    else:
        for job in jobs:
            print(execute(job), flush=True)
    records = load_records(args.out, args.cases, ACTIVATIONS, args.seeds)
    records = [r for r in records if (r["steps"], r["batch"], r["schedule"]) == (
        args.steps, args.batch, args.schedule)]
    write_outputs(args.out, records, args.cases, args)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
