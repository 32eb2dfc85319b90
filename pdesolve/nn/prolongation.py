"""The learned prolongation of Greenfeld et al. (ICML 2019): a pointwise network over coarse points.

At each coarse point the network reads the five 3×3 fine stencils (own, right, left, up, down;
45 numbers) and returns four positive scores ``x0..x3`` (right, left, up, down). The two coarse
points sharing a fine edge point get ``x_A / (x_A + x_B)`` (their weights sum to one there);
corner weights follow from the zero-local-residual rule; the centre weight is 1
(see ``docs/methods/learned_multigrid.md``).

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
  the black-box weight;
* a *guard* (``guard=g``, recorded in the checkpoint; ``None`` disables it): outside training,
  a coarse point whose correction ``|z_k|`` exceeds ``g`` for some ``k`` keeps the black-box
  weights, with a ``ProlongationGuardWarning``. The network is piecewise linear in its
  normalised inputs, so coefficient contrasts beyond the training range drive ``z`` far past
  anything seen in training (``|z|`` grows in proportion to a checkerboard's contrast) and the
  corrected weights become arbitrary; ``g`` is set just above the largest ``|z|`` over the
  training family (``correction_range``).

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
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from pdesolve.discretize.prolongation import (
    collapsed_edge_weights,
    corner_weights,
    gather_neighbour_stencils,
    pair_normalise,
)
from pdesolve.nn.checkpoint import check_device, target_device

_MIN_WEIGHT = 1e-6
#: network precisions of the batched inference path (``ProlongationNet.infer``)
PRECISIONS = ("float32", "float64")


class ProlongationGuardWarning(UserWarning):
    """Some coarse points fell back to black-box weights (network correction out of range)."""


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
    guard : float or None
        Largest accepted ``|z_k|`` outside training; beyond it a coarse point keeps the
        black-box weights (``learned_pstencil``). Needs ``blackbox_skip``.

    ``config`` holds the constructor arguments, so a checkpoint reloads without user code.
    """

    def __init__(self, width: int = 32, blocks: int = 4, blackbox_skip: bool = True,
                 guard: float | None = None) -> None:
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"width must be >= 1 and blocks >= 0, got {width}, {blocks}")
        self.config: dict[str, Any] = {
            "width": width, "blocks": blocks, "blackbox_skip": blackbox_skip,
        }
        self.blackbox_skip = blackbox_skip
        self.guard: float | None = None
        self.set_guard(guard)
        self.inp = nn.Linear(45, width, bias=False)
        self.body = nn.ModuleList(_FixupBlock(width, i + 1) for i in range(blocks))
        self.bias = nn.Parameter(torch.zeros(1))
        self.out = nn.Linear(width, 4)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.double()

    def set_guard(self, guard: float | None) -> None:
        """Set (or with None remove) the guard; it is recorded in ``config``."""
        if guard is not None and not (self.blackbox_skip and guard > 0):
            raise ValueError(f"guard must be positive and needs blackbox_skip=True, got {guard!r}")
        self.guard = None if guard is None else float(guard)
        self.config.pop("guard", None)
        if guard is not None:
            self.config["guard"] = self.guard

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

    @torch.no_grad()
    def infer(
        self,
        stencils5: Tensor,
        dtype: torch.dtype = torch.float32,
        chunk: int = 4096,
        blackbox: Tensor | None = None,
    ) -> Tensor:
        """``forward`` for inference: the network in ``dtype``, ``chunk`` points at a time.

        The same map as ``forward`` (biases folded into the matrix products, in-place updates,
        operands kept in cache); the input normalisation, the black-box skip and the result
        stay in the stencils' dtype (float64), so only the network's own rounding is
        ``dtype``'s. ``blackbox``: the collapsed-rule edge weights of ``stencils5`` if already
        computed. Runs on torch's current intra-op threads. No autograd.
        """
        return self._infer(stencils5, self._folded(dtype, stencils5.device), dtype, chunk,
                           blackbox)

    def _infer(self, stencils5: Tensor, layers: tuple, dtype: torch.dtype, chunk: int,
               blackbox: Tensor | None) -> Tensor:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        centre = stencils5[..., 0, 1, 1]
        if torch.any(centre <= 0):
            raise ValueError("the prolongation network needs positive stencil centres")
        lead = stencils5.shape[:-3]
        flat = stencils5.reshape(-1, 45)
        scale = centre.reshape(-1, 1)
        w_in, blocks, (bias, w_out, b_out) = layers
        logits = torch.empty(flat.shape[0], 4, dtype=stencils5.dtype, device=stencils5.device)
        for start in range(0, flat.shape[0], chunk):
            part = slice(start, start + chunk)
            h = torch.relu_((flat[part] / scale[part]).to(dtype) @ w_in)
            for w1, c1, w2, b3 in blocks:
                t = torch.relu_(torch.addmm(c1, h, w1))
                h.add_(b3).addmm_(t, w2)
            logits[part] = torch.addmm(b_out, h.add_(bias).relu_(), w_out)
        scores = torch.exp_(logits.reshape(*lead, 4))
        if self.blackbox_skip:
            bb = collapsed_edge_weights(stencils5) if blackbox is None else blackbox
            return scores.mul_(bb.clamp_min(_MIN_WEIGHT))
        return scores

    @torch.no_grad()
    def _folded(self, dtype: torch.dtype, device: torch.device) -> tuple:
        """Transposed weights in ``dtype`` with biases folded: ``lin1(h + b1) + b2 =
        h W1ᵀ + (b1 W1 1 + b2)`` and ``scale · lin2(t) = t (scale W2)ᵀ``."""

        def cast(t: Tensor) -> Tensor:
            return t.detach().to(dtype=dtype, device=device)

        blocks = []
        for blk in self.body:
            w1 = blk.lin1.weight.detach()
            c1 = blk.b1 * w1.sum(dim=1) + blk.b2
            blocks.append((cast(w1.t()).contiguous(), cast(c1),
                           cast((blk.scale * blk.lin2.weight).t()).contiguous(), cast(blk.b3)))
        head = (cast(self.bias), cast(self.out.weight.t()).contiguous(), cast(self.out.bias))
        return cast(self.inp.weight.t()).contiguous(), blocks, head


