"""Iterations that keep their vectors on the torch device: the same iterates as the host loop,
and nothing but the stopping rule's scalars crossing to the host inside the loop.

On the CPU the "device" is the CPU, so transfers are counted instead of timed
(``_support.TransferCounter``): each counted call is a host-device copy on a GPU.
"""

import numpy as np
import pytest
import torch
from _support import TransferCounter

import pdesolve

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def system2d():
    return pdesolve.get_problem("pressure_poisson", dim=2, n=16).discretize()


@pytest.fixture(scope="module")
def system3d():
    return pdesolve.get_problem("pressure_poisson", dim=3, n=8, geometry="sphere").discretize()


def _both(system, rtol=1e-10, **options):
    out = {}
    for vectors in ("host", "device"):
        solver = pdesolve.get_solver("dcdm", vectors=vectors, rtol=rtol, maxiter=300, **options)
        out[vectors] = solver.solve(system)
    return out["host"], out["device"]


@pytest.mark.parametrize("dim,options", [
    (2, {}), (2, {"safeguard": True}), (2, {"residual": "recursive", "memory": None}),
    (3, {"safeguard": True}),
])  # fmt: skip
def test_device_vectors_give_the_host_iterates_with_a_float64_network(
    dim, options, system2d, system3d
):
    system = system2d if dim == 2 else system3d
    rtol = 1e-10 if dim == 2 else 1e-6  # float64 3D convolutions are slow on the CPU
    host, dev = _both(system, rtol=rtol, dtype="float64", **options)
    assert host.info["vectors"] == "host" and dev.info["vectors"] == "device"
    assert dev.info["matvec"] == "stencil"
    assert host.converged and dev.converged and host.iterations == dev.iterations
    assert np.max(np.abs(dev.x - host.x)) <= 1e-12 * np.max(np.abs(host.x))
    assert np.max(np.abs(dev.residual_norms - host.residual_norms)) <= 1e-12 * system.b_norm
    assert dev.info["fallback_steps"] == host.info["fallback_steps"]
    assert dev.info["restarts"] == host.info["restarts"]


def test_float32_inference_agrees_within_its_tolerance(system2d):
    """A float32 network sees inputs that differ from the host loop's in the last float64 bits,
    which can round to a neighbouring float32: the iterates agree to 1e-8 (relative), the
    residual histories to 1e-4 ||b||, and the iteration counts to one."""
    host, dev = _both(system2d, dtype="float32")
    assert abs(host.iterations - dev.iterations) <= 1 and dev.converged
    assert np.max(np.abs(dev.x - host.x)) <= 1e-8 * np.max(np.abs(host.x))
    k = min(host.iterations, dev.iterations) + 1
    diff = np.abs(dev.residual_norms[:k] - host.residual_norms[:k])
    assert diff.max() <= 1e-4 * system2d.b_norm


def test_precision_options(system2d):
    f32 = pdesolve.get_solver("dcdm", dtype="float32", vectors="device").solve(system2d)
    tf32 = pdesolve.get_solver("dcdm", dtype="tf32", vectors="device").solve(system2d)
    bf16 = pdesolve.get_solver("dcdm", dtype="bfloat16", vectors="device").solve(system2d)
    # TF32 is a CUDA tensor-core mode: on the CPU it is float32, bit for bit
    assert np.array_equal(f32.x, tf32.x) and f32.iterations == tf32.iterations
    # bfloat16 (8 significant bits) directions: the float64 loop still converges on the true
    # residual, with a few more iterations at most
    assert bf16.converged and bf16.residual_norms[-1] <= 1e-8 * system2d.b_norm
    assert bf16.iterations <= f32.iterations + 5
    with pytest.raises(ValueError, match="bfloat16"):
        pdesolve.get_solver("dcdm", dtype="half")


def test_no_vector_leaves_the_device_inside_the_loop(system2d, monkeypatch):
    counter = TransferCounter(monkeypatch)
    per_solve = {}
    for vectors in ("device", "host"):
        for maxiter in (3, 8):
            solver = pdesolve.get_solver("dcdm", vectors=vectors, rtol=1e-15, maxiter=maxiter,
                                         safeguard=True).setup(system2d)  # fmt: skip
            with counter:
                result = solver.solve(system2d.b)
            assert result.iterations == maxiter
            per_solve[vectors, maxiter] = (counter.reads, counter.copies)
    (r3, c3), (r8, c8) = per_solve["device", 3], per_solve["device", 8]
    # per iteration: exactly one scalar read (the stopping rule's and breakdown tests' scalars,
    # in one small tensor), no copy; b goes to the device and x comes back once per solve
    assert (r8 - r3, c8 - c3) == (5, 0)
    assert c3 <= 4
    # the counter sees the host loop's copies: residual in, direction out, every iteration
    (_, h3), (_, h8) = per_solve["host", 3], per_solve["host", 8]
    assert h8 - h3 >= 2 * 5


