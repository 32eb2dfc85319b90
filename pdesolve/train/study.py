"""Training studies on imbalanced data, run from a config: ``imbalance_digits`` and
``troubled_cells`` (``configs/experiment/<name>.yaml``, key ``study``).

:func:`digits_study` trains every strategy on step-imbalanced and long-tailed digits
(:func:`~pdesolve.train.imbalance.imbalanced_digits`) and measures balanced and per-class test
accuracy; :func:`troubled_cell_study` trains troubled-cell detectors
(:mod:`pdesolve.train.troubled_cells`) and measures recall, precision and balanced accuracy of the
troubled class. A strategy name ``"procrustean+<base>"`` adds feature mixing to ``<base>``.
:func:`run_study` is the command-line entry: it runs the study a config names and writes
``result.json`` and ``table.md`` into the run folder.

>>> rows, _ = digits_study(kinds=["step"], ratios=[10], seeds=[0], strategies=["erm"],
...                        train={"epochs": 2})
>>> rows[0]["strategy"], len(rows[0]["per_class"]), 0.1 < rows[0]["balanced_accuracy"] <= 1
('erm', 10, True)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pdesolve.nn.classifier import FeatureClassifier
from pdesolve.train.imbalance import (
    TrainConfig,
    binary_metrics,
    imbalanced_digits,
    per_class_accuracy,
    predict,
    train_classifier,
)

__all__ = ["STUDIES", "config_for", "digits_study", "run_study", "study_summary",
           "troubled_cell_study"]  # fmt: skip


def config_for(strategy: str, seed: int, train: Mapping[str, Any] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a study strategy name (``"procrustean+logit_adjust"``: the
    logit-adjusted loss with feature mixing).

    >>> cfg = config_for("procrustean+logit_adjust", 3)
    >>> cfg.strategy, cfg.uses_mixing, cfg.seed
    ('logit_adjust', True, 3)
    """
    options = dict(train or {})
    if strategy.startswith("procrustean+"):
        return TrainConfig(strategy.split("+", 1)[1], seed=seed, mixing=True, **options)
    return TrainConfig(strategy, seed=seed, **options)


def digits_study(
    kinds: Sequence[str] = ("step", "long_tailed"),
    ratios: Sequence[float] = (10, 20),
    seeds: Sequence[int] = (0, 1, 2),
    strategies: Sequence[str] = ("erm", "procrustean"),
    model: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    keep_history: bool = False,
    with_validation: bool = False,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[tuple, list]]:
    """One row per (kind, ratio, strategy, seed): balanced, major, minor and per-class test
    accuracy, final training accuracy; and the histories keyed by (kind, ratio, strategy, seed)
    when ``keep_history`` (with per-epoch test accuracy when ``with_validation``)."""
    model_opts = {"kind": "mlp", "width": 64, "depth": 2, **dict(model or {})}
    for s in strategies:
        config_for(s, 0, train)  # fail on a bad name or option before any training
    rows, histories = [], {}
    for kind in kinds:
        for ratio in ratios:
            for seed in seeds:
                x, y, xt, yt = imbalanced_digits(kind, ratio, seed=seed)
                if model_opts["kind"] == "cnn":
                    x, xt = x.reshape(-1, 8, 8), xt.reshape(-1, 8, 8)
                counts = np.bincount(y, minlength=10)
                major = counts >= np.median(counts)
                for strategy in strategies:
                    torch.manual_seed(seed)
                    in_shape = (8, 8) if model_opts["kind"] == "cnn" else 64
                    net = FeatureClassifier(in_shape, 10, **model_opts)
                    t0 = time.process_time()
                    val = {"x_val": xt, "y_val": yt} if with_validation else {}
                    res = train_classifier(net, x, y, config_for(strategy, seed, train),
                                           progress=progress, **val)  # fmt: skip
                    seconds = time.process_time() - t0
                    acc = per_class_accuracy(predict(net, xt), yt, 10)
                    rows.append({
                        "kind": kind, "ratio": float(ratio), "strategy": strategy, "seed": seed,
                        "balanced_accuracy": float(acc.mean()),
                        "major_accuracy": float(acc[major].mean()),
                        "minor_accuracy": float(acc[~major].mean()),
                        "train_accuracy": float(np.mean(res.history[-1]["train_accuracy"])),
                        "per_class": [round(float(a), 4) for a in acc],
                        "cpu_seconds": seconds,
                    })  # fmt: skip
                    if keep_history:
                        histories[kind, float(ratio), strategy, seed] = res.history
    return rows, histories


