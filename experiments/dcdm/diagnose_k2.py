"""Why DCDM with memory k = 2 stalled with the first 2D model, and what fixes it.

DCDM(k) steps along the network's direction ``q = f(r/||r||)`` A-orthogonalised against the last k
directions, with an exact line search. The error ``e = A⁻¹r`` is A-orthogonal to the stored
directions, so each step keeps at most a fraction ``1 − cos²_A(q, e)`` of the error's energy
``||e||²_A``: with short memory, convergence is exactly as good as the network's A-angle to the
error on the residuals the iteration produces. This script measures that angle (with a sparse LU
for ``A⁻¹r``) at every iteration.

Part A (no training): the first 2D model (``runs/run2d/model.pt`` here, 64², trained with the
paper's residual loss) on an unseen 64² obstacle box; the 128² 2D model trained with the energy
loss on Ritz data only (``runs/run2d128/model.pt``) and after its on-policy stage (the
shipped 2D model); the shipped 3D model (32³); each on an unseen box.
Part B (a controlled ablation, about 4 CPU-minutes): two 2D 32² models trained on the SAME Ritz data
for the same 12 epochs, one with the paper's residual loss ``||b − αAq||²`` and one with the energy
loss ``1 − cos²_A(q, A⁻¹b)`` (``pdesolve.train.dcdm_training``), evaluated on unseen 32² boxes.

    python experiments/dcdm/diagnose_k2.py              # results/k2_diagnosis_{A,B}.csv,
    python experiments/dcdm/diagnose_k2.py --parts A    # k2_traces_*.csv, k2_cosA_*.png, *_table.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.sparse.linalg as spla
import torch

import pdesolve
from pdesolve.io import markdown_table, read_csv, write_csv
from pdesolve.nn.dcdm_cnn import load_dcdm_model
from pdesolve.plotting import save_figure, subplots
from pdesolve.solvers.base import StoppingRule
from pdesolve.solvers.dcdm_network import DEFAULT_MODELS, NetworkDirection, system_grid
from pdesolve.solvers.fcg import conjugate_directions

HERE = Path(__file__).resolve().parent
#: the first 2D model (64², the paper's residual loss), kept in its training run's folder
FIRST_2D_MODEL = HERE / "runs" / "run2d" / "model.pt"
#: the shipped 2D model's first stage (Ritz data only, before experiments/dcdm/onpolicy.py)
RITZ_2D_MODEL = HERE / "runs" / "run2d128" / "model.pt"


def trace(system, model, memory: int | None, maxiter: int = 200, rtol: float = 1e-6) -> dict:
    """Run DCDM(memory) recording |cos_A(q, A⁻¹r)| and ||r||/||b|| at every iteration."""
    lu = spla.splu(system.A.tocsc())
    grid, mask, restricted = system_grid(system)
    net = NetworkDirection(model, grid, mask, restricted)
    cos: list[float] = []

    def direction(r: np.ndarray) -> np.ndarray:
        q = net(r)
        e = lu.solve(r)
        cos.append(abs(q @ r) / np.sqrt((q @ (system.A @ q)) * (e @ r)))
        return q

    _, reason, its, norms, _ = conjugate_directions(
        system.A, system.b, direction, StoppingRule(rtol, 0.0, maxiter), None, memory, "true"
    )
    return {"converged": reason.converged, "iterations": its, "cos": np.array(cos),
            "rel": np.array(norms) / norms[0]}  # fmt: skip


def part_a(rows: list[dict], traces: dict) -> None:
    cases = [("2D residual-loss model (run2d/model.pt)", 2, 64, FIRST_2D_MODEL),
             ("2D energy-loss model, Ritz data only (run2d128/model.pt)", 2, 128, RITZ_2D_MODEL),
             ("2D shipped model, + on-policy stage (dcdm2d)", 2, 128, DEFAULT_MODELS[2]),
             ("3D energy-loss model (dcdm3d)", 3, 32, DEFAULT_MODELS[3])]  # fmt: skip
    for label, dim, n, path in cases:
        if not path.is_file():
            print(f"skipping {label}: {path} missing")
            continue
        system = pdesolve.get_problem("pressure_poisson", dim=dim, n=n, geometry="obstacles",
                                      seed=101).discretize()  # fmt: skip
        cg = pdesolve.solve(system, method="petsc_cg", rtol=1e-6)
        model = load_dcdm_model(path)
        for memory in (2, None):
            t = trace(system, model, memory)
            traces[f"{label}, k={memory or 'all'}"] = t
            rows.append(summary("A", label, f"{n}^{dim} seed 101", memory, t, cg.iterations))
            print(rows[-1], flush=True)


def summary(part: str, model: str, system: str, memory, t: dict, cg_its: int) -> dict:
    c = t["cos"]
    return {"part": part, "model": model, "system": system, "memory": memory or "all",
            "converged": t["converged"], "iterations": t["iterations"], "cg_iterations": cg_its,
            "final_rel_residual": float(t["rel"][-1]), "cos_A_first": float(c[0]),
            "cos_A_median": float(np.median(c)),
            "cos_A_min_first20": float(c[:20].min())}  # fmt: skip


def part_b(rows: list[dict], traces: dict, epochs: int) -> None:
    from pdesolve.train.dcdm_training import train

    work = Path(tempfile.mkdtemp(prefix="dcdm_k2_ablation_"))
    try:
        common = {"dim": 2, "n": 32, "samples": 1500, "lanczos_steps": 300, "epochs": epochs,
                  "minutes": 1e9, "lr": 1e-3, "fluid_only": 1, "seed": 0}  # fmt: skip
        models = {}
        for loss in ("energy", "residual"):
            out = work / loss
            if loss == "residual":  # the same samples (energies only feed the energy loss)
                out.mkdir()
                shutil.copytree(work / "energy" / "data", out / "data")
            hist = train(out, loss=loss, **common)["history"]
            print(f"{loss}: {hist[-1]}", flush=True)
            models[loss] = load_dcdm_model(out / "model.pt")
        for seed in (101, 102):
            system = pdesolve.get_problem("pressure_poisson", dim=2, n=32, geometry="obstacles",
                                          seed=seed).discretize()  # fmt: skip
            cg = pdesolve.solve(system, method="petsc_cg", rtol=1e-6)
            for loss, model in models.items():
                for memory in (1, 2, None):
                    t = trace(system, model, memory, maxiter=300)
                    if seed == 101:
                        traces[f"32² {loss} loss, k={memory or 'all'}"] = t
                    rows.append(summary("B", f"{loss} loss, {epochs} epochs", f"32^2 seed {seed}",
                                        memory, t, cg.iterations))  # fmt: skip
                    print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", nargs="+", default=["A", "B"], choices=["A", "B"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        rows: list[dict] = []
        traces: dict[str, dict] = {}
        if part == "A":
            part_a(rows, traces)
        else:
            part_b(rows, traces, args.epochs)
        write_csv(out / f"k2_diagnosis_{part}.csv", rows)
        write_csv(out / f"k2_traces_{part}.csv", [
            {"run": label, "iteration": i, "cos_A": f"{c:.6f}",
             "rel_residual_before": f"{t['rel'][i]:.6e}"}
            for label, t in traces.items() for i, c in enumerate(t["cos"])
        ])  # fmt: skip
        plot(traces, out / f"k2_cosA_{part}.png")
    (out / "k2_diagnosis_table.md").write_text(table(out))


def table(out: Path) -> str:
    """The markdown table of every ``k2_diagnosis_{A,B}.csv`` in ``out``."""
    rows = [
        {"part": r["part"], "model": r["model"], "system": r["system"], "k": r["memory"],
         "converged": r["converged"], "DCDM its": r["iterations"], "CG its": r["cg_iterations"],
         "final ‖r‖/‖b‖": f"{float(r['final_rel_residual']):.1e}",
         "cos_A first": f"{float(r['cos_A_first']):.2f}",
         "cos_A median": f"{float(r['cos_A_median']):.2f}",
         "cos_A min (first 20 its)": f"{float(r['cos_A_min_first20']):.3f}"}
        for part in ("A", "B") if (out / f"k2_diagnosis_{part}.csv").is_file()
        for r in read_csv(out / f"k2_diagnosis_{part}.csv")
    ]  # fmt: skip
    return markdown_table(rows, columns=COLUMNS)


#: the table's columns (also when no part has been run yet)
COLUMNS = ["part", "model", "system", "k", "converged", "DCDM its", "CG its", "final ‖r‖/‖b‖",
           "cos_A first", "cos_A median", "cos_A min (first 20 its)"]


def plot(traces: dict, path: Path) -> None:
    fig, axes = subplots(1, 2, figsize=(12, 4.2))
    for label, t in traces.items():
        style = "-" if "k=2" in label else (":" if "k=1" in label else "--")
        axes[0].plot(t["cos"], style, label=label)
        axes[1].semilogy(t["rel"], style, label=label)
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("|cos_A(f(r), A⁻¹r)|")
    axes[0].set_title("network direction vs exact error direction")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("‖r‖ / ‖b‖ (true residual)")
    axes[1].set_title("DCDM convergence (unseen obstacles, seed 101)")
    axes[1].legend(fontsize=6)
    save_figure(fig, path, dpi=120)


if __name__ == "__main__":
    main()
