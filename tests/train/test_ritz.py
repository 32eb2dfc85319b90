"""Lanczos / Ritz pairs and the spectrally weighted right-hand-side dataset."""

import json

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import pdesolve
from pdesolve.train.ritz import block_cg, lanczos, load_split, ritz_pairs, write_ritz_dataset


def _laplacian_2d(n):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    I = sp.identity(n)
    return sp.kron(T, I) + sp.kron(I, T), 2 - 2 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1))


def test_ritz_values_match_laplacian_spectrum_ends():
    A, lam1 = _laplacian_2d(20)
    exact = np.sort(np.add.outer(lam1, lam1).ravel())
    exact_distinct = np.unique(np.round(exact, 10))
    theta, V, res = ritz_pairs(A.tocsr(), 120, seed=0)
    # extreme Ritz values converge first: the lowest and highest distinct eigenvalues
    assert abs(theta[0] - exact_distinct[0]) < 1e-10
    assert abs(theta[-1] - exact_distinct[-1]) < 1e-10
    assert abs(theta[1] - exact_distinct[1]) < 1e-8
    # Ritz residuals from the Lanczos relation agree with explicit ones, small when converged
    explicit = np.linalg.norm(A @ V - V * theta, axis=0)
    assert np.allclose(explicit, res, atol=1e-8)
    assert explicit[0] < 1e-8 and explicit[-1] < 1e-8


def test_lanczos_basis_orthonormal():
    A, _ = _laplacian_2d(15)
    _, _, Q = lanczos(A.tocsr(), 150, seed=1)
    assert np.abs(Q @ Q.T - np.eye(len(Q))).max() < 1e-12


def test_dataset_weighting_split_and_seed(tmp_path):
    system = pdesolve.get_problem("pressure_poisson", dim=2, n=12, geometry="sphere").discretize()
    meta = write_ritz_dataset(system.A, tmp_path / "a", samples=400, lanczos_steps=60, chunk=64,
                              seed=3)
    train, val = load_split(tmp_path / "a", "train"), load_split(tmp_path / "a", "val")
    assert train.shape == (360, 144) and val.shape == (40, 144) and train.dtype == np.float32
    assert np.allclose(np.linalg.norm(train, axis=1), 1, atol=1e-6)
    assert set(meta["files"]["train"]).isdisjoint(meta["files"]["val"])
    assert not (train[:, None, :] == val[None]).all(-1).any()  # no sample in both splits
    assert meta["low"] == meta["ritz_kept"] // 2 + 60 // 20
    # coefficients in the Ritz basis: the low block is 9x the high block in scale
    theta, V, _ = ritz_pairs(system.A, 60, seed=3)
    V = V[:, theta > 1e-8 * theta.max()]
    C = np.concatenate([train, val]).astype(float) @ V
    low = meta["low"]
    ratio = np.sqrt((C[:, :low] ** 2).mean() / (C[:, low:] ** 2).mean())
    assert 8.0 < ratio < 10.0
    meta2 = write_ritz_dataset(system.A, tmp_path / "b", samples=400, lanczos_steps=60, chunk=64,
                               seed=3)
    assert np.array_equal(load_split(tmp_path / "b", "train"), train)
    assert json.loads((tmp_path / "b" / "meta.json").read_text())["seed"] == meta2["seed"] == 3


def test_fluid_support_and_energies(tmp_path):
    system = pdesolve.get_problem("pressure_poisson", dim=2, n=12, geometry="obstacles",
                                  seed=2).discretize()  # fmt: skip
    fluid = system.metadata["fluid_mask"].ravel()
    assert not fluid.all()
    kw = {"samples": 60, "lanczos_steps": 40, "chunk": 25, "seed": 1, "support": fluid}
    meta = write_ritz_dataset(system.A, tmp_path / "cg", energies="cg", **kw)
    write_ritz_dataset(system.A, tmp_path / "ritz", **kw)
    train, energy = load_split(tmp_path / "cg", "train", energy=True)
    _, val_energy = load_split(tmp_path / "cg", "val", energy=True)
    assert meta["support"] == int(fluid.sum()) and meta["energies"] == "cg"
    # every Ritz sample lives on the fluid cells (A is block diagonal fluid / identity rows)
    val = load_split(tmp_path / "cg", "val")
    assert np.abs(np.concatenate([train, val])[:, ~fluid]).max() < 1e-6
    # the stored energies are b^T A^{-1} b of the stored float32 samples
    B = train.astype(float)
    exact = np.einsum("ij,ji->i", B, spla.spsolve(system.A.tocsc(), B.T))
    assert energy.shape == (54,) and val_energy.shape == (6,)
    assert np.allclose(energy, exact, rtol=1e-10)
    # the Ritz (Galerkin) energies: same samples, a lower bound, close to the exact ones
    ritz_train, ritz = load_split(tmp_path / "ritz", "train", energy=True)
    assert np.array_equal(ritz_train, train)
    assert np.all(ritz <= exact * (1 + 1e-6)) and np.all(ritz >= 0.7 * exact), (ritz / exact).min()


def test_block_cg_matches_direct_solve():
    A, _ = _laplacian_2d(10)
    B = np.random.default_rng(0).normal(size=(100, 5))
    X = block_cg(A.tocsr(), B, rtol=1e-12)
    assert np.abs(X - spla.spsolve(A.tocsc(), B)).max() < 1e-9
