#!/usr/bin/env bash
# The DeepXDE comparison, case by case and alternating the two frameworks (same machine, same
# load): pdesolve exports and trains a case, then DeepXDE trains the same case; then the table.
#   bash experiments/pinn_benchmark/deepxde_run.sh [ADAM_STEPS]   (from the repository root)
set -euo pipefail
ADAM=${1:-220}
PDESOLVE_PY=${PDESOLVE_PY:-python}
DEEPXDE_PY=${DEEPXDE_PY:-/work/deepxde-venv/bin/python}
export OMP_NUM_THREADS=1 DDE_BACKEND=pytorch PYTHONPATH=${PYTHONPATH:-.}
HERE=experiments/pinn_benchmark
rm -f "$HERE"/results/deepxde/pdesolve.json "$HERE"/results/deepxde/deepxde.json
for problem in burgers allen_cahn heat2d poisson_holes; do
  for act in tanh sin; do
    "$PDESOLVE_PY" "$HERE"/deepxde_prepare.py --adam "$ADAM" --problems "$problem" --activations "$act"
    "$DEEPXDE_PY" "$HERE"/deepxde_compare.py --adam "$ADAM" --cases "${problem}_${act}"
  done
done
"$PDESOLVE_PY" "$HERE"/deepxde_table.py
