"""PSPNet head (Zhao et al.), as MMSegmentation's ``PSPHead``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .common import BaseDecodeHead, ConvModule, PyramidPoolingModule


class PSPHead(BaseDecodeHead):
    """Pyramid pooling (scales 1, 2, 3, 6) concatenated with the input, fused by a 3x3 ConvModule.

    Args:
        pool_scales: output sizes of the adaptive average pools.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        self.psp_modules = PyramidPoolingModule(pool_scales, self.in_channels, channels, self.align_corners)
        self.bottleneck = ConvModule(self.in_channels + len(pool_scales) * channels, channels, 3, padding=1)

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        x = self.select(feats)
        return self.bottleneck(torch.cat([x, *self.psp_modules(x)], dim=1))
