"""The one preconditioner protocol of pdesolve, ``Preconditioner``, and its registry.

A preconditioner is set up once for a system (``setup``) and then maps residuals to corrections
(``apply``). Its two properties say where it may run: ``is_linear`` (one fixed linear map; else
only flexible Krylov methods, FCG/GCR, can use it) and ``is_symmetric`` (a symmetric positive
definite map, as CG needs). Every Krylov solver of pdesolve takes ``pc=`` as a registered name or
a ``Preconditioner`` object: scipy through :meth:`Preconditioner.as_linear_operator`, PETSc through
:meth:`Preconditioner.configure_petsc` (a python-type PC calling ``apply``; PETSc's own
preconditioners configure PETSc's PC directly), pdesolve's FCG through ``apply``.

This interface is frozen; new preconditioners subclass it and implement ``_setup`` and ``_apply``.

>>> import numpy as np, pdesolve
>>> system = pdesolve.get_problem("poisson", dim=2, n=8).discretize()
>>> jacobi = pdesolve.get_preconditioner("jacobi").setup(system)
>>> bool(np.allclose(jacobi.apply(system.b), system.b / system.A.diagonal()))
True
>>> "gamg" in pdesolve.list_preconditioners()
True
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

from pdesolve.linalg.system import InvalidSystemError, LinearSystem
from pdesolve.registry import Registry


class Preconditioner(ABC):
    """What every preconditioner provides: ``setup(system)``, ``apply(r)``, its properties.

    Subclasses store options in ``__init__`` (no work there) and implement ``_setup`` (all the
    work that depends on ``A``) and ``_apply`` (one application, float64 in and out). ``setup``
    and ``apply`` check their input and keep the bookkeeping (``system_``, ``setup_count``,
    ``setup_time_``, ``applications``).
    """

    registry_name: str = "preconditioner"
    #: ``apply`` is one fixed linear map (else only flexible Krylov methods may use it)
    is_linear: bool = True
    #: that map is symmetric positive definite (required under CG)
    is_symmetric: bool = True

    system_: LinearSystem | None = None
    setup_count: int = 0
    setup_time_: float = 0.0
    applications: int = 0

    @property
    def name(self) -> str:
        return self.registry_name

    def setup(self, system: LinearSystem) -> Preconditioner:
        """Build the preconditioner for ``system``; returns ``self``."""
        if not isinstance(system, LinearSystem):
            raise TypeError(
                f"{self.name}.setup() takes a pdesolve.LinearSystem, got {type(system).__name__}"
            )
        if self.system_ is not None:
            self._close()
        start = time.perf_counter()
        self._setup(system)
        self.setup_time_ = time.perf_counter() - start
        self.system_ = system
        self.setup_count += 1
        return self

    def is_set_up_for(self, system: LinearSystem) -> bool:
        """Whether this preconditioner was set up for ``system``'s matrix (the same object)."""
        return self.system_ is not None and self.system_.A is system.A

    def check_usable_for(self, system: LinearSystem) -> None:
        """Raise ``InvalidSystemError`` when set up for another system than ``system``."""
        if self.system_ is not None and not self.is_set_up_for(system):
            raise InvalidSystemError(
                f"the {self.name} preconditioner was set up for another system "
                f"({self.system_.size} unknowns); pass a preconditioner that is not set up yet, "
                "or one set up for this system"
            )

    def apply(self, r: np.ndarray) -> np.ndarray:
        """The correction ``z = M(r)`` for the residual ``r``."""
        if self.system_ is None:
            raise RuntimeError(f"the {self.name} preconditioner is used before setup(system)")
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if r.shape[0] != self.system_.size:
            raise InvalidSystemError(
                f"the {self.name} preconditioner was set up for {self.system_.size} unknowns, "
                f"got a vector of {r.shape[0]}"
            )
        z = np.asarray(self._apply(r), dtype=np.float64).reshape(-1)
        if z.shape != r.shape:
            raise ValueError(
                f"the {self.name} preconditioner returned {z.size} values for {r.size} unknowns"
            )
        self.applications += 1
        return z

    def as_linear_operator(self) -> spla.LinearOperator:
        """A scipy ``LinearOperator`` applying the preconditioner (for ``scipy.sparse.linalg``)."""
        if self.system_ is None:
            raise RuntimeError(f"the {self.name} preconditioner is used before setup(system)")
        n = self.system_.size
        return spla.LinearOperator((n, n), matvec=self.apply, dtype=np.float64)

    def configure_petsc(self, pc: Any) -> None:
        """Make PETSc's ``pc`` (of a KSP whose operators are set) apply this preconditioner.

        The default is a python-type PC that calls :meth:`apply` on the whole vector (gathered
        across ranks under MPI). PETSc's own preconditioners override this to configure ``pc``.
        """
        pc.setType("python")
        pc.setPythonContext(PetscShell(self))

    def close(self) -> None:
        """Free what the set-up holds."""
        if self.system_ is not None:
            self._close()
            self.system_ = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for results: name, properties and options."""
        return {"name": self.name, "is_linear": self.is_linear, "is_symmetric": self.is_symmetric}

    # -- hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _setup(self, system: LinearSystem) -> None:
        """All the work that depends on ``system.A``."""

    @abstractmethod
    def _apply(self, r: np.ndarray) -> np.ndarray:
        """One application to the float64 vector ``r``."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Free what ``_setup`` made (default: nothing)."""


