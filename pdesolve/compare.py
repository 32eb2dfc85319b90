"""``pdesolve compare``: registry problems × sizes × solvers under one stopping rule, as a report.

Each (problem, size, solver) is one row: set-up and solve time, iterations, the final true
relative residual, the error against the exact solution where one is known, and the total time
relative to the baseline (PETSc CG + GAMG by default). The report folder gets ``results.csv``,
``report.md`` and PNG plots (residual against iteration and against time per solver, time against
problem size on log-log axes with the fitted growth exponent). Every registered linear solver
takes part with its defaults unless it is listed with options or excluded, so solvers added later
join on their own. A solver that fails is a failed row with its error; the others still run.

Usage (the options are ``key=value`` pairs that replace the entries of
``configs/compare/default.yaml``)::

    pdesolve compare                                   # the default study, ~5 minutes on 2 cores
    pdesolve compare sizes=[31] out=my_report          # smaller
    pdesolve compare out=my_report resume=true         # finish an interrupted run
    pdesolve compare 'exclude=[hybrid,dcdm]' strict=true

Without ``resume=true`` an existing report folder is refused, never mixed.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdesolve.io import read_csv, unwritable_reason, write_csv
from pdesolve.resources import config_dir

CONFIG_DIR = config_dir()  # package data (pdesolve/configs)
FIELDS = (
    "problem", "size", "unknowns", "solver", "method", "options", "status", "converged",
    "reason", "iterations", "setup_time", "solve_time", "total_time", "relative_residual",
    "relative_error", "ratio_to_baseline", "error_message",
)  # fmt: skip


@dataclass(frozen=True)
class Task:
    problem: str
    size: int
    label: str
    method: str
    options: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.problem, str(self.size), self.label)


def load_config(overrides: list[str]) -> dict[str, Any]:
    """The compare configuration: the default file with ``key=value`` overrides."""
    from omegaconf import OmegaConf

    base = OmegaConf.load(CONFIG_DIR / "compare" / "default.yaml")
    try:
        extra = OmegaConf.from_dotlist(overrides)
    except Exception as exc:  # omegaconf's grammar errors
        raise SystemExit(f"pdesolve compare: cannot parse {overrides}: {exc}") from None
    unknown = sorted(set(extra) - set(base))
    if unknown:
        raise SystemExit(
            f"pdesolve compare: unknown option {unknown[0]!r}; options: {', '.join(base)}"
        )
    config = OmegaConf.to_container(base, resolve=True)
    config.update(OmegaConf.to_container(extra, resolve=True))  # a given key replaces the default
    return config


def tasks(config: dict[str, Any]) -> list[Task]:
    """Every (problem, size, solver) row of the study, in order."""
    import pdesolve

    exclude = set(config.get("exclude") or [])
    variants = dict(config.get("solvers") or {})
    listed = {spec["solver"] for spec in variants.values()}
    for name in pdesolve.list_solvers():  # solvers registered later take part with defaults
        if name not in listed:
            variants[name] = {"solver": name}
    unknown = listed - set(pdesolve.list_solvers())
    if unknown:
        raise SystemExit(
            f"pdesolve compare: unknown solver {sorted(unknown)[0]!r}; known solvers: "
            f"{', '.join(pdesolve.list_solvers())}"
        )
    out = []
    for problem in config["problems"]:
        for size in config["sizes"]:
            for label, spec in variants.items():
                if label in exclude or spec["solver"] in exclude:
                    continue
                options = {k: v for k, v in spec.items() if k != "solver"}
                out.append(Task(problem, int(size), label, spec["solver"], options))
    return out


def problem_config(problem: str) -> Path:
    """The file ``configs/problem/<problem>.yaml``, or a clear error listing the known ones."""
    path = CONFIG_DIR / "problem" / f"{problem}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise SystemExit(f"pdesolve compare: unknown problem config {problem!r}; known: {known}")
    return path


def make_system(problem: str, size: int, overrides: dict[str, Any], seed: int) -> Any:
    """The linear system of problem config ``configs/problem/<problem>.yaml`` at size ``n``."""
    from omegaconf import OmegaConf

    import pdesolve

    path = problem_config(problem)
    cfg = OmegaConf.merge({"seed": seed}, {"problem": OmegaConf.load(path)})
    params = OmegaConf.to_container(cfg.problem, resolve=True)
    params.update(overrides or {})
    params["n"] = size
    name = params.pop("name")
    return pdesolve.get_problem(name, **params).discretize()


def run_task(task: Task, system: Any, rtol: float) -> tuple[dict[str, Any], np.ndarray]:
    """One row (and its residual history) for ``task`` on ``system``."""
    import pdesolve

    row: dict[str, Any] = dict.fromkeys(FIELDS, "")
    row |= {
        "problem": task.problem, "size": task.size, "unknowns": system.size,
        "solver": task.label, "method": task.method, "options": _describe(task.options),
    }  # fmt: skip
    try:
        options = {"rtol": rtol, **task.options}
        result = pdesolve.solve(system, method=task.method, **options)
    except Exception as exc:  # a crashing solver is a failed row; the study goes on
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        row.update({"status": "failed", "error_message": message})
        return row, np.array([])
    errors = result.info.get("error") or {}
    setup = float(result.info.get("setup_time", 0.0))
    solve = float(result.info.get("solve_time", 0.0))
    row.update({
        "status": "ok" if result.converged else "not converged", "converged": result.converged,
        "reason": result.reason.name,
        "iterations": result.iterations, "setup_time": setup, "solve_time": solve,
        "total_time": setup + solve,
        "relative_residual": system.residual_norm(result.x) / max(system.b_norm, 1e-300),
        "relative_error": errors.get("relative_l2", float("nan")), "error_message": "",
    })  # fmt: skip
    return row, np.asarray(result.residual_norms) / max(system.b_norm, 1e-300)


def _warm_up() -> None:
    """Initialise PETSc and torch before anything is timed (the first use costs ~0.3 s)."""
    import pdesolve

    system = pdesolve.get_problem("poisson", dim=2, n=7).discretize()
    pdesolve.solve(system, method="petsc_cg", pc="gamg")
    pdesolve.solve(system, method="dcdm", model="identity")


def _describe(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return read_csv(path) if path.is_file() else []


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    write_csv(path, rows, columns=FIELDS)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def add_ratios(rows: list[dict[str, Any]], baseline: str) -> None:
    """``ratio_to_baseline``: total time over the baseline's on the same problem and size."""
    base = {(r["problem"], str(r["size"])): _float(r.get("total_time"))
            for r in rows if r["solver"] == baseline and r["status"] == "ok"}  # fmt: skip
    for r in rows:
        ref = base.get((r["problem"], str(r["size"])), float("nan"))
        total = _float(r.get("total_time"))
        r["ratio_to_baseline"] = total / ref if ref > 0 and r["status"] == "ok" else float("nan")


