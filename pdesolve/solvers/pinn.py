"""``method="pinn"``: a physics-informed network trained on the problem's strong-form residual.

The network, optimizer and training options are those of
:class:`pdesolve.train.pinn_trainer.PINNTrainer`; the solver adds the ``SolveResult`` contract:

* ``x``: the trained network at the problem's unknowns (grid interior nodes or free mesh nodes)
  when the problem can discretize itself, so it compares with the classical solvers; otherwise the
  network on the fixed test set.
* ``reason``: ``CONVERGED_ITS`` when the training budget ran out; ``CONVERGED_RTOL`` /
  ``CONVERGED_ATOL`` when the RMS PDE residual on the monitor set fell below
  ``max(rtol · RMS(f), atol)`` first (checked every ``log_every`` steps).
* ``residual_norms``: that RMS residual at step 0 and every ``log_every`` steps (last = final).
* ``info``: ``history`` (step, phase, train_loss, residual_rms, relative_l2, eigenvalue, lr, time),
  ``error`` (grid errors and ``relative_l2_test`` on the fixed 10,000-point test set),
  ``config``, ``parameters``, ``train_time``, ``checkpoint`` (when ``output_dir`` is given).

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=1, n=31, solution="sine")
>>> result = pdesolve.solve(problem, method="pinn", model="mlp", width=16, depth=2,
...                         activation="tanh", steps=300, batch=64, log_every=100,
...                         optimizer={"name": "adam", "lr": 1e-2}, progress=False)
>>> result.reason.name, result.x.shape, len(result.residual_norms)
('CONVERGED_ITS', (31,), 4)
>>> result.info["error"]["relative_l2_test"] < 0.05
True
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pdesolve.linalg.system import LinearSystem
from pdesolve.nn.mlp import count_parameters
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult

_REASONS = {"its": ConvergedReason.CONVERGED_ITS, "rtol": ConvergedReason.CONVERGED_RTOL,
            "atol": ConvergedReason.CONVERGED_ATOL}  # fmt: skip
_MODEL_KEYS = ("width", "depth", "blocks", "activation", "activation_options")


def unknown_points(system: LinearSystem) -> np.ndarray:
    """Coordinates of a system's unknowns: grid interior nodes or free mesh nodes."""
    geometry = system.geometry
    if hasattr(geometry, "free"):
        return np.asarray(geometry.points)[geometry.free]
    return np.asarray(geometry.points)


@SOLVERS.register("pinn")
class PINNSolver(Solver):
    """Physics-informed neural network solver (strong form, RAF or classical activations).

    ``model`` is a name (``resnet``, ``mlp``) or a dict as in ``configs/model/*.yaml``; the flat
    options ``width``, ``depth``, ``blocks``, ``activation``, ``activation_options`` override its
    entries. ``steps`` defaults to ``maxiter``. Everything else goes to ``PINNTrainer``.
    """

    solves_problems = True

    def __init__(
        self,
        rtol: float = 0.0,
        atol: float = 0.0,
        maxiter: int = 1000,
        *,
        model: str | Mapping[str, Any] = "resnet",
        steps: int | None = None,
        **options: Any,
    ) -> None:
        from pdesolve.nn.checkpoint import check_device

        check_device(options.get("device", "cpu"))
        self.stopping_rtol, self.stopping_atol = float(rtol), float(atol)
        self.maxiter = int(maxiter)
        model_cfg = {"name": model} if isinstance(model, str) else dict(model)
        for key in _MODEL_KEYS:
            if key in options:
                model_cfg[key] = options.pop(key)
        self.model = model_cfg
        self.steps = int(steps) if steps is not None else self.maxiter
        self.options = options

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        raise TypeError("the PINN solver trains on a problem's continuous form: pass the problem "
                        "from pdesolve.get_problem(...), not a LinearSystem")

    def solve_problem(self, problem: Any, x0: np.ndarray | None = None) -> SolveResult:
        from pdesolve.train.pinn_trainer import PINNTrainer

        if x0 is not None:
            raise ValueError("the PINN solver takes no x0 (resume from a checkpoint instead)")
        start = time.perf_counter()
        trainer = PINNTrainer(problem, model=self.model, steps=self.steps,
                              rtol=self.stopping_rtol, atol=self.stopping_atol, **self.options)
        history = trainer.fit()
        train_time = time.perf_counter() - start
        try:
            system = problem.discretize()
        except NotImplementedError:
            system = None
        if system is not None:
            x = trainer.evaluate(unknown_points(system))
            errors = system.error_norms(x) or {}
        else:
            x = trainer.evaluate(trainer.test_x)
            errors = {}
        errors = {**errors, "relative_l2_test": history["relative_l2"][-1]}
        info: dict[str, Any] = {
            "solver": "pinn", "history": history, "error": errors, "config": trainer.config,
            "parameters": count_parameters(trainer.model), "train_time": trainer.elapsed,
            "setup_time": train_time - trainer.elapsed, "solve_time": trainer.elapsed,
        }  # fmt: skip
        if getattr(problem, "pinn_loss", "") == "rayleigh":
            info["eigenvalue"] = history["eigenvalue"][-1]
            info["exact_eigenvalue"] = float(problem.exact_eigenvalue)
        if trainer.output_dir is not None:
            info["checkpoint"] = str(trainer.checkpoint_path)
        reason = _REASONS[trainer.reason]
        return SolveResult(
            x=x, converged=reason.converged, reason=reason, iterations=trainer.step,
            residual_norms=np.asarray(history["residual_rms"]),
            wall_time=time.perf_counter() - start, info=info,
        )  # fmt: skip
