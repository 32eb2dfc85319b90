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


def process_rank() -> int:
    """This process's rank in a multi-process run: the MPI rank under ``mpiexec``, else the
    ``RANK`` that ``torchrun`` sets (0 for a plain run). Only rank 0 keeps a run folder."""
    rank = mpi_rank()
    if rank == 0 and mpi_size() == 1:
        rank = int(os.environ.get("RANK", "0") or 0)
    return rank


def mpi_size() -> int:
    """Processes of this run from the launcher's environment (1 when not under mpiexec)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        if var in os.environ:
            return int(os.environ[var])
    return 1


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
    module = sys.modules.get("pdesolve.problems.inverse")  # not loaded: no inverse problem
    inverse = module is not None and isinstance(problem, module.InverseProblem)
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


def check_output_folder(folder: str | os.PathLike, key: str = "hydra.run.dir") -> None:
    """Raise ``ConfigError`` naming the output folder when it cannot be created or written to;
    called before any work starts (nothing is left behind by the check)."""
    from pdesolve.io import unwritable_reason

    reason = unwritable_reason(folder)
    if reason is not None:
        raise ConfigError(f"cannot write to the output folder {str(folder)!r} ({key}): {reason}")


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


def config_text(cfg: DictConfig | dict, overrides: list[str] | None = None) -> str:
    """The resolved config of a run as YAML (the ``config.yaml`` written beside its result),
    headed by the command line's overrides when known."""
    head = f"# pdesolve {' '.join(overrides)}\n" if overrides is not None else ""
    return head + OmegaConf.to_yaml(cfg, resolve=True)