def test_a_callback_still_sees_numpy_iterates(system2d):
    seen = []
    solver = pdesolve.get_solver("dcdm", vectors="device", rtol=1e-8)
    result = solver.setup(system2d).solve(system2d.b,
                                          callback=lambda k, x, r: seen.append((k, x, r)))
    assert len(seen) == result.iterations and isinstance(seen[-1][1], np.ndarray)
    assert np.array_equal(seen[-1][1], result.x) and seen[-1][2] == result.residual_norms[-1]


def test_matvec_options_and_a_matrix_update(system2d):
    csr = pdesolve.get_solver("dcdm", vectors="device", matvec="csr", dtype="float64",
                              rtol=1e-10).solve(system2d)  # fmt: skip
    sten = pdesolve.get_solver("dcdm", vectors="device", matvec="stencil", dtype="float64",
                               rtol=1e-10).solve(system2d)  # fmt: skip
    assert csr.info["matvec"] == "csr" and sten.info["matvec"] == "stencil"
    assert np.max(np.abs(csr.x - sten.x)) <= 1e-12 * np.max(np.abs(sten.x))
    # new values of A, the network kept: the stencil left on the system no longer matches A,
    # so the device operator is rebuilt from the matrix (CSR), and the solve uses the new A
    solver = pdesolve.get_solver("dcdm", vectors="device", rtol=1e-10).setup(system2d)
    solver.update(2.0 * system2d.A, reuse_preconditioner=True)
    result = solver.solve(system2d.b)
    assert result.converged and result.info["matvec"] == "csr"
    assert np.linalg.norm(system2d.b - 2.0 * system2d.A @ result.x) <= 1e-10 * system2d.b_norm
    with pytest.raises(ValueError, match="stencil"):
        pdesolve.get_solver("dcdm", vectors="device", matvec="stencil").solve(
            pdesolve.LinearSystem(system2d.A, system2d.b, grid=system2d.grid,
                                  metadata=system2d.metadata))  # fmt: skip


def test_vectors_option_errors_and_defaults(system2d):
    assert pdesolve.get_solver("dcdm").vectors == "host"  # CPU network: the host loop
    with pytest.raises(ValueError, match="unknown vectors"):
        pdesolve.get_solver("dcdm", vectors="gpu")
    with pytest.raises(ValueError, match="unknown matvec"):
        pdesolve.get_solver("dcdm", matvec="dense")
    with pytest.raises(ValueError, match="plain callable"):
        pdesolve.get_solver("dcdm", vectors="device", model=lambda r: r)
    identity = pdesolve.get_solver("dcdm", model="identity", memory=None, vectors="device",
                                   rtol=1e-9).solve(system2d)  # fmt: skip
    ref = pdesolve.get_solver("dcdm", model="identity", memory=None, rtol=1e-9).solve(system2d)
    assert identity.iterations == ref.iterations
    assert np.max(np.abs(identity.x - ref.x)) <= 1e-12 * np.max(np.abs(ref.x))


def test_masked_grid_on_the_device():
    """A system whose unknowns are only the masked cells: scattered into the grid and gathered
    back by index on the device, as on the host."""
    system = pdesolve.get_problem("pressure_poisson", dim=2, n=16, geometry="sphere").discretize()
    keep = np.asarray(system.metadata["fluid_mask"]).ravel()
    assert 0 < keep.sum() < keep.size
    A = system.A[keep][:, keep]
    grid = pdesolve.Grid.uniform(system.grid.shape, system.grid.spacing,
                                 mask=keep.reshape(system.grid.shape))
    masked = pdesolve.LinearSystem(A, system.b[keep], grid=grid)
    host, dev = _both(masked, rtol=1e-8, dtype="float64")
    assert dev.info["matvec"] == "csr" and dev.converged
    assert host.iterations == dev.iterations
    assert np.max(np.abs(dev.x - host.x)) <= 1e-12 * np.max(np.abs(host.x))
    torch.testing.assert_close(torch.as_tensor(dev.residual_norms),
                               torch.as_tensor(host.residual_norms), rtol=0,
                               atol=1e-12 * masked.b_norm)  # fmt: skip


# ------------------------------------------------------------------ hybrid (PINN corrector) --
PINN = {"name": "pinn_correction", "width": 8, "depth": 2, "steps": 3, "first_steps": 10,
        "batch": 64, "dtype": "float64"}  # fmt: skip


@pytest.fixture(scope="module")
def poisson15():
    return pdesolve.get_problem("poisson", dim=2, n=15, solution="polynomial").discretize()


