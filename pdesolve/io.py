"""Reading meshes and writing results: meshio for meshes and VTU, atomic JSON writes.

Nothing here overwrites an existing file unless asked to (``overwrite=True``); every write goes to a
temporary file in the same folder first and is then renamed into place.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # meshio is imported where it is used: pdesolve imports without it
    import meshio


class MeshError(ValueError):
    """A mesh that cannot be used (missing file, unreadable, no cells of the needed type)."""


def read_mesh(path: str | os.PathLike) -> meshio.Mesh:
    """Read a mesh with meshio, with errors that name the file and the cause."""
    import meshio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file {str(path)!r} does not exist")
    try:
        mesh = meshio.read(path)
    except (Exception, SystemExit) as exc:  # meshio raises many types (and exits) on bad files
        raise MeshError(f"could not read mesh {str(path)!r}: {exc}") from exc
    if not mesh.cells or all(len(block.data) == 0 for block in mesh.cells):
        raise MeshError(f"mesh {str(path)!r} has no cells")
    return mesh


def named_cell_blocks(mesh: meshio.Mesh, name: str) -> list[tuple[str, np.ndarray]]:
    """The cells of a named set: meshio ``cell_sets``, or a gmsh physical group of that name.

    Returns ``(cell_type, connectivity)`` pairs; raises ``MeshError`` listing the known names.
    """
    if name in mesh.cell_sets:
        return [
            (block.type, np.asarray(block.data)[np.asarray(ids, dtype=int)])
            for block, ids in zip(mesh.cells, mesh.cell_sets[name], strict=True)
            if ids is not None and len(ids)
        ]
    physical = mesh.cell_data.get("gmsh:physical")
    if name in mesh.field_data and physical is not None:
        tag = int(np.asarray(mesh.field_data[name]).ravel()[0])
        return [
            (block.type, np.asarray(block.data)[np.asarray(tags) == tag])
            for block, tags in zip(mesh.cells, physical, strict=True)
            if np.any(np.asarray(tags) == tag)
        ]
    known = sorted(set(mesh.cell_sets) | set(mesh.field_data))
    raise MeshError(
        f"the mesh has no cell set {name!r}; its named sets: {', '.join(known) or 'none'}"
    )


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None],
                 overwrite: bool = False) -> Path:
    """``write(tmp)`` into a temporary file beside ``path``, then renamed into place; refuses
    an existing ``path`` unless ``overwrite``."""
    return _atomic_write(Path(path), write, overwrite)


def _atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any, overwrite: bool = False) -> Path:
    """Write ``data`` as indented JSON (numpy values converted), atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")

    return _atomic_write(Path(path), write, overwrite)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def markdown_table(rows: list[dict[str, Any]], floatfmt: str = ".3g") -> str:
    """A GitHub-flavoured markdown table of ``rows`` (dicts with the same keys)."""
    if not rows:
        return ""
    keys = list(rows[0])

    def fmt(v: Any) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(
    stem: str | os.PathLike, rows: list[dict[str, Any]], overwrite: bool = True
) -> None:
    """Write ``rows`` as ``<stem>.csv`` and ``<stem>.md`` (results tables of experiments)."""
    import csv
    import io as _io

    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    stem = Path(stem)
    _atomic_write(stem.with_suffix(".csv"), lambda t: t.write_text(buffer.getvalue()), overwrite)
    _atomic_write(stem.with_suffix(".md"), lambda t: t.write_text(markdown_table(rows)), overwrite)


def write_solution_vtu(
    path: str | os.PathLike,
    system: Any,
    x: np.ndarray,
    overwrite: bool = False,
    extra_point_data: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write the solution ``x`` of ``system`` on its grid or mesh (boundary values included).

    The file has point data ``u`` (and ``exact`` and ``error`` when the exact solution is known).
    """
    geometry = system.geometry
    if geometry is None:
        raise ValueError("the system has no grid or mesh to write a VTU file on")
    boundary = system.metadata.get("boundary_full")
    if hasattr(geometry, "full_points"):  # StructuredGrid
        points = geometry.full_points
        u = geometry.embed(x, boundary)
        cell_type, cells = geometry.cells()
        if points.shape[1] < 3:
            points = np.hstack([points, np.zeros((len(points), 3 - points.shape[1]))])
        exact = geometry.embed(system.exact, boundary) if system.exact is not None else None
    else:  # MeshGeometry
        points, cell_type, cells = geometry.points, geometry.cell_type, geometry.cells
        u = geometry.embed(x, boundary)
        exact = geometry.embed(system.exact, boundary) if system.exact is not None else None
    point_data = {"u": u}
    if exact is not None:
        point_data["exact"] = exact
        point_data["error"] = u - exact
    point_data.update(extra_point_data or {})
    import meshio

    mesh = meshio.Mesh(points, [(cell_type, cells)], point_data=point_data)

    def write(tmp: Path) -> None:
        meshio.write(tmp, mesh, file_format="vtu")

    return _atomic_write(Path(path), write, overwrite)


def versions() -> dict[str, str]:
    """Versions of pdesolve and the libraries it runs on (those installed), for result records."""
    import scipy
    import torch

    import pdesolve

    out = {
        "pdesolve": pdesolve.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }
    try:
        import meshio

        out["meshio"] = meshio.__version__
    except ImportError:
        pass
    try:
        import petsc4py

        from pdesolve.linalg.petsc import petsc

        out["petsc4py"] = petsc4py.__version__
        out["petsc"] = ".".join(str(v) for v in petsc().Sys.getVersion())
    except ImportError:
        pass
    return out
