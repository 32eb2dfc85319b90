"""Does ``torch.compile`` pay for DCDM's network on the CPU? Eager against compiled inference.

The shipped DCDM models, one forward pass on a random field at the size each was trained for
(2D 128², 3D 32³), one torch thread: median of 15 calls after two warm-up calls, for the eager
model (its oneDNN convolutions, see ``pdesolve.nn.dcdm_cnn``), the eager model through torch's
own convolutions (what ``torch.compile`` traces: the direct oneDNN call is not traceable) and
the compiled model; plus the compile time (first call). Writes ``results/compile_cpu.md``.

    OMP_NUM_THREADS=1 python experiments/gpu/compile_cpu.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pdesolve.nn.dcdm_cnn as dcdm_cnn  # noqa: E402
from pdesolve.io import markdown_table  # noqa: E402
from pdesolve.solvers.dcdm_network import DEFAULT_MODELS  # noqa: E402


def median_seconds(fn, x, repeats: int = 15) -> float:
    with torch.no_grad():
        fn(x), fn(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for dim, n in ((2, 128), (3, 32)):
        model = dcdm_cnn.load_dcdm_model(DEFAULT_MODELS[dim])
        x = torch.randn((1, 1) + (n,) * dim, generator=torch.Generator().manual_seed(0))
        eager = median_seconds(model, x)
        onednn = dcdm_cnn._mkldnn_ok
        dcdm_cnn._mkldnn_ok = lambda t: False  # torch's convolutions, as torch.compile traces
        try:
            plain = median_seconds(model, x)
            t = time.perf_counter()
            compiled = torch.compile(model)
            with torch.no_grad():
                compiled(x)
            compile_s = time.perf_counter() - t
            fast = median_seconds(compiled, x)
            with torch.no_grad():
                diff = float((compiled(x) - model(x)).abs().max())
        finally:
            dcdm_cnn._mkldnn_ok = onednn
        saved = eager - fast
        rows.append({
            "model": f"{dim}D, {n}^{dim}", "eager_onednn_ms": 1e3 * eager,
            "eager_torch_conv_ms": 1e3 * plain, "compiled_ms": 1e3 * fast,
            "compile_s": compile_s, "max_abs_diff": diff,
            "inferences_to_pay_back": round(compile_s / saved) if saved > 0 else "never",
        })  # fmt: skip
        print(rows[-1], flush=True)
    load = [round(v, 2) for v in os.getloadavg()]
    out = Path(__file__).parent / "results" / "compile_cpu.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        "# torch.compile of DCDM's network on the CPU\n\n"
        f"torch {torch.__version__}, one thread, load average {load} (a shared, loaded "
        "machine: times are indicative). Command: `OMP_NUM_THREADS=1 python "
        "experiments/gpu/compile_cpu.py`.\n\n" + markdown_table(rows)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
