"""The PINN training loop (:class:`PINNTrainer`): phases, loss terms, logging, checkpoints."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.nn.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from pdesolve.problems.base import gradient
from pdesolve.problems.geometry import has_boundary_lift
from pdesolve.train.collocation import CollocationSampler
from pdesolve.train.distributed import DistributedContext
from pdesolve.train.optimizers import make_optimizer, take_step
from pdesolve.train.pinn import callbacks
from pdesolve.train.pinn.config import (
    DERIVATIVES,
    DTYPES,
    SCHEDULES,
    as_named,
    check_continuous_form,
    device,
    plain,
)
from pdesolve.train.pinn.data import TrainingPoints, causal_weights, largest_residuals
from pdesolve.train.pinn.inverse import UnknownParameters
from pdesolve.train.pinn.losses import rayleigh_loss, stacked_loss
from pdesolve.train.pinn.model import build_pinn, space_box, zero_boundary_data
from pdesolve.train.pinn.network import PINN
from pdesolve.train.pinn.quasi_newton import BFGS
from pdesolve.train.pinn.residuals import (
    SpaceTimeResidual,
    jet_residual,
    second_derivative_axes,
    surrogate_agrees,
)

__all__ = ["HISTORY_KEYS", "PINNTrainer", "TrainingDivergedError"]

HISTORY_KEYS = ("step", "phase", "train_loss", "residual_rms", "relative_l2", "eigenvalue", "lr",
                "time", "points", "parameter_error", "causal_min_weight", "world_size")  # fmt: skip
ADAPTIVE = ("none", "annealing")
# options a resumed run may change (budgets and what is only measured or printed)
RESUMABLE = {"steps", "lbfgs_steps", "bfgs_steps", "test_points", "test_grid", "reference",
             "log_every", "init_from", "derivatives"}  # fmt: skip


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights became NaN/Inf; names the step and the last good checkpoint."""

    def __init__(self, step: int, checkpoint: str | None, detail: str = "") -> None:
        self.step, self.checkpoint = step, checkpoint
        kept = (f"the last good checkpoint is kept at {checkpoint}" if checkpoint
                else "no checkpoint was written (give output_dir and checkpoint_every)")
        super().__init__(f"non-finite loss at training step {step}{detail}; {kept}")


