"""2D incompressible smoke around static obstacles, with the pressure solved by pdesolve.

A client of pdesolve's solver objects: every pressure solver is set up **once** (matrix conversion,
preconditioner hierarchy, network load) and then reused for the pressure projection of every time
step, which only changes the right-hand side.

Physics (unit square, ``n × n`` cells, ``h = 1/n``, MAC grid):

* ``u`` lives on the ``(n + 1) × n`` vertical faces, ``v`` on the ``n × (n + 1)`` horizontal faces,
  the smoke density ``s`` at the cell centres; cells are fluid or solid (static obstacles).
* Each step: semi-Lagrangian advection of ``u``, ``v`` and ``s`` (RK2 back-trace, bilinear
  interpolation) → smoke and upward jet injected at a source near the bottom → buoyancy
  ``v += dt · buoyancy · s`` → no-flow on solid faces → pressure projection.
* Projection: with ``D_i = Σ_axis (u_{i+1/2} - u_{i-1/2})`` (``h ×`` the discrete divergence) and
  the scaled pressure ``p`` (``dt/(ρh) ×`` the physical one), the face update
  ``u_f -= p_right - p_left`` makes the new divergence ``D + A p``, so the projection solves
  ``A p = -D`` with the 5-point operator ``(A p)_i = Σ_{non-solid neighbours j} (p_i - p_j)``.

Boundary conditions (the choice that makes ``A`` symmetric positive definite): left, right and
bottom walls and all obstacles are solid (Neumann: no flux, the face velocity stays 0); the top of
the box is open (Dirichlet ``p = 0`` in a layer of air cells above it), so smoke leaves through the
top and the constant vector is not in the null space of ``A``. Fluid pockets sealed off from the top
by obstacles would bring back a null space, so they are filled in as solid. Solid cells keep
decoupled identity rows (``p = 0`` there), so the unknowns live on the whole ``n × n`` grid, as the
multigrid prolongations and the DCDM network need; ``system.stencil`` holds the ``(n, n, 3, 3)``
stencil, ``system.grid`` the grid of cell centres and ``metadata["fluid_mask"]`` the fluid cells.

Every step, each selected solver solves the *same* pressure system (warm-started from its own
previous pressure); its projection is applied to the same velocity and the divergence left after
it is measured against the divergence before it. The flow then advances with the first solver's
projected velocity. Since ``D_after = -(b - A p)`` on fluid cells, the reported ratio
``||D_after|| / ||D_before||`` is at most the solver's relative residual, so it is ``<= rtol``.

Run it (writes PNG frames, ``smoke.gif``, ``table.md`` and ``steps.json`` into ``--out``)::

    OMP_NUM_THREADS=1 python examples/smoke2d.py --n 255 --steps 100 --out smoke255
    OMP_NUM_THREADS=1 python examples/smoke2d.py --n 511 --steps 20 --out smoke511
    python examples/smoke2d.py --n 63 --steps 10 --solvers icc,gamg --out smoke63
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

import pdesolve
from pdesolve.io import markdown_table
from pdesolve.plotting import save_figure, subplots

FLUID, SOLID = 0, 1


def petsc_cg(pc: Any) -> Callable[[float], Any]:
    """A factory of ``petsc_cg`` solvers with preconditioner ``pc`` (a name, or a factory of a
    ``Preconditioner`` object: every solver gets its own)."""
    return lambda rtol: pdesolve.get_solver("petsc_cg", pc=pc() if callable(pc) else pc, rtol=rtol)


def multigrid(prolongation: str) -> Callable[[], Any]:
    return lambda: pdesolve.get_preconditioner("multigrid", prolongation=prolongation)


#: pressure solvers by key: (description, factory(rtol) -> a pdesolve solver object, not set up)
SOLVERS: dict[str, tuple[str, Callable[[float], Any]]] = {
    "icc": ("petsc_cg + ICC(0)", petsc_cg("icc")),
    "gamg": ("petsc_cg + GAMG", petsc_cg("gamg")),
    "mg_learned": ("petsc_cg + multigrid (learned P)", petsc_cg(multigrid("learned"))),
    "mg_blackbox": ("petsc_cg + multigrid (blackbox P)", petsc_cg(multigrid("blackbox"))),
    "dcdm": ("dcdm (shipped 2D network)", lambda rtol: pdesolve.get_solver("dcdm", rtol=rtol)),
    "cg": ("petsc_cg, no preconditioner", petsc_cg("none")),
}
DEFAULT_SOLVERS = ("icc", "gamg", "mg_learned", "dcdm")
MULTIGRID_SOLVERS = ("mg_learned", "mg_blackbox")


# --- scene -------------------------------------------------------------------------------------
def cell_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the cell centres, arrays ``(n, n)`` indexed ``[i, j]`` (x along axis 0)."""
    c = (np.arange(n) + 0.5) / n
    return np.meshgrid(c, c, indexing="ij")


