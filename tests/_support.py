"""Helpers shared by the tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

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


class TransferCounter:
    """Counts what would move data between a torch device and the host, while active.

    ``reads``: scalar read-backs (``item``, ``tolist``, ``float()``/``int()``/``bool()`` of a
    tensor: each waits for the device and copies to the host). ``copies``: whole tensors moved
    or possibly moved (``cpu``, ``cuda``, ``numpy``, ``np.asarray(tensor)``, ``.to()`` naming a
    device, tensors made from host data by ``torch.as_tensor``/``tensor``/``from_numpy``). On
    the CPU these are cheap, but each one is a host-device transfer on a GPU, so counting them on
    the CPU shows what a GPU run would do. Calls made by ``torch.optim`` are not counted: its
    step counters are CPU tensors by design, also for CUDA parameters (no transfer).
    """

    READS: ClassVar[set[str]] = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__"}
    COPIES: ClassVar[set[str]] = {"cpu", "cuda", "numpy", "__array__"}
    FACTORIES: ClassVar[set[str]] = {"as_tensor", "tensor", "asarray"}

    def __init__(self, monkeypatch) -> None:
        import torch
        from torch.overrides import TorchFunctionMode

        counter = self
        self.reads = self.copies = 0
        self.names: list[str] = []

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = getattr(func, "__name__", "")
                caller = sys._getframe(1).f_globals.get("__name__", "")
                if caller.startswith("torch.optim"):
                    pass
                elif name in counter.READS:
                    counter.reads += 1
                    counter.names.append(name)
                elif name in counter.COPIES or (name in counter.FACTORIES and args
                                                 and not isinstance(args[0], torch.Tensor)):
                    counter.copies += 1
                    counter.names.append(name)
                elif name == "to" and ("device" in kwargs or any(
                        isinstance(a, str | torch.device) for a in args[1:])):
                    counter.copies += 1
                    counter.names.append(name)
                return func(*args, **kwargs)

        original = torch.from_numpy

        def from_numpy(array):
            counter.copies += 1
            counter.names.append("from_numpy")
            return original(array)

        monkeypatch.setattr(torch, "from_numpy", from_numpy)
        self._mode = _Mode()

    def __enter__(self) -> "TransferCounter":
        self.reads = self.copies = 0
        self.names = []
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
