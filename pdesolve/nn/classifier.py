"""Small classifiers with a named feature layer: ``features`` (the body) and ``head`` (linear).

Training strategies that act on features (``pdesolve.train.imbalance``) hook the output of a
named submodule; these networks name theirs ``features``. ``kind="mlp"`` flattens the input and
applies ``depth`` ReLU layers of ``width``; ``kind="cnn"`` takes images ``(N, C, H, W)`` (or
``(N, H, W)``, or 1D signals ``(N, L)`` with ``dim=1``), applies two 3x3 (or 3-wide) convolution
blocks, global average pooling and one ReLU layer of ``width``. ``config`` holds the constructor
arguments, so checkpoints rebuild the network without user code (:func:`build_classifier`).

>>> import torch
>>> net = FeatureClassifier((8, 8), 10, kind="cnn", width=32)
>>> net(torch.rand(5, 8, 8)).shape
torch.Size([5, 10])
>>> net.features(torch.rand(5, 8, 8)).shape
torch.Size([5, 32])
>>> build_classifier(net.config).config == net.config
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

__all__ = ["FeatureClassifier", "build_classifier"]

KINDS = ("mlp", "cnn")


class FeatureClassifier(nn.Module):
    """``head(features(x))``: logits for ``num_classes`` classes from inputs of ``in_shape``."""

    def __init__(
        self,
        in_shape: int | Sequence[int],
        num_classes: int,
        kind: str = "mlp",
        width: int = 64,
        depth: int = 2,
        channels: int = 16,
    ) -> None:
        super().__init__()
        shape = (int(in_shape),) if isinstance(in_shape, int) else tuple(int(s) for s in in_shape)
        if kind not in KINDS:
            raise ValueError(f"unknown classifier kind {kind!r}; known: {', '.join(KINDS)}")
        if num_classes < 2 or width < 1 or depth < 1 or channels < 1 or min(shape) < 1:
            raise ValueError(
                f"need num_classes >= 2 and positive sizes, got num_classes={num_classes}, "
                f"in_shape={shape}, width={width}, depth={depth}, channels={channels}"
            )
        if kind == "cnn" and len(shape) not in (1, 2, 3):
            raise ValueError(f"cnn takes (L,), (H, W) or (C, H, W) inputs, got in_shape={shape}")
        self.config = {
            "in_shape": list(shape), "num_classes": int(num_classes), "kind": kind,
            "width": int(width), "depth": int(depth), "channels": int(channels),
        }  # fmt: skip
        self.in_shape = shape
        if kind == "mlp":
            layers: list[nn.Module] = [nn.Flatten()]
            previous = math.prod(shape)
            for _ in range(depth):
                layers += [nn.Linear(previous, width), nn.ReLU()]
                previous = width
            self.features = nn.Sequential(*layers)
        else:
            one_d = len(shape) == 1
            in_ch = 1 if len(shape) < 3 else shape[0]
            conv, pool = (
                (nn.Conv1d, nn.AdaptiveAvgPool1d) if one_d else (nn.Conv2d, nn.AdaptiveAvgPool2d)
            )
            self.features = nn.Sequential(
                _AddChannel(len(shape)),
                conv(in_ch, channels, 3, padding=1), nn.ReLU(),
                conv(channels, 2 * channels, 3, padding=1), nn.ReLU(),
                pool(1), nn.Flatten(),
                nn.Linear(2 * channels, width), nn.ReLU(),
            )  # fmt: skip
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class _AddChannel(nn.Module):
    """Insert the channel axis for ``(N, L)`` / ``(N, H, W)`` inputs; pass ``(N, C, H, W)``."""

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.ndim = ndim

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(1) if self.ndim < 3 else x


def build_classifier(config: Mapping[str, Any]) -> FeatureClassifier:
    """Rebuild a :class:`FeatureClassifier` from its ``config`` (e.g. from a checkpoint)."""
    return FeatureClassifier(**dict(config))
