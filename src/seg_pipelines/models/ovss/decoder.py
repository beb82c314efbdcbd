"""Upsampling decoder for cost embeddings with CLIP intermediate-layer guidance (CAT-Seg; eq. 5.9)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(channels // 16, 1), channels)


class GuidedUpsampleBlock(nn.Module):
    """×2 transposed conv, concatenate guidance, two 3×3 conv + GroupNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, guidance_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = nn.Sequential(
            nn.Conv2d(out_channels + guidance_channels, out_channels, 3, padding=1, bias=False),
            _group_norm(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _group_norm(out_channels),
            nn.ReLU(inplace=True),
        )

    def input_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The first 3×3 conv's part that reads the upsampled cost channels: (N, C, H, W) → (N, C', H, W)."""
        return F.conv2d(x, self.conv[0].weight[:, : self.up.out_channels], padding=1)

    def guidance_conv(self, guidance: torch.Tensor) -> torch.Tensor:
        """The first 3×3 conv's part that reads the guidance channels, once per image: (B, Cg, H, W)."""
        return F.conv2d(guidance, self.conv[0].weight[:, self.up.out_channels :], padding=1)

    def finish(self, x: torch.Tensor, guidance_term: torch.Tensor | None) -> torch.Tensor:
        """First conv's output (N = B*K, ...) + its guidance part (B, ...) broadcast over the K classes
        of each image, then GroupNorm, ReLU, the second conv, GroupNorm, ReLU."""
        if guidance_term is not None:
            batch = guidance_term.shape[0]
            x = (x.view(batch, -1, *x.shape[1:]) + guidance_term.unsqueeze(1)).view(x.shape)
        for layer in list(self.conv)[1:]:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """x (B*K, C, h, w); guidance (B, Cg, 2h, 2w) shared by the K classes of each image, or None.

        conv([up(x); g]) = conv_x(up(x)) + conv_g(g) (the conv is linear, bias-free): the guidance
        half is computed once per image instead of once per (image, class) and never copied K times.
        """
        x = self.up(x)
        if guidance is None:
            return self.conv(x)
        return self.finish(self.input_conv(x), self.guidance_conv(guidance))


class UpsamplingDecoder(nn.Module):
    """O = Up([M'''; E'])  (eq. 5.9): cost embedding (B, C, K, h, w) → logits (B, K, 4h, 4w).

    Guidance E' are intermediate image-encoder layers at the cost resolution; the i-th is brought
    to the i-th decoder resolution (×2, ×4) by a transposed conv and projected (CAT-Seg).

    Args:
        in_channels: cost-embedding channels.
        decoder_channels: output channels of the two upsampling blocks.
        guidance_channels: channels of the intermediate guidance maps (empty = no guidance).
        guidance_proj_channels: channels guidance is projected to before concatenation.
    """

    def __init__(
        self,
        in_channels: int,
        decoder_channels: Sequence[int] = (64, 32),
        guidance_channels: Sequence[int] = (),
        guidance_proj_channels: Sequence[int] = (32, 16),
    ) -> None:
        super().__init__()
        use_guidance = len(guidance_channels) > 0
        if use_guidance and len(guidance_channels) != len(decoder_channels):
            raise ValueError("need one guidance map per decoder block")
        proj = list(guidance_proj_channels) if use_guidance else [0] * len(decoder_channels)
        self.guidance_projections = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(channels, out, kernel_size=2 ** (level + 1), stride=2 ** (level + 1)),
                    nn.Conv2d(out, out, 3, padding=1),
                    nn.ReLU(inplace=True),
                )
                for level, (channels, out) in enumerate(zip(guidance_channels, proj))
            ]
        )
        blocks, channels = [], in_channels
        for out, guidance in zip(decoder_channels, proj):
            blocks.append(GuidedUpsampleBlock(channels, out, guidance))
            channels = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, cost: torch.Tensor, guidance: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        batch, channels, classes, height, width = cost.shape
        x = cost.transpose(1, 2).reshape(batch * classes, channels, height, width)
        projected = (
            [project(g) for project, g in zip(self.guidance_projections, guidance)]
            if guidance is not None and len(self.guidance_projections)
            else [None] * len(self.blocks)
        )
        for block, g in zip(self.blocks, projected):
            x = block(x, g)
        logits = self.head(x)
        return logits.view(batch, classes, *logits.shape[-2:])
