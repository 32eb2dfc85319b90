"""``poisson``: ``-Δu = f`` on the unit interval/square/cube with Dirichlet data.

Manufactured solutions (``solution=``): ``exponential`` (the default: ``exp(Σ x_i / √d)``,
non-zero boundary data), ``sine`` (``Π sin(mπx_i)``, ``frequency=m``; for ``m = 1`` a grid
eigenvector, so plain CG converges in one iteration), ``multifrequency`` (low and high modes,
``modes=(1, 4, 16)``) and ``polynomial`` (``Π x_i²(1-x_i)``, reproduced exactly by ``fd``).

>>> from pdesolve import get_problem
>>> system = get_problem("poisson", dim=1, n=3).discretize()
>>> (system.A.toarray() / 16).round(2)  # h = 1/4
array([[ 2., -1.,  0.],
       [-1.,  2., -1.],
       [ 0., -1.,  2.]])
"""

from __future__ import annotations

from pdesolve.problems import PROBLEMS
from pdesolve.problems.diffusion import GridDiffusionProblem


@PROBLEMS.register("poisson")
class PoissonProblem(GridDiffusionProblem):
    """``-Δu = f`` on ``[0, 1]^dim``: the ``constant`` diffusion family with ``k = 1``."""

    name = "poisson"

    def __init__(
        self,
        dim: int = 2,
        n: int = 64,
        solution: str = "exponential",
        scheme: str = "fd",
        frequency: int = 1,
        modes: tuple[int, ...] = (1, 4, 16),
    ) -> None:
        if solution is None:
            raise ValueError("poisson needs a manufactured solution name")
        super().__init__(
            dim=dim, n=n, coefficient="constant", solution=solution, scheme=scheme,
            frequency=frequency, modes=modes,
        )  # fmt: skip
        self.params = {"dim": dim, "n": n, "solution": solution, "scheme": scheme,
                       "frequency": frequency, "modes": tuple(modes)}  # fmt: skip
