"""``method="hybrid"``: smoother sweeps alternating with a low-frequency correction (Markidis).

On a 2-D structured Poisson system ``A u = b`` (``A ≈ -Δ``, unknowns on an ``n × n`` grid) one
outer iteration is

1. ``nu`` sweeps of a smoother (``gauss_seidel``, ``red_black``, ``jacobi``; the vectorised
   sweeps of :mod:`pdesolve.solvers.multigrid`), which damp the high-frequency error;
2. ``r = b - A u`` and a correction ``e ≈ A⁻¹ r`` from a preconditioner ``pc`` (any
   :class:`~pdesolve.Preconditioner`; the two built for this method are registered):

   * ``"pinn_correction"`` (:class:`PINNCorrection`): a small network trained on the residual
     equation
     ``-Δe = r`` on the unit square, ``r`` interpolated bilinearly from the grid
     (``torch.nn.functional.grid_sample``), zero Dirichlet data by the ansatz
     ``e = x(1-x)y(1-y) N(x)``; it is warm-started between outer iterations and takes a few
     optimizer steps each (the F-principle: a network learns the low frequencies first);
   * ``"coarse_grid"`` (:class:`CoarseGridCorrection`): restrict ``r`` (bilinear ``Pᵀ``), solve
     the Galerkin coarse system ``PᵀAP`` exactly (sparse LU), prolongate: the classical two-grid
     reference;
   * ``"none"``: no correction, i.e. the plain smoother;

3. ``u ← u + α e`` with, by default (``line_search=True``), the energy-optimal step
   ``α = (rᵀe)/(eᵀAe)``, so that an inexact correction never increases the A-norm of the error
   (for the Galerkin coarse-grid correction ``α = 1`` exactly).

The loop (pdesolve's iteration driver) stops on the shared rule ``||b - A u|| <= max(rtol ||b||,
atol)`` on the true residual, checked after every outer iteration, or on divergence past
``dtol ||b||``. ``residual_norms`` holds the true residual after each outer iteration, the
initial one first. An initial guess may come from a trained PINN checkpoint
(``initial_checkpoint``), e.g. a transfer-learned one.

>>> import pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial").discretize()
>>> result = pdesolve.solve(system, method="hybrid", pc="coarse_grid", rtol=1e-8)
>>> result.converged, result.iterations <= 20
(True, True)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems.base import laplacian
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult
from pdesolve.solvers.driver import IterationDriver
from pdesolve.solvers.multigrid import SMOOTHERS, Level
from pdesolve.solvers.preconditioner import (
    PRECONDITIONERS,
    Preconditioner,
    resolve_preconditioner,
)

__all__ = ["CoarseGridCorrection", "HybridSolver", "PINNCorrection", "grid_size",
           "linear_interpolation"]  # fmt: skip


def grid_size(system: LinearSystem) -> int:
    """``n`` of a 2-D ``n × n`` structured system (clear error otherwise).

    >>> import pdesolve
    >>> grid_size(pdesolve.get_problem("poisson", dim=2, n=8).discretize())
    8
    """
    grid = system.grid
    shape = grid.shape if grid is not None else ()
    if len(shape) != 2 or shape[0] != shape[1] or grid.mask is not None:
        raise ValueError("the hybrid solver needs a 2-D n x n structured-grid system, e.g. "
                         "get_problem('poisson', dim=2, n=64).discretize(); got a system with "
                         f"grid shape {shape or None}")
    return int(shape[0])


def linear_interpolation(n: int, nc: int) -> sp.csr_matrix:
    """1-D linear interpolation from ``nc`` to ``n`` interior nodes of ``[0, 1]`` (zero ends).

    >>> P = linear_interpolation(7, 3).toarray()
    >>> P[:, 0].tolist()
    [0.5, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    """
    x = np.arange(1, n + 1) / (n + 1)
    t = x * (nc + 1)  # position in coarse index units; coarse node j (1..nc) at t = j
    left = np.floor(t).astype(int)
    w_right = t - left
    rows, cols, vals = [], [], []
    for j, w in ((left, 1.0 - w_right), (left + 1, w_right)):
        ok = (j >= 1) & (j <= nc) & (w > 1e-14)
        rows.append(np.flatnonzero(ok))
        cols.append(j[ok] - 1)
        vals.append(w[ok])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, nc))


@PRECONDITIONERS.register("coarse_grid")
class CoarseGridCorrection(Preconditioner):
    """Two-grid coarse correction ``e = P (PᵀAP)⁻¹ Pᵀ r`` with bilinear ``P``.

    Parameters
    ----------
    coarse_n : int, optional
        Interior nodes per dimension of the coarse grid (default ``(n - 1) // 2``; nested for
        odd ``n``, a non-nested bilinear transfer otherwise).
    """

    registry_name = "coarse_grid"

    def __init__(self, coarse_n: int | None = None) -> None:
        self.coarse_n = coarse_n

    def _setup(self, system: LinearSystem) -> None:
        n = grid_size(system)
        nc = self.coarse_n if self.coarse_n is not None else max((n - 1) // 2, 1)
        if not 1 <= nc < n:
            raise ValueError(f"coarse_n must be in [1, {n - 1}], got {nc}")
        P1 = linear_interpolation(n, nc)
        self.P_ = sp.kron(P1, P1, format="csr")
        self.R_ = self.P_.T.tocsr()
        self.lu_ = spla.splu((self.R_ @ sp.csr_matrix(system.A) @ self.P_).tocsc())
        self.coarse_n_ = nc

    def _apply(self, r: np.ndarray) -> np.ndarray:
        return self.P_ @ self.lu_.solve(self.R_ @ r)


@PRECONDITIONERS.register("pinn_correction")
class PINNCorrection(Preconditioner):
    """A PINN for the residual equation ``-Δe = r``, warm-started between calls.

    ``r`` (on the interior grid; zero on the boundary) is scaled to unit RMS, interpolated
    bilinearly at collocation points, and the network ``e = x(1-x)y(1-y) N(x)`` takes ``steps``
    Adam steps on ``mean(-Δe - r)²`` (second derivatives by autograd) per call; the returned
    correction is rescaled back. Weights and optimizer state persist between calls (the residual
    of the next outer iteration is much like the last one in its low frequencies).

    Parameters
    ----------
    width, depth, activation : network of :class:`pdesolve.nn.mlp.MLP`.
    activation_options : dict, optional
        Options of the activation (e.g. ``{"gaussian_width": 0.5}`` for ``raf``).
    model : dict, optional
        Any :func:`pdesolve.nn.mlp.make_model` specification ``{name, **options}`` instead of
        ``width``/``depth``/``activation`` (e.g. a network registered in ``MODELS`` by a study).
    steps : int
        Optimizer steps per call (per outer iteration).
    first_steps : int, optional
        Steps on the first call, from the random initialisation (None: ``steps``).
    batch : int
        Collocation points per step.
    sampling : str
        ``random``: a fresh seeded uniform batch every step; or one fixed set of ``batch``
        points drawn at set-up: ``uniform``, ``lhs``, ``sobol``, ``halton``
        (:mod:`pdesolve.train.collocation`).
    lr : float
        Adam learning rate.
    dtype : str
        Network precision (``float32`` is faster; the solver's arithmetic stays float64).
    """

    def __init__(self, width: int = 32, depth: int = 3, activation: str = "tanh",
                 steps: int = 10, first_steps: int | None = 200, batch: int = 512,
                 lr: float = 5e-3, dtype: str = "float32", seed: int = 0,
                 device: str = "cpu", sampling: str = "random",
                 activation_options: dict[str, Any] | None = None,
                 model: dict[str, Any] | None = None) -> None:  # fmt: skip
        from pdesolve.solvers.dcdm_network import check_device
        from pdesolve.train.collocation import METHODS

        check_device(device)

        if sampling not in METHODS:
            raise ValueError(f"unknown sampling {sampling!r}; known: {', '.join(METHODS)}")
        self.width, self.depth, self.activation = width, depth, activation
        self.activation_options = dict(activation_options or {})
        self.model = dict(model) if model is not None else None
        if self.model is not None and "name" not in self.model:
            raise ValueError("model needs a 'name' (a pdesolve.nn.mlp.MODELS key)")
        self.sampling = sampling
        self.steps, self.batch, self.lr = int(steps), int(batch), float(lr)
        self.first_steps = int(first_steps) if first_steps is not None else self.steps
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.seed, self.device = int(seed), torch.device(device)

    registry_name = "pinn_correction"
    is_linear = False
    is_symmetric = False

    def _setup(self, system: LinearSystem) -> None:
        from pdesolve.nn.mlp import make_model

        self.n_ = grid_size(system)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if self.model is not None:
                spec = {k: v for k, v in self.model.items() if k != "name"}
                self.net_ = make_model(self.model["name"], 2, 1, **spec)
            else:
                self.net_ = make_model("mlp", 2, 1, width=self.width, depth=self.depth,
                                       activation=self.activation,
                                       activation_options=self.activation_options)
        self.net_ = self.net_.to(device=self.device, dtype=self.dtype)
        self.optimizer_ = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        # random batches are drawn on the network's device (no copy per step; on a GPU they are
        # another stream of numbers than on the CPU); fixed sets are drawn once, on the CPU
        where = self.device if self.sampling == "random" else torch.device("cpu")
        self.generator_ = torch.Generator(device=where).manual_seed(self.seed + 1)
        self.fixed_points_: torch.Tensor | None = None
        if self.sampling != "random":
            from pdesolve.problems.domains import UnitBox
            from pdesolve.train.collocation import CollocationSampler

            fixed = CollocationSampler(UnitBox(2), self.batch, self.sampling, self.generator_)
            self.fixed_points_ = fixed.interior().to(device=self.device, dtype=self.dtype)
        pts = np.asarray(system.grid.points, dtype=np.float64)
        self.points_ = torch.as_tensor(pts, dtype=self.dtype, device=self.device)
        self.calls_ = 0
        self._losses: list[float] = []
        self._pending: list[torch.Tensor] = []  # losses still on the device

    @property
    def losses_(self) -> list[float]:
        """The training loss of every optimizer step so far (read from the device on access)."""
        if self._pending:
            self._losses += torch.stack(self._pending).tolist()
            self._pending = []
        return self._losses

    def _u(self, x: torch.Tensor) -> torch.Tensor:
        return torch.prod(x * (1 - x), dim=1) * self.net_(x).reshape(-1)

    def _residual_image(self, r: np.ndarray) -> torch.Tensor:
        n = self.n_
        full = np.zeros((n + 2, n + 2))
        full[1:-1, 1:-1] = r.reshape(n, n)  # [i, j]: i along x (slowest), j along y
        return torch.as_tensor(full, dtype=self.dtype, device=self.device)[None, None]

    def _sample(self, image: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # grid_sample: last coordinate indexes width (our j, i.e. y), the first height (x)
        grid = torch.stack([2 * x[:, 1] - 1, 2 * x[:, 0] - 1], dim=1)[None, None]
        out = torch.nn.functional.grid_sample(image, grid, mode="bilinear",
                                              align_corners=True)
        return out.reshape(-1)

    def _laplacian(self, x: torch.Tensor) -> torch.Tensor:
        x = x.requires_grad_(True)
        return laplacian(self._u(x), x)

    def _train(self, image: torch.Tensor) -> None:
        """This call's optimizer steps on the residual image (nothing read back)."""
        steps = self.first_steps if self.calls_ == 0 else self.steps
        for _ in range(steps):
            if self.fixed_points_ is not None:
                x = self.fixed_points_.clone()
            else:
                x = torch.rand(self.batch, 2, generator=self.generator_, dtype=self.dtype,
                               device=self.device)  # fmt: skip
            target = self._sample(image, x)
            loss = torch.mean((-self._laplacian(x) - target) ** 2)
            self.optimizer_.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_.step()
            self._pending.append(loss.detach())
        self.calls_ += 1

    def _apply(self, r: np.ndarray) -> np.ndarray:
        scale = float(np.sqrt(np.mean(r * r)))
        if scale == 0.0:
            return np.zeros_like(r)
        self._train(self._residual_image(r / scale))
        with torch.no_grad():
            e = self._u(self.points_).double().cpu().numpy()
        return scale * e

    def on_device(self, r: torch.Tensor) -> torch.Tensor:
        """The correction for the float64 residual ``r`` (flat, on the network's device), on
        the device: the same map as ``apply`` with nothing read back to the host (a zero
        residual trains on a zero image and returns a zero correction)."""
        n = self.n_
        scale = torch.sqrt(torch.mean(r * r))
        image = torch.zeros((1, 1, n + 2, n + 2), dtype=self.dtype, device=r.device)
        image[0, 0, 1:-1, 1:-1] = (r / scale.clamp_min(1e-300)).reshape(n, n)
        self._train(image)
        with torch.no_grad():
            return scale * self._u(self.points_).double()


class DeviceSweeps:
    """The hybrid solver's smoother sweeps on flat float64 torch vectors of one device.

    The same sweeps as :class:`pdesolve.solvers.multigrid.Level` (forward): weighted Jacobi,
    or Gauss–Seidel as a sparse triangular solve with the lower triangle of ``A`` in
    lexicographic (``gauss_seidel``) or red-black (``red_black``) order (torch sparse CSR;
    cuSPARSE on a GPU).
    """

    def __init__(self, A: Any, smoother: str, omega: float, device: Any) -> None:
        from pdesolve.linalg.torch_ops import csr_to_torch

        if smoother not in SMOOTHERS:
            raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
        A = sp.csr_matrix(A, dtype=np.float64)
        self.smoother, self.perm = smoother, None
        if smoother == "jacobi":
            diag = A.diagonal()
            if np.any(diag <= 0):
                raise ValueError("weighted Jacobi needs a positive diagonal")
            self.dinv = torch.as_tensor(omega / diag, device=device)
            return
        n = round(np.sqrt(A.shape[0]))
        if smoother == "red_black":  # red ((i + j) even) first, as Level
            i, j = np.divmod(np.arange(n * n), n)
            red = (i + j) % 2 == 0
            perm = np.concatenate([np.flatnonzero(red), np.flatnonzero(~red)])
            A = A[perm][:, perm]
            self.perm = torch.as_tensor(perm, device=device)
        self.lower = csr_to_torch(sp.tril(A, format="csr"), device=device)

    def sweep(self, r: torch.Tensor) -> torch.Tensor:
        """The correction of one sweep for the residual ``r``."""
        if self.smoother == "jacobi":
            return self.dinv * r
        rp = r if self.perm is None else r.index_select(0, self.perm)
        z = torch.triangular_solve(rp[:, None], self.lower, upper=False).solution[:, 0]
        return z if self.perm is None else torch.empty_like(z).index_copy_(0, self.perm, z)


#: where the hybrid solver's outer iteration keeps its vectors (see ``HybridSolver``)
VECTORS = ("auto", "host", "device")


@SOLVERS.register("hybrid")
class HybridSolver(Solver):
    """Smoother sweeps + pluggable low-frequency corrector (see the module docstring).

    Parameters
    ----------
    pc : a preconditioner name ("coarse_grid", "pinn_correction", "none", ...), a config
        mapping ``{"name": ..., **options}`` or a ``Preconditioner`` object
    smoother : {"gauss_seidel", "red_black", "jacobi"}
    nu : int
        Smoother sweeps per outer iteration (before the correction).
    omega : float
        Jacobi weight.
    line_search : bool
        Scale the correction by the energy-optimal ``α = rᵀe / eᵀAe``.
    initial_checkpoint : str, optional
        A PINN checkpoint (``PINNTrainer``) whose network, at the grid nodes, is the initial
        guess when no ``x0`` is given.
    max_time : float, optional
        Time cap in seconds on the outer loop (checked after each outer iteration); when hit,
        the solve stops unconverged with ``DIVERGED_ITS`` and ``info["time_limit"]`` True.
    max_time_clock : {"wall", "process"}
        The clock of ``max_time``: wall time, or this process's CPU time (a cap that means the
        same on a loaded, shared machine).
    vectors : {"auto", "host", "device"}
        Where the outer iteration keeps its vectors: "host" (numpy, scipy's A and smoother;
        the residual goes to the corrector's device and the correction comes back every outer
        iteration), "device" (float64 torch tensors on the corrector's device, A as a stencil
        convolution or torch sparse CSR, the sweeps as sparse triangular solves, the corrector
        fed on the device: only the residual norm and the step ``α`` come back, once per outer
        iteration; needs a corrector with an on-device map, ``pinn_correction``) or "auto"
        (default: "device" for a ``pinn_correction`` off the CPU, else "host"). On a GPU the
        ``smooth_time``/``correct_time`` of the device loop are launch times (the device runs
        asynchronously); the solve time is exact.
    """

    registry_name = "hybrid"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 1000,
        dtol: float | None = 1e5,
        pc: str | dict[str, Any] | Preconditioner = "coarse_grid",
        smoother: str = "gauss_seidel",
        nu: int = 2,
        omega: float = 2.0 / 3.0,
        line_search: bool = True,
        initial_checkpoint: str | None = None,
        max_time: float | None = None,
        max_time_clock: str = "wall",
        vectors: str = "auto",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter, dtol=dtol)
        if vectors not in VECTORS:
            raise ValueError(f"unknown vectors {vectors!r}; known: {', '.join(VECTORS)}")
        if max_time is not None and not max_time > 0:
            raise ValueError(f"max_time must be positive (or None), got {max_time!r}")
        if max_time_clock not in ("wall", "process"):
            raise ValueError(f"max_time_clock must be 'wall' or 'process', got {max_time_clock!r}")
        self.max_time = float(max_time) if max_time is not None else None
        self._clock = time.perf_counter if max_time_clock == "wall" else time.process_time
        if smoother not in SMOOTHERS:
            raise ValueError(f"unknown smoother {smoother!r}; known: {', '.join(SMOOTHERS)}")
        if int(nu) != nu or nu < 0:
            raise ValueError(f"nu must be a non-negative integer, got {nu!r}")
        self.pc = pc
        self.preconditioner = resolve_preconditioner(pc)
        if self.preconditioner.name == "none" and nu == 0:
            raise ValueError("nu = 0 with no correction (pc='none') would never change the iterate")
        self.smoother, self.nu, self.omega = smoother, int(nu), float(omega)
        self.line_search = bool(line_search)
        self.initial_checkpoint = initial_checkpoint
        pc = self.preconditioner
        device = torch.device(getattr(pc, "device", "cpu")) if hasattr(pc, "on_device") else None
        if vectors == "auto":
            vectors = "device" if device is not None and device.type != "cpu" else "host"
        if vectors == "device" and device is None:
            raise ValueError(
                f"vectors='device' needs a corrector that runs on a torch device "
                f"(pinn_correction); {self.preconditioner.name!r} works on host vectors "
                "(vectors='host')"
            )
        self.vectors, self.device = vectors, device

    def _initial_guess(self, system: LinearSystem) -> np.ndarray:
        from pdesolve.train.pinn import load_pinn

        where = self.device if self.device is not None else torch.device("cpu")
        model, _ = load_pinn(self.initial_checkpoint, map_location=where)
        dtype = next(model.parameters()).dtype
        pts = torch.as_tensor(np.asarray(system.grid.points), dtype=dtype, device=where)
        with torch.no_grad():
            return model(pts).double().cpu().numpy()

    def _check_system(self, system: LinearSystem) -> None:
        grid_size(system)

    def _setup(self, system: LinearSystem) -> None:
        self._swap_operator(system)
        if self.preconditioner.name != "none":
            self._prepare_preconditioner(self.preconditioner, system)

    def _swap_operator(self, system: LinearSystem) -> None:
        # the smoother sweeps belong to the iteration: they take the new values; the correction
        # (the preconditioner) is the one kept
        if self.vectors == "device":
            from pdesolve.linalg.torch_ops import DeviceMatrix

            self.device_A_ = DeviceMatrix(system.A, system.stencil, self.device)
            self.sweeps_ = DeviceSweeps(system.A, self.smoother, self.omega, self.device)
            return
        self.level_ = Level(sp.csr_matrix(system.A, dtype=np.float64), grid_size(system),
                            self.smoother, self.omega)  # fmt: skip

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        if self.vectors == "device":
            return self._solve_on_device(system, x0)
        A, b = system.A, system.b
        level, pc = self.level_, self.preconditioner
        correct = pc.name != "none"
        x = self._start(system, x0)
        c1 = self._clock()
        driver = IterationDriver(self.stopping, system.b_norm, self.callback)
        r = b - A @ x
        alphas: list[float] = []
        smooth_time = correct_time = 0.0
        reason = driver.start(float(np.linalg.norm(r)))
        time_limit = False
        while reason is None:
            if self.max_time is not None and self._clock() - c1 >= self.max_time:
                reason, time_limit = driver.stop(ConvergedReason.DIVERGED_ITS), True
                break
            ts = time.perf_counter()
            x = level.smooth(x, b, self.nu, backward=False)
            r = b - A @ x
            smooth_time += time.perf_counter() - ts
            if correct:
                tc = time.perf_counter()
                e = pc.apply(r)
                alpha = 1.0
                if self.line_search:
                    eAe = float(e @ (A @ e))
                    alpha = float(r @ e) / eAe if eAe > 0 else 0.0
                x = x + alpha * e
                r = b - A @ x
                alphas.append(alpha)
                correct_time += time.perf_counter() - tc
            reason = driver.step(x, float(np.linalg.norm(r)))
        reason, iterations, norms = driver.finish()
        info = {
            "smooth_time": smooth_time, "correct_time": correct_time, "pc": pc.name,
            "smoother": self.smoother, "nu": self.nu, "alphas": alphas,
            "time_limit": time_limit, "vectors": "host",
        }  # fmt: skip
        return SolveResult(x=x, converged=reason.converged, reason=reason, iterations=iterations,
                           residual_norms=norms, wall_time=0.0, info=info)  # fmt: skip

    def _start(self, system: LinearSystem, x0: np.ndarray | None) -> np.ndarray:
        if x0 is not None:
            return np.array(x0, dtype=np.float64)
        if self.initial_checkpoint is not None:
            return self._initial_guess(system)
        return np.zeros_like(system.b)

    def _solve_on_device(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        """The outer loop of ``_solve`` on the device (``vectors="device"``)."""
        A, sweeps, pc, dev = self.device_A_, self.sweeps_, self.preconditioner, self.device
        b = torch.as_tensor(system.b, dtype=torch.float64, device=dev)
        x = torch.as_tensor(self._start(system, x0), dtype=torch.float64, device=dev)
        c1 = self._clock()
        driver = IterationDriver(self.stopping, system.b_norm, self.callback)
        zero = torch.zeros((), dtype=torch.float64, device=dev)
        alphas: list[float] = []
        smooth_time = correct_time = 0.0
        reason = driver.start(float(torch.linalg.vector_norm(b - A(x))))
        time_limit = False
        while reason is None:
            if self.max_time is not None and self._clock() - c1 >= self.max_time:
                reason, time_limit = driver.stop(ConvergedReason.DIVERGED_ITS), True
                break
            ts = time.perf_counter()
            for _ in range(self.nu):
                x = x + sweeps.sweep(b - A(x))
            r = b - A(x)
            smooth_time += time.perf_counter() - ts
            tc = time.perf_counter()
            e = pc.on_device(r)
            alpha = torch.ones((), dtype=torch.float64, device=dev)
            if self.line_search:
                eAe = torch.dot(e, A(e))
                alpha = torch.where(eAe > 0, torch.dot(r, e) / eAe, zero)
            x = x + alpha * e
            r = b - A(x)
            norm, step = torch.stack([torch.linalg.vector_norm(r), alpha]).tolist()
            alphas.append(step)
            correct_time += time.perf_counter() - tc
            reason = driver.step(x.cpu().numpy() if self.callback is not None else x, norm)
        reason, iterations, norms = driver.finish()
        info = {
            "smooth_time": smooth_time, "correct_time": correct_time, "pc": pc.name,
            "smoother": self.smoother, "nu": self.nu, "alphas": alphas,
            "time_limit": time_limit, "vectors": "device", "matvec": A.kind,
        }  # fmt: skip
        return SolveResult(x=x.cpu().numpy(), converged=reason.converged, reason=reason,
                           iterations=iterations, residual_norms=norms, wall_time=0.0,
                           info=info)  # fmt: skip
