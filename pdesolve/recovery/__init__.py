"""``pdesolve.recover``: reconstruct the sparse unknown of an inverse problem ``y = A x + e``.

Recovery methods (FIRENET, ISTA, FISTA, Chambolle–Pock) are not linear solvers: they minimise a
sparsity-regularised objective and return a ``RecoveryResult`` that names the quantity their
stopping test used (``stopping_quantity``: ``relative_change``, ``relative_gap``, or None for
FIRENET's fixed depth), its history and the reconstruction error where the truth is known.

>>> import pdesolve
>>> problem = pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom",
...                                sparsity=60, rate=0.5, lam=0.03)
>>> result = pdesolve.recover(problem, method="ista", maxiter=50)
>>> result.stopping_quantity, result.status.value, result.iterations
('relative_change', 'not_met', 50)
>>> list_recovery_methods()
['chambolle_pock', 'firenet', 'fista', 'ista']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pdesolve.registry import Registry

if TYPE_CHECKING:
    from pdesolve.recovery.base import RecoveryMethod, RecoveryResult

#: what ``pdesolve.recovery.base`` (torch) provides here, imported on first access
_FROM_BASE = ("RecoveryMethod", "RecoveryResult", "RecoveryRun", "check_recovery_problem")


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from pdesolve.recovery import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

RECOVERY_METHODS: Registry[RecoveryMethod] = Registry("recovery method")


def get_recovery_method(name: str, /, **options: Any) -> RecoveryMethod:
    """The registered recovery method ``name`` configured with ``options``.

    >>> get_recovery_method("chambolle_pock", gap_tol=1e-6).tolerance
    1e-06
    """
    return RECOVERY_METHODS.create(name, **options)


def list_recovery_methods() -> list[str]:
    """Names of all registered recovery methods."""
    return RECOVERY_METHODS.names()


def recover(
    problem: Any, method: str = "firenet", *, x0: np.ndarray | None = None, **options: Any
) -> RecoveryResult:
    """Recover the unknown of ``problem`` (an inverse problem from ``get_problem``) with
    ``method``, starting from ``x0`` (zero by default).

    ``options`` go to the method, whose own defaults apply to everything not given (see
    ``configs/recover/<method>.yaml``). The problem's kind is checked before any work: a
    ``LinearSystem`` or a PDE problem is an error.
    """
    from pdesolve.recovery.base import check_recovery_problem

    check_recovery_problem(problem)
    return get_recovery_method(method, **options).recover(problem, x0=x0)


# the recovery methods, registered by their modules when first asked for (they import torch)
RECOVERY_METHODS.declare("pdesolve.recovery.firenet", "firenet")
RECOVERY_METHODS.declare("pdesolve.recovery.ista", "fista", "ista")
RECOVERY_METHODS.declare("pdesolve.recovery.primal_dual", "chambolle_pock")

__all__ = [
    "RECOVERY_METHODS",
    "RecoveryMethod",
    "RecoveryResult",
    "RecoveryRun",
    "get_recovery_method",
    "list_recovery_methods",
    "recover",
]
