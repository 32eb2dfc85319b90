#!/usr/bin/env bash
# Unattended set-up of pdesolve on a fresh Debian machine (idempotent).
#   system packages -> .venv -> torch (CPU build only if none importable) -> PETSc -> petsc4py -> pdesolve[dev]
# A stamp file makes a second run return in seconds; pip caches the built PETSc wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.pdesolve-setup"
PY_SYSTEM="${PYTHON:-python3}"
PETSC_VERSION="3.26.1"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
start=$(date +%s)
log() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

# 1. system packages: BLAS, MPICH with headers, patchelf
need=()
for pkg in libopenblas-dev libmpich-dev mpich patchelf; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if (( ${#need[@]} )); then
  log "apt-get install ${need[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. virtual environment; reuse an already importable torch (e.g. a CUDA build) instead of replacing it
if [[ ! -x "$VENV/bin/python" ]]; then
  if "$PY_SYSTEM" -c "import torch" >/dev/null 2>&1; then
    log "system torch found: venv with --system-site-packages"
    "$PY_SYSTEM" -m venv --system-site-packages "$VENV"
  else
    "$PY_SYSTEM" -m venv "$VENV"
  fi
fi
export PATH="$VENV/bin:$PATH"
PIP=(python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --upgrade pip

# 3. torch: the CPU build 2.13.0 only when no torch is importable
if ! python -c "import torch" >/dev/null 2>&1; then
  log "pip install torch==2.13.0 (CPU build)"
  "${PIP[@]}" torch==2.13.0
fi

# 4. PETSc then petsc4py, built from source (two separate pip commands), cached as wheels by pip
"${PIP[@]}" numpy cython setuptools wheel
# mpi4py built against the system MPICH (the PyPI wheel looks for another MPI library name)
if ! python -c "from mpi4py import MPI" >/dev/null 2>&1; then
  log "building mpi4py against the system MPICH"
  "${PIP[@]}" --force-reinstall --no-deps --no-binary mpi4py mpi4py
fi
if ! python -c "import petsc" >/dev/null 2>&1; then
  log "building PETSc $PETSC_VERSION (about 6 minutes on 2 cores the first time)"
  PETSC_CONFIGURE_OPTIONS="--with-fc=0 --with-cuda=0 --with-debugging=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2" \
    "${PIP[@]}" --no-build-isolation "petsc==$PETSC_VERSION"
fi
if ! python -c "import petsc4py" >/dev/null 2>&1; then
  log "building petsc4py $PETSC_VERSION (about 5 minutes the first time)"
  "${PIP[@]}" --no-build-isolation "petsc4py==$PETSC_VERSION"
fi

# 5. pdesolve itself, editable, with the dev tools
log "pip install -e .[dev]"
"${PIP[@]}" -e ".[dev]"
python -c "import pdesolve, petsc4py, mpi4py, torch; petsc4py.init(); from petsc4py import PETSc; print('pdesolve', pdesolve.__version__, 'PETSc', PETSc.Sys.getVersion(), 'torch', torch.__version__)"
echo "$want" > "$STAMP"
log "set-up done"
