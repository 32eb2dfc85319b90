"""Conversions between scipy/numpy and PETSc objects, row-distributed over ``PETSc.COMM_WORLD``.

Every rank passes the same global matrix; each keeps the rows that PETSc's default layout gives it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

_prefix_counter = itertools.count()


def petsc():
    """The initialised ``petsc4py.PETSc`` module."""
    import petsc4py

    petsc4py.init()
    from petsc4py import PETSc

    return PETSc


def row_range(n: int, comm=None) -> tuple[int, int]:
    """This rank's rows ``[start, end)`` of a length-``n`` object in PETSc's default layout."""
    PETSc = petsc()
    layout = PETSc.Vec().createMPI(n, comm=comm or PETSc.COMM_WORLD)
    start, end = layout.getOwnershipRange()
    layout.destroy()
    return start, end


def csr_to_petsc(A: sp.csr_matrix, comm=None):
    """A PETSc AIJ matrix holding this rank's rows of ``A`` (same ``A`` on every rank)."""
    PETSc = petsc()
    comm = comm or PETSc.COMM_WORLD
    n = A.shape[0]
    start, end = row_range(n, comm)
    local = A if (start, end) == (0, n) else A[start:end]  # no copy on one rank
    indptr = local.indptr.astype(PETSc.IntType, copy=False)
    indices = local.indices.astype(PETSc.IntType, copy=False)
    M = PETSc.Mat().createAIJ(
        size=((end - start, n), (end - start, n)),
        csr=(indptr, indices, local.data),
        comm=comm,
    )
    M.assemble()
    return M


def vector_to_petsc(v: np.ndarray, comm=None):
    """A distributed PETSc vector holding this rank's part of the global ``v``."""
    PETSc = petsc()
    comm = comm or PETSc.COMM_WORLD
    if comm.getSize() == 1:  # a sequential vector, as a plain petsc4py user would make
        out = PETSc.Vec().createSeq(len(v), comm=comm)
        out.setArray(v)
        return out
    start, end = row_range(len(v), comm)
    out = PETSc.Vec().createMPI((end - start, len(v)), comm=comm)
    out.setArray(v[start:end])
    return out


def gather_vector(v) -> np.ndarray:
    """The whole distributed vector ``v`` as a numpy array on every rank."""
    PETSc = petsc()
    scatter, full = PETSc.Scatter.toAll(v)
    scatter.scatter(v, full, addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
    out = full.getArray().copy()
    scatter.destroy()
    full.destroy()
    return out


def ksp_with_options(
    comm, options: Mapping[str, Any], tag: str = "pdesolve"
) -> tuple[Any, list[str]]:
    """A new KSP on ``comm`` under a private options prefix, with ``options`` (names without the
    leading dash) set in PETSc's options database for it.

    Returns ``(ksp, names)``; pass ``names`` to :func:`remove_options` when the KSP is done, so
    that nothing leaks into later solves.

    >>> ksp, names = ksp_with_options(petsc().COMM_SELF, {"ksp_type": "cg"})
    >>> ksp.setFromOptions(); ksp.getType()
    'cg'
    >>> remove_options(names); ksp.destroy()  # doctest: +ELLIPSIS
    <petsc4py.PETSc.KSP object at ...>
    """
    PETSc = petsc()
    ksp = PETSc.KSP().create(comm)
    prefix = f"{tag}_{next(_prefix_counter)}_"
    ksp.setOptionsPrefix(prefix)
    database = PETSc.Options()
    names: list[str] = []
    try:
        for key, value in options.items():
            database.setValue(prefix + key, value)
            names.append(prefix + key)
    except Exception:
        remove_options(names)
        ksp.destroy()
        raise
    return ksp, names


def remove_options(names: list[str]) -> None:
    """Delete the named entries from PETSc's options database."""
    database = petsc().Options()
    for name in names:
        database.delValue(name)
