"""A learned prolongation for 3-D 27-point stencils: a pointwise network over coarse points.

The 3-D counterpart of ``pdesolve.nn.prolongation`` (Greenfeld et al.'s rule, one dimension up).
At each coarse point the network reads the seven 3×3×3 fine stencils of the coarse point and its
six edge points (``pdesolve.discretize.prolongation3d.NEIGHBOURS3D``; 189 numbers, divided by the
centre entry of the coarse point's own stencil, so the map is invariant to the scale of ``A``)
and returns six positive edge scores ``x`` (+x, -x, +y, -y, +z, -z) and, with
``learn_faces=True`` (the default), twelve positive face factors ``f`` (``FACES`` order). The
two coarse points sharing an edge point get ``x_A / (x_A + x_B)``. Face weights are the
collapsed-plane rule's (given those edge weights) times ``f``, rescaled so that the coarse
points sharing a face point keep the rule's sum (``share_face_weights3d``: constants stay
interpolated exactly where the rule interpolates them). Cell weights follow from the
zero-local-residual rule; the centre weight is 1. Edge scores are ``b_k · exp(z_k)`` with
``b_k`` the black-box edge weight, face factors ``exp(z)`` (``z`` the network output;
``blackbox_skip=True``); the output layer starts at zero, so the untrained network *is* the
black-box prolongation. On Dirichlet grids the edge points next to the boundary keep the
black-box weight. In 3-D the face rule matters: learning the edges alone measured within 1–3 %
of black-box.

>>> import torch
>>> from pdesolve import get_problem
>>> net = ProlongationNet3D(width=8, blocks=1)
>>> s = torch.as_tensor(get_problem("diffusion", dim=3, n=7, coefficient="lognormal",
...                                 scheme="fe27", seed=0).discretize().stencil)
>>> p = learned_pstencil3d(net, s)
>>> p.shape
torch.Size([3, 3, 3, 3, 3, 3])
>>> bool(torch.allclose(p[:-1, :, :, 2, 1, 1] + p[1:, :, :, 0, 1, 1], torch.ones(2, 3, 3).double()))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pdesolve.discretize.prolongation import coarse_size
from pdesolve.discretize.prolongation3d import (
    NEIGHBOURS3D,
    as_stencil3d,
    blackbox_edge_weights3d,
    collapsed_edge_weights3d,
    collapsed_planes_and_lines,
    complete_pstencil3d,
    face_weights3d,
    fine_stencils_at,
    gather_neighbour_stencils3d,
    pair_normalise3d,
    share_face_weights3d,
)
from pdesolve.discretize.pstencil3d_setup import (
    SetupStencils,
    complete_pstencil3d_setup,
    edge_weights_setup,
    face_weights_setup,
    pair_normalise_setup,
    share_face_weights_setup,
)
from pdesolve.nn.checkpoint import check_device
from pdesolve.nn.prolongation import PRECISIONS, ProlongationNet

_MIN_WEIGHT = 1e-6
#: the ``dim`` entry of a 3-D prolongation checkpoint (2-D checkpoints have none, or 2)
DIM = 3


class ProlongationNet3D(ProlongationNet):
    """Pointwise MLP: 189 normalised stencil entries -> 6 edge scores (+ 12 face factors).

    Parameters
    ----------
    width, blocks : int
        Hidden width and number of residual blocks (Fixup form, as in 2-D).
    blackbox_skip : bool
        Multiply the scores by the black-box edge weights (see the module docstring).
    learn_faces : bool
        Also output the twelve face factors.

    ``config`` holds the constructor arguments and ``dim = 3``.
    """

    inputs = 7 * 27

    def __init__(self, width: int = 32, blocks: int = 2, blackbox_skip: bool = True,
                 learn_faces: bool = True) -> None:
        super().__init__(width, blocks, blackbox_skip)
        self.config.update(dim=DIM, learn_faces=learn_faces)
        self.outputs = 18 if learn_faces else 6
        self.inp = nn.Linear(self.inputs, width, bias=False, dtype=torch.float64)
        self.out = nn.Linear(width, self.outputs, dtype=torch.float64)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, stencils7: Tensor) -> Tensor:
        """Scores ``(..., 6)`` or ``(..., 18)`` (edge scores, face factors) from the seven
        stencils ``(..., 7, 3, 3, 3)``."""
        centre = stencils7[..., 0, 1, 1, 1]
        if torch.any(centre <= 0):
            raise ValueError("the prolongation network needs positive stencil centres")
        z = (stencils7 / centre[..., None, None, None, None]).flatten(-4)
        h = torch.relu(self.inp(z))
        for block in self.body:
            h = block(h)
        scores = torch.exp(self.out(torch.relu(h + self.bias)))
        if self.blackbox_skip:
            bb = collapsed_edge_weights3d(stencils7).clamp_min(_MIN_WEIGHT)
            return torch.cat([bb * scores[..., :6], scores[..., 6:]], dim=-1)
        return scores

    @torch.no_grad()
    def infer(self, stencils7: Tensor, dtype: torch.dtype = torch.float32, chunk: int = 8192,
              blackbox: Tensor | None = None) -> Tensor:
        """``forward`` without autograd, the network in ``dtype`` and ``chunk`` points at a time;
        normalisation, skip and result in the stencils' dtype."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        centre = stencils7[..., 0, 1, 1, 1]
        if torch.any(centre <= 0):
            raise ValueError("the prolongation network needs positive stencil centres")
        lead = stencils7.shape[:-4]
        flat = stencils7.reshape(-1, self.inputs)
        scale = centre.reshape(-1, 1)
        logits = torch.empty(flat.shape[0], self.outputs, dtype=stencils7.dtype,
                             device=stencils7.device)
        layers = self._folded(dtype, stencils7.device)
        for start in range(0, flat.shape[0], chunk):
            part = slice(start, start + chunk)
            logits[part] = self.logits((flat[part] / scale[part]).to(dtype), layers)
        scores = torch.exp_(logits.reshape(*lead, self.outputs))
        if self.blackbox_skip:
            bb = collapsed_edge_weights3d(stencils7) if blackbox is None else blackbox
            scores[..., :6].mul_(bb.clamp_min(_MIN_WEIGHT))
        return scores


    @torch.no_grad()
    def logits(self, z: Tensor, layers: tuple | None = None, centre: Tensor | None = None
               ) -> Tensor:
        """The output layer's values ``(m, outputs)`` for normalised inputs ``z`` ``(m, 189)``
        (stencils divided by the coarse point's centre entry) in the dtype of ``z``, or for raw
        stencils ``z`` and their ``centre`` ``(m, 1)`` (the input layer is linear: dividing its
        output is the same map). ``layers``: ``_folded(z.dtype, z.device)``, if computed."""
        w_in, blocks, (bias, w_out, b_out) = layers or self._folded(z.dtype, z.device)
        h = z @ w_in
        if centre is not None:
            h.div_(centre)
        h = torch.relu_(h)
        for w1, c1, w2, b3 in blocks:
            t = torch.relu_(torch.addmm(c1, h, w1))
            h.add_(b3).addmm_(t, w2)
        return torch.addmm(b_out, h.add_(bias).relu_(), w_out)


