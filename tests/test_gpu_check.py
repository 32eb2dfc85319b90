"""The prepared GPU check (experiments/gpu/check.py) and the device errors of the neural parts."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pdesolve
from pdesolve.nn.checkpoint import check_device, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "experiments" / "gpu" / "check.py"

#: what the GPU machine lacks; the check and the neural parts must run without them
ABSENT = ("petsc4py", "meshio", "hydra", "omegaconf", "pywt")

#: a python -c prologue that makes importing ABSENT fail, as on a machine without them
BLOCK = f"""
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {ABSENT!r}:
            raise ModuleNotFoundError(f'No module named {{name!r}} (blocked)')
sys.meta_path.insert(0, _Absent())
for _m in {ABSENT!r}:
    sys.modules.pop(_m, None)
"""


def _blocked(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code, *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        timeout=1800,  # a guard against a hang only: a loaded machine is slow
    )  # fmt: skip


def test_block_prologue_blocks():
    out = _blocked("import meshio")
    assert out.returncode != 0 and "blocked" in out.stderr


def test_cpu_mode_runs_without_optional_deps_and_writes_its_table(tmp_path):
    out = tmp_path / "run"
    code = (
        "import runpy; sys.argv = ['check.py', '--out', sys.argv[1], '--tiny']; "
        f"runpy.run_path({str(CHECK)!r}, run_name='__main__')"
    )
    proc = _blocked(code, str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0].startswith("device: ")
    record = json.loads((out / "check.json").read_text())
    assert record["mode"] == "tiny" and record["devices"] == ["cpu"]
    rows = {r["component"]: r for r in record["rows"]}
    expected = {
        "pinn_raf_agree", "pinn_raf_train", "dcdm2d_inference", "dcdm2d_solve",
        "dcdm3d_inference", "dcdm3d_solve", "prolongation_net", "firenet", "curveball_step",
        "unet_forward", "unet_train_step", "dcdm_trainer_step", "prolongation_trainer",
        "imbalance_trainer_step", "checkpoint_cross_device", "dcdm3d_time_to_solution",
    }  # fmt: skip
    assert expected <= set(rows)
    tts = [r for r in record["rows"] if r["component"] == "dcdm3d_time_to_solution"]
    assert {(r["vectors"], r["precision"]) for r in tts} == {
        ("device", "float32"), ("device", "tf32"), ("host", "float32")}
    assert all(r["device"] == "cpu" and r["iterations"] < 300 for r in tts)
    assert all(r["sanity"] and "ERROR" not in r["note"] for r in record["rows"])
    # one device: nothing to compare, except the checkpoint round trip
    others = [r for r in record["rows"] if r["component"] != "checkpoint_cross_device"]
    assert all(r["agree"] is None for r in others)
    assert rows["dcdm2d_solve"]["iterations"]["cpu"] < 300
    assert rows["checkpoint_cross_device"]["difference"] == 0.0
    md = (out / "check.md").read_text()
    assert "No CUDA device was available" in md and "| component | size |" in md
    assert md.count("\n| ") >= len(expected) + 1


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_device_path_agrees_with_itself(gpu_check, tmp_path):
    """The GPU half's code path, run on the CPU: every difference is exactly zero."""
    out = tmp_path / "two"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems: one thread is fastest on a shared machine
    try:
        code = gpu_check.main(["--out", str(out), "--tiny", "--gpu-device", "cpu",
                               "--only", "dcdm2d,checkpoints"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    rows = json.loads((out / "check.json").read_text())["rows"]
    compared = [r for r in rows if r["difference"] is not None]
    assert len(compared) >= 4
    assert all(r["agree"] and r["difference"] == 0.0 for r in compared)
    assert all(r["cuda_s"] > 0 and r["cpu_s"] > 0 for r in rows if r["cuda_s"] is not None)


def test_check_refuses_a_non_empty_folder(gpu_check, tmp_path, capsys):
    keep = tmp_path / "user.txt"
    keep.write_text("mine")
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--out", str(tmp_path), "--only", "checkpoints"])
    assert info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path / "new"), "--only", "nothing"])
    assert not (tmp_path / "new").exists()
    assert keep.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["user.txt"]


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _cuda_error(fn) -> str:
    with pytest.raises(ValueError, match="CUDA") as info:
        fn()
    return str(info.value)


