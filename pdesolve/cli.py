"""The Hydra command line: ``pdesolve problem=<name> solver=<name> [key=value ...]``.

Three kinds of run, chosen explicitly by the config group given: ``solver=<name>`` solves the
problem's linear system, ``fit=<name>`` trains a model of its solution (``fit=pinn``) and
``recover=<name>`` reconstructs the unknown of an inverse problem (``recover=firenet``). Each run
writes ``result.json`` (and ``solution.vtu`` when there are values on a grid or mesh) into
Hydra's output folder. Under ``mpiexec -n N`` the PETSc solve is distributed and only rank 0
writes. ``run(cfg, output_dir)`` does the work without Hydra's launcher (used by tests and scripts).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pdesolve.io import versions
from pdesolve.resources import config_dir

CONFIG_DIR = config_dir()  # package data (pdesolve/configs)
#: the three kinds of run and the config group that picks each one's method
KINDS = {"solve": "solver", "fit": "fit", "recover": "recover"}
RESULT_KEYS = (
    "kind", "problem", "solver", "sizes", "converged", "reason", "iterations", "residual_norms",
    "final_residual_norm", "relative_residual_norm", "errors", "timings", "versions", "seed",
)  # fmt: skip
FIT_RESULT_KEYS = (
    "kind", "problem", "method", "sizes", "status", "success", "criteria", "steps", "final_loss",
    "best_loss", "history_steps", "loss_history", "test_error", "residual_rms", "errors",
    "timings", "versions", "seed",
)  # fmt: skip
RECOVER_RESULT_KEYS = (
    "kind", "problem", "method", "sizes", "status", "success", "stopping_quantity", "tolerance",
    "stopping_checks", "stopping_history", "iterations", "misfit_iterations", "misfit_norms",
    "objective", "objective_gap", "relative_error", "timings", "versions", "seed",
)  # fmt: skip


def mpi_rank() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under mpiexec)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_LOCALRANKID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def _container(cfg: DictConfig | dict) -> dict[str, Any]:
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def run_kind(cfg: DictConfig | dict) -> str:
    """``solve``, ``fit`` or ``recover``: which method group the config selects (``fit=<name>``,
    ``recover=<name>``; otherwise the linear solver of ``solver=<name>``)."""
    chosen = [kind for kind in ("fit", "recover") if cfg.get(kind) is not None]
    if len(chosen) > 1:
        raise ValueError("choose one of fit=<method> and recover=<method>, not both")
    return chosen[0] if chosen else "solve"


def _names(kind: str) -> str:
    import pdesolve

    lists = {"solve": pdesolve.list_solvers, "fit": pdesolve.list_fit_methods,
             "recover": pdesolve.list_recovery_methods}  # fmt: skip
    return ", ".join(lists[kind]())


def _check_method(kind: str, name: str) -> None:
    """A clear error for a method name that is not one of this kind, naming the right group."""
    for other in KINDS:
        if other != kind and name in _names(other).split(", "):
            raise ValueError(
                f"{name!r} is a {KINDS[other]} method, not a {KINDS[kind]} method: select it with "
                f"{KINDS[other]}={name}"
                + (" (and no fit=/recover= group)" if other == "solve" else "")
            )
    if name not in _names(kind).split(", "):
        raise ValueError(f"unknown {KINDS[kind]} method {name!r}; known: {_names(kind)}")


def _check_problem_kind(kind: str, problem: Any, name: str) -> None:
    """Clear errors, before any work, for a problem handed to the wrong kind of method."""
    from pdesolve.problems.inverse import InverseProblem

    inverse = isinstance(problem, InverseProblem)
    if inverse and kind != "recover":
        raise ValueError(
            f"problem {name!r} is an inverse problem (y = A x + e): choose a recovery method with "
            f"recover=<name> (known: {_names('recover')})"
        )
    if not inverse and kind == "recover":
        raise ValueError(
            f"problem {name!r} is a PDE problem, not an inverse problem: solve its linear system "
            f"with solver=<name> (known: {_names('solve')}) or fit it with fit=<name> "
            f"(known: {_names('fit')})"
        )


def _finite(values: Any) -> list[float | None]:
    """Plain floats for JSON, None where a value is NaN or Inf (not measured)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _number(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


TOP_LEVEL_KEYS = ("problem", "solver", "fit", "recover", "seed", "write_solution", "study",
                  "hydra", "experiment")  # fmt: skip


class ConfigError(ValueError):
    """A configuration value or key that cannot work, found before any work starts."""


def check_config(cfg: DictConfig, choices: Any = None) -> None:
    """Refuse unknown top-level keys and values whose type contradicts the group's defaults
    (e.g. ``problem.n=abc`` where the default ``n`` is an integer), naming key and allowed values.
    ``choices`` (Hydra's group choices) says which config file each group came from.
    """
    unknown = [key for key in cfg if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(
            f"unknown top-level key {unknown[0]!r}; the known ones are {', '.join(TOP_LEVEL_KEYS)} "
            "(groups are chosen as problem=<name>, solver=<name>, fit=<name>, recover=<name>)"
        )
    for group in ("problem", "solver", "fit", "recover"):
        node = cfg.get(group)
        if node is None or "name" not in node:
            continue
        chosen = (choices or {}).get(group)
        defaults = _group_defaults(group, node, chosen)
        for key, value in _container(node).items():
            default = defaults.get(key)
            expected = _expected_type(default)
            if expected is None or value is None or _fits(value, expected):
                continue
            raise ConfigError(
                f"{group}.{key}={value!r}: expected {expected.__name__} (its default is "
                f"{default!r})"
            )


def _group_defaults(group: str, node: Any, chosen: str | None) -> dict[str, Any]:
    """The defaults of the config file ``chosen`` in ``group`` (else the one file whose ``name``
    is the node's; none when that is ambiguous)."""
    paths = [CONFIG_DIR / group / f"{chosen}.yaml"] if chosen else [
        p for p in sorted((CONFIG_DIR / group).glob("*.yaml"))
        if OmegaConf.load(p).get("name") == node.get("name")
    ]  # fmt: skip
    if len(paths) != 1 or not paths[0].is_file():
        return {}
    loaded = OmegaConf.load(paths[0])
    return {k: loaded[k] for k in loaded if not OmegaConf.is_interpolation(loaded, k)}


def _expected_type(default: Any) -> type | None:
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return None


def _fits(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def run(cfg: DictConfig, output_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Build the problem, run the selected kind of method on it and (on rank 0) write the results.

    The kind is explicit: ``fit=<name>`` trains (``pdesolve.fit``), ``recover=<name>``
    reconstructs (``pdesolve.recover``), otherwise ``solver=<name>`` solves the discretized linear
    system (``pdesolve.solve``); the ``solver`` group is unused by the first two. Each kind writes
    its own ``result.json`` fields (``RESULT_KEYS``, ``FIT_RESULT_KEYS``, ``RECOVER_RESULT_KEYS``).
    Returns the ``result.json`` content.
    """
    check_config(cfg)
    if cfg.get("study") is not None:  # a training study (e.g. +experiment=imbalance_digits)
        from pdesolve.train.study import run_study

        return run_study(cfg, output_dir)
    import torch

    import pdesolve
    from pdesolve.io import write_json, write_solution_vtu

    kind = run_kind(cfg)
    seed = int(cfg.get("seed", 0))
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global-RNG users too
    torch.manual_seed(seed)
    problem_cfg = _container(cfg.problem)
    method_cfg = _container(cfg[KINDS[kind]])
    problem_name = problem_cfg.pop("name")
    method_name = method_cfg.pop("name")
    _check_method(kind, method_name)
    problem = pdesolve.get_problem(problem_name, **problem_cfg)
    _check_problem_kind(kind, problem, problem_name)
    problem_record = {"name": problem_name, **problem.describe(), **problem_cfg}
    system, discretize_time = None, 0.0
    if kind != "recover":
        t0 = time.perf_counter()
        try:
            system = problem.discretize()
        except NotImplementedError as exc:
            if kind == "solve":
                raise ValueError(
                    f"problem {problem_name!r} has no linear system for solver {method_name!r} "
                    f"({exc}); train a model of it with fit=<name> (known: {_names('fit')})"
                ) from exc
        discretize_time = time.perf_counter() - t0
    values = None
    if kind == "solve":
        result = pdesolve.solve(system, method=method_name, **method_cfg)
        values = result.x
        errors = result.info.get("error")
        if errors is None:
            errors = system.error_norms(result.x)
        if hasattr(problem, "fem_errors"):
            errors = {**(errors or {}), **problem.fem_errors(system, result.x)}
        record = {
            "kind": kind, "problem": problem_record, "solver": {"name": method_name, **method_cfg},
            "sizes": {"unknowns": int(np.size(result.x)), "nonzeros": int(system.A.nnz),
                      "ranks": int(result.info.get("ranks", 1))},
            "converged": bool(result.converged),
            "reason": result.reason.name,
            "iterations": int(result.iterations),
            "residual_norms": result.residual_norms.tolist(),
            "final_residual_norm": result.final_residual,
            "relative_residual_norm": (result.final_residual / system.b_norm
                                       if system.b_norm else None),
            "errors": errors,
            "timings": {"discretize": discretize_time,
                        "setup": float(result.info.get("setup_time", 0.0)),
                        "solve": float(result.info.get("solve_time", result.wall_time)),
                        "total": discretize_time + result.wall_time},
        }  # fmt: skip
    elif kind == "fit":
        result = pdesolve.fit(problem, method=method_name, **method_cfg)
        values = result.discrete_values
        errors = dict(result.discrete_errors) if result.discrete_errors else None
        if values is not None and hasattr(problem, "fem_errors"):
            errors = {**(errors or {}), **problem.fem_errors(system, values)}
        record = {
            "kind": kind, "problem": problem_record, "method": {"name": method_name, **method_cfg},
            "sizes": {"unknowns": int(np.size(values)) if values is not None else None,
                      "parameters": int(result.info.get("parameters", 0))},
            "status": result.status.value,
            "success": result.success,
            "criteria": [{"name": c.name, "target": c.target, "value": _number(c.value),
                          "met": c.met} for c in result.criteria],
            "steps": int(result.steps),
            "final_loss": _number(result.final_loss),
            "best_loss": _number(result.best_loss),
            "history_steps": [int(v) for v in result.history_steps],
            "loss_history": _finite(result.loss_history),
            "test_error": _number(result.test_error),
            "residual_rms": _number(result.residual_rms),
            "errors": errors,
            "timings": {"setup": result.setup_time, "train": result.train_time,
                        "total": result.wall_time},
        }  # fmt: skip
    else:
        result = pdesolve.recover(problem, method=method_name, **method_cfg)
        record = {
            "kind": kind, "problem": problem_record, "method": {"name": method_name, **method_cfg},
            "sizes": {"unknowns": int(np.size(result.coefficients)),
                      "measurements": int(problem.measurements.numel())},
            "status": result.status.value,
            "success": result.success,
            "stopping_quantity": result.stopping_quantity,
            "tolerance": result.tolerance,
            "stopping_checks": [int(v) for v in result.stopping_checks],
            "stopping_history": _finite(result.stopping_history),
            "iterations": int(result.iterations),
            "misfit_iterations": [int(v) for v in result.misfit_iterations],
            "misfit_norms": _finite(result.misfit_norms),
            "objective": _number(result.objective),
            "objective_gap": _number(result.objective_gap),
            "relative_error": _number(result.relative_error),
            "timings": {"setup": result.setup_time, "run": result.run_time,
                        "total": result.wall_time},
        }  # fmt: skip
    record.update({"versions": versions(), "seed": seed})
    if output_dir is not None and mpi_rank() == 0:
        out = Path(output_dir)
        write_json(out / "result.json", record)
        on_system = system is not None and values is not None and np.shape(values) == (system.size,)
        if cfg.get("write_solution", True) and on_system and system.geometry is not None:
            write_solution_vtu(out / "solution.vtu", system, values)
    return record


def _summary(record: dict[str, Any], output_dir: str | None) -> str:
    kind, problem = record["kind"], record["problem"]["name"]
    where = f"\nresults in {output_dir}" if output_dir else ""
    if kind == "fit":
        test = record["test_error"]
        test_text = f", test error {test:.3e}" if test is not None else ", no exact solution"
        return (
            f"{problem} fitted with {record['method']['name']}: {record['steps']} steps, final "
            f"loss {record['final_loss']:.3e}{test_text}, criterion {record['status']}, "
            f"train {record['timings']['train']:.3f} s{where}"
        )
    if kind == "recover":
        err = record["relative_error"]
        err_text = f", relative error {err:.3e}" if err is not None else ""
        stop = record["stopping_quantity"] or "no tolerance (fixed depth)"
        return (
            f"{problem} recovered with {record['method']['name']}: {record['iterations']} "
            f"iterations, stopping test on {stop}: {record['status']}{err_text}, "
            f"run {record['timings']['run']:.3f} s{where}"
        )
    err = record["errors"]
    err_text = f", max error {err['max']:.3e}" if err and "max" in err else ""
    rel = record["relative_residual_norm"]
    res_text = f"relative residual {rel:.3e}" if rel is not None else "b = 0"
    return (
        f"{problem} ({record['sizes']['unknowns']} unknowns) with "
        f"{record['solver']['name']}: {record['reason']} after {record['iterations']} iterations, "
        f"{res_text}{err_text}, "
        f"solve {record['timings']['solve']:.3f} s{where}"
    )


def _hydra_app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    output_dir = HydraConfig.get().runtime.output_dir if mpi_rank() == 0 else None
    try:
        check_config(cfg, HydraConfig.get().runtime.choices)
    except ConfigError as exc:
        print(f"pdesolve: {exc}", file=sys.stderr)
        sys.exit(2)
    record = run(cfg, output_dir)
    if mpi_rank() == 0:
        from pdesolve.train.study import study_summary

        print((study_summary if "study" in record else _summary)(record, output_dir))


def main() -> None:
    """Console-script entry point (``pdesolve``, ``python -m pdesolve``); ``pdesolve compare
    ...`` runs the comparison study (:mod:`pdesolve.compare`)."""
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        from pdesolve.compare import main as compare_main

        sys.exit(compare_main(sys.argv[2:]))
    import hydra

    scratch = None
    if mpi_rank() > 0:  # only rank 0 keeps a run folder; the others write into a scratch folder
        scratch = tempfile.mkdtemp(prefix="pdesolve-rank-")
        sys.argv += [f"hydra.run.dir={scratch}", "hydra.output_subdir=null",
                     "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]  # fmt: skip
    app = hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base=None)(
        _hydra_app
    )
    try:
        app()
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
