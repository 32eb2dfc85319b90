"""PINNs as linear solvers (Markidis 2021): pure PINN, transfer learning, the hybrid
smoother + corrector solver, and PETSc CG (none/jacobi/icc/gamg) on 2-D Poisson systems.

Sources (all with homogeneous Dirichlet data, manufactured exact solutions):

* ``polynomial``: ``u = x²(1-x)y²(1-y)`` (smooth);
* ``multifrequency``: ``u = Σ_m sin(mπx) sin(mπy)``, m = 1, 4, 16. Its right-hand side is a sum
  of three eigenvectors of the 5-point Laplacian, so unpreconditioned CG is exact after three
  iterations: a degenerate case for the solver comparison, kept for the F-principle;
* ``multifrequency_modulated``: the same modes times ``w(x)w(y)``, ``w(t) = 4t(1-t)``
  (``pdesolve.problems.manufactured.ModulatedMultiFrequency``): a multi-frequency right-hand
  side spread over many grid eigenvectors.

Training the PINNs does not depend on the grid, so it is done once per source and the networks
are evaluated on every grid. Then, for every ``n × n`` grid (``--n``, default 128 256 512), all at
``rtol`` (default 1e-6) on the true relative residual ``||b - A x|| / ||b||``:

* PETSc KSPCG with pc none / jacobi / icc / gamg (warm-up, then the fastest of three solves);
* the hybrid solver: Gauss–Seidel sweeps + coarse-grid correction (the classical reference),
  + PINN correction (online training: its training *is* part of the solve time; capped at
  ``--max-time`` seconds of wall time, reported as not converged when the cap is hit), and the
  plain smoother;
* the hybrid solvers started from the transfer-learned PINN (``+tl_x0``; that PINN's training,
  pre-training on the neighbour included, is reported apart in ``train``);
* the pure PINN, cold and transfer-learned (warm start from a neighbouring source): accuracy
  reached on the grid, the true relative residual of its grid values, training time;
* the F-principle: error of the cold PINN on ``multifrequency``, split into radial DFT bands per
  logged step (``fprinciple.csv``/``.png``, on the smallest grid).

Every timed call also records process CPU seconds (``*_cpu``): the machine these results were
made on was shared, and the CPU time is the less load-sensitive measure (single-threaded torch
and PETSc, so CPU ≈ wall on an idle machine). ``alg_error`` is the relative 2-norm distance to
the discrete solution ``A⁻¹b`` (GAMG-CG to rtol 1e-13); ``rel_l2_error`` is against the exact
solution at the nodes (discretization error included).

Writes ``results/{results.csv, transfer.csv, fprinciple.csv, fprinciple.png, scaling.png,
residual_vs_time_n<n>.png, results.md}``.
``python experiments/pinn_linear_solver/run.py [--quick] [--n 128 256 512] [--max-time 300]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.plotting import save_figure, subplots
from pdesolve.train.pinn import PINNTrainer, load_pinn
from pdesolve.train.spectral import SpectralMonitor, plot_bands
from pdesolve.train.spectral import write_csv as write_bands

HERE = Path(__file__).resolve().parent
SOURCES = {
    "polynomial": {"solution": "polynomial"},
    "multifrequency": {"solution": "multifrequency", "modes": (1, 4, 16)},
    "multifrequency_modulated": {"solution": "multifrequency_modulated"},
}
#: PINN cases: target problem and the neighbouring problem (another source term) it is
#: warm-started from (the pair sin πx sin πy -> modes 1 + 2 is tests/solvers/test_hybrid.py's)
PINN_CASES = {
    "polynomial": (SOURCES["polynomial"], {"solution": "sine", "frequency": 1}),
    "multifrequency": (SOURCES["multifrequency"],
                       {"solution": "multifrequency", "modes": (1, 4)}),
    "multifrequency_modulated": (SOURCES["multifrequency_modulated"],
                                 {"solution": "multifrequency", "modes": (1, 4, 16)}),
}  # fmt: skip
PINN = {"model": {"name": "mlp", "width": 32, "depth": 3, "activation": "tanh"},
        "optimizer": {"name": "adam", "lr": 5e-3}, "batch": 1024, "schedule": "none",
        "test_points": 4000, "progress": False, "seed": 0}  # fmt: skip
PINN_CORRECTOR = {"width": 32, "depth": 3, "steps": 10, "first_steps": 200, "batch": 512,
                  "lr": 5e-3, "seed": 0}  # fmt: skip
PCS = ("none", "jacobi", "icc", "gamg")
TARGETS = (0.2, 0.1, 0.05, 0.02, 0.01)


def rel_res(system, x) -> float:
    return float(np.linalg.norm(system.b - system.A @ x) / system.b_norm)


def alg_error(x, x_star) -> float:
    return float(np.linalg.norm(x - x_star) / np.linalg.norm(x_star))


def timed(fn):
    """``fn()`` with its wall and process-CPU seconds."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def row(source, n, method, result, system, x_star, cpu, **extra) -> dict:
    err = system.error_norms(result.x)
    setup = result.info.get("setup_time", float("nan"))
    solve = result.info.get("solve_time", float("nan"))
    out = {
        "source": source, "n": n, "method": method, "converged": bool(result.converged),
        "time_limit": bool(result.info.get("time_limit", False)),
        "iterations": result.iterations, "rel_residual": rel_res(system, result.x),
        "setup_time": setup, "solve_time": solve, "total_time": setup + solve, "total_cpu": cpu,
        "train_time": 0.0, "train_cpu": 0.0, "max_error": err["max"],
        "rel_l2_error": err["relative_l2"], "alg_error": alg_error(result.x, x_star),
    }  # fmt: skip
    out.update(extra)
    return out


