"""Figures written to files: the one matplotlib set-up that studies and reports share.

:func:`subplots` gives a figure on the non-interactive Agg backend (no display needed, nothing
shown); :func:`save_figure` lays it out, writes it atomically (with the umask's file mode) and
closes it, so that a long sweep does not keep its figures open.

>>> import tempfile
>>> from pathlib import Path
>>> fig, ax = subplots(figsize=(3, 2))
>>> _ = ax.semilogy([0, 1, 2], [1.0, 1e-3, 1e-6])
>>> path = save_figure(fig, Path(tempfile.mkdtemp()) / "residuals.png", dpi=50)
>>> path.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pdesolve.io import atomic_write

__all__ = ["pyplot", "save_figure", "subplots"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only; the backend is set once)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots(*args, **kwargs)`` on the Agg backend: ``(figure, axes)``."""
    return pyplot().subplots(*args, **kwargs)


def save_figure(
    fig: Any, path: str | os.PathLike, dpi: float = 120, tight: bool = True
) -> Path:
    """Write ``fig`` to ``path`` (format from its suffix, PNG without one) and close it.

    ``tight`` applies ``fig.tight_layout()`` first. An existing file is replaced (results
    figures are rewritten with their tables); the write is atomic.
    """
    path = Path(path)
    if tight:
        fig.tight_layout()
    kind = path.suffix[1:] or "png"
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=kind), overwrite=True)
    finally:
        pyplot().close(fig)
    return path
