"""``low_regularity``: ``-∇·(|x| ∇u) = f`` on the unit ball in ``R^d`` (RAF paper §4.2.3).

The coefficient ``|x|`` degenerates at the origin. Exact solution ``u = sin(2π(1 - |x|))`` (zero on
the sphere), so with ``r = |x|``::

    f = 2π d cos(2π(1 - r)) + (2π)² r sin(2π(1 - r)).

(Written with the opposite sign, ``∇·(|x|∇u) = f``, the problem has the same solution.) There is
no linear system (no mesh of a d-ball): ``discretize()`` raises ``NotImplementedError`` and the
problem is for PINNs.

>>> import torch, pdesolve
>>> p = pdesolve.get_problem("low_regularity", dim=3)
>>> x = torch.tensor([[0.5, 0.0, 0.0]], dtype=torch.float64)
>>> float(p.exact_solution(x)), round(float(p.source(x)), 6)  # sin(π) = 0, cos(π) = -1
(1.2246467991473532e-16, -18.849556)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.ball import UnitBall
from pdesolve.problems.base import Problem


@PROBLEMS.register("low_regularity")
class LowRegularityProblem(Problem):
    """``-∇·(|x|∇u) = f`` on the unit ball, ``u = sin(2π(1-|x|))``, ``d = 2, …, 10``."""

    name = "low_regularity"

    def __init__(self, dim: int = 2) -> None:
        if int(dim) != dim or not 2 <= dim <= 10:
            raise ValueError(f"low_regularity needs dim in 2..10, got {dim!r}")
        super().__init__(dim=int(dim))
        self.dim = int(dim)
        self.domain = UnitBall(self.dim)

    def coefficient(self, x: Tensor) -> Tensor:
        return x.norm(dim=1)

    @property
    def has_exact_solution(self) -> bool:
        return True

    def exact_solution(self, x: Tensor) -> Tensor:
        return torch.sin(2 * math.pi * (1 - x.norm(dim=1)))

    def source(self, x: Tensor) -> Tensor:
        r = x.norm(dim=1)
        phase = 2 * math.pi * (1 - r)
        return 2 * math.pi * self.dim * torch.cos(phase) + (2 * math.pi) ** 2 * r * torch.sin(phase)

    def discretize(self, **overrides: Any) -> LinearSystem:
        raise NotImplementedError(
            "low_regularity lives on a d-dimensional ball and has no linear system in pdesolve; "
            "fit it with pdesolve.fit(problem, method='pinn')"
        )