def test_cuda_without_cuda_is_a_clear_error_in_every_solver_and_trainer(no_cuda, tmp_path):
    from pdesolve.fitting import get_fit_method
    from pdesolve.nn.prolongation import load_prolongation_net
    from pdesolve.recovery import get_recovery_method, list_recovery_methods
    from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT
    from pdesolve.train.pinn import PINNTrainer
    from pdesolve.train.prolongation_training import TrainConfig, train

    for name in ("dcdm", "petsc_dcdm"):
        msg = _cuda_error(lambda name=name: pdesolve.get_solver(name, device="cuda"))
        assert "device='cuda'" in msg, name
    assert set(list_recovery_methods()) >= {"firenet", "ista", "fista", "chambolle_pock"}
    for name in list_recovery_methods():
        _cuda_error(lambda name=name: get_recovery_method(name, device="cuda"))
    _cuda_error(lambda: get_fit_method("pinn", device="cuda"))
    _cuda_error(lambda: pdesolve.get_preconditioner("dcdm_network", device="cuda"))
    _cuda_error(lambda: pdesolve.get_preconditioner("pinn_correction", device="cuda"))
    _cuda_error(lambda: pdesolve.get_solver("hybrid", pc={"name": "pinn_correction",
                                                          "device": "cuda:0"}))
    problem = pdesolve.get_problem("poisson", dim=1, solution="sine")
    _cuda_error(lambda: PINNTrainer(problem, steps=1, device="cuda"))
    _cuda_error(lambda: train(TrainConfig(samples=2, device="cuda")))
    _cuda_error(lambda: load_prolongation_net(str(DEFAULT_CHECKPOINT), map_location="cuda"))
    path = tmp_path / "c.pt"
    save_checkpoint(path, step=0, config={}, model=torch.nn.Linear(2, 1))
    _cuda_error(lambda: load_checkpoint(path, map_location="cuda"))
    # the error comes first: nothing was trained or written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_check_device_accepts_what_exists_and_names_bad_devices():
    check_device("cpu")
    check_device(torch.device("cpu"))
    check_device(lambda storage, loc: storage)
    with pytest.raises(ValueError, match="not a torch device"):
        check_device("gpu0")


def test_checkpoint_loads_with_a_map_location(tmp_path):
    """A checkpoint whose tensors were mapped to the CPU on saving loads through map_location."""
    from pdesolve.nn.dcdm_cnn import DCDMNet, load_dcdm_model, save_dcdm_model
    from pdesolve.nn.prolongation import load_prolongation_net
    from pdesolve.solvers.multigrid import DEFAULT_CHECKPOINT

    torch.manual_seed(0)
    model = DCDMNet(2, levels=2)
    save_dcdm_model(tmp_path / "m.pt", model)
    x = torch.randn(1, 1, 16, 16)
    outs = []
    for where in ("cpu", torch.device("cpu"), lambda storage, loc: storage.cpu()):
        loaded = load_dcdm_model(tmp_path / "m.pt", map_location=where)
        assert next(loaded.parameters()).device.type == "cpu"
        with torch.no_grad():
            outs.append(loaded(x))
    with torch.no_grad():
        ref = model(x)
    assert all(torch.equal(o, ref) for o in outs)
    a = load_prolongation_net(str(DEFAULT_CHECKPOINT), map_location=torch.device("cpu"))
    b = load_prolongation_net(str(DEFAULT_CHECKPOINT))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert all(bool(torch.isfinite(p).all()) for p in a.parameters())
