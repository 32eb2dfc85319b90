"""Time-marching PINNs (:class:`MarchingTrainer`): sequential training in time windows.

``[t0, T]`` is split into ``K`` windows; window ``k`` trains its own network on
``[t_k, t_{k+1}]`` with a :class:`~pdesolve.train.pinn.PINNTrainer` (every option of which
keeps working: Fourier periodic features, causal weights within the window, RAR, adaptive
weights, the quasi-Newton finishers, checkpoints) and the hard initial condition
``u_k(x, t) = u_{k-1}(x, t_k) + (t - t_k)/(t_{k+1} - t_k) D(x) N_k(x, t)`` built from the
previous window's frozen network (window 0: the problem's initial data). A window thus costs
like one small PINN: on a fixed collocation set, with the fused space-time jet, the previous
window's values and x-derivatives at ``t_k`` are computed once. The composite
(:class:`~pdesolve.train.pinn.windows.MarchingPINN`) is continuous at the joints by
construction.

With ``output_dir`` every window trains in its own folder ``window_<k>/`` and the run's state
is in ``marching.json``; ``resume=True`` skips the finished windows (their checkpoints are
loaded) and resumes an interrupted one from its checkpoint, so a killed run resumed gives the
uninterrupted result. ``load_pinn(output_dir)`` rebuilds the composite.

>>> import pdesolve
>>> from pdesolve.train.pinn.marching import MarchingTrainer
>>> problem = pdesolve.get_problem("heat", dim=1)
>>> marching = MarchingTrainer(problem, windows=2, model={"name": "mlp", "width": 12,
...                            "depth": 2}, steps=150, batch=64, sampling="uniform",
...                            optimizer={"name": "adam", "lr": 1e-2}, log_every=50,
...                            test_grid=[21, 11], progress=False)
>>> summary = marching.fit()
>>> [w["t_span"] for w in summary["windows"]]
[[0.0, 0.5], [0.5, 1.0]]
>>> summary["relative_l2"] < 0.2
True
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.io import write_csv, write_json
from pdesolve.train.pinn import callbacks
from pdesolve.train.pinn.config import plain
from pdesolve.train.pinn.model import freeze, window_model
from pdesolve.train.pinn.network import PINN
from pdesolve.train.pinn.trainer import PINNTrainer
from pdesolve.train.pinn.windows import (
    STATE_FILE,
    MarchingPINN,
    WindowProblem,
    WindowStart,
    window_edges,
)

__all__ = ["MarchingTrainer", "WindowBudget"]
# options of the run that a resumed run may change (budgets and what is only measured)
_RESUMABLE = {"budget", "steps", "lbfgs_steps", "bfgs_steps", "log_every", "test_points",
              "reference", "checkpoint_every", "progress"}  # fmt: skip
_OWN = {"output_dir", "resume", "callback", "init_from"}  # set per window here, or refused


class WindowBudget:
    """A trainer callback that spends ``seconds`` of training CPU time on one window: the first
    phase until ``adam_fraction · seconds`` when a quasi-Newton phase follows (then that phase
    until ``seconds``), else the first phase until ``seconds``.

    It reads ``trainer.cpu_elapsed`` (process CPU seconds inside training steps), so the
    budget does not depend on the machine's load; it is checked at every logged step.
    """

    def __init__(self, seconds: float, adam_fraction: float = 0.5) -> None:
        if not seconds > 0 or not 0 < adam_fraction <= 1:
            raise ValueError(f"a window budget needs seconds > 0 and 0 < adam_fraction <= 1, "
                             f"got {seconds} and {adam_fraction}")
        self.seconds, self.adam_fraction = float(seconds), float(adam_fraction)

    def __call__(self, trainer: PINNTrainer) -> None:
        cfg = trainer.config
        quasi_newton = cfg["lbfgs_steps"] + cfg.get("bfgs_steps", 0) > 0
        first = self.seconds * self.adam_fraction if quasi_newton else self.seconds
        if trainer.step < cfg["steps"] and trainer.cpu_elapsed >= first:
            cfg["steps"] = trainer.step  # on to the quasi-Newton phase (or the end)
            if not quasi_newton:
                trainer.reason = "time"
        elif trainer.cpu_elapsed >= self.seconds:
            trainer.reason = "time"


class MarchingTrainer:
    """Train a time-dependent problem window by window; see :mod:`pdesolve.train.pinn.marching`.

    Parameters
    ----------
    problem : TimeDependentProblem
        A registry problem of first order in time (not an inverse run).
    windows : int or sequence of float
        ``K`` equal windows, or the ``K + 1`` window edges from ``t0`` to ``T`` (e.g. shorter
        windows where the solution changes fast).
    budget : float, optional
        Training CPU seconds for the whole run, split over the windows by ``shares`` (default
        equal); each window's share ends its phases as :class:`WindowBudget` says
        (``steps``, ``lbfgs_steps`` and ``bfgs_steps`` are then upper limits).
    shares : sequence of float, optional
        Relative budget shares of the windows (positive, one per window).
    adam_fraction : float
        With a budget: the share of each window's budget for the first phase before the
        quasi-Newton phase.
    warm_start : bool
        Start window ``k``'s network from window ``k-1``'s weights (same architecture) instead
        of a fresh seeded initialisation.
    output_dir : path, optional
        The run folder: ``window_<k>/`` per window (a PINNTrainer run folder each),
        ``marching.json`` (the state), ``metrics.csv`` (one row per window), ``summary.json``
        and ``solution.png`` of the composite. A folder holding a run is refused unless
        ``resume``.
    resume : bool
        Continue the run in ``output_dir``: finished windows are loaded, not retrained; an
        interrupted window resumes from its checkpoint (``checkpoint_every``).
    callback : callable, optional
        Called as ``callback(window, trainer)`` after every logged step of every window.
    **options
        :class:`~pdesolve.train.pinn.PINNTrainer` options, the same for every window (window
        ``k`` is seeded ``seed + k``); ``test_grid`` is the composite's test grid on ``[t0,
        T]`` (each window is also measured on its part of it).
    """

    def __init__(
        self,
        problem: Any,
        *,
        windows: int | Sequence[float] = 2,
        budget: float | None = None,
        shares: Sequence[float] | None = None,
        adam_fraction: float = 0.5,
        warm_start: bool = False,
        output_dir: str | os.PathLike | None = None,
        resume: bool = False,
        callback: Callable[[int, PINNTrainer], None] | None = None,
        **options: Any,
    ) -> None:
        name = getattr(problem, "name", type(problem).__name__)
        if getattr(problem, "kind", "stationary") != "time_dependent":
            raise ValueError(f"time-marching needs a time-dependent problem; {name!r} is "
                             "stationary (train it with PINNTrainer)")
        if getattr(problem, "time_order", 1) != 1:
            raise ValueError(f"time-marching supports problems of first order in time; {name!r} "
                             f"is of order {problem.time_order} (train it with PINNTrainer)")
        accepted = {p.name for p in inspect.signature(PINNTrainer).parameters.values()
                    if p.kind is p.KEYWORD_ONLY}  # fmt: skip
        unknown = sorted(set(options) - accepted)
        if unknown:
            known = ", ".join(sorted(accepted - _OWN))
            raise TypeError(f"MarchingTrainer got unknown options {unknown}; it takes windows, "
                            "budget, shares, adam_fraction, warm_start, output_dir, resume, "
                            f"callback and the PINNTrainer options ({known})")
        options = {k_: v for k_, v in options.items() if not (k_ in _OWN and v is None)}
        refused = sorted(set(options) & _OWN)
        if refused:
            raise ValueError(f"{refused} are set per window by the time-marching run; give "
                             "output_dir/resume/callback to MarchingTrainer (init_from: use "
                             "warm_start)")
        if options.get("inverse"):
            raise ValueError("time-marching does not identify parameters (inverse=True): train "
                             "inverse problems with PINNTrainer")
        self.edges = window_edges(windows, problem.t_span)
        k = len(self.edges) - 1
        if budget is not None and not (math.isfinite(float(budget)) and float(budget) > 0):
            raise ValueError(f"budget must be a positive number of CPU seconds, got {budget!r}")
        if shares is not None:
            shares = [float(s) for s in shares]
            if len(shares) != k or not all(math.isfinite(s) and s > 0 for s in shares):
                raise ValueError(f"shares must be {k} positive numbers (one per window), got "
                                 f"{shares}")
            if budget is None:
                raise ValueError("shares split a budget: give budget (CPU seconds) too")
        if not 0 < float(adam_fraction) <= 1:
            raise ValueError(f"adam_fraction must be in (0, 1], got {adam_fraction!r}")
        if resume and output_dir is None:
            raise ValueError("resume=True continues the run in output_dir: give output_dir")
        self.problem = problem
        self.budget = None if budget is None else float(budget)
        self.shares = shares or [1.0] * k
        self.adam_fraction = float(adam_fraction)
        self.warm_start = bool(warm_start)
        self.callback = callback
        self.plots = bool(options.pop("plots", True))
        self.options = dict(options)
        self.seed = int(options.get("seed", 0))
        grid = options.get("test_grid") or (101, 51)
        self.test_grid = [int(v) for v in grid]
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.config = plain({
            "problem": {"name": problem.name, "params": dict(problem.params)},
            "edges": self.edges, "budget": self.budget, "shares": self.shares,
            "adam_fraction": self.adam_fraction, "warm_start": self.warm_start,
            "options": {k_: v for k_, v in self.options.items() if k_ != "progress"},
        })  # fmt: skip
        self.state: dict[str, Any] = {"config": self.config, "windows": [None] * k}
        if self.output_dir is not None:
            self._open_folder(bool(resume))
        self.models: list[PINN] = []
        self.histories: list[dict[str, list[Any]] | None] = [None] * k
        self.model: MarchingPINN | None = None
        self.window_trainer: PINNTrainer | None = None

    # folder and state ------------------------------------------------------------------------
    @property
    def state_path(self) -> Path | None:
        return None if self.output_dir is None else self.output_dir / STATE_FILE

    def _open_folder(self, resume: bool) -> None:
        assert self.state_path is not None
        exists = self.state_path.exists()
        if exists and not resume:
            raise FileExistsError(f"output folder {str(self.output_dir)!r} already holds a "
                                  f"time-marching run ({STATE_FILE}); resume it (resume=True) "
                                  "or choose another output folder")
        if not exists:
            if resume:
                raise FileNotFoundError(f"nothing to resume: no {STATE_FILE} in "
                                        f"{str(self.output_dir)!r}")
            if self.output_dir.exists() and any(self.output_dir.glob("window_*")):
                raise FileExistsError(f"output folder {str(self.output_dir)!r} holds window "
                                      "folders but no run state; choose another output folder")
            return
        saved = json.loads(self.state_path.read_text())
        mine, theirs = _comparable(self.config), _comparable(saved["config"])
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise ValueError(f"the run in {str(self.output_dir)!r} was made with a different "
                             f"configuration (differs in: {', '.join(diff)}); resume with the "
                             "same options or start a new run in another output folder")
        self.state["windows"] = saved["windows"]

    def _write_state(self) -> None:
        if self.state_path is None:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.state_path, self.state, overwrite=True)

    def _folder(self, k: int) -> Path | None:
        return None if self.output_dir is None else self.output_dir / f"window_{k:02d}"

    # windows ---------------------------------------------------------------------------------
    def window_problem(self, k: int) -> WindowProblem:
        """The problem of window ``k`` (its initial data from the trained window ``k-1``)."""
        start = None if k == 0 else WindowStart(self.models[k - 1], self.edges[k])
        return WindowProblem(self.problem, (self.edges[k], self.edges[k + 1]), start, index=k)

    def _window_grid(self, k: int) -> list[int]:
        t0, t1 = self.edges[0], self.edges[-1]
        share = (self.edges[k + 1] - self.edges[k]) / (t1 - t0)
        return [self.test_grid[0], max(2, round((self.test_grid[1] - 1) * share) + 1)]

    def _trainer(self, k: int) -> PINNTrainer:
        folder = self._folder(k)
        resume = folder is not None and (folder / "checkpoint.pt").exists()
        calls: list[Callable[[PINNTrainer], None]] = []
        if self.budget is not None:
            share = self.budget * self.shares[k] / sum(self.shares)
            calls.append(WindowBudget(share, self.adam_fraction))
        if self.callback is not None:
            user = self.callback
            calls.append(lambda trainer: user(k, trainer))

        def callback(trainer: PINNTrainer) -> None:
            for call in calls:
                call(trainer)

        options = {**self.options, "seed": self.seed + k, "test_grid": self._window_grid(k),
                   "plots": False}
        trainer = PINNTrainer(self.window_problem(k), output_dir=folder, resume=resume or None,
                              callback=callback if calls else None, **options)  # fmt: skip
        if self.warm_start and k > 0 and not resume:
            trainer.model.network.load_state_dict(self.models[k - 1].network.state_dict())
        return trainer

    def _load_window(self, k: int) -> PINN:
        folder = self._folder(k)
        assert folder is not None
        model, history = window_model(self.window_problem(k), folder / "checkpoint.pt")
        self.histories[k] = history
        return model

    def fit(self) -> dict[str, Any]:
        """Train the windows not yet finished, in order; returns :meth:`summary`."""
        self.models = []
        for k in range(len(self.edges) - 1):
            record = self.state["windows"][k]
            folder = self._folder(k)
            if record is not None and record.get("done") and folder is not None and \
                    (folder / "checkpoint.pt").exists():
                self.models.append(self._load_window(k))
                continue
            trainer = self._trainer(k)
            self.window_trainer = trainer
            self.histories[k] = trainer.fit()
            model = trainer.model
            freeze(model)
            self.models.append(model)
            summary = trainer.summary()
            self.state["windows"][k] = {
                "index": k, "t_span": [self.edges[k], self.edges[k + 1]], "done": True,
                "folder": folder.name if folder is not None else None,
                "relative_l2": summary["relative_l2"], "residual_rms": summary["residual_rms"],
                "steps": trainer.step, "first_phase_steps": min(trainer.config["steps"],
                                                                trainer.step),
                "train_cpu_time": trainer.cpu_elapsed, "train_time": trainer.elapsed,
                "reason": trainer.reason,
            }  # fmt: skip
            self._write_state()
        self.window_trainer = None
        self.model = MarchingPINN(self.edges, self.models).eval()
        out = self.summary()
        if self.output_dir is not None:
            self.write_outputs(out)
        return out

    def history(self) -> dict[str, list[Any]]:
        """The windows' training histories one after the other (``step`` counted over the
        whole run), with a ``window`` column."""
        out: dict[str, list[Any]] = {}
        offset = 0
        for k, h in enumerate(self.histories):
            if h is None:
                continue
            n = len(h["step"])
            for key, values in h.items():
                if len(values) == n:
                    out.setdefault(key, []).extend(values)
            out["step"][-n:] = [offset + s for s in h["step"]]
            out.setdefault("window", []).extend([k] * n)
            offset += int(h["step"][-1]) if n else 0
        return out

    # results ---------------------------------------------------------------------------------
    def test_data(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The composite's test grid on ``[t0, T]`` and the exact or reference values there."""
        pts = np.asarray(self.problem.test_points(*self.test_grid), dtype=np.float64)
        if self.problem.has_exact_solution:
            with torch.no_grad():
                exact = self.problem.exact_solution(torch.as_tensor(pts)).reshape(-1)
            return pts, exact.double().numpy()
        if hasattr(self.problem, "reference"):
            ref = self.problem.reference(**dict(self.options.get("reference") or {}))
            return pts, np.asarray(ref.evaluate(pts), dtype=np.float64)
        return pts, None

    def summary(self) -> dict[str, Any]:
        """The composite's relative L2 error on the test grid (overall and per window, on the
        grid's points in each window) and each window's record (its own error, steps, CPU
        seconds)."""
        if self.model is None:
            raise RuntimeError("fit() first")
        pts, exact = self.test_data()
        u = self.model.predict(pts)
        records = [dict(w) for w in self.state["windows"]]
        out: dict[str, Any] = {
            "problem": self.problem.name, "windows": records, "edges": self.edges,
            "relative_l2": None, "train_cpu_time": sum(w["train_cpu_time"] for w in records),
            "train_time": sum(w["train_time"] for w in records),
            "error_against": ("exact" if self.problem.has_exact_solution else
                              "reference" if exact is not None else None),
            "test_grid": self.test_grid,
        }  # fmt: skip
        if exact is not None:
            out["relative_l2"] = _rel(u, exact)
            index = self.model.window_of(torch.as_tensor(pts[:, -1])).numpy()
            for k, record in enumerate(records):
                keep = index == k
                record["composite_relative_l2"] = _rel(u[keep], exact[keep]) if keep.any() \
                    else None
        return out

    def write_outputs(self, summary: Mapping[str, Any]) -> None:
        """``metrics.csv`` (one row per window), ``summary.json``, ``training.png`` (the windows'
        histories one after the other) and ``solution.png``."""
        assert self.output_dir is not None
        keys = ("index", "t_span", "relative_l2", "composite_relative_l2", "residual_rms",
                "steps", "first_phase_steps", "train_cpu_time", "train_time", "reason")
        rows = [{k: (f"{w[k][0]:g}-{w[k][1]:g}" if k == "t_span" else w.get(k)) for k in keys}
                for w in summary["windows"]]  # fmt: skip
        write_csv(self.output_dir / "metrics.csv", rows, columns=list(keys))
        write_json(self.output_dir / "summary.json", dict(summary), overwrite=True)
        if not self.plots:
            return
        history = self.history()
        if history:
            callbacks.plot_history(history, self.output_dir / "training.png",
                                   title=f"time-marching PINN on {self.problem.name}")
        pts, exact = self.test_data()
        if pts.shape[1] == 2 and self.model is not None:
            callbacks.plot_solution(pts, self.model.predict(pts), exact,
                                    self.output_dir / "solution.png",
                                    title=f"time-marching PINN on {self.problem.name} "
                                          f"({len(self.edges) - 1} windows)", time_last=True)


def _rel(u: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in config.items() if k not in _RESUMABLE}
    out["options"] = {k: v for k, v in dict(config.get("options", {})).items()
                      if k not in _RESUMABLE}
    return out
