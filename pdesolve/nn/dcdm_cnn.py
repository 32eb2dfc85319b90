"""The DCDM network (Kaneda et al., ICML 2023; docs/methods/dcdm.md): a fully convolutional CNN that
maps a normalised residual on the grid to a search direction, in 3D and its 2D analogue.

Layout (16 channels, 3^d kernels, 'same' padding, one pooling level):
``conv_in`` (linear) → ``pre`` residual pairs → [average-pool 2 → ``coarse`` residual pairs →
nearest upsample 2, + skip] → ``post`` residual pairs → 1×1 conv to one channel. A residual pair is
``h ← relu(h + conv_b(relu(conv_a(h))))``. Defaults (2, 3, 2) give the 14 hidden
convolutions and ≈ 97.5k parameters of the paper's N = 64 model; (3, 5, 3) is its N = 128 model.

``levels > 1`` (not in the paper) nests further pooling levels inside the coarse one, U-Net style:
level ℓ pools level ℓ − 1 and runs ``coarse`` residual pairs; on the way back each level adds the
upsampled level below and runs one more residual pair. Each level doubles the receptive field of
its convolutions: with one level the network sees ±22 (N = 64 layout) to ±34 cells (N = 128),
too few to tell the smoothest modes of a 128² box apart (the 2D model
experiments/dcdm/runs/run2d128_onelevel/ stalled); ``levels=1`` is exactly the paper's network (same
parameters and state-dict keys).
Fields whose size is not a multiple of ``2**levels`` are zero-padded before pooling and cropped
after, so a model trained on one grid runs on any other grid of the same dimension.

>>> net = DCDMNet(dim=2)
>>> net(torch.zeros(3, 1, 16, 16)).shape, net(torch.zeros(1, 1, 33, 20)).shape
(torch.Size([3, 1, 16, 16]), torch.Size([1, 1, 33, 20]))
>>> DCDMNet(dim=2, levels=3)(torch.zeros(1, 1, 33, 20)).shape
torch.Size([1, 1, 33, 20])
>>> sum(p.numel() for p in DCDMNet(dim=3).parameters())
97457
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn


def _mkldnn_ok(x: Tensor) -> bool:
    cpu32 = x.device.type == "cpu" and x.dtype == torch.float32
    return cpu32 and torch.backends.mkldnn.is_available()


class _OneDNNConv:
    """Mixin for ``nn.Conv2d``/``nn.Conv3d``: call oneDNN directly for float32 CPU tensors.

    PyTorch's dispatcher sends a batch of one small 3D field (``C·D·H <= 20480``, e.g. 16
    channels at 32³, which is every DCDM inference at 32³) to its im2col fallback, which is about
    10× slower on one thread than oneDNN; same weights, same state-dict keys, float32 round-off.
    """

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if _mkldnn_ok(x):
            return torch.mkldnn_convolution(x, weight, bias, self.padding, self.stride,
                                            self.dilation, self.groups)  # fmt: skip
        return super()._conv_forward(x, weight, bias)  # type: ignore[misc]


class _Conv2d(_OneDNNConv, nn.Conv2d):
    """``nn.Conv2d`` through oneDNN on CPU (see ``_OneDNNConv``)."""


class _Conv3d(_OneDNNConv, nn.Conv3d):
    """``nn.Conv3d`` through oneDNN on CPU (see ``_OneDNNConv``)."""


class _ResidualPair(nn.Module):
    def __init__(self, conv: type[nn.Module], channels: int, bias: bool) -> None:
        super().__init__()
        self.a = conv(channels, channels, 3, padding=1, bias=bias)
        self.b = conv(channels, channels, 3, padding=1, bias=bias)

    def forward(self, h: Tensor) -> Tensor:
        return torch.relu(h + self.b(torch.relu(self.a(h))))


class DCDMNet(nn.Module):
    """The DCDM CNN; input and output ``(B, 1, *grid)`` (see the module docstring).

    Parameters
    ----------
    dim : 2 or 3
    channels : feature channels (16 in the paper)
    pre, coarse, post : residual pairs before pooling, at each coarse level, after upsampling
    levels : pooling levels (1 in the paper; see the module docstring)
    bias : convolution biases (the paper's Keras model has them). Without them the network is
        positively homogeneous, ``f(c r) = c f(r)`` for ``c > 0``, and ``f(0) = 0``: the shipped
        2D model uses ``bias=False`` because a first model with biases became dominated by its
        input-independent part ``f(0)`` and made DCDM(k=2) stagnate
        (experiments/dcdm/runs/run2d_bias/).
    """

    def __init__(
        self,
        dim: int = 3,
        channels: int = 16,
        pre: int = 2,
        coarse: int = 3,
        post: int = 2,
        bias: bool = True,
        levels: int = 1,
    ) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"DCDMNet is 2D or 3D, got dim={dim!r}")
        if channels < 1 or min(pre, coarse, post) < 0:
            raise ValueError("channels must be >= 1 and pre/coarse/post >= 0")
        if not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
        self.config = {"dim": dim, "channels": channels, "pre": pre, "coarse": coarse, "post": post,
                       "bias": bias}  # fmt: skip
        if levels > 1:  # checkpoints of one-level models keep their original config
            self.config["levels"] = levels
        self.dim, self.levels = dim, levels
        conv = _Conv2d if dim == 2 else _Conv3d
        self.conv_in = conv(1, channels, 3, padding=1, bias=bias)
        self.pre = nn.Sequential(*[_ResidualPair(conv, channels, bias) for _ in range(pre)])
        self.coarse = nn.Sequential(*[_ResidualPair(conv, channels, bias) for _ in range(coarse)])
        self.post = nn.Sequential(*[_ResidualPair(conv, channels, bias) for _ in range(post)])
        self.conv_out = conv(channels, 1, 1, bias=bias)
        self.pool = nn.AvgPool2d(2) if dim == 2 else nn.AvgPool3d(2)
        stacks = [[_ResidualPair(conv, channels, bias) for _ in range(coarse)]
                  for _ in range(levels - 1)]  # fmt: skip
        self.deeper = nn.ModuleList(nn.Sequential(*stack) for stack in stacks)
        self.merge = nn.ModuleList(_ResidualPair(conv, channels, bias) for _ in stacks)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self.dim + 2 or x.shape[1] != 1:
            raise ValueError(
                f"DCDMNet(dim={self.dim}) takes (B, 1, *grid) with {self.dim} grid axes, "
                f"got shape {tuple(x.shape)}"
            )
        shape = x.shape[2:]
        m = 2**self.levels
        pad = []
        for n in reversed(shape):
            pad += [0, -n % m]
        h = self.pre(self.conv_in(nn.functional.pad(x, pad) if any(pad) else x))
        coarse = [self.coarse(self._pool(h))]
        for stack in self.deeper:
            coarse.append(stack(self._pool(coarse[-1])))
        c = coarse.pop()
        for merge in reversed(self.merge):
            c = merge(coarse.pop() + nn.functional.interpolate(c, scale_factor=2, mode="nearest"))
        up = nn.functional.interpolate(c, scale_factor=2, mode="nearest")
        out = self.conv_out(self.post(h + up))
        return out[(..., *[slice(0, n) for n in shape])]

    def _pool(self, h: Tensor) -> Tensor:
        # torch's CPU kernels have no bfloat16 3D average pooling: pool those in float32
        if h.dtype == torch.bfloat16 and h.device.type == "cpu" and self.dim == 3:
            return self.pool(h.float()).to(h.dtype)
        return self.pool(h)


def save_dcdm_model(path: str | os.PathLike, model: DCDMNet, **extra: Any) -> None:
    """Write ``model`` as a pdesolve checkpoint (constructor config included) to ``path``."""
    from pdesolve.nn.checkpoint import save_checkpoint

    save_checkpoint(path, step=extra.pop("step", 0), config={"model": model.config}, model=model,
                    **extra)  # fmt: skip


def load_dcdm_model(path: str | os.PathLike, map_location: Any = "cpu") -> DCDMNet:
    """Rebuild a ``DCDMNet`` from a checkpoint written by training or :func:`save_dcdm_model`,
    on the device ``map_location`` names (a checkpoint saved on a GPU loads on the CPU and the
    other way round)."""
    from pdesolve.nn.checkpoint import load_checkpoint, target_device

    ckpt = load_checkpoint(path, map_location=map_location)
    cfg = ckpt["config"].get("model")
    if not isinstance(cfg, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds no DCDM model config")
    model = DCDMNet(**cfg)
    device = target_device(map_location)
    if device is not None:
        model = model.to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval()
