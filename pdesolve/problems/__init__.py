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


# register the families (import order = registration order)
from pdesolve.problems import (  # noqa: E402, F401
    allen_cahn,
    burgers,
    diffusion,
    diffusion_inverse,
    heat,
    inverse,
    laplace_eigen,
    low_regularity,
    mesh_poisson,
    oscillatory,
    poisson,
    poisson_holes,
    pressure,
    wave,
)

__all__ = ["PROBLEMS", "Problem", "get_problem", "list_problems"]
