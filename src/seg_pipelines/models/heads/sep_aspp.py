"""DeepLabV3+ head (Chen et al. 2018), as MMSegmentation's ``DepthwiseSeparableASPPHead``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .aspp import ASPPHead
from .common import ConvModule, DepthwiseSeparableConvModule, resize


class DepthwiseSeparableASPPHead(ASPPHead):
    """ASPP with depthwise-separable atrous branches, plus a decoder that fuses the upsampled ASPP
    output with a 48-channel projection of the stride-4 level (two separable 3x3 convs).

    Args:
        c1_in_channels: channels of the low-level (stage 1) feature; 0 disables the skip.
        c1_channels: channels the low-level feature is projected to (48).
        c1_index: index of the low-level level in the feature list.
        **kwargs: :class:`ASPPHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        c1_in_channels: int | None = None,
        c1_channels: int = 48,
        c1_index: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        if c1_in_channels is None:
            c1_in_channels = self.in_channels_all[c1_index]
        self.c1_index = c1_index
        self.aspp_modules = nn.ModuleList(
            ConvModule(self.in_channels, channels, 1)
            if d == 1
            else DepthwiseSeparableConvModule(self.in_channels, channels, 3, padding=d, dilation=d)
            for d in self.dilations
        )
        self.c1_bottleneck = ConvModule(c1_in_channels, c1_channels, 1) if c1_in_channels > 0 else None
        skip = c1_channels if c1_in_channels > 0 else 0
        self.sep_bottleneck = nn.Sequential(
            DepthwiseSeparableConvModule(channels + skip, channels, 3, padding=1),
            DepthwiseSeparableConvModule(channels, channels, 3, padding=1),
        )

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        out = self.bottleneck(self.aspp(self.select(feats)))
        if self.c1_bottleneck is not None:
            low_level = self.c1_bottleneck(feats[self.c1_index])
            out = torch.cat([resize(out, low_level.shape[-2:], self.align_corners), low_level], dim=1)
        return self.sep_bottleneck(out)