def steps_to(history, tol) -> tuple[float, float]:
    for s, e, t in zip(history["step"], history["relative_l2"], history["time"], strict=True):
        if e <= tol:
            return s, t
    return float("nan"), float("nan")


def train_pinns(case, steps, pre_steps, log_every, workdir, spectral_grid, transfer, spectral):
    """Cold PINN (with the F-principle monitor), neighbour pre-training, warm (transfer) PINN.

    Returns ``{label: (checkpoint, train seconds, train CPU seconds, pre-train seconds)}``."""
    target, near = PINN_CASES[case]
    problem = pdesolve.get_problem("poisson", dim=2, n=spectral_grid, **target)
    system = problem.discretize()
    monitor = SpectralMonitor(np.asarray(system.geometry.points), system.exact)
    ckpt_dir = Path(workdir) / case
    cold = PINNTrainer(problem, steps=steps, log_every=log_every, callback=monitor,
                       output_dir=ckpt_dir / "cold", **PINN)
    hc, _, cold_cpu = timed(cold.fit)
    neighbour = pdesolve.get_problem("poisson", dim=2, n=spectral_grid, **near)
    pre = PINNTrainer(neighbour, steps=pre_steps, log_every=log_every,
                      output_dir=ckpt_dir / "pre", **PINN)
    _, _, pre_cpu = timed(pre.fit)
    warm = PINNTrainer(problem, steps=steps, log_every=log_every, output_dir=ckpt_dir / "warm",
                       init_from=ckpt_dir / "pre" / "checkpoint.pt", **PINN)
    hw, _, warm_cpu = timed(warm.fit)
    for tol in TARGETS:
        sc, tc = steps_to(hc, tol)
        sw, tw = steps_to(hw, tol)
        transfer.append({"source": case, "neighbour": str(near), "target_rel_l2": tol,
                         "cold_steps": sc, "cold_time": tc, "warm_steps": sw, "warm_time": tw,
                         "pretrain_steps": pre_steps, "pretrain_time": pre.elapsed,
                         "best_cold_rel_l2": min(hc["relative_l2"]),
                         "best_warm_rel_l2": min(hw["relative_l2"])})  # fmt: skip
    spectral[case] = monitor
    return {"pinn_cold": (ckpt_dir / "cold" / "checkpoint.pt", cold.elapsed, cold_cpu, 0.0,
                          0.0),
            "pinn_transfer": (ckpt_dir / "warm" / "checkpoint.pt", warm.elapsed, warm_cpu,
                              pre.elapsed, pre_cpu)}  # fmt: skip


