"""``pressure_poisson``: the pressure-projection Poisson system of incompressible flow (MAC grid).

Cells of the box ``[0, 1]^d`` (``n`` per dimension, ``d = 2, 3``) are *fluid*, *solid* (Neumann:
no flux through a fluid-solid face) or *air* (Dirichlet: ``p = 0``), given by a voxel mask. Outside
the box the walls are solid, except the top face (the last axis, high end) when
``boundary="open_top"``, which is air. For a fluid cell ``i`` the row of ``A`` is

    (A p)_i = Σ_{non-solid neighbours j} (p_i - p_j),   with p_j = 0 for air neighbours,

i.e. ``h² (-Δ_h)`` with integer entries (the scaling of the DCDM paper's matrices); the right-hand
side is the negative discrete divergence of a seeded, smooth random velocity field on the faces
(face velocities on solid faces are zero), ``b_i = -Σ_axis (u_{i+1/2} - u_{i-1/2})``.

Non-fluid cells (``nonfluid="identity"``, the default) keep their rows as decoupled identity rows
with ``b_i = 0``, so every vector lives on the whole grid (what the convolutional network needs) and
PETSc's ICC sees no zero pivot; ``nonfluid="remove"`` drops them (``metadata["fluid_mask"]`` maps
back). A fluid component touching no air cell has a constant null vector: ``A`` is then symmetric
positive *semi*-definite, and ``b`` is projected onto the range (its mean over each such component
is removed), so the system is consistent; ``metadata["null_components"]`` counts them. Otherwise
``A`` is symmetric positive definite.

>>> problem = PressurePoisson(dim=2, n=16, geometry="sphere")
>>> system = problem.discretize()
>>> system.shape, system.stencil.shape, system.metadata["null_components"]
((256, 256), (16, 16, 3, 3), 0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi
from torch import Tensor

from pdesolve.discretize.finite_difference import stencil_to_csr
from pdesolve.discretize.grid import StructuredGrid
from pdesolve.linalg.system import LinearSystem
from pdesolve.problems import PROBLEMS
from pdesolve.problems.base import Problem
from pdesolve.problems.domains import UnitBox

FLUID, SOLID, AIR = 0, 1, 2
GEOMETRIES = ("empty", "sphere", "obstacles", "image", "mesh")
BOUNDARIES = ("open_top", "closed")


def cell_centres(n: int, dim: int) -> np.ndarray:
    """Cell-centre coordinates, shape ``(n,)*dim + (dim,)``, cell ``i`` at ``(i + 1/2) / n``."""
    axis = (np.arange(n) + 0.5) / n
    return np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1)


def sphere_mask(n: int, dim: int, centre: Any = None, radius: float = 0.2) -> np.ndarray:
    """Boolean mask of the cells whose centres lie in a ball (a disk in 2D).

    >>> int(sphere_mask(8, 2, radius=0.25).sum())
    12
    """
    centre = np.full(dim, 0.5) if centre is None else np.asarray(centre, dtype=float)
    if centre.shape != (dim,):
        raise ValueError(f"centre must have {dim} coordinates, got {centre.tolist()}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    return np.sum((cell_centres(n, dim) - centre) ** 2, axis=-1) <= radius**2


def random_obstacles(
    n: int, dim: int, count: int = 4, seed: int = 0, radius: tuple[float, float] = (0.06, 0.15)
) -> np.ndarray:
    """Solid mask of ``count`` seeded random balls and boxes, kept off the top fifth of the box.

    >>> m = random_obstacles(32, 2, count=3, seed=1)
    >>> m.shape, bool(m.any()), bool((m == random_obstacles(32, 2, count=3, seed=1)).all())
    ((32, 32), True, True)
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count!r}")
    rng = np.random.default_rng(seed)
    x = cell_centres(n, dim)
    mask = np.zeros((n,) * dim, dtype=bool)
    for _ in range(count):
        r = rng.uniform(*radius)
        c = rng.uniform(0.15, 0.85, size=dim)
        c[-1] = rng.uniform(0.15, 0.7)
        if rng.random() < 0.5:
            mask |= np.sum((x - c) ** 2, axis=-1) <= r**2
        else:
            half = r * rng.uniform(0.6, 1.2, size=dim)
            mask |= np.all(np.abs(x - c) <= half, axis=-1)
    return mask