def obstacle_mask(n: int) -> np.ndarray:
    """Solid cells of the scene: a disc above the source, two bars higher up (``(n, n)`` bool).

    Fluid pockets that cannot reach the open top are filled in as solid (they would make the
    pressure operator singular).

    >>> m = obstacle_mask(31)
    >>> m.shape, bool(m[15, 13]), bool(m[15, 2])
    ((31, 31), True, False)
    """
    x, y = cell_centres(n)
    solid = (x - 0.47) ** 2 + (y - 0.40) ** 2 <= 0.09**2
    solid |= (np.abs(x - 0.70) <= 0.14) & (np.abs(y - 0.64) <= 0.025)
    solid |= (np.abs(x - 0.24) <= 0.10) & (np.abs(y - 0.74) <= 0.025)
    labels, _ = ndi.label(~solid)
    open_labels = np.unique(labels[:, -1][labels[:, -1] > 0])
    return solid | ~np.isin(labels, open_labels)


def source_mask(n: int) -> np.ndarray:
    """Cells of the smoke source: a small disc near the bottom, slightly left of centre."""
    x, y = cell_centres(n)
    return (x - 0.45) ** 2 + (y - 0.10) ** 2 <= max(0.05, 1.5 / n) ** 2


# --- the pressure operator ---------------------------------------------------------------------
def pressure_stencil(solid: np.ndarray) -> np.ndarray:
    """The ``(n, n, 3, 3)`` stencil of the projection operator ``A`` (see the module docstring).

    Entry ``[i, j, a, b]`` couples cell ``(i, j)`` with cell ``(i + a - 1, j + b - 1)``. Walls and
    obstacles are solid, the top of the box is open (``p = 0`` above it); solid cells get an
    identity row.

    >>> s = pressure_stencil(np.zeros((3, 3), dtype=bool))
    >>> s[1, 1].astype(int).tolist(), s[0, 0].astype(int).tolist(), s[1, 2].astype(int).tolist()
    ([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], [[0, 0, 0], [0, 2, -1], [0, -1, 0]], \
[[0, -1, 0], [-1, 4, 0], [0, -1, 0]])
    """
    n = solid.shape[0]
    if solid.shape != (n, n):
        raise ValueError(f"the solid mask must be square, got shape {solid.shape}")
    fluid = ~solid
    # neighbour types with a frame: walls solid, the row above the top open (air)
    ftype = np.full((n + 2, n + 2), SOLID)
    ftype[1:-1, 1:-1] = np.where(solid, SOLID, FLUID)
    air = np.zeros((n + 2, n + 2), dtype=bool)
    air[1:-1, -1] = True
    stencil = np.zeros((n, n, 3, 3))
    diag = np.zeros((n, n))
    for da, db in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        sl = (slice(1 + da, n + 1 + da), slice(1 + db, n + 1 + db))
        neighbour_fluid = ftype[sl] == FLUID
        diag += fluid & (neighbour_fluid | air[sl])
        stencil[:, :, 1 + da, 1 + db] = -(fluid & neighbour_fluid).astype(float)
    stencil[:, :, 1, 1] = np.where(fluid, diag, 1.0)
    return stencil


