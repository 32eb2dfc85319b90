"""Building a PINN from its configuration, and loading a trained one from its checkpoint.

``model, problem = load_pinn(path)`` rebuilds the trained network and its problem from the
checkpoint alone (a ``checkpoint.pt`` or the run folder holding it, e.g. the CLI's output
folder); ``model.predict(points)`` evaluates ``u`` at any user points, e.g. an ``(N, 2)`` array of
``(x, t)`` for a 1D time-dependent problem. A time-marching run folder (one network per time
window, :mod:`pdesolve.train.pinn.marching`) loads with the same call, as the composite
:class:`~pdesolve.train.pinn.windows.MarchingPINN`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pdesolve.nn.checkpoint import check_device, load_checkpoint, target_device
from pdesolve.nn.mlp import make_model
from pdesolve.problems.geometry import boundary_lift, has_boundary_lift
from pdesolve.train.pinn.config import DTYPES
from pdesolve.train.pinn.network import PINN, HardInitial, PeriodicFeatures
from pdesolve.train.pinn.windows import STATE_FILE, MarchingPINN, WindowProblem, WindowStart

__all__ = ["build_pinn", "freeze", "lift_of", "load_pinn", "space_box", "window_model",
           "zero_boundary_data"]


def space_box(space: Any) -> tuple[list[float], list[float]]:
    """``(lo, hi)`` of a spatial domain's bounding box as lists of floats."""
    box = space.bounding_box
    box = box() if callable(box) else box
    lo, hi = box
    return [float(v) for v in np.atleast_1d(lo)], [float(v) for v in np.atleast_1d(hi)]


def zero_boundary_data(problem: Any) -> bool:
    """Whether the problem's Dirichlet data vanish (checked at 256 seeded boundary points)."""
    xb = problem.domain.sample_boundary(256, torch.Generator().manual_seed(0))
    return bool(torch.all(problem.boundary_value(xb).abs() <= 1e-12))


def lift_of(problem: Any, space: Any) -> Callable[[Tensor], Tensor] | None:
    """``G(x) = boundary_lift(space, g, x)`` for non-zero data ``g`` on a shape that has one,
    else None (zero data need no lift)."""
    if zero_boundary_data(problem):
        return None
    if not has_boundary_lift(space):
        raise ValueError(f"problem {problem.name!r} has non-zero boundary values on "
                         f"{space!r}, which has no smooth boundary lift (supported: a "
                         "rectangle or disk minus disks); use constraint='soft'")

    def lift(x: Tensor) -> Tensor:
        return boundary_lift(space, problem.boundary_value, x)

    return lift


def normalized_distance(space: Any) -> Callable[[Tensor], Tensor]:
    """``space.distance / max(distance)`` (the maximum over 4096 seeded interior points), so that
    ``D N`` with an O(1) network output spans O(1) values; for lifts of non-zero data, where the
    unscaled product distances (at most 1/16 on a unit square) would make ``N`` large."""
    with torch.no_grad():
        x = space.sample_interior(4096, torch.Generator().manual_seed(0))
        scale = float(space.distance(x).max())

    def distance(x: Tensor) -> Tensor:
        return space.distance(x) / scale

    return distance


def build_pinn(problem: Any, config: Mapping[str, Any]) -> PINN:
    """The (untrained, seeded) PINN of a run configuration: network, input features and hard
    constraints as the trainer chose them (``config["constraint"]``, ``initial_constraint``;
    non-zero Dirichlet data through a boundary lift)."""
    features = initial = None
    distance: Callable[[Tensor], Tensor] | None = None
    lift: Callable[[Tensor], Tensor] | None = None
    in_dim = problem.dim
    hard = config["constraint"] == "hard"
    if getattr(problem, "kind", "stationary") == "time_dependent":
        periodic = tuple(bool(p) for p in getattr(problem, "periodic", ()))
        space_d = None
        if any(periodic):
            lo, hi = space_box(problem.domain.space)
            features = PeriodicFeatures(periodic, [h - v for v, h in zip(lo, hi, strict=True)],
                                        modes=int(config.get("fourier_modes", 1)))
            in_dim = features.out_dim
        elif hard:
            space_d = problem.domain.space.distance
            lift = lift_of(problem, problem.domain.space)
            if lift is not None:
                space_d = normalized_distance(problem.domain.space)
        if config.get("initial_constraint") == "hard":
            velocity = (problem.initial_velocity
                        if getattr(problem, "time_order", 1) == 2 else None)
            initial = HardInitial(problem.initial_value, problem.t_span, space_d, velocity, lift)
            lift = None
        elif space_d is not None:
            def distance(x: Tensor, d: Callable[[Tensor], Tensor] = space_d) -> Tensor:
                return d(x[:, :-1])
    elif hard:
        distance = problem.domain.distance
        lift = lift_of(problem, problem.domain)
        if lift is not None:
            distance = normalized_distance(problem.domain)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config["seed"]))
        model_cfg = config["model"]
        options = {k: v for k, v in model_cfg.items() if k != "name"}
        network = make_model(model_cfg["name"], in_dim, 1, **options)
    return PINN(network, distance, features=features, initial=initial, lift=lift)


