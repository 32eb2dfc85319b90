"""The shared problem registry: ``get_problem(name, **params)`` and ``list_problems()``."""

from __future__ import annotations

from typing import Any

from pdesolve.problems.base import Problem
from pdesolve.registry import Registry

PROBLEMS: Registry[Problem] = Registry("problem")


def get_problem(name: str, /, **params: Any) -> Problem:
    """Build the registered problem ``name`` with ``params``.

    >>> get_problem("poisson", dim=2, n=8).discretize().shape
    (64, 64)
    """
    return PROBLEMS.create(name, **params)


def list_problems() -> list[str]:
    """Names of all registered problem families."""
    return PROBLEMS.names()


# the families, each registered by its module when first asked for (the modules of the learned
# and time-dependent families import torch; the grid diffusion family does not)
for _module, _names in (
    ("allen_cahn", ("allen_cahn",)),
    ("burgers", ("burgers",)),
    ("diffusion", ("diffusion",)),
    ("diffusion_inverse", ("diffusion_inverse",)),
    ("heat", ("heat",)),
    ("inverse", ("compressed_sensing", "inexact_lasso", "poisson_source")),
    ("laplace_eigen", ("laplace_eigen",)),
    ("low_regularity", ("low_regularity",)),
    ("mesh_poisson", ("mesh_poisson",)),
    ("oscillatory", ("oscillatory",)),
    ("poisson", ("poisson",)),
    ("poisson_holes", ("poisson_holes",)),
    ("pressure", ("pressure_poisson",)),
    ("wave", ("wave",)),
):
    PROBLEMS.declare(f"pdesolve.problems.{_module}", *_names)

__all__ = ["PROBLEMS", "Problem", "get_problem", "list_problems"]