def image_mask(path: str | Path, n: int, threshold: float = 0.5) -> np.ndarray:
    """Solid mask from a 2D image: dark pixels (gray value < ``threshold``) are solid.

    The image is resampled to ``n × n`` cells by nearest neighbour; image row 0 (the top) becomes
    the high end of the second axis, so the picture appears upright with y pointing up.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask image {str(path)!r} does not exist")
    gray = np.asarray(Image.open(path).convert("L"), dtype=float) / 255.0
    rows = np.minimum((np.arange(n) + 0.5) * gray.shape[0] / n, gray.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(n) + 0.5) * gray.shape[1] / n, gray.shape[1] - 1).astype(int)
    pic = gray[np.ix_(rows, cols)]  # (y from top, x)
    return (pic[::-1, :] < threshold).T  # index [x, y] with y upward


def mesh_mask(path: str | Path, n: int, dim: int = 3) -> np.ndarray:
    """Solid mask of a closed triangle surface mesh (any meshio file) voxelised by ray parity.

    The mesh is scaled into the box (kept in ``[0.15, 0.85]^3``, aspect preserved); a cell is solid
    when a ray from its centre along +z crosses the surface an odd number of times.
    """
    import meshio

    if dim != 3:
        raise ValueError("a surface mesh voxelises into a 3D mask; use dim=3")
    mesh = meshio.read(str(path))
    tris = [c.data for c in mesh.cells if c.type == "triangle"]
    if not tris:
        raise ValueError(f"mesh {str(path)!r} has no triangle cells to voxelise")
    pts = np.asarray(mesh.points, dtype=float)[:, :3]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pts = 0.15 + 0.7 * (pts - lo) / max(float(np.max(hi - lo)), 1e-300)
    tri = pts[np.concatenate(tris)]
    x = cell_centres(n, 3).reshape(-1, 3)
    x[:, :2] += 1e-7 * np.array([np.sqrt(2.0), np.sqrt(3.0)])  # rays miss shared triangle edges
    crossings = np.zeros(len(x), dtype=np.int64)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    for t in range(len(tri)):  # 2D point-in-triangle in the xy-plane, then the z of the hit
        (ax, ay, az), (bx, by, bz), (cx, cy, cz) = a[t], b[t], c[t]
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(det) < 1e-14:
            continue
        l1 = ((by - cy) * (x[:, 0] - cx) + (cx - bx) * (x[:, 1] - cy)) / det
        l2 = ((cy - ay) * (x[:, 0] - cx) + (ax - cx) * (x[:, 1] - cy)) / det
        l3 = 1.0 - l1 - l2
        inside = (l1 > 0) & (l2 > 0) & (l3 > 0)
        z = l1 * az + l2 * bz + l3 * cz
        crossings += inside & (z > x[:, 2])
    return (crossings % 2 == 1).reshape((n,) * 3)


def pressure_stencil(cells: np.ndarray, boundary: str = "open_top") -> np.ndarray:
    """Stencil array (``cells.shape + (3,)*d``) of the MAC pressure operator for a cell-type array.

    Non-fluid cells get an identity row. ``cells`` holds ``FLUID``, ``SOLID`` or ``AIR`` per cell.

    >>> s = pressure_stencil(np.zeros((3, 3), dtype=int), boundary="closed")
    >>> s[1, 1].astype(int).tolist(), s[0, 0].astype(int).tolist()
    ([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], [[0, 0, 0], [0, 2, -1], [0, -1, 0]])
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; known: {', '.join(BOUNDARIES)}")
    dim = cells.ndim
    padded = np.pad(cells, 1, constant_values=SOLID)
    if boundary == "open_top":
        top = [slice(1, -1)] * dim
        top[-1] = slice(-1, None)
        padded[tuple(top)] = AIR
    fluid = cells == FLUID
    stencil = np.zeros(cells.shape + (3,) * dim)
    centre = (1,) * dim
    diag = np.zeros(cells.shape)
    for axis in range(dim):
        for step in (-1, 1):
            sl = [slice(1, -1)] * dim
            sl[axis] = slice(1 + step, cells.shape[axis] + 1 + step)
            neighbour = padded[tuple(sl)]
            diag += fluid & (neighbour != SOLID)
            off = [1] * dim
            off[axis] = 1 + step
            stencil[(...,) + tuple(off)] = -(fluid & (neighbour == FLUID)).astype(float)
    stencil[(...,) + centre] = np.where(fluid, diag, 1.0)
    return stencil


