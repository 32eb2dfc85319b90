"""``fcg``: flexible conjugate gradients with truncated A-orthogonalisation, FCG(k) (Notay 2000).

The conjugate-direction loop shared by FCG(k) and DCDM. Each iteration takes a direction
``z = M(r)`` from a possibly *nonlinear* map ``M``, A-orthogonalises it (modified Gram-Schmidt, in
float64) against the last ``memory`` directions (all of them with ``memory=None``), and takes the
exact line search step ``α = pᵀr / pᵀAp``. With ``M`` the identity and full orthogonalisation the
iterates are CG's. The residual is either recomputed as ``b - A x`` each iteration
(``residual="true"``, one extra product) or updated as ``r - α A p`` (``"recursive"``), in which
case convergence is confirmed on the true residual and the method restarts if they disagree. The
memory is cleared every ``restart`` iterations and after a breakdown (``pᵀAp ≈ 0``).

>>> from pdesolve import get_problem
>>> system = get_problem("pressure_poisson", dim=2, n=16, geometry="sphere").discretize()
>>> result = FCG(rtol=1e-8, pc="jacobi", memory=2).solve(system)
>>> result.converged, bool(result.residual_norms[-1] <= 1e-8 * system.b_norm)
(True, True)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from pdesolve.linalg.system import LinearSystem
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import Callback, ConvergedReason, Solver, SolveResult, StoppingRule
from pdesolve.solvers.driver import IterationDriver
from pdesolve.solvers.preconditioner import Preconditioner, resolve_preconditioner

#: the raw direction map ``r -> z`` that the loop calls (e.g. ``Preconditioner.apply``)
DirectionMap = Callable[[np.ndarray], np.ndarray]


def conjugate_directions(
    A: sp.csr_matrix,
    b: np.ndarray,
    direction: DirectionMap,
    stopping: StoppingRule,
    x0: np.ndarray | None = None,
    memory: int | None = 2,
    residual: str = "true",
    restart: int | None = None,
    orthogonalization: str = "mgs",
    safeguard: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, ConvergedReason, int, list[float], dict[str, Any]]:
    """The FCG(k)/DCDM loop; returns ``x, reason, iterations, residual norms, info``.

    ``safeguard=True`` (not in the paper) also A-orthogonalises the residual itself and, in an
    iteration where it would remove more error energy than the given direction, i.e.
    ``(pᵀr)² / pᵀAp`` is larger for ``p`` from ``r``, steps along it instead (one more product
    per iteration). A deterministic nonlinear direction map can reach a fixed point where its
    output lies in the span of the stored directions, ``pᵀr = 0`` and nothing changes any more;
    the safeguard rules that out (each step then removes at least a steepest-descent step's
    energy). ``info["fallback_steps"]`` counts the iterations that took the residual.

    ``direction(r)`` gives the raw search direction for the residual ``r``. Dot products and
    vectors are float64 whatever ``direction`` computes in.
    """
    if memory is not None and memory < 1:
        raise ValueError(f"memory must be >= 1 or None (full orthogonalisation), got {memory!r}")
    if residual not in ("true", "recursive"):
        raise ValueError(f"residual must be 'true' or 'recursive', got {residual!r}")
    if orthogonalization not in ("mgs", "cgs"):
        raise ValueError(f"orthogonalization must be 'mgs' or 'cgs', got {orthogonalization!r}")
    n = b.shape[0]
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    r = b - A @ x
    driver = IterationDriver(stopping, float(np.linalg.norm(b)), callback, progress, "fcg")
    store: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=memory)
    direction_time, breakdowns, since_restart, fallback_steps = 0.0, 0, 0, 0
    scale = abs(A).max() if A.nnz else 1.0
    reason = driver.start(float(np.linalg.norm(r)))
    while reason is None:
        t = time.perf_counter()
        z = np.asarray(direction(r), dtype=np.float64).reshape(-1)
        direction_time += time.perf_counter() - t
        if z.shape != (n,):
            raise ValueError(
                f"the preconditioner / direction map returned {z.size} values for a system of "
                f"{n} unknowns"
            )
        if not np.all(np.isfinite(z)):
            reason = driver.stop(ConvergedReason.DIVERGED_PC_FAILED)
            break
        p = z.copy()
        for pj, apj, dj in store:
            p -= (np.dot(z if orthogonalization == "cgs" else p, apj) / dj) * pj
        ap = A @ p
        pap = float(np.dot(p, ap))
        pp = float(np.dot(p, p))
        if safeguard:
            g = r.copy()
            for pj, apj, dj in store:
                g -= (np.dot(r if orthogonalization == "cgs" else g, apj) / dj) * pj
            ag = A @ g
            gag = float(np.dot(g, ag))
            gain_p = float(np.dot(p, r)) ** 2 / pap if pap > 0 else 0.0
            if gag > 0 and float(np.dot(g, r)) ** 2 / gag > gain_p:
                p, ap, pap, pp = g, ag, gag, float(np.dot(g, g))
                fallback_steps += 1
        if pp == 0.0 or pap <= 1e-14 * scale * pp:
            if pap < -1e-12 * scale * pp:
                reason = driver.stop(ConvergedReason.DIVERGED_INDEFINITE_MAT)
                break
            breakdowns += 1
            if not store or breakdowns > 3:
                reason = driver.stop(ConvergedReason.DIVERGED_BREAKDOWN)
                break
            store.clear()  # restart: retry without the stored directions
            driver.restarts += 1
            continue
        alpha = float(np.dot(p, r)) / pap
        x += alpha * p
        if residual == "true":
            r = b - A @ x
        else:
            r -= alpha * ap
        since_restart += 1
        store.append((p, ap, pap))
        reason = driver.step(x, float(np.linalg.norm(r)))
        if residual == "recursive" and reason is not None and reason.converged:

            r = b - A @ x
            reason = driver.confirm(lambda r=r: float(np.linalg.norm(r)))
            if reason is None:
                store.clear()
        if restart is not None and since_restart >= restart and reason is None:
            store.clear()
            driver.restarts += 1
            since_restart = 0
    reason, it, norms = driver.finish()
    info = {"restarts": driver.restarts, "direction_time": direction_time, "memory": memory,
            "fallback_steps": fallback_steps}  # fmt: skip
    return x, reason, it, list(norms), info


#: the direction map on device vectors: a flat float64 torch tensor to one (same device)
TensorMap = Callable[["torch.Tensor"], "torch.Tensor"]


def conjugate_directions_on_device(
    A: TensorMap,
    b: torch.Tensor,
    direction: TensorMap,
    stopping: StoppingRule,
    x0: torch.Tensor | None = None,
    memory: int | None = 2,
    residual: str = "true",
    restart: int | None = None,
    orthogonalization: str = "mgs",
    safeguard: bool = False,
    callback: Callback | None = None,
    progress: bool = False,
    scale: float = 1.0,
) -> tuple[np.ndarray, ConvergedReason, int, list[float], dict[str, Any]]:
    """:func:`conjugate_directions` with every vector on a torch device (float64).

    ``A`` and ``direction`` map flat float64 tensors of ``b``'s device to such tensors (e.g. a
    ``pdesolve.linalg.torch_ops.DeviceMatrix`` and ``NetworkDirection.on_device``); ``scale``
    is ``max|A_ij|`` (the breakdown test's scale). The arithmetic is that of
    :func:`conjugate_directions`, reordered so that each iteration reads back from the device
    once: one small tensor holding the scalars the stopping rule and the breakdown tests need
    (``||r||``, ``pᵀAp``, ``pᵀp``, whether the direction is finite and whether the safeguard
    fell back). The step is computed before that read and discarded when the tests reject it.
    Only a ``callback`` makes the iterate travel to the host (once per iteration, as numpy).
    Returns ``x`` as a numpy array (copied from the device once, at the end).
    """
    if memory is not None and memory < 1:
        raise ValueError(f"memory must be >= 1 or None (full orthogonalisation), got {memory!r}")
    if residual not in ("true", "recursive"):
        raise ValueError(f"residual must be 'true' or 'recursive', got {residual!r}")
    if orthogonalization not in ("mgs", "cgs"):
        raise ValueError(f"orthogonalization must be 'mgs' or 'cgs', got {orthogonalization!r}")
    n = b.shape[0]
    x = torch.zeros_like(b) if x0 is None else x0.to(dtype=torch.float64).clone()
    r = b - A(x)
    norms0 = torch.stack([torch.linalg.vector_norm(b), torch.linalg.vector_norm(r)])
    b_norm, r_norm = norms0.tolist()
    driver = IterationDriver(stopping, b_norm, callback, progress, "fcg")
    store: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque(maxlen=memory)
    direction_time, breakdowns, since_restart, fallback_steps = 0.0, 0, 0, 0
    cgs = orthogonalization == "cgs"
    zero = torch.zeros((), dtype=torch.float64, device=b.device)
    reason = driver.start(r_norm)
    while reason is None:
        t = time.perf_counter()
        z = direction(r).reshape(-1).to(dtype=torch.float64)
        direction_time += time.perf_counter() - t
        if z.shape != (n,):
            raise ValueError(
                f"the preconditioner / direction map returned {z.numel()} values for a system "
                f"of {n} unknowns"
            )
        finite = torch.isfinite(z).all()
        p = z.clone()
        for pj, apj, dj in store:
            p -= (torch.dot(z if cgs else p, apj) / dj) * pj
        ap = A(p)
        pap, pp = torch.dot(p, ap), torch.dot(p, p)
        fell_back = torch.zeros((), dtype=torch.bool, device=b.device)
        if safeguard:
            g = r.clone()
            for pj, apj, dj in store:
                g -= (torch.dot(r if cgs else g, apj) / dj) * pj
            ag = A(g)
            gag = torch.dot(g, ag)
            gain_p = torch.where(pap > 0, torch.dot(p, r) ** 2 / pap, zero)
            fell_back = (gag > 0) & (torch.dot(g, r) ** 2 / gag > gain_p)
            p, ap = torch.where(fell_back, g, p), torch.where(fell_back, ag, ap)
            pap, pp = torch.where(fell_back, gag, pap), torch.where(fell_back, torch.dot(g, g), pp)
        alpha = torch.dot(p, r) / pap
        x_new = x + alpha * p
        r_new = b - A(x_new) if residual == "true" else r - alpha * ap
        scalars = torch.stack([finite.double(), pap, pp, fell_back.double(),
                               torch.linalg.vector_norm(r_new)]).tolist()  # fmt: skip
        ok, pap_h, pp_h, took_g, norm = scalars
        if not ok:
            reason = driver.stop(ConvergedReason.DIVERGED_PC_FAILED)
            break
        if pp_h == 0.0 or pap_h <= 1e-14 * scale * pp_h:
            if pap_h < -1e-12 * scale * pp_h:
                reason = driver.stop(ConvergedReason.DIVERGED_INDEFINITE_MAT)
                break
            breakdowns += 1
            if not store or breakdowns > 3:
                reason = driver.stop(ConvergedReason.DIVERGED_BREAKDOWN)
                break
            store.clear()  # restart: retry without the stored directions
            driver.restarts += 1
            continue
        fallback_steps += int(took_g)
        x, r = x_new, r_new
        since_restart += 1
        store.append((p, ap, pap))
        reason = driver.step(x.cpu().numpy() if callback is not None else x, norm)
        if residual == "recursive" and reason is not None and reason.converged:
            r = b - A(x)
            reason = driver.confirm(lambda r=r: float(torch.linalg.vector_norm(r)))
            if reason is None:
                store.clear()
        if restart is not None and since_restart >= restart and reason is None:
            store.clear()
            driver.restarts += 1
            since_restart = 0
    reason, it, norms = driver.finish()
    info = {"restarts": driver.restarts, "direction_time": direction_time, "memory": memory,
            "fallback_steps": fallback_steps}  # fmt: skip
    return x.cpu().numpy(), reason, it, list(norms), info


class FunctionPreconditioner(Preconditioner):
    """A plain function ``r -> z`` as a preconditioner, for quick experiments with ``fcg``.

    It is taken to be nonlinear and non-symmetric unless said otherwise.

    >>> import numpy as np
    >>> from pdesolve import LinearSystem
    >>> pc = FunctionPreconditioner(lambda r: 0.5 * r, is_linear=True, is_symmetric=True)
    >>> pc.setup(LinearSystem(np.eye(2), np.ones(2))).apply(np.ones(2)).tolist()
    [0.5, 0.5]
    """

    registry_name = "function"

    def __init__(
        self, function: DirectionMap, is_linear: bool = False, is_symmetric: bool = False
    ) -> None:
        if not callable(function):
            raise TypeError(f"function must be callable, got {type(function).__name__}")
        self.function = function
        self.is_linear, self.is_symmetric = is_linear, is_symmetric

    def _setup(self, system: LinearSystem) -> None:
        pass

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return self.function(r)


@SOLVERS.register("fcg")
class FCG(Solver):
    """Flexible CG, FCG(k), with any preconditioner (linear or not, varying between calls).

    Parameters
    ----------
    pc : a preconditioner name, a ``Preconditioner``, or a plain function ``r -> z``
    memory : directions kept for A-orthogonalisation (``None``: all, full orthogonalisation)
    residual : "true" (recompute ``b - Ax`` each iteration) or "recursive"
    restart : clear the memory every ``restart`` iterations (``None``: never)
    safeguard : step along the A-orthogonalised residual where it removes more error energy
    progress : show a progress bar
    """

    registry_name = "fcg"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 10_000,
        dtol: float | None = None,
        pc: str | Preconditioner | DirectionMap = "none",
        memory: int | None = 2,
        residual: str = "recursive",
        restart: int | None = None,
        safeguard: bool = False,
        progress: bool = False,
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)
        self.pc = pc
        if callable(pc) and not isinstance(pc, Preconditioner):
            pc = FunctionPreconditioner(pc)
        self.preconditioner = resolve_preconditioner(pc)
        if memory is not None and memory < 1:
            raise ValueError(
                f"memory must be >= 1 or None (full orthogonalisation), got {memory!r}"
            )
        if residual not in ("true", "recursive"):
            raise ValueError(f"residual must be 'true' or 'recursive', got {residual!r}")
        self.memory, self.residual, self.restart = memory, residual, restart
        self.safeguard, self.progress = safeguard, progress

    def _setup(self, system: LinearSystem) -> None:
        self._prepare_preconditioner(self.preconditioner, system)

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        x, reason, its, norms, info = conjugate_directions(
            system.A, system.b, self.preconditioner.apply, self.stopping, x0, self.memory,
            self.residual, self.restart, safeguard=self.safeguard, callback=self.callback,
            progress=self.progress,
        )  # fmt: skip
        return SolveResult(
            x=x, converged=reason.converged, reason=reason, iterations=its,
            residual_norms=np.array(norms), wall_time=0.0,
            info={"pc": self.preconditioner.name, "pc_time": info.pop("direction_time"), **info},
        )  # fmt: skip
