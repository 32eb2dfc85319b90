"""Self-describing training checkpoints: weights, optimizer, RNG states, config and versions.

A checkpoint is one ``torch.save`` file holding a dict with ``format``, ``pdesolve``/``torch``
versions, ``step``, ``config`` (everything needed to rebuild the model and resume, plain Python
types), ``model``/``optimizer``/``scheduler`` state dicts, ``rng`` (the torch CPU/CUDA global
states and any named ``torch.Generator`` states) and ``history``. Writes are atomic (temporary
file, then rename), so a crash never leaves a half-written checkpoint.

>>> import tempfile, torch
>>> net = torch.nn.Linear(2, 1)
>>> path = tempfile.mkdtemp() + "/ckpt.pt"
>>> save_checkpoint(path, step=3, config={"width": 1}, model=net)
>>> ckpt = load_checkpoint(path)
>>> ckpt["step"], ckpt["config"], sorted(ckpt["model"])
(3, {'width': 1}, ['bias', 'weight'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pdesolve.io import move_into_place

FORMAT = "pdesolve-checkpoint-v1"

__all__ = [
    "FORMAT", "capture_rng", "check_device", "load_checkpoint", "restore_rng", "resume_training",
    "save_checkpoint",
    "target_device",
]  # fmt: skip


def check_device(device: Any) -> None:
    """Raise a clear ``ValueError`` for a torch device this machine does not have.

    >>> check_device("cpu")
    >>> try:
    ...     check_device("gpu")
    ... except ValueError as exc:
    ...     print(str(exc)[:37])
    device='gpu' is not a torch device: E
    """
    if device is None or callable(device) or isinstance(device, dict):
        return  # a map_location that is not one device
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} but torch sees no CUDA device on this machine "
            "(torch.cuda.is_available() is False); use device='cpu'"
        )


def target_device(map_location: Any) -> torch.device | None:
    """The one device a ``map_location`` names (None for a callable or a mapping), so that a
    model rebuilt from a checkpoint can be put there: ``load_state_dict`` copies the loaded
    tensors into the model's own parameters, wherever those live.

    >>> target_device("cpu"), target_device(lambda storage, loc: storage)
    (device(type='cpu'), None)
    """
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return None
    return torch.device(map_location)


def capture_rng(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """The global torch RNG states (CPU and CUDA when available) and those of ``generators``."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    state["generators"] = {k: g.get_state() for k, g in (generators or {}).items()}
    return state


def restore_rng(state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None):
    """Put back what :func:`capture_rng` recorded (generators matched by name)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise KeyError(f"checkpoint has no RNG state for generator {name!r}")
        gen.set_state(saved[name])


def resume_training(ckpt: Mapping[str, Any], model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, numpy_rng: Any) -> tuple[Any, Any, int]:
    """Continue a training loop from a checkpoint that :func:`save_checkpoint` wrote with
    ``numpy_rng`` and ``problems`` extras: the model, optimizer and random states are put back
    (``numpy_rng``, a ``numpy.random.Generator``, in place); returns ``(problems, history,
    step)``."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    restore_rng(ckpt["rng"])
    numpy_rng.bit_generator.state = ckpt["numpy_rng"]
    return ckpt["problems"], ckpt["history"], ckpt["step"]


def save_checkpoint(
    path: str | os.PathLike,
    *,
    step: int,
    config: Mapping[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    rng: Mapping[str, Any] | None = None,
    history: Any = None,
    **extra: Any,
) -> None:
    """Write a checkpoint atomically to ``path`` (parent folders are created)."""
    import pdesolve

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "versions": {"pdesolve": pdesolve.__version__, "torch": torch.__version__},
        "step": int(step),
        "config": dict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": dict(rng) if rng is not None else capture_rng(),
        "history": history,
        **extra,
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(data, tmp)
        move_into_place(tmp, path, overwrite=True)  # the mode of a new file, not mkstemp's 0600
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with a clear error otherwise."""
    check_device(map_location)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise ValueError(f"could not read checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a pdesolve checkpoint (format {FORMAT})")
    return data
