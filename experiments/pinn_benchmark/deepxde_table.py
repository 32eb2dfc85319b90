"""The pdesolve / DeepXDE table: ``results/deepxde/*.json`` → ``results/deepxde.md``.

    python experiments/pinn_benchmark/deepxde_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

from pdesolve.io import markdown_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GOAL = 1.5


def rows() -> list[dict]:
    ours = json.loads((RESULTS / "deepxde" / "pdesolve.json").read_text())
    theirs = json.loads((RESULTS / "deepxde" / "deepxde.json").read_text())
    out = []
    for case, p in ours.items():
        d = theirs.get(case)
        if d is None:
            continue
        out.append({
            "problem": p["problem"], "act": p["activation"],
            "Adam steps/s pdesolve (CPU)": p["adam_steps_per_s_cpu"],
            "DeepXDE (CPU)": d["adam_steps_per_s_cpu"],
            "ratio (CPU)": p["adam_steps_per_s_cpu"] / d["adam_steps_per_s_cpu"],
            "ratio (wall)": p["adam_steps_per_s_wall"] / d["adam_steps_per_s_wall"],
            "L-BFGS evals/s pdesolve (CPU)": p["lbfgs_evals_per_s_cpu"],
            "DeepXDE (CPU) ": d["lbfgs_evals_per_s_cpu"],
            "ratio (CPU) ": p["lbfgs_evals_per_s_cpu"] / d["lbfgs_evals_per_s_cpu"],
            "loss after Adam pdesolve": p["loss_adam"], "DeepXDE": d["loss_adam"],
            "relative loss difference": abs(p["loss_adam"] - d["loss_adam"]) / d["loss_adam"],
            "L2 after Adam pdesolve": p["l2_adam"], "DeepXDE ": d["l2_adam"],
            "L2 after L-BFGS pdesolve": p["l2_lbfgs"], "DeepXDE  ": d["l2_lbfgs"],
            "L-BFGS iterations pdesolve / DeepXDE":
                f"{p['lbfgs_iterations']} / {d['lbfgs_iterations']}",
            "load": f"{p['load']:.1f} / {d['load']:.1f}",
        })  # fmt: skip
    return out


def main() -> None:
    table = rows()
    if not table:
        raise SystemExit("no case run by both frameworks in results/deepxde/")
    ours = json.loads((RESULTS / "deepxde" / "pdesolve.json").read_text())
    theirs = json.loads((RESULTS / "deepxde" / "deepxde.json").read_text())
    first = next(iter(ours.values()))
    dde_version = next(iter(theirs.values()))["deepxde"]
    adam = [r["ratio (CPU)"] for r in table]
    lbfgs = [r["ratio (CPU) "] for r in table]
    met = sum(r >= GOAL for r in adam)
    text = (
        f"# pdesolve and DeepXDE {dde_version} on the same problems\n\n"
        f"Machine: {first['machine']}, torch {first['torch']} on both sides, one thread, float64; "
        "a 2-core machine shared with other jobs (the 1-minute load average at the end of each "
        "run is in the last column, pdesolve / DeepXDE). CPU time is the thread's CPU time of "
        "the training steps, wall time their elapsed time; steps/s is the median over blocks "
        f"of 10 Adam steps after 20 warm-up steps ({first['adam_steps']} Adam steps in all); "
        "L-BFGS speed is loss-and-gradient evaluations per second.\n\n"
        "Both sides start from the same initial weights, train on the same points (exported by "
        "`deepxde_prepare.py`) with the same hard constraints, loss and optimisers, and are "
        "scored on the same test points against the same reference; the equal losses after "
        "Adam show that they solve the same problem.\n\n"
        f"**Goal, pdesolve Adam steps/s ≥ {GOAL}× DeepXDE (CPU time): met on {met} of "
        f"{len(adam)} cases** (ratios {min(adam):.2f}–{max(adam):.2f}; L-BFGS evaluations/s "
        f"{min(lbfgs):.2f}–{max(lbfgs):.2f}×).\n\n" + markdown_table(table)
    )
    (RESULTS / "deepxde.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