def pinn_rows(source, n, system, x_star, pinns, steps) -> list[dict]:
    rows = []
    pts = np.asarray(system.geometry.points)
    for label, (ckpt, train, train_cpu, pre, pre_cpu) in pinns.items():
        model, _ = load_pinn(ckpt)
        with torch.no_grad():
            x = model(torch.as_tensor(pts, dtype=next(model.parameters()).dtype))
        x = x.double().numpy()
        err = system.error_norms(x)
        rows.append({
            "source": source, "n": n, "method": label, "converged": False, "time_limit": False,
            "iterations": steps, "rel_residual": rel_res(system, x), "setup_time": 0.0,
            "solve_time": 0.0, "total_time": 0.0, "total_cpu": 0.0, "train_time": train,
            "train_cpu": train_cpu, "pretrain_time": pre, "pretrain_cpu": pre_cpu,
            "max_error": err["max"], "rel_l2_error": err["relative_l2"],
            "alg_error": alg_error(x, x_star),
        })  # fmt: skip
    return rows


def write_rows(path, rows) -> None:
    write_csv(path, rows, floatfmt=".4e")


def timed_history(result, total) -> tuple[np.ndarray, np.ndarray]:
    norms = np.asarray(result.residual_norms)
    t = np.linspace(0.0, total, len(norms))
    return t, norms / norms[0] if norms[0] > 0 else norms


