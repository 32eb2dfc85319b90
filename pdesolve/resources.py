"""Files shipped inside the package: the Hydra configs, the trained weights, the sample mesh.

They are package data (``pdesolve/configs/``, ``pdesolve/data/``), found through
``importlib.resources`` so that a checkout, an editable install and an installed wheel behave
alike. ``pdesolve/data/README.md`` says what each shipped file is and how it was made.

>>> from pdesolve.resources import config_dir, data_path
>>> (config_dir() / "config.yaml").is_file()
True
>>> data_path("meshes", "disk.msh").name
'disk.msh'
"""

from __future__ import annotations

import atexit
import contextlib
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["config_dir", "data_dir", "data_path", "package_dir"]


@cache
def package_dir() -> Path:
    """The directory of the installed ``pdesolve`` package on the file system.

    Packages installed as plain files (every pip install) are used in place; a package imported
    from a zip archive is extracted once for the life of the process.
    """
    root = files("pdesolve")
    if isinstance(root, Path):
        return root
    stack = contextlib.ExitStack()  # pragma: no cover - zip imports only
    atexit.register(stack.close)
    return Path(stack.enter_context(as_file(root)))


def config_dir() -> Path:
    """The folder of Hydra config groups (``problem/``, ``solver/``, ``experiment/``, ...)."""
    return package_dir() / "configs"


def data_dir() -> Path:
    """The folder of shipped data files (trained weights with their configs and logs, meshes)."""
    return package_dir() / "data"


def data_path(*parts: str) -> Path:
    """The shipped file ``pdesolve/data/<parts...>``; ``FileNotFoundError`` naming it if absent.

    >>> data_path("dcdm", "dcdm2d", "model.pt").parent.name
    'dcdm2d'
    >>> data_path("no_such_file.pt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: shipped file pdesolve/data/no_such_file.pt is missing from ...
    """
    path = data_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"shipped file pdesolve/data/{'/'.join(parts)} is missing from {package_dir()} "
            "(a broken install: reinstall pdesolve)"
        )
    return path