def stencil_matrix(stencil: np.ndarray) -> sp.csr_matrix:
    """The CSR matrix of an ``(n, n, 3, 3)`` stencil (cell ``(i, j)`` is unknown ``i n + j``).

    >>> A = stencil_matrix(pressure_stencil(np.zeros((4, 4), dtype=bool)))
    >>> A.shape, bool(abs(A - A.T).max() == 0), float(A.sum())
    ((16, 16), True, 4.0)
    """
    n = stencil.shape[0]
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    for a in range(3):
        for b in range(3):
            coef = stencil[:, :, a, b]
            i0, i1 = max(0, 1 - a), min(n, n + 1 - a)
            j0, j1 = max(0, 1 - b), min(n, n + 1 - b)
            block = coef[i0:i1, j0:j1]
            keep = block != 0
            rows.append(index[i0:i1, j0:j1][keep])
            cols.append(index[i0 + a - 1 : i1 + a - 1, j0 + b - 1 : j1 + b - 1][keep])
            vals.append(block[keep])
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n,) * 2
    )
    A.sort_indices()
    return A


def pressure_system(solid: np.ndarray) -> pdesolve.LinearSystem:
    """The projection operator as a ``LinearSystem`` with its stencil and grid (``b = 0``)."""
    n = solid.shape[0]
    stencil = pressure_stencil(solid)
    fluid = ~solid
    return pdesolve.LinearSystem(
        A=stencil_matrix(stencil),
        b=np.zeros(n * n),
        stencil=stencil,
        grid=grid_of(n),
        metadata={"fluid_mask": fluid},
    )


def grid_of(n: int) -> Any:
    """The typed grid of the ``n × n`` cell centres; every cell is an unknown (solid cells have
    identity rows), so the mask is None and the fluid cells are ``metadata["fluid_mask"]``."""
    h = 1.0 / n
    return pdesolve.Grid.uniform((n, n), spacing=h, origin=h / 2)


