"""A small 2D U-Net (Ronneberger et al.), the trained end-to-end baseline of the FIRENET study.

Input: one channel (e.g. the zero-filled adjoint reconstruction ``Re A* y``); output: the image.
``depth`` poolings, ``features`` channels at the top, doubled at each level, two 3×3 conv + BN +
ReLU per level, a residual connection from the input.

>>> import torch
>>> net = UNet(features=4, depth=2)
>>> net(torch.zeros(2, 1, 32, 32)).shape
torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UNet"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` down/up levels and ``features`` base channels (side divisible by
    ``2^depth``)."""

    def __init__(self, features: int = 16, depth: int = 3, channels: int = 1) -> None:
        super().__init__()
        self.config = {"features": features, "depth": depth, "channels": channels}
        widths = [features * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(channels, widths[0])])
        self.down.extend(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else nn.functional.max_pool2d(h, 2))
            skips.append(h)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return x + self.head(h)
