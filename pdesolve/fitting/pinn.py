"""``fit(problem, method="pinn")``: a physics-informed network trained on the strong-form residual.

The network, optimizer and training options are those of
:class:`pdesolve.train.pinn.PINNTrainer` (which owns their defaults); this method adds the
``FitResult`` contract:

* ``steps``: updates made (first phase plus L-BFGS); ``loss_history`` at every ``log_every`` steps.
* ``test_error``: relative L2 error against the exact solution (else the problem's own
  ``reference()`` solution) on a fixed test set (``test_points`` seeded points, or the
  time-dependent problem's test grid; None when neither is known).
* ``discrete_values`` / ``discrete_errors``: the network at the problem's unknowns (grid interior
  nodes or free mesh nodes) when the problem can discretize itself, and its error norms there.
* criteria (optional, stated by the caller): ``target_error`` (``test_error <= target_error`` on
  the final network) and ``residual_rtol`` / ``residual_atol`` (training stops early once the RMS
  PDE residual on the monitor set is ``<= max(residual_rtol · RMS(f), residual_atol)``, checked
  every ``log_every`` steps). With neither, ``status`` is ``NOT_CHECKED``: the budget ran out and
  nothing is claimed.

* ``marching``: time-dependent problems train one network per time window instead
  (:class:`pdesolve.train.pinn.marching.MarchingTrainer`; ``{windows: K or [edges], budget,
  shares, adam_fraction, warm_start}``); ``test_error`` is then the composite's error on the
  whole test grid, and ``info["windows"]`` holds each window's record.

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=1, n=31, solution="sine")
>>> result = pdesolve.fit(problem, method="pinn", model="mlp", width=16, depth=2,
...                       activation="tanh", steps=300, batch=64, log_every=100,
...                       optimizer={"name": "adam", "lr": 1e-2}, progress=False,
...                       target_error=0.05)
>>> result.steps, result.history_steps.tolist(), result.discrete_values.shape
(300, [0.0, 100.0, 200.0, 300.0], (31,))
>>> result.success, result.test_error < 0.05, [c.name for c in result.criteria]
(True, True, ['test_error'])
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pdesolve.fitting import FIT_METHODS
from pdesolve.fitting.base import FitMethod, FitResult
from pdesolve.linalg.system import LinearSystem
from pdesolve.nn.mlp import count_parameters
from pdesolve.status import Criterion, CriterionStatus

__all__ = ["PINNFit", "unknown_points"]

_MODEL_KEYS = ("width", "depth", "blocks", "activation", "activation_options")


def unknown_points(system: LinearSystem) -> np.ndarray:
    """Coordinates of a system's unknowns: grid interior nodes or free mesh nodes."""
    geometry = system.geometry
    if hasattr(geometry, "free"):
        return np.asarray(geometry.points)[geometry.free]
    return np.asarray(geometry.points)


