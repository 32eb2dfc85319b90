"""Domains built from shapes: rectangles, disks and intervals combined by union and difference.

Every shape is a :class:`~pdesolve.problems.domains.Domain` (uniform interior and boundary
sampling, float64 torch points) that also knows

- ``signed_distance(x)``: negative inside, zero on the boundary, positive outside (exact for the
  primitives; ``min``/``max`` of the parts for unions and differences, which keeps the sign and
  the zero set and never overestimates the distance);
- ``distance(x)``: a smooth function that is positive inside, vanishes exactly on the boundary
  and equals the distance to first order there (R-functions for unions and differences), for
  hard Dirichlet constraints ``u = g + distance(x) · N(x)``;
- ``contains(x)`` (numpy in, boolean array out, the boundary counts as inside) and
  ``bounding_box``.

:func:`boundary_lift` extends Dirichlet data ``g`` from the boundary of a rectangle or disk,
minus any number of disks, to a smooth function on the whole shape (transfinite interpolation:
each boundary part's data extended by projection, blended with weights built from the parts'
distance functions); with it, ``u = lift(x) + distance(x) · N(x)`` meets non-zero data exactly.

Interior points are drawn by rejection from the bounding box; boundary points are drawn
uniformly on the primitives' boundaries (by arc length / area) and only the parts that bound the
combined shape are kept, so a square minus a disk gets points on the outer edges and on the
circle, never on the part of the circle outside the square.

>>> import torch
>>> plate = Rectangle((0, 0), (1, 1)) - Disk((0.5, 0.5), 0.2)
>>> gen = torch.Generator().manual_seed(0)
>>> x = plate.sample_interior(500, gen)
>>> bool(plate.contains(x.numpy()).all()), bool(((x - 0.5).norm(dim=1) >= 0.2).all())
(True, True)
>>> b = plate.sample_boundary(200, gen)
>>> float(plate.signed_distance(b).abs().max()) < 1e-12
True
>>> plate.signed_distance(torch.tensor([[0.5, 0.5], [0.5, 0.1]], dtype=torch.float64))
tensor([ 0.2000, -0.1000], dtype=torch.float64)
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from pdesolve.problems.domains import Domain

_BATCH_MIN = 256


def _r_and(a: Tensor, b: Tensor) -> Tensor:
    """R-conjunction (intersection) of two functions positive inside: ``a + b - |(a, b)|``."""
    return a + b - torch.sqrt((a * a + b * b).clamp_min(1e-300))


def _r_or(a: Tensor, b: Tensor) -> Tensor:
    """R-disjunction (union) of two functions positive inside: ``a + b + |(a, b)|``."""
    return a + b + torch.sqrt((a * a + b * b).clamp_min(1e-300))


class Shape(Domain):
    """A closed region of ``R^dim`` with a signed distance; combine with ``|`` and ``-``."""

    dim: int

    # geometry ---------------------------------------------------------------------------------
    @abstractmethod
    def signed_distance(self, x: Tensor) -> Tensor:
        """Signed distance at points ``x`` (N, dim): negative inside, zero on the boundary."""

    @abstractmethod
    def distance(self, x: Tensor) -> Tensor:
        """Smooth, positive inside, exactly zero on the boundary (hard Dirichlet constraints)."""

    @property
    @abstractmethod
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: corners of an axis-aligned box containing the shape."""

    @abstractmethod
    def _raw_boundary(self, n: int, generator: torch.Generator | None) -> Tensor:
        """``n`` points uniform on the disjoint union of the primitives' boundaries."""

    @property
    @abstractmethod
    def _raw_boundary_measure(self) -> float:
        """Total boundary measure of the primitives (points count 1 each in 1D)."""

    @property
    def _scale(self) -> float:
        lo, hi = self.bounding_box
        return float(np.max(hi - lo))

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Whether each row of ``x`` lies in the closed shape."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"points must have shape (N, {self.dim}), got {x.shape}")
        with torch.no_grad():
            sd = self.signed_distance(torch.as_tensor(x)).numpy()
        return sd <= 1e-12 * self._scale

    # sampling -------------------------------------------------------------------------------
    def sample_interior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        lo, hi = (torch.as_tensor(v, dtype=torch.float64) for v in self.bounding_box)
        return self._reject(n, lambda m: lo + (hi - lo) * torch.rand(
            m, self.dim, generator=generator, dtype=torch.float64), inside=True)

    def sample_boundary(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self._reject(n, lambda m: self._raw_boundary(m, generator), inside=False)

    def _reject(self, n: int, draw, inside: bool) -> Tensor:
        n = int(n)
        if n < 0:
            raise ValueError(f"the number of points must be >= 0, got {n}")
        kept: list[Tensor] = []
        count, drawn, batch = 0, 0, max(_BATCH_MIN, n)
        tol = 1e-10 * self._scale
        while count < n:
            x = draw(batch)
            with torch.no_grad():
                sd = self.signed_distance(x)
            keep = sd <= tol if inside else sd.abs() <= tol
            kept.append(x[keep])
            count += int(keep.sum())
            drawn += batch
            if drawn >= 100_000 and count < 1e-3 * drawn:
                what = "interior" if inside else "boundary"
                raise RuntimeError(
                    f"{self!r}: {what} sampling kept {count} of {drawn} candidate points "
                    "(empty or almost empty shape?)"
                )
            if count < n:  # draw enough for the rest at the acceptance rate seen so far
                rate = max(count / drawn, 1e-3)
                batch = min(int(1.2 * (n - count) / rate) + _BATCH_MIN, 1 << 20)
        return torch.cat(kept)[:n]

    def _lift_pieces(self, hole: bool) -> list[tuple[Callable[[Tensor], Tensor], Extension]]:
        """The boundary parts of the shape for :func:`boundary_lift`: ``(phi, extend)`` pairs
        (``phi`` smooth, zero on the part, positive in the domain; ``extend(g, x)`` a smooth
        function equal to ``g`` on the part). ``hole``: the shape is cut out of another one."""
        raise ValueError(f"{self!r}: no smooth boundary lift for this shape "
                         f"({'as a hole' if hole else 'as the outer shape'}); supported: a "
                         "rectangle or disk minus disks")

    # combination ----------------------------------------------------------------------------
    def __or__(self, other: Shape) -> Union:
        return Union(self, other)

    def __sub__(self, other: Shape) -> Difference:
        return Difference(self, other)


class Rectangle(Shape):
    """The axis-aligned box ``[lo_1, hi_1] × … × [lo_d, hi_d]`` (any dimension).

    >>> import torch
    >>> r = Rectangle((0, 0), (2, 1))
    >>> r.signed_distance(torch.tensor([[1.0, 0.5], [3.0, 0.5]], dtype=torch.float64))
    tensor([-0.5000,  1.0000], dtype=torch.float64)
    """

    def __init__(self, lo: Sequence[float], hi: Sequence[float]) -> None:
        self.lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        self.hi = np.atleast_1d(np.asarray(hi, dtype=np.float64))
        if self.lo.ndim != 1 or self.lo.shape != self.hi.shape:
            raise ValueError(f"lo and hi must be 1D of equal length, got {lo!r}, {hi!r}")
        if not np.all(self.hi > self.lo):
            raise ValueError(f"need lo < hi on every axis, got lo={lo!r}, hi={hi!r}")
        self.dim = len(self.lo)

    def __repr__(self) -> str:
        return f"Rectangle({self.lo.tolist()}, {self.hi.tolist()})"

    @property
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo.copy(), self.hi.copy()

    def signed_distance(self, x: Tensor) -> Tensor:
        lo, hi = torch.as_tensor(self.lo), torch.as_tensor(self.hi)
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        q = (x - centre).abs() - half
        outside = q.clamp_min(0).norm(dim=1)
        inside = q.max(dim=1).values.clamp_max(0)
        return outside + inside

    def distance(self, x: Tensor) -> Tensor:
        """``Π_i (x_i - lo_i)(hi_i - x_i) / (hi_i - lo_i)``: a polynomial (smooth everywhere),
        positive inside and zero exactly on the faces."""
        lo, hi = torch.as_tensor(self.lo), torch.as_tensor(self.hi)
        return torch.prod((x - lo) * (hi - x) / (hi - lo), dim=1)

    def _lift_pieces(self, hole: bool) -> list[tuple[Callable[[Tensor], Tensor], Extension]]:
        if hole:
            return super()._lift_pieces(hole)
        return [(self._face_distance, self._coons)]

    def _face_distance(self, x: Tensor) -> Tensor:
        """``distance`` scaled to unit normal slope at the middle of every face: a polynomial,
        so smooth also at the corners (where an exact or R-function distance is not)."""
        length = self.hi - self.lo
        scale = float(np.max([np.prod(np.delete(length, i) / 4) for i in range(self.dim)]))
        return self.distance(x[:, : self.dim]) / scale

    def _coons(self, g: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """The Boolean sum of linear interpolation along every axis (Coons patch): uses ``g``
        on the faces only, equals it there and is as smooth as ``g``; columns of ``x`` beyond
        the box's dimension (time) pass through."""
        lo, hi = torch.as_tensor(self.lo, dtype=x.dtype), torch.as_tensor(self.hi, dtype=x.dtype)
        s = (x[:, : self.dim] - lo) / (hi - lo)
        out = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for subset in range(1, 1 << self.dim):  # P = 1 - Π_a (1 - P_a), expanded
            axes = [a for a in range(self.dim) if subset >> a & 1]
            sign = 1.0 if len(axes) % 2 else -1.0
            for corner in range(1 << len(axes)):
                y, weight = x.clone(), torch.ones_like(out)
                for j, a in enumerate(axes):
                    upper = corner >> j & 1
                    y[:, a] = hi[a] if upper else lo[a]
                    weight = weight * (s[:, a] if upper else 1.0 - s[:, a])
                out = out + sign * weight * g(y).reshape(-1)
        return out

    def _face_areas(self) -> np.ndarray:
        length = self.hi - self.lo
        return np.array([np.prod(np.delete(length, i)) for i in range(self.dim)])

    @property
    def _raw_boundary_measure(self) -> float:
        return float(2 * self._face_areas().sum())

    def _raw_boundary(self, n: int, generator: torch.Generator | None) -> Tensor:
        lo, hi = torch.as_tensor(self.lo), torch.as_tensor(self.hi)
        x = lo + (hi - lo) * torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        weights = torch.as_tensor(np.repeat(self._face_areas(), 2))
        face = torch.multinomial(weights / weights.sum(), n, replacement=True,
                                 generator=generator)  # fmt: skip
        axis, side = face // 2, face % 2
        x[torch.arange(n), axis] = torch.where(side == 1, hi[axis], lo[axis])
        return x


class Interval(Rectangle):
    """The interval ``[a, b]`` (a 1D rectangle); its boundary is the two end points.

    >>> import torch
    >>> Interval(-1, 1).sample_boundary(6, torch.Generator().manual_seed(0)).abs().flatten()
    tensor([1., 1., 1., 1., 1., 1.], dtype=torch.float64)
    """

    def __init__(self, a: float, b: float) -> None:
        super().__init__((a,), (b,))

    def __repr__(self) -> str:
        return f"Interval({self.lo[0]}, {self.hi[0]})"


class Disk(Shape):
    """The closed ball ``|x - center| <= radius`` (a disk in 2D; any dimension).

    >>> import torch
    >>> d = Disk((0.0, 0.0), 1.0)
    >>> x = d.sample_boundary(4, torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(x.norm(dim=1), torch.ones(4, dtype=torch.float64)))
    True
    """

    def __init__(self, center: Sequence[float], radius: float) -> None:
        self.center = np.atleast_1d(np.asarray(center, dtype=np.float64))
        if self.center.ndim != 1:
            raise ValueError(f"center must be a point, got {center!r}")
        if not radius > 0:
            raise ValueError(f"radius must be positive, got {radius!r}")
        self.radius = float(radius)
        self.dim = len(self.center)

    def __repr__(self) -> str:
        return f"Disk({self.center.tolist()}, {self.radius})"

    @property
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.center - self.radius, self.center + self.radius

    def signed_distance(self, x: Tensor) -> Tensor:
        return (x - torch.as_tensor(self.center)).norm(dim=1) - self.radius

    def distance(self, x: Tensor) -> Tensor:
        """``(r² - |x - c|²) / (2r)``: smooth, equal to the distance to first order."""
        r2 = ((x - torch.as_tensor(self.center)) ** 2).sum(dim=1)
        return (self.radius**2 - r2) / (2 * self.radius)

    def _lift_pieces(self, hole: bool) -> list[tuple[Callable[[Tensor], Tensor], Extension]]:
        # exact distances to the sphere (smooth away from the centre): their second
        # derivatives are O(1/r), not O(1/r) times the blend's inverse distances
        c = torch.as_tensor(self.center)
        if hole:
            return [(lambda x: (x - c.to(x.dtype)).norm(dim=1) - self.radius, self._radial)]
        return [(lambda x: self.radius - (x - c.to(x.dtype)).norm(dim=1), self._radial)]

    def _radial(self, g: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        """``g`` at the radial projection onto the sphere (smooth away from the centre)."""
        c = torch.as_tensor(self.center, dtype=x.dtype)
        v = x[:, : self.dim] - c
        y = x.clone()
        y[:, : self.dim] = c + self.radius * v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)
        return g(y).reshape(-1)

    @property
    def _raw_boundary_measure(self) -> float:
        d = self.dim
        return 2 * math.pi ** (d / 2) / math.gamma(d / 2) * self.radius ** (d - 1)

    def _raw_boundary(self, n: int, generator: torch.Generator | None) -> Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-300)
        return torch.as_tensor(self.center) + self.radius * z


class _Combination(Shape):
    def __init__(self, a: Shape, b: Shape) -> None:
        for part in (a, b):
            if not isinstance(part, Shape):
                raise TypeError(f"can only combine shapes, got {type(part).__name__}")
        if a.dim != b.dim:
            raise ValueError(f"cannot combine a {a.dim}D shape with a {b.dim}D shape")
        self.a, self.b = a, b
        self.dim = a.dim

    @property
    def _raw_boundary_measure(self) -> float:
        return self.a._raw_boundary_measure + self.b._raw_boundary_measure

    def _raw_boundary(self, n: int, generator: torch.Generator | None) -> Tensor:
        pa = self.a._raw_boundary_measure / self._raw_boundary_measure
        from_a = int((torch.rand(n, generator=generator) < pa).sum())
        x = torch.cat([self.a._raw_boundary(from_a, generator),
                       self.b._raw_boundary(n - from_a, generator)])  # fmt: skip
        return x[torch.randperm(n, generator=generator)]


class Union(_Combination):
    """Points in ``a`` or in ``b`` (also ``a | b``)."""

    def __repr__(self) -> str:
        return f"({self.a!r} | {self.b!r})"

    @property
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        (la, ha), (lb, hb) = self.a.bounding_box, self.b.bounding_box
        return np.minimum(la, lb), np.maximum(ha, hb)

    def signed_distance(self, x: Tensor) -> Tensor:
        return torch.minimum(self.a.signed_distance(x), self.b.signed_distance(x))

    def distance(self, x: Tensor) -> Tensor:
        return _r_or(self.a.distance(x), self.b.distance(x))

    def _lift_pieces(self, hole: bool) -> list[tuple[Callable[[Tensor], Tensor], Extension]]:
        if not hole:
            return super()._lift_pieces(hole)
        return self.a._lift_pieces(True) + self.b._lift_pieces(True)


class Difference(_Combination):
    """Points in ``a`` that are not inside ``b`` (also ``a - b``); ``b``'s boundary bounds it."""

    def __repr__(self) -> str:
        return f"({self.a!r} - {self.b!r})"

    @property
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.a.bounding_box

    def signed_distance(self, x: Tensor) -> Tensor:
        return torch.maximum(self.a.signed_distance(x), -self.b.signed_distance(x))

    def distance(self, x: Tensor) -> Tensor:
        return _r_and(self.a.distance(x), -self.b.distance(x))

    def _lift_pieces(self, hole: bool) -> list[tuple[Callable[[Tensor], Tensor], Extension]]:
        if hole:
            return super()._lift_pieces(hole)
        return self.a._lift_pieces(False) + self.b._lift_pieces(True)


def has_boundary_lift(shape: object) -> bool:
    """Whether :func:`boundary_lift` supports ``shape``."""
    if not isinstance(shape, Shape):
        return False
    try:
        shape._lift_pieces(False)
    except ValueError:
        return False
    return True


def boundary_lift(shape: Shape, g: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """A smooth extension of the Dirichlet data ``g`` into ``shape``, evaluated at ``x``.

    Transfinite interpolation over the boundary parts ``i`` (the outer rectangle or disk, each
    hole): ``lift = Σ_i w_i E_i g`` with ``w_i = Π_{j≠i} φ_j / Σ_k Π_{j≠k} φ_j``, where ``φ_i``
    is the part's smooth distance and ``E_i g`` extends ``g`` from that part alone (Coons patch
    of the rectangle's faces, radial projection onto a circle). ``g`` is only ever evaluated on
    the boundary, so the lift carries no information from inside the domain. Columns of ``x``
    beyond ``shape.dim`` (time) pass through to ``g``.

    >>> import torch
    >>> plate = Rectangle((0, 0), (1, 1)) - Disk((0.5, 0.5), 0.2)
    >>> g = lambda p: (p[:, :2] - 0.5).norm(dim=1) < 0.3  # 1 on the circle, 0 on the square
    >>> x = torch.tensor([[0.7, 0.5], [0.0, 0.3], [0.8, 0.5]], dtype=torch.float64)
    >>> boundary_lift(plate, lambda p: g(p).double(), x).round(decimals=6).tolist()
    [1.0, 0.0, 0.615385]
    """
    pieces = shape._lift_pieces(False)
    values = [extend(g, x) for _, extend in pieces]
    if len(pieces) == 1:
        return values[0]
    space = x[:, : shape.dim]
    phi = torch.stack([d(space).reshape(-1) for d, _ in pieces], dim=1)
    ones = torch.ones_like(phi[:, :1])
    before = torch.cumprod(torch.cat([ones, phi[:, :-1]], dim=1), dim=1)
    after = torch.cumprod(torch.cat([ones, phi.flip(1)[:, :-1]], dim=1), dim=1).flip(1)
    others = before * after  # Π_{j≠i} φ_j
    weights = others / others.sum(dim=1, keepdim=True).clamp_min(1e-300)
    return (weights * torch.stack(values, dim=1)).sum(dim=1)


Extension = Callable[[Callable[[Tensor], Tensor], Tensor], Tensor]


__all__ = ["Difference", "Disk", "Interval", "Rectangle", "Shape", "Union", "boundary_lift",
           "has_boundary_lift"]
