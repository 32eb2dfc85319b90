"""On-policy fine-tuning of the 2D DCDM model: train on the iteration's own residuals too.

With the model trained on Ritz data alone (``runs/run2d128``) the paper's DCDM(k = 2) stalls
once the residual concentrates in the fluid rows under the air boundary, a kind of residual
absent from the Ritz training data (``results/results2d.md``). This step (ours, not the paper's;
it made the shipped 2D model, package data ``pdesolve/data/dcdm/dcdm2d/``) collects the
normalised residuals that DCDM(k = 2) produces on the TRAINING box, for right-hand sides taken
from the Ritz training split (validation: residuals from the validation split), computes their
energies ``rᵀA⁻¹r`` with a sparse LU, adds them to the Ritz data and resumes training from the
first stage's checkpoint with the same loss and optimiser. ``--passes`` repeats
collect-and-train with the fine-tuned network (each pass on the previous pass's data plus new
residuals). Then it runs DCDM(k = 2), plain and safeguarded, on unseen 128² boxes.

    python experiments/dcdm/onpolicy.py --out runs/dcdm2d     # any new folder; ~6 CPU-min per pass
    cp runs/dcdm2d/{model.pt,config.json,log.csv} pdesolve/data/dcdm/dcdm2d/   # to ship it

Needs the first stage's checkpoint and Ritz data (``--run``, default ``runs/run2d128`` here; its
``data/`` is git-ignored: retraining that stage writes it). Writes ``--out``/model.pt (the final
weights) and ``results/onpolicy.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.sparse.linalg as spla
import torch

import pdesolve
from pdesolve.io import markdown_table
from pdesolve.nn.checkpoint import load_checkpoint
from pdesolve.nn.dcdm_cnn import load_dcdm_model, save_dcdm_model
from pdesolve.problems.pressure import PressurePoisson
from pdesolve.solvers.base import StoppingRule
from pdesolve.solvers.dcdm_network import NetworkDirection, system_grid
from pdesolve.solvers.fcg import conjugate_directions
from pdesolve.train.dcdm_training import train
from pdesolve.train.ritz import load_split

HERE = Path(__file__).resolve().parent
RUN = HERE / "runs" / "run2d128"
COLUMNS = ["system", "model", "k = 2", "k = 2 + safeguard", "CG"]  # of onpolicy.md


def residuals_of_dcdm(system, model, rhs: np.ndarray, iterations: int, every: int) -> np.ndarray:
    """Normalised residuals met by DCDM(k = 2) from each right-hand side, every ``every`` its."""
    grid, mask, restricted = system_grid(system)
    net = NetworkDirection(model, grid, mask, restricted)
    out: list[np.ndarray] = []
    calls = [0]

    def direction(r: np.ndarray) -> np.ndarray:
        calls[0] += 1
        if calls[0] > 1 and calls[0] % every == 0:
            out.append(r / np.linalg.norm(r))
        return net(r)

    for b in rhs:
        calls[0] = 0
        conjugate_directions(system.A, b.astype(np.float64), direction,
                             StoppingRule(1e-6, 0.0, iterations), None, 2, "true")  # fmt: skip
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default=str(RUN), help="training run with checkpoint.pt, data/")
    parser.add_argument("--out", required=True)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--solves", type=int, default=40, help="right-hand sides per pass")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=8, help="training rounds per pass")
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    args = parser.parse_args()
    torch.set_num_threads(1)
    run, out = Path(args.run), Path(args.out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new --out")
    ckpt = load_checkpoint(run / "checkpoint.pt")
    cfg = ckpt["config"]["train"]
    problem = PressurePoisson(dim=2, n=cfg["n"], geometry=cfg["geometry"],
                              obstacles=cfg["obstacles"], seed=cfg["problem_seed"],
                              boundary=cfg["boundary"])  # fmt: skip
    system = problem.discretize()
    lu = spla.splu(system.A.tocsc())
    src = run / "data"
    (out / "data").mkdir(parents=True)
    shutil.copy(run / "checkpoint.pt", out / "checkpoint.pt")
    meta = json.loads((src / "meta.json").read_text())
    for split in ("train", "val"):
        for f in meta["files"][split]:
            shutil.copy(src / f, out / "data" / f)
        shutil.copy(src / f"energy_{split}.npy", out / "data" / f"energy_{split}.npy")
    shutil.copy(src / "meta.json", out / "data" / "meta.json")
    ritz = {s: load_split(src, s) for s in ("train", "val")}
    rng = np.random.default_rng(0)
    log = []
    step = ckpt["step"]
    for p in range(args.passes):
        t0 = time.process_time()
        model = load_dcdm_model(out / "checkpoint.pt")
        meta = json.loads((out / "data" / "meta.json").read_text())
        for split, count in (("train", args.solves), ("val", max(args.solves // 4, 1))):
            pick = rng.choice(len(ritz[split]), count, replace=False)
            res = residuals_of_dcdm(system, model, ritz[split][pick], args.iterations, args.every)
            energies = np.einsum("ij,ji->i", res, lu.solve(res.T))  # rᵀA⁻¹r
            name = f"{split}_onpolicy{p}.npy"
            np.save(out / "data" / name, res.astype(np.float32))
            meta["files"][split].append(name)
            path = out / "data" / f"energy_{split}.npy"
            np.save(path, np.concatenate([np.load(path), energies]))
            log.append(f"pass {p}: {len(res)} {split} residuals")
        (out / "data" / "meta.json").write_text(json.dumps(meta))
        step += args.rounds
        train(out, resume=True, epochs=step, minutes=1e6)
        log.append(f"pass {p}: trained to round {step} ({time.process_time() - t0:.0f} CPU-s)")
        print(log[-1], flush=True)
    model = load_dcdm_model(out / "checkpoint.pt")
    save_dcdm_model(out / "model.pt", model, step=step)
    first_stage = run / "model.pt"
    rows = []
    for seed in args.seeds:
        s = pdesolve.get_problem("pressure_poisson", dim=2, n=cfg["n"], geometry="obstacles",
                                 seed=seed).discretize()  # fmt: skip
        cg = pdesolve.solve(s, method="petsc_cg", rtol=1e-6)
        for label, m in (("Ritz data only", str(first_stage)), ("on-policy fine-tuned", model)):
            cells = []
            for safeguard in (False, True):
                r = pdesolve.solve(s, method="dcdm", model=m, memory=2, safeguard=safeguard,
                                   rtol=1e-6, maxiter=300)  # fmt: skip
                rel = r.residual_norms[-1] / s.b_norm
                cells.append(f"{r.iterations}" if r.converged else f"✗ ({rel:.1e} after 300)")
            rows.append({"system": f"{cfg['n']}² obstacles {seed}", "model": label,
                         "k = 2": cells[0], "k = 2 + safeguard": cells[1], "CG": cg.iterations})
            print(rows[-1], flush=True)
    text = ["# On-policy fine-tuning of the 2D DCDM model (made the shipped 2D model)\n",
            f"Command: `python experiments/dcdm/onpolicy.py --out ... --passes {args.passes} "
            f"--solves {args.solves} --iterations {args.iterations} --every {args.every} "
            f"--rounds {args.rounds}`\n", *[f"- {x}" for x in log], "",
            markdown_table(rows, columns=COLUMNS).rstrip("\n")]  # fmt: skip
    (HERE / "results" / "onpolicy.md").write_text("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
