"""ISNet head (Jin et al., ICCV 2021): image-level and semantic-level context, after
MMSegmentation's ``projects/isnet`` ``ISNetHead`` (best-effort re-implementation)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import BaseDecodeHead, ConvModule, resize


class SelfAttentionBlock(nn.Module):
    """Query/key/value attention between two feature maps (MMSeg ``SelfAttentionBlock`` with two
    1x1 ConvModules for key and query, one for value and one for the output, scaled dot product).
    """

    def __init__(self, key_in_channels: int, query_in_channels: int, transform_channels: int, out_channels: int):
        super().__init__()
        self.query_project = nn.Sequential(
            ConvModule(query_in_channels, transform_channels, 1), ConvModule(transform_channels, transform_channels, 1)
        )
        self.key_project = nn.Sequential(
            ConvModule(key_in_channels, transform_channels, 1), ConvModule(transform_channels, transform_channels, 1)
        )
        self.value_project = ConvModule(key_in_channels, transform_channels, 1)
        self.out_project = ConvModule(transform_channels, out_channels, 1)
        self.transform_channels = transform_channels

    def forward(self, query_feats: Tensor, key_feats: Tensor) -> Tensor:
        batch, _, height, width = query_feats.shape
        query = self.query_project(query_feats).flatten(2).transpose(1, 2)  # (B, HW, C)
        key = self.key_project(key_feats).flatten(2)  # (B, C, HW')
        value = self.value_project(key_feats).flatten(2).transpose(1, 2)  # (B, HW', C)
        attention = torch.softmax(torch.bmm(query, key) * self.transform_channels**-0.5, dim=-1)
        context = torch.bmm(attention, value).transpose(1, 2).reshape(batch, -1, height, width)
        return self.out_project(context)


class ImageLevelContext(nn.Module):
    """Each pixel attends to [global average feature, pixel features]; fused with the input."""

    def __init__(self, channels: int, transform_channels: int, concat_input: bool = True) -> None:
        super().__init__()
        self.global_project = ConvModule(channels, channels, 1)
        self.correlate = SelfAttentionBlock(channels * 2, channels, transform_channels, channels)
        self.bottleneck = ConvModule(channels * 2, channels, 3, padding=1) if concat_input else None

    def forward(self, x: Tensor) -> Tensor:
        global_feats = self.global_project(F.adaptive_avg_pool2d(x, 1)).expand_as(x)
        context = self.correlate(x, torch.cat([global_feats, x], dim=1))
        if self.bottleneck is not None:
            context = self.bottleneck(torch.cat([x, context], dim=1))
        return context


def semantic_class_centers(feats: Tensor, logits: Tensor) -> Tensor:
    """Per pixel, the centre of its predicted class: ``sum_j softmax_j(s_j) f_j`` over the pixels j
    predicted as the same class, with ``s_j`` the logit of that class (ISNet's semantic-level
    representation), computed for all classes at once with a masked softmax."""
    batch, channels, height, width = feats.shape
    flat_logits = logits.flatten(2)  # (B, K, HW)
    predicted = flat_logits.argmax(dim=1)  # (B, HW)
    member = F.one_hot(predicted, flat_logits.shape[1]).transpose(1, 2).bool()  # (B, K, HW)
    weights = torch.softmax(flat_logits.masked_fill(~member, float("-inf")), dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # classes predicted nowhere
    centers = torch.bmm(weights, feats.flatten(2).transpose(1, 2))  # (B, K, C)
    per_pixel = torch.gather(centers, 1, predicted.unsqueeze(-1).expand(-1, -1, channels))
    return per_pixel.transpose(1, 2).reshape(batch, channels, height, width)


class SemanticLevelContext(nn.Module):
    """Each pixel attends to the class centres of the stage-1 prediction; fused with the
    image-level context."""

    def __init__(self, channels: int, transform_channels: int, concat_input: bool = True) -> None:
        super().__init__()
        self.correlate = SelfAttentionBlock(channels, channels, transform_channels, channels)
        self.bottleneck = ConvModule(channels * 2, channels, 3, padding=1) if concat_input else None

    def forward(self, x: Tensor, logits: Tensor, image_context: Tensor) -> Tensor:
        context = self.correlate(x, semantic_class_centers(x, logits))
        if self.bottleneck is not None:
            context = self.bottleneck(torch.cat([image_context, context], dim=1))
        return context


class ISNetHead(BaseDecodeHead):
    """Bottleneck 3x3 conv, image-level context, a stage-1 prediction, semantic-level context.

    ``forward_features_with_extras`` also returns ``stage1_logits`` (supervised with weight
    ``stage1_loss_weight``, MMSeg config: 0.4).

    Args:
        transform_channels: width of the attention projections (256).
        concat_input: fuse each context with its input by a 3x3 ConvModule.
        with_shortcut: concatenate a ``shortcut_channels`` projection of level 0 before the end.
        stage1_loss_weight: loss weight of the stage-1 logits.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        transform_channels: int = 256,
        concat_input: bool = True,
        with_shortcut: bool = False,
        shortcut_channels: int = 48,
        stage1_loss_weight: float = 0.4,
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, **kwargs)
        self.bottleneck = ConvModule(self.in_channels, channels, 3, padding=1)
        self.image_level_context = ImageLevelContext(channels, transform_channels, concat_input)
        self.semantic_level_context = SemanticLevelContext(channels, transform_channels, concat_input)
        self.decoder_stage1 = nn.Sequential(
            ConvModule(channels, channels, 1),
            nn.Dropout2d(kwargs.get("dropout_ratio", 0.1)),
            nn.Conv2d(channels, num_classes, 1),
        )
        if with_shortcut:
            self.shortcut = ConvModule(self.in_channels_all[0], shortcut_channels, 1)
            self.decoder_stage2 = ConvModule(channels + shortcut_channels, channels, 3, padding=1)
        else:
            self.shortcut = None
        self.extra_loss_weights = {"stage1_logits": stage1_loss_weight}

    def forward_features_with_extras(self, feats: Sequence[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.bottleneck(self.select(feats))
        image_context = self.image_level_context(x)
        stage1_logits = self.decoder_stage1(x)
        out = self.semantic_level_context(x, stage1_logits, image_context)
        if self.shortcut is not None:
            low_level = self.shortcut(feats[0])
            out = torch.cat([resize(out, low_level.shape[-2:], self.align_corners), low_level], dim=1)
            out = self.decoder_stage2(out)
        return out, {"stage1_logits": stage1_logits}

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        return self.forward_features_with_extras(feats)[0]
