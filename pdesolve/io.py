"""Reading meshes and writing results: meshio for meshes and VTU, atomic JSON writes.

Nothing here overwrites an existing file unless asked to (``overwrite=True``); every write goes to a
temporary file in the same folder first and is then renamed into place, with the permissions the
umask gives a new file. :func:`write_run_files` writes a run's files under fresh numbered names
when an earlier run's are in the folder.
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


def file_mode() -> int:
    """The permission bits a new file gets under this process's umask (``0o666 & ~umask``).

    >>> 0 < file_mode() <= 0o666
    True
    """
    try:  # Linux: read the umask without changing it (os.umask is process-wide, not thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def move_into_place(
    tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Rename the finished temporary file ``tmp`` to ``path``, with the mode of a newly created
    file (the umask honoured, not ``mkstemp``'s 0600). Without ``overwrite`` an existing ``path``
    is never replaced, even by a concurrent writer: ``FileExistsError``, ``tmp`` left in place."""
    tmp, path = Path(tmp), Path(path)
    os.chmod(tmp, file_mode())
    if not overwrite:  # reserve the name atomically; only then move the content over it
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode()))
    try:
        os.replace(tmp, path)
    except BaseException:
        if not overwrite:
            path.unlink(missing_ok=True)
        raise
    return path


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
        move_into_place(tmp, path, overwrite)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written into ``folder`` (creating it where needed), or ``None``.

    Probed with a temporary folder in its nearest existing ancestor (removed again), so that it
    also holds where permissions are not what ``os.access`` says; nothing is left behind.

    >>> import tempfile
    >>> unwritable_reason(Path(tempfile.mkdtemp()) / "new" / "folder") is None
    True
    """
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pdesolve-check-", dir=existing))
    except OSError as exc:
        return f"{exc.strerror or exc} in {existing}"
    return None


def numbered(name: str, k: int) -> str:
    """``name`` for the ``k``-th run into one folder: ``result.json``, ``result-2.json``, ...

    >>> numbered("result.json", 1), numbered("result.json", 3), numbered("table.csv", 2)
    ('result.json', 'result-3.json', 'table-2.csv')
    """
    if k == 1:
        return name
    stem, dot, ext = name.partition(".")
    return f"{stem}-{k}{dot}{ext}"


def run_number(written: str, name: str) -> int:
    """The ``k`` for which ``numbered(name, k)`` is ``written`` (1 for ``name`` itself).

    >>> run_number("result.json", "result.json"), run_number("result-3.json", "result.json")
    (1, 3)
    """
    stem, dot, ext = name.partition(".")
    if written == name:
        return 1
    middle = written[len(stem) + 1: len(written) - len(dot + ext)]
    if not (written.startswith(stem + "-") and written.endswith(dot + ext) and middle.isdigit()):
        raise ValueError(f"{written!r} is not a numbered {name!r}")
    return int(middle)


def write_run_files(
    folder: str | os.PathLike, writers: dict[str, Callable[[Path], None]]
) -> dict[str, Path]:
    """Write one run's files into ``folder`` without touching an earlier run's.

    ``writers`` maps each file name (the first one is the run's result, e.g. ``result.json``) to
    a function writing that file's content to a given path. The names are used as given when
    none of them exists in ``folder``; otherwise the first free number ``k`` gives
    ``result-k.json``, ``config-k.yaml``, ..., so that a finished result is never lost and the
    files of one run keep one number, also for concurrent runs into one folder (the result's name
    is reserved atomically). A note on stderr says where the files went when they were numbered.
    Returns ``{given name: written path}``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> text = lambda s: (lambda p: p.write_text(s))
    >>> sorted(p.name for p in write_run_files(folder, {"result.json": text("1")}).values())
    ['result.json']
    >>> paths = write_run_files(folder, {"result.json": text("2"), "config.yaml": text("b")})
    >>> sorted(p.name for p in paths.values()), (folder / "result.json").read_text()
    (['config-2.yaml', 'result-2.json'], '1')
    """
    import itertools
    import sys

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    first = next(iter(writers))
    for k in itertools.count(1):
        names = {name: folder / numbered(name, k) for name in writers}
        if any(path.exists() for path in names.values()):
            continue
        try:  # reserve the result's name; a concurrent run that got there first takes it
            os.close(os.open(names[first], os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode()))
        except FileExistsError:
            continue
        break
    for name, write in writers.items():
        path = names[name]
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=path.suffix)
        os.close(fd)
        try:
            write(Path(tmp))
            move_into_place(tmp, path, overwrite=name == first)  # over its own reservation
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            if name == first and path.stat().st_size == 0:
                path.unlink(missing_ok=True)
            raise
    if k > 1:
        print(f"pdesolve: {folder / first} exists (an earlier run's); this run's files are "
              f"{', '.join(p.name for p in names.values())} in {folder}", file=sys.stderr)
    return names


def json_text(data: Any) -> str:
    """``data`` as indented JSON text (numpy values, paths, tuples and sets converted)."""
    return json.dumps(data, indent=2, default=_jsonable) + "\n"


def write_json(path: str | os.PathLike, data: Any, overwrite: bool = False) -> Path:
    """Write ``data`` as indented JSON (numpy values converted), atomically."""

    return _atomic_write(Path(path), lambda tmp: tmp.write_text(json_text(data)), overwrite)


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


def table_csv(rows: list[dict[str, Any]]) -> str:
    """``rows`` (dicts with the same keys) as CSV text with a header line."""
    import csv
    import io as _io

    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(
    stem: str | os.PathLike, rows: list[dict[str, Any]], overwrite: bool = True
) -> None:
    """Write ``rows`` as ``<stem>.csv`` and ``<stem>.md`` (results tables of experiments)."""
    stem = Path(stem)
    _atomic_write(stem.with_suffix(".csv"), lambda t: t.write_text(table_csv(rows)), overwrite)
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
    mesh = solution_mesh(system, x, extra_point_data)

    def write(tmp: Path) -> None:
        import meshio

        meshio.write(tmp, mesh, file_format="vtu")

    return _atomic_write(Path(path), write, overwrite)


def solution_mesh(
    system: Any, x: np.ndarray, extra_point_data: dict[str, np.ndarray] | None = None
) -> meshio.Mesh:
    """The meshio mesh of :func:`write_solution_vtu`: ``u`` (and ``exact``, ``error``) on the
    system's grid or mesh, boundary values included."""
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

    return meshio.Mesh(points, [(cell_type, cells)], point_data=point_data)


def _torch_version() -> str:
    """torch's version, without importing it when no code path has (hundreds of MB)."""
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    from importlib.metadata import version

    return version("torch")


def versions() -> dict[str, str]:
    """Versions of pdesolve and the libraries it runs on (those installed), for result records."""
    import scipy

    import pdesolve

    out = {
        "pdesolve": pdesolve.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": _torch_version(),
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
