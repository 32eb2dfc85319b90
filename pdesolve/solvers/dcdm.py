"""``dcdm``: the deep conjugate direction method (Kaneda et al., ICML 2023; METHODS.md §3.1).

Each iteration feeds the normalised residual ``r / ||r||`` (on the grid) to a network ``f``, takes
``q = f(r / ||r||)`` as the raw direction, A-orthogonalises it against the last ``memory``
directions (2 in the paper; ``None`` for all) and steps with an exact line search; the loop is
``pdesolve.solvers.fcg.conjugate_directions``, i.e. DCDM is FCG(k) with the network as a nonlinear
preconditioner. Unlike the official code, it stops on pdesolve's one rule
``||b - Ax|| <= max(rtol ||b||, atol)`` on the true residual (recomputed each iteration by default,
as the paper's ``dcdm``), with float64 vectors and dot products, and restarts on breakdown.
``safeguard=True`` (ours, not the paper's) steps along the A-orthogonalised residual in iterations
where that removes more error energy than the network's direction, which rules out the fixed point
where a poorly trained network's output stops changing and DCDM(k) stalls
(experiments/dcdm/results/results3d.md). The same iteration runs inside PETSc as ``petsc_dcdm``
(``pdesolve.solvers.petsc_dcdm``: KSPFCG/KSPGCR with the network as shell preconditioner).

``model`` is a ``DCDMNet`` (or any torch module mapping ``(1, 1, *grid)`` to the same shape), a
checkpoint path, ``"identity"`` (the residual itself: then DCDM is CG-like), or a callable on the
flat float64 residual. Non-fluid cells (``metadata["fluid_mask"]`` of ``pressure_poisson``) get a
zero direction, so the decoupled identity rows stay solved.

>>> from pdesolve import get_problem
>>> system = get_problem("pressure_poisson", dim=2, n=16).discretize()
>>> result = DCDM(rtol=1e-8, model="identity", memory=None).solve(system)
>>> result.converged, bool(result.residual_norms[-1] <= 1e-8 * system.b_norm)
(True, True)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import Solver, SolveResult
from pdesolve.solvers.fcg import conjugate_directions

DATA = Path(__file__).resolve().parents[2] / "data" / "dcdm"
DEFAULT_MODELS = {2: DATA / "dcdm2d.pt", 3: DATA / "dcdm3d.pt"}


def system_grid(system: LinearSystem) -> tuple[tuple[int, ...], np.ndarray | None, bool]:
    """``(grid shape, fluid mask or None, whether unknowns are only the fluid cells)``."""
    meta = system.metadata or {}
    mask = meta.get("fluid_mask")
    if system.stencil is not None:
        dim = system.stencil.ndim // 2
        return tuple(system.stencil.shape[:dim]), mask, False
    if mask is not None and int(np.sum(mask)) == system.size:
        return tuple(mask.shape), mask, True
    raise InvalidSystemError(
        "DCDM's network needs a system on a structured grid (a stencil array, or a fluid_mask "
        "in metadata for a system restricted to fluid cells); this system has neither"
    )


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


class NetworkDirection:
    """The map ``r -> f(r / ||r||)`` of a grid network, as a float64 preconditioner on flat vectors.

    Parameters
    ----------
    model : torch module on ``(1, 1, *grid)``
    grid_shape : the grid of the system
    mask : fluid mask; directions are zeroed off it (and, with ``restricted``, vectors are
        scattered into / gathered from the grid through it)
    dtype, device : where the network runs (float32 inference by default)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        grid_shape: tuple[int, ...],
        mask: np.ndarray | None = None,
        restricted: bool = False,
        dtype: torch.dtype = torch.float32,
        device: str = "cpu",
    ) -> None:
        dim = getattr(model, "dim", len(grid_shape))
        if dim != len(grid_shape):
            raise InvalidSystemError(
                f"the DCDM model is {dim}D but the system lives on a {len(grid_shape)}D grid "
                f"{grid_shape}"
            )
        self.model = model.to(device=device, dtype=dtype).eval()
        self.grid_shape, self.dtype, self.device = grid_shape, dtype, device
        self.mask = None if mask is None else np.asarray(mask, dtype=bool).ravel()
        self.restricted = restricted
        self.inference_time = 0.0  # wall seconds in the network
        self.inference_cpu_time = 0.0  # process CPU seconds in the network (robust under load)
        self.calls = 0

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
            x = torch.as_tensor(field.reshape(shape))
            try:
                q = self.model(x.to(device=self.device, dtype=self.dtype))
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
            q = q.to(dtype=torch.float64).cpu().numpy().ravel()
        self.inference_time += time.perf_counter() - t
        self.inference_cpu_time += time.process_time() - c
        self.calls += 1
        if self.mask is None:
            return q
        return q[self.mask] if self.restricted else np.where(self.mask, q, 0.0)


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


@SOLVERS.register("dcdm")
class DCDM(Solver):
    """Deep conjugate direction method (see the module docstring).

    Parameters
    ----------
    model : DCDMNet / torch module, checkpoint path, "identity", callable on flat vectors, or
        None for the shipped model of the system's dimension (``data/dcdm/dcdm{2,3}d.pt``)
    memory : directions kept for A-orthogonalisation (2 in the paper; None: all)
    residual : "true" (recompute ``b - Ax`` each iteration, the paper's choice) or "recursive"
    restart : clear the memory every ``restart`` iterations (None: only on breakdown)
    safeguard : step along the (A-orthogonalised) residual instead of the network's direction in
        iterations where that removes more error energy (not in the paper; rules out the fixed
        point where the network's output stops changing; see ``fcg.conjugate_directions``)
    device : "cpu" or "cuda" for the network; dtype "float32" (default) or "float64"
    """

    registry_name = "dcdm"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 1000,
        model: Any = None,
        memory: int | None = 2,
        residual: str = "true",
        restart: int | None = None,
        safeguard: bool = False,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.model, self.memory, self.residual, self.restart = model, memory, residual, restart
        self.safeguard = bool(safeguard)
        self.device, self.dtype = device, getattr(torch, dtype)

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        check_definite_diagonal(system.A)
        t0 = time.perf_counter()
        direction, net = search_direction(self.model, system, self.dtype, self.device)
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        x, reason, its, norms, info = conjugate_directions(
            system.A, system.b, direction, self.stopping, x0, self.memory, self.residual,
            self.restart, safeguard=self.safeguard,
        )  # fmt: skip
        info = {"setup_time": setup, "solve_time": time.perf_counter() - t1, **info}
        if net is not None:
            info["inference_time"] = net.inference_time
            info["inference_cpu_time"] = net.inference_cpu_time
        return SolveResult(
            x=x, converged=reason.converged, reason=reason, iterations=its,
            residual_norms=np.array(norms), wall_time=0.0, info=info,
        )  # fmt: skip


# the PETSc route (registers "petsc_dcdm"); imported here so that registering dcdm registers it
from pdesolve.solvers import petsc_dcdm  # noqa: E402, F401
