"""The learned prolongation of Greenfeld et al. (ICML 2019): a pointwise network over coarse points.

At each coarse point the network reads the five 3×3 fine stencils (own, right, left, up, down;
45 numbers) and returns four positive scores ``x0..x3`` (right, left, up, down). The two coarse
points sharing a fine edge point get ``x_A / (x_A + x_B)`` (their weights sum to one there);
corner weights follow from the zero-local-residual rule; the centre weight is 1
(METHODS.md §2.3).

Differences from the official code, all deliberate and configurable where it matters:

* inputs are divided by the centre entry of the coarse point's own stencil, so the map is
  invariant to the scale of ``A`` (our stencils carry ``1/h²``; Galerkin levels change scale);
* scores are ``x_k = b_k · exp(z_k)`` with ``z`` the network output and ``b_k`` the black-box
  collapsed-rule weight (``blackbox_skip=True``, the default): with the zero-initialised output
  layer the untrained network *is* the (pair-normalised) black-box prolongation, and training
  learns a correction. ``blackbox_skip=False`` gives ``x_k = exp(z_k)``;
* residual blocks are the standard Fixup form (the official block doubles its activations, a
  leftover); depth and width are arguments (the paper: 49 blocks ≈ 100 layers, width 100);
* on Dirichlet grids the edge points next to the boundary have one coarse neighbour; they keep
  the black-box weight.

>>> import torch
>>> from pdesolve import get_problem
>>> net = ProlongationNet(width=16, blocks=2)
>>> s = torch.as_tensor(get_problem("diffusion", dim=2, n=15, coefficient="lognormal",
...                                 scheme="fe9", seed=0).discretize().stencil)
>>> p = learned_pstencil(net, s)
>>> p.shape
torch.Size([7, 7, 3, 3])
>>> bool(torch.allclose(p[:-1, :, 2, 1] + p[1:, :, 0, 1], torch.ones(6, 7).double()))
True
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from pdesolve.discretize.prolongation import (
    collapsed_edge_weights,
    corner_weights,
    gather_neighbour_stencils,
    pair_normalise,
)
from pdesolve.nn.checkpoint import check_device

_MIN_WEIGHT = 1e-6


class _FixupBlock(nn.Module):
    """``x + scale · W2 relu(W1 (x + b1) + b2) + b3`` (Fixup init: W2 = 0)."""

    def __init__(self, width: int, index: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(width, width, bias=False)
        self.lin2 = nn.Linear(width, width, bias=False)
        self.b1 = nn.Parameter(torch.zeros(1))
        self.b2 = nn.Parameter(torch.zeros(1))
        self.b3 = nn.Parameter(torch.zeros(1))
        self.scale = nn.Parameter(torch.ones(1))
        std = math.sqrt(2.0 / width) * index ** (-0.5)  # index-dependent, as in the paper
        nn.init.trunc_normal_(self.lin1.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.lin2.weight)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.lin1(x + self.b1) + self.b2)
        return x + self.scale * self.lin2(h) + self.b3


class ProlongationNet(nn.Module):
    """Pointwise MLP: 45 normalised stencil entries -> 4 positive edge scores.

    Parameters
    ----------
    width, blocks : int
        Hidden width and number of residual blocks (2 linear layers each).
    blackbox_skip : bool
        Multiply the scores by the black-box collapsed-rule weights (see the module docstring).

    ``config`` holds the constructor arguments, so a checkpoint reloads without user code.
    """

    def __init__(self, width: int = 32, blocks: int = 4, blackbox_skip: bool = True) -> None:
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"width must be >= 1 and blocks >= 0, got {width}, {blocks}")
        self.config: dict[str, Any] = {
            "width": width, "blocks": blocks, "blackbox_skip": blackbox_skip,
        }
        self.blackbox_skip = blackbox_skip
        self.inp = nn.Linear(45, width, bias=False)
        self.body = nn.ModuleList(_FixupBlock(width, i + 1) for i in range(blocks))
        self.bias = nn.Parameter(torch.zeros(1))
        self.out = nn.Linear(width, 4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.double()

    def forward(self, stencils5: Tensor) -> Tensor:
        """Scores ``(..., 4)`` (right, left, up, down) from stencils ``(..., 5, 3, 3)``."""
        centre = stencils5[..., 0, 1, 1]
        if torch.any(centre <= 0):
            raise ValueError("the prolongation network needs positive stencil centres")
        z = (stencils5 / centre[..., None, None, None]).flatten(-3)
        h = torch.relu(self.inp(z))
        for block in self.body:
            h = block(h)
        logits = self.out(torch.relu(h + self.bias))
        if self.blackbox_skip:
            bb = collapsed_edge_weights(stencils5).clamp_min(_MIN_WEIGHT)
            return bb * torch.exp(logits)
        return torch.exp(logits)


def learned_pstencil(net: ProlongationNet, stencil: Tensor, periodic: bool = False) -> Tensor:
    """P-stencils ``(..., nc, nc, 3, 3)`` of the learned prolongation for fine stencils
    ``(..., n, n, 3, 3)`` (C-points at odd fine indices; see ``pdesolve.discretize.prolongation``).
    """
    param = next(net.parameters())
    stencil = stencil.to(dtype=param.dtype, device=param.device)
    s5 = gather_neighbour_stencils(stencil, periodic)
    scores = net(s5)
    fallback = None if periodic else collapsed_edge_weights(s5)
    edge = pair_normalise(scores, periodic=periodic, fallback=fallback)
    return corner_weights(stencil, edge)


def load_prolongation_net(path: str, map_location: str = "cpu") -> ProlongationNet:
    """A ``ProlongationNet`` from a checkpoint written by ``pdesolve.train.prolongation_training``.

    The checkpoint stores ``config`` (constructor arguments) and ``model`` (the state dict).
    """
    check_device(map_location)
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    net = ProlongationNet(**ckpt["config"])
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net