def learned_pstencil3d(net: ProlongationNet3D, stencil: Tensor, periodic: bool = False,
                       precision: str | None = None) -> Tensor:
    """P-stencils ``(..., nc, nc, nc, 3, 3, 3)`` of the learned prolongation for fine stencils
    ``(..., n, n, n, 3, 3, 3)`` (or ``(..., n, n, n, 27)``).

    ``precision=None`` runs ``net`` itself (differentiable: training); ``"float32"`` or
    ``"float64"`` its batched inference (no autograd, one coarse x-plane block at a time).
    """
    if not isinstance(net, ProlongationNet3D):
        raise TypeError(f"a 3-D prolongation needs a ProlongationNet3D, got {type(net).__name__} "
                        "(a 2-D network reads 3x3 stencils)")
    stencil = as_stencil3d(stencil)
    param = next(net.parameters())
    if precision is None:
        stencil = stencil.to(dtype=param.dtype, device=param.device)
        s7 = gather_neighbour_stencils3d(stencil, periodic)
        scores = net(s7)
        fallback = None if periodic else collapsed_edge_weights3d(s7)
    else:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        stencil = stencil.to(dtype=torch.float64, device=param.device)
        planes, lines = collapsed_planes_and_lines(stencil)
        bb = blackbox_edge_weights3d(stencil, periodic, lines)
        scores = _batched_scores(net, stencil, bb, periodic, getattr(torch, precision))
        fallback = None if periodic else bb
    edge = pair_normalise3d(scores[..., :6], periodic=periodic, fallback=fallback)
    if precision is None:
        planes = collapsed_planes_and_lines(stencil)[0]
    faces = face_weights3d(stencil, edge, periodic, planes)
    if scores.shape[-1] > 6:
        faces = share_face_weights3d(faces, scores[..., 6:], periodic)
    return complete_pstencil3d(stencil, edge, periodic, planes, faces)


