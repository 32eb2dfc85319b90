"""Collocation points for PINNs: fresh random batches or one fixed, seeded set.

``method``: ``random`` (a fresh uniform batch every step from the domain's own sampler), or a fixed
set drawn once: ``uniform`` (the domain's sampler), ``lhs`` (Latin hypercube), ``sobol``,
``halton`` (``scipy.stats.qmc``, scrambled, seeded). Quasi-random sets need a domain that maps
the unit cube onto itself: the unit box (identity) or one with ``from_unit_cube`` (the ball).

>>> import torch
>>> from pdesolve.problems.domains import UnitBox
>>> s = CollocationSampler(UnitBox(2), 8, "sobol", torch.Generator().manual_seed(0))
>>> a, b = s.interior(), s.interior()
>>> bool(torch.equal(a, b)), tuple(a.shape)  # a fixed set
(True, (8, 2))
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

from pdesolve.problems.domains import Domain, UnitBox

METHODS = ("random", "uniform", "lhs", "sobol", "halton")

__all__ = ["METHODS", "CollocationSampler", "quasi_random"]


def quasi_random(domain: Domain, n: int, method: str, seed: int) -> Tensor:
    """``n`` points of a scrambled ``lhs``/``sobol``/``halton`` set in ``domain`` (float64)."""
    if isinstance(domain, UnitBox):
        dim = domain.dim
    elif hasattr(domain, "from_unit_cube"):
        dim = domain.cube_dim
    else:
        raise ValueError(
            f"{method!r} collocation needs a unit box or ball domain, not {type(domain).__name__}; "
            "use 'random' or 'uniform'"
        )
    engines = {"lhs": qmc.LatinHypercube, "sobol": qmc.Sobol, "halton": qmc.Halton}
    engine = engines[method](d=dim, scramble=True, seed=np.random.default_rng(seed))
    if method == "sobol":
        u = engine.random_base2(int(np.ceil(np.log2(max(n, 2)))))[:n]
    else:
        u = engine.random(n)
    if isinstance(domain, UnitBox):
        return torch.as_tensor(u, dtype=torch.float64)
    return domain.from_unit_cube(u)


class CollocationSampler:
    """Interior (and boundary) collocation points for one training run.

    The fixed sets are drawn at construction; ``random`` draws from ``generator`` on every call,
    so the generator's state (saved in checkpoints) determines the whole sequence.
    """

    def __init__(
        self,
        domain: Domain,
        n_interior: int,
        method: str = "random",
        generator: torch.Generator | None = None,
        n_boundary: int = 0,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown collocation method {method!r}; known: {', '.join(METHODS)}")
        if n_interior < 1:
            raise ValueError(f"need at least one interior point, got {n_interior}")
        self.domain, self.method, self.generator = domain, method, generator
        self.n_interior, self.n_boundary = int(n_interior), int(n_boundary)
        self._interior: Tensor | None = None
        self._boundary: Tensor | None = None
        if method != "random":
            if method == "uniform":
                self._interior = domain.sample_interior(self.n_interior, generator)
            else:
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
                self._interior = quasi_random(domain, self.n_interior, method, seed)
            if self.n_boundary:
                self._boundary = domain.sample_boundary(self.n_boundary, generator)

    def interior(self) -> Tensor:
        if self._interior is not None:
            return self._interior
        return self.domain.sample_interior(self.n_interior, self.generator)

    def boundary(self) -> Tensor:
        if self._boundary is not None:
            return self._boundary
        return self.domain.sample_boundary(self.n_boundary, self.generator)
