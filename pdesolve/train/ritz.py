"""Lanczos with full re-orthogonalisation, Ritz pairs, and DCDM's Ritz right-hand-side dataset.

The dataset follows METHODS.md §3.3: with Ritz pairs ``(θ_j, v_j)`` of ``A`` (ascending, the
near-null ones ``θ < null_tol · θ_max`` dropped), each sample is ``b = Σ_j c_j v_j / ||·||`` with
``c_j = weight · N(0, 1)`` for the lowest ``m/2 + extra`` Ritz vectors (``weight = 9``,
``extra = m/20`` by default) and ``c_j = N(0, 1)`` for the rest, so the low end of the spectrum,
which CG handles worst, dominates. Samples are written to disk in float32 chunks, seeded.

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
    A: sp.spmatrix | np.ndarray, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values (ascending), Ritz vectors (n × k) and residual norms ``||A v - θ v||``.

    The residual norms come from the Lanczos relation, ``|β_k s_{k,i}|``.
    """
    alpha, beta, Q = lanczos(A, steps, seed)
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
) -> dict[str, Any]:
    """Write ``samples`` unit-norm Ritz right-hand sides to ``out_dir`` in float32 chunks.

    Chunk files ``train_*.npy`` and ``val_*.npy`` hold disjoint samples (the last
    ``val_fraction`` of them are validation, in their own files: no leakage); ``meta.json``
    records the settings, the Ritz values and the file lists. Returns the metadata.
    """
    if samples < 2 or chunk < 1:
        raise ValueError("need samples >= 2 and chunk >= 1")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    theta, V, res = ritz_pairs(A, lanczos_steps, seed)
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
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            C = rng.standard_normal((size, m)) * scales
            B = C @ V.T
            B /= np.linalg.norm(B, axis=1, keepdims=True)
            name = f"{split}_{len(files[split]):05d}.npy"
            np.save(out / name, B.astype(np.float32))
            files[split].append(name)
    meta = {
        "samples": samples, "train": samples - n_val, "val": n_val, "n": int(A.shape[0]),
        "lanczos_steps": lanczos_steps, "ritz_kept": m, "low": low, "weight": weight,
        "seed": seed, "ritz_values": theta.tolist(), "ritz_residuals": res.tolist(),
        "files": files,
    }  # fmt: skip
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, out / "meta.json")
    return meta


def load_split(data_dir: str | os.PathLike, split: str) -> np.ndarray:
    """All samples of ``split`` ("train" or "val") as one float32 array (n_samples, n)."""
    data_dir = Path(data_dir)
    meta = json.loads((data_dir / "meta.json").read_text())
    if split not in meta["files"]:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return np.concatenate([np.load(data_dir / f) for f in meta["files"][split]])
