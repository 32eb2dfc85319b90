"""The Hydra command line: ``pdesolve problem=<name> solver=<name> [key=value ...]``.

Each run writes ``result.json`` (and ``solution.vtu`` when the problem has a grid or mesh) into
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

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
RESULT_KEYS = (
    "problem", "solver", "sizes", "converged", "reason", "iterations", "residual_norms",
    "final_residual_norm", "relative_residual_norm", "errors", "timings", "versions", "seed",
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


def run(cfg: DictConfig, output_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Build the problem, discretize it, solve it and (on rank 0) write the results.

    Returns the ``result.json`` content.
    """
    if cfg.get("study") is not None:  # a training study (e.g. +experiment=imbalance_digits)
        from pdesolve.train.study import run_study

        return run_study(cfg, output_dir)
    import torch

    import pdesolve
    from pdesolve.io import write_json, write_solution_vtu

    seed = int(cfg.get("seed", 0))
    np.random.seed(seed)  # noqa: NPY002 - seeds legacy global-RNG users too
    torch.manual_seed(seed)
    problem_cfg = _container(cfg.problem)
    solver_cfg = _container(cfg.solver)
    problem_name = problem_cfg.pop("name")
    solver_name = solver_cfg.pop("name")
    problem = pdesolve.get_problem(problem_name, **problem_cfg)
    t0 = time.perf_counter()
    try:
        system = problem.discretize()
    except NotImplementedError:  # e.g. inverse problems: no linear system to write or compare
        system = None
    discretize_time = time.perf_counter() - t0
    problem_level = pdesolve.solvers.SOLVERS.get(solver_name).solves_problems
    if problem_level:
        # PINNs and inverse-problem solvers take the problem itself; a PINN's x lives on the grid
        result = pdesolve.solve(problem, method=solver_name, **solver_cfg)
    elif system is None:
        raise ValueError(
            f"problem {problem_name!r} has no linear system for solver {solver_name!r}"
        )
    else:
        result = pdesolve.solve(system, method=solver_name, **solver_cfg)
    on_system = system is not None and np.shape(result.x) == (system.size,)
    # a relative residual of ||b - A x|| only means something for solvers of the linear system
    b_norm = system.b_norm if on_system and not problem_level else 0.0
    errors = result.info.get("error")
    if errors is None and "relative_error" in result.info:  # inverse problems: error to the truth
        errors = {"relative_error": float(result.info["relative_error"])}
    if on_system and errors is None:
        errors = system.error_norms(result.x)
    if on_system and hasattr(problem, "fem_errors"):
        errors = {**(errors or {}), **problem.fem_errors(system, result.x)}
    record = {
        "problem": {"name": problem_name, **problem.describe(), **problem_cfg},
        "solver": {"name": solver_name, **solver_cfg},
        "sizes": {"unknowns": int(np.size(result.x)),
                  "nonzeros": int(system.A.nnz) if system is not None else None,
                  "ranks": int(result.info.get("ranks", 1))},
        "converged": bool(result.converged),
        "reason": result.reason.name,
        "iterations": int(result.iterations),
        "residual_norms": result.residual_norms.tolist(),
        "final_residual_norm": result.final_residual,
        "relative_residual_norm": result.final_residual / b_norm if b_norm else None,
        "errors": errors,
        "timings": {"discretize": discretize_time,
                    "setup": float(result.info.get("setup_time", 0.0)),
                    "solve": float(result.info.get("solve_time", result.wall_time)),
                    "total": discretize_time + result.wall_time},
        "versions": versions(),
        "seed": seed,
    }  # fmt: skip
    if output_dir is not None and mpi_rank() == 0:
        out = Path(output_dir)
        write_json(out / "result.json", record)
        if cfg.get("write_solution", True) and on_system and system.geometry is not None:
            write_solution_vtu(out / "solution.vtu", system, result.x)
    return record


def _summary(record: dict[str, Any], output_dir: str | None) -> str:
    err = record["errors"]
    err_text = f", max error {err['max']:.3e}" if err and "max" in err else ""
    rel = record["relative_residual_norm"]
    res_text = f"relative residual {rel:.3e}" if rel is not None else "no linear system"
    return (
        f"{record['problem']['name']} ({record['sizes']['unknowns']} unknowns) with "
        f"{record['solver']['name']}: {record['reason']} after {record['iterations']} iterations, "
        f"{res_text}{err_text}, "
        f"solve {record['timings']['solve']:.3f} s"
        + (f"\nresults in {output_dir}" if output_dir else "")
    )


def _hydra_app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    output_dir = HydraConfig.get().runtime.output_dir if mpi_rank() == 0 else None
    record = run(cfg, output_dir)
    if mpi_rank() == 0:
        from pdesolve.train.study import study_summary

        print((study_summary if "study" in record else _summary)(record, output_dir))


def main() -> None:
    """Console-script entry point (``pdesolve``, ``python -m pdesolve``)."""
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
