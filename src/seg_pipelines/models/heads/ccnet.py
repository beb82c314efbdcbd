"""CCNet head (Huang et al.): recurrent criss-cross attention in pure PyTorch (no CUDA op)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .fcn import FCNHead


class CrissCrossAttention(nn.Module):
    """Each pixel attends to the pixels of its row and column (H + W - 1 positions; the pixel
    itself is counted once, through its row), as ``mmcv.ops.CrissCrossAttention``.

    Query/key are 1x1 projections to ``in_channels // 8``; the output is ``gamma * attn(V) + x``
    with the learnable scalar ``gamma`` initialised at 0.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.key_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        height = x.shape[2]
        query, key, value = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        # Column energies e[b, h, w, i] = q[:, h, w] . k[:, i, w]; the pixel itself is masked here
        # so that it is counted once (in the row energies).
        energy_column = torch.einsum("bchw,bciw->bhwi", query, key)
        self_mask = torch.eye(height, dtype=torch.bool, device=x.device).view(height, 1, height)
        energy_column = energy_column.masked_fill(self_mask, float("-inf"))
        energy_row = torch.einsum("bchw,bchj->bhwj", query, key)
        attention = torch.softmax(torch.cat([energy_column, energy_row], dim=-1), dim=-1)
        out = torch.einsum("bciw,bhwi->bchw", value, attention[..., :height])
        out = out + torch.einsum("bchj,bhwj->bchw", value, attention[..., height:])
        return self.gamma * out + x


class CCHead(FCNHead):
    """FCN head with ``recurrence`` criss-cross attentions between its two 3x3 convs, then the
    input concatenated (MMSeg's ``CCHead``: ``num_convs=2, concat_input=True``).

    Args:
        recurrence: number of times the (shared) criss-cross attention is applied (2 = full
            image context).
        **kwargs: :class:`FCNHead` arguments.
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        channels: int,
        num_classes: int,
        *,
        recurrence: int = 2,
        concat_input: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(in_channels, channels, num_classes, num_convs=2, concat_input=concat_input, **kwargs)
        self.recurrence = recurrence
        self.cca = CrissCrossAttention(channels)

    def forward_features(self, feats: Sequence[Tensor]) -> Tensor:
        x = self.select(feats)
        out = self.convs[0](x)
        for _ in range(self.recurrence):
            out = self.cca(out)
        out = self.convs[1](out)
        if self.concat_input:
            out = self.conv_cat(torch.cat([x, out], dim=1))
        return out