def troubled_cell_study(
    seeds: Sequence[int] = (0, 1, 2),
    strategies: Sequence[str] = ("erm", "procrustean"),
    data: Mapping[str, Any] | None = None,
    test_data: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[tuple, Any]]:
    """One row per (strategy, seed, test source): troubled-class recall, precision, F1 and
    balanced accuracy on held-out data at its natural imbalance; and the trained networks."""
    from pdesolve.train.troubled_cells import troubled_cell_dataset

    data_opts = {"n_piecewise": 300, "n_burgers_runs": 40, "ratio": 20.0, "seed": 0,
                 **dict(data or {})}  # fmt: skip
    test_opts = {"n_piecewise": 200, "n_burgers_runs": 20, "ratio": None, "seed": 1000,
                 **dict(test_data or {})}  # fmt: skip
    model_opts = {"kind": "mlp", "width": 32, "depth": 2, **dict(model or {})}
    train_opts = {"epochs": 30, "batch_size": 64, **dict(train or {})}
    for s in strategies:
        config_for(s, 0, train_opts)
    tr = troubled_cell_dataset(**data_opts)
    te = troubled_cell_dataset(**test_opts)
    rows, nets = [], {}
    for strategy in strategies:
        for seed in seeds:
            torch.manual_seed(seed)
            net = FeatureClassifier(tr.x.shape[1], 2, **model_opts)
            t0 = time.process_time()
            train_classifier(net, tr.x, tr.y, config_for(strategy, seed, train_opts),
                             progress=progress)  # fmt: skip
            seconds = time.process_time() - t0
            pred = predict(net, te.x)
            for source in ("all", "piecewise", "burgers"):
                m = np.ones(len(te.y), bool) if source == "all" else te.source == source
                if not m.any():
                    continue
                rows.append({"strategy": strategy, "seed": seed, "test": source,
                             **binary_metrics(pred[m], te.y[m]),
                             "troubled": int(te.y[m].sum()), "cells": int(m.sum()),
                             "cpu_seconds": seconds})  # fmt: skip
            nets[strategy, seed] = net
    return rows, nets


def summarize(rows: list[dict[str, Any]], keys: Sequence[str], metrics: Sequence[str]):
    """Mean and standard deviation over seeds of ``metrics``, grouped by ``keys``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        row = dict(zip(keys, key, strict=True))
        row["seeds"] = len(rs)
        for m in metrics:
            v = np.array([r[m] for r in rs], dtype=float)
            row[m] = float(v.mean())
            row[m + "_std"] = float(v.std())
        out.append(row)
    return out


def _digits(cfg: Mapping[str, Any]) -> tuple[list, list]:
    rows, _ = digits_study(cfg.get("kinds", ("step", "long_tailed")), cfg.get("ratios", (10, 20)),
                           cfg.get("seeds", (0, 1, 2)), cfg.get("strategies", ("erm",)),
                           cfg.get("model"), cfg.get("train"))  # fmt: skip
    metrics = ("balanced_accuracy", "major_accuracy", "minor_accuracy")
    return rows, summarize(rows, ("kind", "ratio", "strategy"), metrics)


def _troubled(cfg: Mapping[str, Any]) -> tuple[list, list]:
    rows, _ = troubled_cell_study(cfg.get("seeds", (0, 1, 2)), cfg.get("strategies", ("erm",)),
                                  cfg.get("data"), cfg.get("test_data"), cfg.get("model"),
                                  cfg.get("train"))  # fmt: skip
    metrics = ("recall", "precision", "f1", "balanced_accuracy")
    return rows, summarize(rows, ("test", "strategy"), metrics)


STUDIES = {"imbalance_digits": _digits, "troubled_cells": _troubled}


def run_study(
    cfg: Any, output_dir: str | os.PathLike | None, config: str | None = None
) -> dict[str, Any]:
    """Run the study named by ``cfg.study.name`` (an OmegaConf config or a dict) and write
    ``result.json``, ``table.csv``/``table.md`` and ``config.yaml`` (``config``, else the resolved
    ``cfg``) into ``output_dir``, numbered (``result-2.json``, ...) when an earlier run's files are
    there; returns the record."""
    from omegaconf import DictConfig, OmegaConf

    from pdesolve.io import json_text, markdown_table, table_csv, write_run_files

    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    study = dict(data["study"])
    name = study.pop("name", None)
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    torch.set_num_threads(int(study.pop("threads", 1)))
    t0 = time.perf_counter()
    rows, summary = STUDIES[name](study)
    from pdesolve.io import versions

    record = {"study": {"name": name, **study}, "summary": summary, "rows": rows,
              "timings": {"total": time.perf_counter() - t0}, "versions": versions(),
              "seed": data.get("seed", 0)}  # fmt: skip
    if output_dir is not None:
        if config is None:
            config = OmegaConf.to_yaml(OmegaConf.create(data), resolve=True)
        write_run_files(output_dir, {
            "result.json": lambda tmp: tmp.write_text(json_text(record)),
            "table.csv": lambda tmp: tmp.write_text(table_csv(summary)),
            "table.md": lambda tmp: tmp.write_text(markdown_table(summary)),
            "config.yaml": lambda tmp: tmp.write_text(config),
        })  # fmt: skip
    return record


def study_summary(record: dict[str, Any], output_dir: str | None) -> str:
    """The lines the command line prints after :func:`run_study`."""
    first = [k for k in record["summary"][0] if not k.endswith("_std") and k != "seeds"]
    lines = [f"study {record['study']['name']}: {len(record['rows'])} runs in "
             f"{record['timings']['total']:.1f} s"]  # fmt: skip
    for row in record["summary"]:
        lines.append("  " + ", ".join(
            f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} {row[k]}" for k in first
        ))  # fmt: skip
    if output_dir:
        lines.append(f"results in {output_dir}")
    return "\n".join(lines)
