"""Option handling shared by the PINN trainer's modules: names, plain config values, checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["DERIVATIVES", "DTYPES", "SCHEDULES", "as_named", "check_continuous_form", "device",
           "plain"]  # fmt: skip

DTYPES = {"float64": torch.float64, "float32": torch.float32}
SCHEDULES = ("none", "step", "exponential", "cosine")
DERIVATIVES = ("auto", "forward", "autograd")


def as_named(value: str | Mapping[str, Any] | None, default: str) -> dict[str, Any]:
    """``{"name": ..., **options}`` from a name, a dict or None (``default``)."""
    if value is None:
        return {"name": default}
    if isinstance(value, str):
        return {"name": value}
    out = dict(value)
    out.setdefault("name", default)
    return out


def plain(value: Any) -> Any:
    """Config values as plain Python (tuples/lists, dicts), for checkpoints and JSON."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def device(name: str | torch.device) -> torch.device:
    """``torch.device(name)``, with a clear error when CUDA is asked for but absent."""
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(name)!r}: CUDA is not available on this machine "
                         "(torch.cuda.is_available() is False); use device='cpu'")
    return dev


def check_continuous_form(problem: Any) -> None:
    """A clear error unless ``problem`` has a domain and a PDE residual a PINN can train on."""
    name = getattr(problem, "name", type(problem).__name__)
    domain = getattr(problem, "domain", None)
    if domain is None or not hasattr(problem, "pde_residual"):
        raise ValueError(f"problem {name!r} has no continuous form (domain and pde_residual); "
                         "the PINN solver needs one")
    if getattr(problem, "kind", "stationary") == "time_dependent":
        return
    try:
        x = domain.sample_interior(2, torch.Generator().manual_seed(0))
        problem.source(x)
    except NotImplementedError as exc:
        raise ValueError(f"problem {name!r} has no continuous PDE form for a PINN: {exc}") from exc