def load_pinn(path: str | os.PathLike,
              map_location: Any = "cpu") -> tuple[PINN | MarchingPINN, Any]:
    """Rebuild the trained network and its problem from a checkpoint alone.

    ``path`` is a ``checkpoint.pt`` or a run folder holding one, or a time-marching run folder
    (holding ``marching.json`` and one ``window_<k>/`` per window), which gives the composite
    :class:`~pdesolve.train.pinn.windows.MarchingPINN`. Returns ``(model, problem)``;
    ``model(x)`` evaluates ``u`` at a tensor ``x`` of shape (N, dim) and ``model.predict(points)``
    at any array-like of points (numpy in, numpy out). Time is the last column for
    time-dependent problems.
    """
    from pdesolve.problems import get_problem

    if isinstance(map_location, str):
        check_device(map_location)
    path = Path(path)
    device = target_device(map_location)  # load on the CPU, then move the rebuilt model there
    if path.is_dir() and (path / STATE_FILE).is_file():
        model, problem = _load_marching(path)
        return (model.to(device) if device is not None else model).eval(), problem
    if path.is_dir():
        path = path / "checkpoint.pt"
    ckpt = load_checkpoint(path, map_location="cpu" if device is not None else map_location)
    cfg = ckpt["config"]
    if "window" in cfg["problem"]["params"]:
        raise ValueError(f"{str(path)!r} holds one window of a time-marching run: load the run "
                         f"folder {str(path.parent.parent)!r} (its {STATE_FILE}) for the whole "
                         "solution")
    problem = get_problem(cfg["problem"]["name"], **cfg["problem"]["params"])
    # in the trained precision before the weights go in (float32 parameters would round them)
    model = build_pinn(problem, cfg).to(DTYPES[cfg["dtype"]])
    model.network.load_state_dict(ckpt["model"])
    if device is not None:  # the rebuilt model lives where the caller mapped the checkpoint
        model = model.to(device)
    return model.eval(), problem


def freeze(model: torch.nn.Module) -> None:
    """Evaluation mode and no gradients for the parameters (a finished time window)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def window_model(problem: WindowProblem, path: str | os.PathLike) -> tuple[PINN, dict]:
    """The frozen, trained network of one time window (its checkpoint ``path``) and its
    training history."""
    ckpt = load_checkpoint(path, map_location="cpu")
    model = build_pinn(problem, ckpt["config"]).to(DTYPES[ckpt["config"]["dtype"]])
    model.network.load_state_dict(ckpt["model"])
    freeze(model)
    return model, {k: list(v) for k, v in ckpt["history"].items()}


def _load_marching(folder: Path) -> tuple[MarchingPINN, Any]:
    """The composite network and the problem of a finished time-marching run folder."""
    from pdesolve.problems import get_problem

    state = json.loads((folder / STATE_FILE).read_text())
    cfg = state["config"]
    problem = get_problem(cfg["problem"]["name"], **cfg["problem"]["params"])
    edges = [float(t) for t in cfg["edges"]]
    missing = [k for k, w in enumerate(state["windows"]) if not (w and w.get("done"))]
    if missing:
        raise ValueError(f"the time-marching run in {str(folder)!r} is unfinished (windows "
                         f"{missing} not trained yet); resume it first (resume=True)")
    models: list[PINN] = []
    for k in range(len(edges) - 1):
        start = None if k == 0 else WindowStart(models[k - 1], edges[k])
        window = WindowProblem(problem, (edges[k], edges[k + 1]), start, index=k)
        models.append(window_model(window, folder / f"window_{k:02d}" / "checkpoint.pt")[0])
    return MarchingPINN(edges, models), problem
