#!/usr/bin/env bash
# Unattended set-up of pdesolve on a fresh Debian machine (idempotent).
#   system packages -> .venv -> torch (CPU build only if none importable) -> PETSc -> petsc4py -> pdesolve[dev]
# A stamp file makes a second run return in seconds.
# PETSc (with hypre, from the distribution's hypre source, so no download from GitHub) and petsc4py
# are built once into a wheel directory keyed by their configure options and sources:
#   ${XDG_CACHE_HOME:-~/.cache}/pdesolve/wheels/<key>/
# pip's own wheel cache does not see PETSC_CONFIGURE_OPTIONS, so the set-up never relies on it: a
# change of options (or of the hypre tarball) gives a new key, a rebuild and a reinstall of both.
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

# 4. PETSc (with hypre) then petsc4py, built from source into a wheel directory of their own
"${PIP[@]}" numpy cython setuptools wheel
# mpi4py built against the system MPICH (the PyPI wheel looks for another MPI library name)
if ! python -c "from mpi4py import MPI" >/dev/null 2>&1; then
  log "building mpi4py against the system MPICH"
  "${PIP[@]}" --force-reinstall --no-deps --no-binary mpi4py mpi4py
fi

# hypre source tarball, from the Debian mirror (no GitHub): PETSc 3.26's hypre interface calls
# functions hypre added in 2.29-2.31 (HYPRE_Initialized, HYPRE_IJMatrixGetValues2, BoomerAMG's ILU
# iterative set-up) without version guards, so Debian 12's hypre 2.26 builds but leaves undefined
# symbols; the source of Debian 13 (trixie, hypre 2.32) is used. Only a deb-src entry is added
# (/etc/apt/sources.list.d/pdesolve-deb-src.sources): no binary package source changes.
HYPRE_MIN="2.31"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pdesolve"
mkdir -p "$CACHE/hypre"
newest_cached() {
  ls "$CACHE"/hypre/hypre_*.orig.tar.* 2>/dev/null | sort -V | tail -n 1 || true
}
at_least() { [[ "$(printf '%s\n' "$1" "$2" | sort -V | head -n 1)" == "$1" ]]; }  # $2 >= $1
version_of() { basename "$1" | sed -E 's/^hypre_([0-9.]+)\.orig\..*/\1/'; }
hypre_tgz="$(newest_cached)"
if [[ -z "$hypre_tgz" ]] || ! at_least "$HYPRE_MIN" "$(version_of "$hypre_tgz")"; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  src_version() { apt-cache showsrc hypre 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1; }
  if [[ -z "$(src_version)" ]] || ! at_least "$HYPRE_MIN" "$(src_version)"; then
    mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)"
    log "adding a deb-src entry for Debian 13 (trixie) on ${mirror:-http://deb.debian.org/debian} (hypre's source)"
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
      "${mirror:-http://deb.debian.org/debian}" /usr/share/keyrings/debian-archive-keyring.gpg \
      > "$CACHE/hypre/deb-src.sources"
    $SUDO install -m 644 "$CACHE/hypre/deb-src.sources" /etc/apt/sources.list.d/pdesolve-deb-src.sources
    $SUDO apt-get update -qq || true
  fi
  full="$(src_version)"
  if [[ -z "$full" ]] || ! at_least "$HYPRE_MIN" "$full"; then
    echo "setup: the Debian mirror offers no hypre source >= $HYPRE_MIN (found '${full:-none}'); PETSc $PETSC_VERSION needs one" >&2
    exit 1
  fi
  log "apt-get source --download-only hypre=$full"
  (cd "$CACHE/hypre" && apt-get source --download-only -qq "hypre=$full" >/dev/null 2>&1) || true
  hypre_tgz="$(newest_cached)"
  if [[ -z "$hypre_tgz" ]] || ! at_least "$HYPRE_MIN" "$(version_of "$hypre_tgz")"; then
    echo "setup: 'apt-get source hypre=$full' did not give a hypre_*.orig tarball in $CACHE/hypre" >&2
    exit 1
  fi
fi
hypre_ver="$(version_of "$hypre_tgz")"

PETSC_OPTS="--with-fc=0 --with-cuda=0 --with-debugging=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2 --download-hypre=$hypre_tgz"
key="$( { echo "$PETSC_VERSION $PETSC_OPTS"; python -c 'import sys; print(sys.version)'; sha256sum < "$hypre_tgz"; } \
        | sha256sum | cut -c1-16)"
WHEELS="$CACHE/wheels/$key"
PETSC_STAMP="$VENV/.pdesolve-petsc"
exec 9>"$CACHE/.build-lock"
flock 9  # one build per key at a time when several set-ups share the cache
if [[ ! -f "$PETSC_STAMP" || "$(cat "$PETSC_STAMP")" != "$key" ]] \
   || ! python -c "import petsc, petsc4py" >/dev/null 2>&1; then
  if ! ls "$WHEELS"/petsc-*.whl >/dev/null 2>&1 || ! ls "$WHEELS"/petsc4py-*.whl >/dev/null 2>&1; then
    mkdir -p "$CACHE/sdist" "$WHEELS.partial"
    sdist() {  # the source archive of $1 (metadata read with the venv's own build tools)
      [[ -f "$CACHE/sdist/$1-$PETSC_VERSION.tar.gz" ]] || \
        python -m pip download -q --disable-pip-version-check --no-deps --no-build-isolation \
          --no-binary "$1" "$1==$PETSC_VERSION" -d "$CACHE/sdist"
      echo "$CACHE/sdist/$1-$PETSC_VERSION.tar.gz"
    }
    # PETSc first (petsc4py builds against the installed PETSc), each from its local sdist
    if ! ls "$WHEELS.partial"/petsc-*.whl >/dev/null 2>&1; then
      petsc_src="$(sdist petsc)"
      log "building PETSc $PETSC_VERSION with hypre $hypre_ver (about 10 minutes on 2 cores)"
      PETSC_CONFIGURE_OPTIONS="$PETSC_OPTS" python -m pip wheel -q --disable-pip-version-check \
        --no-cache-dir --no-deps --no-build-isolation "$petsc_src" -w "$WHEELS.partial"
    fi
    "${PIP[@]}" --no-deps --force-reinstall "$WHEELS.partial"/petsc-*.whl
    petsc4py_src="$(sdist petsc4py)"
    log "building petsc4py $PETSC_VERSION (about 5 minutes)"
    python -m pip wheel -q --disable-pip-version-check --no-cache-dir --no-deps --no-build-isolation \
      "$petsc4py_src" -w "$WHEELS.partial"
    rm -rf "$WHEELS" && mv "$WHEELS.partial" "$WHEELS"
  fi
  log "installing PETSc and petsc4py from $WHEELS"
  "${PIP[@]}" --no-deps --force-reinstall "$WHEELS"/petsc-*.whl "$WHEELS"/petsc4py-*.whl
  python -c "import petsc4py; petsc4py.init(); from petsc4py import PETSc; pc = PETSc.PC().create(); pc.setType('hypre'); pc.destroy()"
  echo "$key" > "$PETSC_STAMP"
fi

# 5. pdesolve itself, editable, with the dev tools
log "pip install -e .[dev]"
"${PIP[@]}" -e ".[dev]"
python -c "import pdesolve, petsc4py, mpi4py, torch; petsc4py.init(); from petsc4py import PETSc; print('pdesolve', pdesolve.__version__, 'PETSc', PETSc.Sys.getVersion(), 'torch', torch.__version__)"
echo "$want" > "$STAMP"
log "set-up done"
