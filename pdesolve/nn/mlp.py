"""Fully connected networks for PINNs: ``MLP`` and the RAF paper's small ``ResNet``.

Both take the activation by name (see :func:`pdesolve.nn.activations.make_activation`); every
hidden layer gets its own activation module, so learnable activations are per layer.

The ResNet of the RAF paper embeds the input into the width by zero padding (``s = [x, 0]``) and
stacks ``blocks`` residual blocks ``s ← s + σ(W₂ σ(W₁ s + b₁) + b₂)``; a final linear layer maps to
the output. With ``blocks=2`` that is the official code's four hidden layers.

>>> import torch
>>> net = ResNet(2, 1, width=8, activation="raf", activation_options={"gaussian_width": 0.5})
>>> net(torch.rand(5, 2)).shape
torch.Size([5, 1])
>>> sum(p.numel() for p in net.parameters())  # (2+1)·8 + 3·(8+1)·8 + (8+1)
249
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pdesolve.nn.activations import make_activation

__all__ = ["MLP", "MODELS", "ResNet", "count_parameters", "make_model", "supports_jet"]

#: a "jet": values ``(N, m)``, gradients with respect to the input ``(N, d, m)`` and Laplacians
#: ``(N, m)`` of every neuron
Jet = tuple[Tensor, Tensor, Tensor]


def input_jet(x: Tensor) -> Jet:
    """The jet of the input itself: ``∇x_i = e_i``, ``Δx_i = 0``."""
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, d, d)
    return x, eye, torch.zeros_like(x)


def linear_jet(layer: nn.Linear, jet: Jet) -> Jet:
    """``z = W h + b``: gradients and Laplacians are mapped by ``W`` alone."""
    h, grad, lap = jet
    weight = layer.weight.t()
    value = h @ weight if layer.bias is None else torch.addmm(layer.bias, h, weight)
    return value, grad @ weight, lap @ weight


def activation_jet(act: nn.Module, jet: Jet) -> Jet:
    """``σ(z)`` element-wise: ``∇σ = σ' ∇z``, ``Δσ = σ' Δz + σ'' |∇z|²``."""
    z, grad, lap = jet
    value, d1, d2 = act.derivatives(z)
    return value, d1[:, None, :] * grad, d1 * lap + d2 * (grad * grad).sum(dim=1)


def supports_jet(modules: Iterable[nn.Module]) -> bool:
    """Whether every activation module has closed-form ``derivatives`` (needed by ``jet``)."""
    return all(hasattr(m, "derivatives") for m in modules)


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` neurons, each followed by the activation.

    ``widths`` (a list of hidden-layer widths, in order) replaces ``width``/``depth`` for networks
    whose layers differ, e.g. Markidis's "narrow first, wide later" ordering.

    >>> net = MLP(1, 1, width=4, depth=2, activation="tanh")
    >>> [type(m).__name__ for m in net.layers]
    ['Linear', '_Elementwise', 'Linear', '_Elementwise', 'Linear']
    >>> count_parameters(MLP(2, 1, widths=[16, 32, 64, 80]))
    7985
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        width: int = 50,
        depth: int = 4,
        activation: str = "tanh",
        activation_options: Mapping[str, Any] | None = None,
        widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        hidden = [int(w) for w in widths] if widths is not None else [int(width)] * int(depth)
        if not hidden or min(hidden) < 1:
            raise ValueError(
                f"hidden layers need positive widths, got width={width}, depth={depth}, "
                f"widths={widths}"
            )
        options = dict(activation_options or {})
        layers: list[nn.Module] = []
        previous = in_dim
        for w in hidden:
            layers += [nn.Linear(previous, w), make_activation(activation, w, **options)]
            previous = w
        layers.append(nn.Linear(previous, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    @property
    def supports_jet(self) -> bool:
        return supports_jet(m for m in self.layers if not isinstance(m, nn.Linear))

    def jet(self, x: Tensor) -> Jet:
        """Output, input-gradient ``(N, d, out)`` and Laplacian ``(N, out)`` in one forward pass
        (forward-mode Laplacian; the graph is kept, so a loss on them can be back-propagated)."""
        jet = input_jet(x)
        for module in self.layers:
            if isinstance(module, nn.Linear):
                jet = linear_jet(module, jet)
            else:
                jet = activation_jet(module, jet)
        return jet


class ResNet(nn.Module):
    """The RAF paper's ResNet with identity-embedded skips (zero-padded input, ``width >= in_dim``).

    >>> import torch
    >>> net = ResNet(3, 1, width=6, blocks=1, activation="sin")
    >>> net.embed(torch.ones(1, 3))
    tensor([[1., 1., 1., 0., 0., 0.]])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        width: int = 50,
        blocks: int = 2,
        activation: str = "tanh",
        activation_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if width < in_dim:
            raise ValueError(f"ResNet width {width} must be at least the input dimension {in_dim}")
        if blocks < 1:
            raise ValueError(f"blocks must be positive, got {blocks}")
        options = dict(activation_options or {})
        self.in_dim, self.width = int(in_dim), int(width)
        self.linears = nn.ModuleList()
        self.activations = nn.ModuleList()
        for i in range(2 * blocks):
            self.linears.append(nn.Linear(in_dim if i == 0 else width, width))
            self.activations.append(make_activation(activation, width, **options))
        self.output = nn.Linear(width, out_dim)

    def embed(self, x: Tensor) -> Tensor:
        """``[x, 0, …, 0]``: the input padded with zeros to the width (no learnable weights)."""
        return nn.functional.pad(x, (0, self.width - self.in_dim))

    def forward(self, x: Tensor) -> Tensor:
        s = self.embed(x)
        h = x
        for i, (linear, act) in enumerate(zip(self.linears, self.activations, strict=True)):
            h = act(linear(h))
            if i % 2 == 1:
                s = s + h
                h = s
        return self.output(s)

    @property
    def supports_jet(self) -> bool:
        return supports_jet(self.activations)

    def jet(self, x: Tensor) -> Jet:
        """Output, input-gradient ``(N, d, out)`` and Laplacian ``(N, out)`` in one forward pass
        (see :meth:`MLP.jet`)."""
        value, grad, lap = input_jet(x)
        pad = (0, self.width - self.in_dim)
        s = (nn.functional.pad(value, pad), nn.functional.pad(grad, pad),
             nn.functional.pad(lap, pad))  # fmt: skip
        h = (value, grad, lap)
        for i, (linear, act) in enumerate(zip(self.linears, self.activations, strict=True)):
            h = activation_jet(act, linear_jet(linear, h))
            if i % 2 == 1:
                s = (s[0] + h[0], s[1] + h[1], s[2] + h[2])
                h = s
        return linear_jet(self.output, s)


MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "resnet": ResNet}


def make_model(name: str, in_dim: int, out_dim: int = 1, **options: Any) -> nn.Module:
    """Build ``mlp`` or ``resnet`` (options as in ``configs/model/<name>.yaml``).

    >>> type(make_model("mlp", 2, width=4, depth=1)).__name__
    'MLP'
    """
    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[key](in_dim, out_dim, **options)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars.

    >>> import torch
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
