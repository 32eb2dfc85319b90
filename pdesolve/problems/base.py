"""The ``Problem`` contract shared by classical and learned solvers.

Point functions (``coefficient``, ``source``, ``exact_solution``, ...) take torch tensors; those
marked :func:`accepts_numpy` also take numpy arrays (and return numpy), so that assembling a
system from them does not need torch at all (a PETSc run under MPI then never imports it).
:func:`to_numpy_fn` evaluates any point function on numpy points, through torch only when the
function needs it.

>>> import numpy as np
>>> @accepts_numpy
... def bump(x):
...     return rows_full(x, 2.0) * x[:, 0]
>>> to_numpy_fn(bump, np.array([[0.5, 0.0], [1.0, 1.0]]))
array([1., 2.])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems.domains import Domain

if TYPE_CHECKING:
    from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])


def accepts_numpy(fn: F) -> F:
    """Mark a point function that also takes numpy points (and then returns numpy values)."""
    fn.accepts_numpy = True  # type: ignore[attr-defined]
    return fn


def rows_full(x: Any, value: float) -> Any:
    """``value`` at every point of ``x`` (shape ``(N,)``; numpy for numpy points, else torch on
    the points' device and dtype)."""
    if isinstance(x, np.ndarray):
        return np.full(x.shape[0], float(value))
    import torch

    return torch.full((x.shape[0],), float(value), dtype=x.dtype, device=x.device)


def evaluate(fn: Callable[[Any], Any], x: Any) -> Any:
    """``fn(x)`` for torch or numpy points ``x``; a torch-only ``fn`` given numpy points is
    evaluated through torch (float64, CPU) and its values returned as numpy."""
    if not isinstance(x, np.ndarray) or getattr(fn, "accepts_numpy", False):
        return fn(x)
    import torch

    with torch.no_grad():
        values = fn(torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float64))
    return values.detach().cpu().numpy()


def to_numpy_fn(fn: Callable[[Tensor], Tensor], points: np.ndarray) -> np.ndarray:
    """Evaluate a point function on numpy points (float64, CPU); torch only if it needs it."""
    values = evaluate(fn, np.ascontiguousarray(points, dtype=np.float64))
    return np.asarray(values, dtype=np.float64)


#: what ``linear_solver`` builds solvers with (installed by ``pdesolve.solvers``)
_LINEAR_SOLVER_FACTORY: Callable[..., Any] | None = None


def use_linear_solvers(factory: Callable[..., Any]) -> None:
    """Install ``factory(name, **options) -> Solver`` (``pdesolve.get_solver``; the solver
    package does this when it is imported) for the references' linear solves."""
    global _LINEAR_SOLVER_FACTORY
    _LINEAR_SOLVER_FACTORY = factory


def linear_solver(solver: Any, **options: Any) -> Any:
    """A solver object (``setup``/``solve``/``close``) from a registered name or an object."""
    if not isinstance(solver, str):
        for method in ("setup", "solve", "close"):
            if not callable(getattr(solver, method, None)):
                raise TypeError(f"solver must be a name or an object with setup/solve/close, "
                                f"got {type(solver).__name__}")  # fmt: skip
        return solver
    if _LINEAR_SOLVER_FACTORY is None:
        raise RuntimeError("no linear solvers are installed: import pdesolve first")
    return _LINEAR_SOLVER_FACTORY(solver, **options)


def gradient(values: Tensor, x: Tensor) -> Tensor:
    """``∂ values / ∂ x`` row-wise, keeping the graph (for PDE residuals)."""
    import torch

    (grad,) = torch.autograd.grad(values.sum(), x, create_graph=True)
    return grad


def laplacian(values: Tensor, x: Tensor) -> Tensor:
    """``Δ values`` row-wise by autograd (``x`` must require grad), keeping the graph."""
    grad = gradient(values, x)
    return sum(gradient(grad[:, i], x)[:, i] for i in range(x.shape[1]))


class PointCache:
    """Values of a parameter-free point function (detached when a tensor), reused while the
    same unmodified points come back (fixed collocation sets): ``cache(fn, x)``.

    The cache holds the points themselves, so no other tensor can reuse their memory: equal
    data pointer, layout and version counter mean equal values (``x.detach()`` included).

    >>> import torch
    >>> calls = []
    >>> def f(x):
    ...     calls.append(1)
    ...     return x.sum(dim=1)
    >>> cache, x = PointCache(), torch.ones(3, 2)
    >>> cache(f, x).tolist(), cache(f, x.detach()).tolist(), len(calls)
    ([2.0, 2.0, 2.0], [2.0, 2.0, 2.0], 1)
    >>> _ = x.mul_(2); cache(f, x).tolist(), len(calls)  # changed in place: recomputed
    ([4.0, 4.0, 4.0], 2)
    """

    def __init__(self, size: int = 4) -> None:
        self.size = int(size)
        self._store: dict[tuple, tuple[Tensor, int, Any]] = {}

    def __call__(self, fn: Callable[[Tensor], Any], x: Tensor) -> Any:
        key = (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, str(x.device))
        hit = self._store.get(key)
        if hit is not None and hit[1] == x._version:
            return hit[2]
        value = fn(x)
        if hasattr(value, "detach"):  # a tensor (torch is not imported by this module)
            value = value.detach()
        if len(self._store) >= self.size:
            self._store.pop(next(iter(self._store)))
        self._store[key] = (x, x._version, value)
        return value


class Problem(ABC):
    """A PDE problem with a continuous form and a discrete form.

    Continuous form: ``domain``, ``coefficient(x)``, ``source(x)``, ``boundary_value(x)``,
    ``exact_solution(x)`` (when ``has_exact_solution``) and ``pde_residual(u, x)``, all torch
    functions of points ``x`` of shape ``(N, dim)``. Discrete form: ``discretize()`` returns a
    ``LinearSystem``. Subclasses store their parameters in ``params`` (used in result.json).
    """

    name: str = "problem"
    #: ``"stationary"`` or ``"time_dependent"`` (see ``pdesolve.problems.time_dependent``), so
    #: generic code can branch without isinstance checks
    kind: str = "stationary"
    dim: int
    domain: Domain

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    # continuous form -------------------------------------------------------------------------
    @accepts_numpy
    def coefficient(self, x: Tensor) -> Tensor:
        """The diffusion coefficient ``k(x)`` (1 unless a family says otherwise)."""
        return rows_full(x, 1.0)

    @abstractmethod
    def source(self, x: Tensor) -> Tensor:
        """The right-hand side ``f(x)``."""

    @accepts_numpy
    def boundary_value(self, x: Tensor) -> Tensor:
        """Dirichlet data ``g(x)``: the exact solution when known, else 0."""
        if self.has_exact_solution:
            return evaluate(self.exact_solution, x)
        return rows_full(x, 0.0)

    @property
    def has_exact_solution(self) -> bool:
        return False

    def exact_solution(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"problem {self.name!r} has no known exact solution")

    def pde_residual(self, u: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``-∇·(k ∇u) - f`` at ``x`` for a differentiable ``u`` (e.g. a network), via autograd."""
        if not x.requires_grad:
            x = x.clone().requires_grad_(True)
        values = u(x).reshape(-1)
        flux = self.coefficient(x)[:, None] * gradient(values, x)
        divergence = sum(gradient(flux[:, i], x)[:, i] for i in range(x.shape[1]))
        return -divergence - self.source(x)

    # discrete form ---------------------------------------------------------------------------
    @abstractmethod
    def discretize(self, **overrides: Any) -> LinearSystem:
        """The linear system of this problem's discretization."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
