"""``method="hybrid"``: smoother sweeps alternating with a low-frequency correction (Markidis).

On a 2-D structured Poisson system ``A u = b`` (``A ≈ -Δ``, unknowns on an ``n × n`` grid) one
outer iteration is

1. ``nu`` sweeps of a smoother (``gauss_seidel``, ``red_black``, ``jacobi``; the vectorised
   sweeps of :mod:`pdesolve.solvers.multigrid`), which damp the high-frequency error;
2. ``r = b - A u`` and a correction ``e ≈ A⁻¹ r`` from a pluggable *corrector*:

   * ``"pinn"`` (:class:`PINNCorrector`): a small network trained on the residual equation
     ``-Δe = r`` on the unit square, ``r`` interpolated bilinearly from the grid
     (``torch.nn.functional.grid_sample``), zero Dirichlet data by the ansatz
     ``e = x(1-x)y(1-y) N(x)``; it is warm-started between outer iterations and takes a few
     optimizer steps each (the F-principle: a network learns the low frequencies first);
   * ``"coarse_grid"`` (:class:`CoarseGridCorrector`): restrict ``r`` (bilinear ``Pᵀ``), solve
     the Galerkin coarse system ``PᵀAP`` exactly (sparse LU), prolongate: the classical two-grid
     reference;
   * ``None``: no correction, i.e. the plain smoother;
   * any object with ``setup(system)`` and ``__call__(r) -> e``;

3. ``u ← u + α e`` with, by default (``line_search=True``), the energy-optimal step
   ``α = (rᵀe)/(eᵀAe)``, so that an inexact correction never increases the A-norm of the error
   (for the Galerkin coarse-grid correction ``α = 1`` exactly).

The loop stops on the shared rule ``||b - A u|| <= max(rtol ||b||, atol)`` on the true residual,
checked after every outer iteration. ``residual_norms`` holds the true residual after each outer
iteration, the initial one first. An initial guess may come from a trained PINN checkpoint
(``initial_checkpoint``), e.g. a transfer-learned one.

>>> import pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=31, solution="polynomial").discretize()
>>> result = pdesolve.solve(system, method="hybrid", corrector="coarse_grid", rtol=1e-8)
>>> result.converged, result.iterations <= 20
(True, True)
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems.base import laplacian
from pdesolve.solvers import SOLVERS
from pdesolve.solvers.base import ConvergedReason, Solver, SolveResult
from pdesolve.solvers.multigrid import SMOOTHERS, _Level

CORRECTORS = ("pinn", "coarse_grid", "none")
_DTOL = 1e5

__all__ = ["CORRECTORS", "CoarseGridCorrector", "Corrector", "HybridSolver", "PINNCorrector",
           "grid_size", "linear_interpolation"]  # fmt: skip


class Corrector(Protocol):
    """What the hybrid solver needs from a corrector: ``e ≈ A⁻¹ r`` for a residual ``r``."""

    def setup(self, system: LinearSystem) -> None: ...

    def __call__(self, r: np.ndarray) -> np.ndarray: ...


def grid_size(system: LinearSystem) -> int:
    """``n`` of a 2-D ``n × n`` structured system (clear error otherwise).

    >>> import pdesolve
    >>> grid_size(pdesolve.get_problem("poisson", dim=2, n=8).discretize())
    8
    """
    shape = tuple(getattr(system.geometry, "shape", ()) or ())
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] ** 2 != system.size:
        raise ValueError("the hybrid solver needs a 2-D n x n structured-grid system, e.g. "
                         "get_problem('poisson', dim=2, n=64).discretize(); got geometry "
                         f"{type(system.geometry).__name__} with shape {shape}")
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


class CoarseGridCorrector:
    """Two-grid coarse correction ``e = P (PᵀAP)⁻¹ Pᵀ r`` with bilinear ``P``.

    Parameters
    ----------
    coarse_n : int, optional
        Interior nodes per dimension of the coarse grid (default ``(n - 1) // 2``; nested for
        odd ``n``, a non-nested bilinear transfer otherwise).
    """

    def __init__(self, coarse_n: int | None = None) -> None:
        self.coarse_n = coarse_n

    def setup(self, system: LinearSystem) -> None:
        n = grid_size(system)
        nc = self.coarse_n if self.coarse_n is not None else max((n - 1) // 2, 1)
        if not 1 <= nc < n:
            raise ValueError(f"coarse_n must be in [1, {n - 1}], got {nc}")
        P1 = linear_interpolation(n, nc)
        self.P_ = sp.kron(P1, P1, format="csr")
        self.R_ = self.P_.T.tocsr()
        self.lu_ = spla.splu((self.R_ @ sp.csr_matrix(system.A) @ self.P_).tocsc())
        self.coarse_n_ = nc

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.P_ @ self.lu_.solve(self.R_ @ r)


class PINNCorrector:
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
        from pdesolve.train.collocation import METHODS

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

    def setup(self, system: LinearSystem) -> None:
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
        self.generator_ = torch.Generator().manual_seed(self.seed + 1)
        self.fixed_points_: torch.Tensor | None = None
        if self.sampling != "random":
            from pdesolve.problems.domains import UnitBox
            from pdesolve.train.collocation import CollocationSampler

            fixed = CollocationSampler(UnitBox(2), self.batch, self.sampling, self.generator_)
            self.fixed_points_ = fixed.interior().to(device=self.device, dtype=self.dtype)
        pts = np.asarray(system.geometry.points, dtype=np.float64)
        self.points_ = torch.as_tensor(pts, dtype=self.dtype, device=self.device)
        self.calls_ = 0
        self.losses_: list[float] = []

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

    def __call__(self, r: np.ndarray) -> np.ndarray:
        scale = float(np.sqrt(np.mean(r * r)))
        if scale == 0.0:
            return np.zeros_like(r)
        image = self._residual_image(r / scale)
        steps = self.first_steps if self.calls_ == 0 else self.steps
        for _ in range(steps):
            if self.fixed_points_ is not None:
                x = self.fixed_points_.clone()
            else:
                x = torch.rand(self.batch, 2, generator=self.generator_, dtype=self.dtype)
                x = x.to(self.device)
            target = self._sample(image, x)
            loss = torch.mean((-self._laplacian(x) - target) ** 2)
            self.optimizer_.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_.step()
            self.losses_.append(float(loss.detach()))
        self.calls_ += 1
        with torch.no_grad():
            e = self._u(self.points_).double().cpu().numpy()
        return scale * e


def make_corrector(corrector: Any, options: dict[str, Any] | None = None) -> Corrector | None:
    """A corrector from a name (``pinn``, ``coarse_grid``, ``none``/None) or an object."""
    options = dict(options or {})
    if corrector is None or corrector == "none":
        return None
    if corrector == "pinn":
        return PINNCorrector(**options)
    if corrector == "coarse_grid":
        return CoarseGridCorrector(**options)
    if isinstance(corrector, str):
        raise ValueError(f"unknown corrector {corrector!r}; known: {', '.join(CORRECTORS)}")
    if not (hasattr(corrector, "setup") and callable(corrector)):
        raise TypeError("a corrector needs setup(system) and __call__(r) -> e")
    return corrector


@SOLVERS.register("hybrid")
class HybridSolver(Solver):
    """Smoother sweeps + pluggable low-frequency corrector (see the module docstring).

    Parameters
    ----------
    corrector : {"pinn", "coarse_grid", "none"} or object
    corrector_options : dict, optional
        Keyword arguments of :class:`PINNCorrector` / :class:`CoarseGridCorrector`.
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
    """

    registry_name = "hybrid"
    requires_spd = True

    def __init__(
        self,
        rtol: float = 1e-8,
        atol: float = 0.0,
        maxiter: int = 1000,
        corrector: Any = "coarse_grid",
        corrector_options: dict[str, Any] | None = None,
        smoother: str = "gauss_seidel",
        nu: int = 2,
        omega: float = 2.0 / 3.0,
        line_search: bool = True,
        initial_checkpoint: str | None = None,
        max_time: float | None = None,
        max_time_clock: str = "wall",
    ) -> None:
        super().__init__(rtol=rtol, atol=atol, maxiter=maxiter)
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
        self.corrector = make_corrector(corrector, corrector_options)
        if self.corrector is None and nu == 0:
            raise ValueError("nu = 0 with no corrector would never change the iterate")
        self.corrector_name = corrector if isinstance(corrector, str) or corrector is None \
            else type(corrector).__name__
        self.smoother, self.nu, self.omega = smoother, int(nu), float(omega)
        self.line_search = bool(line_search)
        self.initial_checkpoint = initial_checkpoint

    def _initial_guess(self, system: LinearSystem) -> np.ndarray:
        from pdesolve.train.pinn_trainer import load_pinn

        model, _ = load_pinn(self.initial_checkpoint)
        dtype = next(model.parameters()).dtype
        pts = torch.as_tensor(np.asarray(system.geometry.points), dtype=dtype)
        with torch.no_grad():
            return model(pts).double().numpy()

    def _solve(self, system: LinearSystem, x0: np.ndarray | None) -> SolveResult:
        t0 = time.perf_counter()
        n = grid_size(system)
        A = sp.csr_matrix(system.A, dtype=np.float64)
        b = np.asarray(system.b, dtype=np.float64)
        level = _Level(A, n, self.smoother, self.omega)
        if self.corrector is not None:
            self.corrector.setup(system)
        if x0 is not None:
            x = np.array(x0, dtype=np.float64)
        elif self.initial_checkpoint is not None:
            x = self._initial_guess(system)
        else:
            x = np.zeros_like(b)
        setup_time = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), self._clock()
        rule, b_norm = self.stopping, system.b_norm
        r = b - A @ x
        norms = [float(np.linalg.norm(r))]
        alphas: list[float] = []
        smooth_time = correct_time = 0.0
        reason = rule.reason_for(norms[0], b_norm)
        iterations = 0
        time_limit = False
        while reason is None:
            if iterations >= rule.maxiter:
                reason = ConvergedReason.DIVERGED_ITS
                break
            if self.max_time is not None and self._clock() - c1 >= self.max_time:
                reason, time_limit = ConvergedReason.DIVERGED_ITS, True
                break
            ts = time.perf_counter()
            x = level.smooth(x, b, self.nu, backward=False)
            r = b - A @ x
            smooth_time += time.perf_counter() - ts
            if self.corrector is not None:
                tc = time.perf_counter()
                e = np.asarray(self.corrector(r), dtype=np.float64)
                alpha = 1.0
                if self.line_search:
                    eAe = float(e @ (A @ e))
                    alpha = float(r @ e) / eAe if eAe > 0 else 0.0
                x = x + alpha * e
                r = b - A @ x
                alphas.append(alpha)
                correct_time += time.perf_counter() - tc
            iterations += 1
            norms.append(float(np.linalg.norm(r)))
            reason = rule.reason_for(norms[-1], b_norm)
            if reason is None and norms[-1] > _DTOL * max(norms[0], b_norm):
                reason = ConvergedReason.DIVERGED_DTOL
        solve_time = time.perf_counter() - t1
        info = {
            "setup_time": setup_time, "solve_time": solve_time, "smooth_time": smooth_time,
            "correct_time": correct_time, "corrector": self.corrector_name,
            "smoother": self.smoother, "nu": self.nu, "alphas": alphas,
            "time_limit": time_limit,
        }  # fmt: skip
        return SolveResult(x=x, converged=reason.converged, reason=reason, iterations=iterations,
                           residual_norms=np.asarray(norms), wall_time=setup_time + solve_time,
                           info=info)  # fmt: skip