def _trainer_parameters() -> list[str]:
    from pdesolve.train.pinn import PINNTrainer

    params = inspect.signature(PINNTrainer).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY]


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@FIT_METHODS.register("pinn")
class PINNFit(FitMethod):
    """Physics-informed neural network (strong form, RAF or classical activations).

    Parameters
    ----------
    target_error : float, optional
        Success criterion: the final relative L2 test error must be ``<= target_error`` (needs a
        problem with an exact solution). Checked once, on the final network; it does not stop
        training.
    marching : dict, optional
        Time-marching in windows (time-dependent problems): the options of
        :class:`~pdesolve.train.pinn.marching.MarchingTrainer` (``windows``, ``budget``,
        ``shares``, ``adam_fraction``, ``warm_start``); ``resume`` then continues the run in
        ``output_dir``.
    residual_rtol, residual_atol : float
        Early-stopping criterion on the RMS PDE residual (monitor set), ``0`` = none: stop once it
        is ``<= max(residual_rtol · RMS(f), residual_atol)``, checked every ``log_every`` steps.
    model : str or dict
        A name (``resnet``, ``mlp``) or a dict as in ``configs/model/*.yaml``; the flat options
        ``width``, ``depth``, ``blocks``, ``activation``, ``activation_options`` override its
        entries.
    **options
        Everything else goes to :class:`~pdesolve.train.pinn.PINNTrainer` (``steps``,
        ``optimizer``, ``batch``, ``lbfgs_steps``, ``schedule``, ``seed``, ``output_dir`` ...),
        whose defaults apply to what is not given.
    """

    registry_name = "pinn"

    def __init__(
        self,
        *,
        target_error: float | None = None,
        residual_rtol: float = 0.0,
        residual_atol: float = 0.0,
        model: str | Mapping[str, Any] = "resnet",
        marching: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        accepted = _trainer_parameters()
        unknown = [k for k in options if k not in accepted and k not in _MODEL_KEYS]
        if unknown or "rtol" in options or "atol" in options:
            key = unknown[0] if unknown else ("rtol" if "rtol" in options else "atol")
            hint = (" (the residual stopping rule is residual_rtol / residual_atol)"
                    if key in ("rtol", "atol") else "")  # fmt: skip
            own = ["target_error", "residual_rtol", "residual_atol", "model", "marching",
                   *_MODEL_KEYS]
            others = [k for k in accepted if k not in ("rtol", "atol", "model")]
            raise TypeError(
                f"fit method 'pinn' has no parameter {key!r}{hint}; its parameters: "
                f"{', '.join(own + others)}"
            )
        from pdesolve.nn.checkpoint import check_device

        check_device(options.get("device", "cpu"))
        for name, value in (("residual_rtol", residual_rtol), ("residual_atol", residual_atol)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if target_error is not None and not (math.isfinite(target_error) and target_error > 0):
            raise ValueError(f"target_error must be a finite positive number, got {target_error!r}")
        model_cfg = {"name": model} if isinstance(model, str) else dict(model)
        for key in _MODEL_KEYS:
            if key in options:
                model_cfg[key] = options.pop(key)
        self.model = model_cfg
        self.target_error = None if target_error is None else float(target_error)
        self.residual_rtol, self.residual_atol = float(residual_rtol), float(residual_atol)
        self.options = options
        self.marching = dict(marching) if marching else None
        if self.marching is not None:
            known = {"windows", "budget", "shares", "adam_fraction", "warm_start"}
            extra = sorted(set(self.marching) - known)
            if extra:
                raise TypeError(f"marching takes {', '.join(sorted(known))}, not {extra}")
            if self.residual_rtol > 0:
                raise ValueError("with marching the residual criterion is residual_atol (each "
                                 "window has its own scale); residual_rtol is not used there")

    def _fit(self, problem: Any) -> FitResult:
        from pdesolve.train.pinn import PINNTrainer

        known = problem.has_exact_solution or hasattr(problem, "reference")
        if self.target_error is not None and not known:
            raise ValueError(
                f"target_error needs the exact solution, and problem {problem.name!r} has none: "
                "state a residual criterion (residual_rtol / residual_atol) instead"
            )
        if self.marching is not None:
            return self._fit_marching(problem)
        start = time.perf_counter()
        trainer = PINNTrainer(problem, model=self.model, rtol=self.residual_rtol,
                              atol=self.residual_atol, **self.options)  # fmt: skip
        setup_time = time.perf_counter() - start
        history = trainer.fit()
        try:
            system = problem.discretize()
        except NotImplementedError:
            system = None
        values, errors = None, None
        if system is not None:
            values = trainer.evaluate(unknown_points(system))
            errors = system.error_norms(values)
        test_error = _finite_or_none(history["relative_l2"][-1])
        residual_rms = float(history["residual_rms"][-1])
        criteria = self._criteria(trainer.f_rms, residual_rms, test_error)
        losses = np.asarray(history["train_loss"], dtype=float)
        logged = losses[np.isfinite(losses)]
        info: dict[str, Any] = {
            "config": trainer.config, "parameters": count_parameters(trainer.model),
            "constraint": trainer.constraint, "derivatives": trainer.derivatives,
            "world_size": trainer.dist.world_size,
        }  # fmt: skip
        if getattr(problem, "pinn_loss", "") == "rayleigh":
            info["eigenvalue"] = history["eigenvalue"][-1]
            info["exact_eigenvalue"] = float(problem.exact_eigenvalue)
        if trainer.unknowns is not None:
            info["identified"] = trainer.unknowns.identified()
            info["parameter_errors"] = trainer.parameter_errors()
        if trainer.output_dir is not None:
            info["checkpoint"] = str(trainer.checkpoint_path)
        return FitResult(
            method=self.name, status=CriterionStatus.of(criteria), criteria=tuple(criteria),
            steps=trainer.step, final_loss=float(logged[-1]) if logged.size else float("nan"),
            best_loss=float(logged.min()) if logged.size else float("nan"),
            history_steps=np.asarray(history["step"]), loss_history=losses,
            test_error=test_error, residual_rms=residual_rms, discrete_values=values,
            discrete_errors=errors, train_time=trainer.elapsed, setup_time=setup_time,
            wall_time=time.perf_counter() - start, history=history, info=info,
            model=trainer.model, predict=trainer.evaluate,
        )  # fmt: skip

    def _fit_marching(self, problem: Any) -> FitResult:
        from pdesolve.train.pinn.marching import MarchingTrainer

        start = time.perf_counter()
        options = dict(self.options)
        resume = bool(options.pop("resume", None))
        trainer = MarchingTrainer(problem, model=self.model, rtol=self.residual_rtol,
                                  atol=self.residual_atol, resume=resume, **self.marching,
                                  **options)  # fmt: skip
        setup_time = time.perf_counter() - start
        summary = trainer.fit()
        history = trainer.history()
        test_error = summary["relative_l2"]
        residual_rms = float(history["residual_rms"][-1])
        criteria = self._criteria(0.0, residual_rms, test_error)  # residual_rtol refused here
        losses = np.asarray(history["train_loss"], dtype=float)
        logged = losses[np.isfinite(losses)]
        info: dict[str, Any] = {"config": trainer.config, "windows": summary["windows"],
                                "parameters": count_parameters(trainer.model)}
        if trainer.output_dir is not None:
            info["checkpoint"] = str(trainer.output_dir)
        return FitResult(
            method=self.name, status=CriterionStatus.of(criteria), criteria=tuple(criteria),
            steps=sum(int(w["steps"]) for w in summary["windows"]),
            final_loss=float(logged[-1]) if logged.size else float("nan"),
            best_loss=float(logged.min()) if logged.size else float("nan"),
            history_steps=np.asarray(history["step"]), loss_history=losses,
            test_error=test_error, residual_rms=residual_rms, discrete_values=None,
            discrete_errors=None, train_time=summary["train_time"], setup_time=setup_time,
            wall_time=time.perf_counter() - start, history=history, info=info,
            model=trainer.model, predict=trainer.model.predict,
        )  # fmt: skip

    def _criteria(self, f_rms: float, residual_rms: float,
                  test_error: float | None) -> list[Criterion]:
        """The stated success criteria, with the measured values: the RMS residual against
        ``max(residual_rtol · RMS(f), residual_atol)`` and the test error against
        ``target_error``."""
        criteria = []
        if self.residual_rtol > 0 or self.residual_atol > 0:
            target = max(self.residual_rtol * f_rms, self.residual_atol)
            criteria.append(Criterion("residual_rms", target, residual_rms))
        if self.target_error is not None:
            criteria.append(Criterion("test_error", self.target_error,
                                      float("nan") if test_error is None else test_error))
        return criteria
