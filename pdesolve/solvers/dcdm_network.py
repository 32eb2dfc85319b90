"""The DCDM network as a preconditioner: ``r -> f(r / ||r||)`` on the system's grid.

The deep conjugate direction method (Kaneda et al., ICML 2023) is flexible CG, FCG(k), whose
preconditioner is this nonlinear map of a trained CNN (``pdesolve.nn.dcdm_cnn.DCDMNet``): the
solvers ``dcdm`` (pdesolve's FCG loop) and ``petsc_dcdm`` (PETSc's KSPFCG/KSPGCR with a python
PC) are those methods with this preconditioner, and any Krylov solver of pdesolve takes it as
``pc=get_preconditioner("dcdm_network")`` (flexible ones only: it is nonlinear).

>>> import pdesolve
>>> system = pdesolve.get_problem("pressure_poisson", dim=2, n=16).discretize()
>>> pc = pdesolve.get_preconditioner("dcdm_network", model="identity").setup(system)
>>> pc.is_linear, round(float((pc.apply(3 * system.b) ** 2).sum()), 12)
(False, 1.0)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.nn.checkpoint import check_device
from pdesolve.resources import data_dir
from pdesolve.solvers.preconditioner import PRECONDITIONERS, Preconditioner

#: the shipped models, package data (pdesolve/data/dcdm/dcdm{2,3}d/ with their configs and logs)
DEFAULT_MODELS = {d: data_dir() / "dcdm" / f"dcdm{d}d" / "model.pt" for d in (2, 3)}


def system_grid(system: LinearSystem) -> tuple[tuple[int, ...], np.ndarray | None, bool]:
    """``(grid shape, mask or None, whether unknowns are only the masked cells)`` from
    ``system.grid``; directions are zeroed off ``metadata["fluid_mask"]`` where a system keeps
    its non-fluid cells as decoupled identity rows."""
    grid = system.grid
    if grid is None:
        raise InvalidSystemError(
            "DCDM's network needs a system on a structured grid (system.grid); this system has "
            "none (structured problems such as pressure_poisson and diffusion attach one)"
        )
    if grid.mask is not None:
        return grid.shape, grid.mask, True
    return grid.shape, (system.metadata or {}).get("fluid_mask"), False


def check_definite_diagonal(A: Any) -> None:
    """Raise ``InvalidSystemError`` when the diagonal rules out a positive (semi-)definite ``A``.

    A negative diagonal entry, or a zero one on a row that is not empty, makes a symmetric matrix
    indefinite; empty rows (the non-fluid cells of the paper's matrices) are allowed. Indefiniteness
    that the diagonal does not show is reported during the iteration (DIVERGED_INDEFINITE_MAT).
    """
    d = A.diagonal()
    nonempty = np.asarray(abs(A).sum(axis=1)).ravel() > 0
    bad = np.flatnonzero((d < 0) | ((d == 0) & nonempty))
    if bad.size:
        i = int(bad[0])
        raise InvalidSystemError(
            f"A is not positive definite: diagonal entry A[{i},{i}] = {d[i]:g} on a non-empty "
            f"row ({bad.size} such rows); DCDM needs a symmetric positive (semi-)definite matrix"
        )


#: the network's inference precisions: the network's dtype, and "tf32" (float32 weights, TF32
#: tensor-core arithmetic allowed in its convolutions and matrix products on CUDA; on the CPU it
#: is float32). Directions come back as float64 in every case.
PRECISIONS = ("float32", "tf32", "bfloat16", "float64")


def precision_dtype(precision: str | torch.dtype) -> tuple[torch.dtype, bool]:
    """``(torch dtype of the network, whether TF32 is allowed)`` for a precision name.

    >>> precision_dtype("tf32"), precision_dtype(torch.float64)
    ((torch.float32, True), (torch.float64, False))
    """
    if isinstance(precision, torch.dtype):
        return precision, False
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "tf32":
        return torch.float32, True
    return getattr(torch, precision), False


@contextlib.contextmanager
def tf32_mode(allow: bool) -> Iterator[None]:
    """TF32 allowed (or not) in CUDA matrix products and cuDNN convolutions for the block."""
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = [f.allow_tf32 for f in flags]
    for f in flags:
        f.allow_tf32 = allow
    try:
        yield
    finally:
        for f, value in zip(flags, saved, strict=True):
            f.allow_tf32 = value


class NetworkDirection:
    """The map ``r -> f(r / ||r||)`` of a grid network, as a float64 preconditioner on flat vectors.

    Parameters
    ----------
    model : torch module on ``(1, 1, *grid)``
    grid_shape : the grid of the system
    mask : fluid mask; directions are zeroed off it (and, with ``restricted``, vectors are
        scattered into / gathered from the grid through it)
    dtype : the inference precision: a torch dtype or a name of ``PRECISIONS`` (float32 by
        default; "tf32" and "bfloat16" pay off on GPUs only)
    device : where the network runs

    Calling it maps a float64 numpy vector (host in, host out: one copy each way on a GPU);
    :meth:`on_device` maps a float64 torch vector on ``device`` to one, with no copy to the host
    and no synchronisation (the iteration that keeps its vectors on the device calls that).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        grid_shape: tuple[int, ...],
        mask: np.ndarray | None = None,
        restricted: bool = False,
        dtype: torch.dtype | str = torch.float32,
        device: str = "cpu",
    ) -> None:
        dim = getattr(model, "dim", len(grid_shape))
        if dim != len(grid_shape):
            raise InvalidSystemError(
                f"the DCDM model is {dim}D but the system lives on a {len(grid_shape)}D grid "
                f"{grid_shape}"
            )
        self.dtype, self.tf32 = precision_dtype(dtype)
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self.grid_shape, self.device = grid_shape, device
        self.mask = None if mask is None else np.asarray(mask, dtype=bool).ravel()
        self.restricted = restricted
        self.inference_time = 0.0  # wall seconds in the network
        self.inference_cpu_time = 0.0  # process CPU seconds in the network (robust under load)
        self.calls = 0
        self._events: list[tuple[Any, Any]] = []  # CUDA events bracketing on-device inferences
        self._index: torch.Tensor | None = None
        self._keep: torch.Tensor | None = None
        if self.mask is not None:  # for on_device: index (restricted) or 0/1 mask tensors
            if restricted:
                self._index = torch.as_tensor(np.flatnonzero(self.mask), device=device)
            else:
                self._keep = torch.as_tensor(self.mask, device=device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a float64 field ``(1, 1, *grid)`` on the device; float64 out."""
        shape = (1, 1) + self.grid_shape
        try:
            with tf32_mode(self.tf32):
                q = self.model(x.to(dtype=self.dtype))
        except (RuntimeError, ValueError) as exc:
            if self.calls:
                raise
            raise InvalidSystemError(
                f"the DCDM model does not run on this system's grid {self.grid_shape} "
                f"(input shape {shape}): {exc}"
            ) from exc
        if tuple(q.shape) != shape:
            raise InvalidSystemError(
                f"the DCDM model maps a field of shape {shape} to {tuple(q.shape)}; it must "
                "return a direction on the system's grid (a fully convolutional model)"
            )
        return q.to(dtype=torch.float64)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        norm = float(np.linalg.norm(r))
        if norm == 0.0:
            return np.zeros_like(r)
        field = np.zeros(int(np.prod(self.grid_shape)))
        if self.restricted:
            field[self.mask] = r / norm
        else:
            field[:] = r / norm
        t, c = time.perf_counter(), time.process_time()
        shape = (1, 1) + self.grid_shape
        with torch.no_grad():
            x = torch.as_tensor(field.reshape(shape)).to(device=self.device)
            q = self._forward(x).cpu().numpy().ravel()
        self.inference_time += time.perf_counter() - t
        self.inference_cpu_time += time.process_time() - c
        self.calls += 1
        if self.mask is None:
            return q
        return q[self.mask] if self.restricted else np.where(self.mask, q, 0.0)

    def on_device(self, r: torch.Tensor) -> torch.Tensor:
        """The direction for the float64 residual ``r`` (flat, on ``device``), on the device.

        Nothing is read back to the host (a zero residual gives a zero direction through
        ``torch.where``, not a branch); on CUDA the inference is timed with CUDA events, read
        by :meth:`read_timings`.
        """
        norm = torch.linalg.vector_norm(r)
        scaled = r / norm.clamp_min(1e-300)
        if self._index is not None:
            field = scaled.new_zeros(int(np.prod(self.grid_shape)))
            field.index_copy_(0, self._index, scaled)
        else:
            field = scaled
        cuda = field.device.type == "cuda"
        t, c = time.perf_counter(), time.process_time()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        with torch.no_grad():
            q = self._forward(field.reshape((1, 1) + self.grid_shape)).reshape(-1)
        if cuda:
            end.record()
            self._events.append((start, end))
        else:
            self.inference_time += time.perf_counter() - t
        self.inference_cpu_time += time.process_time() - c
        self.calls += 1
        if self._index is not None:
            q = q.index_select(0, self._index)
        elif self._keep is not None:
            q = torch.where(self._keep, q, 0.0)
        return torch.where(norm > 0, q, 0.0)

    def read_timings(self) -> None:
        """Add the CUDA-event times of on-device inferences to ``inference_time`` (this waits
        for the device; call it after a solve, not inside the loop)."""
        if self._events:
            self._events[-1][1].synchronize()
            self.inference_time += sum(a.elapsed_time(b) for a, b in self._events) / 1e3
            self._events = []


def resolve_model(model: Any, dim: int) -> Any:
    """A torch module or callable from ``model`` (module, path, "identity", callable, None)."""
    from pdesolve.nn.dcdm_cnn import load_dcdm_model

    if model is None:
        path = DEFAULT_MODELS.get(dim)
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"no shipped DCDM model for dim={dim} ({path}); train one "
                "(python -m pdesolve.train.dcdm_training) or pass model="
            )
        return load_dcdm_model(path)
    if isinstance(model, str | os.PathLike) and str(model) != "identity":
        return load_dcdm_model(model)
    return model


def search_direction(
    model: Any, system: LinearSystem, dtype: torch.dtype, device: str
) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    """The map ``r -> direction`` for ``model`` on ``system`` (as in :class:`DCDM`), and the
    network wrapper that times inference (``None`` for "identity" and plain callables)."""
    if isinstance(model, str) and model == "identity":
        return (lambda r: r / max(float(np.linalg.norm(r)), 1e-300)), None
    if callable(model) and not isinstance(model, torch.nn.Module):
        return (lambda r: model(r / max(float(np.linalg.norm(r)), 1e-300))), None
    grid, mask, restricted = system_grid(system)
    net = resolve_model(model, len(grid))
    direction = NetworkDirection(net, grid, mask, restricted, dtype, device)
    return direction, direction


@PRECONDITIONERS.register("dcdm_network")
class DCDMNetwork(Preconditioner):
    """The DCDM search-direction map as a (nonlinear) preconditioner.

    Parameters
    ----------
    model : DCDMNet / torch module, checkpoint path, "identity" (the normalised residual), a
        callable on flat vectors, or None for the shipped model of the system's dimension
    device : "cpu" or "cuda" for the network
    dtype : inference precision, one of ``PRECISIONS``: "float32" (default), "tf32" (float32
        with TF32 tensor cores on CUDA), "bfloat16" or "float64"; directions are float64

    Notes
    -----
    The network is loaded once per object (the first set-up) and reused by later set-ups.
    :meth:`device_map` gives the same map on float64 torch vectors of the device (for an
    iteration that keeps its vectors there).
    """

    registry_name = "dcdm_network"
    is_linear = False
    is_symmetric = False

    def __init__(self, model: Any = None, device: str = "cpu", dtype: str = "float32") -> None:
        if dtype not in PRECISIONS:
            raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}; got {dtype!r}")
        check_device(device)
        self.model, self.device, self.dtype = model, device, dtype
        self._loaded: dict[int, Any] = {}
        self.network_: NetworkDirection | None = None

    def _setup(self, system: LinearSystem) -> None:
        model = self.model
        if isinstance(model, str) and model == "identity":
            self._direction = lambda r: r / max(float(np.linalg.norm(r)), 1e-300)
            self.network_ = None
            return
        if callable(model) and not isinstance(model, torch.nn.Module):
            self._direction = lambda r: model(r / max(float(np.linalg.norm(r)), 1e-300))
            self.network_ = None
            return
        grid, mask, restricted = system_grid(system)
        if len(grid) not in self._loaded:
            self._loaded[len(grid)] = resolve_model(model, len(grid))
        self.network_ = NetworkDirection(
            self._loaded[len(grid)], grid, mask, restricted, self.dtype, self.device
        )
        self._direction = self.network_

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return self._direction(r)

    def device_map(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The direction map on flat float64 torch vectors of ``device`` (after set-up).

        For a network it is :meth:`NetworkDirection.on_device`; for "identity" the normalised
        residual. A plain callable on numpy vectors has none (``ValueError``).
        """
        if self.system_ is None:
            raise RuntimeError("the dcdm_network preconditioner is used before setup(system)")
        if self.network_ is not None:
            return self.network_.on_device
        if isinstance(self.model, str) and self.model == "identity":
            return lambda r: r / torch.linalg.vector_norm(r).clamp_min(1e-300)
        raise ValueError(
            "a DCDM model given as a plain callable works on numpy vectors on the host; give a "
            "torch module (or 'identity') to keep the iteration's vectors on the device, or use "
            "vectors='host'"
        )

    def take_timings(self) -> dict[str, float]:
        """Wall and process-CPU seconds spent in the network since the last call (then reset)."""
        net = self.network_
        if net is None:
            return {}
        net.read_timings()
        out = {"inference_time": net.inference_time, "inference_cpu_time": net.inference_cpu_time}
        net.inference_time = net.inference_cpu_time = 0.0
        return out

    def describe(self) -> dict[str, Any]:
        model = self.model if isinstance(self.model, str | os.PathLike | None) else "custom"
        return {**super().describe(), "model": str(model), "device": self.device,
                "dtype": self.dtype}  # fmt: skip