def learned_pstencil(
    net: ProlongationNet,
    stencil: Tensor,
    periodic: bool = False,
    precision: str | None = None,
) -> Tensor:
    """P-stencils ``(..., nc, nc, 3, 3)`` of the learned prolongation for fine stencils
    ``(..., n, n, 3, 3)`` (C-points at odd fine indices; see ``pdesolve.discretize.prolongation``).

    ``precision=None`` runs ``net`` itself (differentiable, in the network's dtype: training);
    ``"float32"`` or ``"float64"`` runs ``net.infer`` (no autograd, batched, the network in
    that dtype, everything else and the result in float64). A network with a ``guard`` not in
    training mode gives the black-box weights at coarse points whose correction is out of
    range, with a ``ProlongationGuardWarning`` naming how many.
    """
    if precision is None:
        param = next(net.parameters())
        stencil = stencil.to(dtype=param.dtype, device=param.device)
        s5 = gather_neighbour_stencils(stencil, periodic)
        scores = net(s5)
        bb = collapsed_edge_weights(s5)
    else:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        stencil = stencil.to(dtype=torch.float64, device=next(net.parameters()).device)
        scores, bb = _batched_scores(net, stencil, periodic, getattr(torch, precision))
    if net.guard is not None and not net.training:
        scores = _guarded(scores, bb, net.guard)
    edge = pair_normalise(scores, periodic=periodic, fallback=None if periodic else bb)
    return corner_weights(stencil, edge)


def correction_range(net: ProlongationNet, stencil: Tensor, periodic: bool = False) -> float:
    """The largest ``|z_k|`` (log of score over black-box weight) the network gives on fine
    stencils ``(..., n, n, 3, 3)``: the statistic behind a ``guard``.

    >>> net = ProlongationNet(width=8, blocks=1)  # zero output layer: z = 0
    >>> correction_range(net, torch.ones(9, 9, 3, 3).double())
    0.0
    """
    if not net.blackbox_skip:
        raise ValueError("correction_range needs a network with blackbox_skip=True")
    with torch.no_grad():
        s = stencil.to(dtype=torch.float64, device=next(net.parameters()).device)
        s5 = gather_neighbour_stencils(s, periodic)
        bb = collapsed_edge_weights(s5)
        z = torch.log(net.infer(s5, dtype=torch.float64, blackbox=bb) / bb.clamp_min(_MIN_WEIGHT))
    return float(z.abs().max()) if z.numel() else 0.0


def _guarded(scores: Tensor, bb: Tensor, guard: float) -> Tensor:
    """Black-box weights at the points where some ``|log(score / black-box)| > guard``."""
    base = bb.clamp_min(_MIN_WEIGHT)
    bad = (torch.log(scores / base).abs() > guard).any(dim=-1)
    count = int(bad.sum())
    if count:
        warnings.warn(
            f"learned prolongation: {count} of {bad.numel()} coarse points have a network "
            f"correction outside the range seen in training (|z| > {guard:g}); they use the "
            "black-box weights", ProlongationGuardWarning, stacklevel=3,
        )
        scores = torch.where(bad[..., None], base, scores)
    return scores


def _batched_scores(
    net: ProlongationNet, stencil: Tensor, periodic: bool, dtype: torch.dtype, rows: int = 8
) -> tuple[Tensor, Tensor]:
    """Network scores and collapsed-rule edge weights, computed ``rows`` coarse rows at a time
    on Dirichlet grids (the 5-stencil gathers stay in cache)."""
    if periodic or stencil.ndim != 4:
        s5 = gather_neighbour_stencils(stencil, periodic)
        bb = collapsed_edge_weights(s5)
        return net.infer(s5, dtype=dtype, blackbox=bb), bb
    nc, nc_cols = (stencil.shape[0] - 1) // 2, (stencil.shape[1] - 1) // 2  # a block of lines
    scores = torch.empty(nc, nc_cols, 4, dtype=stencil.dtype, device=stencil.device)
    edges = torch.empty_like(scores)
    layers = net._folded(dtype, stencil.device)
    with torch.no_grad():
        for i0 in range(0, nc, rows):
            i1 = min(i0 + rows, nc)
            # fine rows 2 i0 .. 2 i1 hold the centre, left and right lines of coarse rows i0..i1-1
            s5 = gather_neighbour_stencils(stencil[2 * i0 : 2 * i1 + 1])
            edges[i0:i1] = collapsed_edge_weights(s5)
            scores[i0:i1] = net._infer(s5, layers, dtype, rows * nc_cols, edges[i0:i1])
    return scores, edges


def load_prolongation_net(path: str, map_location: str = "cpu") -> ProlongationNet:
    """A ``ProlongationNet`` from a checkpoint written by ``pdesolve.train.prolongation_training``.

    The checkpoint stores ``config`` (constructor arguments) and ``model`` (the state dict).
    The network is put on the device ``map_location`` names.
    """
    check_device(map_location)
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    dim = ckpt["config"].get("dim", 2)
    if dim != 2:
        raise ValueError(f"{path} holds a {dim}-D prolongation network; a 2-D grid needs a 2-D "
                         "one (pdesolve.train.prolongation_training)")
    net = ProlongationNet(**ckpt["config"])
    device = target_device(map_location)
    if device is not None:
        net = net.to(device)
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net