# --- the flow ----------------------------------------------------------------------------------
@dataclass
class Flow:
    """The MAC-grid state: face velocities ``u`` ``(n+1, n)``, ``v`` ``(n, n+1)``, smoke ``s``."""

    n: int
    solid: np.ndarray
    u: np.ndarray = field(init=False)
    v: np.ndarray = field(init=False)
    s: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.n
        self.u, self.v, self.s = np.zeros((n + 1, n)), np.zeros((n, n + 1)), np.zeros((n, n))
        padded = np.pad(self.solid, 1, constant_values=True)
        padded[1:-1, -1] = False  # the open top
        # a face carries flow only between two non-solid cells
        self.u_open = ~padded[:-1, 1:-1] & ~padded[1:, 1:-1]
        self.v_open = ~padded[1:-1, :-1] & ~padded[1:-1, 1:]

    @property
    def h(self) -> float:
        return 1.0 / self.n

    def enforce_walls(self) -> None:
        """No flow through solid faces, no smoke inside solids."""
        self.u *= self.u_open
        self.v *= self.v_open
        self.s[self.solid] = 0.0

    def divergence(self, u: np.ndarray | None = None, v: np.ndarray | None = None) -> np.ndarray:
        """``D = Σ_axis (u_{i+1/2} - u_{i-1/2})`` per cell (``h ×`` the discrete divergence)."""
        u = self.u if u is None else u
        v = self.v if v is None else v
        return (u[1:] - u[:-1]) + (v[:, 1:] - v[:, :-1])

    def projected(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The face velocities after subtracting the gradient of the scaled pressure ``p``."""
        n = self.n
        p = np.where(self.solid, 0.0, p.reshape(n, n))
        pu = np.zeros((n + 2, n))  # p with zero ghosts (those faces are closed anyway)
        pu[1:-1] = p
        pv = np.zeros((n, n + 2))  # p = 0 in the air above the top
        pv[:, 1:-1] = p
        u = self.u - self.u_open * (pu[1:] - pu[:-1])
        v = self.v - self.v_open * (pv[:, 1:] - pv[:, :-1])
        return u, v

    def velocity_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinearly interpolated velocity at physical points ``(x, y)``."""
        n = self.n
        return (
            sample(self.u, x * n, y * n - 0.5),
            sample(self.v, x * n - 0.5, y * n),
        )

    def advect(self, dt: float) -> None:
        """Semi-Lagrangian advection of ``u``, ``v`` and ``s`` by the current velocity (RK2)."""
        n, h = self.n, self.h
        i_u, j_u = np.meshgrid(np.arange(n + 1), np.arange(n), indexing="ij")
        i_v, j_v = np.meshgrid(np.arange(n), np.arange(n + 1), indexing="ij")
        i_s, j_s = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        xu, yu = self.backtrace(i_u * h, (j_u + 0.5) * h, dt)
        xv, yv = self.backtrace((i_v + 0.5) * h, j_v * h, dt)
        xs, ys = self.backtrace((i_s + 0.5) * h, (j_s + 0.5) * h, dt)
        u = sample(self.u, xu * n, yu * n - 0.5)
        v = sample(self.v, xv * n - 0.5, yv * n)
        self.s = sample(self.s, xs * n - 0.5, ys * n - 0.5)
        self.u, self.v = u, v

    def backtrace(self, x: np.ndarray, y: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Departure points of ``(x, y)`` one step back (midpoint rule), clamped to the box."""
        ux, uy = self.velocity_at(x, y)
        ux, uy = self.velocity_at(
            np.clip(x - 0.5 * dt * ux, 0.0, 1.0), np.clip(y - 0.5 * dt * uy, 0.0, 1.0)
        )
        return np.clip(x - dt * ux, 0.0, 1.0), np.clip(y - dt * uy, 0.0, 1.0)

    def add_forces(self, dt: float, source: np.ndarray, inflow: float, buoyancy: float) -> None:
        """Smoke and an upward jet at the source; buoyancy ``dv = dt · buoyancy · s`` on faces."""
        self.s[source] = 1.0
        jet = np.zeros(self.v.shape, dtype=bool)
        jet[:, 1:] |= source
        jet[:, :-1] |= source
        self.v[jet] = np.maximum(self.v[jet], inflow)
        self.v[:, 1:-1] += dt * buoyancy * 0.5 * (self.s[:, 1:] + self.s[:, :-1])


def sample(field_: np.ndarray, ci: np.ndarray, cj: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a grid array at fractional indices (clamped at the edges)."""
    ci = np.clip(ci, 0.0, field_.shape[0] - 1.0)
    cj = np.clip(cj, 0.0, field_.shape[1] - 1.0)
    return ndi.map_coordinates(field_, [ci, cj], order=1, mode="nearest")


# --- pressure solvers --------------------------------------------------------------------------
@dataclass
class SolverRecord:
    """What one pressure solver did over the run."""

    key: str
    solver: Any
    setup_time: float = 0.0
    solve_times: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    setups: list[int] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    pressure: np.ndarray | None = None


def check_options(n: int, steps: int, solvers: Sequence[str], rtol: float, dt: float) -> None:
    """Raise ``ValueError`` naming the cause for options the simulation cannot run with."""
    if n < 7:
        raise ValueError(f"--n must be at least 7 cells per side, got {n}")
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if not solvers:
        raise ValueError("--solvers is empty; choose from " + ", ".join(SOLVERS))
    unknown = [s for s in solvers if s not in SOLVERS]
    if unknown:
        raise ValueError(f"unknown solver(s) {', '.join(unknown)}; choose from "
                         + ", ".join(SOLVERS))  # fmt: skip
    if len(set(solvers)) != len(solvers):
        raise ValueError(f"--solvers lists a solver twice: {','.join(solvers)}")
    if any(s in MULTIGRID_SOLVERS for s in solvers) and (n + 1) & n:
        raise ValueError(
            f"--n {n}: geometric multigrid coarsens 2:1 and needs n = 2^k - 1 cells per side "
            "(63, 127, 255, 511, ...)"
        )
    if not 0.0 < rtol < 1.0:
        raise ValueError(f"--rtol must lie in (0, 1), got {rtol}")
    if not dt > 0.0:
        raise ValueError(f"--dt must be positive, got {dt}")


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty existing folder unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"--out {str(out)!r} exists and is not empty; choose another folder or pass "
                "--overwrite"
            )
        frames = out / "frames"
        if frames.is_dir():
            shutil.rmtree(frames)  # the frames of an earlier run (fewer steps would leave stale)
    (out / "frames").mkdir(parents=True, exist_ok=True)


# --- output ------------------------------------------------------------------------------------
def render_frame(flow: Flow, step: int, path: Path) -> None:
    """One PNG of the smoke density with the obstacles in grey."""
    fig, ax = subplots(figsize=(4, 4), dpi=100)
    ax.imshow(flow.s.T, origin="lower", extent=(0, 1, 0, 1), cmap="inferno", vmin=0, vmax=1,
              interpolation="bilinear")  # fmt: skip
    solid = np.ma.masked_where(~flow.solid.T, np.ones(flow.solid.T.shape))
    ax.imshow(solid, origin="lower", extent=(0, 1, 0, 1), cmap="gray", vmin=0, vmax=2)
    ax.set_title(f"smoke {flow.n}², step {step}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    save_figure(fig, path, dpi=100)


def write_gif(frames: list[Path], path: Path, ms_per_frame: int = 80) -> None:
    """An animated GIF of the PNG frames (Pillow)."""
    from PIL import Image

    images = [Image.open(f).convert("RGB").quantize(colors=256) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)


def summary_rows(records: list[SolverRecord], rtol: float) -> list[dict[str, Any]]:
    """The table rows: set-up (paid once), solve times, iterations, divergence reduction."""
    rows = []
    for r in records:
        its = np.array(r.iterations)
        rows.append({
            "solver": SOLVERS[r.key][0],
            "setup_s (once)": r.setup_time,
            "setups": max(r.setups) if r.setups else 0,
            "solve_s mean": float(np.mean(r.solve_times)),
            "solve_s total": float(np.sum(r.solve_times)),
            "iterations mean": float(its.mean()),
            "iterations min-max": f"{its.min()}-{its.max()}",
            "max ‖div after‖/‖div before‖": f"{max(r.ratios):.4g}",
            "rtol": rtol,
            "all converged": all(r.converged),
        })  # fmt: skip
    return rows


# --- the simulation ----------------------------------------------------------------------------
@dataclass
class SimulationResult:
    records: list[SolverRecord]
    flow: Flow
    table: str
    frames: list[Path]
    last_rhs: np.ndarray  # the right-hand side of the last pressure solve


def run(
    n: int = 63,
    steps: int = 5,
    solvers: Sequence[str] = DEFAULT_SOLVERS,
    rtol: float = 1e-8,
    out: str | Path | None = None,
    overwrite: bool = False,
    dt: float = 0.02,
    buoyancy: float = 4.0,
    inflow: float = 1.0,
    frame_every: int = 1,
    warm_start: bool = True,
    log: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Run the simulation; write frames, ``smoke.gif``, ``table.md`` and ``steps.json`` to
    ``out`` (nothing is written when ``out`` is None). See the module docstring."""
    solvers = list(solvers)
    check_options(n, steps, solvers, rtol, dt)
    if frame_every < 1:
        raise ValueError(f"--frame-every must be at least 1, got {frame_every}")
    out_path = None if out is None else Path(out)
    if out_path is not None:
        prepare_output(out_path, overwrite)
    log = log or (lambda message: None)

    solid = obstacle_mask(n)
    flow = Flow(n, solid)
    fluid = ~solid.ravel()
    source = source_mask(n) & ~solid
    system = pressure_system(solid)
    records = []
    for key in solvers:
        solver = SOLVERS[key][1](rtol)
        t0 = time.perf_counter()
        solver.setup(system)  # once: conversion, preconditioner, network
        records.append(SolverRecord(key, solver, setup_time=time.perf_counter() - t0))
        log(f"{key}: set up in {records[-1].setup_time:.3f} s")

    frames: list[Path] = []
    try:
        for step in range(1, steps + 1):
            flow.advect(dt)
            flow.add_forces(dt, source, inflow, buoyancy)
            flow.enforce_walls()
            before = flow.divergence()
            b = np.where(fluid, -before.ravel(), 0.0)
            before_norm = float(np.linalg.norm(before.ravel()[fluid]))
            projected = None
            for record in records:
                x0 = record.pressure if warm_start else None
                t0 = time.perf_counter()
                result = record.solver.solve(b, x0=x0)
                record.solve_times.append(time.perf_counter() - t0)
                record.pressure = np.asarray(result.x)
                record.iterations.append(int(result.iterations))
                record.setups.append(int(result.info["setups"]))
                record.converged.append(bool(result.converged))
                u, v = flow.projected(record.pressure)
                after = flow.divergence(u, v).ravel()[fluid]
                record.ratios.append(float(np.linalg.norm(after)) / max(before_norm, 1e-300))
                if projected is None:
                    projected = (u, v)
            flow.u, flow.v = projected
            log(f"step {step}: " + ", ".join(
                f"{r.key} {r.iterations[-1]} its" for r in records
            ))  # fmt: skip
            if out_path is not None and (step % frame_every == 0 or step == steps):
                frames.append(out_path / "frames" / f"frame_{step:04d}.png")
                render_frame(flow, step, frames[-1])
    finally:
        for record in records:
            record.solver.close()

    header = (
        f"Smoke {n}x{n} cells, {steps} steps, dt {dt}, rtol {rtol}, "
        f"{'warm' if warm_start else 'zero'} start; pressure unknowns {n * n} "
        f"({int(fluid.sum())} fluid)\n\n"
    )
    table = header + markdown_table(summary_rows(records, rtol))
    if out_path is not None:
        write_gif(frames, out_path / "smoke.gif")
        (out_path / "table.md").write_text(table)
        steps_json = {
            r.key: {"iterations": r.iterations, "solve_s": r.solve_times, "ratios": r.ratios,
                    "setup_s": r.setup_time, "setups": r.setups}
            for r in records
        }  # fmt: skip
        (out_path / "steps.json").write_text(json.dumps(steps_json, indent=1))
    return SimulationResult(records, flow, table, frames, b)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="2D smoke simulation with obstacles; the pressure projection of every step is "
        "solved by pdesolve solvers that are set up once.",
    )
    parser.add_argument("--n", type=int, default=255,
                        help="pressure cells per side; multigrid needs 2^k - 1 (default 255)")
    parser.add_argument("--steps", type=int, default=100, help="time steps (default 100)")
    parser.add_argument("--solvers", default=",".join(DEFAULT_SOLVERS),
                        help="comma-separated pressure solvers, the first one drives the flow; "
                        "choose from " + ", ".join(f"{k} ({v[0]})" for k, v in SOLVERS.items())
                        + f" (default {','.join(DEFAULT_SOLVERS)})")
    parser.add_argument("--rtol", type=float, default=1e-8,
                        help="relative residual tolerance of every pressure solve (default 1e-8)")
    parser.add_argument("--out", required=True,
                        help="output folder for frames/, smoke.gif, table.md, steps.json; must "
                        "not exist or be empty unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (replaces its frames)")
    parser.add_argument("--dt", type=float, default=0.02, help="time step (default 0.02)")
    parser.add_argument("--buoyancy", type=float, default=4.0,
                        help="upward acceleration per unit smoke density (default 4)")
    parser.add_argument("--inflow", type=float, default=1.0,
                        help="upward jet speed at the source (default 1)")
    parser.add_argument("--frame-every", type=int, default=1,
                        help="write a PNG frame every this many steps (default 1)")
    parser.add_argument("--zero-start", action="store_true",
                        help="start every pressure solve from zero instead of the last pressure")
    args = parser.parse_args(argv)
    try:
        result = run(
            n=args.n, steps=args.steps, solvers=[s.strip() for s in args.solvers.split(",") if s],
            rtol=args.rtol, out=args.out, overwrite=args.overwrite, dt=args.dt,
            buoyancy=args.buoyancy, inflow=args.inflow, frame_every=args.frame_every,
            warm_start=not args.zero_start, log=lambda m: print(m, flush=True),
        )  # fmt: skip
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    print(result.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