@PROBLEMS.register("pressure_poisson")
class PressurePoisson(Problem):
    """The MAC-grid pressure Poisson system with solid and air cells (see the module docstring).

    Parameters
    ----------
    dim : 2 or 3
    n : cells per dimension
    geometry : "empty", "sphere", "obstacles", "image" (2D) or "mesh" (3D, meshio surface)
    boundary : "open_top" (top face of the box is air, the system is SPD) or "closed" (all walls
        solid; singular but consistent unless ``air_layers > 0`` or air cells touch the fluid)
    radius, centre : the sphere (fractions of the box)
    obstacles : number of random obstacles (``geometry="obstacles"``), placed with ``seed``
    path : image or mesh file for ``geometry="image"`` / ``"mesh"``
    air_layers : the top ``air_layers`` cell layers are air (a free surface)
    nonfluid : "identity" (keep decoupled identity rows) or "remove" (drop non-fluid unknowns)
    modes : Fourier modes per axis of the random velocity field behind ``b``
    seed : seeds the obstacles and the velocity field
    """

    name = "pressure_poisson"

    def __init__(
        self,
        dim: int = 2,
        n: int = 64,
        geometry: str = "empty",
        boundary: str = "open_top",
        radius: float = 0.2,
        centre: Any = None,
        obstacles: int = 4,
        path: str | None = None,
        air_layers: int = 0,
        nonfluid: str = "identity",
        modes: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dim=dim, n=n, geometry=geometry, boundary=boundary, radius=radius, centre=centre,
            obstacles=obstacles, path=path, air_layers=air_layers, nonfluid=nonfluid,
            modes=modes, seed=seed,
        )  # fmt: skip
        if dim not in (2, 3):
            raise ValueError(f"pressure_poisson needs dim 2 or 3, got {dim!r}")
        if int(n) != n or n < 2:
            raise ValueError(f"n (cells per dimension) must be an integer >= 2, got {n!r}")
        if geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {geometry!r}; known: {', '.join(GEOMETRIES)}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {boundary!r}; known: {', '.join(BOUNDARIES)}")
        if nonfluid not in ("identity", "remove"):
            raise ValueError(f"nonfluid must be 'identity' or 'remove', got {nonfluid!r}")
        if geometry in ("image", "mesh") and not path:
            raise ValueError(f"geometry={geometry!r} needs path= (an image or mesh file)")
        if geometry == "image" and dim != 2:
            raise ValueError("geometry='image' is 2D; use dim=2")
        if not 0 <= air_layers < n:
            raise ValueError(f"air_layers must be in [0, n), got {air_layers!r}")
        self.dim, self.n = int(dim), int(n)
        self.domain = UnitBox(self.dim)

    def source(self, x: Tensor) -> Tensor:
        raise NotImplementedError(
            "pressure_poisson is defined by its discrete MAC system only (b is a discrete "
            "divergence); use discretize()"
        )

    def cell_types(self) -> np.ndarray:
        """The ``FLUID``/``SOLID``/``AIR`` array of the cells, shape ``(n,)*dim``."""
        p, n, dim = self.params, self.n, self.dim
        if p["geometry"] == "empty":
            solid = np.zeros((n,) * dim, dtype=bool)
        elif p["geometry"] == "sphere":
            solid = sphere_mask(n, dim, p["centre"], p["radius"])
        elif p["geometry"] == "obstacles":
            solid = random_obstacles(n, dim, p["obstacles"], p["seed"])
        elif p["geometry"] == "image":
            solid = image_mask(p["path"], n)
        else:
            solid = mesh_mask(p["path"], n, dim)
        cells = np.where(solid, SOLID, FLUID)
        if p["air_layers"]:
            top = [slice(None)] * dim
            top[-1] = slice(n - p["air_layers"], None)
            cells[tuple(top)] = AIR
        return cells

    def velocity_divergence(self, cells: np.ndarray) -> np.ndarray:
        """``-Σ (u_{i+1/2} - u_{i-1/2})`` of a seeded smooth face velocity field (0 off fluid)."""
        rng = np.random.default_rng(self.params["seed"] + 1_000_003)
        dim, n = self.dim, self.n
        fluid = cells == FLUID
        padded = np.pad(cells, 1, constant_values=SOLID)
        if self.params["boundary"] == "open_top":
            top = [slice(1, -1)] * dim
            top[-1] = slice(-1, None)
            padded[tuple(top)] = AIR
        div = np.zeros(cells.shape)
        for axis in range(dim):
            shape = [n] * dim
            shape[axis] = n + 1  # faces along this axis
            coords = np.meshgrid(
                *[
                    (np.arange(s) + (0.0 if a == axis else 0.5)) / n
                    for a, s in enumerate(shape)
                ],
                indexing="ij",
            )
            u = np.zeros(shape)
            for _ in range(self.params["modes"]):
                k = rng.integers(1, 5, size=dim)
                phase = rng.uniform(0, 2 * np.pi, size=dim)
                term = rng.normal()
                for a in range(dim):
                    term = term * np.cos(np.pi * k[a] * coords[a] + phase[a])
                u += term
            lo = [slice(None)] * dim
            hi = [slice(None)] * dim
            lo[axis], hi[axis] = slice(0, -1), slice(1, None)
            left = padded[tuple(_shift(dim, axis, 0, n))]
            right = padded[tuple(_shift(dim, axis, 1, n))]
            # a face carries flow only between two non-solid cells
            u = u * ((left != SOLID) & (right != SOLID))
            div += u[tuple(hi)] - u[tuple(lo)]
        return np.where(fluid, -div, 0.0)

    def discretize(self, **overrides: Any) -> LinearSystem:
        if overrides:
            return type(self)(**{**self.params, **overrides}).discretize()
        cells = self.cell_types()
        fluid = cells == FLUID
        if not fluid.any():
            raise ValueError("the mask leaves no fluid cell: the pressure system would be empty")
        stencil = pressure_stencil(cells, self.params["boundary"])
        A = stencil_to_csr(stencil)
        b = self.velocity_divergence(cells)
        b, null_components = _project_onto_range(cells, self.params["boundary"], b)
        metadata = {
            "fluid_mask": fluid,
            "cell_types": cells,
            "null_components": null_components,
            "nonfluid": self.params["nonfluid"],
            "grid_shape": cells.shape,
            "spd": null_components == 0,
        }
        geometry = StructuredGrid(dim=self.dim, n=self.n)
        if self.params["nonfluid"] == "remove":
            idx = np.flatnonzero(fluid.ravel())
            return LinearSystem(
                A=A[idx][:, idx], b=b.ravel()[idx], geometry=None, stencil=None,
                metadata=metadata, grid=geometry.as_grid(mask=fluid),
            )  # fmt: skip
        return LinearSystem(
            A=A, b=b.ravel(), geometry=geometry, stencil=stencil, metadata=metadata,
            grid=geometry.as_grid(),
        )


