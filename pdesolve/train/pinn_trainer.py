"""The PINN training loop: strong-form residual (or Rayleigh-quotient) training of a network.

``PINNTrainer(problem, ...).fit()`` trains ``u_θ`` so that the problem's ``pde_residual(u_θ, x)``
vanishes at collocation points, the boundary data being imposed either by a penalty (``soft``:
``loss = mean r² + w mean (u_θ - g)²`` on boundary points) or exactly by the ansatz
``u_θ = D(x) N_θ(x)`` with the domain's distance function ``D`` (``hard``; unit box and ball,
zero boundary data only — no lift from the exact solution is ever used). Problems with
``pinn_loss = "rayleigh"`` (eigenvalue problems) are trained on the Rayleigh quotient
``∫|∇u|² / ∫u²`` plus ``(∫u² - 1)²`` instead.

Phases: ``steps`` updates with ``optimizer`` (adam, sgd or curveball via
:func:`pdesolve.train.optimizers.make_optimizer`, with an optional learning-rate ``schedule``),
then ``lbfgs_steps`` L-BFGS steps on one fixed batch. Every ``log_every`` updates the history gets
the relative L2 error on a fixed, seeded test set (when the exact solution is known) and the RMS
PDE residual on a fixed monitor set. Checkpoints (``pdesolve.nn.checkpoint``) hold weights,
optimizer, scheduler and RNG states, so a resumed run continues exactly as an uninterrupted one.

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=1, solution="sine")
>>> trainer = PINNTrainer(problem, model={"name": "mlp", "width": 16, "depth": 2},
...                       steps=300, batch=64, log_every=100, seed=0,
...                       optimizer={"name": "adam", "lr": 1e-2}, progress=False)
>>> history = trainer.fit()
>>> history["step"]
[0, 100, 200, 300]
>>> history["relative_l2"][-1] < 0.05
True
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.nn.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from pdesolve.nn.mlp import make_model
from pdesolve.problems.base import Problem, gradient
from pdesolve.train.collocation import CollocationSampler
from pdesolve.train.optimizers import make_optimizer, take_step

__all__ = ["PINN", "PINNTrainer", "TrainingDivergedError", "load_pinn"]

DTYPES = {"float64": torch.float64, "float32": torch.float32}
SCHEDULES = ("none", "step", "exponential", "cosine")
DERIVATIVES = ("auto", "forward", "autograd")
HISTORY_KEYS = ("step", "phase", "train_loss", "residual_rms", "relative_l2", "eigenvalue", "lr",
                "time")  # fmt: skip


class TrainingDivergedError(FloatingPointError):
    """The loss or the weights became NaN/Inf; names the step and the last good checkpoint."""

    def __init__(self, step: int, checkpoint: str | None, detail: str = "") -> None:
        self.step, self.checkpoint = step, checkpoint
        kept = (f"the last good checkpoint is kept at {checkpoint}" if checkpoint
                else "no checkpoint was written (give output_dir and checkpoint_every)")
        super().__init__(f"non-finite loss at training step {step}{detail}; {kept}")


def _point_jet(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """``fn(x)``, ``∇fn`` and ``Δfn`` of a cheap, parameter-free point function by autograd
    (detached; ``∇fn`` is None when ``fn`` does not depend on ``x``)."""
    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        value = fn(xx).reshape(-1)
        if not value.requires_grad:
            return value.detach(), None, torch.zeros_like(value)
        (grad,) = torch.autograd.grad(value.sum(), xx, create_graph=True)
        lap = torch.zeros_like(value)
        for i in range(x.shape[1]):
            if grad[:, i].requires_grad:
                (second,) = torch.autograd.grad(grad[:, i].sum(), xx, retain_graph=True)
                lap = lap + second[:, i]
    return value.detach(), grad.detach(), lap.detach()


def _box_distance_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``D = Π x_i(1-x_i)`` (``UnitBox.distance``) with ``∇D`` and ``ΔD`` in closed form."""
    p = x * (1.0 - x)
    n = x.shape[0]
    ones = torch.ones(n, 1, dtype=x.dtype, device=x.device)
    before = torch.cumprod(torch.cat([ones, p[:, :-1]], dim=1), dim=1)  # Π_{j<i} p_j
    after = torch.cumprod(torch.cat([ones, p.flip(1)[:, :-1]], dim=1), dim=1).flip(1)  # j>i
    others = before * after
    return before[:, -1] * p[:, -1], (1.0 - 2.0 * x) * others, -2.0 * others.sum(dim=1)


