"""Lanczos with full re-orthogonalisation, Ritz pairs, and DCDM's Ritz right-hand-side dataset.

The dataset follows docs/methods/dcdm.md: with Ritz pairs ``(θ_j, v_j)`` of ``A`` (ascending, the
near-null ones ``θ < null_tol · θ_max`` dropped), each sample is ``b = Σ_j c_j v_j / ||·||`` with
``c_j = weight · N(0, 1)`` for the lowest ``m/2 + extra`` Ritz vectors (``weight = 9``,
``extra = m/20`` by default) and ``c_j = N(0, 1)`` for the rest, so the low end of the spectrum,
which CG handles worst, dominates. Samples are written to disk in float32 chunks, seeded.

Two additions to the paper's recipe. ``support`` (the fluid mask of a pressure system) starts
Lanczos from ``A (support · g)``: ``A`` is block diagonal between fluid cells and the decoupled
identity rows of solid/air cells, so every Ritz vector, hence every sample, then lives on the fluid
cells, like the residuals DCDM meets (without it one Ritz vector mixes in solid-cell content that
no direction can reduce). And each sample's energy ``bᵀA⁻¹b`` is stored, for the energy-norm
training loss of ``pdesolve.train.dcdm_training``. The validation energies are always exact
(block CG to a relative residual of 1e-6, which leaves an energy error ``||e||²_A`` below
``κ·1e-12`` relative; semi-definite consistent systems included), so reported validation losses
are exact. For the training split, ``energies="ritz"`` (default) takes the
Galerkin value ``Σ c_j² / θ_j / ||c||²`` of the Ritz basis instead, a lower bound that is exact
when ``A⁻¹b`` lies in the Krylov space; it only sets each sample's weight in the loss, costs
nothing, and is close because the lowest Ritz pairs, which dominate the energy, converge first;
``energies="cg"`` solves for the training samples too (hundreds of products per chunk).

>>> import scipy.sparse as sp
>>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(50, 50), format="csr")
>>> theta, V, res = ritz_pairs(A, 50, seed=0)
>>> exact = 2 - 2 * np.cos(np.pi * np.arange(1, 51) / 51)
>>> bool(np.allclose(theta, exact, atol=1e-10))
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp


def lanczos(
    A: sp.spmatrix | np.ndarray, steps: int, seed: int = 0, v0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps with full (twice-applied) re-orthogonalisation.

    Returns ``alpha`` (k,), ``beta`` (k,) (``beta[j]`` couples ``q_j`` and ``q_{j+1}``; the last
    one is the residual norm) and ``Q`` (k, n), orthonormal rows; ``k < steps`` when an invariant
    subspace is found. The default start vector is ``A`` times a seeded Gaussian (so it has no
    component in the null space of a singular ``A``).
    """
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"A must be square, got {A.shape}")
    if not 1 <= steps <= n:
        raise ValueError(f"steps must be in [1, {n}], got {steps!r}")
    q = A @ np.random.default_rng(seed).standard_normal(n) if v0 is None else np.asarray(v0, float)
    q = q / np.linalg.norm(q)
    Q = np.zeros((steps, n))
    alpha, beta = np.zeros(steps), np.zeros(steps)
    scale = 0.0
    for j in range(steps):
        Q[j] = q
        w = A @ q
        alpha[j] = q @ w
        w -= alpha[j] * q
        if j:
            w -= beta[j - 1] * Q[j - 1]
        for _ in range(2):
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        scale = max(scale, abs(alpha[j]), beta[j])
        if beta[j] <= 1e-12 * scale:
            return alpha[: j + 1], beta[: j + 1], Q[: j + 1]
        q = w / beta[j]
    return alpha, beta, Q


