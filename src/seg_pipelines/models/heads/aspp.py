"""DeepLabV3 head (Chen et al.): atrous spatial pyramid pooling, as MMSegmentation's ``ASPPHead``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import BaseDecodeHead, ConvModule, resize


class ASPPHead(BaseDecodeHead):
    """Image pooling + one branch per dilation (1x1 for dilation 1, 3x3 atrous otherwise), fused by
    a 3x3 ConvModule.

    Args:
        dilations: dilation of each ASPP branch (MMSeg R50-D8: 1, 12, 24, 36).
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        dilations: Sequence[int] = (1, 12, 24, 36),
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        self.dilations = tuple(dilations)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvModule(self.in_channels, channels, 1))
        self.aspp_modules = nn.ModuleList(self._branch(self.in_channels, channels, d) for d in dilations)
        self.bottleneck = ConvModule((len(dilations) + 1) * channels, channels, 3, padding=1)

    @staticmethod
    def _branch(in_channels: int, channels: int, dilation: int) -> nn.Module:
        if dilation == 1:
            return ConvModule(in_channels, channels, 1)
        return ConvModule(in_channels, channels, 3, padding=dilation, dilation=dilation)

    def aspp(self, x: Tensor) -> Tensor:
        """Concatenated ASPP branches ``(B, (len(dilations) + 1) * channels, h, w)``."""
        pooled = resize(self.image_pool(x), x.shape[-2:], self.align_corners)
        return torch.cat([pooled, *(branch(x) for branch in self.aspp_modules)], dim=1)

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        return self.bottleneck(self.aspp(self.select(feats)))
