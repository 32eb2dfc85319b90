"""Step time of the PINN trainer, data-parallel over 1 and 2 processes (torchrun, gloo, CPU).

    PYTHONPATH=. .venv/bin/python experiments/scaling/ddp_pinn.py            # ~5 min
    PYTHONPATH=. .venv/bin/python experiments/scaling/ddp_pinn.py --quick    # ~1 min

For each global batch the same run of the command line (``pdesolve problem=poisson2d fit=pinn
...``: an MLP, forward-mode Laplacian, Adam, fresh random collocation points every step) is
made with ``torchrun --standalone --nproc_per_node=P -m pdesolve`` for P = 1, 2, one torch
thread per process. The step time is rank 0's training clock (sampling, forward, backward,
gradient all-reduce, Adam step; not the logging) per step, median over the logging intervals
after the first. A float64 run of 50 steps compares the loss curves of 1 and 2 processes.
Writes ``results/ddp_pinn.md`` and ``results/ddp_pinn.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pdesolve.io import markdown_table, versions, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def run(overrides: list[str], out: Path, nproc: int) -> tuple[list[dict], float]:
    """One run in ``out``; returns rank 0's ``metrics.csv`` rows and the run's wall time."""
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.run([exe, "--standalone", f"--nproc_per_node={nproc}", "-m", "pdesolve",
                           *overrides, f"hydra.run.dir={out}", "write_solution=false"],
                          env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)  # fmt: skip
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    with (out / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh)), time.perf_counter() - t


def common(batch: int, steps: int, log_every: int, dtype: str, width: int) -> list[str]:
    return ["problem=poisson2d", "fit=pinn", "model@fit.model=mlp", f"fit.model.width={width}",
            "fit.model.depth=4", f"fit.steps={steps}", f"fit.batch={batch}",
            f"fit.log_every={log_every}", "fit.test_points=2000", "fit.monitor_points=500",
            f"fit.dtype={dtype}", "fit.progress=false", "fit.optimizer.lr=1e-3"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one batch size, fewer steps")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    a = parser.parse_args()
    batches = [1024] if a.quick else [1024, 4096, 16384]
    steps, log_every, width = (20, 5, 32) if a.quick else (40, 10, 50)
    rows, raw = [], []
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="ddp_pinn_"))
    try:
        for batch in batches:
            base = None
            for p in (1, 2):
                log, wall = run(common(batch, steps, log_every, "float32", width),
                                work / f"b{batch}_p{p}", p)  # fmt: skip
                times = [float(r["time"]) for r in log]
                marks = [int(r["step"]) for r in log]
                per = [(t1 - t0) / (s1 - s0) for t0, t1, s0, s1 in
                       zip(times[1:], times[2:], marks[1:], marks[2:], strict=False)]
                step = statistics.median(per)
                base = step if p == 1 else base
                raw.append({"batch": batch, "processes": p, "step_times": per,
                            "train_loss": [float(r["train_loss"]) for r in log]})  # fmt: skip
                rows.append({
                    "global batch": batch, "processes": p, "step time (s)": step,
                    "speed-up": base / step, "efficiency": base / step / p,
                    "points/s": batch / step, "run wall time (s)": wall,
                })  # fmt: skip
                print(rows[-1], flush=True)
        curves = {}
        for p in (1, 2):
            log, _ = run(common(256, 50, 1, "float64", 16), work / f"curve_p{p}", p)
            curves[p] = [float(r["train_loss"]) for r in log[1:]]  # step 0 has no loss yet
        gap = max(abs(x - y) / abs(y) for x, y in zip(curves[2], curves[1], strict=True))
        raw.append({"float64_curves": curves, "max_rel_gap": gap})
        print("float64, 50 steps: max relative gap", gap, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    a.out.mkdir(parents=True, exist_ok=True)
    text = [
        "# DDP step time of the PINN trainer (1 and 2 processes, CPU, gloo)",
        "",
        f"Command: `python experiments/scaling/ddp_pinn.py{' --quick' if a.quick else ''}` "
        f"(torch {torch.__version__}, one torch thread per process, float32, poisson2d, MLP "
        f"{width}x4 tanh, forward-mode Laplacian, Adam, fresh random points every step, "
        f"{steps} steps, median over the logging intervals of {log_every} steps after the "
        "first).",
        "",
        f"**Machine: {os.cpu_count()} CPU cores shared with other jobs; load average "
        f"{load_before[0]:.1f} before and {load_after[0]:.1f} after the runs** — the two "
        "processes compete with other work for the same two cores, so these times are an "
        "upper bound on what an idle machine gives and vary from run to run.",
        "",
        markdown_table(rows),
        "The step is drawing the global batch (every rank draws all of it, from the same "
        "generator state, and keeps its half), forward and backward on the rank's half, one "
        "all-reduce of the gradients and one of the loss (gloo), and the Adam step, on rank "
        "0's training clock. With the same global batch each process computes half the "
        "points. Raw numbers: `ddp_pinn.json`.",
        "",
        f"Loss curve, float64, MLP 16x4, global batch 256, 50 Adam steps: the largest relative "
        f"difference between the training losses of 2 processes and of 1 is **{gap:.1e}** "
        "(the target is 1e-6).",
        "",
        "Reading the table: on a loaded machine one process gets only a share of a core, and "
        "two processes get a larger share of the contended cores than one, so the wall-clock "
        "speed-up mixes the split work with the scheduler. Measure on an idle machine before "
        "drawing conclusions about wall time.",
        "",
    ]
    (a.out / "ddp_pinn.md").write_text("\n".join(text))
    write_json(a.out / "ddp_pinn.json", {"rows": rows, "raw": raw, "load": [load_before,
               load_after], "versions": versions()}, overwrite=True)  # fmt: skip


if __name__ == "__main__":
    main()