def _ball_distance_jet(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``D = 1 - |x|`` (``UnitBall.distance``): ``∇D = -x/|x|``, ``ΔD = -(d-1)/|x|``."""
    r = x.norm(dim=1)
    return 1.0 - r, -x / r[:, None], -(x.shape[1] - 1) / r


def _distance_jet(
    fn: Callable[[Tensor], Tensor], x: Tensor
) -> tuple[Tensor, Tensor | None, Tensor]:
    """The jet of a distance function: closed form for the unit box and ball, else autograd."""
    from pdesolve.problems.ball import UnitBall
    from pdesolve.problems.domains import UnitBox

    owner = getattr(fn, "__func__", None)
    if owner is UnitBox.distance:
        return _box_distance_jet(x)
    if owner is UnitBall.distance:
        return _ball_distance_jet(x)
    return _point_jet(fn, x)


class PINN(nn.Module):
    """``u(x) = D(x) N(x)`` (hard constraint, ``distance`` given) or ``N(x)``; output shape (N,)."""

    def __init__(self, network: nn.Module, distance: Callable[[Tensor], Tensor] | None = None):
        super().__init__()
        self.network = network
        self.distance = distance

    def forward(self, x: Tensor) -> Tensor:
        out = self.network(x).reshape(-1)
        return out if self.distance is None else self.distance(x) * out

    @property
    def supports_jet(self) -> bool:
        """Whether :meth:`jet` works (MLP/ResNet with closed-form activation derivatives)."""
        return bool(getattr(self.network, "supports_jet", False))

    def jet(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``u``, ``∇u`` (N, d) and ``Δu`` (N,) in one forward pass (forward Laplacian); the
        distance factor enters by the product rule ``Δ(DN) = DΔN + 2∇D·∇N + NΔD``."""
        value, grad, lap = self.network.jet(x)
        value, grad, lap = value[:, 0], grad[:, :, 0], lap[:, 0]
        if self.distance is None:
            return value, grad, lap
        d, dgrad, dlap = _distance_jet(self.distance, x)
        if dgrad is None:
            return d * value, d[:, None] * grad, d * lap
        return (d * value, d[:, None] * grad + value[:, None] * dgrad,
                d * lap + 2.0 * (dgrad * grad).sum(dim=1) + value * dlap)  # fmt: skip


def diffusion_residual_from_jet(
    problem: Any, x: Tensor, u: Tensor, grad: Tensor, lap: Tensor
) -> Tensor:
    """``-∇·(k∇u) - f = -(kΔu + ∇k·∇u) - f`` from the jet of ``u`` (``Problem.pde_residual``'s
    equation; ``k`` and ``∇k`` by autograd on the coefficient alone)."""
    k, kgrad, _ = _point_jet(problem.coefficient, x)
    r = -k * lap - problem.source(x)
    if kgrad is not None:
        r = r - (kgrad * grad).sum(dim=1)
    return r


def jet_residual(problem: Any) -> Callable[..., Tensor] | None:
    """The problem's residual as a function of ``(x, u, ∇u, Δu)``, or None when it has none (the
    residual is then computed by nested autograd through ``problem.pde_residual``)."""
    own = getattr(problem, "pde_residual_from_derivatives", None)
    if own is not None:
        return own
    if getattr(type(problem), "pde_residual", None) is Problem.pde_residual:
        return lambda x, u, grad, lap: diffusion_residual_from_jet(problem, x, u, grad, lap)
    return None


def _as_named(value: str | Mapping[str, Any] | None, default: str) -> dict[str, Any]:
    if value is None:
        return {"name": default}
    if isinstance(value, str):
        return {"name": value}
    out = dict(value)
    out.setdefault("name", default)
    return out


def _plain(value: Any) -> Any:
    """Config values as plain Python (tuples/lists, dicts), for checkpoints and JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class PINNTrainer:
    """Train a PINN for ``problem``; see the module docstring for the loss and the phases.

    Parameters
    ----------
    problem : Problem
        Any registry problem with a continuous form (``domain``, ``source``, ``pde_residual``).
    model : str or dict
        ``mlp`` or ``resnet`` or a dict ``{name, width, depth|blocks, activation,
        activation_options}`` (as ``configs/model/*.yaml``).
    optimizer : str or dict
        First-phase optimizer (``adam``, ``sgd``, ``curveball``) and its options.
    steps, lbfgs_steps : int
        Updates in the first phase; L-BFGS steps afterwards (each up to ``max_iter`` iterations).
    batch, boundary_batch : int
        Interior / boundary collocation points per step (boundary only for the soft constraint;
        default ``batch // 4``).
    sampling : str
        ``random`` (fresh points every step) or a fixed set: ``uniform``, ``lhs``, ``sobol``,
        ``halton``.
    constraint : str
        ``hard``, ``soft`` or ``auto`` (hard when the domain has a distance function and the
        boundary data vanish, else soft).
    schedule : str
        ``none``, ``step`` (``step_size``, ``gamma``), ``exponential`` (``gamma``), ``cosine``.
    dtype, device, seed : str, str, int
        ``float64`` (default) or ``float32``; ``cpu`` or ``cuda`` (any torch device string); one
        seed for everything (network, collocation points, test set).
    derivatives : str
        How ``Δu`` is computed: ``forward`` (forward-mode Laplacian: values, gradients and
        Laplacians pushed through the network in one pass; MLP/ResNet), ``autograd`` (nested
        reverse-mode autograd through ``problem.pde_residual``, any network and problem), or
        ``auto`` (forward when the network and the problem support it). Same values up to
        rounding; forward is faster (about 1.5x in 2D, more in higher dimensions).
    rtol, atol : float
        Stop early when the monitor residual RMS ≤ ``max(rtol · RMS(f), atol)`` (0: never).
    output_dir : path, optional
        Where ``metrics.csv``, ``training.png`` and ``checkpoint.pt`` go.
    checkpoint_every : int
        Also checkpoint every so many steps (0: only at the end).
    resume : path, optional
        A checkpoint of an earlier run with the same configuration to continue from.
    init_from : path, optional
        Transfer learning: start from the network weights of a checkpoint trained on another
        problem of the same family (same model configuration); optimizer, step count and history
        start afresh. Ignored when ``resume`` is given.
    callback : callable, optional
        Called as ``callback(trainer)`` after every logged step (step 0 included).
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
        batch: int = 2000,
        boundary_batch: int | None = None,
        sampling: str = "random",
        constraint: str = "auto",
        boundary_weight: float = 1.0,
        normalization_weight: float = 1.0,
        schedule: str = "none",
        schedule_options: Mapping[str, Any] | None = None,
        dtype: str = "float64",
        device: str = "cpu",
        seed: int = 0,
        test_points: int = 10_000,
        monitor_points: int = 1000,
        log_every: int = 100,
        rtol: float = 0.0,
        atol: float = 0.0,
        output_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        resume: str | os.PathLike | None = None,
        progress: bool | None = None,
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
        if steps < 0 or lbfgs_steps < 0 or steps + lbfgs_steps < 1:
            raise ValueError(f"need steps + lbfgs_steps >= 1, got {steps} and {lbfgs_steps}")
        if log_every < 1:
            raise ValueError(f"log_every must be positive, got {log_every}")
        _check_continuous_form(problem)
        self.problem = problem
        self.model_cfg = _as_named(model, "resnet")
        self.optimizer_cfg = _as_named(optimizer, "adam")
        if self.optimizer_cfg["name"] == "lbfgs":
            raise ValueError("use lbfgs_steps for L-BFGS (it runs after the first phase); "
                             "optimizer must be adam, sgd or curveball")
        self.loss_kind = getattr(problem, "pinn_loss", "residual")
        self.constraint = self._choose_constraint(constraint)
        self.config: dict[str, Any] = _plain({
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
        })  # fmt: skip
        self.device = _device(device)
        self.dtype = DTYPES[dtype]
        self.rtol, self.atol = float(rtol), float(atol)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.checkpoint_every = int(checkpoint_every)
        self.resume = resume
        self.init_from = init_from
        self.callback = callback
        self.progress = progress
        self._build()

    # set-up ----------------------------------------------------------------------------------
    def _choose_constraint(self, constraint: str) -> str:
        has_distance = hasattr(self.problem.domain, "distance")
        zero_data = True
        if has_distance:
            xb = self.problem.domain.sample_boundary(256, torch.Generator().manual_seed(0))
            zero_data = bool(torch.all(self.problem.boundary_value(xb).abs() <= 1e-12))
        if constraint == "auto":
            return "hard" if has_distance and zero_data else "soft"
        if constraint == "hard" and not has_distance:
            raise ValueError(f"constraint='hard' needs a domain with a distance function (unit box"
                             f" or ball), not {type(self.problem.domain).__name__}")
        if constraint == "hard" and not zero_data:
            raise ValueError("constraint='hard' needs zero Dirichlet data (the ansatz is D(x)N(x));"
                             f" problem {self.problem.name!r} has non-zero boundary values: use "
                             "constraint='soft'")
        if self.loss_kind == "rayleigh" and constraint != "hard":
            raise ValueError("the Rayleigh-quotient loss needs constraint='hard'")
        return constraint

    def _build(self) -> None:
        cfg, problem = self.config, self.problem
        dim = problem.dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg["seed"])
            options = {k: v for k, v in self.model_cfg.items() if k != "name"}
            network = make_model(self.model_cfg["name"], dim, 1, **options)
        distance = problem.domain.distance if self.constraint == "hard" else None
        self.model = PINN(network, distance).to(device=self.device, dtype=self.dtype)
        self._jet_residual = self._choose_derivatives(cfg["derivatives"])
        self.generator = torch.Generator().manual_seed(cfg["seed"])
        self.sampler = CollocationSampler(
            problem.domain, cfg["batch"], cfg["sampling"], self.generator,
            n_boundary=cfg["boundary_batch"] if self.constraint == "soft" else 0,
        )  # fmt: skip
        test_gen = torch.Generator().manual_seed(cfg["seed"] + 10_007)
        self.test_x = self._to(problem.domain.sample_interior(cfg["test_points"], test_gen))
        self.monitor_x = self.test_x[: cfg["monitor_points"]]
        self.exact = (self._exact(self.test_x) if problem.has_exact_solution else None)
        with torch.no_grad():
            self.f_rms = float(torch.sqrt(torch.mean(problem.source(self.monitor_x) ** 2)))
        self.optimizer = self._make_first_optimizer()
        self.scheduler = self._make_scheduler()
        self.lbfgs: torch.optim.Optimizer | None = None
        self.step = 0
        self.history: dict[str, list[Any]] = {k: [] for k in HISTORY_KEYS}
        self.elapsed = 0.0
        self.reason = "its"
        if self.resume is not None:
            self.load(self.resume)
        elif self.init_from is not None:
            self.load_weights(self.init_from)

    def _choose_derivatives(self, kind: str) -> Callable[..., Tensor] | None:
        residual = jet_residual(self.problem)
        if kind == "autograd":
            return None
        if residual is not None and self.model.supports_jet:
            return residual
        if kind == "forward":
            why = ("the network has no closed-form activation derivatives (MLP/ResNet with "
                   "built-in activations do)" if residual is not None else
                   f"problem {self.problem.name!r} defines its own pde_residual and no "
                   "pde_residual_from_derivatives")
            raise ValueError(f"derivatives='forward' is not available: {why}; use 'autograd'")
        return None

    @property
    def derivatives(self) -> str:
        """``forward`` or ``autograd``: how this trainer computes ``Δu``."""
        return "forward" if self._jet_residual is not None else "autograd"

    def residual(self, x: Tensor) -> Tensor:
        """The PDE residual of the current network at ``x`` (keeps the graph when grad is on)."""
        if self._jet_residual is not None:
            u, grad, lap = self.model.jet(x)
            return self._jet_residual(x, u, grad, lap).reshape(-1)
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            return self.problem.pde_residual(self.model, x).reshape(-1)

    def _to(self, x: Tensor) -> Tensor:
        return x.to(device=self.device, dtype=self.dtype)

    def _exact(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.problem.exact_solution(x).reshape(-1)

    def _make_first_optimizer(self) -> torch.optim.Optimizer:
        options = {k: v for k, v in self.optimizer_cfg.items() if k != "name"}
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        return make_optimizer(self.optimizer_cfg["name"], self.model, **options)

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
        return make_optimizer("lbfgs", self.model, **self.config["lbfgs_options"])

    def _lbfgs_batch(self) -> tuple[Tensor, Tensor | None]:
        # one fixed batch for the whole L-BFGS phase, from its own seeded generator, so that a
        # resumed run sees the same points
        gen = torch.Generator().manual_seed(self.config["seed"] + 1)
        sampler = CollocationSampler(self.problem.domain, self.config["batch"], "uniform", gen,
                                     n_boundary=self.sampler.n_boundary)
        xb = self._to(sampler.boundary()) if sampler.n_boundary else None
        return self._to(sampler.interior()), xb

    # losses ----------------------------------------------------------------------------------
    def predict_and_loss(self, xi: Tensor, xb: Tensor | None) -> tuple[Tensor, Tensor]:
        """Predictions (the stacked residual vector) and the loss computed from them."""
        if self.loss_kind == "rayleigh":
            xi = xi.detach().requires_grad_(True)
            u = self.model(xi)
            grad = gradient(u, xi)
            preds = torch.cat([u, grad.reshape(-1)])
            n = u.shape[0]
            uu, gg = preds[:n], preds[n:].reshape(n, -1)
            mass = torch.mean(uu * uu)
            loss = torch.mean(torch.sum(gg * gg, dim=1)) / mass
            loss = loss + self.config["normalization_weight"] * (mass - 1.0) ** 2
            return preds, loss
        r = self.residual(xi.detach())
        if xb is None:
            return r, torch.mean(r * r)
        rb = self.model(xb) - self.problem.boundary_value(xb).reshape(-1)
        preds = torch.cat([r, rb])
        n = r.shape[0]
        loss = torch.mean(preds[:n] ** 2) + self.config["boundary_weight"] * torch.mean(
            preds[n:] ** 2
        )
        return preds, loss

    # evaluation ------------------------------------------------------------------------------
    def evaluate(self, x: Tensor | np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """The trained ``u`` at points ``x`` (numpy float64, shape (N,))."""
        x = self._to(torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x))
        with torch.no_grad():
            out = [self.model(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
        return torch.cat(out).double().cpu().numpy() if out else np.zeros(0)

    def relative_l2(self) -> float:
        """Relative L2 error on the fixed test set (NaN when no exact solution is known);
        eigenfunctions are compared after the best scaling (sign and norm are free)."""
        if self.exact is None:
            return float("nan")
        with torch.no_grad():
            u = self.model(self.test_x)
            if self.loss_kind == "rayleigh":
                u = u * torch.dot(u, self.exact) / torch.dot(u, u).clamp_min(1e-300)
            return float(torch.linalg.norm(u - self.exact) / torch.linalg.norm(self.exact))

    def residual_rms(self) -> float:
        """RMS of the PDE residual on the fixed monitor set."""
        if self._jet_residual is not None:
            with torch.no_grad():
                r = self.residual(self.monitor_x)
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

    def _log(self, phase: str, train_loss: float) -> None:
        h = self.history
        h["step"].append(self.step)
        h["phase"].append(phase)
        h["train_loss"].append(float(train_loss))
        h["residual_rms"].append(self.residual_rms())
        h["relative_l2"].append(self.relative_l2())
        h["eigenvalue"].append(self.eigenvalue() if self.loss_kind == "rayleigh" else float("nan"))
        opt = self.optimizer if phase != "lbfgs" else self.lbfgs
        h["lr"].append(float(opt.param_groups[0]["lr"]) if opt is not None else float("nan"))
        h["time"].append(self.elapsed)
        if self.callback is not None:
            self.callback(self)

    # training --------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.config["steps"] + self.config["lbfgs_steps"]

    @property
    def checkpoint_path(self) -> Path | None:
        return self.output_dir / "checkpoint.pt" if self.output_dir is not None else None

    def fit(self) -> dict[str, list[Any]]:
        """Train until the budget (or the tolerance) is reached; returns the history."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.step == 0 and not self.history["step"]:
            self._log(self.optimizer_cfg["name"], float("nan"))
        threshold = max(self.rtol * self.f_rms, self.atol)
        last_good: str | None = None
        bar = tqdm(total=self.total_steps, initial=self.step, desc="pinn", leave=False,
                   disable=None if self.progress is None else not self.progress)
        lbfgs_batch = None
        try:
            while self.step < self.total_steps and self.reason == "its":
                t0 = time.perf_counter()
                if self.step < cfg["steps"]:
                    phase, optimizer = self.optimizer_cfg["name"], self.optimizer
                    xi = self._to(self.sampler.interior())
                    xb = self._to(self.sampler.boundary()) if self.sampler.n_boundary else None
                else:
                    phase = "lbfgs"
                    if self.lbfgs is None:
                        self.lbfgs = self._make_lbfgs()
                    if lbfgs_batch is None:
                        lbfgs_batch = self._lbfgs_batch()
                    optimizer, (xi, xb) = self.lbfgs, lbfgs_batch
                try:
                    loss = take_step(optimizer, lambda xi=xi, xb=xb: self.predict_and_loss(xi, xb))
                except FloatingPointError as exc:
                    raise TrainingDivergedError(self.step, last_good, f" ({exc})") from exc
                finite = math.isfinite(loss) and bool(torch.isfinite(
                    torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])).all())
                if not finite:
                    raise TrainingDivergedError(self.step, last_good)
                if phase != "lbfgs" and self.scheduler is not None:
                    self.scheduler.step()
                self.step += 1
                self.elapsed += time.perf_counter() - t0
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
            self.write_metrics()
        return self.history

    # checkpoints -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike | None = None) -> str:
        """Write a checkpoint (default ``output_dir/checkpoint.pt``); returns its path."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: give output_dir or a path")
        save_checkpoint(
            path, step=self.step, config=self.config, model=self.model.network,
            optimizer=self.optimizer, scheduler=self.scheduler,
            rng=capture_rng({"sampling": self.generator}), history=self.history,
            lbfgs=self.lbfgs.state_dict() if self.lbfgs is not None else None,
            elapsed=self.elapsed, reason=self.reason,
        )  # fmt: skip
        return str(path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Transfer learning: take the network weights of a checkpoint (same model config)."""
        ckpt = load_checkpoint(path, map_location=self.device)
        if _plain(ckpt["config"].get("model")) != self.config["model"]:
            raise ValueError(f"checkpoint {str(path)!r} holds a different model "
                             f"({ckpt['config'].get('model')}), not {self.config['model']}")
        self.model.network.load_state_dict(ckpt["model"])

    def load(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint of a run with the same configuration."""
        ckpt = load_checkpoint(path, map_location=self.device)
        ignore = {"steps", "lbfgs_steps", "test_points", "log_every", "init_from", "derivatives"}
        mine = {k: v for k, v in self.config.items() if k not in ignore}
        theirs = {k: v for k, v in ckpt["config"].items() if k not in ignore}
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"checkpoint {str(path)!r} was made with a different configuration "
                             f"(differs in: {', '.join(diff)})")
        self.model.network.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("lbfgs") is not None:
            self.lbfgs = self._make_lbfgs()
            self.lbfgs.load_state_dict(ckpt["lbfgs"])
        restore_rng(ckpt["rng"], {"sampling": self.generator})
        self.step = int(ckpt["step"])
        self.history = {k: list(v) for k, v in ckpt["history"].items()}
        self.elapsed = float(ckpt.get("elapsed", 0.0))

    # outputs ---------------------------------------------------------------------------------
    def write_metrics(self) -> None:
        """``metrics.csv`` and ``training.png`` (loss, residual and error vs step) in output_dir."""
        assert self.output_dir is not None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".csv", dir=self.output_dir)
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(HISTORY_KEYS)
            writer.writerows(zip(*(self.history[k] for k in HISTORY_KEYS), strict=True))
        os.replace(tmp, self.output_dir / "metrics.csv")
        plot_history(self.history, self.output_dir / "training.png",
                     title=f"PINN on {self.problem.name}")


def plot_history(
    history: Mapping[str, list[Any]], path: str | os.PathLike, title: str = ""
) -> None:
    """Loss, residual RMS and relative L2 error against the step, log scale, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.asarray(history["step"])
    for key, label in (("train_loss", "training loss"), ("residual_rms", "residual RMS"),
                       ("relative_l2", "relative L2 error")):
        values = np.asarray(history[key], dtype=float)
        ok = np.isfinite(values) & (values > 0)
        if ok.any():
            ax.semilogy(steps[ok], values[ok], label=label)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=Path(path).parent)
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error when CUDA is asked for but absent."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: CUDA is not available on this machine "
                         "(torch.cuda.is_available() is False); use device='cpu'")
    return dev


def _check_continuous_form(problem: Any) -> None:
    name = getattr(problem, "name", type(problem).__name__)
    domain = getattr(problem, "domain", None)
    if domain is None or not hasattr(problem, "pde_residual"):
        raise ValueError(f"problem {name!r} has no continuous form (domain and pde_residual); "
                         "the PINN solver needs one")
    try:
        x = domain.sample_interior(2, torch.Generator().manual_seed(0))
        problem.source(x)
    except NotImplementedError as exc:
        raise ValueError(f"problem {name!r} has no continuous PDE form for a PINN: {exc}") from exc


def load_pinn(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[PINN, Any]:
    """Rebuild the trained network and its problem from a checkpoint alone.

    Returns ``(model, problem)``; ``model(x)`` evaluates ``u`` at points ``x`` (shape (N, dim)).
    """
    from pdesolve.problems import get_problem

    ckpt = load_checkpoint(path, map_location=map_location)
    cfg = ckpt["config"]
    problem = get_problem(cfg["problem"]["name"], **cfg["problem"]["params"])
    options = {k: v for k, v in cfg["model"].items() if k != "name"}
    network = make_model(cfg["model"]["name"], problem.dim, 1, **options)
    network.load_state_dict(ckpt["model"])
    distance = problem.domain.distance if cfg["constraint"] == "hard" else None
    return PINN(network, distance).to(DTYPES[cfg["dtype"]]).eval(), problem
