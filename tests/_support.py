"""Helpers shared by the tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def measured_orders(errors, sizes) -> np.ndarray:
    """Observed convergence orders between successive refinements (sizes are mesh widths)."""
    e, h = np.asarray(errors, dtype=float), np.asarray(sizes, dtype=float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])


def torchrun(args: list[str], nproc: int = 2, timeout: float = 400, env: dict | None = None):
    """Run ``torchrun --standalone`` with one thread per process; returns the CompletedProcess."""
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    full = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
            "PDESOLVE_DIST_TIMEOUT": "240", **(env or {})}  # fmt: skip
    return subprocess.run(
        [exe, "--standalone", f"--nproc_per_node={nproc}", *args], cwd=ROOT, env=full,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