def _batched_scores(net: ProlongationNet3D, stencil: Tensor, blackbox: Tensor, periodic: bool,
                    dtype: torch.dtype, planes: int = 4) -> Tensor:
    """Network scores given the black-box edge weights, ``planes`` coarse x-planes at a time on
    one Dirichlet grid (the seven gathers stay small)."""
    if periodic or stencil.ndim != 6:
        return net.infer(gather_neighbour_stencils3d(stencil, periodic), dtype=dtype,
                         blackbox=blackbox)
    nc = coarse_size(stencil.shape[0])
    scores = torch.empty(nc, nc, nc, net.outputs, dtype=stencil.dtype, device=stencil.device)
    for i0 in range(0, nc, planes):
        i1 = min(i0 + planes, nc)
        block = stencil[2 * i0 : 2 * i1 + 1]  # fine planes of coarse planes i0..i1-1 and sides
        s7 = torch.stack([fine_stencils_at(block, o)[: i1 - i0] for o in NEIGHBOURS3D], dim=-4)
        scores[i0:i1] = net.infer(s7, dtype=dtype, blackbox=blackbox[i0:i1])
    return scores


def learned_pstencil3d_setup(net: ProlongationNet3D, stencil: np.ndarray | SetupStencils,
                             precision: str = "float32", planes: int = 4) -> np.ndarray:
    """``learned_pstencil3d(net, stencil, precision=precision)`` for one Dirichlet grid, the way a
    multigrid set-up wants it: numpy in and out (float64 ``(nc, nc, nc, 3, 3, 3)``), the rules of
    ``pdesolve.discretize.pstencil3d_setup`` around the network's batched inference
    (``ProlongationNet3D.infer``, ``planes`` coarse x-planes at a time). Equal to the reference
    path up to rounding.
    """
    if not isinstance(net, ProlongationNet3D):
        raise TypeError(f"a 3-D prolongation needs a ProlongationNet3D, got {type(net).__name__} "
                        "(a 2-D network reads 3x3 stencils)")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    g = stencil if isinstance(stencil, SetupStencils) else SetupStencils(stencil)
    nc, dtype = g.nc, getattr(torch, precision)
    device = next(net.parameters()).device
    bb = edge_weights_setup(g)
    layers = net._folded(dtype, device)
    scores = np.empty((net.outputs, nc, nc, nc))
    for i0 in range(0, nc, planes):
        i1 = min(i0 + planes, nc)
        z, centre = (torch.from_numpy(a).to(device) for a in g.neighbour_inputs(i0, i1, dtype))
        part = torch.exp_(net.logits(z, layers, centre)).cpu().numpy()
        scores[:, i0:i1] = part.T.reshape(net.outputs, i1 - i0, nc, nc)
    if net.blackbox_skip:
        scores[:6] *= np.maximum(bb, _MIN_WEIGHT)
    edge = pair_normalise_setup(scores[:6], bb)
    faces = face_weights_setup(g, edge)
    if net.outputs > 6:
        faces = share_face_weights_setup(faces, scores[6:])
    return complete_pstencil3d_setup(g, edge, faces)


def load_prolongation_net3d(path: str, map_location: str = "cpu") -> ProlongationNet3D:
    """A ``ProlongationNet3D`` from a checkpoint of ``pdesolve.train.prolongation_training3d``;
    a 2-D checkpoint is refused with a clear error."""
    check_device(map_location)
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    config: dict[str, Any] = dict(ckpt.get("config", {}))
    dim = config.pop("dim", ckpt.get("dim", 2))
    config.setdefault("learn_faces", False)  # checkpoints before face factors learned edges only
    if dim != DIM:
        raise ValueError(f"{path} holds a {dim}-D prolongation network; a 3-D grid needs a 3-D "
                         "one (pdesolve.train.prolongation_training3d)")
    net = ProlongationNet3D(**config).to(map_location)
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net