def _shift(dim: int, axis: int, which: int, n: int) -> list[slice]:
    """Slices of the padded cell array giving, for every face along ``axis``, its left (0) or
    right (1) cell; faces are indexed 0..n along ``axis``."""
    sl = [slice(1, -1)] * dim
    sl[axis] = slice(which, n + 1 + which)
    return sl


def _project_onto_range(cells: np.ndarray, boundary: str, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Remove the mean of ``b`` over every fluid component that touches no air (its null space)."""
    dim = cells.ndim
    fluid = cells == FLUID
    labels, count = ndi.label(fluid)
    padded = np.pad(cells, 1, constant_values=SOLID)
    if boundary == "open_top":
        top = [slice(1, -1)] * dim
        top[-1] = slice(-1, None)
        padded[tuple(top)] = AIR
    touches_air = np.zeros(cells.shape, dtype=bool)
    for axis in range(dim):
        for step in (-1, 1):
            sl = [slice(1, -1)] * dim
            sl[axis] = slice(1 + step, cells.shape[axis] + 1 + step)
            touches_air |= padded[tuple(sl)] == AIR
    b = b.copy()
    null = 0
    for label in range(1, count + 1):
        comp = labels == label
        if not (touches_air & comp).any():
            b[comp] -= b[comp].mean()
            null += 1
    return b, null
