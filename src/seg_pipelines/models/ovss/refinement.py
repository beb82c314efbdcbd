"""LSMSeg feature refinement module (thesis 5.2.6, eq. 5.7–5.8).

M'' = S([M'; E])    spatial refinement: Swin blocks over the filtered cost embedding guided by
                    the fused visual feature E (eq. 5.7);
M''' = C([M''; T'])  class refinement: linear transformer across the k kept classes guided by
                    their text embeddings T' (eq. 5.8).
"""

from __future__ import annotations

import torch
from torch import nn

from .aggregation import ClassAggregation, SpatialAggregation


class FeatureRefinementLayer(nn.Module):
    """One spatial (S) then class (C) refinement step."""

    def __init__(
        self,
        dim: int,
        visual_guidance_dim: int,
        text_guidance_dim: int,
        *,
        num_heads: int = 4,
        window_size: int = 12,
        pooling_size: int = 1,
    ) -> None:
        super().__init__()
        self.spatial = SpatialAggregation(dim, visual_guidance_dim, num_heads, window_size)
        self.classes = ClassAggregation(dim, text_guidance_dim, num_heads, pooling_size, "linear")

    def forward(self, cost: torch.Tensor, visual_guidance: torch.Tensor, text_guidance: torch.Tensor) -> torch.Tensor:
        refined = self.spatial(cost, visual_guidance)  # eq. 5.7
        return self.classes(refined, text_guidance)  # eq. 5.8


class FeatureRefinementModule(nn.Module):
    """A stack of :class:`FeatureRefinementLayer` (CAT-Seg uses 2 layers for ViT-B)."""

    def __init__(
        self, num_layers: int, dim: int, visual_guidance_dim: int, text_guidance_dim: int, **layer_kwargs
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                FeatureRefinementLayer(dim, visual_guidance_dim, text_guidance_dim, **layer_kwargs)
                for _ in range(num_layers)
            ]
        )

    def forward(self, cost: torch.Tensor, visual_guidance: torch.Tensor, text_guidance: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            cost = layer(cost, visual_guidance, text_guidance)
        return cost
