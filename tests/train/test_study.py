"""The imbalance studies run from their experiment configs."""

import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from pdesolve.cli import CONFIG_DIR
from pdesolve.train.study import run_study, study_summary


def composed(overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="config", overrides=overrides)


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_digits_study_from_its_config(tmp_path):
    cfg = composed(["+experiment=imbalance_digits", "study.kinds=[step]", "study.ratios=[10]",
                    "study.seeds=[0]", "study.strategies=[erm,procrustean+logit_adjust]",
                    "study.train.epochs=3"])  # fmt: skip
    record = run_study(cfg, tmp_path)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert [r["strategy"] for r in saved["rows"]] == ["erm", "procrustean+logit_adjust"]
    assert all(0.1 < r["balanced_accuracy"] <= 1.0 for r in record["rows"])
    assert (tmp_path / "table.md").read_text().count("\n") == 4
    assert "study imbalance_digits: 2 runs" in study_summary(record, str(tmp_path))
    run_study(cfg, tmp_path)  # never over an earlier run's files: this run's are numbered
    assert json.loads((tmp_path / "result.json").read_text()) == saved
    for name in ("result-2.json", "table-2.csv", "table-2.md", "config-2.yaml", "config.yaml"):
        assert (tmp_path / name).is_file(), name


def test_troubled_cell_study_from_its_config(tmp_path):
    cfg = composed(["+experiment=troubled_cells", "study.seeds=[0]", "study.strategies=[erm]",
                    "study.data.n_piecewise=20", "study.data.n_burgers_runs=2",
                    "study.test_data.n_piecewise=10", "study.test_data.n_burgers_runs=2",
                    "study.train.epochs=2"])  # fmt: skip
    record = run_study(cfg, tmp_path)
    assert {r["test"] for r in record["rows"]} == {"all", "piecewise", "burgers"}
    assert all(0.0 <= r["recall"] <= 1.0 for r in record["rows"])


def test_unknown_study_and_strategy_are_errors():
    with pytest.raises(ValueError, match="unknown study"):
        run_study({"study": {"name": "cifar"}}, None)
    with pytest.raises(ValueError, match="unknown strategy"):
        run_study({"study": {"name": "imbalance_digits", "strategies": ["focal"]}}, None)
