"""UperNet head (Xiao et al.), as MMSegmentation's ``UPerHead``: PPM on the last level + FPN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import BaseDecodeHead, ConvModule, PyramidPoolingModule, resize


class UPerHead(BaseDecodeHead):
    """Pyramid pooling on the coarsest level, top-down FPN over all levels, every FPN output
    upsampled to the finest level, concatenated and fused by a 3x3 ConvModule.

    Args:
        in_channels: channels of the levels, finest first (R50: 256, 512, 1024, 2048).
        pool_scales: PPM scales.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int,
        num_classes: int,
        *,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        levels = self.in_channels_all
        self.psp_modules = PyramidPoolingModule(pool_scales, levels[-1], channels, self.align_corners)
        self.bottleneck = ConvModule(levels[-1] + len(pool_scales) * channels, channels, 3, padding=1)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in levels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3, padding=1) for _ in levels[:-1])
        self.fpn_bottleneck = ConvModule(len(levels) * channels, channels, 3, padding=1)

    def psp_forward(self, x: Tensor) -> Tensor:
        return self.bottleneck(torch.cat([x, *self.psp_modules(x)], dim=1))

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        feats = list(feats)[-len(self.in_channels_all) :]
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, feats)] + [self.psp_forward(feats[-1])]
        for i in range(len(laterals) - 1, 0, -1):  # top-down pathway
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[-2:], self.align_corners)
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        outs = [outs[0]] + [resize(o, size, self.align_corners) for o in outs[1:]]
        return self.fpn_bottleneck(torch.cat(outs, dim=1))
