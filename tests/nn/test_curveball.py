"""CurveBall: numerical facts (hand-computed steps, dense Jacobians/Hessians, convergence)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.autograd.functional import hessian, jacobian
from torch.func import functional_call

from pdesolve.nn.curveball import (
    CurveBall,
    NonFiniteLossError,
    ggn_vector_product,
    jacobian_vector_product,
    loss_hessian_vector_product,
)

DT = torch.float64


class TwoBlockLinear(nn.Module):
    """r(w) = C [a; b] − d: a linear least-squares problem with known Hessian (2/m) CᵀC."""

    def __init__(self, m: int = 7, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.randn(3, generator=g, dtype=DT))
        self.b = nn.Parameter(torch.randn(2, generator=g, dtype=DT))
        self.register_buffer("C", torch.randn(m, 5, generator=g, dtype=DT))
        self.register_buffer("d", torch.randn(m, generator=g, dtype=DT))

    def forward(self) -> torch.Tensor:
        return self.C @ torch.cat([self.a, self.b]) - self.d


def mse_closure(model: nn.Module):
    def closure():
        r = model()
        return r, torch.mean(r**2)

    return closure


# (1) quadratic: one step with fixed rho, beta equals the hand-computed update ------------------
@pytest.mark.parametrize(
    ("curvature", "loss", "mode", "auto"),
    [("ggn", "mse", "dual", False), ("ggn", "autograd", "dual", False),
     ("ggn", "mse", "func", False), ("hessian", "autograd", "dual", False),
     ("ggn", "mse", "dual", True), ("hessian", "autograd", "dual", True)],
)
def test_steps_match_hand_computation(curvature, loss, mode, auto):
    """Three steps on a quadratic with two parameter groups (weight decay in one of them)."""
    model = TwoBlockLinear()
    C, d = model.C, model.d
    m = C.shape[0]
    H = 2.0 / m * C.T @ C
    lam, rho, beta, wd = 0.7, 0.6, 0.05, (0.0, 0.3)
    opt = CurveBall(
        [{"params": [model.a], "weight_decay": wd[0]},
         {"params": [model.b], "weight_decay": wd[1]}],
        model=model, rho=None if auto else rho, beta=None if auto else beta, lambd=lam,
        auto_lambda=False, curvature=curvature, loss=loss, forward_mode=mode,
    )
    wdv = torch.tensor([wd[0]] * 3 + [wd[1]] * 2, dtype=DT)
    w = torch.cat([model.a, model.b]).detach().clone()
    z = torch.zeros(5, dtype=DT)
    for _ in range(3):
        g = 2.0 / m * C.T @ (C @ w - d) + wdv * w  # gradient of loss + ½ Σ wd w²
        damped = H + torch.diag(lam + wdv)
        dz = damped @ z + g
        if auto:  # minimise the damped model q(ρ z − β Δz) over (ρ, β)
            a11, a12, a22 = dz @ damped @ dz, z @ damped @ dz, z @ damped @ z
            A = torch.stack([torch.stack([a11, a12]), torch.stack([a12, a22])])
            sol = torch.linalg.pinv(A) @ torch.stack([g @ dz, g @ z])
            beta, rho = float(sol[0]), -float(sol[1])
        z = rho * z - beta * dz
        w = w + z
        opt.step(mse_closure(model))
        got = torch.cat([model.a, model.b]).detach()
        torch.testing.assert_close(got, w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cat([opt.state[model.a]["z"], opt.state[model.b]["z"]]), z)


class Vector(nn.Module):
    def __init__(self, w0: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w0.clone())


@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_auto_rho_beta_converge_to_exact_minimiser(curvature):
    g = torch.Generator().manual_seed(1)
    n = 10
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    C = Q @ torch.diag(torch.logspace(0, 1.0, n, dtype=DT))  # cond(CᵀC) = 100
    d = torch.randn(n, generator=g, dtype=DT)
    w_star = torch.linalg.solve(C, d)
    model = Vector(torch.zeros(n, dtype=DT))
    opt = CurveBall(model, loss="mse", curvature=curvature)

    def closure():
        r = C @ model.w - d
        return r, torch.mean(r**2)

    for _ in range(400):
        opt.step(closure)
    err = torch.linalg.norm(model.w.detach() - w_star) / torch.linalg.norm(w_star)
    assert err < 1e-12
    rec = opt.history[-1]
    assert all(k in rec for k in ("rho", "beta", "lambd", "ratio"))
    assert opt.state["curveball"]["step"] == 400
    assert all(math.isfinite(h["rho"]) and math.isfinite(h["beta"]) for h in opt.history)


# (2) J·v and GGN products against dense Jacobians ---------------------------------------------
def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3)).to(DT)


def dense(net: nn.Module, x: torch.Tensor):
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def unflat(v):
        out, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = math.prod(s)
            out[n] = v[i:i + k].reshape(s)
            i += k
        return out

    f = lambda v: functional_call(net, unflat(v), (x,)).reshape(-1)  # noqa: E731
    return flat0, jacobian(f, flat0), unflat


@pytest.mark.parametrize("mode", ["dual", "func"])
def test_jvp_matches_dense_jacobian(mode):
    net = tiny_net()
    x = torch.randn(5, 2, dtype=DT, generator=torch.Generator().manual_seed(3))
    _, J, unflat = dense(net, x)
    v = torch.randn(J.shape[1], dtype=DT, generator=torch.Generator().manual_seed(4))

    def closure():
        out = net(x)
        return out, (out**2).mean()

    jv = jacobian_vector_product(net, closure, list(unflat(v).values()), mode=mode)
    torch.testing.assert_close(jv.reshape(-1), J @ v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("loss", "mode"), [("mse", "dual"), ("cross_entropy", "dual"),
                                             ("autograd", "dual"), ("cross_entropy", "func")])
def test_ggn_product_matches_dense(loss, mode):
    net = tiny_net(1)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 2, dtype=DT, generator=gen)
    labels = torch.randint(0, 3, (6,), generator=gen)
    target = torch.randn(6, 3, dtype=DT, generator=gen)
    lossfn = {
        "mse": lambda out: torch.mean((out - target) ** 2),
        "cross_entropy": lambda out: nn.functional.cross_entropy(out, labels),
        # a non-standard loss: only the autograd loss Hessian is exact for it
        "autograd": lambda out: torch.sum(torch.log1p(out**2)) / 6 + (out**4).mean(),
    }[loss]
    _, J, unflat = dense(net, x)
    out0 = net(x).detach()
    HL = hessian(lambda o: lossfn(o.reshape(6, 3)), out0.reshape(-1))
    v = torch.randn(J.shape[1], dtype=DT, generator=gen)

    def closure():
        out = net(x)
        return out, lossfn(out)

    gv = ggn_vector_product(net, closure, list(unflat(v).values()), loss=loss, mode=mode)
    got = torch.cat([t.reshape(-1) for t in gv])
    torch.testing.assert_close(got, J.T @ HL @ J @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy"])
def test_closed_form_loss_hessians_equal_autograd(kind):
    gen = torch.Generator().manual_seed(6)
    out = torch.randn(4, 5, dtype=DT, generator=gen, requires_grad=True)
    v = torch.randn(4, 5, dtype=DT, generator=gen)
    labels = torch.randint(0, 5, (4,), generator=gen)
    target = torch.randn(4, 5, dtype=DT, generator=gen)
    loss = (torch.mean((out - target) ** 2) if kind == "mse"
            else nn.functional.cross_entropy(out, labels))
    (dl,) = torch.autograd.grad(loss, out, create_graph=True)
    exact = loss_hessian_vector_product("autograd", out, v, dl)
    torch.testing.assert_close(loss_hessian_vector_product(kind, out, v), exact)


def test_ggn_used_in_step_matches_dense():
    """Δz = (GGN + λ) z + g inside an optimizer step, read back from z with fixed ρ, β."""
    net = tiny_net(2)
    x = torch.randn(5, 2, dtype=DT, generator=torch.Generator().manual_seed(7))
    w0, J, unflat = dense(net, x)
    out0 = net(x).detach()
    z0 = torch.randn(J.shape[1], dtype=DT, generator=torch.Generator().manual_seed(8))
    rho, beta, lam = 0.9, 0.1, 2.0
    opt = CurveBall(net, rho=rho, beta=beta, lambd=lam, auto_lambda=False, loss="mse")
    for p, zi in zip(net.parameters(), unflat(z0).values(), strict=True):
        opt.state[p]["z"] = zi.clone()

    def closure():
        out = net(x)
        return out, torch.mean(out**2)

    opt.step(closure)
    z1 = torch.cat([opt.state[p]["z"].reshape(-1) for p in net.parameters()])
    dz = (rho * z0 - z1) / beta
    g = J.T @ (2.0 / out0.numel() * out0.reshape(-1))
    expected = 2.0 / out0.numel() * J.T @ (J @ z0) + lam * z0 + g
    torch.testing.assert_close(dz, expected, rtol=1e-9, atol=1e-11)
    w1 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(w1, w0 + z1)


# (5) full Hessian option matches a dense Hessian-vector product --------------------------------
def test_full_hessian_option_matches_dense_hessian():
    net = tiny_net(3)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(6, 2, dtype=DT, generator=gen)
    labels = torch.randint(0, 3, (6,), generator=gen)
    w0, _, unflat = dense(net, x)

    def loss_of(v):
        return nn.functional.cross_entropy(functional_call(net, unflat(v), (x,)), labels)

    H = hessian(loss_of, w0)
    g = jacobian(loss_of, w0)
    z0 = torch.randn(w0.numel(), dtype=DT, generator=gen)
    rho, beta, lam = 0.5, 0.2, 0.3
    opt = CurveBall(net, curvature="hessian", rho=rho, beta=beta, lambd=lam, auto_lambda=False)
    for p, zi in zip(net.parameters(), unflat(z0).values(), strict=True):
        opt.state[p]["z"] = zi.clone()

    def closure():
        out = net(x)
        return out, nn.functional.cross_entropy(out, labels)

    opt.step(closure)
    z1 = torch.cat([opt.state[p]["z"].reshape(-1) for p in net.parameters()])
    dz = (rho * z0 - z1) / beta
    torch.testing.assert_close(dz - g - lam * z0, H @ z0, rtol=1e-9, atol=1e-11)
    # the full Hessian differs from the GGN here (non-zero residual term)
    ggn = ggn_vector_product(net, closure, list(unflat(z0).values()), loss="cross_entropy")
    assert not torch.allclose(torch.cat([t.reshape(-1) for t in ggn]), H @ z0, atol=1e-6)


# (3) Rosenbrock --------------------------------------------------------------------------------
def rosenbrock_closure(model: Vector):
    def closure():
        x, y = model.w[0], model.w[1]
        r = torch.stack([1.0 - x, 10.0 * (y - x * x)])  # f = Σ r² = (1−x)² + 100(y−x²)²
        return r, torch.sum(r**2)

    return closure


@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_rosenbrock_reaches_minimum(curvature):
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        start = torch.tensor([-2.0, -1.0], dtype=DT) + torch.rand(2, generator=gen, dtype=DT) * 4
        model = Vector(start)
        opt = CurveBall(model, curvature=curvature)
        closure = rosenbrock_closure(model)
        for _ in range(MAX_ROSENBROCK_ITERS):
            opt.step(closure)
            if torch.linalg.norm(model.w.detach() - 1.0) < 1e-6:
                break
        assert torch.linalg.norm(model.w.detach() - 1.0) < 1e-6, (start, len(opt.history))


MAX_ROSENBROCK_ITERS = 300  # measured: 40-141 from these starts


# (4) non-finite loss ---------------------------------------------------------------------------
@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_non_finite_loss_raises_and_changes_nothing(curvature):
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    x = torch.randn(8, 2, dtype=DT, generator=torch.Generator().manual_seed(0))
    opt = CurveBall(net, curvature=curvature, loss="mse")

    def make(xb):
        def closure():
            out = net(xb)
            return out, torch.mean((out - 1.0) ** 2)
        return closure

    for _ in range(3):
        opt.step(make(x))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    zs = [opt.state[p]["z"].clone() for p in net.parameters()]
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        opt.step(make(bad))
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    for p, z in zip(net.parameters(), zs, strict=True):
        torch.testing.assert_close(opt.state[p]["z"], z, rtol=0, atol=0)
    assert len(opt.history) == 3 and opt.state["curveball"]["step"] == 3
    with pytest.raises(NonFiniteLossError):
        opt.step(lambda: (net(x), torch.tensor(float("inf"), dtype=DT) * net(x).sum()))


def test_non_finite_curvature_is_guarded():
    model = Vector(torch.tensor([1.0, 2.0], dtype=DT))

    def closure():  # finite loss, infinite curvature: the step must be skipped, not poisoned
        r = model.w * 1e200
        return r, torch.sum(model.w**2)

    opt = CurveBall(model, loss="mse")
    opt.step(closure)
    assert opt.history[-1]["guard"] == 1.0
    assert torch.isfinite(model.w).all()


# (6) BatchNorm statistics, dropout masks and the RNG stream across the extra passes -------------
def test_extra_passes_keep_batchnorm_stats_dropout_masks_and_rng():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5),
                        nn.Linear(8, 2)).to(DT)
    x = torch.randn(16, 3, dtype=DT)
    y = torch.randn(16, 2, dtype=DT)

    def closure():
        out = net(x)
        return out, torch.mean((out - y) ** 2)

    # reference: one plain training forward pass from the same state
    ref = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.5),
                        nn.Linear(8, 2)).to(DT)
    ref.load_state_dict(net.state_dict())
    torch.manual_seed(123)
    ref(x)
    rng_after_one_forward = torch.get_rng_state()

    # rho = beta = 0: parameters do not move, so the λ-ratio pass (step 0) must see the same
    # loss exactly, which needs the same dropout masks and batch statistics
    opt = CurveBall(net, rho=0.0, beta=0.0, loss="mse")
    torch.manual_seed(123)
    opt.step(closure)
    rec = opt.history[0]
    assert rec["actual"] == 0.0
    bn, bn_ref = net[1], ref[1]
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, rtol=0, atol=0)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == 1
    assert torch.equal(torch.get_rng_state(), rng_after_one_forward)

    # with automatic ρ, β the model moves; statistics still advance once per step
    opt2 = CurveBall(net, loss="mse")
    opt2.step(closure)
    assert int(bn.num_batches_tracked) == 2
    assert math.isfinite(opt2.history[0]["ratio"])


def test_lambda_rule_and_state_dict_roundtrip():
    model = Vector(torch.tensor([-1.2, 1.0], dtype=DT))
    opt = CurveBall(model, lambd=1.0)
    closure = rosenbrock_closure(model)
    for _ in range(11):
        opt.step(closure)
    omega = 0.999**5
    lams = [1.0] + [h["lambd"] for h in opt.history]
    for k, h in enumerate(opt.history):
        before, after = lams[k], lams[k + 1]
        if k % 5 != 0:
            assert after == before and math.isnan(h["ratio"])
        elif h["ratio"] < 0.5:
            assert after == pytest.approx(before / omega, rel=1e-14)
        elif h["ratio"] > 1.5:
            assert after == pytest.approx(before * omega, rel=1e-14)
        else:
            assert after == before
    # a fresh optimizer loaded from state_dict continues identically
    clone = Vector(model.w.detach())
    opt2 = CurveBall(clone)
    opt2.load_state_dict(opt.state_dict())
    for _ in range(6):
        opt.step(closure)
        opt2.step(rosenbrock_closure(clone))
    torch.testing.assert_close(clone.w, model.w, rtol=0, atol=0)


def test_bad_configuration_is_refused():
    net = tiny_net()
    with pytest.raises(ValueError, match="weight_decay"):
        CurveBall([{"params": [net[0].weight], "lambd": 3.0}, {"params": [net[0].bias]}],
                  model=net)
    with pytest.raises(ValueError, match="model"):
        CurveBall(net.parameters())
    with pytest.raises(ValueError, match="closed-form"):
        CurveBall(net, forward_mode="func")
    other = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not parameters of `model`"):
        CurveBall(other.parameters(), model=net)


def test_optimizer_configs_build_and_step():
    """configs/optimizer/*.yaml build through make_optimizer and all take a step via take_step."""
    from omegaconf import OmegaConf

    from pdesolve.resources import config_dir
    from pdesolve.train.optimizers import make_optimizer, take_step

    root = config_dir() / "optimizer"
    net = tiny_net(4)
    x = torch.randn(8, 2, dtype=DT, generator=torch.Generator().manual_seed(10))

    def f():
        out = net(x)
        return out, torch.mean((out - 1.0) ** 2)

    first = float(f()[1])
    for name in ("sgd", "adam", "lbfgs", "curveball"):
        cfg = OmegaConf.to_container(OmegaConf.load(root / f"{name}.yaml"))
        assert cfg["name"] == name
        opt = make_optimizer(cfg.pop("name"), net, **cfg)
        for _ in range(3):
            take_step(opt, f)
    assert float(f()[1]) < first
    with pytest.raises(ValueError, match="needs the model"):
        make_optimizer("curveball", net.parameters())
    with pytest.raises(ValueError, match="known"):
        make_optimizer("rmsprop", net)
