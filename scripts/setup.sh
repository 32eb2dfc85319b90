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

# hypre source tarball: Debian's hypre source package (needs a deb-src entry; one is added for the
# configured Debian mirrors when none is present). Its .orig tarball is the upstream release.
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pdesolve"
mkdir -p "$CACHE/hypre"
hypre_tgz="$(ls "$CACHE"/hypre/hypre_*.orig.tar.* 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$hypre_tgz" ]]; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  if [[ -z "$(apt-cache showsrc hypre 2>/dev/null)" ]]; then
    log "adding a deb-src entry for the configured Debian mirrors (for hypre's source)"
    tmp_list="$(mktemp)"
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
      sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$tmp_list"
      $SUDO install -m 644 "$tmp_list" /etc/apt/sources.list.d/pdesolve-deb-src.sources
    else
      sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list > "$tmp_list"
      $SUDO install -m 644 "$tmp_list" /etc/apt/sources.list.d/pdesolve-deb-src.list
    fi
    rm -f "$tmp_list"
    $SUDO apt-get update -qq || true
  fi
  log "apt-get source --download-only hypre"
  (cd "$CACHE/hypre" && apt-get source --download-only -qq hypre >/dev/null 2>&1) || true
  hypre_tgz="$(ls "$CACHE"/hypre/hypre_*.orig.tar.* 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$hypre_tgz" ]]; then
    echo "setup: could not obtain hypre's source with 'apt-get source hypre' (no deb-src entry or mirror unreachable)" >&2
    exit 1
  fi
fi
# PETSc 3.26 accepts hypre >= 2.14
hypre_ver="$(basename "$hypre_tgz" | sed -E 's/^hypre_([0-9.]+)\.orig\..*/\1/')"
if [[ "$(printf '%s\n' 2.14 "$hypre_ver" | sort -V | head -n 1)" != "2.14" ]]; then
  echo "setup: hypre $hypre_ver from $hypre_tgz is older than 2.14, which PETSc $PETSC_VERSION needs" >&2
  exit 1
fi
# PETSc 3.26's hypre interface uses HYPRE_INT_MAX/HYPRE_INT_MIN, which hypre releases before 2.29
# (Debian 12 ships 2.26.0) do not define: the tarball handed to PETSc is the upstream one with the
# two limits added to HYPRE_utilities.h where missing (reproducible archive, made once).
hypre_src="$CACHE/hypre/hypre-$hypre_ver-pdesolve.tar.gz"
if [[ ! -f "$hypre_src" ]]; then
  work="$(mktemp -d)"
  tar xf "$hypre_tgz" -C "$work"
  top="$(cd "$work" && ls -d hypre-* | head -n 1)"
  hdr="$work/$top/src/utilities/HYPRE_utilities.h"
  if ! grep -q HYPRE_INT_MAX "$hdr"; then
    log "adding HYPRE_INT_MAX/HYPRE_INT_MIN to hypre $hypre_ver's HYPRE_utilities.h"
    python - "$hdr" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "/*--------------------------------------------------------------------------\n * Real and Complex types"
limits = """/* limits of HYPRE_Int (defined by hypre >= 2.29; added for PETSc >= 3.22) */
#include <limits.h>
#if defined(HYPRE_BIGINT)
#define HYPRE_INT_MAX LLONG_MAX
#define HYPRE_INT_MIN LLONG_MIN
#else
#define HYPRE_INT_MAX INT_MAX
#define HYPRE_INT_MIN INT_MIN
#endif

"""
if text.count(anchor) != 1:
    sys.exit(f"setup: {path} has no unique 'Real and Complex types' block to patch before")
open(path, "w").write(text.replace(anchor, limits + anchor))
PY
  fi
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf - "$top" \
    | gzip -n > "$hypre_src.tmp"
  mv "$hypre_src.tmp" "$hypre_src"
  rm -rf "$work"
fi

PETSC_OPTS="--with-fc=0 --with-cuda=0 --with-debugging=0 COPTFLAGS=-O2 CXXOPTFLAGS=-O2 --download-hypre=$hypre_src"
key="$( { echo "$PETSC_VERSION $PETSC_OPTS"; python -c 'import sys; print(sys.version)'; sha256sum < "$hypre_src"; } \
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