def plot_histories(histories, path, n) -> None:
    sources = list(dict.fromkeys(s for s, _ in histories))
    fig, axes = subplots(1, len(sources), figsize=(6 * len(sources), 4), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        for (s, label), (times, res) in histories.items():
            if s == source:
                ax.loglog(np.maximum(times, 1e-4), res, label=label)
        ax.set_xlabel("wall time [s] (setup + solve; hybrid-PINN includes its online training)")
        ax.set_ylabel("true relative residual")
        ax.set_title(f"{source}, {n}²")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def plot_scaling(rows, path) -> None:
    methods = ("petsc_cg_none", "petsc_cg_icc", "petsc_cg_gamg", "hybrid_coarse_grid",
               "hybrid_pinn", "hybrid_pinn+tl_x0")  # fmt: skip
    sources = list(dict.fromkeys(r["source"] for r in rows if r["method"] in methods))
    fig, axes = subplots(1, len(sources), figsize=(5.5 * len(sources), 4), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=True):
        for m in methods:
            sel = sorted((r for r in rows if r["source"] == source and r["method"] == m),
                         key=lambda r: r["n"])
            if not sel:
                continue
            ns = [r["n"] for r in sel]
            ts = [r["total_cpu"] for r in sel]
            line, = ax.loglog(ns, ts, "o-", label=m)
            for r in sel:
                if not r["converged"]:
                    ax.plot(r["n"], r["total_cpu"], "x", color=line.get_color(), ms=12)
        ax.set_xlabel("n (grid n × n)")
        ax.set_ylabel("CPU seconds to rtol (setup + solve); × = not converged")
        ax.set_title(source)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def warm_up() -> None:
    """First-call costs (torch kernels, PETSc) outside the measurements."""
    system = pdesolve.get_problem("poisson", dim=2, n=16, solution="polynomial").discretize()
    pdesolve.solve(system, method="hybrid", nu=4, rtol=1e-3, maxiter=3,
                   pc={"name": "pinn_correction", **PINN_CORRECTOR, "first_steps": 2})
    pdesolve.solve(system, method="hybrid", pc="coarse_grid", rtol=1e-3)
    for pc in PCS:
        pdesolve.solve(system, method="petsc_cg", pc=pc, rtol=1e-6)


def solve_grid(source, n, args, pinns, rows, log, pinn_hybrid=True, tl_x0=True) -> dict:
    """Every linear solver on one source and grid; returns residual histories."""
    system = pdesolve.get_problem("poisson", dim=2, n=n, **SOURCES[source]).discretize()
    x_star = pdesolve.solve(system, method="petsc_cg", pc="gamg", rtol=1e-13).x
    histories = {}
    for pc in PCS:
        pdesolve.solve(system, method="petsc_cg", pc=pc, rtol=args.rtol)  # warm-up
        best = None
        for _ in range(3):
            res, _, cpu = timed(lambda pc=pc: pdesolve.solve(
                system, method="petsc_cg", pc=pc, rtol=args.rtol, true_residual_history=True))
            t = res.info["setup_time"] + res.info["solve_time"]
            if best is None or t < best[0]:
                best = (t, res, cpu)
        rows.append(row(source, n, f"petsc_cg_{pc}", best[1], system, x_star, best[2]))
        histories[(source, f"petsc_cg_{pc}")] = timed_history(best[1], best[0])
    pinn_kw = {"pc": {"name": "pinn_correction", **PINN_CORRECTOR}, "nu": 4,
               "maxiter": 5000, "max_time": args.max_time, "max_time_clock": "process"}
    hybrids = {
        "hybrid_coarse_grid": ({"pc": "coarse_grid", "nu": 2}, None),
        "hybrid_pinn": (pinn_kw, None),
        "gauss_seidel_only": ({"pc": "none", "nu": 4, "maxiter": 200}, None),
        "hybrid_coarse_grid+tl_x0": ({"pc": "coarse_grid", "nu": 2}, "pinn_transfer"),
        "hybrid_pinn+tl_x0": (pinn_kw, "pinn_transfer"),
    }  # fmt: skip
    for label, (kw, x0_from) in hybrids.items():
        uses_pinn = kw["pc"] not in ("coarse_grid", "none")
        if (not pinn_hybrid and uses_pinn) or (not tl_x0 and x0_from):
            continue
        kw = {"maxiter": 500, **kw}
        extra = {"nu": kw["nu"]}
        if x0_from is not None:
            if x0_from not in pinns:
                continue
            ckpt, train, train_cpu, pre, pre_cpu = pinns[x0_from]
            kw["initial_checkpoint"] = str(ckpt)
            extra.update(train_time=train, train_cpu=train_cpu, pretrain_time=pre,
                         pretrain_cpu=pre_cpu)
        res, _, cpu = timed(lambda kw=kw: pdesolve.solve(system, method="hybrid",
                                                         rtol=args.rtol, **kw))
        alphas = res.info["alphas"]
        r = row(source, n, label, res, system, x_star, cpu,
                correct_time=res.info["correct_time"],
                mean_alpha=float(np.mean(alphas)) if alphas else float("nan"))
        r.update({k: v for k, v in extra.items() if k != "nu"})
        r["nu"] = kw["nu"]
        rows.append(r)
        histories[(source, label)] = timed_history(res, r["total_time"])
        log(f"{source} {n}² {label}: {res.iterations} its, {r['total_time']:.2f}s wall "
            f"({cpu:.2f}s CPU), converged={res.converged}"
            f"{' (time cap)' if res.info['time_limit'] else ''}")
    return histories, system, x_star


def parse(value: str):
    """A CSV cell back to bool / int / float / str."""
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read_rows(path) -> list[dict]:
    return [{k: parse(v) for k, v in r.items() if v != ""} for r in read_csv(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32² and 64², short training")
    parser.add_argument("--n", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--max-time", type=float, default=150.0,
                        help="cap [CPU seconds of this process] per hybrid-PINN solve")
    parser.add_argument("--full-upto", type=int, default=256,
                        help="above this n: hybrid-PINN only on polynomial and "
                             "multifrequency_modulated, and no +tl_x0 runs (compute budget)")
    parser.add_argument("--no-pinn", action="store_true",
                        help="no PINN training (pure-PINN rows, +tl_x0 hybrids, transfer, "
                             "F-principle): for a second process on other grid sizes")
    parser.add_argument("--report", action="store_true",
                        help="only merge results/rows_*.csv (+ transfer.csv, fprinciple.csv) "
                             "into results.csv, results.md, scaling.png")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        write_report(out, args)
        return
    torch.set_num_threads(1)
    ns = [32, 64] if args.quick else sorted(args.n)
    steps, pre_steps, log_every = (300, 150, 25) if args.quick else (2000, 1000, 50)
    rows: list[dict] = []
    transfer: list[dict] = []
    spectral: dict[str, SpectralMonitor] = {}
    start = time.perf_counter()
    rows_path = out / f"rows_n{'-'.join(map(str, ns))}.csv"

    def log(msg):
        print(f"[{time.perf_counter() - start:.0f}s] {msg}", flush=True)

    warm_up()
    with tempfile.TemporaryDirectory() as workdir:
        pinns = {}
        for case in ([] if args.no_pinn else args.sources):
            pinns[case] = train_pinns(case, steps, pre_steps, log_every, workdir, ns[0],
                                      transfer, spectral)
            log(f"PINNs for {case} trained")
        if transfer:
            write_rows(out / "transfer.csv", transfer)
        if "multifrequency" in spectral:
            mon = spectral["multifrequency"]
            write_bands(mon, out / "fprinciple.csv")
            plot_bands(mon, out / "fprinciple.png",
                       title=f"PINN error per DFT band, multifrequency (1,4,16), {ns[0]}²")
        for n in ns:
            histories = {}
            for source in args.sources:
                big = n > args.full_upto
                h, system, x_star = solve_grid(source, n, args, pinns.get(source, {}), rows, log,
                                               pinn_hybrid=not (big and source == "multifrequency"),
                                               tl_x0=not big)
                histories.update(h)
                if source in pinns:
                    rows.extend(pinn_rows(source, n, system, x_star, pinns[source], steps))
            plot_histories(histories, out / f"residual_vs_time_n{n}.png", n)
            write_rows(rows_path, rows)
            log(f"{n}² done")
    write_rows(rows_path, rows)
    write_report(out, args, total=time.perf_counter() - start)


def on_par_lines(rows, sources, ns) -> list[str]:
    by = {(r["source"], r["n"], r["method"]): r for r in rows}
    table = []
    for source in sources:
        for n in ns:
            cg = [by.get((source, n, f"petsc_cg_{pc}")) for pc in PCS]
            if any(c is None for c in cg):
                continue
            best = min(cg, key=lambda r: r["total_cpu"])
            plain = cg[0]
            for label in ("hybrid_coarse_grid", "hybrid_pinn", "hybrid_pinn+tl_x0"):
                h = by.get((source, n, label))
                if h is None:
                    continue
                conv = "yes" if h["converged"] else (
                    "**no** (time cap)" if h["time_limit"] else "**no**")
                table.append({
                    "source": source, "n": str(n), "method": label, "converged": conv,
                    "outer its": str(h["iterations"]), "time [s]": f"{h['total_time']:.3g}",
                    "CPU [s]": f"{h['total_cpu']:.3g}",
                    "× PETSc CG (no pc), CPU": f"{h['total_cpu'] / plain['total_cpu']:.1f}",
                    "× fastest PETSc CG, CPU": f"{h['total_cpu'] / best['total_cpu']:.1f}",
                    "fastest CG": best["method"],
                })  # fmt: skip
    return markdown_table(table, columns=ON_PAR).splitlines()


#: the columns of the "on par" table
ON_PAR = ["source", "n", "method", "converged", "outer its", "time [s]", "CPU [s]",
          "× PETSc CG (no pc), CPU", "× fastest PETSc CG, CPU", "fastest CG"]


#: the columns of the per-size tables
PER_SIZE = ["source", "method", "converged", "its/steps", "rel. residual", "setup", "solve",
            "total CPU", "train", "alg err", "rel L2 err"]


def write_report(out, args, total=None) -> None:
    """results.csv / results.md / scaling.png from every rows_*.csv in ``out`` (+ transfer.csv,
    fprinciple.csv when present)."""
    rows = [r for p in sorted(out.glob("rows_*.csv")) for r in read_rows(p)]
    if not rows:
        raise SystemExit(f"no rows_*.csv in {out}")
    order = {s: i for i, s in enumerate(SOURCES)}
    rows.sort(key=lambda r: (r["n"], order.get(r["source"], 99)))
    write_rows(out / "results.csv", rows)
    plot_scaling(rows, out / "scaling.png")
    transfer = read_rows(out / "transfer.csv") if (out / "transfer.csv").exists() else []
    ns = sorted({r["n"] for r in rows})
    timing = f" The last run took {total:.0f} s wall." if total is not None else ""
    lines = [
        f"# PINNs as linear solvers — results ({', '.join(f'{n}²' for n in ns)}; rtol "
        f"{args.rtol:g} on the true relative residual)", "",
        "Generated by `python experiments/pinn_linear_solver/run.py` (here as two processes, "
        "`--n 128 256` and `--n 512 --no-pinn`, merged with `--report`)." + timing + " Torch "
        "and PETSc single-threaded, CPU, on a shared 2-core machine that other jobs were "
        "loading heavily (wall times inflated several-fold and unevenly); `CPU` is the "
        "process CPU time, the less load-sensitive measure, and the ratios below use it. Times "
        "in seconds; `train` = offline PINN training (apart from solve time; for `+tl_x0` the "
        "transfer-learned PINN's training, its pre-training on the neighbouring source is in "
        "results.csv/transfer.csv); the hybrid PINN corrector trains online, so its training "
        f"is inside `solve`. Hybrid-PINN solves are capped at {args.max_time:g} CPU seconds; "
        f"above {args.full_upto}² only the polynomial and modulated sources get a hybrid-PINN "
        "run and there are no `+tl_x0` runs (compute budget). `alg err` = ||x - A⁻¹b|| / "
        "||A⁻¹b||; `rel L2 err` is against the exact solution at the nodes (discretization "
        "error included).", "",
    ]  # fmt: skip
    for n in ns:
        table = [{
            "source": r["source"], "method": r["method"],
            "converged": str(r["converged"]) + (" (cap)" if r.get("time_limit") else ""),
            "its/steps": str(r["iterations"]), "rel. residual": f"{r['rel_residual']:.2e}",
            "setup": f"{r['setup_time']:.3f}", "solve": f"{r['solve_time']:.3f}",
            "total CPU": f"{r['total_cpu']:.3f}", "train": f"{r['train_time']:.1f}",
            "alg err": f"{r['alg_error']:.1e}", "rel L2 err": f"{r['rel_l2_error']:.2e}",
        } for r in rows if r["n"] == n]  # fmt: skip
        lines += [f"## {n}²", "", *markdown_table(table, columns=PER_SIZE).splitlines(), ""]
    if transfer:
        lines += ["## Transfer learning (steps / training seconds to a relative L2 error on the "
                  "test set; pre-training on the neighbouring source reported apart)", "",
                  *markdown_table([{
                      "source": t["source"], "neighbour": t["neighbour"],
                      "target": str(t["target_rel_l2"]), "cold steps": str(t["cold_steps"]),
                      "cold s": f"{t['cold_time']:.1f}", "warm steps": str(t["warm_steps"]),
                      "warm s": f"{t['warm_time']:.1f}", "pre-train s": f"{t['pretrain_time']:.1f}",
                  } for t in transfer]).splitlines(), ""]  # fmt: skip
    lines += ["## On par with PETSc CG? (time to rtol, setup + solve, CPU seconds)", ""]
    lines += on_par_lines(rows, list(SOURCES), ns)
    fp = out / "fprinciple.csv"
    if fp.exists():
        body = read_csv(fp)
        labels = [h for h in list(body[0])[1:] if not h.endswith("_relative")]
        lines += ["", f"## F-principle (cold PINN, multifrequency, {ns[0]}² grid; error per DFT "
                  "band relative to the same band of the exact solution; `nan`: the solution "
                  "has no content there — see fprinciple.csv for absolute band errors)", ""]
        m = len(body)
        lines += markdown_table([
            {"step": body[i]["step"],
             **{b: f"{float(body[i][f'{b}_relative']):.2e}" for b in labels}}
            for i in sorted({0, m // 8, m // 4, m // 2, m - 1})
        ]).splitlines()  # fmt: skip
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