class PINNTrainer:
    """Train a PINN for ``problem``; see :mod:`pdesolve.train.pinn` for the loss and the phases.

    Parameters
    ----------
    problem : Problem
        A registry problem with a continuous form: stationary (``domain``, ``source``,
        ``pde_residual``) or time-dependent (``kind == "time_dependent"``: space-time domain,
        initial and boundary data, ``pde_residual(u, xt)``).
    model : str or dict
        ``mlp`` or ``resnet`` or a dict ``{name, width, depth|blocks, activation,
        activation_options}`` (as ``configs/model/*.yaml``); every activation (RAF included)
        works on every problem.
    optimizer : str or dict
        First-phase optimizer (``adam``, ``sgd``, ``curveball``) and its options.
    steps, lbfgs_steps, bfgs_steps : int
        Phases run in this order: ``steps`` first-phase updates, ``lbfgs_steps`` L-BFGS steps
        (each up to ``max_iter`` iterations), ``bfgs_steps`` full-memory quasi-Newton iterations
        (:class:`pdesolve.train.pinn.quasi_newton.BFGS`, float64). Both quasi-Newton phases
        train on one fixed batch.
    lbfgs_options, bfgs_options : dict
        Options of ``torch.optim.LBFGS`` / of ``BFGS`` (``variant``: ``bfgs`` or ``ssbfgs``).
    batch, boundary_batch, initial_batch : int
        Interior / boundary / initial-time collocation points per step (boundary only for a soft
        constraint, initial only for a soft initial condition; defaults ``batch // 4``).
    sampling : str
        ``random`` (fresh points every step) or a fixed set: ``uniform``, ``lhs``, ``sobol``,
        ``halton``.
    constraint : str
        Dirichlet data: ``hard``, ``soft`` or ``auto`` (hard when the (spatial) domain has a
        distance function and the data vanish, or is a shape with a boundary lift — a
        rectangle or disk minus disks, ``G + D N``; else soft). Periodic axes of a time-dependent
        problem are always hard, by Fourier features (``fourier_modes`` modes per axis).
    initial_constraint : str
        Time-dependent problems: ``hard`` (``u = u0 + τ(t) D N``), ``soft`` (a loss term with
        ``initial_weight``) or ``auto`` (hard).
    boundary_weight, initial_weight, data_weight : float
        Weights of the boundary, initial and observation terms (initial values of the adaptive
        weights when ``adaptive_weights="annealing"``).
    adaptive_weights : str
        ``none`` or ``annealing`` (learning-rate annealing, Wang, Teng & Perdikaris 2021: every
        ``adaptive_options["every"]`` first-phase steps, ``λ_k ← (1-α) λ_k + α max|∇L_r| /
        mean|∇λ_k L_k|``... see the method page).
    causal : dict, optional
        Causal weighting of the PDE residual in time, ``{"segments": M, "epsilon": ε}``
        (time-dependent problems only); ``"quasi_newton": "frozen"`` holds the weights of
        the first quasi-Newton step for the rest of that phase, so that its line search sees
        one fixed loss and its exact gradient (``live``, the default, recomputes them from
        every evaluation; they enter as constants, so the gradient is then not the loss's).
    rar : dict, optional
        Residual-based adaptive refinement, ``{"every": n, "candidates": m, "points": k}``:
        every ``n`` first-phase steps the ``k`` points of largest residual among ``m`` fresh
        candidates join every later interior batch.
    qn_batch : dict, optional
        The quasi-Newton phases' batch, ``{"points": N, "sampling": s, "resample_every": n,
        "hessian": h, "refine": b}``: ``N`` interior points (default ``batch``) drawn by ``s``
        (``uniform``, ``lhs``, ``sobol``, ``halton``; default ``uniform``) plus the refinement
        points; every ``n`` BFGS iterations (0: never, the default) a fresh set of ``N`` replaces
        it, after a refinement step with the ``rar`` sizes when ``b`` (default: whether ``rar``
        is given); ``h`` = ``keep`` (default) keeps the inverse Hessian across a resample,
        ``reset`` restarts it from the scaled identity.
    inverse : bool
        Identify the problem's ``unknown_parameters`` from its ``observations`` (``observations``
        dict ``{n, noise, seed}``; ``parameter_init`` initial guesses, default 1.0 for
        constants).
    schedule : str
        ``none``, ``step`` (``step_size``, ``gamma``), ``exponential`` (``gamma``), ``cosine``.
    dtype, device, seed : str, str, int
        ``float64`` (default) or ``float32``; ``cpu`` or ``cuda``; one seed for everything.
    derivatives : str
        ``forward`` (forward-mode Laplacian in one pass; MLP/ResNet on diffusion-type
        stationary problems), ``autograd`` (nested reverse mode, any network and problem) or
        ``auto``.
    test_points, test_grid : int, (int, int)
        The fixed test set: ``test_points`` seeded interior points (stationary problems) or the
        problem's test grid ``test_points(*test_grid)`` (time-dependent ones). Errors are
        relative L2 against the exact solution, or else the problem's own classical solution
        ``reference(**reference)`` (``reference``: its options, e.g. the resolution).
    rtol, atol : float
        Stop early when the monitor residual RMS ≤ ``max(rtol · RMS(f), atol)`` (0: never).
    output_dir : path, optional
        Where ``metrics.csv``, ``training.png``, ``solution.png``, ``summary.json`` and
        ``checkpoint.pt`` go. A folder that already holds a run is refused unless it is
        resumed (``resume=True`` or its checkpoint path).
    plots : bool
        Whether the output folder gets the two PNGs (``False``: metrics, summary and
        checkpoint only, e.g. for the windows of a time-marching run).
    checkpoint_every : int
        Also checkpoint every so many steps (0: only at the end).
    resume : path or bool, optional
        A checkpoint of an earlier run with the same configuration to continue from (``True``:
        ``output_dir/checkpoint.pt``); a changed option other than the budgets is refused.
    init_from : path, optional
        Transfer learning: start from the network weights of a checkpoint (same model config).
    callback : callable, optional
        Called as ``callback(trainer)`` after every logged step (step 0 included), on every
        rank under torchrun (``trainer.dist.is_main`` tells rank 0).

    Under ``torchrun`` the trainer is data-parallel by itself (:attr:`dist`, a
    :class:`~pdesolve.train.distributed.DistributedContext`): every rank draws the same global
    batches and evaluates its part of each, the loss and gradients are averaged over the ranks
    in every phase, and rank 0 alone writes the output folder (rank 0's ``output_dir`` and
    ``resume`` count). The global batch sizes must divide by the world size; causal weights come
    from the whole batch's time slabs; CurveBall and the Rayleigh-quotient loss are refused
    there. Checkpoints resume at any world size.
    """

    def __init__(
        self,
        problem: Any,
        *,
        model: str | Mapping[str, Any] | None = "resnet",
        optimizer: str | Mapping[str, Any] | None = "adam",
        steps: int = 1000,
        lbfgs_steps: int = 0,
        lbfgs_options: Mapping[str, Any] | None = None,
        bfgs_steps: int = 0,
        bfgs_options: Mapping[str, Any] | None = None,
        batch: int = 2000,
        boundary_batch: int | None = None,
        initial_batch: int | None = None,
        sampling: str = "random",
        constraint: str = "auto",
        initial_constraint: str = "auto",
        fourier_modes: int = 1,
        boundary_weight: float = 1.0,
        initial_weight: float = 1.0,
        data_weight: float = 1.0,
        normalization_weight: float = 1.0,
        adaptive_weights: str = "none",
        adaptive_options: Mapping[str, Any] | None = None,
        causal: Mapping[str, Any] | None = None,
        rar: Mapping[str, Any] | None = None,
        qn_batch: Mapping[str, Any] | None = None,
        inverse: bool = False,
        observations: Mapping[str, Any] | None = None,
        parameter_init: Mapping[str, Any] | None = None,
        schedule: str = "none",
        schedule_options: Mapping[str, Any] | None = None,
        dtype: str = "float64",
        device: str = "cpu",
        seed: int = 0,
        test_points: int = 10_000,
        test_grid: tuple[int, int] | list[int] | None = None,
        reference: Mapping[str, Any] | None = None,
        monitor_points: int = 1000,
        log_every: int = 100,
        rtol: float = 0.0,
        atol: float = 0.0,
        output_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        resume: str | os.PathLike | bool | None = None,
        progress: bool | None = None,
        plots: bool = True,
        init_from: str | os.PathLike | None = None,
        callback: Callable[[PINNTrainer], None] | None = None,
        derivatives: str = "auto",
    ) -> None:
        if derivatives not in DERIVATIVES:
            raise ValueError(f"derivatives must be one of {', '.join(DERIVATIVES)}, "
                             f"got {derivatives!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
        if constraint not in ("auto", "hard", "soft"):
            raise ValueError(f"constraint must be auto, hard or soft, got {constraint!r}")
        if initial_constraint not in ("auto", "hard", "soft"):
            raise ValueError("initial_constraint must be auto, hard or soft, got "
                             f"{initial_constraint!r}")
        if adaptive_weights not in ADAPTIVE:
            raise ValueError(f"adaptive_weights must be one of {', '.join(ADAPTIVE)}, got "
                             f"{adaptive_weights!r}")
        budget = (steps, lbfgs_steps, bfgs_steps)
        if min(budget) < 0 or sum(budget) < 1:
            raise ValueError(f"need steps + lbfgs_steps + bfgs_steps >= 1, got {steps}, "
                             f"{lbfgs_steps} and {bfgs_steps}")
        if log_every < 1:
            raise ValueError(f"log_every must be positive, got {log_every}")
        check_continuous_form(problem)
        self.problem = problem
        self.time_dependent = getattr(problem, "kind", "stationary") == "time_dependent"
        self.model_cfg = as_named(model, "resnet")
        self.optimizer_cfg = as_named(optimizer, "adam")
        if self.optimizer_cfg["name"] == "lbfgs":
            raise ValueError("use lbfgs_steps for L-BFGS (it runs after the first phase); "
                             "optimizer must be adam, sgd or curveball")
        self.loss_kind = getattr(problem, "pinn_loss", "residual")
        causal_cfg = _check_causal(causal, self.time_dependent)
        rar_cfg = _check_rar(rar)
        qn_cfg = _check_qn_batch(qn_batch, rar_cfg)
        if inverse and not (getattr(problem, "unknown_parameters", None)
                            or getattr(problem, "unknown_fields", None)):
            raise ValueError(f"inverse=True needs a problem with unknown_parameters or "
                             f"unknown_fields; problem {problem.name!r} declares none")
        if inverse and self.optimizer_cfg["name"] == "curveball":
            raise ValueError("inverse runs train the network and the unknown parameters "
                             "together: use adam or sgd, not curveball")
        self.constraint = self._choose_constraint(constraint)
        self.initial_constraint = self._choose_initial(initial_constraint)
        adaptive_opts = {"every": 100, "alpha": 0.9, **dict(adaptive_options or {})}
        config: dict[str, Any] = {
            "problem": {"name": problem.name, "params": dict(problem.params)},
            "model": self.model_cfg, "optimizer": self.optimizer_cfg, "steps": int(steps),
            "lbfgs_steps": int(lbfgs_steps), "lbfgs_options": dict(lbfgs_options or {}),
            "batch": int(batch), "boundary_batch": int(boundary_batch or max(batch // 4, 1)),
            "sampling": sampling, "constraint": self.constraint,
            "boundary_weight": float(boundary_weight),
            "normalization_weight": float(normalization_weight), "schedule": schedule,
            "schedule_options": dict(schedule_options or {}), "dtype": dtype, "seed": int(seed),
            "test_points": int(test_points), "monitor_points": int(monitor_points),
            "log_every": int(log_every), "loss": self.loss_kind,
            "init_from": str(init_from) if init_from is not None else None,
            "derivatives": derivatives,
        }  # fmt: skip
        # options of the newer features enter the config only when used, so that checkpoints of
        # plain stationary runs keep their configuration
        extra = {
            "bfgs_steps": (int(bfgs_steps), 0), "bfgs_options": (dict(bfgs_options or {}), {}),
            "adaptive_weights": (adaptive_weights, "none"),
            "adaptive_options": (adaptive_opts if adaptive_weights != "none" else {}, {}),
            "causal": (causal_cfg, None), "rar": (rar_cfg, None), "inverse": (bool(inverse), False),
            "qn_batch": (qn_cfg, None),
            "reference": (dict(reference or {}), {}),
        }  # fmt: skip
        for key, (value, default) in extra.items():
            if value != default:
                config[key] = value
        if self.time_dependent:
            config.update({
                "initial_constraint": self.initial_constraint,
                "initial_batch": int(initial_batch or max(batch // 4, 1)),
                "initial_weight": float(initial_weight), "fourier_modes": int(fourier_modes),
                "test_grid": [int(v) for v in (test_grid or _default_grid(problem))],
            })  # fmt: skip
        if inverse:
            config.update({"data_weight": float(data_weight),
                           "observations": {"n": 200, "noise": 0.0, "seed": int(seed),
                                            **dict(observations or {})},
                           "parameter_init": dict(parameter_init or {})})  # fmt: skip
        self.config: dict[str, Any] = plain(config)
        self.device = device_of(device)
        #: the data-parallel context (one process without torchrun; see the class docstring)
        self.dist = (DistributedContext.from_environment(self.device)
                     if os.environ.get("WORLD_SIZE", "1") != "1"
                     else DistributedContext(device=self.device))
        if self.dist.is_distributed:
            self.device = self.dist.device
            _check_data_parallel(self.config, self.dist.world_size, self.time_dependent)
            output_dir, resume = self.dist.broadcast_object((output_dir, resume))  # rank 0's
        self.dtype = DTYPES[dtype]
        self.rtol, self.atol = float(rtol), float(atol)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        if resume is True:
            if self.output_dir is None:
                raise ValueError("resume=True resumes output_dir/checkpoint.pt: give output_dir")
            resume = self.output_dir / "checkpoint.pt"
        elif resume is False:
            resume = None
        if resume is None and self.output_dir is not None:
            _refuse_existing_run(self.output_dir)
        self.checkpoint_every = int(checkpoint_every)
        self.resume = resume
        self.init_from = init_from
        self.callback = callback
        self.progress = progress
        self.plots = bool(plots)
        self._build()

    # set-up ----------------------------------------------------------------------------------
    def _space_distance(self) -> Callable[[Tensor], Tensor] | None:
        domain = self.problem.domain
        if self.time_dependent:
            space = getattr(domain, "space", None)
            return getattr(space, "distance", None)
        return getattr(domain, "distance", None)

    def _periodic(self) -> tuple[bool, ...]:
        return tuple(bool(p) for p in getattr(self.problem, "periodic", ())) if \
            self.time_dependent else ()

    def _choose_constraint(self, constraint: str) -> str:
        problem = self.problem
        periodic = self._periodic()
        if periodic and all(periodic):
            if constraint == "soft":
                raise ValueError(f"problem {problem.name!r} is periodic on every axis: there is "
                                 "no Dirichlet data to impose softly (periodicity is hard)")
            return "hard"
        if any(periodic):
            if constraint == "hard":
                raise ValueError("constraint='hard' with periodic and Dirichlet axes mixed is not"
                                 " supported; use constraint='soft'")
            return "soft"
        has_distance = self._space_distance() is not None
        zero_data = has_distance and zero_boundary_data(problem)
        space = problem.domain.space if self.time_dependent else problem.domain
        liftable = has_distance and has_boundary_lift(space)
        if constraint == "auto":
            # the exact form wherever the ansatz exists: D(x) N(x) for zero data, G(x) + D(x) N(x)
            # with a boundary lift G otherwise (the penalty can stall, e.g. on the shape domain)
            return "hard" if zero_data or liftable else "soft"
        if constraint == "hard" and not has_distance:
            raise ValueError(f"constraint='hard' needs a domain with a distance function (unit box"
                             f" or ball), not {type(problem.domain).__name__}")
        if constraint == "hard" and not zero_data and not liftable:
            raise ValueError("constraint='hard' needs zero Dirichlet data (the ansatz is D(x)N(x))"
                             " or a shape with a boundary lift (rectangle or disk minus disks:"
                             f" G(x) + D(x)N(x)); problem {problem.name!r} has non-zero boundary"
                             " values: use constraint='soft'")
        if self.loss_kind == "rayleigh" and constraint != "hard":
            raise ValueError("the Rayleigh-quotient loss needs constraint='hard'")
        return constraint

    def _choose_initial(self, kind: str) -> str | None:
        if not self.time_dependent:
            return None
        return "hard" if kind == "auto" else kind

    def _make_network(self) -> PINN:
        if self.time_dependent and any(self._periodic()):
            lo, hi = space_box(self.problem.domain.space)
            _check_periodic_initial(self.problem, self._periodic(), lo, hi)
        return build_pinn(self.problem, self.config)

    def _build(self) -> None:
        cfg, problem = self.config, self.problem
        self.model = self._make_network().to(device=self.device, dtype=self.dtype)
        self.unknowns: UnknownParameters | None = None
        if cfg.get("inverse"):
            self.unknowns = UnknownParameters(problem, cfg["parameter_init"],
                                              seed=cfg["seed"]).to(self.device, self.dtype)
        self._jet_residual = self._choose_derivatives(cfg["derivatives"])
        self.generator = torch.Generator().manual_seed(cfg["seed"])
        soft = self.constraint == "soft"
        self.sampler = CollocationSampler(
            problem.domain, cfg["batch"], cfg["sampling"], self.generator,
            n_boundary=cfg["boundary_batch"] if soft else 0,
        )  # fmt: skip
        soft_initial = self.time_dependent and self.initial_constraint == "soft"
        self.points = TrainingPoints(
            self.sampler, problem.domain.sample_initial if soft_initial else None,
            cfg.get("initial_batch", 0) if soft_initial else 0)  # fmt: skip
        self.rar_generator = torch.Generator().manual_seed(cfg["seed"] + 20_011)
        self._set_test_data()
        self.observations = self._observations() if cfg.get("inverse") else None
        self.weights = {"boundary": cfg["boundary_weight"],
                        "initial": cfg.get("initial_weight", 1.0),
                        "data": cfg.get("data_weight", 1.0)}  # fmt: skip
        self.optimizer = self._make_first_optimizer()
        self.scheduler = self._make_scheduler()
        self.lbfgs: torch.optim.Optimizer | None = None
        self.bfgs: BFGS | None = None
        self.step = 0
        self.history: dict[str, list[Any]] = {k: [] for k in HISTORY_KEYS}
        self.history["loss_weights"] = []
        self.elapsed = 0.0  # wall seconds of training steps
        self.cpu_elapsed = 0.0  # CPU seconds (this process) of training steps
        self.reason = "its"
        self._causal_min = float("nan")
        self._causal_frozen: Tensor | None = None  # causal weights held in the quasi-Newton phase
        if self.resume is not None:
            self.load(self.resume)
        elif self.init_from is not None:
            self.load_weights(self.init_from)

    def _set_test_data(self) -> None:
        cfg, problem = self.config, self.problem
        test_gen = torch.Generator().manual_seed(cfg["seed"] + 10_007)
        if self.time_dependent:
            pts = np.asarray(problem.test_points(*cfg["test_grid"]), dtype=np.float64)
            self.test_x = self._to(torch.as_tensor(pts))
            self.monitor_x = self._to(problem.domain.sample_interior(cfg["monitor_points"],
                                                                     test_gen))
        else:
            self.test_x = self._to(problem.domain.sample_interior(cfg["test_points"], test_gen))
            self.monitor_x = self.test_x[: cfg["monitor_points"]]
        self.exact: Tensor | None = None
        if problem.has_exact_solution:
            self.exact = self._exact(self.test_x)
        elif hasattr(problem, "reference"):
            ref = problem.reference(**cfg.get("reference", {}))
            values = ref.evaluate(self.test_x.detach().double().cpu().numpy())
            self.exact = self._to(torch.as_tensor(np.asarray(values, dtype=np.float64)))
        with torch.no_grad():
            if self.time_dependent:
                x0 = problem.domain.sample_initial(cfg["monitor_points"], test_gen)
                scale = problem.initial_value(x0[:, :-1]).reshape(-1)
            else:
                scale = problem.source(self.monitor_x)
            self.f_rms = float(torch.sqrt(torch.mean(self._to(scale) ** 2)))

    def _observations(self) -> tuple[Tensor, Tensor]:
        opts = self.config["observations"]
        pts, vals = self.problem.observations(int(opts["n"]), float(opts["noise"]),
                                              int(opts["seed"]))
        return (self._to(torch.as_tensor(np.asarray(pts, dtype=np.float64))),
                self._to(torch.as_tensor(np.asarray(vals, dtype=np.float64)).reshape(-1)))

    def _choose_derivatives(self, kind: str) -> Callable[..., Tensor] | None:
        self._space_time = False
        residual = None if (self.time_dependent or self.unknowns is not None) else \
            jet_residual(self.problem)
        if kind == "autograd":
            return None
        if self.time_dependent and self.unknowns is None:
            why = self._space_time_unavailable()
            if why is None:
                self._space_time = True
                rtol = 1e-9 if self.dtype == torch.float64 else 1e-4
                self._space_time_residual = SpaceTimeResidual(self.problem, self._second_axes,
                                                              rtol)  # fmt: skip
                return None
        if residual is not None and self.model.supports_jet:
            return residual
        if kind == "forward":
            if self.unknowns is not None:
                why = "inverse problems are differentiated by autograd"
            elif not self.time_dependent:  # (time-dependent problems: why is set above)
                why = ("the network has no closed-form activation derivatives (MLP/ResNet with "
                       "built-in activations do)" if residual is not None else
                       f"problem {self.problem.name!r} defines its own pde_residual and no "
                       "pde_residual_from_derivatives")  # fmt: skip
            raise ValueError(f"derivatives='forward' is not available: {why}; use 'autograd'")
        return None

    def _space_time_unavailable(self) -> str | None:
        """Why the fused space-time jet cannot compute this problem's residual (None: it can)."""
        if not self.model.supports_diagonal_jet:
            return ("the network has no fused space-time jet (an MLP with tanh or sin "
                    "activations has)")
        gen = torch.Generator().manual_seed(self.config["seed"] + 30_011)
        x = self._to(self.problem.domain.sample_interior(64, gen))
        self._second_axes = second_derivative_axes(self.problem, self.model, x)
        rtol = 1e-9 if self.dtype == torch.float64 else 1e-4
        if not surrogate_agrees(self.problem, self.model, x, self._second_axes, rtol):
            return (f"problem {self.problem.name!r} has a residual that the quadratic model of "
                    "the network does not reproduce (mixed second derivatives)")
        return None

    @property
    def derivatives(self) -> str:
        """``forward`` or ``autograd``: how this trainer differentiates the network."""
        fast = self._jet_residual is not None or self._space_time
        return "forward" if fast else "autograd"

    def residual(self, x: Tensor) -> Tensor:
        """The PDE residual of the current network at ``x`` (keeps the graph when grad is on)."""
        if self._space_time:
            return self._space_time_residual(self.model, x)
        if self._jet_residual is not None:
            u, grad, lap = self.model.jet(x)
            return self._jet_residual(x, u, grad, lap).reshape(-1)
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            if self.unknowns is not None:
                return self.problem.pde_residual(self.model, x,
                                                 params=self.unknowns.values()).reshape(-1)
            return self.problem.pde_residual(self.model, x).reshape(-1)

    def _to(self, x: Tensor) -> Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    def _exact(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self._to(self.problem.exact_solution(x).reshape(-1))

    def _trainable(self) -> nn.Module:
        if self.unknowns is None:
            return self.model
        return nn.ModuleList([self.model, self.unknowns])

    def _make_first_optimizer(self) -> torch.optim.Optimizer:
        options = {k: v for k, v in self.optimizer_cfg.items() if k != "name"}
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        return make_optimizer(self.optimizer_cfg["name"], self._trainable(), **options)

    def _make_scheduler(self) -> Any:
        kind, opts = self.config["schedule"], self.config["schedule_options"]
        sched = torch.optim.lr_scheduler
        if kind == "none":
            return None
        if kind == "step":
            return sched.StepLR(self.optimizer, step_size=int(opts.get("step_size", 1000)),
                                gamma=float(opts.get("gamma", 0.9)))
        if kind == "exponential":
            return sched.ExponentialLR(self.optimizer, gamma=float(opts.get("gamma", 0.999)))
        return sched.CosineAnnealingLR(self.optimizer, T_max=max(self.config["steps"], 1),
                                       eta_min=float(opts.get("eta_min", 0.0)))

    def _make_lbfgs(self) -> torch.optim.Optimizer:
        return make_optimizer("lbfgs", self._trainable(), **self.config["lbfgs_options"])

    def _make_bfgs(self) -> BFGS:
        return BFGS(self._trainable().parameters(), **self.config.get("bfgs_options", {}))

    def _fixed_batch(self, draw: int = 0) -> tuple[Tensor, Tensor | None, Tensor | None]:
        # the quasi-Newton phases' batch number ``draw`` (0 unless it is resampled), from its
        # own seeded generator, so that a resumed run sees the same points; refinement points
        # are included
        qn = self.config.get("qn_batch") or {}
        gen = torch.Generator().manual_seed(self.config["seed"] + 1 + 7919 * draw)
        sampler = CollocationSampler(self.problem.domain, qn.get("points", self.config["batch"]),
                                     qn.get("sampling", "uniform"), gen,
                                     n_boundary=self.sampler.n_boundary)
        xb = self._to(sampler.boundary()) if sampler.n_boundary else None
        xi = sampler.interior()
        if self.points.added is not None:
            xi = torch.cat([xi, self.points.added])
        x0 = None
        if self.points.n_initial:
            x0 = self._to(self.problem.domain.sample_initial(self.points.n_initial, gen))
        return self._part(self._to(xi)), self._part(xb), self._part(x0)

    def _batch(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        xi = self._to(self.points.interior())
        xb = self.points.boundary()
        x0 = self.points.initial()
        return self._part(xi), self._part(self._to(xb) if xb is not None else None), \
            self._part(self._to(x0) if x0 is not None else None)

    def _part(self, x: Tensor | None) -> Tensor | None:
        """This rank's contiguous part of a global batch (all of it for one process): every
        rank draws the same global batch from the same generator state and keeps its part."""
        if x is None or not self.dist.is_distributed:
            return x
        return x[self.dist.shard(x.shape[0])]

    # losses ----------------------------------------------------------------------------------
    def loss_terms(self, xi: Tensor, xb: Tensor | None,
                   x0: Tensor | None = None) -> list[tuple[str, Tensor, float]]:
        """The residual vectors and weights: ``pde``, then ``boundary``, ``initial``, ``data``."""
        terms = [("pde", self.residual(xi.detach()), 1.0)]
        if xb is not None:
            rb = self.model(xb) - self.problem.boundary_value(xb).reshape(-1)
            terms.append(("boundary", rb, self.weights["boundary"]))
        if x0 is not None:
            r0 = self.model(x0) - self._to(self.problem.initial_value(x0[:, :-1]).reshape(-1))
            terms.append(("initial", r0, self.weights["initial"]))
            if getattr(self.problem, "time_order", 1) == 2:  # u_t(x, t0) = v0(x) as well
                xv = x0.detach().requires_grad_(True)
                ut = gradient(self.model(xv), xv)[:, -1]
                rv = ut - self._to(self.problem.initial_velocity(x0[:, :-1]).reshape(-1))
                terms.append(("velocity", rv, self.weights["initial"]))
        if self.observations is not None:
            xo, yo = self.observations
            terms.append(("data", self.model(xo) - yo, self.weights["data"]))
        return terms

    def _causal(self, xi: Tensor) -> Callable[[Tensor], Tensor] | None:
        cfg = self.config.get("causal")
        if not cfg:
            return None
        t = xi[:, -1]

        dist = self.dist
        total = ((lambda v: dist.all_reduce_mean(v.detach().clone()) * dist.world_size)
                 if dist.is_distributed else None)

        frozen = cfg.get("quasi_newton") == "frozen" and self.step >= self.config["steps"]

        def mean_causal(r: Tensor) -> Tensor:
            w, slab = causal_weights(r[: t.shape[0]], t, self.problem.t_span,
                                     cfg["segments"], cfg["epsilon"], total, dist.world_size)
            if frozen:  # one fixed weighted least-squares loss for the quasi-Newton phase
                if self._causal_frozen is None:
                    self._causal_frozen = w.detach().clone()
                w = self._causal_frozen
            self._causal_min = float(w.min())
            return torch.mean(w * slab)

        return mean_causal

    def predict_and_loss(self, xi: Tensor, xb: Tensor | None,
                         x0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Predictions (the stacked residual vector) and the loss computed from them."""
        if self.loss_kind == "rayleigh":
            return rayleigh_loss(self.model, xi, self.config["normalization_weight"])
        return stacked_loss(self.loss_terms(xi, xb, x0), first=self._causal(xi))

    def _adapt_weights(self, xi: Tensor, xb: Tensor | None, x0: Tensor | None) -> None:
        """Learning-rate annealing: ``λ_k ← (1-α)λ_k + α max|∇L_pde| / mean|∇L_k|``."""
        params = [p for p in self._trainable().parameters() if p.requires_grad]
        terms = self.loss_terms(xi, xb, x0)
        if len(terms) < 2:
            return
        alpha = float(self.config["adaptive_options"]["alpha"])
        causal = self._causal(xi)
        grads = []
        for i, (_, r, _) in enumerate(terms):
            loss = causal(r) if (i == 0 and causal is not None) else torch.mean(r**2)
            g = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
            flat = torch.cat([(v if v is not None else torch.zeros_like(p)).reshape(-1)
                              for v, p in zip(g, params, strict=True)])
            grads.append(self.dist.all_reduce_mean(flat).abs())  # the global batch's gradient
        top = float(grads[0].max())
        for (name, _, _), g in zip(terms[1:], grads[1:], strict=True):
            mean = float(g.mean())
            key = "initial" if name == "velocity" else name
            if mean > 0 and math.isfinite(top / mean) and name != "velocity":
                self.weights[key] = (1 - alpha) * self.weights[key] + alpha * top / mean

    def refine(self) -> Tensor:
        """Residual-based adaptive refinement: add the ``rar["points"]`` candidates of largest
        ``|r|`` (of ``rar["candidates"]`` fresh ones) to the interior set; returns them."""
        cfg = self.config["rar"]
        cand = self._to(self.problem.domain.sample_interior(cfg["candidates"], self.rar_generator))
        r = self.residual(cand).detach()
        chosen = cand[largest_residuals(r, cfg["points"])]
        self.points.add(chosen)
        return chosen

    # evaluation ------------------------------------------------------------------------------
    def evaluate(self, x: Tensor | np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """The trained ``u`` at points ``x`` (numpy float64, shape (N,))."""
        x = self._to(torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x))
        with torch.no_grad():
            out = [self.model(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
        return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)

    def relative_l2(self) -> float:
        """Relative L2 error on the fixed test set against the exact solution or the problem's
        reference (NaN when neither is known); eigenfunctions are compared after the best
        scaling (sign and norm are free)."""
        if self.exact is None:
            return float("nan")
        with torch.no_grad():
            u = torch.cat([self.model(self.test_x[i : i + 65_536])
                           for i in range(0, self.test_x.shape[0], 65_536)])
            if self.loss_kind == "rayleigh":
                u = u * torch.dot(u, self.exact) / torch.dot(u, u).clamp_min(1e-300)
            return float(torch.linalg.norm(u - self.exact) / torch.linalg.norm(self.exact))

    def residual_rms(self) -> float:
        """RMS of the PDE residual on the fixed monitor set."""
        if self._jet_residual is not None or self._space_time:
            with torch.no_grad():
                r = self.residual(self.monitor_x).detach()
        else:
            r = self.residual(self.monitor_x).detach()
        return float(torch.sqrt(torch.mean(r**2)))

    def eigenvalue(self) -> float:
        """Rayleigh-quotient estimate ``∫|∇u|²/∫u²`` on the test set (eigenvalue problems)."""
        x = self.test_x.detach().requires_grad_(True)
        with torch.enable_grad():
            u = self.model(x)
            g = gradient(u, x)
        return float(torch.mean(torch.sum(g.detach() ** 2, dim=1)) / torch.mean(u.detach() ** 2))

    def parameter_errors(self) -> dict[str, float]:
        """Relative errors of the identified parameters against the truth (inverse runs)."""
        return {} if self.unknowns is None else self.unknowns.errors()

    def _log(self, phase: str, train_loss: float) -> None:
        h = self.history
        h["step"].append(self.step)
        h["phase"].append(phase)
        h["train_loss"].append(float(train_loss))
        h["residual_rms"].append(self.residual_rms())
        h["relative_l2"].append(self.relative_l2())
        h["eigenvalue"].append(self.eigenvalue() if self.loss_kind == "rayleigh" else float("nan"))
        opt = {"lbfgs": self.lbfgs}.get(phase, self.optimizer)
        if phase in ("bfgs", "ssbfgs"):
            h["lr"].append(float("nan"))
        else:
            h["lr"].append(float(opt.param_groups[0]["lr"]) if opt is not None else float("nan"))
        h["time"].append(self.elapsed)
        qn = self.config.get("qn_batch") or {}
        n = qn["points"] if "points" in qn and phase in ("lbfgs", "bfgs", "ssbfgs") else \
            self.sampler.n_interior  # the interior points of this phase's batch
        h["points"].append(int(n + (0 if self.points.added is None
                                    else self.points.added.shape[0])))
        errors = self.parameter_errors()
        h["parameter_error"].append(max(errors.values()) if errors else float("nan"))
        h["causal_min_weight"].append(self._causal_min)
        h["world_size"].append(self.dist.world_size)
        h["loss_weights"].append(dict(self.weights))
        if self.callback is not None:
            self.callback(self)

    # training --------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        cfg = self.config
        return cfg["steps"] + cfg["lbfgs_steps"] + cfg.get("bfgs_steps", 0)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.output_dir / "checkpoint.pt" if self.output_dir is not None else None

    def _phase(self) -> str:
        cfg = self.config
        if self.step < cfg["steps"]:
            return self.optimizer_cfg["name"]
        if self.step < cfg["steps"] + cfg["lbfgs_steps"]:
            return "lbfgs"
        return cfg.get("bfgs_options", {}).get("variant", "bfgs")

    def fit(self) -> dict[str, list[Any]]:
        """Train until the budget (or the tolerance) is reached; returns the history."""
        cfg = self.config
        if self.step == 0 and not self.history["step"]:
            self._log(self.optimizer_cfg["name"], float("nan"))
        threshold = max(self.rtol * self.f_rms, self.atol)
        last_good: str | None = None
        bar = callbacks.progress_bar(self.total_steps, self.step,
                                     self.progress if self.dist.is_main else False)
        fixed, fixed_draw = None, 0
        rar, adaptive = cfg.get("rar"), cfg.get("adaptive_weights", "none") != "none"
        try:
            while self.step < self.total_steps and self.reason == "its":
                t0, c0 = time.perf_counter(), time.process_time()
                phase = self._phase()
                if self.step < cfg["steps"]:
                    optimizer = self.optimizer
                    if rar and self.step > 0 and self.step % rar["every"] == 0:
                        self.refine()
                    xi, xb, x0 = self._batch()
                    if adaptive and self.step % cfg["adaptive_options"]["every"] == 0:
                        self._adapt_weights(xi, xb, x0)
                else:
                    if phase == "lbfgs":
                        if self.lbfgs is None:
                            self.lbfgs = self._make_lbfgs()
                        optimizer = self.lbfgs
                    else:
                        if self.bfgs is None:
                            self.bfgs = self._make_bfgs()
                        optimizer = self.bfgs
                    draw = self._resample(optimizer)
                    if fixed is None or draw != fixed_draw:
                        fixed, fixed_draw = self._fixed_batch(draw), draw
                    xi, xb, x0 = fixed
                try:
                    loss = self._take_step(optimizer, xi, xb, x0)
                except FloatingPointError as exc:
                    raise TrainingDivergedError(self.step, last_good, f" ({exc})") from exc
                finite = math.isfinite(loss) and bool(torch.isfinite(
                    torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])).all())
                if not finite:
                    raise TrainingDivergedError(self.step, last_good)
                if self.step < cfg["steps"] and self.scheduler is not None:
                    self.scheduler.step()
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                self.cpu_elapsed += time.process_time() - c0
                bar.update(1)
                if self.step % cfg["log_every"] == 0 or self.step == self.total_steps:
                    self._log(phase, loss)
                    err = self.history["relative_l2"][-1]
                    bar.set_postfix(loss=f"{loss:.3e}", err=f"{err:.3e}")
                    if threshold > 0 and self.history["residual_rms"][-1] <= threshold:
                        self.reason = "rtol" if self.rtol * self.f_rms >= self.atol else "atol"
                if self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    last_good = self.save()
        finally:
            bar.close()
        if self.history["step"][-1] != self.step:
            self._log(self.history["phase"][-1], float("nan"))
        if self.output_dir is not None:
            self.save()
            if self.dist.is_main:
                self.write_outputs()
        self.dist.barrier()  # rank 0's files are complete when fit returns on any rank
        return self.history

    def _resample(self, optimizer: torch.optim.Optimizer) -> int:
        """The number of the quasi-Newton batch for this step; at the first step of a new one
        (every ``qn_batch["resample_every"]`` BFGS iterations) refine first and tell the BFGS
        state that the loss has changed (keeping or resetting its inverse Hessian)."""
        qn = self.config.get("qn_batch") or {}
        every = qn.get("resample_every", 0)
        done = self.step - self.config["steps"] - self.config["lbfgs_steps"]
        if not every or done <= 0 or not isinstance(optimizer, BFGS):
            return 0
        if done % every == 0:
            if qn["refine"]:
                self.refine()
            optimizer.new_objective(reset=qn["hessian"] == "reset")
        return done // every

    def _take_step(self, optimizer: torch.optim.Optimizer, xi: Tensor, xb: Tensor | None,
                   x0: Tensor | None) -> float:
        if self.dist.is_distributed:
            return self._take_distributed_step(optimizer, xi, xb, x0)
        def closure_loss() -> tuple[Tensor, Tensor]:
            return self.predict_and_loss(xi, xb, x0)

        if isinstance(optimizer, BFGS):
            def closure() -> Tensor:
                optimizer.zero_grad()
                loss = closure_loss()[1]
                loss.backward()
                return loss

            return float(optimizer.step(closure))
        return take_step(optimizer, closure_loss)

    def _take_distributed_step(self, optimizer: torch.optim.Optimizer, xi: Tensor,
                               xb: Tensor | None, x0: Tensor | None) -> float:
        """One step on this rank's part of the batch; the loss and the gradients are averaged
        over the ranks (those of the global batch), so every rank takes the same step."""
        params = list(self._trainable().parameters())
        what = f"at step {self.step + 1}"

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = self.predict_and_loss(xi, xb, x0)[1]
            total = self.dist.all_reduce_mean(loss.detach().clone())
            if not bool(torch.isfinite(total)):  # the same verdict on every rank
                raise FloatingPointError(f"non-finite loss ({float(total)}); no step taken")
            loss.backward()
            self.dist.average_gradients(params, what)
            return total

        if isinstance(optimizer, BFGS | torch.optim.LBFGS):
            return float(torch.as_tensor(optimizer.step(closure)).detach())
        loss = closure()
        optimizer.step()
        return float(loss)

    # checkpoints -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> str:
        """Write a checkpoint (default ``output_dir/checkpoint.pt``); returns its path.

        Under torchrun only rank 0 writes (every rank holds the same state); the others
        return the path.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: give output_dir or a path")
        if not self.dist.is_main:
            return str(path)
        save_checkpoint(
            path, step=self.step, config=self.config, model=self.model.network,
            optimizer=self.optimizer, scheduler=self.scheduler,
            rng=capture_rng({"sampling": self.generator, "refinement": self.rar_generator}),
            history=self.history,
            lbfgs=self.lbfgs.state_dict() if self.lbfgs is not None else None,
            bfgs=self.bfgs.state_dict() if self.bfgs is not None else None,
            points=self.points.state_dict(), weights=dict(self.weights),
            unknowns=self.unknowns.state_dict() if self.unknowns is not None else None,
            elapsed=self.elapsed, cpu_elapsed=self.cpu_elapsed, reason=self.reason,
            causal_frozen=self._causal_frozen,
        )  # fmt: skip
        return str(path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Transfer learning: take the network weights of a checkpoint (same model config)."""
        ckpt = load_checkpoint(path, map_location=self.device)
        if plain(ckpt["config"].get("model")) != self.config["model"]:
            raise ValueError(f"checkpoint {str(path)!r} holds a different model "
                             f"({ckpt['config'].get('model')}), not {self.config['model']}")
        self.model.network.load_state_dict(ckpt["model"])

    def load(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint of a run with the same configuration (the budgets
        ``steps``, ``lbfgs_steps``, ``bfgs_steps`` and what is only measured may differ)."""
        ckpt = load_checkpoint(path, map_location=self.device)
        mine = {k: v for k, v in self.config.items() if k not in RESUMABLE}
        theirs = {k: v for k, v in ckpt["config"].items() if k not in RESUMABLE}
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"checkpoint {str(path)!r} was made with a different configuration "
                             f"(differs in: {', '.join(diff)}); resume with the same options or "
                             "start a new run in another output folder")
        self.model.network.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("lbfgs") is not None:
            self.lbfgs = self._make_lbfgs()
            self.lbfgs.load_state_dict(ckpt["lbfgs"])
        if ckpt.get("bfgs") is not None:
            self.bfgs = self._make_bfgs()
            self.bfgs.load_state_dict(ckpt["bfgs"])
        if ckpt.get("unknowns") is not None and self.unknowns is not None:
            self.unknowns.load_state_dict(ckpt["unknowns"])
        if ckpt.get("points") is not None:
            self.points.load_state_dict(ckpt["points"])
        if ckpt.get("weights") is not None:
            self.weights = dict(ckpt["weights"])
        restore_rng(ckpt["rng"], {"sampling": self.generator, "refinement": self.rar_generator})
        self.step = int(ckpt["step"])
        self.history = {k: list(v) for k, v in ckpt["history"].items()}
        for key in (*HISTORY_KEYS, "loss_weights"):  # checkpoints of older versions
            self.history.setdefault(key, [float("nan")] * len(self.history["step"]))
        self._causal_frozen = ckpt.get("causal_frozen")
        if self._causal_frozen is not None:
            self._causal_frozen = self._causal_frozen.to(device=self.device, dtype=self.dtype)
        self.elapsed = float(ckpt.get("elapsed", 0.0))
        self.cpu_elapsed = float(ckpt.get("cpu_elapsed", 0.0))

    # outputs ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Final figures of the run: errors, residual, parameters, timings, sizes."""
        h = self.history
        out: dict[str, Any] = {
            "problem": self.problem.name, "step": self.step, "reason": self.reason,
            "relative_l2": _finite(h["relative_l2"][-1]),
            "residual_rms": _finite(h["residual_rms"][-1]),
            "train_time": self.elapsed, "train_cpu_time": self.cpu_elapsed,
            "world_size": self.dist.world_size,
            "constraint": self.constraint,
            "initial_constraint": self.initial_constraint, "derivatives": self.derivatives,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "collocation_points": h["points"][-1], "loss_weights": dict(self.weights),
            "error_against": ("exact" if self.problem.has_exact_solution else
                              "reference" if self.exact is not None else None),
        }  # fmt: skip
        if self.unknowns is not None:
            out["identified"] = self.unknowns.identified()
            out["true_parameters"] = self.unknowns.truth()
            out["parameter_errors"] = self.parameter_errors()
        return out

    def write_metrics(self) -> None:
        """``metrics.csv`` and ``training.png`` (loss, residual and error vs step) in output_dir."""
        assert self.output_dir is not None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        callbacks.write_metrics(self.history, HISTORY_KEYS, self.output_dir / "metrics.csv")
        if self.plots:
            callbacks.plot_history(self.history, self.output_dir / "training.png",
                                   title=f"PINN on {self.problem.name}")

    def write_outputs(self) -> None:
        """Metrics and loss curves, ``summary.json`` and ``solution.png`` (the network, the
        exact or reference solution and the error on the test set) in output_dir."""
        assert self.output_dir is not None
        self.write_metrics()
        path = self.output_dir / "summary.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.summary(), indent=2, default=float))
        os.replace(tmp, path)
        if self.plots and self.test_x.shape[1] in (2, 3) and self.loss_kind != "rayleigh":
            callbacks.plot_solution(self.test_x.detach().double().cpu().numpy(),
                                    self.evaluate(self.test_x),
                                    None if self.exact is None else
                                    self.exact.double().cpu().numpy(),
                                    self.output_dir / "solution.png",
                                    title=f"PINN on {self.problem.name}",
                                    time_last=self.time_dependent, inside=self._plane_contains())

    def _plane_contains(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The (spatial) domain's ``contains`` when the plotted plane is the 2-D domain itself
        (a 1-D space-time rectangle needs no mask)."""
        domain = self.problem.domain.space if self.time_dependent else self.problem.domain
        dim = getattr(domain, "dim", None)
        return domain.contains if dim == 2 and hasattr(domain, "contains") else None


def device_of(name: str | torch.device) -> torch.device:
    """``torch.device(name)`` with a clear error when CUDA is absent."""
    return device(name)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _default_grid(problem: Any) -> tuple[int, int]:
    return (101, 51) if getattr(problem, "space_dim", 1) == 1 else (33, 11)


def _check_periodic_initial(problem: Any, periodic: tuple[bool, ...], lo: list[float],
                            hi: list[float]) -> None:
    """A periodic axis needs a periodic initial condition (values match at both ends)."""
    gen = torch.Generator().manual_seed(0)
    x = problem.domain.sample_initial(64, gen)[:, :-1]
    for axis, is_periodic in enumerate(periodic):
        if not is_periodic:
            continue
        a, b = x.clone(), x.clone()
        a[:, axis], b[:, axis] = lo[axis], hi[axis]
        ua, ub = problem.initial_value(a).reshape(-1), problem.initial_value(b).reshape(-1)
        gap = float((ua - ub).abs().max())
        if gap > 1e-8 * max(1.0, float(ua.abs().max())):
            raise ValueError(f"problem {problem.name!r} is periodic along axis {axis} but its "
                             f"initial condition is not (values at x={lo[axis]} and "
                             f"x={hi[axis]} differ by {gap:.3e})")


def _check_data_parallel(cfg: Mapping[str, Any], world: int, time_dependent: bool) -> None:
    """A clear error before any work when a run cannot be split over ``world`` processes."""
    if cfg["optimizer"]["name"] == "curveball":
        raise ValueError("curveball under torchrun is not supported: its Gauss-Newton products "
                         "need every prediction of the batch on one process; use adam or sgd")
    if cfg["loss"] == "rayleigh":
        raise ValueError("the Rayleigh-quotient loss (a ratio of batch means) is not split over "
                         "processes; train eigenvalue problems with one process")
    sizes = {"batch": cfg["batch"]}
    if cfg["constraint"] == "soft":
        sizes["boundary_batch"] = cfg["boundary_batch"]
    if time_dependent and cfg.get("initial_constraint") == "soft":
        sizes["initial_batch"] = cfg["initial_batch"]
    if cfg.get("rar"):
        sizes["rar points"] = cfg["rar"]["points"]
    bad = {k: v for k, v in sizes.items() if v % world}
    if bad:
        listed = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise ValueError(f"the global batch is split evenly over the {world} processes: "
                         f"{listed} not a multiple of {world}; choose multiples of {world} "
                         "(the global batch, not the per-process one, is what a run fixes)")


def _check_causal(causal: Mapping[str, Any] | None, time_dependent: bool) -> dict | None:
    if not causal:
        return None
    if not time_dependent:
        raise ValueError("causal weighting orders the residual in time: it needs a "
                         "time-dependent problem")
    cfg = {"segments": 32, "epsilon": 1.0, "quasi_newton": "live", **dict(causal)}
    unknown = set(cfg) - {"segments", "epsilon", "quasi_newton"}
    if unknown:
        raise ValueError(f"causal takes segments, epsilon and quasi_newton, not "
                         f"{sorted(unknown)}")
    if int(cfg["segments"]) < 1 or not float(cfg["epsilon"]) >= 0:
        raise ValueError(f"causal needs segments >= 1 and epsilon >= 0, got {cfg}")
    if cfg["quasi_newton"] not in ("live", "frozen"):
        raise ValueError(f"causal quasi_newton must be live or frozen, got "
                         f"{cfg['quasi_newton']!r}")
    out = {"segments": int(cfg["segments"]), "epsilon": float(cfg["epsilon"])}
    if cfg["quasi_newton"] == "frozen":  # (absent by default: older checkpoints still match)
        out["quasi_newton"] = "frozen"
    return out


def _check_rar(rar: Mapping[str, Any] | None) -> dict | None:
    if not rar:
        return None
    cfg = {"every": 500, "candidates": 10_000, "points": 100, **dict(rar)}
    unknown = set(cfg) - {"every", "candidates", "points"}
    if unknown:
        raise ValueError(f"rar takes every, candidates and points, not {sorted(unknown)}")
    if min(int(cfg["every"]), int(cfg["candidates"]), int(cfg["points"])) < 1:
        raise ValueError(f"rar needs every, candidates and points >= 1, got {cfg}")
    return {k: int(v) for k, v in cfg.items()}


def _check_qn_batch(qn: Mapping[str, Any] | None, rar: Mapping[str, Any] | None) -> dict | None:
    if not qn:
        return None
    cfg = {"sampling": "uniform", "resample_every": 0, "hessian": "keep",
           "refine": rar is not None, **dict(qn)}  # fmt: skip
    unknown = set(cfg) - {"points", "sampling", "resample_every", "hessian", "refine"}
    if unknown:
        raise ValueError("qn_batch takes points, sampling, resample_every, hessian and refine, "
                         f"not {sorted(unknown)}")
    if "points" in cfg and int(cfg["points"]) < 1:
        raise ValueError(f"qn_batch needs points >= 1, got {cfg['points']}")
    if cfg["sampling"] not in ("uniform", "lhs", "sobol", "halton"):
        raise ValueError("qn_batch sampling must be uniform, lhs, sobol or halton (a fixed set), "
                         f"got {cfg['sampling']!r}")
    if int(cfg["resample_every"]) < 0:
        raise ValueError(f"qn_batch needs resample_every >= 0, got {cfg['resample_every']}")
    if cfg["hessian"] not in ("keep", "reset"):
        raise ValueError(f"qn_batch hessian must be keep or reset, got {cfg['hessian']!r}")
    if cfg["refine"] and rar is None:
        raise ValueError("qn_batch refine=True refines with the rar sizes: give rar as well")
    out = {**cfg, "resample_every": int(cfg["resample_every"]), "refine": bool(cfg["refine"])}
    if "points" in out:
        out["points"] = int(out["points"])
    return out


def _refuse_existing_run(folder: Path) -> None:
    if (folder / "checkpoint.pt").exists():
        raise FileExistsError(
            f"output folder {str(folder)!r} already holds a PINN run (checkpoint.pt); resume it "
            "explicitly (resume=True, or the checkpoint's path) or choose another output folder"
        )
