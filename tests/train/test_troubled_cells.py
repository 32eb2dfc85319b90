"""Troubled-cell data: exact labels, imbalance, and detectors trained on it."""

import numpy as np
import pytest
import torch

from pdesolve.discretize.finite_volume import FVGrid, solve_burgers
from pdesolve.nn.classifier import FeatureClassifier
from pdesolve.train.imbalance import TrainConfig, binary_metrics, predict, train_classifier
from pdesolve.train.troubled_cells import (
    burgers_snapshots,
    detector_indicator,
    piecewise_smooth_profile,
    stencil_features,
    troubled_cell_dataset,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_known_discontinuities_are_labelled_exactly():
    grid = FVGrid(0.0, 1.0, 10)
    assert grid.cells_containing(0.35).tolist() == [3]
    assert grid.cells_containing(0.5).tolist() == [4, 5]  # on a face: both neighbours
    periodic = FVGrid(-1.0, 1.0, 200)
    assert periodic.cells_containing(0.0).tolist() == [99, 100]
    assert periodic.cells_containing(-1.0).tolist() == [0, 199]  # the periodic face


def test_piecewise_profiles_jump_where_labelled():
    rng = np.random.default_rng(0)
    for _ in range(20):
        u, mask = piecewise_smooth_profile(rng, 100)
        assert 1 <= mask.sum() <= 6
        # the labelled cell holds the jump: its average lies between its neighbours'
        for i in np.flatnonzero(mask):
            if 0 < i < 99 and not (mask[i - 1] or mask[i + 1]):
                lo, hi = sorted((u[i - 1], u[i + 1]))
                assert lo - 0.2 <= u[i] <= hi + 0.2


def test_burgers_snapshot_labels_sit_on_the_numerical_shock():
    snaps = burgers_snapshots(np.random.default_rng(3), runs=6, per_run=3, n_cells=100)
    shocked = [(u, m, info) for u, m, info in snaps if info["shock"] is not None]
    assert len(shocked) >= 6
    for u, mask, info in shocked:
        jump = np.abs(np.roll(u, -1) - np.roll(u, 1))  # largest central difference
        assert mask.sum() in (1, 2)
        distance = np.abs(np.flatnonzero(mask)[:, None] - np.argmax(jump))
        assert min(distance.min(), 100 - distance.max()) <= 1, info
    assert any(info["shock"] is None for _, _, info in snaps)  # pre-shock snapshots too


def test_dataset_imbalance_and_features():
    data = troubled_cell_dataset(n_piecewise=30, n_burgers_runs=5, ratio=None, seed=0)
    assert data.imbalance > 20  # natural imbalance of 100-cell profiles
    sub = troubled_cell_dataset(n_piecewise=30, n_burgers_runs=5, ratio=20, seed=0)
    assert sub.imbalance == pytest.approx(20, abs=0.05)
    assert (sub.y == 1).sum() == (data.y == 1).sum()  # every troubled cell kept
    assert np.abs(data.x).max() <= 1.0 + 1e-6 and np.all(data.x[:, 2] == 0)
    assert stencil_features(np.ones(7)).tolist() == [[0.0] * 5] * 7
    with pytest.raises(ValueError, match="odd"):
        stencil_features(np.ones(7), width=4)


@pytest.fixture(scope="module")
def detectors():
    train = troubled_cell_dataset(n_piecewise=150, n_burgers_runs=10, ratio=20, seed=0)
    test = troubled_cell_dataset(n_piecewise=100, n_burgers_runs=10, ratio=None, seed=1)
    out = {}
    for strategy, seeds in (("erm", 3), ("procrustean", 3), ("reweight", 1)):
        for seed in range(seeds):
            torch.manual_seed(seed)
            net = FeatureClassifier(5, 2, width=32, depth=2)
            cfg = TrainConfig(strategy, epochs=15, seed=seed, batch_size=64)
            train_classifier(net, train.x, train.y, cfg, progress=False)
            out[strategy, seed] = (net, binary_metrics(predict(net, test.x), test.y))
    return out


def test_detectors_on_imbalanced_cells(detectors):
    # measured (train 1:20, test at the natural ~1:60, seeds 0-2): troubled-cell recall ERM
    # 0.891 / 0.896 / 0.887, mixing 0.910 / 0.896 / 0.905 -- no reliable gain; precision ERM
    # 0.74-0.77, mixing 0.69-0.72 (lower); re-weighting recall 0.964 (precision 0.59)
    recall = {s: np.mean([detectors[s, k][1]["recall"] for k in range(3)])
              for s in ("erm", "procrustean")}  # fmt: skip
    precision = {s: np.mean([detectors[s, k][1]["precision"] for k in range(3)])
                 for s in ("erm", "procrustean")}  # fmt: skip
    assert abs(recall["procrustean"] - recall["erm"]) < 0.03
    assert precision["procrustean"] < precision["erm"] - 0.02
    assert detectors["reweight", 0][1]["recall"] > recall["erm"] + 0.04
    assert min(recall.values()) > 0.85


def test_detector_inside_the_solver_limits_near_the_shock(detectors):
    net = detectors["erm", 0][0]
    grid = FVGrid(-1.0, 1.0, 100)
    u0 = grid.averages(lambda x: -np.sin(np.pi * x))
    res = solve_burgers(u0, grid, 0.8, indicator=detector_indicator(net))
    assert res.u.max() <= 1.0 + 0.05  # no visible overshoot
    assert res.limited_fraction < 0.1  # limits a few cells, not all
