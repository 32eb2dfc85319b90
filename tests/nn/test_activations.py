"""RAF activations and the MLP/ResNet: definitions, gradients, dtypes, bad input."""

import math

import pytest
import torch

from pdesolve.nn.activations import LearnableRAF, PartitionedRAF, Rational, make_activation
from pdesolve.nn.mlp import MLP, ResNet, make_model

pytestmark = pytest.mark.usefixtures("one_thread")


def slice_reference(x, sizes, fns):
    """The official definition, written the slow way: one slice at a time into a zero tensor."""
    out = torch.zeros_like(x)
    start = 0
    for size, fn in zip(sizes, fns, strict=True):
        out[:, start : start + size] = fn(x[:, start : start + size])
        start += size
    return out


@pytest.mark.parametrize("width", [4, 7, 50])
@pytest.mark.parametrize("s", [0.05, 0.5])
def test_partitioned_equals_slicewise_definition(width, s):
    x = torch.randn(33, width, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    act = PartitionedRAF(width, "poly_sin_gaussian", gaussian_width=s)
    q = width // 4
    assert act.sizes == (q, q, q, width - 3 * q)
    fns = [lambda t: t, lambda t: t**2, torch.sin, lambda t: torch.exp(-(t**2) / (2 * s * s))]
    torch.testing.assert_close(act(x), slice_reference(x, act.sizes, fns), rtol=0, atol=0)


def test_oscillation_split_gaussian_on_last_ten():
    width = 50
    sizes = (12, 12, 16, 10)  # x, x², sin on [2q : m-10], Gaussian (s = 0.5) on the last 10
    act = PartitionedRAF(width, "poly_sin_gaussian", sizes=sizes, gaussian_width=0.5)
    x = torch.randn(5, width, dtype=torch.float64)
    y = act(x)
    torch.testing.assert_close(y[:, -10:], torch.exp(-x[:, -10:] ** 2 / 0.5))
    torch.testing.assert_close(y[:, 24:40], torch.sin(x[:, 24:40]))


@pytest.mark.parametrize(
    "act",
    [
        lambda: PartitionedRAF(8, "poly_sin_gaussian", gaussian_width=0.7),
        lambda: PartitionedRAF(9, ("x", "relu3", "rational")),
        lambda: LearnableRAF(6, init={"d": ("normal", 2.0, 0.1), "f": ("uniform", 0.5, 1.0)}),
    ],
)
def test_gradcheck_float64(act):
    module = act().double()
    x = torch.randn(4, module.width, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))
    assert torch.autograd.gradgradcheck(module, (x,))  # PINNs differentiate twice


def test_learnable_value_and_parameter_gradient_match_hand_formula():
    gen = torch.Generator().manual_seed(3)
    act = LearnableRAF(5, generator=gen).double()
    x = torch.randn(7, 5, dtype=torch.float64, generator=gen)
    a, b, c, d, e, f = (getattr(act, k).detach() for k in "abcdef")
    expected = a * x + b * x**2 + c * torch.sin(d * x) + e * torch.exp(-(x**2) / (2 * f**2))
    torch.testing.assert_close(act(x), expected)
    act(x).sum().backward()
    torch.testing.assert_close(act.d.grad, (c * x * torch.cos(d * x)).sum(0))
    g = torch.exp(-(x**2) / (2 * f**2))
    torch.testing.assert_close(act.f.grad, (e * g * x**2 / f**3).sum(0))
    torch.testing.assert_close(act.a.grad, x.sum(0))


def test_learnable_init_is_the_documented_one_and_seeded():
    a1 = LearnableRAF(4000, generator=torch.Generator().manual_seed(0))
    a2 = LearnableRAF(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a1.d, a2.d)
    assert abs(float(a1.d.detach().mean()) - 30.0) < 1e-3
    assert abs(float(a1.b.detach().mean()) - 1.0) < 0.01
    assert 0.01 <= float(a1.f.detach().min()) and float(a1.f.detach().max()) <= 0.05
    only_sin = LearnableRAF(3, terms=("sin", "gaussian"))
    assert {n for n, _ in only_sin.named_parameters()} == {"c", "d", "e", "f"}


def test_rational_initialised_close_to_relu():
    x = torch.linspace(-1, 1, 201)
    assert float((Rational()(x).detach() - torch.relu(x)).abs().max()) < 0.03


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["tanh", "sin", "relu", "relu3", "raf", "raf_learnable", "poly"])
def test_dtypes_follow_input(name, dtype):
    net = MLP(3, 1, width=8, depth=2, activation=name).to(dtype)
    y = net(torch.rand(4, 3, dtype=dtype))
    assert y.dtype == dtype and y.shape == (4, 1) and bool(torch.isfinite(y).all())