def ritz_pairs(
    A: sp.spmatrix | np.ndarray, steps: int, seed: int = 0, v0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values (ascending), Ritz vectors (n × k) and residual norms ``||A v - θ v||``.

    The residual norms come from the Lanczos relation, ``|β_k s_{k,i}|``.
    """
    alpha, beta, Q = lanczos(A, steps, seed, v0)
    theta, S = sla.eigh_tridiagonal(alpha, beta[:-1])
    return theta, Q.T @ S, np.abs(beta[-1] * S[-1])


def spectral_weights(count: int, low: int, weight: float = 9.0) -> np.ndarray:
    """Coefficient scales: ``weight`` for the first ``low`` (lowest) Ritz vectors, 1 for the rest.

    >>> spectral_weights(5, 2).tolist()
    [9.0, 9.0, 1.0, 1.0, 1.0]
    """
    w = np.ones(count)
    w[: min(low, count)] = weight
    return w


def write_ritz_dataset(
    A: sp.spmatrix,
    out_dir: str | os.PathLike,
    samples: int,
    lanczos_steps: int,
    extra: int | None = None,
    weight: float = 9.0,
    chunk: int = 200,
    val_fraction: float = 0.1,
    null_tol: float = 1e-8,
    seed: int = 0,
    support: np.ndarray | None = None,
    energies: str | None = "ritz",
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``samples`` unit-norm Ritz right-hand sides to ``out_dir`` in float32 chunks.

    Chunk files ``train_*.npy`` and ``val_*.npy`` hold disjoint samples (the last
    ``val_fraction`` of them are validation, in their own files: no leakage); ``meta.json``
    records the settings, the Ritz values and the file lists. ``support`` restricts the samples
    to a set of unknowns that ``A`` does not couple to the rest (see the module docstring);
    ``energies`` ("ritz", "cg" or None) also writes ``bᵀA⁻¹b`` of every sample (float64,
    ``energy_{split}.npy``; "ritz" only for the training split, see the module docstring).
    Returns the metadata.
    """
    if energies not in ("ritz", "cg", None):
        raise ValueError(f"energies must be 'ritz', 'cg' or None, got {energies!r}")
    if samples < 2 or chunk < 1:
        raise ValueError("need samples >= 2 and chunk >= 1")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v0 = None
    if support is not None:
        support = np.asarray(support, dtype=bool).ravel()
        if support.shape != (A.shape[0],) or not support.any():
            raise ValueError(f"support must be a non-empty mask of {A.shape[0]} unknowns")
        v0 = A @ (support * np.random.default_rng(seed).standard_normal(A.shape[0]))
    theta, V, res = ritz_pairs(A, lanczos_steps, seed, v0=v0)
    keep = theta > null_tol * theta.max()
    theta, V, res = theta[keep], V[:, keep], res[keep]
    m = len(theta)
    extra = max(lanczos_steps // 20, 0) if extra is None else extra
    low = min(m // 2 + extra, m)
    scales = spectral_weights(m, low, weight)
    rng = np.random.default_rng(seed + 1)
    n_val = max(1, round(val_fraction * samples))
    files: dict[str, list[str]] = {"train": [], "val": []}
    for split, total in (("train", samples - n_val), ("val", n_val)):
        energy = []
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            C = rng.standard_normal((size, m)) * scales
            B = C @ V.T
            B /= np.linalg.norm(B, axis=1, keepdims=True)
            B32 = B.astype(np.float32)
            name = f"{split}_{len(files[split]):05d}.npy"
            np.save(out / name, B32)
            files[split].append(name)
            if energies == "cg" or (energies and split == "val"):  # of the stored float32
                B = B32.astype(np.float64)
                energy.append(np.einsum("ij,ji->i", B, block_cg(A, B.T, rtol=1e-6)))
            elif energies == "ritz":  # V orthonormal: ||V c|| = ||c||
                energy.append(np.sum(C**2 / theta, axis=1) / np.sum(C**2, axis=1))
        if energies:
            np.save(out / f"energy_{split}.npy", np.concatenate(energy))
    meta = {
        "samples": samples, "train": samples - n_val, "val": n_val, "n": int(A.shape[0]),
        "lanczos_steps": lanczos_steps, "ritz_kept": m, "low": low, "weight": weight,
        "seed": seed, "ritz_values": theta.tolist(), "ritz_residuals": res.tolist(),
        "files": files, "support": None if support is None else int(support.sum()),
        "energies": energies, "info": info,
    }  # fmt: skip
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, out / "meta.json")
    return meta


def block_cg(
    A: sp.spmatrix, B: np.ndarray, rtol: float = 1e-8, maxiter: int | None = None
) -> np.ndarray:
    """``A⁻¹ B`` column by column with CG run on all columns at once (``B``: n × s).

    For a consistent semi-definite system it gives the minimum-norm-like solution in the range
    (the iterates stay in the Krylov space of ``b``); columns stop updating once converged.
    """
    B = np.asarray(B, dtype=np.float64)
    X = np.zeros_like(B)
    R = B.copy()
    P = R.copy()
    rr = np.einsum("ij,ij->j", R, R)
    target = rtol**2 * rr
    for _ in range(maxiter or 10 * A.shape[0]):
        active = rr > target
        if not active.any():
            break
        AP = A @ P
        pap = np.einsum("ij,ij->j", P, AP)
        alpha = np.where(active, rr / np.where(pap > 0, pap, 1.0), 0.0)
        X += alpha * P
        R -= alpha * AP
        rr_new = np.einsum("ij,ij->j", R, R)
        P = R + np.where(active, rr_new / np.where(rr > 0, rr, 1.0), 0.0) * P
        rr = rr_new
    return X


def load_split(
    data_dir: str | os.PathLike, split: str, energy: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """All samples of ``split`` ("train" or "val") as one float32 array (n_samples, n).

    With ``energy=True`` also their ``bᵀA⁻¹b`` (float64), when the dataset stored them.
    """
    data_dir = Path(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    if split not in meta["files"]:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    data = np.concatenate([np.load(data_dir / f) for f in meta["files"][split]])
    if not energy:
        return data
    path = data_dir / f"energy_{split}.npy"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(data_dir)!r} holds no sample energies (written by write_ritz_dataset with "
            "energies='ritz' or 'cg'); regenerate it or train with loss='residual'"
        )
    return data, np.load(path)