class PetscShell:
    """petsc4py python-PC context calling a ``Preconditioner``; keeps the first error raised
    inside PETSc in ``error`` so that the solver can re-raise it with its own traceback."""

    def __init__(self, preconditioner: Preconditioner) -> None:
        self.preconditioner = preconditioner
        self.time = 0.0
        self.error: BaseException | None = None
        self._scatter: Any = None

    def apply(self, pc: Any, x: Any, y: Any) -> None:
        start = time.perf_counter()
        try:
            if x.getComm().getSize() == 1:
                z = self.preconditioner.apply(x.getArray(readonly=True))
                y.setArray(z)
            else:
                from pdesolve.linalg.petsc import gather_vector

                z = self.preconditioner.apply(gather_vector(x))
                lo, hi = y.getOwnershipRange()
                y.setArray(z[lo:hi])
        except Exception as exc:
            if self.error is None:
                self.error = exc
            raise  # PETSc stops the solve; the solver re-raises ``error``
        finally:
            self.time += time.perf_counter() - start


PRECONDITIONERS: Registry[Preconditioner] = Registry("preconditioner")


def get_preconditioner(name: str, /, **options: Any) -> Preconditioner:
    """The registered preconditioner ``name`` configured with ``options`` (not set up yet).

    >>> get_preconditioner("gamg").is_symmetric
    True
    """
    return PRECONDITIONERS.create(name, **options)


def list_preconditioners() -> list[str]:
    """Names of all registered preconditioners."""
    return PRECONDITIONERS.names()


def resolve_preconditioner(pc: str | Preconditioner | None) -> Preconditioner:
    """``pc`` as a ``Preconditioner`` object (a name is looked up in the registry)."""
    if pc is None:
        return get_preconditioner("none")
    if isinstance(pc, Preconditioner):
        return pc
    if isinstance(pc, str):
        return get_preconditioner(pc)
    if isinstance(pc, Mapping) and "name" in pc:  # a Hydra config group {name: ..., **options}
        options = dict(pc)
        return get_preconditioner(options.pop("name"), **options)
    raise TypeError(
        "pc must be a preconditioner name (see pdesolve.list_preconditioners()) or a "
        f"pdesolve.Preconditioner, got {type(pc).__name__}"
    )


def check_pc_for_cg(pc: Preconditioner, solver: str) -> None:
    """Refuse a preconditioner that plain CG cannot use, naming what to use instead."""
    if not pc.is_symmetric:
        raise ValueError(
            f"{solver} is conjugate gradients, which needs a symmetric preconditioner; "
            f"{pc.name!r} is not symmetric (use a symmetric variant, or a flexible/"
            "non-symmetric Krylov method)"
        )

