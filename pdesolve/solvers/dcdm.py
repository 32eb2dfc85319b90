"""``dcdm``: the deep conjugate direction method (Kaneda et al., ICML 2023; docs/methods/dcdm.md).

Each iteration feeds the normalised residual ``r / ||r||`` (on the grid) to a network ``f``, takes
``q = f(r / ||r||)`` as the raw direction, A-orthogonalises it against the last ``memory``
directions (2 in the paper; ``None`` for all) and steps with an exact line search; the loop is
``pdesolve.solvers.fcg.conjugate_directions``: DCDM is FCG(k) with the network as a nonlinear
preconditioner (``pdesolve.solvers.dcdm_network.DCDMNetwork``, registered as ``dcdm_network``).
Unlike the official code, it stops on pdesolve's one rule
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

from typing import Any

import numpy as np
import torch

from pdesolve.linalg.system import LinearSystem
from pdesolve.linalg.torch_ops import MATVECS, DeviceMatrix
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import SolveResult
from pdesolve.solvers.dcdm_network import (
    DEFAULT_MODELS,
    DCDMNetwork,
    check_definite_diagonal,
)
from pdesolve.solvers.fcg import FCG, conjugate_directions_on_device

__all__ = ["DCDM", "DEFAULT_MODELS", "VECTORS"]

#: where DCDM's iteration keeps its vectors (see ``DCDM``)
VECTORS = ("auto", "host", "device")


@SOLVERS.register("dcdm")
class DCDM(FCG):
    """Deep conjugate direction method: ``fcg`` with the DCDM network as preconditioner.

    Parameters
    ----------
    model : DCDMNet / torch module, checkpoint path, "identity", callable on flat vectors, or
        None for the shipped model of the system's dimension (package data, dcdm{2,3}d/model.pt)
    memory : directions kept for A-orthogonalisation (2 in the paper; None: all)
    residual : "true" (recompute ``b - Ax`` each iteration, the paper's choice) or "recursive"
    restart : clear the memory every ``restart`` iterations (None: only on breakdown)
    safeguard : step along the (A-orthogonalised) residual instead of the network's direction in
        iterations where that removes more error energy (not in the paper; rules out the fixed
        point where the network's output stops changing; see ``fcg.conjugate_directions``)
    device : "cpu" or "cuda" for the network
    dtype : the network's inference precision: "float32" (default), "tf32" (float32 with TF32
        tensor cores on CUDA), "bfloat16" or "float64"; the iteration itself is float64
    vectors : where the iteration's vectors live: "host" (numpy, scipy's A; one residual to the
        device and one direction back per iteration), "device" (float64 torch tensors on
        ``device``, A applied there; only the stopping rule's scalars come back, once per
        iteration) or "auto" (default: "device" unless the network runs on the CPU)
    matvec : how A is applied on the device: "auto" (the system's stencil as a convolution
        when it reproduces A, else torch sparse CSR), "stencil" or "csr"
    progress : show a progress bar

    Notes
    -----
    The network is loaded on the first set-up and kept for later ones. Both kinds of vectors
    give the same iterates up to rounding (tested to 1e-12 with a float64 network).
    """

    registry_name = "dcdm"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 1000,
        dtol: float | None = None,
        model: Any = None,
        memory: int | None = 2,
        residual: str = "true",
        restart: int | None = None,
        safeguard: bool = False,
        device: str = "cpu",
        dtype: str = "float32",
        vectors: str = "auto",
        matvec: str = "auto",
        progress: bool = False,
    ) -> None:
        super().__init__(
            rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol,
            pc=DCDMNetwork(model=model, device=device, dtype=dtype), memory=memory,
            residual=residual, restart=restart, safeguard=bool(safeguard), progress=progress,
        )  # fmt: skip
        self.model, self.device, self.dtype = model, device, dtype
        if vectors not in VECTORS:
            raise ValueError(f"unknown vectors {vectors!r}; known: {', '.join(VECTORS)}")
        if matvec not in MATVECS:
            raise ValueError(f"unknown matvec {matvec!r}; known: {', '.join(MATVECS)}")
        if vectors == "auto":
            vectors = "host" if torch.device(device).type == "cpu" else "device"
        on_numpy = callable(model) and not isinstance(model, torch.nn.Module | str)
        if vectors == "device" and on_numpy:
            raise ValueError(
                "vectors='device' needs the model as a torch module, a checkpoint path or "
                "'identity'; a plain callable works on numpy vectors (vectors='host')"
            )
        self.vectors, self.matvec = vectors, matvec
        self._operator: DeviceMatrix | None = None
        self._operator_of: Any = None

    def _check_system(self, system: LinearSystem) -> None:
        check_definite_diagonal(system.A)

    def _setup(self, system: LinearSystem) -> None:
        super()._setup(system)
        if self.vectors == "device":
            self._device_operator(system)

    def _swap_operator(self, system: LinearSystem) -> None:
        if self.vectors == "device":
            self._device_operator(system)

    def _close(self) -> None:
        self._operator = self._operator_of = None

    def _device_operator(self, system: LinearSystem) -> DeviceMatrix:
        """A on the device for ``system`` (built once per matrix, at set-up)."""
        if self._operator is None or self._operator_of is not system.A:
            self._operator = DeviceMatrix(system.A, system.stencil, self.device, self.matvec)
            self._scale = float(abs(system.A).max()) if system.A.nnz else 1.0
            self._operator_of = system.A
        return self._operator

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        if self.vectors == "host":
            result = super()._solve(system, x0)
            info = {**result.info, "vectors": "host"}
        else:
            A = self._device_operator(system)
            pc = self.preconditioner
            b = torch.as_tensor(system.b, dtype=torch.float64, device=self.device)
            x_start = None if x0 is None else torch.as_tensor(x0, device=self.device)
            x, reason, its, norms, loop = conjugate_directions_on_device(
                A, b, pc.device_map(), self.stopping, x_start, self.memory, self.residual,
                self.restart, safeguard=self.safeguard, callback=self.callback,
                progress=self.progress, scale=self._scale,
            )  # fmt: skip
            result = SolveResult(
                x=x, converged=reason.converged, reason=reason, iterations=its,
                residual_norms=np.array(norms), wall_time=0.0, info={},
            )  # fmt: skip
            info = {"pc": pc.name, "pc_time": loop.pop("direction_time"), **loop,
                    "vectors": "device", "matvec": A.kind}  # fmt: skip
        timings = self.preconditioner.take_timings()
        return SolveResult(**{**result.__dict__, "info": {**info, **timings}})

