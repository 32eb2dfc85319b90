"""The fused space-time jet of the PINN trainer: exact derivatives, an exact backward pass, and
the same training run as nested autograd (time-dependent problems)."""

import math

import numpy as np
import pytest
import torch

import pdesolve
from pdesolve.nn.mlp import MLP
from pdesolve.problems.geometry import Interval
from pdesolve.problems.time_dependent import TimeDependentProblem
from pdesolve.train.pinn import PINNTrainer
from pdesolve.train.pinn.network import (
    THIRD_ORDER,
    _MLPJet,
    identity_jet,
    mlp_diagonal_jet,
    supports_diagonal_jet,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"batch": 48, "log_every": 1, "progress": False, "test_grid": (9, 5),
         "monitor_points": 50, "sampling": "uniform"}  # fmt: skip
REF = {"n": 256, "dt": 2e-3}  # a coarse spectral reference (only the loss is compared)


@pytest.mark.parametrize("activation", sorted(THIRD_ORDER))
@pytest.mark.parametrize("axes", [(0,), (1, 2), (0, 2), (0, 1, 2)])
def test_fused_backward_passes_gradcheck(activation, axes):
    torch.manual_seed(0)
    net = MLP(3, 1, width=4, depth=2, activation=activation).double()
    params = tuple(p for m in net.layers if isinstance(m, torch.nn.Linear)
                   for p in (m.weight, m.bias))  # fmt: skip
    acts = (THIRD_ORDER[activation],) * 2
    x = torch.rand(5, 3, dtype=torch.float64)
    jet = identity_jet(x, axes).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *p: _MLPJet.apply(x, True, axes, acts, *p), params)
    assert torch.autograd.gradcheck(lambda j, *p: _MLPJet.apply(j, False, axes, acts, *p),
                                    (jet, *params))  # fmt: skip


def test_fused_jet_equals_autograd_derivatives():
    torch.manual_seed(1)
    net = MLP(2, 1, width=6, depth=3, activation="tanh").double()
    x = torch.rand(7, 2, dtype=torch.float64, requires_grad=True)
    u = net(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    second = torch.stack([torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i]
                          for i in range(2)], 1)  # fmt: skip
    out = mlp_diagonal_jet(net, x.detach(), identity=True)[..., 0]
    torch.testing.assert_close(out[0], u, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(out[1:3].t(), g, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(out[3:].t(), second, rtol=1e-12, atol=1e-13)
    assert supports_diagonal_jet(net) and not supports_diagonal_jet(
        MLP(2, 1, width=4, depth=1, activation="relu"))


@pytest.mark.parametrize("name,params,extra", [
    ("burgers", {}, {}),
    ("allen_cahn", {}, {"fourier_modes": 2, "causal": {"segments": 4, "epsilon": 1.0}}),
    ("heat", {"dim": 2}, {"boundary_batch": 16}),
    ("wave", {}, {}),
])  # fmt: skip
def test_fused_jet_training_gives_the_autograd_loss_sequence(name, params, extra):
    problem = pdesolve.get_problem(name, **params)
    model = {"name": "mlp", "width": 8, "depth": 2, "activation": "sin"}
    runs = {}
    for kind in ("autograd", "auto"):
        trainer = PINNTrainer(problem, model=model, steps=4, derivatives=kind,
                              reference=REF if name in ("burgers", "allen_cahn") else {},
                              **SMALL, **extra)  # fmt: skip
        runs[trainer.derivatives] = trainer.fit()
    fast, slow = runs["forward"], runs["autograd"]
    np.testing.assert_allclose(fast["train_loss"][1:], slow["train_loss"][1:], rtol=1e-12)
    np.testing.assert_allclose(fast["residual_rms"], slow["residual_rms"], rtol=1e-12)


class MixedDerivative(TimeDependentProblem):
    """u_t = u_xt + u_xx (test only): a mixed second derivative, which the fused jet lacks."""

    name = "mixed_test"

    def __init__(self):
        self.unknown_parameters = {}
        super().__init__(Interval(0, 1), (0.0, 1.0))

    def initial_value(self, x):
        return torch.sin(math.pi * x[:, 0])

    @property
    def has_exact_solution(self):
        return True

    def exact_solution(self, xt):  # a stand-in: only the choice of derivatives is tested
        return torch.exp(-xt[:, 1]) * torch.sin(math.pi * xt[:, 0])

    def pde_residual(self, u, xt, params=None):
        xt = xt.detach().requires_grad_(True) if not xt.requires_grad else xt
        (g,) = torch.autograd.grad(u(xt).sum(), xt, create_graph=True)
        (h,) = torch.autograd.grad(g[:, 0].sum(), xt, create_graph=True)
        return g[:, 1] - h[:, 1] - h[:, 0]

    def _compute_reference(self, **options):
        raise NotImplementedError


def test_mixed_derivatives_fall_back_to_autograd_or_say_why():
    opts = {**SMALL, "model": {"name": "mlp", "width": 6, "depth": 2, "activation": "tanh"}}
    assert PINNTrainer(MixedDerivative(), steps=1, **opts).derivatives == "autograd"
    with pytest.raises(ValueError, match="mixed second derivatives"):
        PINNTrainer(MixedDerivative(), steps=1, derivatives="forward", **opts)
    resnet = {**opts, "model": {"name": "resnet", "width": 6, "activation": "tanh"}}
    burgers = pdesolve.get_problem("burgers")
    with pytest.raises(ValueError, match="no fused space-time jet"):
        PINNTrainer(burgers, steps=1, derivatives="forward", reference=REF, **resnet)
