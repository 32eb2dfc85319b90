"""``pdesolve.fit``: train a model of a problem's solution (PINNs), with its own result type.

Fit methods are not linear solvers: they run a training budget and report what they measured
(``FitResult``: steps, losses, test error, times). They claim success only for a criterion the
caller stated and they checked (``target_error``, a residual tolerance); otherwise ``status`` is
``NOT_CHECKED``.

>>> import pdesolve
>>> problem = pdesolve.get_problem("poisson", dim=2, n=16)
>>> result = pdesolve.fit(problem, method="pinn", steps=30, batch=64, log_every=10,
...                       progress=False, target_error=0.01)
>>> result.steps, result.success, result.status.value
(30, False, 'not_met')
>>> list_fit_methods()
['pinn']
"""

from __future__ import annotations

from typing import Any

from pdesolve.fitting.base import FitMethod, FitResult, check_fit_problem
from pdesolve.registry import Registry

FIT_METHODS: Registry[FitMethod] = Registry("fit method")


def get_fit_method(name: str, /, **options: Any) -> FitMethod:
    """The registered fit method ``name`` configured with ``options``.

    >>> get_fit_method("pinn", steps=10).options
    {'steps': 10}
    """
    return FIT_METHODS.create(name, **options)


def list_fit_methods() -> list[str]:
    """Names of all registered fit methods."""
    return FIT_METHODS.names()


def fit(problem: Any, method: str = "pinn", **options: Any) -> FitResult:
    """Train ``method`` on ``problem`` (a Problem from ``get_problem``) and return a ``FitResult``.

    ``options`` go to the method, whose own defaults apply to everything not given (e.g. the
    PINN's ``steps``, ``model``, ``optimizer``; see ``configs/fit/<method>.yaml``). The problem's
    kind is checked before any work: a ``LinearSystem`` or an inverse problem is an error.
    """
    check_fit_problem(problem)
    return get_fit_method(method, **options).fit(problem)


# the fit methods, registered by their modules when first asked for (they import torch)
FIT_METHODS.declare("pdesolve.fitting.pinn", "pinn")

__all__ = ["FIT_METHODS", "FitMethod", "FitResult", "fit", "get_fit_method", "list_fit_methods"]
