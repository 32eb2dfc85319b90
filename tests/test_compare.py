"""``pdesolve compare``: report files, one row per (problem, size, solver), failures, resume."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import pdesolve
from pdesolve.compare import compare, growth_exponent, load_config


def _config(out: Path, **extra) -> dict:
    overrides = [f"out={out}", "problems=[poisson2d]", "sizes=[15,16]",
                 "solvers={cg+gamg: {solver: petsc_cg, pc: gamg}, cg: {solver: petsc_cg}}",
                 "exclude=[petsc_dcdm,hybrid]"]  # fmt: skip
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(overrides)


def _rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_compare_writes_every_report_file_with_one_row_each(tmp_path):
    out = tmp_path / "report"
    folder, _ = compare(_config(out), progress=False)
    assert folder == out
    for name in ("results.csv", "report.md", "time_vs_size.png", "residuals_poisson2d.png"):
        assert (out / name).is_file(), name
    expected = {"cg+gamg", "cg"} | (set(pdesolve.list_solvers()) - {"petsc_cg", "petsc_dcdm",
                                                                    "hybrid"})  # fmt: skip
    table = _rows(out)
    keys = [(r["size"], r["solver"]) for r in table]
    assert len(keys) == len(set(keys)) == 2 * len(expected)
    assert {s for _, s in keys} == expected
    by_key = {(r["size"], r["solver"]): r for r in table}
    # n = 16 is not 2^k - 1: multigrid fails there, recorded with its error; the rest ran
    assert by_key[("16", "multigrid")]["status"] == "failed"
    assert "2^k - 1" in by_key[("16", "multigrid")]["error_message"]
    assert by_key[("15", "multigrid")]["status"] == "ok"
    assert float(by_key[("15", "cg+gamg")]["ratio_to_baseline"]) == pytest.approx(1.0)
    for r in table:
        if r["status"] == "ok":
            assert float(r["relative_residual"]) <= 1e-8 * (1 + 1e-9)
    report = (out / "report.md").read_text()
    assert "## poisson2d, n = 15" in report and "failed:" in report


def test_existing_folder_is_refused_and_resume_adds_no_duplicates(tmp_path):
    out = tmp_path / "report"
    compare(_config(out, exclude="[petsc_dcdm,hybrid,dcdm,deflated_cg,multigrid]"),
            progress=False)  # fmt: skip
    first = _rows(out)
    with pytest.raises(SystemExit, match="exists; pass resume=true"):
        compare(_config(out), progress=False)
    # an interrupted run: the last two rows never got written
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(first[0]))
        writer.writeheader()
        writer.writerows(first[:-2])
    compare(_config(out, resume="true", exclude="[petsc_dcdm,hybrid,dcdm,deflated_cg,multigrid]"),
            progress=False)  # fmt: skip
    again = _rows(out)
    assert sorted((r["size"], r["solver"]) for r in again) == \
        sorted((r["size"], r["solver"]) for r in first)  # fmt: skip


def test_strict_exit_status_and_clear_errors(tmp_path):
    script = str(Path(sys.executable).with_name("pdesolve"))
    base = [script, "compare", "problems=[poisson2d]", "sizes=[16]",
            "solvers={cg: {solver: petsc_cg}}", "exclude=[petsc_dcdm,hybrid,dcdm,fcg,scipy_cg,"
            "deflated_cg,petsc_cg]"]  # fmt: skip
    lenient = subprocess.run([*base, f"out={tmp_path / 'a'}"], capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert lenient.returncode == 0, lenient.stderr[-2000:]
    assert "(1 failed" in lenient.stdout  # multigrid at n = 16
    strict = subprocess.run([*base, f"out={tmp_path / 'b'}", "strict=true"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert strict.returncode == 1
    bad = subprocess.run([script, "compare", "nosuch=1"], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert bad.returncode != 0 and "unknown option 'nosuch'" in bad.stderr
    with pytest.raises(SystemExit, match="unknown solver 'petsc_gc'"):
        compare(load_config([f"out={tmp_path / 'c'}", "solvers={x: {solver: petsc_gc}}"]))


def test_growth_exponent_fits_a_power_law():
    assert growth_exponent([1e3, 1e4, 1e5], [1.0, 10**1.5, 10**3]) == pytest.approx(1.5)


def test_help_lists_every_option_with_its_default(capsys):
    from pdesolve.compare import main

    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "resume=true" in text
    assert [key for key in load_config([]) if f"\n{key}:" not in text] == []