@pytest.mark.parametrize("smoother", ["gauss_seidel", "red_black"])
def test_hybrid_on_the_device_gives_the_host_iterates(smoother, poisson15):
    out = {}
    for vectors in ("host", "device"):
        solver = pdesolve.get_solver("hybrid", pc=PINN, smoother=smoother, vectors=vectors,
                                     rtol=1e-12, maxiter=4)  # fmt: skip
        out[vectors] = solver.solve(poisson15)
    host, dev = out["host"], out["device"]
    assert dev.info["vectors"] == "device" and host.iterations == dev.iterations == 4
    assert np.max(np.abs(dev.x - host.x)) <= 1e-12 * np.max(np.abs(host.x))
    assert np.max(np.abs(dev.residual_norms - host.residual_norms)) <= 1e-12 * poisson15.b_norm
    np.testing.assert_allclose(dev.info["alphas"], host.info["alphas"], rtol=1e-10)
    assert dev.residual_norms[-1] < 0.6 * dev.residual_norms[0]  # the iteration does work


def test_hybrid_device_loop_reads_one_scalar_pair_per_outer_iteration(poisson15, monkeypatch):
    counter = TransferCounter(monkeypatch)
    counts = {}
    for vectors in ("device", "host"):
        for maxiter in (2, 4):
            solver = pdesolve.get_solver("hybrid", pc=PINN, vectors=vectors, rtol=1e-15,
                                         maxiter=maxiter).setup(poisson15)  # fmt: skip
            with counter:
                solver.solve(poisson15.b)
            counts[vectors, maxiter] = (counter.reads, counter.copies)
    (r2, c2), (r4, c4) = counts["device", 2], counts["device", 4]
    # per outer iteration: the PINN's optimizer steps, the sweeps and the line search stay on
    # the device; one read (||r|| and α together), no copy
    assert (r4 - r2, c4 - c2) == (2, 0)
    assert counts["host", 4][1] - counts["host", 2][1] >= 2 * 2  # residual in, correction out


def test_hybrid_vectors_option(poisson15):
    assert pdesolve.get_solver("hybrid", pc=PINN).vectors == "host"  # a CPU corrector
    with pytest.raises(ValueError, match="vectors='device' needs a corrector"):
        pdesolve.get_solver("hybrid", pc="coarse_grid", vectors="device")
    with pytest.raises(ValueError, match="unknown vectors"):
        pdesolve.get_solver("hybrid", pc=PINN, vectors="gpu")
    solver = pdesolve.get_solver("hybrid", pc=PINN, vectors="device", rtol=1e-12, maxiter=2)
    solver.setup(poisson15)
    losses = solver.preconditioner.losses_  # kept on the device, read when asked for
    assert len(losses) == 0
    solver.solve(poisson15.b)
    assert len(solver.preconditioner.losses_) == PINN["first_steps"] + PINN["steps"]
    assert all(np.isfinite(solver.preconditioner.losses_))


# ------------------------------------------------------------------------------ FIRENET --
def test_firenet_reads_nothing_back_inside_the_network(monkeypatch):
    problem = pdesolve.get_problem("compressed_sensing", n=32, image="sparse_phantom",
                                   sparsity=60, rate=0.5, lam=0.03)  # fmt: skip
    counter = TransferCounter(monkeypatch)
    counts, results = {}, {}
    for restarts in (2, 6):
        with counter:
            results[restarts] = pdesolve.recover(problem, method="firenet", inner_iterations=5,
                                                 restarts=restarts)  # fmt: skip
        counts[restarts] = (counter.reads, counter.copies)
    # 20 more layers and 4 more logged restarts, not one more read or copy: the operator's
    # index tensors are placed on the device once, the log is read after the network
    assert counts[2] == counts[6], counts
    res = results[6]
    assert len(res.misfit_norms) == 7 and len(res.info["objective_history"]) == 7
    assert res.misfit_norms[-1] < res.misfit_norms[0]


def test_operator_tensors_are_placed_once():
    from pdesolve.problems.inverse_operators import MatrixOperator

    op = MatrixOperator(torch.eye(3, dtype=torch.float64))
    x = torch.ones(3, dtype=torch.float32)
    a, b = op._placed("matrix", op.matrix, x, x.dtype), op._placed("matrix", op.matrix, x, x.dtype)
    assert a is b and a.dtype == torch.float32  # converted once, then reused
    assert op._placed("matrix", op.matrix, x.double()) is op.matrix  # already there: no copy
    meta = op._placed("matrix", op.matrix, torch.empty(3, device="meta"))
    assert meta.device.type == "meta" and op.forward(x).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("smoother", ["gauss_seidel", "red_black", "jacobi"])
def test_device_sweeps_are_the_multigrid_level_sweeps(smoother, poisson15):
    from pdesolve.solvers.hybrid import DeviceSweeps
    from pdesolve.solvers.multigrid import Level

    A, b = poisson15.A, poisson15.b
    x = np.random.default_rng(0).standard_normal(A.shape[0])
    host = Level(A.tocsr(), 15, smoother, 2.0 / 3.0).smooth(x, b, 1, backward=False)
    sweeps = DeviceSweeps(A, smoother, 2.0 / 3.0, "cpu")
    r = torch.as_tensor(b - A @ x)
    dev = x + sweeps.sweep(r).numpy()
    assert np.max(np.abs(dev - host)) <= 1e-13 * np.max(np.abs(host))