def growth_exponent(sizes: list[float], times: list[float]) -> float:
    """The least-squares slope of log(time) against log(unknowns)."""
    pairs = [(math.log(s), math.log(t)) for s, t in zip(sizes, times, strict=True)
             if s > 0 and t > 0]  # fmt: skip
    if len(pairs) < 2:
        return float("nan")
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def write_report(folder: Path, rows: list[dict[str, Any]], histories: dict, config: dict) -> None:
    """``report.md`` and the PNG plots from the rows (and the histories of this run)."""
    from pdesolve.io import markdown_table
    from pdesolve.plotting import pyplot, save_figure

    plt = pyplot()

    lines = [
        "# pdesolve compare", "",
        f"One stopping rule for every solver: ||b - A x|| <= {config['rtol']:g} ||b|| on the true "
        f"residual. Times in seconds (set-up and solve reported apart), one process; ratio = "
        f"total time / {config['baseline']}'s on the same system (< 1: faster). Machine load is "
        "not controlled: compare ratios within one run.", "",
    ]  # fmt: skip
    keep = ("solver", "status", "iterations", "setup_time", "solve_time", "total_time",
            "relative_residual", "relative_error", "ratio_to_baseline")  # fmt: skip
    for problem in dict.fromkeys(r["problem"] for r in rows):
        for size in dict.fromkeys(str(r["size"]) for r in rows if r["problem"] == problem):
            group = [r for r in rows if r["problem"] == problem and str(r["size"]) == size]
            unknowns = group[0]["unknowns"]
            lines += [f"## {problem}, n = {size} ({unknowns} unknowns)", ""]
            table = []
            for r in sorted(group, key=lambda r: (r["status"] != "ok", _float(r["total_time"]))):
                entry = {k: r.get(k, "") for k in keep}
                for k in keep[2:]:
                    entry[k] = _float(entry[k]) if entry[k] not in ("", None) else ""
                if r["status"] == "failed":
                    entry["status"] = f"failed: {r.get('error_message', '')[:80]}"
                elif r["status"] != "ok":
                    entry["status"] = f"not converged ({r.get('reason', '')})"
                table.append(entry)
            lines += [markdown_table(table), ""]
            fastest = next((t for t in table if t["status"] == "ok"), None)
            if fastest is not None:
                lines += [f"Fastest to the tolerance: **{fastest['solver']}**.", ""]
    # time against size, with the growth exponent per solver
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)
    exponents = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        for label in dict.fromkeys(r["solver"] for r in rows):
            ok = [r for r in rows if r["problem"] == problem and r["solver"] == label
                  and r["status"] == "ok" and r.get("converged") in (True, "True")]  # fmt: skip
            if len(ok) < 2:
                continue
            sizes = [_float(r["unknowns"]) for r in ok]
            times = [_float(r["total_time"]) for r in ok]
            slope = growth_exponent(sizes, times)
            exponents.append({"problem": problem, "solver": label, "exponent": slope})
            ax.loglog(sizes, times, marker="o", label=f"{problem}/{label} (p={slope:.2f})")
    ax.set_xlabel("unknowns")
    ax.set_ylabel("total time [s]")
    ax.set_title("time to the tolerance against size (time ~ N^p)")
    if exponents:
        ax.legend(fontsize=6, ncol=2)
        lines += ["## Growth of the total time with the number of unknowns", "",
                  "Fitted exponent p of time ~ N^p (converged runs, all sizes).", "",
                  markdown_table(exponents), ""]  # fmt: skip
    save_figure(fig, folder / "time_vs_size.png", dpi=120)
    # residual histories of this run, per problem at its largest size
    for problem in dict.fromkeys(r["problem"] for r in rows):
        sized = [k for k in histories if k[0] == problem]
        if not sized:
            continue
        largest = max(int(k[1]) for k in sized)
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
        for axis in (left, right):
            axis.set_prop_cycle(color=plt.cm.tab20.colors)
        for key, (norms, setup, solve) in histories.items():
            if key[0] != problem or int(key[1]) != largest or len(norms) < 2:
                continue
            its = np.arange(len(norms))
            left.semilogy(its, norms, label=key[2])
            t = setup + solve * its / max(len(norms) - 1, 1)
            right.loglog(np.maximum(t, 1e-6), norms, label=key[2])
        left.set_xlabel("iteration")
        right.set_xlabel("time [s] (set-up included; solve time spread evenly)")
        for axis in (left, right):
            axis.set_ylabel("||b - A x|| / ||b||")
            axis.axhline(config["rtol"], color="k", lw=0.5, ls="--")
        left.legend(fontsize=7)
        fig.suptitle(f"{problem}, n = {largest}")
        name = f"residuals_{problem}.png"
        save_figure(fig, folder / name, dpi=120)
        lines += [f"![residuals, {problem}]({name})", ""]
    lines += ["![time against size](time_vs_size.png)", ""]
    (folder / "report.md").write_text("\n".join(lines))


