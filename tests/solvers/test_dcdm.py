"""DCDM / FCG(k) / deflated PCG: equivalences with CG, exact-inverse one-step, trained model."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import pdesolve
from pdesolve.linalg.system import InvalidSystemError
from pdesolve.linalg.torch_ops import StencilOperator, csr_to_torch
from pdesolve.nn.dcdm_cnn import DCDMNet
from pdesolve.solvers.dcdm import DEFAULT_MODELS
from pdesolve.train.dcdm_training import dcdm_loss, energy_loss

ROOT = Path(__file__).resolve().parents[2]


def _cg_history(A, b, iters):
    x, r = np.zeros_like(b), b.copy()
    p, rr, norms = r.copy(), r @ r, [np.linalg.norm(b)]
    for _ in range(iters):
        ap = A @ p
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
        norms.append(np.linalg.norm(b - A @ x))
    return np.array(norms)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def system2d():
    return pdesolve.get_problem("pressure_poisson", dim=2, n=16, geometry="sphere").discretize()


def test_identity_full_orthogonalisation_reproduces_cg(system2d):
    res = pdesolve.solve(system2d, method="dcdm", model="identity", memory=None, rtol=1e-9)
    ref = _cg_history(system2d.A, system2d.b, res.iterations)
    assert res.converged
    # both are CG in floating point: iteration by iteration they agree to 1e-10 relative while
    # rounding has not yet separated them (first 50 of ~90), and to 1e-12 of ||r0|| throughout
    rel = np.abs(res.residual_norms - ref) / ref
    assert rel[:50].max() < 1e-10, rel[:50].max()
    assert np.abs(res.residual_norms - ref).max() < 1e-12 * ref[0]


def test_fcg_identity_memory1_is_cg(system2d):
    res = pdesolve.solve(system2d, method="fcg", pc="none", memory=1, rtol=1e-9,
                         residual="true")
    ref = _cg_history(system2d.A, system2d.b, res.iterations)
    assert np.abs(res.residual_norms - ref).max() / ref[0] < 1e-9


def test_exact_inverse_converges_in_one_iteration(system2d):
    lu = spla.splu(system2d.A.tocsc())
    res = pdesolve.solve(system2d, method="dcdm", model=lu.solve, rtol=1e-10)
    assert res.converged and res.iterations == 1


def test_loss_scale_invariant():
    s = pdesolve.get_problem("pressure_poisson", dim=2, n=8).discretize()
    A = StencilOperator(s.stencil)
    g = torch.Generator().manual_seed(0)
    b = torch.randn((4, 8, 8), generator=g, dtype=torch.float64)
    q = torch.randn((4, 8, 8), generator=g, dtype=torch.float64)
    for c in (1e-3, -2.0, 1e4):
        assert torch.isclose(dcdm_loss(b, c * q, A), dcdm_loss(b, q, A), rtol=1e-12)
    # the loss at q = A^{-1} b is 0
    x = spla.spsolve(s.A.tocsc(), b.reshape(4, -1).numpy().T).T
    assert dcdm_loss(b, torch.as_tensor(x).reshape(4, 8, 8), A) < 1e-20


@pytest.mark.parametrize("dim,n", [(2, 9), (3, 6)])
def test_stencil_operator_equals_csr(dim, n):
    s = pdesolve.get_problem("pressure_poisson", dim=dim, n=n, geometry="obstacles",
                             seed=1).discretize()
    x = np.random.default_rng(0).normal(size=(2, s.size))
    y = StencilOperator(s.stencil)(torch.as_tensor(x).reshape((2,) + s.stencil.shape[:dim]))
    ref = (s.A @ x.T).T
    assert np.abs(y.reshape(2, -1).numpy() - ref).max() <= 1e-12 * np.abs(ref).max()
    ys = (csr_to_torch(s.A) @ torch.as_tensor(x.T)).numpy().T
    assert np.abs(ys - ref).max() <= 1e-12 * np.abs(ref).max()


def test_network_fully_convolutional_any_size():
    net = DCDMNet(dim=3, pre=1, coarse=1, post=1)
    assert net(torch.zeros(1, 1, 7, 8, 9)).shape == (1, 1, 7, 8, 9)
    deep = DCDMNet(dim=3, pre=1, coarse=1, post=1, levels=3)
    assert deep(torch.zeros(1, 1, 7, 8, 9)).shape == (1, 1, 7, 8, 9)


def _receptive_radius(net: DCDMNet, n: int = 96) -> int:
    """Largest distance from the output cell (centre) at which d out / d input is non-zero."""
    torch.manual_seed(0)
    x = torch.randn(1, 1, n, n, requires_grad=True)
    net(x)[0, 0, n // 2, n // 2].backward()
    i, j = np.nonzero(x.grad[0, 0].numpy())
    return int(np.max(np.maximum(np.abs(i - n // 2), np.abs(j - n // 2))))


def test_more_pooling_levels_widen_the_receptive_field():
    torch.manual_seed(0)
    one = DCDMNet(dim=2, pre=1, coarse=1, post=1, bias=False)
    torch.manual_seed(0)
    three = DCDMNet(dim=2, pre=1, coarse=1, post=1, bias=False, levels=3)
    # levels=1 is the paper's network: its parameters are a strict subset of the deeper one's
    assert set(one.state_dict()) < set(three.state_dict())
    assert "levels" not in one.config and three.config["levels"] == 3
    r1, r3 = _receptive_radius(one), _receptive_radius(three)
    # fine: conv_in + 2 + 2 convs (5), coarse: 2 convs (±2 coarse cells = ±4-5 fine)
    assert 8 <= r1 <= 12, r1
    assert r3 >= 3 * r1, (r1, r3)
    with pytest.raises(ValueError, match="levels"):
        DCDMNet(dim=2, levels=0)


def test_deflated_cg_and_fcg_converge_on_true_residual(system2d):
    for method, kw in (("deflated_cg", {"deflation": 8}), ("fcg", {"pc": "jacobi"})):
        res = pdesolve.solve(system2d, method=method, rtol=1e-8, **kw)
        assert res.converged
        assert np.linalg.norm(system2d.b - system2d.A @ res.x) <= 1e-8 * system2d.b_norm
    cg = pdesolve.solve(system2d, method="petsc_cg", rtol=1e-8)
    dpcg = pdesolve.solve(system2d, method="deflated_cg", rtol=1e-8, deflation=16)
    assert dpcg.iterations < cg.iterations


def test_shipped_2d_model_beats_cg_on_unseen_obstacles():
    """The shipped 2D model (trained on one 128² obstacle box, seed 0) on an unseen 128² box:
    the paper's DCDM(k=2) < 1/4 of CG's iterations to rtol 1e-6 (measured 22 vs CG's 634; the
    first-stage model, trained on Ritz data only, stalls near 6e-2: see results/results2d.md).
    """
    assert DEFAULT_MODELS[2].is_file(), "the shipped 2D model is missing"
    s = pdesolve.get_problem("pressure_poisson", dim=2, n=128, geometry="obstacles",
                             seed=101).discretize()  # fmt: skip
    dcdm = pdesolve.solve(s, method="dcdm", rtol=1e-6, memory=2, maxiter=300)
    cg = pdesolve.solve(s, method="petsc_cg", rtol=1e-6)
    assert dcdm.converged and cg.converged
    assert np.linalg.norm(s.b - s.A @ dcdm.x) <= 1e-6 * s.b_norm
    assert dcdm.iterations < cg.iterations / 4, (dcdm.iterations, cg.iterations)


def test_bad_inputs(system2d):
    with pytest.raises(InvalidSystemError, match="3D but the system lives on a 2D"):
        pdesolve.solve(system2d, method="dcdm", model=DCDMNet(dim=3))
    A = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))  # symmetric indefinite
    res = pdesolve.solve(pdesolve.LinearSystem(A, np.array([1.0, 0.0])), method="dcdm",
                         model="identity")  # fmt: skip
    assert not res.converged and res.reason.name == "DIVERGED_INDEFINITE_MAT"
    with pytest.raises(InvalidSystemError, match="not symmetric"):
        pdesolve.solve(pdesolve.LinearSystem(sp.csr_matrix([[2.0, 1.0], [0.0, 2.0]]),
                                             np.ones(2)), method="dcdm", model="identity")
    with pytest.raises(InvalidSystemError, match="NaN"):
        pdesolve.LinearSystem(system2d.A, np.full(system2d.size, np.nan))
    with pytest.raises(InvalidSystemError, match="structured grid"):
        pdesolve.solve(pdesolve.LinearSystem(system2d.A, system2d.b), method="dcdm",
                       model=DCDMNet(dim=2))
    with pytest.raises(ValueError, match="memory"):
        pdesolve.solve(system2d, method="dcdm", model="identity", memory=0)
    with pytest.raises(FileNotFoundError):
        pdesolve.solve(system2d, method="dcdm", model=str(Path("/nonexistent/model.pt")))


def test_energy_loss_is_one_minus_cos2_and_scale_invariant():
    s = pdesolve.get_problem("pressure_poisson", dim=2, n=8, geometry="sphere").discretize()
    A = StencilOperator(s.stencil)
    g = torch.Generator().manual_seed(1)
    b = torch.randn((3, 8, 8), generator=g, dtype=torch.float64)
    q = torch.randn((3, 8, 8), generator=g, dtype=torch.float64)
    x = spla.spsolve(s.A.tocsc(), b.reshape(3, -1).numpy().T).T  # A^{-1} b
    energy = torch.as_tensor(np.einsum("ij,ij->i", b.reshape(3, -1).numpy(), x))
    loss = energy_loss(b, q, A, energy)
    for c in (1e-3, -2.0, 1e4):
        assert torch.isclose(energy_loss(b, c * q, A, energy), loss, rtol=1e-12)
    qf, bf = q.reshape(3, -1).numpy(), b.reshape(3, -1).numpy()
    cos2 = np.einsum("ij,ij->i", qf, bf) ** 2 / (
        np.einsum("ij,ji->i", qf, s.A @ qf.T) * energy.numpy()
    )
    assert abs(loss.item() - np.mean(1 - cos2)) < 1e-12
    assert energy_loss(b, torch.as_tensor(x).reshape(3, 8, 8), A, energy) < 1e-12


def test_petsc_fcg_with_identity_is_our_fcg(system2d):
    # KSPFCG(mmax 2) + shell "network" = identity, against our FCG(2) with the identity: CG twice
    ours = pdesolve.solve(system2d, method="fcg", pc="none", memory=2, rtol=1e-8)
    petsc = pdesolve.solve(system2d, method="petsc_dcdm", model="identity", memory=2, rtol=1e-8)
    assert ours.converged and petsc.converged
    assert abs(ours.iterations - petsc.iterations) <= 1, (ours.iterations, petsc.iterations)
    assert np.linalg.norm(system2d.b - system2d.A @ petsc.x) <= 1e-8 * system2d.b_norm
    assert petsc.info["pc_applications"] >= petsc.iterations


def test_petsc_route_with_network_matches_our_dcdm():
    # the first 2D network (64², experiments/dcdm/runs/run2d) as a PETSc shell PC inside KSPFCG
    # and KSPGCR, on an unseen 32² obstacle box: the same true-residual rule is met, and KSPFCG
    # keeping every direction takes our DCDM's iterations (full memory: this residual-loss model
    # stalls with k = 2)
    model = str(ROOT / "experiments" / "dcdm" / "runs" / "run2d" / "model.pt")
    s = pdesolve.get_problem("pressure_poisson", dim=2, n=32, geometry="obstacles",
                             seed=103).discretize()  # fmt: skip
    ours = pdesolve.solve(s, method="dcdm", model=model, memory=None, rtol=1e-6, maxiter=200)
    fcg = pdesolve.solve(s, method="petsc_dcdm", model=model, ksp_type="fcg", memory=200,
                         rtol=1e-6, maxiter=200)  # fmt: skip
    gcr = pdesolve.solve(s, method="petsc_dcdm", model=model, ksp_type="gcr", memory=200,
                         rtol=1e-6, maxiter=200)  # fmt: skip
    for res in (ours, fcg, gcr):
        assert res.converged, res.reason
        assert np.linalg.norm(s.b - s.A @ res.x) <= 1e-6 * s.b_norm
    assert abs(fcg.iterations - ours.iterations) <= 2, (fcg.iterations, ours.iterations)
    cg = pdesolve.solve(s, method="petsc_cg", rtol=1e-6)
    assert max(fcg.iterations, gcr.iterations) < cg.iterations / 2


def test_shipped_3d_model_on_unseen_obstacles():
    """The issue's bar: DCDM < 1/4 of CG's iterations to rtol 1e-6 on an unseen 32³ system,
    with the paper's iteration (memory k = 2, no safeguard); measured 36 vs CG's 234.
    """
    assert DEFAULT_MODELS[3].is_file(), "the shipped 3D model is missing"
    s = pdesolve.get_problem("pressure_poisson", dim=3, n=32, geometry="obstacles",
                             seed=101).discretize()  # training used seed 0
    dcdm = pdesolve.solve(s, method="dcdm", memory=2, rtol=1e-6, maxiter=200)
    cg = pdesolve.solve(s, method="petsc_cg", rtol=1e-6)
    assert dcdm.converged and cg.converged
    assert np.linalg.norm(s.b - s.A @ dcdm.x) <= 1e-6 * s.b_norm
    assert dcdm.iterations < cg.iterations / 4, (dcdm.iterations, cg.iterations)


def test_safeguard_never_worse_than_a_residual_step(system2d):
    # a useless "network" (always the same vector): plain DCDM(2) reaches a fixed point and stops
    # making progress; with the safeguard it converges (it then takes residual steps)
    v = np.random.default_rng(0).normal(size=system2d.size)
    plain = pdesolve.solve(system2d, method="dcdm", model=lambda r: v, memory=2, rtol=1e-6,
                           maxiter=100)  # fmt: skip
    safe = pdesolve.solve(system2d, method="dcdm", model=lambda r: v, memory=2, rtol=1e-6,
                          maxiter=2000, safeguard=True)  # fmt: skip
    assert not plain.converged
    assert plain.residual_norms[-1] > 0.5 * plain.residual_norms[3]  # stalled
    assert safe.converged and safe.info["fallback_steps"] > 0


class _FixedGridNet(torch.nn.Module):
    """A non-convolutional 'model' made for one grid (a dense layer on 16x16 fields)."""

    def __init__(self, shape=(16, 16), crop=False):
        super().__init__()
        self.shape, self.crop = shape, crop
        self.lin = torch.nn.Linear(shape[0] * shape[1], shape[0] * shape[1], bias=False)

    def forward(self, x):
        y = self.lin(x.reshape(x.shape[0], -1)).reshape(x.shape)
        return y[..., :-1, :] if self.crop else y


def test_bad_inputs_clear_errors(system2d):
    big = pdesolve.get_problem("pressure_poisson", dim=2, n=20).discretize()
    # a model whose input grid does not match the system
    for method in ("dcdm", "petsc_dcdm"):
        with pytest.raises(InvalidSystemError, match="does not run on this system's grid"):
            pdesolve.solve(big, method=method, model=_FixedGridNet())
        with pytest.raises(InvalidSystemError, match="3D but the system lives on a 2D"):
            pdesolve.solve(system2d, method=method, model=DCDMNet(dim=3))
    with pytest.raises(InvalidSystemError, match=r"maps a field of shape \(1, 1, 16, 16\)"):
        pdesolve.solve(system2d, method="dcdm", model=_FixedGridNet(crop=True))
    with pytest.raises(ValueError, match="returned 5 values for 256 unknowns"):
        pdesolve.solve(system2d, method="dcdm", model=lambda r: np.ones(5))
    # non-SPD: indefinite diagonal up front; indefiniteness met in the iteration; non-symmetric
    for method in ("dcdm", "petsc_dcdm"):
        A = sp.diags([2.0, -1.0, 3.0], format="csr")
        with pytest.raises(InvalidSystemError, match="not positive definite: diagonal entry"):
            pdesolve.solve(pdesolve.LinearSystem(A, np.ones(3)), method=method, model="identity")
        A = sp.csr_matrix(np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3, -1
        with pytest.raises(pdesolve.SolverDivergedError, match="not positive definite"):
            pdesolve.solve(pdesolve.LinearSystem(A, np.array([1.0, 0.0])), method=method,
                           model="identity", raise_on_divergence=True)  # fmt: skip
        with pytest.raises(InvalidSystemError, match="not symmetric"):
            pdesolve.solve(pdesolve.LinearSystem(sp.csr_matrix([[2.0, 1.0], [0.0, 2.0]]),
                                                 np.ones(2)), method=method, model="identity")
    # NaN / Inf in b
    for bad in (np.nan, np.inf):
        b = system2d.b.copy()
        b[3] = bad
        with pytest.raises(InvalidSystemError, match="NaN|Inf"):
            pdesolve.LinearSystem(system2d.A, b)