def test_relu3_and_sin_values():
    x = torch.tensor([-2.0, 0.5])
    torch.testing.assert_close(make_activation("relu3")(x), torch.tensor([0.0, 0.125]))
    torch.testing.assert_close(make_activation("sin")(x), torch.sin(x))


def test_resnet_identity_embedding_skip():
    net = ResNet(2, 1, width=6, blocks=2, activation="tanh").double()
    with torch.no_grad():
        for lin in net.linears:
            lin.weight.zero_()
            lin.bias.zero_()
    x = torch.rand(5, 2, dtype=torch.float64)
    # blocks output tanh(0) = 0, so s = [x, 0] reaches the output layer unchanged
    expected = x @ net.output.weight[:, :2].T + net.output.bias
    torch.testing.assert_close(net(x), expected)


def test_parameter_count_equal_width():
    acts = ("tanh", "sin", "relu3", "raf")
    nets = {a: make_model("resnet", 2, width=50, activation=a) for a in acts}
    counts = {a: sum(p.numel() for p in net.parameters()) for a, net in nets.items()}
    assert len(set(counts.values())) == 1 and counts["raf"] == 3 * 50 + 3 * 51 * 50 + 51


def test_bad_input():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        make_activation("swish", 4)
    with pytest.raises(ValueError, match="unknown RAF basis"):
        PartitionedRAF(8, ("x", "wavelet"))
    with pytest.raises(ValueError, match="sum to width"):
        PartitionedRAF(8, ("x", "sin"), sizes=(3, 3))
    with pytest.raises(ValueError, match="needs the layer width"):
        make_activation("raf")
    with pytest.raises(ValueError, match="expected last dimension 8"):
        PartitionedRAF(8)(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="unknown model"):
        make_model("transformer", 2)
    with pytest.raises(ValueError, match="at least the input dimension"):
        ResNet(5, 1, width=3)
    assert math.isfinite(float(PartitionedRAF(8)(torch.zeros(1, 8)).sum()))


JET_ACTIVATIONS = [
    ("tanh", {}), ("sigmoid", {}), ("sin", {}), ("relu", {}), ("relu3", {}), ("gelu", {}),
    ("silu", {}),
    ("softplus", {}), ("raf", {"gaussian_width": 0.3}), ("poly_sin_gaussian_rational", {}),
    ("raf", {"basis": ("x", "x2", "cos", "tanh", "relu", "relu3")}),
    ("raf_learnable", {"init": {"d": ("normal", 2.0, 0.1), "f": ("uniform", 0.5, 1.0)}}),
]


@pytest.mark.parametrize("name,options", JET_ACTIVATIONS)
def test_closed_form_derivatives_match_autograd(name, options):
    act = make_activation(name, 12, **options).double()
    x = torch.randn(40, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = x.requires_grad_(True)
    value, d1, d2 = act.derivatives(x)
    y = act(x)
    (g1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x)
    torch.testing.assert_close(value, y, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(d1, g1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(d2, g2, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("model", ["mlp", "resnet"])
@pytest.mark.parametrize("name,options", JET_ACTIVATIONS[::2] + JET_ACTIVATIONS[-1:])
def test_forward_laplacian_jet_matches_nested_autograd(model, name, options):
    torch.manual_seed(0)
    net = make_model(model, 3, 1, width=12, activation=name, activation_options=options).double()
    assert net.supports_jet
    x = torch.rand(25, 3, dtype=torch.float64, requires_grad=True)
    u = net(x).reshape(-1)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = sum(torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i]
              for i in range(3))  # fmt: skip
    value, jgrad, jlap = net.jet(x.detach())
    assert value.shape == (25, 1) and jgrad.shape == (25, 3, 1) and jlap.shape == (25, 1)
    scale = float(lap.detach().abs().max()) + 1.0
    torch.testing.assert_close(value[:, 0], u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jgrad[:, :, 0], grad, rtol=1e-11, atol=1e-11 * scale)
    torch.testing.assert_close(jlap[:, 0], lap, rtol=1e-10, atol=1e-11 * scale)
    # and the parameter gradients of a loss on the Laplacian agree too
    params = list(net.parameters())
    ga = torch.autograd.grad((lap**2).mean(), params, allow_unused=True, materialize_grads=True)
    gj = torch.autograd.grad((jlap[:, 0] ** 2).mean(), params, allow_unused=True,
                             materialize_grads=True)  # fmt: skip
    for a, b in zip(ga, gj, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11 * scale**2)