def _seed_torch(kind: str, method: str, problem: str, pc: Any, seed: int) -> None:
    """Seed torch's global generator, unless this run never needs torch: the modules of the
    method, its preconditioner and the problem are imported first (a learned one imports torch),
    and a classical solve whose modules did not import torch leaves it unloaded (an MPI rank
    then saves its memory)."""
    from pdesolve.fitting import FIT_METHODS
    from pdesolve.problems import PROBLEMS
    from pdesolve.recovery import RECOVERY_METHODS
    from pdesolve.solvers import PRECONDITIONERS, SOLVERS

    registry = {"solve": SOLVERS, "fit": FIT_METHODS, "recover": RECOVERY_METHODS}[kind]
    registry.get(method)
    if isinstance(pc, str) and pc in PRECONDITIONERS:
        PRECONDITIONERS.get(pc)
    if problem in PROBLEMS:
        PROBLEMS.get(problem)
    if kind != "solve" or "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def run(
    cfg: DictConfig, output_dir: str | os.PathLike | None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Build the problem, run the selected kind of method on it and (on rank 0) write the results.

    The kind is explicit: ``fit=<name>`` trains (``pdesolve.fit``), ``recover=<name>``
    reconstructs (``pdesolve.recover``), otherwise ``solver=<name>`` solves the discretized linear
    system (``pdesolve.solve``); the ``solver`` group is unused by the first two. Each kind writes
    its own ``result.json`` fields (``RESULT_KEYS``, ``FIT_RESULT_KEYS``, ``RECOVER_RESULT_KEYS``),
    and ``config.yaml`` (the resolved config, headed by ``overrides``) beside it. The output folder
    is checked before any work; when an earlier run's ``result.json`` is there, this run's files
    are numbered (``result-2.json``, ``config-2.yaml``, ...; see ``pdesolve.io.write_run_files``).
    Returns the ``result.json`` content.
    """
    check_config(cfg)
    if output_dir is not None and process_rank() == 0:
        check_output_folder(output_dir)
    if cfg.get("study") is not None:  # a training study (e.g. +experiment=imbalance_digits)
        from pdesolve.train.study import run_study

        return run_study(cfg, output_dir, config=config_text(cfg, overrides))
    import pdesolve
    from pdesolve.io import json_text, numbered, run_number, solution_mesh, write_run_files

    kind = run_kind(cfg)
    seed = int(cfg.get("seed", 0))
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global-RNG users too
    problem_cfg = _container(cfg.problem)
    method_cfg = _container(cfg[KINDS[kind]])
    problem_name = problem_cfg.pop("name")
    method_name = method_cfg.pop("name")
    _check_method(kind, method_name)
    _seed_torch(kind, method_name, problem_name, method_cfg.get("pc"), seed)
    parallel = None
    if mpi_size() > 1:  # one rank's failure ends all ranks with its message (pdesolve.parallel)
        from pdesolve import parallel

        problem = parallel.build_problem(lambda: pdesolve.get_problem(problem_name, **problem_cfg))
    else:
        problem = pdesolve.get_problem(problem_name, **problem_cfg)
    _check_problem_kind(kind, problem, problem_name)
    problem_record = {"name": problem_name, **problem.describe(), **problem_cfg}
    system, discretize_time, distributed = None, 0.0, None
    if kind == "solve" and parallel is not None and parallel.distributable(
        problem, method_name, method_cfg
    ):  # each rank assembles and holds its own rows only
        distributed = parallel.solve_distributed(problem, method_cfg)
        system = distributed["system"]
    elif kind != "recover":
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
        if distributed is not None:
            result, errors = distributed["result"], distributed["record"]["errors"]
        else:
            result = pdesolve.solve(system, method=method_name, **method_cfg)
            errors = result.info.get("error")
            if errors is None:
                errors = system.error_norms(result.x)
            if hasattr(problem, "fem_errors"):
                errors = {**(errors or {}), **problem.fem_errors(system, result.x)}
        values = result.x
        record = {
            "kind": kind, "problem": problem_record, "solver": {"name": method_name, **method_cfg},
            "sizes": {"unknowns": int(np.size(result.x)), "nonzeros": int(system.A.nnz),
                      "world_size": int(result.info.get("world_size", 1))},
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
        if method_name == "pinn" and output_dir is not None and not method_cfg.get("output_dir"):
            method_cfg["output_dir"] = str(output_dir)  # model, metrics and plots in the run folder
        result = pdesolve.fit(problem, method=method_name, **method_cfg)
        values = result.discrete_values
        errors = dict(result.discrete_errors) if result.discrete_errors else None
        if values is not None and hasattr(problem, "fem_errors"):
            errors = {**(errors or {}), **problem.fem_errors(system, values)}
        record = {
            "kind": kind, "problem": problem_record, "method": {"name": method_name, **method_cfg},
            "sizes": {"unknowns": int(np.size(values)) if values is not None else None,
                      "parameters": int(result.info.get("parameters", 0)),
                      "world_size": int(result.info.get("world_size", 1))},
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
    if distributed is not None:
        record.update({key: distributed["record"][key] for key in ("sizes", "timings")},
                      per_rank=distributed["record"]["per_rank"])
    record.update({"versions": versions(), "seed": seed})
    run_writers = {"result.json": lambda tmp: tmp.write_text(json_text(record)),
                   "config.yaml": lambda tmp: tmp.write_text(config_text(cfg, overrides))}
    if distributed is not None:  # every rank writes its piece of the solution
        output_dir = parallel.broadcast(output_dir)
        number = None
        if output_dir is not None and mpi_rank() == 0:
            number = run_number(write_run_files(output_dir, run_writers)["result.json"].name,
                                "result.json")
        number = parallel.broadcast(number)
        if output_dir is not None and cfg.get("write_solution", True):
            # the pieces carry the run's number too: an earlier run's solution stays intact
            distributed["write"](output_dir, numbered("solution", number))
        distributed["finish"]()
    elif output_dir is not None and process_rank() == 0:
        writers = dict(run_writers)
        on_system = system is not None and values is not None and np.shape(values) == (system.size,)
        if cfg.get("write_solution", True) and on_system and system.geometry is not None:
            import meshio

            mesh = solution_mesh(system, values)
            writers["solution.vtu"] = lambda tmp: meshio.write(tmp, mesh, file_format="vtu")
        write_run_files(output_dir, writers)
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

    hydra_cfg = HydraConfig.get()
    output_dir = hydra_cfg.runtime.output_dir if process_rank() == 0 else None
    try:
        check_config(cfg, hydra_cfg.runtime.choices)
        if output_dir is not None:
            check_output_folder(output_dir)
    except ConfigError as exc:
        print(f"pdesolve: {exc}", file=sys.stderr)
        sys.exit(2)
    record = run(cfg, output_dir, overrides=list(hydra_cfg.overrides.task))
    if process_rank() == 0 and "study" in record:
        from pdesolve.train.study import study_summary

        print(study_summary(record, output_dir))
    elif process_rank() == 0:
        print(_summary(record, output_dir))


def _prepare_command_line(args: list[str]) -> list[str]:
    """The command line ``args`` made safe before Hydra runs it (notes on stderr for changes).

    * The output folder is checked (a clear ``ConfigError`` instead of Hydra's traceback) and
      given explicitly, so that the run uses the folder checked (a time stamp resolved once).
    * A group chosen on the command line next to an experiment (``+experiment=dcdm2d
      solver=petsc_cg``) drops the experiment's settings that the new choice does not have.
    * Setting ``<path>.activation`` (any key with a ``<key>_options`` sibling) to another value
      drops the options of the old one, unless ``<path>.activation_options`` is given too.

    Command lines with other Hydra flags (``--help``, ``--cfg``, ...) are returned unchanged.
    """
    multirun = any(a in ("-m", "--multirun") for a in args)
    rest = [a for a in args if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in rest):
        return args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    # a sweep's values would not compose: its folder depends on the hydra.* settings alone
    composed = [a for a in rest if a.startswith("hydra.")] if multirun else rest
    cfg = _compose(composed)
    if cfg is None:
        message = _composition_error(composed)
        if message is not None:
            raise ConfigError(message)
    folder = OmegaConf.select(cfg, key) if cfg is not None else None
    if not isinstance(folder, str) or not folder:
        return args
    check_output_folder(folder, key)
    quoted = "'" + folder.replace("\\", "\\\\").replace("'", "\\'") + "'"
    extra = [] if multirun else _switch_overrides(cfg, rest)
    return [a for a in args if not a.startswith(key + "=")] + [f"{key}={quoted}", *extra]


def _compose(overrides: list[str]) -> DictConfig | None:
    """The config Hydra will compose from ``overrides`` (None where that fails: Hydra itself
    then reports the error, in its own words)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except Exception:
        return None
    finally:
        GlobalHydra.instance().clear()


def _composition_error(overrides: list[str]) -> str | None:
    """One line for the commonest composition errors of ``overrides`` (a key that does not
    exist, a config group option that does not exist), naming what exists; None otherwise."""
    import re

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            compose(config_name="config", overrides=overrides)
        return None
    except Exception as exc:
        error, cause = str(exc), str(exc.__cause__ or "")
    finally:
        GlobalHydra.instance().clear()
    missing = re.search(r"full_key: (\S+)", cause)
    failed = re.match(r"Could not override '([^']+)'", error)
    if missing and failed:
        parent, _, name = missing.group(1).rpartition(".")
        override = next((o for o in overrides if _override_key(o) == failed.group(1)), None)
        rest = [o for o in overrides if o != override]
        base = _compose(rest)
        node = OmegaConf.select(base, parent) if base is not None and parent else base
        if override is not None and isinstance(node, DictConfig):
            where = f"{parent}={node.get('name')}" if node.get("name") else parent or "the config"
            return (f"{override}: {where} has no key {name!r}; its keys: "
                    f"{', '.join(k for k in node if k != 'name')}")  # fmt: skip
    absent = re.search(r"Could not find '([^'/]+)/([^']+)'", error)
    if absent:
        group, option = absent.groups()
        known = re.findall(r"^\t(\S+)$", error.split("Config search path")[0], re.MULTILINE)
        hint = ""
        if group in KINDS.values():
            try:
                _check_method(next(k for k, g in KINDS.items() if g == group), option)
            except ValueError as wrong_kind:
                hint = f" ({wrong_kind})" if "select it with" in str(wrong_kind) else ""
        return (f"{group}={option}: no such {group} config; the known ones: "
                f"{', '.join(known)}{hint}")  # fmt: skip
    return None


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _switch_overrides(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """The overrides that drop the settings of a replaced choice (see _prepare_command_line)."""
    given = {_override_key(o) for o in overrides}
    extra: list[str] = []
    if any(_override_key(o) == "experiment" for o in overrides):
        for group in ("problem", "solver", "fit", "recover"):
            node = cfg.get(group)
            if group not in given or not isinstance(node, DictConfig):
                continue
            choice = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}")
            allowed = _allowed_keys(group, str(choice))
            if allowed is None:
                continue
            dropped = [k for k in node if k not in allowed and f"{group}.{k}" not in given]
            if dropped:
                extra += [f"~{group}.{k}" for k in dropped]
                print(f"pdesolve: {group}={node.get('name')} replaces the experiment's {group}: "
                      f"dropped its settings {', '.join(dropped)}", file=sys.stderr)  # fmt: skip
    for override in overrides:
        path = _override_key(override)
        options = f"{path}_options"
        if "." not in path or options in given or override.startswith("~"):
            continue
        current = OmegaConf.select(cfg, options, default=None)
        if not isinstance(current, DictConfig) or not current:
            continue
        before = _compose([o for o in overrides if o != override])
        old = OmegaConf.select(before, path, default=None) if before is not None else None
        if old is None or old == OmegaConf.select(cfg, path):
            continue
        extra.append(f"~{options}")
        print(f"pdesolve: {override}: dropped {options} "
              f"{OmegaConf.to_container(current)} that belong to {old!r} (give {options}=... "
              "for options of the new one)", file=sys.stderr)  # fmt: skip
    return extra


def _allowed_keys(group: str, choice: str) -> set[str] | None:
    """The keys the config ``<group>/<choice>.yaml`` (and, for problems, the registered problem's
    constructor) accept; None when unknown."""
    path = CONFIG_DIR / group / f"{choice}.yaml"
    if not path.is_file():
        return None
    loaded = OmegaConf.load(path)
    allowed = set(loaded)
    if group == "problem":
        import inspect

        import pdesolve
        from pdesolve.problems import PROBLEMS

        pdesolve.list_problems()
        if loaded.get("name") in PROBLEMS.names():
            allowed |= set(inspect.signature(PROBLEMS.get(loaded.name)).parameters)
    return allowed


def main() -> None:
    """Console-script entry point (``pdesolve``, ``python -m pdesolve``); ``pdesolve compare
    ...`` runs the comparison study (:mod:`pdesolve.compare`)."""
    if len(sys.argv) > 1 and sys.argv[1] == "compare":
        from pdesolve.compare import main as compare_main

        sys.exit(compare_main(sys.argv[2:]))
    import hydra

    if process_rank() == 0:
        try:
            sys.argv[1:] = _prepare_command_line(sys.argv[1:])
        except ConfigError as exc:
            print(f"pdesolve: {exc}", file=sys.stderr)
            sys.exit(2)
    scratch = None
    if process_rank() > 0:  # only rank 0 keeps a run folder; the others write into a scratch one
        scratch = tempfile.mkdtemp(prefix="pdesolve-rank-")
        sys.argv += [f"hydra.run.dir={scratch}", "hydra.output_subdir=null",
                     "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]  # fmt: skip
    app = hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base=None)(
        _hydra_app
    )
    try:
        app()
        if mpi_size() > 1:  # every rank finalizes PETSc here, together (see parallel.end)
            from pdesolve.parallel import end

            end()
    except SystemExit as exc:  # Hydra reports an error and exits: the other ranks must too
        if exc.code not in (0, None) and mpi_size() > 1:
            from pdesolve.parallel import abort_on_failure

            abort_on_failure(exc)
        raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