def compare(config: dict[str, Any], progress: bool = True) -> tuple[Path, list[dict[str, Any]]]:
    """Run the study described by ``config``; returns the report folder and its rows."""
    import torch
    from tqdm.auto import tqdm

    folder = Path(config["out"] or time.strftime("outputs/compare/%Y-%m-%d_%H-%M-%S"))
    results = folder / "results.csv"
    if folder.exists() and any(folder.iterdir()) and not config["resume"]:
        raise SystemExit(
            f"pdesolve compare: the report folder {folder} exists; pass resume=true to finish "
            "that run, or out=<another folder>"
        )
    all_tasks = tasks(config)  # unknown names fail here, before any work
    for problem in config["problems"]:
        problem_config(problem)
    reason = unwritable_reason(folder)
    if reason is not None:
        raise SystemExit(f"pdesolve compare: cannot write to the report folder {folder}: {reason}")
    folder.mkdir(parents=True, exist_ok=True)
    rows = _read_rows(results)
    done = {(r["problem"], str(r["size"]), r["solver"]) for r in rows}
    todo = [t for t in all_tasks if t.key not in done]
    histories: dict[tuple[str, str, str], tuple[np.ndarray, float, float]] = {}
    torch.set_num_threads(int(config["threads"]))
    _warm_up()
    systems: dict[tuple[str, int], Any] = {}
    for task in tqdm(todo, desc="compare", disable=not progress):
        key = (task.problem, task.size)
        if key not in systems:
            systems.clear()  # one system in memory at a time
            systems[key] = make_system(task.problem, task.size,
                                       config.get("problem_options", {}).get(task.problem, {}),
                                       int(config["seed"]))  # fmt: skip
        row, norms = run_task(task, systems[key], float(config["rtol"]))
        rows.append(row)
        if row["status"] != "failed":
            histories[task.key] = (norms, row["setup_time"], row["solve_time"])
        add_ratios(rows, config["baseline"])
        _write_rows(results, rows)  # after every row: an interrupted run resumes from here
    add_ratios(rows, config["baseline"])
    _write_rows(results, rows)
    write_report(folder, rows, histories, config)
    return folder, rows


def main(argv: list[str] | None = None) -> int:
    """Console entry: ``pdesolve compare [key=value ...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        defaults = CONFIG_DIR / "compare" / "default.yaml"
        print(f"{__doc__}\nThe options and their defaults ({defaults}):\n\n{defaults.read_text()}")
        return 0
    config = load_config(argv)
    try:
        folder, rows = compare(config)
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        return 1
    failed = [r for r in rows if r["status"] == "failed"]
    unconverged = sum(r["status"] == "not converged" for r in rows)
    print(f"{len(rows)} rows ({len(failed)} failed, {unconverged} not converged) in {folder}: "
          "results.csv, report.md, *.png")
    for r in failed:
        print(f"  failed: {r['problem']} n={r['size']} {r['solver']}: {r['error_message']}")
    return 1 if failed and config["strict"] else 0
