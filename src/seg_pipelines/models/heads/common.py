"""Building blocks shared by the closed-set decode heads (MMSegmentation conventions).

``ConvModule`` is conv (no bias) -> BatchNorm -> ReLU, as ``mmcv.cnn.ConvModule`` with
``norm_cfg=BN``; ``DepthwiseSeparableConvModule`` is a depthwise ConvModule followed by a pointwise
ConvModule (mmcv's default puts BN+ReLU after both). ``BaseDecodeHead`` fixes the surface every
head shares: ``forward_features(feats) -> (B, channels, h, w)``, ``cls_seg`` and ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def resize(x: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of an NCHW tensor to ``size`` (no-op when already that size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class ConvModule(nn.Sequential):
    """Conv2d (bias only without norm) -> BatchNorm2d -> ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        *,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        norm: bool = True,
        act: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=not norm,
            )
        ]
        if norm:
            layers.append(nn.BatchNorm2d(out_channels))
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels


class DepthwiseSeparableConvModule(nn.Sequential):
    """Depthwise ``kernel_size`` ConvModule then pointwise 1x1 ConvModule (BN+ReLU after each)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, *, padding: int = 1, dilation: int = 1
    ) -> None:
        super().__init__(
            ConvModule(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation, groups=in_channels),
            ConvModule(in_channels, out_channels, 1),
        )


def _as_list(in_channels: int | Sequence[int]) -> list[int]:
    return [in_channels] if isinstance(in_channels, int) else list(in_channels)


class BaseDecodeHead(nn.Module):
    """Common surface of the decode heads.

    Args:
        in_channels: channels of every backbone level the head may receive (a single int means
            one level). Heads pick their level(s) from the list with ``in_index``.
        channels: width of the head's features (the input of ``cls_seg``).
        num_classes: number of output classes.
        dropout_ratio: ``Dropout2d`` probability before the classifier (MMSeg: 0.1).
        in_index: index of the level a single-input head reads (default: the last).
        align_corners: ``align_corners`` of every internal bilinear resize.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        dropout_ratio: float = 0.1,
        in_index: int = -1,
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels_all = _as_list(in_channels)
        self.in_index = in_index
        self.channels = channels
        self.num_classes = num_classes
        self.align_corners = align_corners
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        nn.init.normal_(self.conv_seg.weight, 0.0, 0.01)  # MMSeg's classifier init
        nn.init.zeros_(self.conv_seg.bias)
        # Loss weights of extra logits returned by ``forward_features_with_extras`` (ISNet stage 1).
        self.extra_loss_weights: dict[str, float] = {}

    @property
    def in_channels(self) -> int:
        """Channels of the level selected by ``in_index``."""
        return self.in_channels_all[self.in_index]

    def select(self, feats: Sequence[Tensor] | Tensor) -> Tensor:
        """The level this head reads (a bare tensor is taken as that level)."""
        return feats if isinstance(feats, Tensor) else feats[self.in_index]

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        """Backbone levels -> head features ``(B, channels, h, w)``."""
        raise NotImplementedError

    def forward_features_with_extras(self, feats: Sequence[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Head features plus extra named logits supervised by ``extra_loss_weights``."""
        return self.forward_features(feats), {}

    def cls_seg(self, x: Tensor) -> Tensor:
        """Dropout then 1x1 classifier to ``num_classes`` logits."""
        return self.conv_seg(self.dropout(x))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.cls_seg(self.forward_features(feats))


class PyramidPoolingModule(nn.ModuleList):
    """PSPNet's pooling branches: adaptive average pool to each scale, 1x1 ConvModule, upsample."""

    def __init__(
        self, pool_scales: Sequence[int], in_channels: int, channels: int, align_corners: bool = False
    ) -> None:
        super().__init__(
            nn.Sequential(nn.AdaptiveAvgPool2d(scale), ConvModule(in_channels, channels, 1)) for scale in pool_scales
        )
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> list[Tensor]:
        return [resize(branch(x), x.shape[-2:], self.align_corners) for branch in self]
