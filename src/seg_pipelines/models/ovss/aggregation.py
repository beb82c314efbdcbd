"""Cost aggregation blocks shared by CAT-Seg and LSMSeg's feature refinement.

Cost embeddings are 5-D tensors (B, C, K, H, W): C channels for each of K classes at H×W.

* Spatial aggregation: two Swin blocks (regular, then shifted windows) per class, queries and keys
  guided by image features (CAT-Seg; LSMSeg's S in eq. 5.7).
* Class aggregation: a linear-attention transformer across classes at every (pooled) pixel,
  queries and keys guided by text embeddings (CAT-Seg; LSMSeg's C in eq. 5.8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_MASKED = -100.0  # additive attention mask value between tokens of different windows/regions


class GuidedWindowAttention(nn.Module):
    """Multi-head attention inside windows; q and k see [x; guidance], v sees x only."""

    def __init__(self, dim: int, guidance_dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.query = nn.Linear(dim + guidance_dim, dim)
        self.key = nn.Linear(dim + guidance_dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, guided: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """tokens (N, L, C), guided (N, L, C + Cg), mask (windows, L, L) additive or None."""
        n, length, channels = tokens.shape
        heads = self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(n, length, heads, channels // heads).transpose(1, 2)

        query, key, value = split(self.query(guided)), split(self.key(guided)), split(self.value(tokens))
        scores = (query * self.scale) @ key.transpose(-2, -1)
        if mask is not None:
            windows = mask.shape[0]
            scores = scores.view(n // windows, windows, heads, length, length) + mask[None, :, None]
            scores = scores.view(n, heads, length, length)
        out = (scores.softmax(dim=-1) @ value).transpose(1, 2).reshape(n, length, channels)
        return self.proj(out)


def _partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(N, H, W, C) → (N * windows, window², C); H and W multiples of ``window``."""
    n, h, w, c = x.shape
    x = x.view(n, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_partition`."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def window_attention_mask(
    height: int, width: int, padded_height: int, padded_width: int, window: int, shift: int, device: torch.device
) -> torch.Tensor | None:
    """Additive mask (windows, window², window²) separating shifted regions and padding, or None."""
    if shift == 0 and (padded_height, padded_width) == (height, width):
        return None
    labels = torch.zeros(padded_height, padded_width, device=device)
    if shift:
        region = 0
        for rows in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for cols in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                labels[rows, cols] = region
                region += 1
    padding = torch.zeros_like(labels)
    padding[height:, :] += 1
    padding[:, width:] += 2
    padding = torch.roll(padding, shifts=(-shift, -shift), dims=(0, 1))
    labels = labels + 10 * padding  # padded tokens only attend to padded tokens of the same kind
    windows = _partition(labels[None, :, :, None], window).squeeze(-1)
    different = windows[:, :, None] != windows[:, None, :]
    return different.float() * _MASKED


class GuidedSwinBlock(nn.Module):
    """Swin transformer block (W-MSA or SW-MSA) with appearance guidance (CAT-Seg style).

    Windows larger than the feature map shrink to it (and stop shifting), maps that are not
    window multiples are padded and the padding masked.
    """

    def __init__(
        self, dim: int, guidance_dim: int, num_heads: int, window_size: int, shifted: bool, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shifted = shifted
        self.norm1 = nn.LayerNorm(dim)
        self.attention = GuidedWindowAttention(dim, guidance_dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """x (N, H, W, C); guidance (N, H, W, Cg) or None."""
        n, height, width, channels = x.shape
        window = min(self.window_size, height, width)
        shift = window // 2 if self.shifted and min(height, width) > self.window_size else 0
        shortcut = x
        x = self.norm1(x)
        guided = torch.cat([x, guidance], dim=-1) if guidance is not None else x
        pad_h, pad_w = (-height) % window, (-width) % window
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
            guided = F.pad(guided, (0, 0, 0, pad_w, 0, pad_h))
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
            guided = torch.roll(guided, shifts=(-shift, -shift), dims=(1, 2))
        padded_h, padded_w = x.shape[1], x.shape[2]
        mask = window_attention_mask(height, width, padded_h, padded_w, window, shift, x.device)
        out = self.attention(_partition(x, window), _partition(guided, window), mask)
        out = _merge(out, window, padded_h, padded_w)
        if shift:
            out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
        out = out[:, :height, :width]
        x = shortcut + out
        return x + self.mlp(self.norm2(x))


class SpatialAggregation(nn.Module):
    """Two guided Swin blocks (regular + shifted) applied to every class's cost map."""

    def __init__(self, dim: int, guidance_dim: int, num_heads: int = 4, window_size: int = 12) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [GuidedSwinBlock(dim, guidance_dim, num_heads, window_size, shifted) for shifted in (False, True)]
        )
        self.guidance_norm = nn.LayerNorm(guidance_dim) if guidance_dim > 0 else None

    def forward(self, cost: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """cost (B, C, K, H, W); guidance (B, Cg, H, W) image features or None."""
        batch, channels, classes, height, width = cost.shape
        x = cost.permute(0, 2, 3, 4, 1).reshape(batch * classes, height, width, channels)
        if guidance is not None and self.guidance_norm is not None:
            guidance = self.guidance_norm(guidance.permute(0, 2, 3, 1))
            guidance = guidance.unsqueeze(1).expand(-1, classes, -1, -1, -1).reshape(batch * classes, height, width, -1)
        else:
            guidance = None
        for block in self.blocks:
            x = block(x, guidance)
        return x.view(batch, classes, height, width, channels).permute(0, 4, 1, 2, 3)


def linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Linear attention ("Transformers are RNNs"), feature map elu + 1; (N, L, heads, d) tensors."""
    query, key = F.elu(query) + 1, F.elu(key) + 1
    length = value.shape[1]
    value = value / length  # keeps fp16 in range, undone below
    key_value = torch.einsum("nshd,nshv->nhdv", key, value)
    normaliser = 1.0 / (torch.einsum("nlhd,nhd->nlh", query, key.sum(dim=1)) + eps)
    return torch.einsum("nlhd,nhdv,nlh->nlhv", query, key_value, normaliser) * length


class ClassAggregation(nn.Module):
    """Transformer across classes at every pooled pixel; q and k see [cost; text guidance].

    Args:
        dim: cost-embedding channels.
        guidance_dim: projected text-guidance channels (0 = no guidance).
        num_heads: attention heads.
        pooling_size: average pooling of the cost map before attention (CAT-Seg: 2 for ViT-B).
        attention: ``linear`` (default, CAT-Seg/LSMSeg) or ``full`` softmax attention.
    """

    def __init__(
        self, dim: int, guidance_dim: int, num_heads: int = 4, pooling_size: int = 1, attention: str = "linear"
    ) -> None:
        super().__init__()
        if attention not in ("linear", "full"):
            raise ValueError(f"unknown class attention {attention!r}; choose 'linear' or 'full'")
        self.num_heads = num_heads
        self.pooling_size = pooling_size
        self.attention = attention
        self.norm1 = nn.LayerNorm(dim)
        self.query = nn.Linear(dim + guidance_dim, dim)
        self.key = nn.Linear(dim + guidance_dim, dim)
        self.value = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))

    def forward(self, cost: torch.Tensor, guidance: torch.Tensor | None) -> torch.Tensor:
        """cost (B, C, K, H, W); guidance (B, K, Cg) text features or None."""
        batch, channels, classes, height, width = cost.shape
        pooled = cost.transpose(1, 2).reshape(batch * classes, channels, height, width)
        if self.pooling_size > 1:
            pooled = F.avg_pool2d(pooled, self.pooling_size, ceil_mode=True)
        pooled_h, pooled_w = pooled.shape[-2:]
        tokens = pooled.view(batch, classes, channels, pooled_h * pooled_w).permute(0, 3, 1, 2)
        tokens = tokens.reshape(batch * pooled_h * pooled_w, classes, channels)
        normed = self.norm1(tokens)
        guided = normed
        if guidance is not None:
            guidance = (
                guidance.unsqueeze(1).expand(-1, pooled_h * pooled_w, -1, -1).reshape(tokens.shape[0], classes, -1)
            )
            guided = torch.cat([normed, guidance], dim=-1)
        heads = self.num_heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], classes, heads, channels // heads)

        query, key, value = split(self.query(guided)), split(self.key(guided)), split(self.value(normed))
        if self.attention == "linear":
            attended = linear_attention(query, key, value)
        else:
            attended = F.scaled_dot_product_attention(
                query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
            ).transpose(1, 2)
        updated = tokens + attended.reshape(tokens.shape)
        updated = updated + self.mlp(self.norm2(updated))
        # Residual update computed at pooled resolution, upsampled and added to the full-size cost
        # (CAT-Seg adds the upsampled pooled tokens themselves; adding only the update keeps x + Δ).
        delta = (updated - tokens).view(batch, pooled_h, pooled_w, classes, channels).permute(0, 3, 4, 1, 2)
        delta = delta.reshape(batch * classes, channels, pooled_h, pooled_w)
        if (pooled_h, pooled_w) != (height, width):
            delta = F.interpolate(delta, size=(height, width), mode="bilinear", align_corners=True)
        return cost + delta.view(batch, classes, channels, height, width).transpose(1, 2)


class CostAggregationLayer(nn.Module):
    """Spatial aggregation then class aggregation (one CAT-Seg aggregator layer)."""

    def __init__(
        self,
        dim: int,
        appearance_guidance_dim: int,
        text_guidance_dim: int,
        *,
        num_heads: int = 4,
        window_size: int = 12,
        pooling_size: int = 1,
        class_attention: str = "linear",
    ) -> None:
        super().__init__()
        self.spatial = SpatialAggregation(dim, appearance_guidance_dim, num_heads, window_size)
        self.classes = ClassAggregation(dim, text_guidance_dim, num_heads, pooling_size, class_attention)

    def forward(
        self, cost: torch.Tensor, appearance_guidance: torch.Tensor | None, text_guidance: torch.Tensor | None
    ) -> torch.Tensor:
        return self.classes(self.spatial(cost, appearance_guidance), text_guidance)
