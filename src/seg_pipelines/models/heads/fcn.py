"""FCN head (Long et al.), as MMSegmentation's ``FCNHead``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .common import BaseDecodeHead, ConvModule


class FCNHead(BaseDecodeHead):
    """``num_convs`` ConvModules on one backbone level, optionally concatenated with the input.

    The thesis' FCN (Table 4.6: 11.87M parameters) is two 3x3 convs 2048->512->512 plus the
    classifier, i.e. ``num_convs=2, concat_input=False`` (MMSeg's config uses
    ``concat_input=True``, which would add an 11.8M-parameter 3x3 conv). The auxiliary head of every
    R50-D8 model is ``FCNHead(in_index=2, channels=256, num_convs=1, concat_input=False)``.

    Args:
        num_convs: number of ConvModules (0 = classifier directly on the input level).
        kernel_size: kernel of the convs.
        concat_input: concatenate the input with the conv output and fuse with a ConvModule.
        dilation: dilation of the convs.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        num_convs: int = 2,
        kernel_size: int = 3,
        concat_input: bool = False,
        dilation: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        if num_convs == 0 and self.in_channels != channels:
            raise ValueError("num_convs=0 needs in_channels == channels")
        padding = (kernel_size // 2) * dilation
        self.convs = nn.Sequential(
            *(
                ConvModule(
                    self.in_channels if i == 0 else channels, channels, kernel_size, padding=padding, dilation=dilation
                )
                for i in range(num_convs)
            )
        )
        self.concat_input = concat_input
        if concat_input:
            self.conv_cat = ConvModule(self.in_channels + channels, channels, kernel_size, padding=kernel_size // 2)

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        x = self.select(feats)
        out = self.convs(x)
        if self.concat_input:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        return out
