"""Fully connected networks for PINNs: ``MLP`` and the RAF paper's small ``ResNet``.

Both take the activation by name (see :func:`pdesolve.nn.activations.make_activation`); every
hidden layer gets its own activation module, so learnable activations are per layer.

The ResNet (METHODS.md §1.2) embeds the input into the width by zero padding (``s = [x, 0]``) and
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

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from pdesolve.nn.activations import make_activation

__all__ = ["MLP", "MODELS", "ResNet", "count_parameters", "make_model"]


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` neurons, each followed by the activation.

    >>> net = MLP(1, 1, width=4, depth=2, activation="tanh")
    >>> [type(m).__name__ for m in net.layers]
    ['Linear', '_Elementwise', 'Linear', '_Elementwise', 'Linear']
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        width: int = 50,
        depth: int = 4,
        activation: str = "tanh",
        activation_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be positive, got {depth}, {width}")
        options = dict(activation_options or {})
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [
                nn.Linear(in_dim if i == 0 else width, width),
                make_activation(activation, width, **options),
            ]
        layers.append(nn.Linear(width, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


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
